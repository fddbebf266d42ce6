/**
 * Reads the execution index a page at a time, as the stream's leader has it now, without
 * making a consumer for each page: making one costs the server a count of every entry its
 * filter matches after its start (about 0.35 ms per 1,000 entries on a 2-core machine, so
 * 35 ms for a status holding 100,000 and 150 ms for half of a 1,000,000-entry index), most
 * of a page's time on a large index.
 *
 * - Every entry (no filter): the page's stream sequences are read one by one, all at once
 *   (a removed entry leaves a gap: a few more are read, by the share of gaps the stream
 *   reports). No consumer.
 * - By status or workflow: through a consumer kept from one page to the next, *anchored*
 *   where a page started. It acknowledges nothing it delivers but hands every entry back
 *   (a nak), in order, so that its next fetch brings the same entries again (less those
 *   removed since), then the ones after them: asked for the same page again, it has it;
 *   asked for the next one, it first acknowledges the entries up to that page's cursor and
 *   is anchored there. The one anchored at the start (the *head*, one per filter and page
 *   size) never moves on: the second page comes from a new consumer anchored at the first
 *   page's cursor (a head holding every page read from it would fetch them all again for
 *   each).
 * - Those consumers are one-replica and in memory, on the stream's leader (see
 *   `nats/leader-consumer.ts`), so a page sees every entry written before it was asked
 *   for; one found elsewhere (the leader moved) is replaced. Named `index-page-<random>`,
 *   they are deleted when unused for {@link IDLE_MS}, and the server deletes those of a
 *   client that went away ({@link INACTIVE_MS}). Pages of one filter are read one at a time.
 */
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  type JsMsg,
  type StoredMsg,
  type StreamState,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import type { EngineNames } from '../config.js';
import { parseIndexSubject, placeholderFilter, type IndexKey } from '../nats/execution-index.js';
import { addOnLeader, consumerServer } from '../nats/leader-consumer.js';
import { withRetry } from '../nats/retry.js';

/** One index entry as a page reads it: its subject's parts, its stream sequence, and its payload's filter fields. */
export interface IndexEntry extends IndexKey {
  seq: number;
  partitionKey?: string;
  createdAtMs?: number;
}

/** Index entries read at once. */
export interface IndexRead {
  entries: IndexEntry[];
  /** True when more entries matched the filter after the last one read. */
  more: boolean;
}

/** Most entries one fetch brings: what a consumer holds (a page) and the page after them, each of at most 1,000. */
const FETCH_CAPACITY = 2_000;
/** Consumers kept at most; the least recently used goes first. */
const MAX_KEPT = 32;
/** A consumer unused this long is deleted, ms. */
const IDLE_MS = 10 * 60_000;
/** The server deletes a consumer nobody pulled from this long (its client went away), ms. */
const INACTIVE_MS = 2 * IDLE_MS;
/** How long delivered entries stay unacknowledged before the server offers them again: they are handed back at once, so never, ms. */
const ACK_WAIT_MS = INACTIVE_MS;
/** How long one fetch waits for entries that do not come (purged, or a pull nobody answered), ms. */
const FETCH_EXPIRES_MS = 1_000; // the least the client allows
/** Fetches of one page's entries at most. */
const FETCH_ROUNDS = 4;
/** Stream sequences read at once when reading every entry. */
const SEQUENCE_READS = 256;
/** Rounds of sequence reads for one page, at most; past them the page ends where they stopped. */
const SEQUENCE_ROUNDS = 8;
const NS_PER_MS = 1e6;
const NAK = '-NAK';
const ACK = '+ACK';

/** A consumer kept between pages, see the module doc. */
interface Anchored {
  filter: string;
  info: ConsumerInfo;
  consumer: Consumer;
  /** The sequence it is anchored after (0: the start, the head). */
  anchor: number;
  /** The entries a page it reads holds (its `limit`). */
  size: number;
  /** What it delivered and handed back, in order, all after the anchor. */
  held: JsMsg[];
  usedAt: number;
}

/** Reads index entries as the module doc says. */
export class IndexPages {
  readonly #nc: NatsConnection;
  readonly #names: EngineNames;
  readonly #jsm: () => Promise<JetStreamManager>;
  /** In the order they were last used: the first is the least recently used. */
  readonly #kept = new Set<Anchored>();
  /** Reads of each filter, one at a time. */
  readonly #turns = new Map<string, Promise<void>>();

  constructor(nc: NatsConnection, names: EngineNames, jsm: () => Promise<JetStreamManager>) {
    this.#nc = nc;
    this.#names = names;
    this.#jsm = jsm;
  }

  /**
   * Up to `max` entries matching `filter` (undefined: every entry) after stream sequence
   * `after`, oldest first, as the stream's leader has them now.
   */
  async read(filter: string | undefined, after: number, max: number): Promise<IndexRead> {
    const jsm = await this.#jsm();
    const stream = await withRetry('read the execution index', () => jsm.streams.info(this.#names.indexStream));
    this.#evict(stream.cluster?.leader);
    if (filter === undefined) return this.#bySequence(jsm, stream.state, after, max);
    return this.#turn(filter, () => this.#anchored(jsm, filter, after, max, stream.cluster?.leader));
  }

  /** Deletes every consumer kept. */
  async close(): Promise<void> {
    const kept = [...this.#kept];
    this.#kept.clear();
    await Promise.all(kept.map((k) => this.#delete(k)));
  }

  /** Every entry after `after`: reads its sequences one by one, a round of them at a time. */
  async #bySequence(jsm: JetStreamManager, state: StreamState, after: number, max: number): Promise<IndexRead> {
    // Read one past the page, to know whether another follows.
    const wanted = max + 1;
    const live = state.messages / Math.max(1, state.last_seq - state.first_seq + 1);
    const entries: IndexEntry[] = [];
    const read = (query: { seq: number; next_by_subj?: string }) =>
      withRetry('read the execution index', () => jsm.streams.getMessage(this.#names.indexStream, query));
    let next = Math.max(after + 1, state.first_seq);
    for (let round = 0, found = 1; entries.length < wanted && next <= state.last_seq && round < SEQUENCE_ROUNDS; round++) {
      if (found === 0) {
        // A stretch of removed entries: on from the next entry there is.
        const first = await read({ seq: next, next_by_subj: '>' });
        next = first?.seq ?? state.last_seq + 1;
        if (!first) break;
      }
      const count = Math.min(SEQUENCE_READS, state.last_seq - next + 1, Math.ceil(((wanted - entries.length) / Math.max(live, 0.01)) * 1.1) + 2);
      const msgs = await Promise.all(Array.from({ length: count }, (_, i) => read({ seq: next + i })));
      const before = entries.length;
      for (const msg of msgs) if (msg) entries.push(...this.#entry(msg));
      found = entries.length - before;
      next += count;
    }
    // Rounds used up among removed entries: the page ends there, with a cursor to go on from.
    const cutShort = entries.length < wanted && next <= state.last_seq;
    return { entries: entries.slice(0, max), more: entries.length > max || cutShort };
  }

  /** A page through the anchored consumer holding its position, or a new one anchored there. */
  async #anchored(jsm: JetStreamManager, filter: string, after: number, max: number, leader: string | undefined): Promise<IndexRead> {
    const found = this.#find(filter, after, max);
    if (found) {
      const read = await this.#through(found, after, max);
      if (read) return read;
    }
    const made = await this.#make(jsm, filter, after, max, leader);
    return (await this.#through(made, after, max)) ?? { entries: [], more: false };
  }

  /**
   * The kept consumer of `filter` for a page after `after`: the head of that page size, one
   * anchored at `after`, or one holding it (the page that ends there was read through it).
   */
  #find(filter: string, after: number, max: number): Anchored | undefined {
    let holding: Anchored | undefined;
    for (const k of this.#kept) {
      if (k.filter !== filter) continue;
      if (after === 0 ? k.anchor === 0 && k.size === max : k.anchor === after) return k;
      if (after > 0 && k.anchor > 0 && k.held.some((m) => m.seq === after)) holding = k;
    }
    return holding;
  }

  /** Reads a page through `k`, anchored at or holding `after`; undefined when it cannot (it is gone). */
  async #through(k: Anchored, after: number, max: number): Promise<IndexRead | undefined> {
    this.#kept.delete(k);
    if (after !== k.anchor) {
      // Moves on to `after`: what it holds up to there is behind it for good.
      const behind = k.held.filter((m) => m.seq <= after);
      k.held = k.held.filter((m) => m.seq > after);
      k.anchor = after;
      if (!(await acknowledge(this.#nc, behind).then(() => true, () => false))) {
        void this.#delete(k);
        return undefined;
      }
    }
    const info = await withRetry('read the execution index', () => k.consumer.info()).catch(() => undefined);
    if (!info) {
      void this.#delete(k); // Gone: the server deletes a consumer unused for a long time.
      return undefined;
    }
    // What it holds (less what was removed since), and the entries after them still wanted.
    const wanted = Math.min(FETCH_CAPACITY, info.num_ack_pending + Math.min(Math.max(0, max - info.num_ack_pending), info.num_pending));
    const messages = await this.#pull(k.consumer, wanted);
    if (messages.some((m, i) => i > 0 && m.seq <= (messages[i - 1]?.seq ?? 0))) {
      // Out of order: it no longer holds what it delivered.
      void this.#delete(k);
      return undefined;
    }
    if (await handBack(this.#nc, messages).then(() => true, () => false)) {
      k.held = messages;
      k.usedAt = Date.now();
      this.#kept.add(k);
    } else {
      // It may not deliver them again for a while: not kept.
      void this.#delete(k);
    }
    const page = messages.filter((m) => m.seq > after);
    const last = messages.at(-1);
    return {
      entries: page.slice(0, max).flatMap((m) => this.#entry(m)),
      more: page.length > max || (last !== undefined && last.info.pending > 0),
    };
  }

  /** A new consumer of `filter` anchored at `after`, on the leader. */
  async #make(jsm: JetStreamManager, filter: string, after: number, max: number, leader: string | undefined): Promise<Anchored> {
    const config: Partial<ConsumerConfig> & { durable_name: string } = {
      // Named, so that it can be given its filter once placed; the server deletes it when unused.
      durable_name: `index-page-${randomBytes(8).toString('hex')}`,
      filter_subject: filter,
      ...(after > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: after + 1 } : { deliver_policy: DeliverPolicy.All }),
      ack_policy: AckPolicy.Explicit,
      ack_wait: ACK_WAIT_MS * NS_PER_MS,
      max_ack_pending: 2 * FETCH_CAPACITY,
      max_deliver: -1,
      mem_storage: true,
      inactive_threshold: INACTIVE_MS * NS_PER_MS,
    };
    const info = await addOnLeader(jsm, this.#names.indexStream, config, leader, placeholderFilter(this.#names));
    const consumer = jetstream(this.#nc).consumers.getConsumerFromInfo(info);
    return { filter, info, consumer, anchor: after, size: max, held: [], usedAt: Date.now() };
  }

  /**
   * Pulls up to `n` messages, stopping at the last one that can come. A consumer just made
   * may not answer pulls from every server yet: a pull then fails with "no responders"
   * (retried) or goes unanswered until it expires, and is made again while the consumer
   * still has entries to deliver.
   */
  async #pull(consumer: Consumer, n: number): Promise<JsMsg[]> {
    const got: JsMsg[] = [];
    for (let round = 0; got.length < n && round < FETCH_ROUNDS; round++) {
      const ended = await withRetry('read the execution index', async () => {
        const messages = await consumer.fetch({ max_messages: n - got.length, expires: FETCH_EXPIRES_MS });
        let end = false;
        for await (const msg of messages) {
          got.push(msg);
          // Nothing follows a first delivery that leaves none pending: no waiting for the fetch to expire.
          end = got.length >= n || (msg.info.pending === 0 && !msg.info.redelivered);
          if (end) break;
        }
        messages.stop();
        return end;
      });
      if (ended || (await withRetry('read the execution index', () => consumer.info())).num_pending === 0) break;
    }
    return got;
  }

  #entry(msg: JsMsg | StoredMsg): IndexEntry[] {
    const key = parseIndexSubject(this.#names, msg.subject);
    return key ? [{ ...key, seq: msg.seq, ...indexPayload(msg.data) }] : [];
  }

  /** Deletes the consumers unused for IDLE_MS, off the leader, or past MAX_KEPT. */
  #evict(leader: string | undefined): void {
    const now = Date.now();
    let over = this.#kept.size - MAX_KEPT;
    for (const k of this.#kept) {
      if (over-- > 0 || now - k.usedAt >= IDLE_MS || (leader !== undefined && consumerServer(k.info) !== leader)) {
        this.#kept.delete(k);
        void this.#delete(k);
      }
    }
  }

  async #delete(k: Anchored): Promise<void> {
    const jsm = await this.#jsm();
    await jsm.consumers.delete(this.#names.indexStream, k.info.name).catch(() => false);
  }

  /** Runs `fn` once the reads of `filter` before it are done. */
  async #turn<T>(filter: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#turns.get(filter) ?? Promise.resolve();
    let done: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const queue = before.then(() => mine);
    this.#turns.set(filter, queue);
    await before;
    try {
      return await fn();
    } finally {
      done();
      if (this.#turns.get(filter) === queue) this.#turns.delete(filter);
    }
  }
}

/**
 * Hands messages back in their order: the server queues them for delivery again in the
 * order it receives the naks, and answers the last one once all before it were taken.
 */
async function handBack(nc: NatsConnection, messages: readonly JsMsg[]): Promise<void> {
  await respond(nc, messages, NAK);
}

/** Acknowledges messages delivered (and handed back) before; resolves once the server took all of them. */
async function acknowledge(nc: NatsConnection, messages: readonly JsMsg[]): Promise<void> {
  await respond(nc, messages, ACK);
}

/**
 * Sends `answer` on each message's ack subject, in order, and waits for the server's reply
 * to the last one: it handles one consumer's acks in the order they come, so that reply
 * means all were taken. On the subjects rather than through the messages' own methods,
 * which answer a message only once (a message handed back is acknowledged later).
 */
async function respond(nc: NatsConnection, messages: readonly JsMsg[], answer: string): Promise<void> {
  const subjects = messages.map(ackSubject);
  if (subjects.some((subject) => subject === undefined)) throw new Error('the client gave no ack subject for a message');
  const last = subjects.at(-1);
  if (last === undefined) return;
  for (const subject of subjects.slice(0, -1)) nc.publish(subject as string, answer);
  await nc.request(last, answer);
}

/** The subject a message is acknowledged on: the client keeps it on the message (`reply`) without typing it. */
function ackSubject(msg: JsMsg): string | undefined {
  const { reply } = msg as { reply?: unknown };
  return typeof reply === 'string' && reply !== '' ? reply : undefined;
}

/** The partition key and creation time an index entry carries in its payload, when it does. */
function indexPayload(data: Uint8Array): { partitionKey?: string; createdAtMs?: number } {
  try {
    const payload = JSON.parse(new TextDecoder().decode(data)) as { partition_key?: unknown; created_at_ms?: unknown };
    return {
      ...(typeof payload.partition_key === 'string' ? { partitionKey: payload.partition_key } : {}),
      ...(typeof payload.created_at_ms === 'number' ? { createdAtMs: payload.created_at_ms } : {}),
    };
  } catch {
    return {};
  }
}
