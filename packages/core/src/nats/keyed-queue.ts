/**
 * The partition keys' queues in the KEYED_QUEUE stream: one message per waiting invocation
 * on `keyedq.<record key>.<invocation id>`, its body the `durable.KeyedWaiter`; a waiter's
 * place is its message's stream sequence, so no message grows with the queue.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import type { JetStreamClient, JetStreamManager, MsgRequest, NextMsgRequest } from '@nats-io/jetstream';
import type { EngineNames } from '../config.js';
import { DecodeError } from '../errors.js';
import { KeyedWaiterSchema, type KeyedWaiter } from '../gen/durable/durable_pb.js';
import { keyedStateKey } from '../engine/keyed-state.js';
import type { KeyedQueue, QueuedWaiter } from '../engine/stores.js';
import { isWrongLastSequence } from './state-store.js';

/** A KeyedQueue on a JetStream stream; every read that decides goes to the stream's leader. */
export class NatsKeyedQueue implements KeyedQueue {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #names: EngineNames;

  constructor(js: JetStreamClient, jsm: JetStreamManager, names: EngineNames) {
    this.#js = js;
    this.#jsm = jsm;
    this.#names = names;
  }

  async enqueue(partitionKey: string, waiter: KeyedWaiter): Promise<bigint> {
    const subject = this.#subject(partitionKey, waiter.invocationId);
    for (;;) {
      try {
        // Only onto an empty subject: a waiter already in the queue keeps its place.
        const ack = await this.#js.publish(subject, toBinary(KeyedWaiterSchema, waiter), { expect: { lastSubjectSequence: 0 } });
        return BigInt(ack.seq);
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
      const place = await this.place(partitionKey, waiter.invocationId);
      if (place !== undefined) return place;
      // Taken out of the queue between the two: it is added again.
    }
  }

  async oldest(partitionKey: string, upTo: bigint, except: string): Promise<QueuedWaiter | undefined> {
    const subjects = this.#subject(partitionKey, '>');
    for (let from = 1; ; ) {
      // The leader's get takes `next_by_subj` as the direct get does; the client's type omits it.
      const query: NextMsgRequest = { next_by_subj: subjects, seq: from };
      const found = await this.#jsm.streams.getMessage(this.#names.keyedQueueStream, query as unknown as MsgRequest);
      if (!found || BigInt(found.seq) > upTo) return undefined;
      const waiter = decodeWaiter(found.data, found.subject);
      if (waiter.invocationId !== except) return { place: BigInt(found.seq), waiter };
      from = found.seq + 1;
    }
  }

  async place(partitionKey: string, invocationId: string): Promise<bigint | undefined> {
    const stored = await this.#jsm.streams.getMessage(this.#names.keyedQueueStream, { last_by_subj: this.#subject(partitionKey, invocationId) });
    return stored ? BigInt(stored.seq) : undefined;
  }

  async remove(partitionKey: string, invocationId: string): Promise<void> {
    await this.#jsm.streams.purge(this.#names.keyedQueueStream, { filter: this.#subject(partitionKey, invocationId) });
  }

  #subject(partitionKey: string, last: string): string {
    return `${this.#names.keyedQueueSubject}.${keyedStateKey(partitionKey)}.${last}`;
  }
}

function decodeWaiter(bytes: Uint8Array, subject: string): KeyedWaiter {
  try {
    return fromBinary(KeyedWaiterSchema, bytes);
  } catch (err) {
    throw new DecodeError(`queue message ${subject} is not a durable.KeyedWaiter`, { cause: err });
  }
}
