/**
 * Stored records over a run and its retention: a processor with a short retention (in this
 * process, in a namespace of its own) runs hello_workflow invocations; the engine's streams
 * are measured before, at the end of the run, and until every stream is back at its
 * baseline (messages, bytes and subjects), once the retention has passed. The CPU of every
 * process is taken over the run and over the removals after it: what an invocation costs
 * in all once the engine is at a steady state, its removal included.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { DurableClient, engineNames, Processor, silentLogger, type ServiceInvoker } from '../../packages/core/src/index.js';
import { helloWorkflow } from '../../apps/processor/src/workflows/index.js';
import { cpuBetween, type CpuSnapshot } from './cpu.js';
import { nowMs, pipelined } from './stats.js';

const NAMESPACE = 'benchretention';
const WAIT_MS = 120_000;

/** What one stream holds. */
export interface Stored {
  stream: string;
  messages: number;
  bytes: number;
  subjects: number;
}

/** The figures of {@link retentionRun}. */
export interface RetentionFigures {
  invocations: number;
  retentionMs: number;
  baseline: Stored[];
  peak: Stored[];
  after: Stored[];
  /** From the last invocation's end to every stream back at its baseline, ms; NaN if they never got back. */
  backAfterMs: number;
  /** CPU ms of all processes over the run, and from its end until the streams were back at their baseline. */
  cpuMs: { run: number; removal: number };
}

export async function retentionRun(
  nc: NatsConnection,
  services: ServiceInvoker,
  n: number,
  inFlight: number,
  retentionMs: number,
  cpu: () => CpuSnapshot,
): Promise<RetentionFigures> {
  const total = (from: CpuSnapshot, to: CpuSnapshot) => [...cpuBetween(from, to).values()].reduce<number>((sum, ms) => sum + (ms ?? Number.NaN), 0);
  const names = engineNames(NAMESPACE);
  const jsm = await jetstreamManager(nc);
  const processor = await Processor.start({ nc, namespace: NAMESPACE, workflows: [helloWorkflow], services, logger: silentLogger(), retentionMs, maxConcurrent: 256 });
  try {
    const streams = [names.commandsStream, names.journalStream, `KV_${names.stateBucket}`, names.indexStream, `KV_${names.awakeablesBucket}`];
    const stored = () =>
      Promise.all(
        streams.map(async (stream): Promise<Stored> => {
          const { state } = await jsm.streams.info(stream);
          return { stream, messages: state.messages, bytes: state.bytes, subjects: state.num_subjects ?? 0 };
        }),
      );
    const baseline = await stored();
    const client = await DurableClient.connect({ nc, namespace: NAMESPACE });
    const started = cpu();
    // Each slot on a key of its own: one key's commands (its purges too) run one after another.
    await pipelined(n, inFlight, async (i, worker) => {
      const { invocationId } = await client.submit(helloWorkflow, { name: `kept ${i}` }, { partitionKey: `kept-${worker}` });
      await client.waitForResult(invocationId, { timeoutMs: WAIT_MS });
    });
    const ended = nowMs();
    const endedCpu = cpu();
    await processor.indexed();
    const peak = await stored();
    const same = (a: Stored[], b: Stored[]) => a.every((s, i) => s.messages === b[i]?.messages && s.subjects === b[i]?.subjects && s.bytes === b[i]?.bytes);
    let after = peak;
    while (!same(after, baseline) && nowMs() - ended < retentionMs + WAIT_MS) {
      await sleep(250);
      after = await stored();
    }
    const backAfterMs = same(after, baseline) ? nowMs() - ended : Number.NaN;
    return { invocations: n, retentionMs, baseline, peak, after, backAfterMs, cpuMs: { run: total(started, endedCpu), removal: total(endedCpu, cpu()) } };
  } finally {
    await processor.stop();
  }
}
