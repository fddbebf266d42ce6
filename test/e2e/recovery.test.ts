/**
 * The usage guide's Example 3, the core promise: a workflow survives its processor. The
 * processor is killed (SIGKILL, no chance to clean up) or stopped (SIGINT) half-way through
 * an 8-call custom_workflow; a new processor resumes it from its journal, replaying the
 * journaled calls and making only the rest. Real apps as processes on the suite's cluster.
 */
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
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
} from '../support/app-process.js';

const STEPS = 8;
/** A killed processor's command comes back after this many seconds. */
const ACK_WAIT = '2';

let service: HelloServiceApp;
const processors: AppProcess[] = [];

beforeAll(async () => {
  service = await startHelloService({ HELLO_DELAY_MS: '300' });
});

afterEach(async () => {
  await stopApps(processors.splice(0));
});

afterAll(async () => {
  await stopApps();
});

async function processor(label: string): Promise<AppProcess> {
  const proc = await startProcessor(service.port, { args: ['--ack-wait', ACK_WAIT], label });
  processors.push(proc);
  return proc;
}

/** Submits custom_workflow over `names` without waiting; returns its ID. */
async function submit(names: string[]): Promise<string> {
  const run = await runApp('client', {
    args: ['--no-wait', '--args', JSON.stringify({ names })],
    env: { ...serviceEnv(service.port), HANDLER: 'custom_workflow', PARTITION_KEY: `recovery-${uniq()}` },
  });
  expect(run.code, run.output()).toBe(0);
  return invocationIdOf(run);
}

/** How many of `names` HelloService has received, counting repeats. */
function receivedOf(names: string[]): string[] {
  return receivedNames(service).filter((n) => names.includes(n));
}

/** Waits until HelloService has received at least `count` of `names`. */
function waitForReceived(names: string[], count: number): Promise<string[]> {
  return service.waitFor(`${count} SayHello requests of ${names.join(',')}`, () => {
    const got = receivedOf(names);
    return got.length >= count ? got : undefined;
  }, 30_000);
}

/** `bin/inspect <id>`: the state's lines, checked to say completed with the whole journal. */
async function inspectCompleted(id: string, names: string[]): Promise<string[]> {
  const run = await runApp('inspect', { args: [id] });
  expect(run.code, run.output()).toBe(0);
  const out = run.texts('stdout');
  expect(out).toContain(`  Invocation ID: ${id}`);
  expect(out).toContain('  Handler: custom_workflow');
  expect(out, run.output()).toContain('  Status: completed');
  expect(out).toContain(`  Journal Entries: ${STEPS + 1}`);
  const steps = out.filter((l) => /^  Step \d+: /.test(l));
  expect(steps).toEqual([...names.map((_, i) => `  Step ${i}: HelloService.SayHello`), `  Step ${STEPS}: NOW`]);
  // Each call's journaled response greets its own name, in order.
  for (const [i, name] of names.entries()) {
    const response = out[out.indexOf(`  Step ${i}: HelloService.SayHello`) + 1];
    expect(response).toBe(`    Response: ${JSON.stringify({ message: `Hello, ${name}! Welcome to Durable Execution on NATS JetStream.` })}`);
  }
  return out;
}

/** The `Resuming <id> from its journal: N completed steps ...` count a processor logged. */
function resumedFrom(proc: AppProcess, id: string): number {
  const m = proc.matches(new RegExp(`Resuming ${escapeRegExp(id)} from its journal: (\\d+) completed steps`))[0];
  expect(m, proc.output()).toBeDefined();
  return Number(m![1]);
}

/** The step numbers a processor said it replayed from the journal. */
function replayedSteps(proc: AppProcess): number[] {
  return proc.matches(guideLine(/Replayed step (\d+): HelloService\.SayHello \(from journal\)/)).map((m) => Number(m[1]));
}

describe('Example 3: failure recovery', () => {
  it('after a SIGKILL mid-workflow, a new processor replays the journaled calls and makes only the rest', async () => {
    const token = uniq();
    const names = Array.from({ length: STEPS }, (_, i) => `r${i + 1}-${token}`);
    const first = await processor('processor#1');
    const id = await submit(names);
    await first.waitForLine(guideLine(`Processing command: invocation_id=${id} handler=custom_workflow service=HelloService`));

    await waitForReceived(names, 3);
    first.kill('SIGKILL');
    const killed = await first.waitForExit();
    expect(killed.signal).toBe('SIGKILL');
    const receivedBeforeKill = receivedOf(names);
    const greetedBeforeKill = first.matching(/Greeted r\d+-/).length;
    // The run had not finished: there is something left to recover.
    expect(first.matching(new RegExp(`Execution completed successfully: ${id}`))).toEqual([]);
    expect(receivedBeforeKill.length).toBeLessThan(STEPS);

    const second = await processor('processor#2');
    // It gets the command once the ack wait of the dead one's delivery has passed.
    await second.waitForLine(guideLine(`Execution completed successfully: ${id}`), 45_000);
    await service.waitForLine(guideLine(`Received SayHello request: name=${names[STEPS - 1]}`));

    // Resumed from the journal: every call journaled before the kill replayed, in order.
    const journaled = resumedFrom(second, id);
    // A call HelloService received was made after the previous call had been journaled.
    expect(journaled).toBeGreaterThanOrEqual(receivedBeforeKill.length - 1);
    expect(journaled).toBeGreaterThanOrEqual(greetedBeforeKill);
    expect(journaled).toBeGreaterThanOrEqual(2);
    expect(journaled).toBeLessThanOrEqual(receivedBeforeKill.length);
    expect(replayedSteps(second)).toEqual(Array.from({ length: journaled }, (_, i) => i));

    await inspectCompleted(id, names);

    // HelloService: every name at least once; the journaled ones exactly once. Only the
    // call in flight at the kill (step `journaled`) may have been made twice.
    const calls = new Map<string, number>();
    for (const n of receivedOf(names)) calls.set(n, (calls.get(n) ?? 0) + 1);
    for (const [i, name] of names.entries()) {
      if (i === journaled) expect(calls.get(name) ?? 0, name).toBeGreaterThanOrEqual(1);
      else expect(calls.get(name) ?? 0, `${name} (step ${i})`).toBe(1);
    }
    expect(calls.get(names[journaled]!) ?? 0).toBeLessThanOrEqual(2);
    // In workflow order, the in-flight one possibly repeated.
    const order = receivedOf(names).filter((n, i, all) => all.indexOf(n) === i);
    expect(order).toEqual(names);
  });

  it('a SIGINT mid-workflow stops the processor cleanly (exit 0) and a restarted one finishes the invocation', async () => {
    const token = uniq();
    const names = Array.from({ length: STEPS }, (_, i) => `s${i + 1}-${token}`);
    const first = await processor('processor#1');
    const id = await submit(names);
    await waitForReceived(names, 3);

    first.kill('SIGINT');
    const stopped = await first.waitForExit(30_000);
    // The guide's Ctrl+C: a clean stop, not a crash.
    expect(stopped.code, first.output()).toBe(0);
    expect(first.texts()).toContainEqual(expect.stringMatching(guideLine('Received SIGINT, shutting down...')));
    expect(first.texts()).toContainEqual(expect.stringMatching(guideLine('Processor stopped')));
    expect(first.lines.filter((l) => /^\s+at /.test(l.text))).toEqual([]);
    expect(first.matching(new RegExp(`Execution completed successfully: ${id}`))).toEqual([]);
    const receivedBeforeStop = receivedOf(names).length;
    expect(receivedBeforeStop).toBeLessThan(STEPS);

    const second = await processor('processor#2');
    await second.waitForLine(guideLine(`Execution completed successfully: ${id}`), 45_000);
    await service.waitForLine(guideLine(`Received SayHello request: name=${names[STEPS - 1]}`));

    // A clean stop lets the call in flight finish and journals it: everything HelloService
    // received before the stop is in the journal and replayed, nothing is called twice.
    expect(resumedFrom(second, id)).toBe(receivedBeforeStop);
    expect(replayedSteps(second)).toEqual(Array.from({ length: receivedBeforeStop }, (_, i) => i));
    expect(first.texts()).toContainEqual(expect.stringMatching(guideLine(`Stopped ${id} at a step boundary: processor is stopping`)));
    await inspectCompleted(id, names);
    expect(receivedOf(names)).toEqual(names);
  });

  it('a processor stalled (SIGSTOP) past its ownership loses the invocation to another, and its writes are refused when it wakes', async () => {
    const token = uniq();
    const names = Array.from({ length: STEPS }, (_, i) => `t${i + 1}-${token}`);
    const one = await processor('processor#1');
    const two = await processor('processor#2');
    const id = await submit(names);
    const owner = await Promise.race(
      [one, two].map((p) => p.waitForLine(guideLine(`Processing command: invocation_id=${id} handler=custom_workflow service=HelloService`), 30_000).then(() => p)),
    );
    const other = owner === one ? two : one;
    await waitForReceived(names, 2);
    owner.kill('SIGSTOP');
    try {
      // Its partition and its command go to the other processor, which claims the journal.
      await other.waitForLine(guideLine(`Execution completed successfully: ${id}`), 60_000);
    } finally {
      owner.kill('SIGCONT');
    }
    // Awake again, the stalled run's next write is refused: it abandons the invocation.
    await owner.waitForLine(new RegExp(`Abandoned ${escapeRegExp(id)}: `), 30_000);
    expect(owner.matching(new RegExp(`Execution completed successfully: ${escapeRegExp(id)}`))).toEqual([]);
    await inspectCompleted(id, names);
    // Each step journaled once: the stalled run appended nothing after the takeover.
    const journal = await runApp('inspect', { args: [id] });
    const steps = journal.texts('stdout').filter((l) => /^  Step \d+: /.test(l));
    expect(new Set(steps).size).toBe(steps.length);
    // At most the call in flight at the stall was made twice.
    const calls = receivedOf(names);
    expect(calls.length).toBeLessThanOrEqual(STEPS + 1);
  });
});
