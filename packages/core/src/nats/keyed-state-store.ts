/**
 * The shared state and lock of partition keys in the KEYED_STATE bucket: one protobuf
 * `durable.KeyedState` per key, changed only by compare-and-set, so two processors never
 * both hold a key and an ended invocation's changes are applied exactly once.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import type { KV } from '@nats-io/kv';
import { KeyedStateSchema, type ExecutionState, type KeyedState, type KeyedWaiter } from '../gen/durable/durable_pb.js';
import { DecodeError } from '../errors.js';
import { acquireKey, applyChanges, emptyKeyedState, keyedStateKey, keyedValues, releaseKey, startingValues } from '../engine/keyed-state.js';
import type { KeyedStateStore } from '../engine/stores.js';
import { isWrongLastSequence } from './state-store.js';

/** A KeyedStateStore on a JetStream key-value bucket. */
export class NatsKeyedStateStore implements KeyedStateStore {
  constructor(private readonly kv: KV) {}

  async acquire(partitionKey: string, waiter: KeyedWaiter): Promise<Map<string, Uint8Array> | null> {
    let granted = false;
    const record = await this.#change(partitionKey, (current) => {
      const outcome = acquireKey(current, waiter);
      granted = outcome.granted;
      // A read may come from a replica a little behind: a refusal is only trusted once a
      // compare-and-set at that revision has confirmed it (a wake-up must not be lost).
      return outcome.next ?? (granted ? undefined : current);
    });
    return granted ? startingValues(record, waiter.invocationId) : null;
  }

  async apply(state: ExecutionState): Promise<void> {
    await this.#change(state.partitionKey, (current) => applyChanges(current, state));
  }

  async release(state: ExecutionState): Promise<KeyedWaiter | undefined> {
    let wake: KeyedWaiter | undefined;
    await this.#change(state.partitionKey, (current) => {
      const outcome = releaseKey(current, state);
      wake = outcome.wake;
      return outcome.next;
    });
    return wake;
  }

  async values(partitionKey: string): Promise<Map<string, Uint8Array>> {
    return keyedValues((await this.#read(partitionKey)).record);
  }

  /** Reads, changes and writes a key's record by compare-and-set, reading again on a conflict; returns what stands. */
  async #change(partitionKey: string, change: (current: KeyedState) => KeyedState | undefined): Promise<KeyedState> {
    const key = keyedStateKey(partitionKey);
    for (;;) {
      const { record, revision } = await this.#read(partitionKey);
      const next = change(record);
      if (!next) return record;
      try {
        const bytes = toBinary(KeyedStateSchema, next);
        if (revision === 0) await this.kv.create(key, bytes);
        else await this.kv.update(key, bytes, revision);
        return next;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
    }
  }

  async #read(partitionKey: string): Promise<{ record: KeyedState; revision: number }> {
    const key = keyedStateKey(partitionKey);
    const entry = await this.kv.get(key);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return { record: emptyKeyedState(), revision: entry?.revision ?? 0 };
    try {
      return { record: fromBinary(KeyedStateSchema, entry.value), revision: entry.revision };
    } catch (err) {
      throw new DecodeError(`keyed state of ${partitionKey} is not a durable.KeyedState`, { cause: err });
    }
  }
}
