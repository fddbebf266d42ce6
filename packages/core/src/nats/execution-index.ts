/**
 * The execution index: one message per invocation in the EXECUTION_INDEX stream, on
 *
 *     <indexSubject>.<status>.<handler token>.<invocation id>
 *
 * so that invocations can be listed by status or handler with a filtered consumer, and
 * counted by the server (a consumer's `num_pending`) without reading every state.
 *
 * - The handler token is the handler name with every character outside `[A-Za-z0-9_-]`
 *   written as `=` and two hex digits of its UTF-8 bytes (`order.process` becomes
 *   `order=2Eprocess`): a `.` would split the token, and `=` never occurs in a handler
 *   name, so the encoding is reversible and the token is also a valid KV key.
 * - Invocation IDs (`[A-Za-z0-9_=-]`, and `/` in those the engine derives) are a token as they are.
 * - The payload is JSON `{"created_at_ms", "updated_at_ms", "partition_key"}`, readable
 *   with `nats stream view`.
 *
 * The stream keeps one message per subject (`max_msgs_per_subject: 1`); a status change
 * publishes under the new subject, then removes the entry under the status it replaces
 * (a purge of that one subject). When that status is not known, or for a repair, the
 * invocation's other entries are looked up by subject (`subjects_filter`) and removed one
 * subject or sequence at a time, never with a purge by wildcard: the server tells the
 * stream's consumers what a purge removed by its filter, not by the entry's subject, so a
 * consumer counting `<indexSubject>.failed.*.*` would not subtract a failed entry purged by
 * `<indexSubject>.*.*.<id>` (seen with nats-server 2.15.1; and a purge removing several entries
 * makes every consumer count the whole stream again). The counts of
 * `client/index-counters.ts` rely on this.
 * The handlers seen are kept in the EXECUTION_HANDLERS bucket (key: the handler token,
 * value: the name) so counts per handler need no scan.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { JetStreamStatusError } from '@nats-io/jetstream/internal';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EngineNames } from '../config.js';
import { errorMessage } from '../errors.js';
import type { ExecutionState } from '../gen/durable/durable_pb.js';
import { silentLogger, type Logger } from '../logger.js';
import { isMessageGone } from './reconcile.js';
import { messageTtl } from './state-store.js';

/** Characters a handler token keeps as they are. */
const PLAIN = /[A-Za-z0-9_-]/;
const ESCAPED = /=([0-9A-F]{2})/g;

/** The subject token of a handler name, see the module doc. */
export function encodeHandlerToken(handler: string): string {
  let token = '';
  for (const ch of handler) {
    if (PLAIN.test(ch)) token += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) token += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return token;
}

/** The handler name of a subject token; the inverse of {@link encodeHandlerToken}. */
export function decodeHandlerToken(token: string): string {
  const bytes: number[] = [];
  let plain = '';
  const flush = (): void => {
    if (bytes.length > 0) plain += Buffer.from(bytes.splice(0)).toString('utf8');
  };
  let at = 0;
  for (const match of token.matchAll(ESCAPED)) {
    if (match.index > at) {
      flush();
      plain += token.slice(at, match.index);
    }
    bytes.push(Number.parseInt(match[1] ?? '0', 16));
    at = match.index + match[0].length;
  }
  flush();
  return plain + token.slice(at);
}

/** The index subject of an invocation in a status. */
export function indexEntrySubject(names: EngineNames, status: string, handler: string, invocationId: string): string {
  return `${names.indexSubject}.${status}.${encodeHandlerToken(handler)}.${invocationId}`;
}

/**
 * A filter of the index that matches no entry (no status is `none`): consumers of the index
 * are placed with it before they are given their filter (see `leader-consumer.ts`).
 */
export function placeholderFilter(names: EngineNames): string {
  return `${names.indexSubject}.none.none.none`;
}

/** What an index subject names. */
export interface IndexKey {
  status: string;
  handler: string;
  invocationId: string;
}

/** The status, handler and invocation an index subject names, or null for another subject. */
export function parseIndexSubject(names: EngineNames, subject: string): IndexKey | null {
  if (!subject.startsWith(`${names.indexSubject}.`)) return null;
  const tokens = subject.slice(names.indexSubject.length + 1).split('.');
  if (tokens.length !== 3) return null;
  const [status, token, invocationId] = tokens as [string, string, string];
  return { status, handler: decodeHandlerToken(token), invocationId };
}

/** The index message's payload. */
export interface IndexPayload {
  created_at_ms: number;
  updated_at_ms: number;
  partition_key: string;
}

function payloadOf(state: ExecutionState): string {
  const payload: IndexPayload = {
    created_at_ms: Number(state.createdAtMs),
    updated_at_ms: Number(state.updatedAtMs),
    partition_key: state.partitionKey,
  };
  return JSON.stringify(payload);
}

/** Options of {@link ExecutionIndex}. */
export interface ExecutionIndexOptions {
  /** Where failed index writes are reported (at most one line a minute). @default silent */
  logger?: Logger;
  /**
   * Whether a state write returns before its index write is done. Off for writers that may
   * exit right after a write (a CLI cancelling an invocation), on for the processor's hot path.
   * @default true
   */
  background?: boolean;
}

const WARN_EVERY_MS = 60_000;
/** How long the background mode gathers writes before publishing the newest of each invocation, ms. */
const COALESCE_MS = 200;

/** What a state write was: a create, or an update over a state of a known status. */
interface WriteKind {
  created?: boolean;
  previousStatus?: string;
  /** The state's `Nats-TTL`, which its ended entry takes too. */
  ttl?: string | undefined;
}

/** The `from` of a {@link Move} for a state write. */
function replacedStatus(write: WriteKind): string {
  return write.created ? 'none' : (write.previousStatus ?? 'unknown');
}

/** What a write changes in the index: an invocation's entry moves from `from` to its status now. */
interface Move {
  state: ExecutionState;
  /**
   * The status of the entry it replaces: a status, 'none' for a new invocation (nothing to
   * remove), or 'unknown' (remove whatever else there is).
   */
  from: string;
  /** The entry's `Nats-TTL`, when it goes by itself with its state. */
  ttl?: string | undefined;
}

/**
 * Writes the execution index. The state store calls {@link ExecutionIndex.record} after
 * each state write; {@link ExecutionIndex.syncIndex} repairs one invocation's entry.
 */
export class ExecutionIndex {
  readonly names: EngineNames;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #logger: Logger;
  readonly #background: boolean;
  #jsm: Promise<JetStreamManager> | undefined;
  #handlers: Promise<KV> | undefined;
  readonly #registered = new Set<string>();
  readonly #inFlight = new Set<Promise<void>>();
  /** Background mode: the writes gathered for the next publish, per invocation. */
  readonly #gathered = new Map<string, Move>();
  #flushTimer: NodeJS.Timeout | undefined;
  #warnedAt = 0;

  constructor(nc: NatsConnection, names: EngineNames, options: ExecutionIndexOptions = {}) {
    this.#nc = nc;
    this.names = names;
    this.#js = jetstream(nc);
    this.#logger = options.logger ?? silentLogger();
    this.#background = options.background ?? true;
  }

  /**
   * Brings the index in line with a state just written. `created`: the state is new, so it
   * has no entry to remove; `previousStatus`: the status it was written over, whose entry is
   * removed (a purge of that one subject); neither: every other entry of the invocation is
   * removed (a purge by wildcard, dearer).
   *
   * In the background mode (the processor's), resolves at once: writes are gathered for
   * 200 ms and only the newest of each invocation is published, so an invocation that starts
   * and ends within that time costs one publish and no purge. Otherwise resolves when the
   * index write is done. Never rejects: a failure is logged, and the entry is repaired later
   * (see the README's Query).
   */
  record(state: ExecutionState, options: WriteKind = {}): Promise<void> {
    const from = replacedStatus(options);
    if (!this.#background) return this.#move({ state, from });
    // The entry to replace is the one before the first write gathered.
    const earlier = this.#gathered.get(state.invocationId);
    this.#gathered.set(state.invocationId, { state, from: earlier?.from ?? from });
    this.#flushTimer ??= setTimeout(() => this.#flush(), COALESCE_MS);
    return Promise.resolve();
  }

  /**
   * For a state that ends its invocation, called beside its write rather than after it:
   * publishes the entry at once (any write gathered for the invocation is dropped: this one
   * replaces it) and resolves once it is stored, so that whoever learns of the end finds it
   * listed and counted. In the background mode the purge of the entry it replaces follows
   * without being waited for. If the state write then fails, call {@link syncIndex} with
   * the state that stands.
   */
  recordEnded(state: ExecutionState, options: WriteKind = {}): Promise<void> {
    const gathered = this.#gathered.get(state.invocationId);
    this.#gathered.delete(state.invocationId);
    const move = { state, from: gathered?.from ?? replacedStatus(options), ttl: options.ttl };
    if (!this.#background) return this.#move(move);
    let stored: () => void = () => undefined;
    const published = new Promise<void>((resolve) => (stored = resolve));
    const write = this.#move(move, stored).finally(stored);
    this.#inFlight.add(write);
    void write.finally(() => this.#inFlight.delete(write));
    return published;
  }

  /** Publishes what was gathered. */
  #flush(): void {
    this.#flushTimer = undefined;
    const moves = [...this.#gathered.values()];
    this.#gathered.clear();
    for (const move of moves) {
      const write = this.#move(move);
      this.#inFlight.add(write);
      void write.finally(() => this.#inFlight.delete(write));
    }
  }

  /** Publishes the entry (then calls `stored`), then removes the one it replaces; logs a failure. */
  async #move({ state, from, ttl }: Move, stored?: () => void): Promise<void> {
    const purge = from === 'none' || from === state.status ? 'none' : from === 'unknown' ? 'status' : { status: from };
    await this.#write(state, purge, stored, ttl).catch((err: unknown) => this.#warn(state.invocationId, err));
  }

  /**
   * Makes the index agree with a state: publishes its entry, then purges the invocation's
   * other entries, under any status or handler. Idempotent; for repairs (an invocation found
   * already ended, a stale entry seen while listing, a reindex). A state the server removes
   * by itself in `expiresInMs` gets an entry that goes with it.
   */
  async syncIndex(state: ExecutionState, options: { expiresInMs?: number } = {}): Promise<void> {
    await this.#write(state, 'any', undefined, messageTtl(options.expiresInMs));
  }

  /** Removes every index entry of an invocation (one whose state is gone); returns how many. */
  async drop(invocationId: string): Promise<number> {
    return dropIndexEntries(await this.#manager(), this.names, invocationId);
  }

  /** Publishes what is gathered and waits for the background writes, e.g. before a clean stop. */
  async settled(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flush();
    await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * Publishes the entry, then purges the invocation's older entries: the one under a given
   * status (one subject), under any other status (a state write: the handler never
   * changes), under any status or handler (a repair), or none (a new state).
   */
  async #write(state: ExecutionState, purge: { status: string } | 'status' | 'any' | 'none', stored?: () => void, ttl?: string): Promise<void> {
    const { invocationId, handler, status } = state;
    // Retried while no server answers for the stream yet (just created, as by a reindex).
    const acked = this.#js.publish(indexEntrySubject(this.names, status, handler, invocationId), payloadOf(state), { retries: 5, ...(ttl ? { ttl } : {}) });
    this.#register(handler);
    await acked;
    stored?.();
    if (purge === 'none') return;
    const jsm = await this.#manager();
    if (typeof purge === 'object') {
      await jsm.streams.purge(this.names.indexStream, { filter: indexEntrySubject(this.names, purge.status, handler, invocationId) });
      return;
    }
    const token = purge === 'status' ? encodeHandlerToken(handler) : '*';
    // All but the newest: ours, or one written after it.
    await removeOlderEntries(jsm, this.names, `${this.names.indexSubject}.*.${token}.${invocationId}`);
  }

  /** Records a handler name in the handlers bucket, once per name and process. */
  #register(handler: string): void {
    if (this.#registered.has(handler)) return;
    this.#registered.add(handler);
    this.#handlers ??= new Kvm(this.#nc).open(this.names.handlersBucket);
    this.#handlers
      .then((kv) => kv.put(encodeHandlerToken(handler), handler))
      .catch((err: unknown) => {
        this.#registered.delete(handler); // The next write tries again.
        this.#handlers = undefined;
        this.#warn(`handler ${handler}`, err);
      });
  }

  #manager(): Promise<JetStreamManager> {
    this.#jsm ??= jetstreamManager(this.#nc, { checkAPI: false });
    return this.#jsm;
  }

  #warn(what: string, err: unknown): void {
    if (Date.now() - this.#warnedAt < WARN_EVERY_MS) return;
    this.#warnedAt = Date.now();
    this.#logger.warn({ err }, `Execution index not updated for ${what} (list and stats repair it; 'inspect reindex' rebuilds it): ${errorMessage(err)}`);
  }
}

/**
 * The subjects holding index entries that match `filter` (one invocation's, under some
 * statuses or handlers), as the stream's leader has them: the server finds them in its
 * subject tree, a few lookups whatever the size of the index.
 */
async function entrySubjects(jsm: JetStreamManager, names: EngineNames, filter: string): Promise<string[]> {
  const info = await jsm.streams.info(names.indexStream, { subjects_filter: filter });
  return Object.keys(info.state.subjects ?? {});
}

/**
 * Deletes the invocation's entries matching `filter` but the newest (by stream sequence),
 * each by its sequence (see the module doc for why not a purge).
 */
async function removeOlderEntries(jsm: JetStreamManager, names: EngineNames, filter: string): Promise<void> {
  const subjects = await entrySubjects(jsm, names, filter);
  if (subjects.length < 2) return;
  const found = await Promise.all(subjects.map((subject) => jsm.streams.getMessage(names.indexStream, { last_by_subj: subject })));
  const seqs = found.flatMap((msg) => (msg ? [msg.seq] : [])).sort((a, b) => a - b);
  await Promise.all(
    seqs.slice(0, -1).map((seq) =>
      jsm.streams.deleteMessage(names.indexStream, seq, false).catch((err: unknown) => {
        // Gone already: another writer removed it.
        if (!isMessageGone(err)) throw err;
      }),
    ),
  );
}

/**
 * Removes every index entry of an invocation, under any status or handler, one subject at
 * a time (see the module doc); returns how many.
 */
export async function dropIndexEntries(jsm: JetStreamManager, names: EngineNames, invocationId: string): Promise<number> {
  const subjects = await entrySubjects(jsm, names, `${names.indexSubject}.*.*.${invocationId}`);
  const purged = await Promise.all(subjects.map((subject) => jsm.streams.purge(names.indexStream, { filter: subject })));
  return purged.reduce((sum, { purged: n }) => sum + n, 0);
}

/**
 * Records workflow names in the handlers bucket, so stats list them (with zero counts)
 * before their first invocation. Handlers are also recorded on their first index write.
 */
export async function registerWorkflows(nc: NatsConnection, names: EngineNames, workflowNames: Iterable<string>): Promise<void> {
  const kv = await new Kvm(nc).open(names.handlersBucket);
  await Promise.all([...workflowNames].map((name) => kv.put(encodeHandlerToken(name), name)));
}

/** HTTP-like status of a batched direct get that matched nothing. */
const NO_RESULTS = 404;

/**
 * Every handler name in the handlers bucket: its keys in one batched direct get (a replica
 * may answer a moment behind: names are for display), or a listing of its keys when the
 * batch cannot be read (more than 1,024 names).
 */
export async function knownHandlers(nc: NatsConnection, names: EngineNames, jsm: JetStreamManager): Promise<string[]> {
  const prefix = `$KV.${names.handlersBucket}.`;
  const tokens: string[] = [];
  try {
    const batch = await jsm.direct.getLastMessagesFor(`KV_${names.handlersBucket}`, { multi_last: [`${prefix}>`] });
    for await (const msg of batch) {
      const operation = msg.header.get('KV-Operation');
      if (operation !== 'DEL' && operation !== 'PURGE') tokens.push(msg.subject.slice(prefix.length));
    }
  } catch (err) {
    if (!(err instanceof JetStreamStatusError && err.code === NO_RESULTS)) {
      tokens.length = 0;
      const kv = await new Kvm(nc).open(names.handlersBucket);
      for await (const key of await kv.keys()) tokens.push(key);
    }
  }
  return tokens.map(decodeHandlerToken).sort();
}
