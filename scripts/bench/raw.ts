/**
 * Raw JetStream figures on the bench cluster, the yardstick for ours: plain publishes to
 * an R3 file stream of the bench's own (not one of the engine's), awaited one at a time,
 * pipelined, and fenced on the subject's last sequence like a journal append.
 */
import { AckPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, JetStreamApiError, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { isWrongLastSequence } from '../../packages/core/src/nats/state-store.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Latency, latency, nowMs, pipelined } from './stats.js';

export interface RawOptions {
  /** Sequential publishes (and fenced appends) measured. */
  sequential: number;
  /** Pipelined publishes measured. */
  pipelinedCount: number;
  /** Publishes in flight while pipelining. */
  inFlight: number;
  /** Bytes per message (about a journal entry's). */
  payloadBytes: number;
}

export interface RawFigures {
  publish: Latency;
  fenced: Latency;
  pipelinedRate: number;
  /** The servers' CPU ms per message: publishing one at a time, and pipelined (NaN when unknown). */
  serverCpuPerPublish: number;
  serverCpuPerPipelined: number;
  options: RawOptions;
}

const STREAM = 'BENCH_RAW';

/** `serverCpuMs` reads the servers' CPU time so far, ms (NaN when it cannot). */
export async function rawBaselines(nc: NatsConnection, options: RawOptions, serverCpuMs: () => number): Promise<RawFigures> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  // The meta leader may still be settling right after the cluster starts.
  for (let tries = 1; ; tries++) {
    try {
      await jsm.streams.add({ name: STREAM, subjects: ['bench.raw.>'], storage: StorageType.File, num_replicas: 3 });
      break;
    } catch (err) {
      const transient = err instanceof JetStreamApiError ? err.code === 10008 || err.status === 503 : true;
      if (!transient || tries >= 40) throw err;
      await sleep(250);
    }
  }
  const payload = randomBytes(options.payloadBytes);
  try {
    // Warm-up: connections, JIT, the stream's first blocks.
    await pipelined(500, 16, async () => void (await js.publish('bench.raw.warm', payload)));

    const publishTimes: number[] = [];
    const cpu0 = serverCpuMs();
    for (let i = 0; i < options.sequential; i++) {
      const t0 = nowMs();
      await js.publish('bench.raw.seq', payload);
      publishTimes.push(nowMs() - t0);
    }
    const cpu1 = serverCpuMs();

    const t0 = nowMs();
    await pipelined(options.pipelinedCount, options.inFlight, async () => void (await js.publish('bench.raw.pipe', payload)));
    const pipelinedRate = options.pipelinedCount / ((nowMs() - t0) / 1000);
    const cpu2 = serverCpuMs();

    const fencedTimes: number[] = [];
    // Fenced from the subject's last message, whatever a retried publish left before it.
    let last = (await js.publish('bench.raw.fenced', payload)).seq;
    for (let i = 0; i < options.sequential; i++) {
      const t1 = nowMs();
      try {
        const ack = await js.publish('bench.raw.fenced', payload, { expect: { lastSubjectSequence: last } });
        fencedTimes.push(nowMs() - t1);
        last = ack.seq;
      } catch (err) {
        // A publish the client retried after the server had stored it moved the subject on:
        // fence on where it is now, and do not count this one.
        if (!isWrongLastSequence(err)) throw err;
        last = (await jsm.streams.getMessage(STREAM, { last_by_subj: 'bench.raw.fenced' }))?.seq ?? 0;
        i--;
      }
    }
    return {
      publish: latency(publishTimes),
      fenced: latency(fencedTimes),
      pipelinedRate,
      serverCpuPerPublish: (cpu1 - cpu0) / options.sequential,
      serverCpuPerPipelined: (cpu2 - cpu1) / options.pipelinedCount,
      options,
    };
  } finally {
    await jsm.streams.delete(STREAM).catch(() => undefined);
  }
}

/** Options of {@link operationCosts}. */
export interface OperationOptions {
  /** Operations of each kind measured. */
  count: number;
  /** Operations in flight, as many as the engine's invocations in the throughput run. */
  inFlight: number;
  payloadBytes: number;
  /** The numbers of consumers the work queue is measured with, each taking its share of the subjects (as partitions do). */
  consumers: readonly number[];
  /** The numbers of consumers the same path is measured with on a stream that keeps its messages (limits retention) instead of a work queue. */
  limitsConsumers: readonly number[];
}

/**
 * The servers' CPU per operation, with `inFlight` of each at once and the servers' idle
 * CPU taken out, ms: what the servers spend on each of the operations one invocation
 * makes, done by a bare client with nothing else to do.
 */
export interface OperationCosts {
  options: OperationOptions;
  /** A publish to an R3 file stream (an index entry's). */
  publish: number;
  /** A publish fenced on its subject having no message yet (a state's create). */
  create: number;
  /**
   * A publish to an R3 work-queue stream, its delivery to a pull consumer waiting for it
   * (its state on 3 replicas in memory, as the partitions' consumers keep theirs) and its
   * acknowledgement (a command's path), by how many consumers share the stream.
   */
  queued: { consumers: number; ms: number }[];
  /**
   * The same on a stream of limits retention, the consumers' state kept as above, and each
   * consumer's acknowledged messages purged once a second (up to its ack floor): the
   * engine's command stream, without the work queue's removal of each message on its ack.
   */
  queuedOnLimits: { consumers: number; ms: number }[];
}

const OPS_STREAM = 'BENCH_OPS';
const OPS_QUEUE = 'BENCH_OPS_QUEUE';

/** How often the acknowledged messages of a stream of limits retention are purged, ms: as the engine's partition owners do. */
const TRIM_MS = 1_000;

/** How long the servers' idle CPU is read before a kind of operation is measured, ms. */
const IDLE_MS = 2_000;

/** Runs and measures operations: the servers' CPU per operation, less what they spend idle as things stand now. */
type Measure = (n: number, run: () => Promise<unknown>) => Promise<number>;

/** `serverCpuMs` as for {@link rawBaselines}. */
export async function operationCosts(nc: NatsConnection, options: OperationOptions, serverCpuMs: () => number): Promise<OperationCosts> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const { count, inFlight } = options;
  const payload = randomBytes(options.payloadBytes);
  // The idle CPU is read anew once each measurement's streams and consumers exist: their heartbeats are idle work.
  const measuring = async (): Promise<Measure> => {
    const idleFrom = serverCpuMs();
    const idleStart = nowMs();
    await sleep(IDLE_MS);
    const idlePerMs = (serverCpuMs() - idleFrom) / (nowMs() - idleStart);
    return async (n, run) => {
      const cpu0 = serverCpuMs();
      const t0 = nowMs();
      await run();
      return (serverCpuMs() - cpu0 - idlePerMs * (nowMs() - t0)) / n;
    };
  };
  await jsm.streams.add({ name: OPS_STREAM, subjects: ['bench.ops.>'], storage: StorageType.File, num_replicas: 3 });
  try {
    await pipelined(500, inFlight, async (i) => void (await js.publish(`bench.ops.warm.${i}`, payload, { expect: { lastSubjectSequence: 0 } })));
    const measure = await measuring();
    const publish = await measure(count, () => pipelined(count, inFlight, async () => void (await js.publish('bench.ops.publish', payload))));
    const create = await measure(count, () => pipelined(count, inFlight, async (i) => void (await js.publish(`bench.ops.create.${i}`, payload, { expect: { lastSubjectSequence: 0 } }))));
    const queued: OperationCosts['queued'] = [];
    for (const consumers of options.consumers) queued.push({ consumers, ms: await queuedCost(js, jsm, RetentionPolicy.Workqueue, consumers, options, payload, measuring) });
    const queuedOnLimits: OperationCosts['queuedOnLimits'] = [];
    for (const consumers of options.limitsConsumers) queuedOnLimits.push({ consumers, ms: await queuedCost(js, jsm, RetentionPolicy.Limits, consumers, options, payload, measuring) });
    return { options, publish, create, queued, queuedOnLimits };
  } finally {
    await jsm.streams.delete(OPS_STREAM).catch(() => undefined);
  }
}

/**
 * The servers' CPU per message through a stream of the given retention (the engine's
 * commands: a work queue) shared by `consumers` consumers: workers publish a message each
 * and wait for its delivery, as a client's command waits for its processor; every delivery
 * is acknowledged.
 */
async function queuedCost(
  js: JetStreamClient,
  jsm: JetStreamManager,
  retention: RetentionPolicy,
  consumers: number,
  options: OperationOptions,
  payload: Uint8Array,
  measuring: () => Promise<Measure>,
): Promise<number> {
  await jsm.streams.add({ name: OPS_QUEUE, subjects: ['bench.queue.>'], retention, storage: StorageType.File, num_replicas: 3 });
  const delivered = new Map<string, () => void>();
  const pulls: ConsumerMessages[] = [];
  const trims: NodeJS.Timeout[] = [];
  // A consumer that fails (its iterator, or the last acknowledgement awaited) fails the measurement.
  let fail: (err: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  try {
    for (let c = 0; c < consumers; c++) {
      await jsm.consumers.add(OPS_QUEUE, { durable_name: `bench-ops-${c}`, ack_policy: AckPolicy.Explicit, mem_storage: true, max_ack_pending: 1_000, filter_subject: `bench.queue.${c}.>` });
      const messages = await (await js.consumers.get(OPS_QUEUE, `bench-ops-${c}`)).consume({ max_messages: 256 });
      pulls.push(messages);
      void (async () => {
        for await (const m of messages) {
          // The last message's acknowledgement is awaited: the consumer has taken those before it then.
          if (m.subject.endsWith('.last')) await m.ackAck();
          else m.ack();
          delivered.get(m.subject)?.();
        }
      })().catch(fail);
      if (retention === RetentionPolicy.Limits) trims.push(trimEachSecond(jsm, OPS_QUEUE, `bench-ops-${c}`, `bench.queue.${c}.>`, fail));
    }
    const arrival = (subject: string): Promise<void> => Promise.race([new Promise<void>((resolve) => delivered.set(subject, resolve)), failed]);
    const round = (n: number, tag: string) =>
      pipelined(n, options.inFlight, async (i) => {
        const subject = `bench.queue.${i % consumers}.${tag}${i}`;
        const arrived = arrival(subject);
        await js.publish(subject, payload);
        await arrived;
        delivered.delete(subject);
      });
    await round(500, 'warm');
    const measure = await measuring();
    return await measure(options.count + consumers, async () => {
      await round(options.count, 'measured');
      await Promise.all(
        Array.from({ length: consumers }, async (_, c) => {
          const arrived = arrival(`bench.queue.${c}.last`);
          await js.publish(`bench.queue.${c}.last`, payload);
          await arrived;
        }),
      );
    });
  } finally {
    for (const trim of trims) clearInterval(trim);
    for (const messages of pulls) messages.stop();
    await jsm.streams.delete(OPS_QUEUE).catch(() => undefined);
  }
}

/** Purges a consumer's acknowledged messages of a stream once a second, up to its ack floor, as the engine's partition owners do; a failure fails the measurement. */
export function trimEachSecond(jsm: JetStreamManager, stream: string, consumer: string, filter: string, fail: (err: unknown) => void): NodeJS.Timeout {
  let trimming = false;
  return setInterval(() => {
    if (trimming) return;
    trimming = true;
    void (async () => {
      const floor = (await jsm.consumers.info(stream, consumer)).ack_floor.stream_seq;
      if (floor > 0) await jsm.streams.purge(stream, { filter, seq: floor + 1 });
    })()
      .catch(fail)
      .finally(() => (trimming = false));
  }, TRIM_MS);
}
