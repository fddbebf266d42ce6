/**
 * Raw JetStream figures on the bench cluster, the yardstick for ours: plain publishes to
 * an R3 file stream of the bench's own (not one of the engine's), awaited one at a time,
 * pipelined, and fenced on the subject's last sequence like a journal append.
 */
import { JetStreamApiError, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
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
