/**
 * Our figures: hello_workflow and custom_workflow run by a processor in another process,
 * submitted and awaited by a DurableClient in this one; durable writes counted from the
 * streams' last sequences before and after.
 */
import { type JetStreamManager } from '@nats-io/jetstream';
import { KvWatchInclude, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeState, DurableClient, type EngineNames, type ExecutionState } from '../../packages/core/src/index.js';
import { type MessageCounts, messagesBetween } from './connz.js';
import { type CpuSnapshot, cpuBetween } from './cpu.js';
import { type Latency, latency, mean, median, nowMs, pipelined } from './stats.js';

const WAIT_MS = 120_000;

/** Last sequences of the engine's streams: every durable write takes one. */
export interface WriteCounts {
  commands: number;
  state: number;
  journal: number;
  /** Execution index entries (written in the background; purges not counted). */
  index: number;
}

export async function writeCounts(jsm: JetStreamManager, names: EngineNames): Promise<WriteCounts> {
  const [commands, state, journal, index] = await Promise.all(
    [names.commandsStream, `KV_${names.stateBucket}`, names.journalStream, names.indexStream].map(async (s) => (await jsm.streams.info(s)).state.last_seq),
  );
  return { commands: commands as number, state: state as number, journal: journal as number, index: index as number };
}

export function writesBetween(before: WriteCounts, after: WriteCounts): WriteCounts {
  return {
    commands: after.commands - before.commands,
    state: after.state - before.state,
    journal: after.journal - before.journal,
    index: after.index - before.index,
  };
}

export function totalWrites(w: WriteCounts): number {
  return w.commands + w.state + w.journal + w.index;
}

/** What is read before and after a measured run: CPU of the processes, NATS messages of the connections. */
export interface Probe {
  cpu: CpuSnapshot;
  messages: Map<string, MessageCounts>;
}

/** Submits and waits; throws unless the invocation completed. */
export async function runOne(client: DurableClient, handler: string, input: unknown, partitionKey: string): Promise<{ state: ExecutionState; ackedAt: number; submitMs: number }> {
  const t0 = nowMs();
  let ackedAt = 0;
  let submitMs = 0;
  const onSubmitted = (): void => {
    ackedAt = Date.now();
    submitMs = nowMs() - t0;
  };
  const { state, invocationId } = await client.submitAndWait(handler, input, { partitionKey, timeoutMs: WAIT_MS, onSubmitted });
  if (state.status !== 'completed') throw new Error(`${handler} ${invocationId} ended ${state.status}: ${state.error}`);
  return { state, ackedAt, submitMs };
}

/** One phase of an invocation: mean and median over the runs, ms. */
export interface Phase {
  mean: number;
  median: number;
}

/** Where one-at-a-time hello_workflow time goes. */
export interface Breakdown {
  /** Client publish of the command until its ack. */
  submit: Phase;
  /** Ack until the processor has taken the command up: its delivery and the look-up of its state. */
  pickup: Phase;
  /** Until the step's outcome is known: the gRPC call (after a state create, for a run that writes one first). */
  createAndCall: Phase;
  /** Until the invocation ended: building the final state, which carries the step's outcome. */
  append: Phase;
  /** Until the client has the result: the final state write, the announcement, its delivery. */
  finish: Phase;
  /** How many invocations the means are over. */
  count: number;
}

export interface LatencyFigures {
  latency: Latency;
  /** Runs before the measured ones, one at a time, not measured. */
  warmup: number;
  /** Runs before those, `inFlight` at a time, not measured: they warm the processor (V8 compiles its hot path). */
  warmupInFlight: { n: number; inFlight: number };
  breakdown: Breakdown;
  /** CPU ms of each process group over the measured runs. */
  cpu: Map<string, number | undefined>;
  /** NATS messages per invocation of each named connection. */
  messages: Map<string, MessageCounts>;
  seconds: number;
}

/**
 * hello_workflow one at a time, on a warm processor: `warmupInFlight.n` unmeasured runs
 * `warmupInFlight.inFlight` at a time (a processor just started spends up to twice the CPU
 * per invocation over its first thousands, and takes longer over each), `warmup` unmeasured
 * one at a time, then `n` measured. `watchNc`, a
 * connection of its own (not counted with the client's messages), watches the state
 * bucket for the time each invocation was taken up: its first revision, which the bucket
 * (history 1) does not keep.
 */
export async function helloLatency(
  nc: NatsConnection,
  watchNc: NatsConnection,
  client: DurableClient,
  probe: () => Promise<Probe>,
  warmupInFlight: { n: number; inFlight: number },
  warmup: number,
  n: number,
): Promise<LatencyFigures> {
  await pipelined(warmupInFlight.n, warmupInFlight.inFlight, async (_i, worker) => void (await runOne(client, 'hello_workflow', { name: 'bench' }, `k${worker}`)));
  for (let i = 0; i < warmup; i++) await runOne(client, 'hello_workflow', { name: 'bench' }, 'latency');
  const samples: number[] = [];
  const runs: { state: ExecutionState; ackedAt: number; submitMs: number; resultAt: number }[] = [];
  const takenAt = new Map<string, number>();
  const watch = await (await new Kvm(watchNc).open(client.names.stateBucket)).watch({ include: KvWatchInclude.UpdatesOnly });
  const watching = (async () => {
    for await (const e of watch) {
      if (e.operation === 'PUT' && !takenAt.has(e.key)) takenAt.set(e.key, Number(decodeState(e.value, e.key).updatedAtMs));
    }
  })();
  const before = await probe();
  const started = nowMs();
  for (let i = 0; i < n; i++) {
    const t0 = nowMs();
    const run = await runOne(client, 'hello_workflow', { name: 'bench' }, 'latency');
    samples.push(nowMs() - t0);
    runs.push({ ...run, resultAt: Date.now() });
  }
  const seconds = (nowMs() - started) / 1000;
  const after = await probe();
  watch.stop();
  await watching;
  return {
    latency: latency(samples),
    warmup,
    warmupInFlight,
    breakdown: breakdown(takenAt, runs),
    cpu: cpuBetween(before.cpu, after.cpu),
    messages: messagesBetween(before.messages, after.messages, n),
    seconds,
  };
}

/**
 * Phases from the timestamps the engine records (ms clock, same machine): the state's
 * first revision (seen by a watch) carries the time the processor took the invocation up,
 * the journal entry when the call returned, the final state when the invocation ended.
 */
function breakdown(takenAt: ReadonlyMap<string, number>, runs: { state: ExecutionState; ackedAt: number; submitMs: number; resultAt: number }[]): Breakdown {
  const parts = runs.flatMap((r) => {
    // A first delivery writes no state before the call: its status history says when it was taken up.
    const running = r.state.statusHistory.find((change) => change.status === 'running');
    const taken = running ? Number(running.atMs) : takenAt.get(r.state.invocationId);
    const step = r.state.journal[0];
    if (taken === undefined || step === undefined) return [];
    const recorded = Number(step.recordedAtMs);
    const ended = Number(r.state.endedAtMs);
    return [{ submit: r.submitMs, pickup: taken - r.ackedAt, createAndCall: recorded - taken, append: ended - recorded, finish: r.resultAt - ended }];
  });
  const phase = (pick: (p: (typeof parts)[number]) => number): Phase => ({ mean: mean(parts.map(pick)), median: median(parts.map(pick)) });
  return {
    submit: phase((p) => p.submit),
    pickup: phase((p) => p.pickup),
    createAndCall: phase((p) => p.createAndCall),
    append: phase((p) => p.append),
    finish: phase((p) => p.finish),
    count: parts.length,
  };
}

export interface ThroughputFigures {
  perSecond: number;
  invocations: number;
  /** Unmeasured before. */
  warmup: number;
  inFlight: number;
  /** Invoke-to-result latency under that load. */
  latency: Latency;
  /** Durable writes over the run, per invocation. */
  writes: WriteCounts;
  /** CPU ms of each process group over the measured runs. */
  cpu: Map<string, number | undefined>;
  /** NATS messages per invocation of each named connection. */
  messages: Map<string, MessageCounts>;
  seconds: number;
}

/**
 * hello_workflow with `inFlight` outstanding, each slot on its own partition key, after
 * `warmup` unmeasured: a processor just started spends up to twice the CPU per invocation
 * over its first thousands (V8 compiles the hot path as it runs), which is not what a
 * processor that has run for a while costs.
 */
export async function helloThroughput(
  jsm: JetStreamManager,
  client: DurableClient,
  probe: () => Promise<Probe>,
  n: number,
  inFlight: number,
  warmup: number,
): Promise<ThroughputFigures> {
  const task = async (_i: number, worker: number) => void (await runOne(client, 'hello_workflow', { name: 'bench' }, `k${worker}`));
  await pipelined(warmup, inFlight, task);
  const before = await writeCounts(jsm, client.names);
  const probed = await probe();
  const t0 = nowMs();
  const samples = await pipelined(n, inFlight, task);
  const seconds = (nowMs() - t0) / 1000;
  const after = await probe();
  const delta = writesBetween(before, await writeCounts(jsm, client.names));
  return {
    perSecond: n / seconds,
    invocations: n,
    warmup,
    inFlight,
    latency: latency(samples),
    writes: { commands: delta.commands / n, state: delta.state / n, journal: delta.journal / n, index: delta.index / n },
    cpu: cpuBetween(probed.cpu, after.cpu),
    messages: messagesBetween(probed.messages, after.messages, n),
    seconds,
  };
}

export interface StepsFigures {
  names: number;
  steps: number;
  /**
   * ms per SayHello step from the journal's timestamps (first to last SayHello entry, so
   * the cheaper NOW step and the invocation's fixed costs are left out).
   */
  msPerStep: number;
  /** The same over the first and the last `window` SayHello steps of the (last) run, when it has 2 windows' worth. */
  firstWindow?: number;
  lastWindow?: number;
  window: number;
  /** Submit to result, ms. */
  endToEndMs: number;
  /** Durable writes of one invocation. */
  writes: WriteCounts;
  runs: number;
}

/**
 * custom_workflow with `names` names (that many SayHello steps and one NOW step), `runs`
 * times one after another after one unmeasured run; medians.
 */
export async function stepsRun(jsm: JetStreamManager, client: DurableClient, names: number, runs: number, window = 100): Promise<StepsFigures> {
  const input = { names: Array.from({ length: names }, (_, i) => `n${i}`) };
  await runOne(client, 'custom_workflow', input, 'steps');
  const perStep: number[] = [];
  const endToEnd: number[] = [];
  let writes: WriteCounts | undefined;
  let steps = 0;
  let firstWindow: number | undefined;
  let lastWindow: number | undefined;
  for (let r = 0; r < runs; r++) {
    const before = await writeCounts(jsm, client.names);
    const t0 = nowMs();
    const { state } = await runOne(client, 'custom_workflow', input, 'steps');
    endToEnd.push(nowMs() - t0);
    writes = writesBetween(before, await writeCounts(jsm, client.names));
    const journal = state.journal.length === state.journalLength ? state.journal : await client.getJournal(state.invocationId);
    steps = journal.length;
    const calls = [...journal].sort((a, b) => a.stepNumber - b.stepNumber).filter((e) => e.stepType === 'HelloService.SayHello');
    if (calls.length !== names) throw new Error(`custom_workflow with ${names} names journaled ${calls.length} SayHello steps`);
    const span = (from: number, to: number) => Number((calls[to] as (typeof calls)[number]).recordedAtMs - (calls[from] as (typeof calls)[number]).recordedAtMs) / (to - from);
    perStep.push(span(0, calls.length - 1));
    if (calls.length >= 2 * window + 1) {
      firstWindow = span(0, window);
      lastWindow = span(calls.length - 1 - window, calls.length - 1);
    }
  }
  return {
    names,
    steps,
    msPerStep: median(perStep),
    ...(firstWindow !== undefined ? { firstWindow } : {}),
    ...(lastWindow !== undefined ? { lastWindow } : {}),
    window,
    endToEndMs: median(endToEnd),
    writes: writes as WriteCounts,
    runs,
  };
}
