/**
 * The usage guide's Example 1 (first workflow) and Example 7 (inspecting a state), run with
 * the real apps: bin/hello-service, bin/processor, bin/client and bin/inspect as processes
 * on the suite's 3-node cluster.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppProcess,
  escapeRegExp,
  guideLine,
  type HelloServiceApp,
  invocationIdOf,
  receivedNames,
  runApp,
  serviceEnv,
  startHelloService,
  startProcessor,
  stopApps,
  uniq,
  UUID,
} from '../support/app-process.js';

const GREETING = 'Hello, World! Welcome to Durable Execution on NATS JetStream.';

let service: HelloServiceApp;
let processor: AppProcess;

beforeAll(async () => {
  // A little service delay: enough for `--no-wait` to provably return before the run ends.
  service = await startHelloService({ HELLO_DELAY_MS: '300' });
  processor = await startProcessor(service.port);
});

afterAll(async () => {
  await stopApps();
});

/** bin/client with the service address set, run to its end. */
function client(args: string[] = [], env: Record<string, string> = {}) {
  return runApp('client', { args, env: { ...serviceEnv(service.port), ...env } });
}

function inspect(...args: string[]) {
  return runApp('inspect', { args });
}

describe('Example 1: the first workflow', () => {
  let id: string;

  it('bin/client submits hello_workflow, prints the guide’s lines and the result, and exits 0', async () => {
    const run = await client();
    expect(run.code, run.output()).toBe(0);
    id = invocationIdOf(run);
    const out = run.texts('stdout');
    const at = (re: RegExp) => out.findIndex((line) => re.test(line));
    const expected = [
      guideLine('Submitting workflow:'),
      guideLine(`  Invocation ID: ${id}`),
      guideLine('  Handler: hello_workflow'),
      guideLine('  Partition Key: default'),
      guideLine('✓ Command submitted successfully!'),
      guideLine(`Track execution with: nats kv get EXECUTION_STATE ${id}`),
      guideLine(/Execution completed: status=completed/),
      guideLine(`  Output: ${JSON.stringify(GREETING)}`),
    ];
    const positions = expected.map(at);
    for (const [i, pos] of positions.entries()) expect(pos, `${expected[i]} in\n${run.output()}`).toBeGreaterThanOrEqual(0);
    // In the guide's order.
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(run.texts('stderr').filter((l) => /^\s+at /.test(l))).toEqual([]);
  });

  it('the processor logs the guide’s four lines for that invocation, and HelloService its request', async () => {
    await processor.waitForLine(guideLine(`Execution completed successfully: ${id}`));
    const lines = processor.texts();
    const processing = lines.findIndex((l) => guideLine(`Processing command: invocation_id=${id} handler=hello_workflow service=HelloService`).test(l));
    const executing = lines.findIndex((l) => guideLine(`Executing hello workflow: invocation_id=${id}`).test(l));
    const completedMsg = lines.findIndex((l, i) => i > executing && guideLine(`Hello workflow completed: message=${GREETING}`).test(l));
    const completed = lines.findIndex((l) => guideLine(`Execution completed successfully: ${id}`).test(l));
    expect(processing, processor.output()).toBeGreaterThanOrEqual(0);
    expect(executing).toBeGreaterThan(processing);
    expect(completedMsg).toBeGreaterThan(executing);
    expect(completed).toBeGreaterThan(completedMsg);
    // Run once: one "Processing command" for it.
    expect(processor.matching(new RegExp(`Processing command: invocation_id=${id} `))).toHaveLength(1);

    await service.waitForLine(guideLine('Received SayHello request: name=World'));
  });

  it('Example 7: bin/inspect <id> prints the state and its one-step journal', async () => {
    const run = await inspect(id);
    expect(run.code, run.output()).toBe(0);
    const out = run.texts('stdout');
    expect(out).toContain('Execution State:');
    expect(out).toContain(`  Invocation ID: ${id}`);
    expect(out).toContain('  Handler: hello_workflow');
    expect(out).toContain('  Status: completed');
    expect(out).toContain('  Journal Entries: 1');
    const step = out.indexOf('  Step 0: HelloService.SayHello');
    expect(step, run.output()).toBeGreaterThan(out.indexOf('Journal:'));
    expect(out[step + 1]).toBe(`    Response: ${JSON.stringify({ message: GREETING })}`);
    expect(out.filter((l) => /^\s+Step \d+:/.test(l))).toHaveLength(1);
  });

  it('bin/inspect ls lists the invocation as completed', async () => {
    // Filtered and with room for every invocation of the suite's run: the index lists oldest first.
    const run = await inspect('ls', '--status', 'completed', '--handler', 'hello_workflow', '--limit', '1000');
    expect(run.code, run.output()).toBe(0);
    expect(run.texts('stdout')).toContainEqual(expect.stringMatching(new RegExp(`^${id}\\s+completed\\s+hello_workflow$`)));
    // Every listed line is an ID with a status.
    for (const line of run.texts('stdout')) expect(line).toMatch(/^\S+\s+\S+\s+\S+/);
  });

  it('bin/inspect of an unknown ID exits non-zero naming it', async () => {
    const missing = randomUUID();
    const run = await inspect(missing);
    expect(run.code, run.output()).not.toBe(0);
    expect(run.output()).toContain(missing);
    expect(run.lines.filter((l) => /^\s+at /.test(l.text))).toEqual([]);
  });
});

describe('client options', () => {
  it('--no-wait returns right after submitting, before the invocation has run', async () => {
    const names = [1, 2, 3, 4, 5].map((n) => `nowait${n}-${uniq()}`);
    const run = await client(['--no-wait', '--args', JSON.stringify({ names })], { HANDLER: 'custom_workflow' });
    expect(run.code, run.output()).toBe(0);
    const id = invocationIdOf(run);
    expect(run.texts()).toContainEqual(expect.stringMatching(guideLine('✓ Command submitted successfully!')));
    expect(run.texts()).toContainEqual(expect.stringMatching(guideLine(`Track execution with: nats kv get EXECUTION_STATE ${id}`)));
    expect(run.output()).not.toMatch(/Waiting for the result|status=|Journal:/);
    // Five calls of 300 ms each: the client was gone well before the run ended.
    expect(processor.matching(new RegExp(`Execution completed successfully: ${id}`))).toEqual([]);
    // And the invocation does run to its end.
    await processor.waitForLine(guideLine(`Execution completed successfully: ${id}`), 30_000);
    await service.waitForLine(guideLine(`Received SayHello request: name=${names[4]}`));
    expect(receivedNames(service).filter((n) => names.includes(n))).toEqual(names);
  });

  it('the same --id submitted twice runs once: HelloService is called once for it', async () => {
    const id = randomUUID();
    const name = `dup-${uniq()}`;
    const key = `dup-${uniq()}`;
    const env = { PARTITION_KEY: key };
    const args = ['--id', id, '--args', JSON.stringify({ name })];

    const first = await client(args, env);
    expect(first.code, first.output()).toBe(0);
    expect(invocationIdOf(first)).toBe(id);
    expect(first.texts()).toContainEqual(expect.stringMatching(guideLine('✓ Command submitted successfully!')));
    expect(first.output()).toContain(`Output: "Hello, ${name}! Welcome to Durable Execution on NATS JetStream."`);

    const second = await client(args, env);
    expect(second.code, second.output()).toBe(0);
    expect(invocationIdOf(second)).toBe(id);
    expect(second.output()).toMatch(new RegExp(`already submitted`));
    expect(second.output()).toMatch(/status=completed/);

    // A barrier: a later invocation of the same key starts only after any copy of the
    // first would have run, so once it has completed a second run would have shown.
    const barrier = await client(['--args', JSON.stringify({ name: `barrier-${uniq()}` })], env);
    expect(barrier.code, barrier.output()).toBe(0);
    await processor.waitForLine(guideLine(`Execution completed successfully: ${invocationIdOf(barrier)}`));

    expect(receivedNames(service).filter((n) => n === name)).toHaveLength(1);
    expect(processor.matching(new RegExp(`Processing command: invocation_id=${escapeRegExp(id)} `)).length).toBeLessThanOrEqual(1);
    expect(processor.matching(new RegExp(`Execution completed successfully: ${escapeRegExp(id)}$`))).toHaveLength(1);
  });

  it('prints a fresh UUID per submission', async () => {
    const [a, b] = await Promise.all([client(['--no-wait']), client(['--no-wait'])]);
    expect(a.code, a.output()).toBe(0);
    expect(b.code, b.output()).toBe(0);
    expect(invocationIdOf(a)).toMatch(new RegExp(`^${UUID}$`));
    expect(invocationIdOf(a)).not.toBe(invocationIdOf(b));
    await processor.waitForLine(guideLine(`Execution completed successfully: ${invocationIdOf(a)}`));
    await processor.waitForLine(guideLine(`Execution completed successfully: ${invocationIdOf(b)}`));
  });
});
