/**
 * hello_workflow throughput as processors are added to one cluster. The processors are
 * separate processes (bin/processor, as the bench starts the first) that share the command
 * partitions among themselves (packages/core/src/processor/membership.ts). A count is
 * measured once every processor has a live record in the PROCESSORS bucket and each one
 * that owns partitions by the members' common assignment has run invocations: no
 * partition is still on its way to its owner.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DurableClient } from '../../packages/core/src/index.js';
import { EXPIRY_MS, assignment } from '../../packages/core/src/processor/membership.js';
import { type CpuSnapshot, type IdleCpu, idleCpu } from './cpu.js';
import { type Probe, type ThroughputFigures, helloThroughput, runOne } from './engine.js';
import { sentByProcessor } from './connz.js';
import type { App } from './processes.js';
import { count, nowMs, pipelined } from './stats.js';

/** Messages a processor sends for one hello_workflow at least (the read, the final write, the index entry, the purge's schedule, the ack), and idle at most a second. */
const MESSAGES_PER_RUN = 5;
const IDLE_MESSAGES_PER_S = 60;
/** How long the processors of a count get to join and share the partitions, ms. */
const SHARE_WAIT_MS = 30_000;
/** How long the processors that stay get to see the others gone, ms. */
const LEAVE_WAIT_MS = 15_000;

/** One count's figures. */
export interface ScalingFigures {
  processors: number;
  throughput: ThroughputFigures;
  idle: IdleCpu;
  /** Partitions each processor owns by the members' common assignment, in start order. */
  partitions: number[];
  /** Processors owning partitions that ran invocations in the round before the measurement (all of them, unless the wait ran out). */
  sharedBy: number;
  /** Processors owning partitions. */
  owning: number;
}

export interface ScalingOptions {
  /** Processor counts to measure beyond the first, each more than the one before. */
  counts: readonly number[];
  /** The one processor already running; it keeps running after. */
  running: App;
  /** Its figures, measured before (or why they could not be): the first count's. */
  first: { throughput: ThroughputFigures; idle: IdleCpu } | Error;
  /** Starts the `index`th processor (1-based). */
  start(index: number): App;
  jsm: JetStreamManager;
  client: DurableClient;
  /** A connection of its own, watching which processor runs each invocation. */
  watchNc: NatsConnection;
  /** The cluster's monitoring URLs (`/connz` tells which processor sent what). */
  monitors: readonly string[];
  /** CPU of the bench's processes with these processors, for the idle measurement. */
  cpu(processors: readonly App[]): () => CpuSnapshot;
  /** CPU and NATS messages with these processors, for the throughput run. */
  probe(processors: readonly App[]): () => Promise<Probe>;
  n: number;
  inFlight: number;
  /** Unmeasured invocations per processor before each count's run: the processors just started warm up. */
  warmupPerProcessor: number;
  idleMs: number;
  progress(message: string): void;
}

/** Each count's figures, the first's included, or why it could not be measured; the processors started are stopped after. */
export async function scalingRun(o: ScalingOptions): Promise<{ processors: number; figures: ScalingFigures | Error }[]> {
  const kv = await new Kvm(o.watchNc).open(o.client.names.processorsBucket);
  const partitions = await partitionCount(o.jsm, o.client);
  const processors = [o.running];
  const results: { processors: number; figures: ScalingFigures | Error }[] = [
    { processors: 1, figures: o.first instanceof Error ? o.first : { processors: 1, ...o.first, partitions: [partitions], sharedBy: 1, owning: 1 } },
  ];
  try {
    for (const target of o.counts) {
      try {
        while (processors.length < target) processors.push(o.start(processors.length + 1));
        o.progress(`${target} processors: waiting until all have joined and run their share of the partitions`);
        const share = await shared(kv, processors, partitions, () => runnersOfOneRound(o));
        const idle = await idleCpu(o.cpu(processors), o.idleMs);
        o.progress(`hello_workflow with ${o.inFlight} in flight on ${target} processors: ${count(o.warmupPerProcessor * target)} unmeasured, then ${count(o.n)}`);
        const throughput = await helloThroughput(o.jsm, o.client, o.probe(processors), o.n, o.inFlight, o.warmupPerProcessor * target);
        results.push({ processors: target, figures: { processors: target, throughput, idle, ...share } });
      } catch (err) {
        o.progress(`${target} processors: ${err instanceof Error ? err.message : String(err)}`);
        results.push({ processors: target, figures: err instanceof Error ? err : new Error(String(err)) });
      }
    }
  } finally {
    await Promise.all(processors.slice(1).map((p) => p.stop()));
    // Their records are deleted as they leave: the one that stays takes the partitions back.
    const deadline = nowMs() + LEAVE_WAIT_MS;
    while ((await liveMembers(kv).catch(() => [])).length > 1 && nowMs() < deadline) await sleep(200);
  }
  return results;
}

/** The command stream's partitions: one durable consumer each. */
async function partitionCount(jsm: JetStreamManager, client: DurableClient): Promise<number> {
  let partitions = 0;
  for await (const c of jsm.consumers.list(client.names.commandsStream)) if (/-p\d+$/.test(c.name)) partitions++;
  return partitions;
}

/** Processor IDs whose record in PROCESSORS is live (renewed within the membership's expiry). */
async function liveMembers(kv: KV): Promise<string[]> {
  const live: string[] = [];
  for await (const key of await kv.keys()) {
    const entry = await kv.get(key);
    if (entry?.operation === 'PUT' && Date.now() - entry.created.getTime() < EXPIRY_MS) live.push(key);
  }
  return live.sort();
}

/** The pid in a processor ID (`<host>-<pid>-<random hex>`). */
function pidOf(processorId: string): number {
  return Number(/-(\d+)-[0-9a-f]+$/.exec(processorId)?.[1] ?? Number.NaN);
}

/**
 * Waits until the PROCESSORS bucket holds a live record of every processor started (and
 * no other), then runs rounds of invocations until each processor that owns partitions
 * has run some: the partitions have reached their owners.
 */
async function shared(
  kv: KV,
  processors: readonly App[],
  partitions: number,
  round: () => Promise<Map<string, number>>,
): Promise<Pick<ScalingFigures, 'partitions' | 'sharedBy' | 'owning'>> {
  const deadline = nowMs() + SHARE_WAIT_MS;
  let members: string[];
  for (;;) {
    for (const p of processors) {
      const reason = p.exitReason();
      if (reason !== '') throw new Error(`${p.name} ${reason}; its log (${p.logFile}):\n${p.logTail()}`);
    }
    members = await liveMembers(kv);
    const pids = new Set(members.map(pidOf));
    if (members.length === processors.length && processors.every((p) => pids.has(p.pid))) break;
    if (nowMs() > deadline) {
      throw new Error(`PROCESSORS holds ${members.length} live records (${members.join(', ')}) after ${SHARE_WAIT_MS / 1000} s, not one per processor started (pids ${processors.map((p) => p.pid).join(', ')})`);
    }
    await sleep(200);
  }
  const owned = new Map<string, number>();
  for (const o of assignment(members, partitions).values()) owned.set(o, (owned.get(o) ?? 0) + 1);
  const owning = [...owned.keys()];
  let sharedBy = 0;
  do {
    const ran = await round();
    sharedBy = owning.filter((m) => (ran.get(m) ?? 0) > 0).length;
  } while (sharedBy < owning.length && nowMs() < deadline);
  return {
    partitions: processors.map((p) => owned.get(members.find((m) => pidOf(m) === p.pid) ?? '') ?? 0),
    sharedBy,
    owning: owning.length,
  };
}

/**
 * One hello_workflow on each of the throughput run's keys; about how many each processor
 * ran, by processor ID: the messages its connection sent meanwhile, over what a run sends
 * at least (a first run writes no state before it ends, and the ended state names no
 * owner). Idle pulls and heartbeats, a few dozen a second, stay under one run's worth a
 * round.
 */
async function runnersOfOneRound(o: ScalingOptions): Promise<Map<string, number>> {
  const before = await sentByProcessor(o.monitors, o.client.names.processorsSubject);
  const started = nowMs();
  await pipelined(o.inFlight, o.inFlight, async (_i, worker) => void (await runOne(o.client, 'hello_workflow', { name: 'bench' }, `k${worker}`)));
  const idle = (IDLE_MESSAGES_PER_S * (nowMs() - started)) / 1000;
  const after = await sentByProcessor(o.monitors, o.client.names.processorsSubject);
  const ran = new Map<string, number>();
  for (const [id, sent] of after) ran.set(id, Math.floor(Math.max(0, sent - (before.get(id) ?? sent) - idle) / MESSAGES_PER_RUN));
  return ran;
}
