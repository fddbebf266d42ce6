/**
 * Many concurrent durable sleeps: what they cost while they wait, and how close to their
 * due time they wake.
 */
import { fromBinary } from '@bufbuild/protobuf';
import type { NatsConnection } from '@nats-io/transport-node';
import type { DurableClient } from '../../packages/core/src/index.js';
import { CommandKind, CommandSchema } from '../../packages/core/src/gen/durable/durable_pb.js';
import { type CpuSnapshot, cpuBetween } from './cpu.js';
import { type Latency, latency, nowMs, pipelined } from './stats.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SleepersFigures {
  count: number;
  sleepMs: number;
  /** From the first submit until every one was suspended, s. */
  allAsleepSeconds: number;
  /** CPU ms per second of each process group while all of them slept. */
  cpuPerSecond: Map<string, number | undefined>;
  windowSeconds: number;
  /** How long after its due time each sleep ended, ms (a journaled `now` after it). */
  lateness: Latency;
  latenessMaxMs: number;
  /** How long after its due time each timer fired (its resume command was published), ms. */
  firing: Latency;
  firingMaxMs: number;
}

/** Starts `n` nap invocations sleeping `sleepMs`, measures CPU for `windowMs` while all sleep, then waits for all. */
export async function sleepers(
  nc: NatsConnection,
  client: DurableClient,
  cpu: () => CpuSnapshot,
  n: number,
  sleepMs: number,
  windowMs: number,
): Promise<SleepersFigures> {
  const asleep = new Set<string>();
  const late = new Map<string, number>();
  const due = new Map<string, number>();
  // Resume commands are JetStream publishes, seen by a plain subscriber as they are stored.
  const resumedAt = new Map<string, number>();
  const resumes = nc.subscribe(`${client.names.commandsSubject}.>`, {
    callback: (_err, msg) => {
      const command = fromBinary(CommandSchema, msg.data);
      if (command.kind === CommandKind.RESUME && !resumedAt.has(command.invocationId)) resumedAt.set(command.invocationId, Date.now());
    },
  });
  const failures: string[] = [];
  let wake: () => void = () => undefined;
  const watching = new AbortController();
  const watch = client.watch((state) => {
    if (state.handler !== 'nap') return;
    if (state.status === 'suspended') asleep.add(state.invocationId);
    if (state.status === 'completed') {
      const output = JSON.parse(new TextDecoder().decode(state.currentState)) as { dueAtMs: number; lateMs: number };
      late.set(state.invocationId, output.lateMs);
      due.set(state.invocationId, output.dueAtMs);
    }
    if (state.status === 'failed' || state.status === 'cancelled') failures.push(`nap ${state.invocationId} ended ${state.status}: ${state.error}`);
    wake();
  }, watching.signal);
  const until = async (what: string, check: () => boolean, timeoutMs: number): Promise<void> => {
    const deadline = nowMs() + timeoutMs;
    while (!check()) {
      if (failures.length > 0) throw new Error(`sleepers: ${failures[0]}`);
      if (nowMs() > deadline) throw new Error(`sleepers: ${what} not reached within ${timeoutMs / 1000} s`);
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(1_000)]);
    }
  };
  try {
    const t0 = nowMs();
    await pipelined(n, 256, async (i) => void (await client.submit('nap', { ms: sleepMs }, { partitionKey: `nap${i % 64}` })));
    await until(`all ${n} asleep`, () => asleep.size >= n, sleepMs);
    const allAsleepSeconds = (nowMs() - t0) / 1000;
    const before = cpu();
    const w0 = nowMs();
    await sleep(windowMs);
    const windowSeconds = (nowMs() - w0) / 1000;
    const used = cpuBetween(before, cpu());
    await until(`all ${n} awake and completed`, () => late.size >= n, sleepMs + 120_000);
    const firings = [...due].flatMap(([id, dueAt]) => {
      const at = resumedAt.get(id);
      return at === undefined ? [] : [at - dueAt];
    });
    return {
      count: n,
      sleepMs,
      allAsleepSeconds,
      cpuPerSecond: new Map([...used].map(([group, msUsed]) => [group, msUsed === undefined ? undefined : msUsed / windowSeconds])),
      windowSeconds,
      lateness: latency([...late.values()]),
      latenessMaxMs: Math.max(...late.values()),
      firing: latency(firings),
      firingMaxMs: Math.max(...firings),
    };
  } finally {
    resumes.unsubscribe();
    watching.abort();
    await watch.catch(() => undefined);
  }
}
