/**
 * The chaos checker: from the final states, the journals as the stream holds them (with
 * what the states hold that the stream lacks) and the services' request logs, counts what
 * went wrong. Pure: it reads only what it is given.
 *
 * - lost: acknowledged, not ended by the deadline;
 * - journal duplicates: a step number recorded twice with the same phase in one journal;
 * - order violations: an invocation of a key whose run started (its first journaled
 *   `ctx.now()`) before the one submitted before it on that key had ended (its state's
 *   `ended_at_ms`, else its last journaled `ctx.now()`);
 * - exclusive overlaps: two invocations of one exclusive key whose start-to-end spans meet;
 * - service calls repeated: requests beyond the first per idempotency key;
 * - longest stall: the longest time, from the first submission to the last end, in which no
 *   journal entry was written and no invocation ended, not counting HelloService's outage
 *   (every workflow calls it, so nothing can move then).
 */
import { type ExecutionState, type JournalEntry, EntryPhase, decodeJson, isTerminal } from '../../packages/core/src/index.js';
import type { Item } from './workload.js';

/** What the checker counted. */
export interface Findings {
  workflows: number;
  completed: number;
  failedMeant: number;
  failedUnexpected: number;
  /** Up to a few unexpected failures: ID, status, error. */
  failedSamples: string[];
  lost: number;
  lostSamples: string[];
  journalDuplicates: number;
  duplicateSamples: string[];
  orderViolations: number;
  /** Of how many ordered pairs (consecutive invocations of one key, both started). */
  orderPairs: number;
  orderSamples: string[];
  exclusiveOverlaps: number;
  /** Sum over hot keys of |completed invocations − the count kept in the key's state|. */
  keyedCountOff: number;
  serviceCalls: number;
  serviceRepeats: number;
  longestStallMs: number;
  /** When the longest stall began, ms after the first submission. */
  longestStallAtMs: number;
  /** Submissions acknowledged while a node was cut off, and how many of those did not end (in `lost` too). */
  cutSubmits: number;
  cutLost: number;
}

/** What the checker reads. */
export interface Evidence {
  items: readonly Item[];
  /** The acknowledged IDs, with when they were acknowledged (unix ms). */
  accepted: ReadonlyMap<string, number>;
  /** When a node was cut off (from, to; unix ms), if it was. */
  cut: readonly [number, number] | undefined;
  states: ReadonlyMap<string, ExecutionState | null>;
  /** Every journal of the run (children's included), by invocation ID. */
  journals: ReadonlyMap<string, readonly JournalEntry[]>;
  /** HelloService's and TicketService's JSON log lines. */
  serviceLines: readonly string[];
  /** The `done` count in each hot key's state. */
  keyedCounts: ReadonlyMap<string, number>;
  startedAt: number;
  /** When HelloService was down (from, to; unix ms), left out of the stall. */
  serviceDown: readonly (readonly [number, number])[];
}

const SAMPLES = 5;

/** Counts everything the run must show as zero, and the figures beside them. */
export function check(evidence: Evidence): Findings {
  const { items, states } = evidence;
  const journals = withHeldAlone(evidence.journals, states);
  const accepted = items.filter((i) => evidence.accepted.has(i.invocationId));
  const failedSamples: string[] = [];
  const lostSamples: string[] = [];
  let completed = 0;
  let failedMeant = 0;
  let failedUnexpected = 0;
  let lost = 0;
  for (const item of accepted) {
    const state = states.get(item.invocationId) ?? null;
    const status = state?.status ?? 'no state';
    if (status === 'completed') {
      if (item.group === 'meant-to-fail') failedUnexpected++; // it was meant to fail and did not
      else completed++;
    } else if (status === 'failed' && item.group === 'meant-to-fail') failedMeant++;
    else if (status === 'failed' || status === 'cancelled') {
      failedUnexpected++;
      if (failedSamples.length < SAMPLES) failedSamples.push(`${item.invocationId} ${status}: ${state?.error ?? ''}`);
    } else {
      lost++;
      if (lostSamples.length < SAMPLES) lostSamples.push(`${item.invocationId} ${status}`);
    }
    if (status === 'completed' && item.group === 'meant-to-fail' && failedSamples.length < SAMPLES) {
      failedSamples.push(`${item.invocationId} completed although meant to fail`);
    }
  }

  const duplicates = journalDuplicates(journals);
  const spans = new Map(accepted.map((item) => [item.invocationId, spanOf(journals.get(item.invocationId) ?? [], states.get(item.invocationId) ?? null)]));
  const order = orderViolations(accepted.filter((i) => i.group === 'ordered' || i.group === 'exclusive'), spans);
  const repeats = serviceRepeats(evidence.serviceLines);
  const cut = evidence.cut;
  const duringCut = cut ? accepted.filter((i) => within(evidence.accepted.get(i.invocationId) ?? 0, cut)) : [];
  const stall = longestStall(journals, states, evidence.startedAt, evidence.serviceDown);

  let keyedCountOff = 0;
  for (const [key, count] of evidence.keyedCounts) {
    const done = accepted.filter((i) => i.group === 'exclusive' && i.partitionKey === key && states.get(i.invocationId)?.status === 'completed').length;
    keyedCountOff += Math.abs(done - count);
  }

  return {
    workflows: items.length,
    completed,
    failedMeant,
    failedUnexpected,
    failedSamples,
    lost,
    lostSamples,
    journalDuplicates: duplicates.count,
    duplicateSamples: duplicates.samples,
    orderViolations: order.violations,
    orderPairs: order.pairs,
    orderSamples: order.samples,
    exclusiveOverlaps: exclusiveOverlaps(accepted.filter((i) => i.group === 'exclusive'), spans),
    keyedCountOff,
    serviceCalls: repeats.calls,
    serviceRepeats: repeats.repeats,
    longestStallMs: stall.ms,
    longestStallAtMs: stall.atMs,
    cutSubmits: duringCut.length,
    cutLost: duringCut.filter((i) => !isTerminal(states.get(i.invocationId)?.status ?? 'pending')).length,
  };
}

/**
 * Each journal as the stream holds it, then the entries its invocation's state holds that
 * the stream lacks: a suspension's outcomes that no run has appended since, and a final
 * state's last ones. A step the state holds twice counts as recorded twice.
 */
function withHeldAlone(journals: ReadonlyMap<string, readonly JournalEntry[]>, states: ReadonlyMap<string, ExecutionState | null>): Map<string, readonly JournalEntry[]> {
  const merged = new Map(journals);
  for (const [id, state] of states) {
    if (!state || state.journal.length !== state.journalLength) continue;
    const streamed = journals.get(id) ?? [];
    const inStream = new Set(streamed.map((e) => `${e.stepNumber}/${e.phase}`));
    const alone = state.journal.filter((e) => !inStream.has(`${e.stepNumber}/${e.phase}`));
    if (alone.length > 0) merged.set(id, [...streamed, ...alone]);
  }
  return merged;
}

function within(at: number, [from, to]: readonly [number, number]): boolean {
  return at >= from && at <= to;
}

/** When an invocation's run started and ended; undefined where not known. */
interface Span {
  start: number | undefined;
  end: number | undefined;
}

/** First journaled `now` as the start; the state's end time (else the last `now`) as the end. */
function spanOf(journal: readonly JournalEntry[], state: ExecutionState | null): Span {
  const nows = journal.filter((e) => e.stepType === 'NOW' && e.phase === EntryPhase.COMPLETED).sort((a, b) => a.stepNumber - b.stepNumber);
  const first = nows[0];
  const last = nows.at(-1);
  const endedAt = state && state.endedAtMs > 0n ? Number(state.endedAtMs) : undefined;
  return {
    start: first ? decodeJson<number>(first.response) : undefined,
    end: endedAt ?? (last && last !== first ? decodeJson<number>(last.response) : undefined),
  };
}

/** Steps recorded twice (same step number and phase) within one journal. */
function journalDuplicates(journals: ReadonlyMap<string, readonly JournalEntry[]>): { count: number; samples: string[] } {
  let count = 0;
  const samples: string[] = [];
  for (const [id, entries] of journals) {
    const seen = new Set<string>();
    for (const e of entries) {
      // A claim mark (step -1) records a takeover, not a step: one per takeover is expected.
      if (e.stepNumber < 0) continue;
      const key = `${e.stepNumber}/${e.phase}`;
      if (seen.has(key)) {
        count++;
        if (samples.length < SAMPLES) samples.push(`${id} step ${e.stepNumber} (${e.stepType})`);
      }
      seen.add(key);
    }
  }
  return { count, samples };
}

/** Consecutive invocations of one key (by submission index) where the later started before the earlier ended. */
function orderViolations(items: readonly Item[], spans: ReadonlyMap<string, Span>): { violations: number; pairs: number; samples: string[] } {
  let violations = 0;
  let pairs = 0;
  const samples: string[] = [];
  for (const sequence of byKey(items)) {
    for (let k = 1; k < sequence.length; k++) {
      const before = spans.get(sequence[k - 1]!.invocationId);
      const after = spans.get(sequence[k]!.invocationId);
      if (after?.start === undefined || before?.start === undefined) continue;
      pairs++;
      // Not ended at all (lost, counted there) is "not finished" too.
      if (before.end === undefined || after.start < before.end) {
        violations++;
        if (samples.length < SAMPLES) {
          const gap = before.end === undefined ? 'never ended' : `ended ${before.end - after.start} ms after`;
          samples.push(`${sequence[k]!.invocationId} started; ${sequence[k - 1]!.partitionKey}#${k - 1} ${gap}`);
        }
      }
    }
  }
  return { violations, pairs, samples };
}

/** Pairs of invocations of one exclusive key whose start-to-end spans meet. */
function exclusiveOverlaps(items: readonly Item[], spans: ReadonlyMap<string, Span>): number {
  let overlaps = 0;
  for (const sequence of byKey(items)) {
    const known = sequence.map((i) => spans.get(i.invocationId)).filter((s): s is { start: number; end: number } => s?.start !== undefined && s.end !== undefined);
    for (let a = 0; a < known.length; a++) {
      for (let b = a + 1; b < known.length; b++) {
        if (known[a]!.start < known[b]!.end && known[b]!.start < known[a]!.end) overlaps++;
      }
    }
  }
  return overlaps;
}

/** Items grouped by partition key, each group in submission order. */
function byKey(items: readonly Item[]): Item[][] {
  const groups = new Map<string, Item[]>();
  for (const item of items) groups.set(item.partitionKey, [...(groups.get(item.partitionKey) ?? []), item]);
  return [...groups.values()].map((g) => g.sort((a, b) => a.plan.index - b.plan.index));
}

/** Requests the services received, and those beyond the first per (method, idempotency key). */
function serviceRepeats(lines: readonly string[]): { calls: number; repeats: number } {
  const seen = new Map<string, number>();
  let calls = 0;
  for (const line of lines) {
    let record: { rpc?: unknown; idempotency_key?: unknown };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      continue;
    }
    if (typeof record.rpc !== 'string' || typeof record.idempotency_key !== 'string') continue;
    calls++;
    const key = `${record.rpc}:${record.idempotency_key}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return { calls, repeats: calls - seen.size };
}

/** The longest gap between progress events (journal writes, ends) from `startedAt` to the last one, outages left out. */
function longestStall(
  journals: ReadonlyMap<string, readonly JournalEntry[]>,
  states: ReadonlyMap<string, ExecutionState | null>,
  startedAt: number,
  outages: readonly (readonly [number, number])[],
): { ms: number; atMs: number } {
  const times = [startedAt];
  for (const entries of journals.values()) for (const e of entries) times.push(Number(e.recordedAtMs));
  for (const state of states.values()) if (state && state.endedAtMs > 0n) times.push(Number(state.endedAtMs));
  times.sort((a, b) => a - b);
  let ms = 0;
  let atMs = 0;
  for (let i = 1; i < times.length; i++) {
    const [from, to] = [times[i - 1]!, times[i]!];
    const down = outages.reduce((sum, [a, b]) => sum + Math.max(0, Math.min(b, to) - Math.max(a, from)), 0);
    const gap = to - from - down;
    if (times[i - 1]! >= startedAt && gap > ms) {
      ms = gap;
      atMs = times[i - 1]! - startedAt;
    }
  }
  return { ms, atMs };
}
