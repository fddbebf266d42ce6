/**
 * Drives the workload: submits every item on time (a key's items one after another, each
 * once the one before is acknowledged), retrying a failed submission under the same ID as a
 * caller would; resolves the awakeables over the HTTP API once they exist; and waits for
 * every invocation to end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type DurableClient, type ExecutionState, isTerminal } from '../../packages/core/src/index.js';
import type { Fleet } from './fleet.js';
import { type HttpOutcome, request } from './http.js';
import type { Item, Sequence } from './workload.js';

/** How submitting went. */
export interface SubmitCounts {
  /** IDs the cluster acknowledged, with when (unix ms). */
  accepted: Map<string, number>;
  /** Items still not acknowledged after {@link SUBMIT_DEADLINE_MS} of retries. */
  refused: string[];
  /** Submissions that failed and were sent again. */
  retries: number;
  /** 5xx answers of the HTTP API to a well-formed invoke. */
  http5xx: number;
  /** A sample of the 5xx answers. */
  http5xxSamples: string[];
}

/** How long a caller keeps retrying one submission, ms. */
const SUBMIT_DEADLINE_MS = 60_000;
/** How often unfinished invocations and unresolved awakeables are looked at, ms. */
const LOOK_EVERY_MS = 1_000;
/** How many state reads are in flight at once. */
const READ_PARALLELISM = 32;

/** Submits every sequence on its schedule from `startedAt`. */
export async function submitAll(sequences: readonly Sequence[], deps: { client: DurableClient; fleet: Fleet; startedAt: number }): Promise<SubmitCounts> {
  const counts: SubmitCounts = { accepted: new Map(), refused: [], retries: 0, http5xx: 0, http5xxSamples: [] };
  await Promise.all(
    sequences.map(async (sequence) => {
      for (const item of sequence) {
        await sleep(Math.max(0, deps.startedAt + item.dueMs - Date.now()));
        if (await submitOne(item, deps, counts)) counts.accepted.set(item.invocationId, Date.now());
        else counts.refused.push(item.invocationId);
      }
    }),
  );
  return counts;
}

/** One submission, retried with backoff until acknowledged or past the deadline. */
async function submitOne(item: Item, deps: { client: DurableClient; fleet: Fleet }, counts: SubmitCounts): Promise<boolean> {
  const deadline = Date.now() + SUBMIT_DEADLINE_MS;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
    if (item.viaHttp ? await submitOverHttp(item, deps.fleet, counts) : await submitWithClient(item, deps.client)) return true;
    if (Date.now() >= deadline) return false;
    counts.retries++;
    await sleep(delay);
  }
}

async function submitWithClient(item: Item, client: DurableClient): Promise<boolean> {
  try {
    await client.submit(item.handler, item.plan, { invocationId: item.invocationId, partitionKey: item.partitionKey });
    return true;
  } catch {
    return false;
  }
}

async function submitOverHttp(item: Item, fleet: Fleet, counts: SubmitCounts): Promise<boolean> {
  const port = pick(fleet.httpPorts());
  if (port === undefined) return false;
  const outcome = await request(port, 'POST', `/api/workflows/${item.handler}/invoke?partition_key=${encodeURIComponent(item.partitionKey)}`, {
    body: JSON.stringify(item.plan),
    headers: { 'Idempotency-Key': item.invocationId },
  });
  if ('status' in outcome && outcome.status >= 500) {
    counts.http5xx++;
    if (counts.http5xxSamples.length < 5) counts.http5xxSamples.push(`${outcome.status} ${outcome.body.slice(0, 160)}`);
  }
  return 'status' in outcome && outcome.status === 202;
}

/**
 * Resolves the awakeable of every item that waits on one, over the HTTP API of a live
 * processor, once its journal names it; until `signal` aborts. Returns how many it resolved.
 */
export async function resolveAwakeables(items: readonly Item[], deps: { client: DurableClient; fleet: Fleet; signal: AbortSignal }): Promise<number> {
  const waiting = new Set(items.filter((i) => i.plan.awakeable).map((i) => i.invocationId));
  let resolved = 0;
  while (waiting.size > 0 && !deps.signal.aborted) {
    await inBatches([...waiting], async (id) => {
      const awakeableId = await awakeableOf(id, deps.client);
      if (awakeableId === undefined) return;
      if (awakeableId === 'ended') {
        waiting.delete(id);
        return;
      }
      const port = pick(deps.fleet.httpPorts());
      if (port === undefined) return;
      const outcome: HttpOutcome = await request(port, 'POST', `/api/awakeables/${awakeableId}/resolve`, {
        body: JSON.stringify({ result: { approvedBy: 'chaos' } }),
      });
      // 409: resolved before (an earlier answer was lost on the way); either way it is done.
      if ('status' in outcome && (outcome.status === 200 || outcome.status === 409)) {
        waiting.delete(id);
        if (outcome.status === 200) resolved++;
      }
    });
    await sleep(LOOK_EVERY_MS);
  }
  return resolved;
}

/** The awakeable an invocation waits on, 'ended' when it has ended, undefined when not known yet. */
async function awakeableOf(invocationId: string, client: DurableClient): Promise<string | undefined> {
  try {
    const state = await client.getState(invocationId);
    if (!state) return undefined;
    if (isTerminal(state.status)) return 'ended';
    if (state.status !== 'suspended') return undefined;
    const entry = (await client.getJournal(invocationId)).find((e) => e.stepType.startsWith('AWAKEABLE:'));
    return entry?.stepType.slice('AWAKEABLE:'.length);
  } catch {
    return undefined; // a node or leader is away: look again later
  }
}

/**
 * Waits until every invocation has ended or the deadline passes; returns the last state
 * read of each (null: none found). Calls `onEnded` with the count as it grows.
 */
export async function waitForEnds(ids: readonly string[], deps: { client: DurableClient; deadline: number; onProgress: (ended: number) => void }): Promise<Map<string, ExecutionState | null>> {
  const states = new Map<string, ExecutionState | null>(ids.map((id) => [id, null]));
  const open = new Set(ids);
  let reported = -1;
  for (;;) {
    await inBatches([...open], async (id) => {
      try {
        const state = await deps.client.getState(id);
        states.set(id, state);
        if (state && isTerminal(state.status)) open.delete(id);
      } catch {
        // read again on the next round
      }
    });
    const ended = ids.length - open.size;
    if (ended !== reported) deps.onProgress(ended);
    reported = ended;
    if (open.size === 0 || Date.now() >= deps.deadline) return states;
    await sleep(LOOK_EVERY_MS);
  }
}

async function inBatches<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += READ_PARALLELISM) await Promise.all(items.slice(i, i + READ_PARALLELISM).map(fn));
}

function pick<T>(items: readonly T[]): T | undefined {
  return items[Math.floor(Math.random() * items.length)];
}
