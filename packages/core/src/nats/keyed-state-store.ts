/**
 * The shared state and lock of partition keys on JetStream: one protobuf
 * `durable.KeyedState` per key in the KEYED_STATE bucket, changed only by compare-and-set,
 * and the keys' queues in the KEYED_QUEUE stream (see `keyed-queue.ts`), so two processors
 * never both hold a key and an ended invocation's changes are applied exactly once.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { EngineNames } from '../config.js';
import { KeyedStateSchema, type KeyedState } from '../gen/durable/durable_pb.js';
import { DecodeError } from '../errors.js';
import { emptyKeyedState, keyedStateKey } from '../engine/keyed-state.js';
import { QueuedKeyedStateStore, type QueuedKeyedStateStoreOptions } from '../engine/queued-keyed-state-store.js';
import type { KeyedRecordStore, VersionedKeyedState } from '../engine/stores.js';
import { NatsKeyedQueue } from './keyed-queue.js';
import { isWrongLastSequence } from './state-store.js';

/** Where a {@link NatsKeyedStateStore} keeps its records and queues. */
export interface NatsKeyedStateStoreOptions extends QueuedKeyedStateStoreOptions {
  /** The KEYED_STATE bucket, opened for reads from its leader (`allow_direct: false`). */
  kv: KV;
  /** Publishes to the KEYED_QUEUE stream. */
  js: JetStreamClient;
  /** Reads from the KEYED_QUEUE stream's leader, and removes from it. */
  jsm: JetStreamManager;
  /** Where the stream and its subjects are. */
  names: EngineNames;
}

/** A KeyedStateStore on JetStream. */
export class NatsKeyedStateStore extends QueuedKeyedStateStore {
  constructor(options: NatsKeyedStateStoreOptions) {
    super(new NatsKeyedRecordStore(options.kv), new NatsKeyedQueue(options.js, options.jsm, options.names), options);
  }
}

/** The keys' records in a key-value bucket. */
export class NatsKeyedRecordStore implements KeyedRecordStore {
  constructor(private readonly kv: KV) {}

  async read(partitionKey: string): Promise<VersionedKeyedState> {
    const entry = await this.kv.get(keyedStateKey(partitionKey));
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return { record: emptyKeyedState(), revision: entry?.revision ?? 0 };
    try {
      return { record: fromBinary(KeyedStateSchema, entry.value), revision: entry.revision };
    } catch (err) {
      throw new DecodeError(`keyed state of ${partitionKey} is not a durable.KeyedState`, { cause: err });
    }
  }

  async write(partitionKey: string, record: KeyedState, revision: number): Promise<number | undefined> {
    const key = keyedStateKey(partitionKey);
    const bytes = toBinary(KeyedStateSchema, record);
    try {
      return revision === 0 ? await this.kv.create(key, bytes) : await this.kv.update(key, bytes, revision);
    } catch (err) {
      if (isWrongLastSequence(err)) return undefined;
      throw err;
    }
  }
}
