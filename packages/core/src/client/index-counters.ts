/**
 * Counts of execution index entries, kept by the server. Each count has a durable consumer
 * of its own on the index stream, filtered on a status, a workflow or both, never pulled
 * from: its `num_pending` is every matching entry, and the server keeps it up to date as
 * entries are written and removed. A count is then one consumer info, whatever the size
 * of the index; the consumer counts the matching entries once, when it is made (about
 * 0.35 ms per 1,000 entries on a 2-core machine), the first time anyone asks.
 *
 * - They are exact because the index removes entries one subject or sequence at a time
 *   (see `nats/execution-index.ts`).
 * - Each is kept on the stream's leader, like every read that must see the latest write
 *   (see `nats/leader-consumer.ts`), and made again there when the leader moves: after the
 *   leader's server is lost, the first count waits for the lost one's answer
 *   ({@link INFO_TIMEOUT_MS}) and its removal (about 4 s in all, measured on 3 local nodes).
 * - Their names say what they count (`index-count-status-failed`,
 *   `index-count-workflow-<token>`, `index-count-failed-of-<token>`), so every client
 *   shares them. They hold nothing but their position (in memory). Each counts afresh once
 *   an hour ({@link RECOUNT_AFTER_MS}), and `reindex` starts them all afresh. They go with
 *   the stream.
 */
import { AckPolicy, DeliverPolicy, jetstreamManager, type ConsumerConfig, type ConsumerInfo, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createHash } from 'node:crypto';
import type { EngineNames } from '../config.js';
import { placeholderFilter } from '../nats/execution-index.js';
import { addOnLeader, consumerServer, streamLeader } from '../nats/leader-consumer.js';
import { isAlreadyInUse, isNotFound } from '../nats/reconcile.js';
import { isTransient, withRetry } from '../nats/retry.js';

/** What one count counts: entries in a status, of a workflow (its handler token), or both. */
export interface IndexCount {
  status?: string;
  handlerToken?: string;
}

/** The longest handler token a counter's name holds as it is; longer ones are hashed. */
const MAX_TOKEN_IN_NAME = 100;
const COUNTER_PREFIX = 'index-count-';

/** The durable name of the counter of `count`. */
export function counterName({ status, handlerToken }: IndexCount): string {
  const token =
    handlerToken === undefined || handlerToken.length <= MAX_TOKEN_IN_NAME
      ? handlerToken
      : `sha1-${createHash('sha1').update(handlerToken).digest('hex')}`;
  if (status === undefined && token === undefined) throw new Error('a counter counts a status, a workflow or both');
  if (token === undefined) return `${COUNTER_PREFIX}status-${status}`;
  if (status === undefined) return `${COUNTER_PREFIX}workflow-${token}`;
  return `${COUNTER_PREFIX}${status}-of-${token}`;
}

/** Whether a consumer of the index stream is one of the counters. */
export function isCounter(name: string): boolean {
  return name.startsWith(COUNTER_PREFIX);
}

/** How long a counter's info may take before its server is taken for gone, ms. */
const INFO_TIMEOUT_MS = 2_000;
/**
 * A counter older than this counts again (made afresh, in the background): a writer of a
 * version before exact removals (a purge by wildcard) would have left it off by one per
 * such removal, and for no longer than this, ms.
 */
export const RECOUNT_AFTER_MS = 60 * 60_000;

/** Counts index entries with the counters of the module doc. */
export class IndexCounters {
  readonly #nc: NatsConnection;
  readonly #names: EngineNames;
  #jsm: Promise<JetStreamManager> | undefined;

  constructor(nc: NatsConnection, names: EngineNames) {
    this.#nc = nc;
    this.#names = names;
  }

  /** How many entries each count matches, as the stream's leader has them now. */
  async count(counts: readonly IndexCount[]): Promise<number[]> {
    const jsm = await this.#manager();
    const leader = await streamLeader(jsm, this.#names.indexStream);
    return Promise.all(counts.map((count) => this.#count(jsm, count, leader)));
  }

  async #count(jsm: JetStreamManager, count: IndexCount, leader: string | undefined): Promise<number> {
    const found = await this.#info(jsm, counterName(count));
    if (found && (leader === undefined || consumerServer(found) === leader)) {
      // Just placed by another client, and not given its filter yet: given it here too (the same update).
      const info = found.config.filter_subject === this.#filter(count) ? found : await this.#filtered(jsm, count);
      if (Date.now() - Date.parse(info.created) > RECOUNT_AFTER_MS) void this.#remake(jsm, count, leader).catch(() => undefined);
      return info.num_pending;
    }
    // Missing, or on a server that is no longer the leader: made (again) on the leader.
    try {
      return (await this.#remake(jsm, count, leader)).num_pending;
    } catch (err) {
      // Another client made it meanwhile.
      if (!isAlreadyInUse(err)) throw err;
      return (await this.#filtered(jsm, count)).num_pending;
    }
  }

  /** The counter given its filter (again): the server counts its entries when the filter changes. */
  async #filtered(jsm: JetStreamManager, count: IndexCount): Promise<ConsumerInfo> {
    const name = counterName(count);
    return withRetry(`count the execution index`, () => jsm.consumers.update(this.#names.indexStream, name, { filter_subject: this.#filter(count) }));
  }

  /** The counter's info; undefined when it does not exist or its server does not answer (went away with the old leader). */
  async #info(jsm: JetStreamManager, name: string): Promise<ConsumerInfo | undefined> {
    try {
      return await jsm.consumers.info(this.#names.indexStream, name);
    } catch (err) {
      if (isNotFound(err) || isTransient(err)) return undefined;
      throw err;
    }
  }

  /** Deletes the counter wherever it is, and makes it on the leader: it counts every matching entry. */
  async #remake(jsm: JetStreamManager, count: IndexCount, leader: string | undefined): Promise<ConsumerInfo> {
    const stream = this.#names.indexStream;
    const name = counterName(count);
    await jsm.consumers.delete(stream, name).catch(() => false);
    return addOnLeader(jsm, stream, this.#config(name, count), leader, placeholderFilter(this.#names));
  }

  #filter({ status, handlerToken }: IndexCount): string {
    return `${this.#names.indexSubject}.${status ?? '*'}.${handlerToken ?? '*'}.*`;
  }

  #config(name: string, count: IndexCount): Partial<ConsumerConfig> & { durable_name: string } {
    return {
      durable_name: name,
      description: 'Counts execution index entries (list and stats read its num_pending); never pulled from',
      filter_subject: this.#filter(count),
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      mem_storage: true,
    };
  }

  /** Its own manager: a counter's server that went away is given up on after INFO_TIMEOUT_MS, not the client's default. */
  #manager(): Promise<JetStreamManager> {
    this.#jsm ??= jetstreamManager(this.#nc, { timeout: INFO_TIMEOUT_MS, checkAPI: false });
    return this.#jsm;
  }
}
