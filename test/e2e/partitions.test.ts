/**
 * The usage guide's Example 2: workflows submitted under several partition keys are each
 * processed, those of one key in submission order, different keys concurrently. Real
 * apps as processes on the suite's cluster; HelloService answers after 200 ms, so runs
 * that are not kept in order would overlap and reach it in any order.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppProcess,
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
} from '../support/app-process.js';

let service: HelloServiceApp;
let processor: AppProcess | undefined;

beforeAll(async () => {
  service = await startHelloService({ HELLO_DELAY_MS: '200' });
});

afterEach(async () => {
  // The processor is per test: a failed test leaves none behind for the next.
  if (processor) await stopApps([processor]);
  processor = undefined;
});

afterAll(async () => {
  await stopApps();
});

function client(args: string[], env: Record<string, string>) {
  return runApp('client', { args, env: { ...serviceEnv(service.port), ...env } });
}

/** Submits without waiting; returns the invocation ID. */
async function submit(partitionKey: string, name: string): Promise<string> {
  const run = await client(['--no-wait', '--args', JSON.stringify({ name })], { PARTITION_KEY: partitionKey });
  expect(run.code, run.output()).toBe(0);
  expect(run.texts()).toContainEqual(expect.stringMatching(guideLine(`  Partition Key: ${partitionKey}`)));
  return invocationIdOf(run);
}

/** Index of the first processor line matching `re`, failing when there is none. */
function indexOf(proc: AppProcess, re: RegExp): number {
  const i = proc.lines.findIndex((l) => re.test(l.text));
  expect(i, `${re} in\n${proc.output()}`).toBeGreaterThanOrEqual(0);
  return i;
}

describe('Example 2: several partition keys', () => {
  it('PARTITION_KEY=user-123, user-456 and user-789 each complete', async () => {
    processor = await startProcessor(service.port);
    const keys = ['user-123', 'user-456', 'user-789'];
    const runs = [];
    // As in the guide, one after the other.
    for (const key of keys) runs.push(await client([], { PARTITION_KEY: key }));
    const ids = runs.map(invocationIdOf);
    for (const [i, run] of runs.entries()) {
      expect(run.code, run.output()).toBe(0);
      expect(run.texts()).toContainEqual(expect.stringMatching(guideLine(`  Partition Key: ${keys[i]}`)));
      expect(run.texts()).toContainEqual(expect.stringMatching(guideLine('Execution completed: status=completed')));
      await processor.waitForLine(guideLine(`Execution completed successfully: ${ids[i]}`));
    }
    const inspects = await Promise.all(ids.map((id) => runApp('inspect', { args: [id] })));
    for (const [i, inspect] of inspects.entries()) {
      expect(inspect.code, inspect.output()).toBe(0);
      expect(inspect.texts()).toContain(`  Invocation ID: ${ids[i]}`);
      expect(inspect.texts()).toContain('  Status: completed');
      expect(inspect.texts()).toContain(`  Partition Key: ${keys[i]}`);
    }
    expect(new Set(runs.map(invocationIdOf)).size).toBe(3);
  });

  it('invocations of one key run one at a time, in submission order', async () => {
    // Queue them while no processor runs, so the next one gets them all in one delivery
    // and only its per-key ordering keeps them apart.
    const key = `order-${uniq()}`;
    const names = [1, 2, 3, 4, 5].map((n) => `o${n}-${uniq()}`);
    const ids: string[] = [];
    for (const name of names) ids.push(await submit(key, name));

    processor = await startProcessor(service.port);
    for (const id of ids) await processor.waitForLine(guideLine(`Execution completed successfully: ${id}`), 30_000);
    await service.waitForLine(guideLine(`Received SayHello request: name=${names[4]}`));

    // HelloService saw them in submission order, each once.
    expect(receivedNames(service).filter((n) => names.includes(n))).toEqual(names);
    // The processor started each only after the one before had completed.
    for (let i = 1; i < ids.length; i++) {
      const previousDone = indexOf(processor, guideLine(`Execution completed successfully: ${ids[i - 1]}`));
      const started = indexOf(processor, new RegExp(`Processing command: invocation_id=${ids[i]} `));
      expect(started, processor.output()).toBeGreaterThan(previousDone);
    }
  });

  it('invocations of different keys run concurrently', async () => {
    const token = uniq();
    const keys = [`par-a-${token}`, `par-b-${token}`, `par-c-${token}`];
    const names = keys.map((k) => `name-${k}`);
    const ids: string[] = [];
    for (const [i, key] of keys.entries()) ids.push(await submit(key, names[i]!));

    processor = await startProcessor(service.port);
    for (const id of ids) await processor.waitForLine(guideLine(`Execution completed successfully: ${id}`), 30_000);
    for (const name of names) await service.waitForLine(guideLine(`Received SayHello request: name=${name}`));

    // Each takes 200 ms at HelloService: every one started before any had completed.
    const firstDone = Math.min(...ids.map((id) => indexOf(processor!, guideLine(`Execution completed successfully: ${id}`))));
    for (const id of ids) {
      expect(indexOf(processor, new RegExp(`Executing hello workflow: invocation_id=${id}$`)), processor.output()).toBeLessThan(firstDone);
    }
    // And HelloService had the three requests together: one after the other they would
    // have been at least 2 x 200 ms apart.
    const received = service.lines.filter((l) => names.some((n) => l.text.endsWith(`name=${n}`)));
    expect(received).toHaveLength(3);
    expect(received[2]!.at - received[0]!.at).toBeLessThan(300);
  });
});
