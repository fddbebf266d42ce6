/**
 * Queries over the execution index (`nats/execution-index.ts`): invocations listed a page at
 * a time by status and handler, counts the server keeps, and a rebuild of the whole index.
 *
 * A page reads at most `limit` index messages through a consumer kept between pages
 * (`index-pages.ts`) and checks each against its state: all of the page's states in one
 * batched read, and from the state bucket's leader those that disagree with their entry
 * (O(limit) reads, never a scan); an entry that disagrees with its state is repaired on the
 * spot. Counts are the `num_pending` of durable consumers filtered on a status or a handler
 * (`index-counters.ts`): the server counts, nothing is read.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EngineNames } from '../config.js';
import { InvalidArgumentError } from '../errors.js';
import type { ExecutionState } from '../gen/durable/durable_pb.js';
import { isStatus, STATUSES, type InvocationStatus } from '../engine/lifecycle.js';
import type { VersionedState } from '../engine/stores.js';
import { encodeHandlerToken, ExecutionIndex, knownHandlers } from '../nats/execution-index.js';
import { withRetry } from '../nats/retry.js';
import { ensureIndexResources } from '../nats/setup.js';
import { decodeState, ttlLeftMs } from '../nats/state-store.js';
import { IndexCounters, isCounter, type IndexCount } from './index-counters.js';
import { IndexPages, type IndexEntry } from './index-pages.js';

/** Entries per page when no limit is given. */
export const DEFAULT_LIST_LIMIT = 50;
/** The largest page. */
export const MAX_LIST_LIMIT = 1000;

/** Options of {@link WorkflowQueries.list}. */
export interface ListWorkflowsOptions {
  /** Only invocations in this status. @default any */
  status?: string;
  /** Only invocations of this workflow. @default any */
  handler?: string;
  /** Only invocations on this partition key (checked within the page: not an index filter). @default any */
  partitionKey?: string;
  /** Only invocations created at or after this time, unix ms (checked within the page). @default any */
  createdAfterMs?: number;
  /** Only invocations created before this time, unix ms (checked within the page). @default any */
  createdBeforeMs?: number;
  /** Index entries read for this page, 1 to 1000. @default 50 */
  limit?: number;
  /** Where the previous page stopped (its `nextCursor`). @default the start */
  cursor?: string;
}

/** One invocation in a listing, as its state has it. */
export interface ExecutionStateSummary {
  invocationId: string;
  handler: string;
  status: string;
  partitionKey: string;
  createdAtMs: number;
  updatedAtMs: number;
}

/**
 * A page of invocations, in the order their index entries were last written. It may hold
 * fewer than `limit` when entries turned out stale; `nextCursor` is absent on the last page.
 */
export interface WorkflowPage {
  invocations: ExecutionStateSummary[];
  nextCursor?: string;
}

/** Options of {@link WorkflowQueries.stats}. */
export interface WorkflowStatsOptions {
  /** Count only this workflow's invocations. @default every workflow */
  handler?: string;
}

/** Invocation counts from the index. */
export interface WorkflowStats {
  total: number;
  byStatus: Record<InvocationStatus, number>;
  /** Per workflow name known to the handlers bucket (or just the one asked for). */
  byHandler: Record<string, number>;
}

/** What {@link WorkflowQueries.reindex} did. */
export interface ReindexResult {
  /** States whose index entry was written. */
  indexed: number;
  /** Index entries removed because their invocation has no state. */
  dropped: number;
}

/** Most index entries one filtered page reads (partition key or time), in pages of `limit`. */
const MAX_FILTERED_SCAN = 5_000;

/** How many times a repair publishes again because the state moved meanwhile. */
const REPAIR_ROUNDS = 5;
/** States indexed at once by a reindex. */
const REINDEX_CONCURRENCY = 32;
const CURSOR_PREFIX = 'idx1:';
/** The header a KV bucket marks deletes and purges with. */
const KV_OPERATION = 'KV-Operation';
/** The header of a record the server removes by itself once its time to live has passed. */
const TTL_HEADER = 'Nats-TTL';

/** A state as the leader has it, and how long it has left when the server removes it by itself, ms. */
type LatestState = VersionedState & { expiresInMs?: number };

/** The connection, names and state bucket the queries work with. */
export interface QueryHandles {
  nc: NatsConnection;
  names: EngineNames;
  stateKv: KV;
}

/** Lists, counts and rebuilds the execution index. The client's query methods delegate here. */
export class WorkflowQueries {
  readonly #handles: QueryHandles;
  readonly #index: ExecutionIndex;
  readonly #pages: IndexPages;
  readonly #counters: IndexCounters;
  #jsm: Promise<JetStreamManager> | undefined;

  constructor(handles: QueryHandles) {
    this.#handles = handles;
    this.#index = new ExecutionIndex(handles.nc, handles.names);
    this.#pages = new IndexPages(handles.nc, handles.names, () => this.#manager());
    this.#counters = new IndexCounters(handles.nc, handles.names);
  }

  /** Deletes the consumers kept for pages (the server deletes them anyway, a while after their last use). */
  async close(): Promise<void> {
    await this.#pages.close();
  }

  /**
   * A page of invocations by status and handler (the index's subjects). The partition key
   * and time filters are checked on the index entries' payload as they are read: a page
   * reads on until `limit` match or it has read MAX_FILTERED_SCAN entries, then gives a
   * `nextCursor` to go on from; never a scan of the states.
   * @throws InvalidArgumentError naming `status`, `limit` or `cursor` when one is malformed.
   */
  async list(options: ListWorkflowsOptions = {}): Promise<WorkflowPage> {
    const { status, handler } = options;
    if (status !== undefined && !isStatus(status)) {
      throw new InvalidArgumentError('status', `${JSON.stringify(status)} is not one of ${STATUSES.join(', ')}`);
    }
    const limit = checkLimit(options.limit);
    const after = options.cursor === undefined ? 0 : decodeCursor(options.cursor);
    const { indexSubject } = this.#handles.names;
    // No filter at all for every entry: the server counts a filter's entries when a consumer
    // is made, and knows how many it holds without counting.
    const filter =
      status === undefined && handler === undefined
        ? undefined
        : `${indexSubject}.${status ?? '*'}.${handler === undefined ? '*' : encodeHandlerToken(handler)}.*`;
    // With a partition key or time filter, pages of the index are read on (their entries
    // carry the key and creation time) until `limit` match or MAX_FILTERED_SCAN entries
    // were read: a page holds what matches, not only what the first entries held.
    const narrowed = options.partitionKey !== undefined || options.createdAfterMs !== undefined || options.createdBeforeMs !== undefined;
    const invocations: ExecutionState[] = [];
    let cursor = after;
    let scanned = 0;
    let more = false;
    do {
      const read = await this.#pages.read(filter, cursor, limit);
      if (read.entries.length === 0) break;
      const wanted = read.entries.filter((entry) => entryMayMatch(entry, options));
      const shown = await this.#shownStates(wanted.map((entry) => entry.invocationId));
      const states = await Promise.all(read.entries.map((entry) => (entryMayMatch(entry, options) ? this.#checked(entry, shown) : null)));
      more = read.more;
      for (const [i, entry] of read.entries.entries()) {
        if (invocations.length === limit) {
          // Full: the rest of this read comes with the next page.
          more = true;
          break;
        }
        const state = states[i];
        if (state && matches(state, options)) invocations.push(state);
        cursor = entry.seq;
      }
      scanned += read.entries.length;
    } while (narrowed && more && invocations.length < limit && scanned < MAX_FILTERED_SCAN);
    return {
      invocations: invocations.map(summaryOf),
      ...(more && cursor > after ? { nextCursor: encodeCursor(cursor) } : {}),
    };
  }

  /** Counts by status and by workflow, kept by the server: no entry is read. */
  async stats(options: WorkflowStatsOptions = {}): Promise<WorkflowStats> {
    const token = options.handler === undefined ? undefined : encodeHandlerToken(options.handler);
    const handlers = options.handler === undefined ? await knownHandlers(this.#handles.nc, this.#handles.names, await this.#manager()) : [];
    const counts: IndexCount[] = [
      ...STATUSES.map((status) => ({ status, ...(token === undefined ? {} : { handlerToken: token }) })),
      ...handlers.map((name) => ({ handlerToken: encodeHandlerToken(name) })),
    ];
    const counted = await this.#counters.count(counts);
    const perStatus = counted.slice(0, STATUSES.length);
    const perHandler = counted.slice(STATUSES.length);
    const total = perStatus.reduce((sum, n) => sum + n, 0);
    const byStatus = Object.fromEntries(STATUSES.map((status, i) => [status, perStatus[i] ?? 0])) as Record<InvocationStatus, number>;
    const byHandler =
      options.handler === undefined
        ? Object.fromEntries(handlers.map((name, i) => [name, perHandler[i] ?? 0]))
        : { [options.handler]: total };
    return { total, byStatus, byHandler };
  }

  /**
   * Rebuilds the index from the state bucket: creates the stream when it is gone, writes the
   * entry of every state, and removes entries whose state is gone. Reads every key: an
   * operator's tool, safe while processors run.
   */
  async reindex(): Promise<ReindexResult> {
    const { names, stateKv } = this.#handles;
    const jsm = await this.#manager();
    const replicas = (await jsm.streams.info(`KV_${names.stateBucket}`)).config.num_replicas;
    await ensureIndexResources(jsm, names, replicas);
    const ids: string[] = [];
    for await (const key of await stateKv.keys()) ids.push(key);
    let indexed = 0;
    await forEachConcurrently(ids, REINDEX_CONCURRENCY, async (id) => {
      const found = await this.#latest(id);
      if (found && (await this.#repair(found))) indexed++;
    });
    const known = new Set(ids);
    let dropped = 0;
    for (let after = 0; ; ) {
      const read = await this.#pages.read(undefined, after, MAX_LIST_LIMIT);
      for (const entry of read.entries) {
        if (known.has(entry.invocationId) || (await this.#latest(entry.invocationId))) continue;
        dropped += await this.#index.drop(entry.invocationId);
      }
      const last = read.entries.at(-1);
      if (!read.more || !last) break;
      after = last.seq;
    }
    await this.#restartCounters(jsm);
    return { indexed, dropped };
  }

  /**
   * Deletes the counters, so that they count the rebuilt index afresh when next asked
   * (an index written by an older version may have been changed in ways they missed).
   */
  async #restartCounters(jsm: JetStreamManager): Promise<void> {
    const { indexStream } = this.#handles.names;
    const names: string[] = [];
    for await (const name of jsm.consumers.list(indexStream)) if (isCounter(name.name)) names.push(name.name);
    await Promise.all(names.map((name) => jsm.consumers.delete(indexStream, name).catch(() => false)));
  }

  /**
   * The states of a page's invocations in one batched direct get, for display: any replica
   * answers, so a state may be a moment old. One that agrees with its index entry (which
   * came from the stream's leader) is shown as it is; the others are read again from the
   * leader before anything is decided on them (see {@link #checked}). Empty when the batch
   * cannot be read (the leader then answers for every entry).
   */
  async #shownStates(invocationIds: readonly string[]): Promise<Map<string, ExecutionState>> {
    const shown = new Map<string, ExecutionState>();
    if (invocationIds.length === 0) return shown;
    const { stateBucket } = this.#handles.names;
    const prefix = `$KV.${stateBucket}.`;
    try {
      const jsm = await this.#manager();
      const batch = await jsm.direct.getLastMessagesFor(`KV_${stateBucket}`, { multi_last: invocationIds.map((id) => `${prefix}${id}`) });
      for await (const msg of batch) {
        const operation = msg.header.get(KV_OPERATION);
        const id = msg.subject.slice(prefix.length);
        if (operation !== 'DEL' && operation !== 'PURGE' && msg.data.length > 0) shown.set(id, decodeState(msg.data, id));
      }
    } catch {
      // None of the states exist (the server answers "no results"), or no replica answered.
    }
    return shown;
  }

  /** The state an index entry stands for, after repairing the entry if they disagree; null when it has none. */
  async #checked(entry: IndexEntry, shown: ReadonlyMap<string, ExecutionState>): Promise<ExecutionState | null> {
    const state = shown.get(entry.invocationId);
    if (state && state.status === entry.status && state.handler === entry.handler) return state;
    const found = await this.#latest(entry.invocationId);
    if (!found) {
      await this.#index.drop(entry.invocationId);
      return null;
    }
    if (found.state.status === entry.status && found.state.handler === entry.handler) return found.state;
    return this.#repair(found);
  }

  /**
   * Writes the entry of a state, then reads the state again: when another writer changed it
   * meanwhile, its own entry may have landed before ours, so ours is written again.
   */
  async #repair(found: LatestState): Promise<ExecutionState | null> {
    let current: LatestState | null = found;
    for (let round = 0; current && round < REPAIR_ROUNDS; round++) {
      await this.#index.syncIndex(current.state, { expiresInMs: current.expiresInMs });
      const again: LatestState | null = await this.#latest(current.state.invocationId);
      if (again?.revision === current.revision) return current.state;
      current = again;
    }
    if (!current) await this.#index.drop(found.state.invocationId);
    return current?.state ?? null;
  }

  /**
   * The state as the bucket's stream leader has it. A listing that checks or repairs an entry
   * acts on what it reads, so not a direct get: a replica may answer that before it has
   * applied the latest write (a state just paused would read as still suspended).
   */
  async #latest(invocationId: string): Promise<LatestState | null> {
    const { stateBucket } = this.#handles.names;
    const jsm = await this.#manager();
    const msg = await withRetry(`read the state of ${invocationId}`, () =>
      jsm.streams.getMessage(`KV_${stateBucket}`, { last_by_subj: `$KV.${stateBucket}.${invocationId}` }),
    );
    const operation = msg?.header.get(KV_OPERATION) ?? '';
    if (!msg || operation === 'DEL' || operation === 'PURGE' || msg.data.length === 0) return null;
    const expiresInMs = ttlLeftMs(msg.header.get(TTL_HEADER), msg.time);
    return { state: decodeState(msg.data, invocationId), revision: msg.seq, ...(expiresInMs !== undefined ? { expiresInMs } : {}) };
  }

  #manager(): Promise<JetStreamManager> {
    this.#jsm ??= jetstreamManager(this.#handles.nc);
    return this.#jsm;
  }
}

/** False when an index entry's payload rules it out of the filter; its state decides otherwise. */
function entryMayMatch(entry: { partitionKey?: string; createdAtMs?: number }, filter: ListWorkflowsOptions): boolean {
  if (filter.partitionKey !== undefined && entry.partitionKey !== undefined && entry.partitionKey !== filter.partitionKey) return false;
  const created = entry.createdAtMs;
  if (created === undefined) return true;
  return (filter.createdAfterMs === undefined || created >= filter.createdAfterMs) && (filter.createdBeforeMs === undefined || created < filter.createdBeforeMs);
}

/** Whether a state passes every filter of a listing. */
function matches(state: ExecutionState, filter: ListWorkflowsOptions): boolean {
  const created = Number(state.createdAtMs);
  return (
    (filter.status === undefined || state.status === filter.status) &&
    (filter.handler === undefined || state.handler === filter.handler) &&
    (filter.partitionKey === undefined || state.partitionKey === filter.partitionKey) &&
    (filter.createdAfterMs === undefined || created >= filter.createdAfterMs) &&
    (filter.createdBeforeMs === undefined || created < filter.createdBeforeMs)
  );
}

function summaryOf(state: ExecutionState): ExecutionStateSummary {
  return {
    invocationId: state.invocationId,
    handler: state.handler,
    status: state.status,
    partitionKey: state.partitionKey,
    createdAtMs: Number(state.createdAtMs),
    updatedAtMs: Number(state.updatedAtMs),
  };
}

function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new InvalidArgumentError('limit', `${String(limit)} must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  return limit;
}

/** A cursor is the stream sequence of the last index entry a page read, opaque to callers. */
export function encodeCursor(seq: number): string {
  return Buffer.from(`${CURSOR_PREFIX}${seq}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const digits = text.startsWith(CURSOR_PREFIX) ? text.slice(CURSOR_PREFIX.length) : '';
  const seq = Number(digits);
  if (!/^[A-Za-z0-9_-]+$/.test(cursor) || !/^[0-9]{1,16}$/.test(digits) || !Number.isSafeInteger(seq) || seq < 1) {
    throw new InvalidArgumentError('cursor', `${JSON.stringify(cursor)} is not a cursor this API returned`);
  }
  return seq;
}

async function forEachConcurrently<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
