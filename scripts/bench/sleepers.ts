/**
 * Many concurrent durable sleeps: what they cost while they wait, and how close to their
 * due time they wake. The sleep is made long enough for all of them to fall asleep before
 * the first wakes, from the throughput the bench measured before; a run that still falls
 * short (the machine slowed down) is measured as far as it got, not abandoned.
 */
import { fromBinary } from '@bufbuild/protobuf';
import type { NatsConnection } from '@nats-io/transport-node';
import type { DurableClient } from '../../packages/core/src/index.js';
import { CommandKind, CommandSchema } from '../../packages/core/src/gen/durable/durable_pb.js';
import { type CpuSnapshot, cpuBetween } from './cpu.js';
import { type Latency, latency, nowMs, pipelined } from './stats.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** Invocations per second assumed when the bench has no throughput figure. */
const FALLBACK_PER_SECOND = 100;
/**
 * Falling asleep is taken to run at this share of hello_workflow's throughput. Bench runs
 * have measured 0.7 to 3 times (no gRPC call and no final write, but 10,000 commands queued
 * and the bench's watch of every state); when it is slower still, fewer are asleep at once,
 * and the row says so.
 */
const ASLEEP_SHARE_OF_THROUGHPUT = 0.6;
/** The sleepers are due one after the other over this long (the performance issue's "due within 10 s of each other"), ms. */
export const DUE_SPREAD_MS = 10_000;
/** Partition keys the sleepers are spread over: each key's wake-ups run one at a time. */
export const SLEEPER_KEYS = 1_000;
/** Slack between all asleep plus the CPU window and the first due time, ms. */
const SLACK_MS = 5_000;
/** Least time the bench waits for the last wake-ups once the last sleep has passed, ms. */
const WAKE_WAIT_MS = 60_000;

/** How many sleep, how long, and how long the bench waits for them. */
export interface NapPlan {
  n: number;
  sleepMs: number;
  /** CPU is measured over this window while all sleep. */
  windowMs: number;
  /** How long after the last one fell asleep and its sleep passed the bench still waits for the rest, ms. */
  wakeWaitMs: number;
}

export interface SleepersFigures {
  /** Invocations submitted. */
  count: number;
  sleepMs: number;
  /** From the first submit until every one was suspended, s; NaN when not all were before the first could be due. */
  allAsleepSeconds: number;
  /** How many slept (suspended and not yet ended) when the CPU window began. */
  asleepAtOnce: number;
  /** CPU ms per second of each process group over the window. */
  cpuPerSecond: Map<string, number | undefined>;
  windowSeconds: number;
  /** Invocations completed by the end of the wait. */
  completed: number;
  /** Invocations that ended failed or cancelled. */
  failed: number;
  /** The first failure's description, '' when none failed. */
  firstFailure: string;
  /** How long after its due time each sleep ended, ms (a journaled `now` after it), of those completed. */
  lateness: Latency;
  latenessMaxMs: number;
  /** How long after its due time each timer fired (its resume command was published), ms. */
  firing: Latency;
  firingMaxMs: number;
}

/**
 * A plan for `n` sleepers that fall asleep at about `perSecond`: all asleep, then a CPU
 * window of `windowMs`, before the first wakes; and time for their wake-ups to run at that
 * rate after the last is due.
 */
export function napPlan(n: number, perSecond: number, windowMs: number, minSleepMs: number): NapPlan {
  const rate = Number.isFinite(perSecond) && perSecond > 0 ? perSecond : FALLBACK_PER_SECOND;
  const ms = (n / (rate * ASLEEP_SHARE_OF_THROUGHPUT)) * 1_000 + windowMs + SLACK_MS;
  return {
    n,
    sleepMs: Math.max(minSleepMs, Math.ceil(ms / 1_000) * 1_000),
    windowMs,
    wakeWaitMs: Math.max(WAKE_WAIT_MS, Math.ceil((n / rate) * 1_000)),
  };
}

/**
 * Starts the plan's nap invocations, measures CPU over its window once all sleep (or, at
 * the latest, just before the first can be due), then waits for all to end. Throws only
 * when they could not be submitted.
 */
export async function sleepers(nc: NatsConnection, client: DurableClient, cpu: () => CpuSnapshot, plan: NapPlan): Promise<SleepersFigures> {
  const { n, sleepMs, windowMs, wakeWaitMs } = plan;
  const asleep = new Set<string>();
  let lastAsleepAt = nowMs();
  const ended = new Set<string>();
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
    if (state.status === 'suspended' && !asleep.has(state.invocationId)) {
      asleep.add(state.invocationId);
      lastAsleepAt = nowMs();
    }
    // A watcher that fell behind may have missed the suspension (the bucket keeps one revision).
    if (state.status === 'completed') asleep.add(state.invocationId);
    if (state.status === 'completed' && !ended.has(state.invocationId)) {
      const output = JSON.parse(new TextDecoder().decode(state.currentState)) as { dueAtMs: number; lateMs: number };
      late.set(state.invocationId, output.lateMs);
      due.set(state.invocationId, output.dueAtMs);
    }
    if ((state.status === 'failed' || state.status === 'cancelled') && !ended.has(state.invocationId)) {
      failures.push(`nap ${state.invocationId} ended ${state.status}: ${state.error}`);
    }
    if (state.status === 'completed' || state.status === 'failed' || state.status === 'cancelled') ended.add(state.invocationId);
    wake();
  }, watching.signal);
  /** Waits until `check` holds or `deadline()` (re-read as things move) has passed; says which. */
  const until = async (check: () => boolean, deadline: () => number): Promise<boolean> => {
    while (!check()) {
      if (nowMs() > deadline()) return false;
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(1_000)]);
    }
    return true;
  };
  try {
    const t0 = nowMs();
    // Due from t0 + sleepMs on, evenly over DUE_SPREAD_MS, whenever each was submitted.
    const untilMs = (i: number) => Date.now() - nowMs() + t0 + sleepMs + Math.floor((i * DUE_SPREAD_MS) / n);
    await pipelined(n, 256, async (i) => void (await client.submit('nap', { untilMs: untilMs(i) }, { partitionKey: `nap${i % SLEEPER_KEYS}` })));
    // None can be due before t0 + sleepMs: the window fits before that.
    const allAsleep = await until(
      () => asleep.size >= n,
      () => t0 + sleepMs - windowMs - 1_000,
    );
    const allAsleepSeconds = allAsleep ? (nowMs() - t0) / 1000 : Number.NaN;
    const asleepAtOnce = asleep.size - [...asleep].filter((id) => ended.has(id)).length;
    const before = cpu();
    const w0 = nowMs();
    await sleep(windowMs);
    const windowSeconds = (nowMs() - w0) / 1000;
    const used = cpuBetween(before, cpu());
    await until(
      () => ended.size >= n,
      () => lastAsleepAt + sleepMs + DUE_SPREAD_MS + wakeWaitMs,
    );
    const firings = [...due].flatMap(([id, dueAt]) => {
      const at = resumedAt.get(id);
      return at === undefined ? [] : [at - dueAt];
    });
    return {
      count: n,
      sleepMs,
      allAsleepSeconds,
      asleepAtOnce,
      cpuPerSecond: new Map([...used].map(([group, msUsed]) => [group, msUsed === undefined ? undefined : msUsed / windowSeconds])),
      windowSeconds,
      completed: late.size,
      failed: failures.length,
      firstFailure: failures[0] ?? '',
      lateness: latency([...late.values()]),
      latenessMaxMs: late.size > 0 ? Math.max(...late.values()) : Number.NaN,
      firing: latency(firings),
      firingMaxMs: firings.length > 0 ? Math.max(...firings) : Number.NaN,
    };
  } finally {
    resumes.unsubscribe();
    watching.abort();
    await watch.catch(() => undefined);
  }
}
