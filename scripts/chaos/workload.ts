/**
 * The chaos run's workload: which invocations it submits, with what plan, on which key,
 * when, and through which door (the client or the HTTP API). Pure: the same settings give
 * the same workload.
 */
import type { ChaosPlan } from '../../apps/processor/src/workflows/index.js';
import type { ChaosSettings } from './settings.js';

/** What an invocation is there to test; decides how the checker reads it. */
export type Group = 'ordered' | 'exclusive' | 'mixed' | 'meant-to-fail';

/** One top-level invocation the run submits. */
export interface Item {
  invocationId: string;
  handler: 'chaos_task' | 'chaos_exclusive';
  partitionKey: string;
  plan: ChaosPlan;
  group: Group;
  /** Submitted through the HTTP API (else through the client). */
  viaHttp: boolean;
  /** When to submit it, ms after the workload starts (an ordered item also waits for its predecessor's ack). */
  dueMs: number;
}

/** Items of one key, in submission order; a key's items are submitted one after another. */
export type Sequence = Item[];

/** How many items of an exclusive key are submitted back to back. */
const EXCLUSIVE_BURST = 5;

/**
 * The workload: per-key ordered sequences (each key's invocations submitted back to back),
 * exclusive sequences on a few hot keys (in bursts across the whole window), a few meant to
 * fail, and the rest a mix of service call, `ctx.run`, durable sleep, awakeable and child.
 */
export function buildWorkload(settings: ChaosSettings, runId: string): Sequence[] {
  const { orderedKeys, orderedPerKey, exclusiveKeys, exclusivePerKey, meantToFail, submitOverMs } = settings;
  const mixed = settings.workflows - orderedKeys * orderedPerKey - exclusiveKeys * exclusivePerKey - meantToFail;
  if (mixed < 0) throw new Error(`${settings.workflows} workflows are too few for the ordered, exclusive and failing ones`);
  const id = (key: string, index: number) => `chaos-${runId}-${key}-${index}`;
  const sequences: Sequence[] = [];

  for (let k = 0; k < orderedKeys; k++) {
    const key = `ord-${k}`;
    const startMs = Math.round(((k + 0.5) / orderedKeys) * submitOverMs * 0.8);
    sequences.push(range(orderedPerKey).map((index) => ({
      invocationId: id(key, index),
      handler: 'chaos_task',
      partitionKey: key,
      plan: { key, index, greet: `${key}-${index}`, run: true },
      group: 'ordered',
      viaHttp: false,
      dueMs: startMs,
    })));
  }

  const bursts = Math.ceil(exclusivePerKey / EXCLUSIVE_BURST);
  for (let k = 0; k < exclusiveKeys; k++) {
    const key = `hot-${k}`;
    sequences.push(range(exclusivePerKey).map((index) => ({
      invocationId: id(key, index),
      handler: 'chaos_exclusive',
      partitionKey: key,
      // Every fourth holds its key through a durable sleep.
      plan: { key, index, ticket: `${runId}-${key}-${index}`, run: true, ...(index % 4 === 3 ? { sleepMs: settings.sleepMs } : {}) },
      group: 'exclusive',
      viaHttp: false,
      dueMs: Math.round(((Math.floor(index / EXCLUSIVE_BURST) + k / exclusiveKeys) / bursts) * submitOverMs),
    })));
  }

  for (let i = 0; i < meantToFail; i++) {
    const key = `bad-${i}`;
    sequences.push([{
      invocationId: id(key, 0),
      handler: 'chaos_task',
      partitionKey: key,
      plan: { key, index: 0, greet: '' },
      group: 'meant-to-fail',
      viaHttp: i % 2 === 1,
      dueMs: Math.round(((i + 0.5) / meantToFail) * submitOverMs),
    }]);
  }

  for (let i = 0; i < mixed; i++) {
    const key = `mix-${i}`;
    const plan: ChaosPlan = {
      key,
      index: 0,
      greet: key,
      run: true,
      ...(i % 4 === 1 ? { sleepMs: settings.sleepMs } : {}),
      ...(i % 5 === 2 ? { awakeable: true } : {}),
      ...(i % 3 === 0 ? { child: true } : {}),
    };
    sequences.push([{
      invocationId: id(key, 0),
      handler: 'chaos_task',
      partitionKey: key,
      plan,
      group: 'mixed',
      viaHttp: i % 4 === 2,
      dueMs: Math.round((i / Math.max(1, mixed)) * submitOverMs),
    }]);
  }
  return sequences;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
