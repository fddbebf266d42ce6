/**
 * A partition key's lock and shared state kept in two parts that stay small whatever the
 * queue's length: one record per key (values, holder, last hand-over, `queue_tail`) changed
 * by compare-and-set, and a queue with one entry per waiter. The same algorithm runs on
 * JetStream and in memory; only the two parts differ.
 *
 * Why no waiter is lost: a waiter first takes its place in the queue, then writes the
 * record at the revision it read, moving `queue_tail` up to its place; a release hands the
 * key only to waiters up to `queue_tail`, and writes the record at the revision it read.
 * Either the release wrote first (the waiter's write fails, it reads again and finds the
 * key free or held by the next holder, behind whom it stays queued), or the waiter did
 * (the release's write fails, it reads again and sees the waiter).
 */
import type { ExecutionState, KeyedWaiter } from '../gen/durable/durable_pb.js';
import { acquireKey, applyChanges, keyedValues, releaseKey, startingValues, withQueueMoved } from './keyed-state.js';
import type { KeyedQueue, KeyedRecordStore, KeyedStateStore, VersionedKeyedState } from './stores.js';

/** Options of a {@link QueuedKeyedStateStore}. */
export interface QueuedKeyedStateStoreOptions {
  /**
   * Called between a waiter's place in the queue and the record write that confirms it,
   * for tests that make a release happen exactly then. @default none
   */
  afterEnqueue?: (partitionKey: string, waiter: KeyedWaiter) => Promise<void>;
}

/** A KeyedStateStore on a record store and a queue. */
export class QueuedKeyedStateStore implements KeyedStateStore {
  readonly #records: KeyedRecordStore;
  readonly #queue: KeyedQueue;
  readonly #afterEnqueue: QueuedKeyedStateStoreOptions['afterEnqueue'];

  constructor(records: KeyedRecordStore, queue: KeyedQueue, options: QueuedKeyedStateStoreOptions = {}) {
    this.#records = records;
    this.#queue = queue;
    this.#afterEnqueue = options.afterEnqueue;
  }

  async acquire(partitionKey: string, waiter: KeyedWaiter): Promise<Map<string, Uint8Array> | null> {
    const id = waiter.invocationId;
    let place: bigint | undefined;
    for (;;) {
      const { record, revision } = await this.#read(partitionKey);
      let outcome = acquireKey(record, id, place);
      if (outcome.queue) {
        place = await this.#queue.enqueue(partitionKey, waiter);
        await this.#afterEnqueue?.(partitionKey, waiter);
        // Written at the revision read before the place was taken: a release in between
        // changed the record, so this write fails and the key is looked at again.
        outcome = acquireKey(record, id, place);
      }
      if (outcome.next && (await this.#records.write(partitionKey, outcome.next, revision)) === undefined) continue;
      if (!outcome.granted) return null;
      // The key came free after it had taken a place: it leaves the queue.
      if (place !== undefined) await this.#queue.remove(partitionKey, id);
      return startingValues(outcome.next ?? record, id);
    }
  }

  async apply(state: ExecutionState): Promise<void> {
    for (;;) {
      const { record, revision } = await this.#read(state.partitionKey);
      const next = applyChanges(record, state);
      if (!next || (await this.#records.write(state.partitionKey, next, revision)) !== undefined) return;
    }
  }

  async release(state: ExecutionState): Promise<KeyedWaiter | undefined> {
    const key = state.partitionKey;
    const id = state.invocationId;
    for (;;) {
      const { record, revision } = await this.#read(key);
      // Out of the queue before anything else, where it may still be (queued and then
      // cancelled, or a crash between taking the key and leaving the queue): an ended
      // invocation is never handed the key, which would apply its changes a second time.
      // Looked for once the record is read, which may have moved an older version's queue.
      const [place, oldest] = await Promise.all([
        this.#queue.place(key, id),
        record.holder === id ? this.#queue.oldest(key, record.queueTail, id) : undefined,
      ]);
      if (place !== undefined) await this.#queue.remove(key, id);
      const { next, wake } = releaseKey(record, state, oldest?.waiter);
      if (next && (await this.#records.write(key, next, revision)) === undefined) continue;
      // A crash before this leaves the new holder in the queue: its own release takes it out.
      if (next && wake) await this.#queue.remove(key, wake.invocationId);
      return wake;
    }
  }

  async values(partitionKey: string): Promise<Map<string, Uint8Array>> {
    return keyedValues((await this.#records.read(partitionKey)).record);
  }

  /**
   * The key's record. One written by an older version may still hold its queue (`waiting`):
   * that is moved into the queue, in order, before anything else changes the record, so
   * every waiter queued after it comes later.
   */
  async #read(partitionKey: string): Promise<VersionedKeyedState> {
    for (;;) {
      const read = await this.#records.read(partitionKey);
      if (read.record.waiting.length === 0) return read;
      let tail = 0n;
      for (const waiter of read.record.waiting) tail = await this.#queue.enqueue(partitionKey, waiter);
      const moved = withQueueMoved(read.record, tail);
      const revision = await this.#records.write(partitionKey, moved, read.revision);
      if (revision !== undefined) return { record: moved, revision };
    }
  }
}
