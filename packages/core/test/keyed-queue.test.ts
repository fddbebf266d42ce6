/**
 * A partition key's queue on the real cluster, at the store: waiters live in the
 * KEYED_QUEUE stream, one message each, so the key's record stays small however long the
 * queue; no waiter is lost when a release comes between a waiter's place and its record
 * write; records written by the previous version (queue and values inside) still work.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectNats, decodeJson, encodeJson } from '../src/index.js';
import { ExecutionStateSchema, KeyedStateSchema, KeyedWaiterSchema, type KeyedWaiter } from '../src/gen/durable/durable_pb.js';
import { keyedStateKey } from '../src/engine/keyed-state.js';
import type { QueuedKeyedStateStoreOptions } from '../src/engine/queued-keyed-state-store.js';
import { NatsKeyedStateStore } from '../src/nats/keyed-state-store.js';
import { setupEngine, type EngineResources } from '../src/nats/setup.js';

let nc: NatsConnection;
let resources: EngineResources;

beforeAll(async () => {
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  resources = await setupEngine(nc, { namespace: 'keyedqueue', partitions: 1 });
});

afterAll(async () => {
  await nc?.close();
});

function store(options: QueuedKeyedStateStoreOptions = {}): NatsKeyedStateStore {
  return new NatsKeyedStateStore({ kv: resources.keyedStateKv, js: jetstream(nc), jsm: resources.jsm, names: resources.names, ...options });
}

const waiter = (invocationId: string) => create(KeyedWaiterSchema, { invocationId, handler: 'cart_add' });
const ended = (invocationId: string, partitionKey: string, tickets: string[]) =>
  create(ExecutionStateSchema, { invocationId, partitionKey, status: 'completed', keyedStateChanges: { tickets: encodeJson(tickets) } });
const tickets = (values: Map<string, Uint8Array> | null) => (values?.has('tickets') ? decodeJson(values.get('tickets')!, 'tickets') : undefined);

/** The key's record as stored, in bytes. */
async function recordBytes(partitionKey: string): Promise<number> {
  return (await resources.keyedStateKv.get(keyedStateKey(partitionKey)))?.value.length ?? 0;
}

/** Messages left in the key's queue. */
async function queued(partitionKey: string): Promise<number> {
  const info = await resources.jsm.streams.info(resources.names.keyedQueueStream, { subjects_filter: `${resources.names.keyedQueueSubject}.${keyedStateKey(partitionKey)}.>` });
  return Object.values(info.state.subjects ?? {}).reduce((sum, n) => sum + n, 0);
}

describe('a partition key’s queue', () => {
  it('loses no waiter when the key is released between its place in the queue and its record write', async () => {
    const key = 'race-free';
    const plain = store();
    const released: Array<KeyedWaiter | undefined> = [];
    // The release runs exactly between b's place in the queue and b's record write.
    const racing = store({
      afterEnqueue: async () => {
        if (released.length === 0) released.push(await plain.release(ended('a', key, ['A'])));
      },
    });
    expect(await plain.acquire(key, waiter('a'))).toEqual(new Map());
    const values = await racing.acquire(key, waiter('b'));
    // a's release did not see b, whose place was not confirmed; b's write failed, and b
    // found the key free on reading again.
    expect(released).toEqual([undefined]);
    expect(tickets(values)).toEqual(['A']);
    expect(await queued(key)).toBe(0);
    expect(await plain.release(ended('b', key, ['A', 'B']))).toBeUndefined();
    expect(tickets(await plain.values(key))).toEqual(['A', 'B']);
  });

  it('keeps a waiter queued behind the new holder when the key is handed on between its place and its record write', async () => {
    const key = 'race-held';
    const plain = store();
    const released: Array<KeyedWaiter | undefined> = [];
    const racing = store({
      afterEnqueue: async (_, queuedWaiter) => {
        if (queuedWaiter.invocationId === 'b') released.push(await plain.release(ended('a', key, ['A'])));
      },
    });
    expect(await plain.acquire(key, waiter('a'))).toEqual(new Map());
    expect(await plain.acquire(key, waiter('c'))).toBeNull();
    expect(await racing.acquire(key, waiter('b'))).toBeNull();
    expect(released.map((w) => w?.invocationId)).toEqual(['c']);
    expect(tickets(await plain.acquire(key, waiter('c')))).toEqual(['A']);
    expect((await plain.release(ended('c', key, ['A', 'C'])))?.invocationId).toBe('b');
    expect(tickets(await plain.acquire(key, waiter('b')))).toEqual(['A', 'C']);
    expect(await plain.release(ended('b', key, ['A', 'C', 'B']))).toBeUndefined();
    expect(await queued(key)).toBe(0);
  });

  it('works with a record written by the previous version: its queue is woken in order before later waiters, its values before the last changes honoured', async () => {
    const key = 'older-version';
    const older = create(KeyedStateSchema, {
      holder: 'a',
      lastApplied: 'a',
      values: { tickets: encodeJson(['A', 'a']) },
      valuesBeforeLastApplied: { tickets: encodeJson(['A']) },
      waiting: ['b', 'c', 'd'].map(waiter),
    });
    await resources.keyedStateKv.put(keyedStateKey(key), toBinary(KeyedStateSchema, older));
    const keyed = store();
    // a's processor died after applying its changes: it replays from the values before them.
    expect(tickets(await keyed.acquire(key, waiter('a')))).toEqual(['A']);
    expect(await keyed.acquire(key, waiter('e'))).toBeNull();
    let holder = 'a';
    let list = ['A', 'a'];
    for (const next of ['b', 'c', 'd', 'e']) {
      expect((await keyed.release(ended(holder, key, list)))?.invocationId).toBe(next);
      expect(tickets(await keyed.acquire(key, waiter(next)))).toEqual(list);
      holder = next;
      list = [...list, next];
    }
    expect(await keyed.release(ended(holder, key, list))).toBeUndefined();
    expect(tickets(await keyed.values(key))).toEqual(list);
    expect(await queued(key)).toBe(0);
  });

  it('hands a key with 10,000 waiting invocations on in order, its record staying small throughout', { timeout: 900_000 }, async () => {
    const key = 'hot';
    const keyed = store();
    const ids = Array.from({ length: 10_000 }, (_, i) => `w${i}`);
    // Every holder sets one small value, so the record's size is its bookkeeping.
    const endOf = (id: string) => create(ExecutionStateSchema, { invocationId: id, partitionKey: key, status: 'completed', keyedStateChanges: { last: encodeJson(id) } });
    const maxBytes = 1024;
    // Looked at every 50th step and at the longest queue, to spare round trips: its size
    // varies only with the IDs and sequence numbers in it.
    const staysSmall = async (step: number) => {
      if (step % 50 === 0) expect(await recordBytes(key)).toBeLessThan(maxBytes);
    };
    expect(await keyed.acquire(key, waiter('first'))).toEqual(new Map());
    for (const [step, id] of ids.entries()) {
      expect(await keyed.acquire(key, waiter(id))).toBeNull();
      await staysSmall(step);
    }
    expect(await queued(key)).toBe(ids.length);
    expect(await recordBytes(key)).toBeLessThan(maxBytes);
    let holder = 'first';
    for (const [step, id] of ids.entries()) {
      expect((await keyed.release(endOf(holder)))?.invocationId).toBe(id);
      expect(decodeJson((await keyed.acquire(key, waiter(id)))!.get('last')!, 'last')).toBe(holder);
      await staysSmall(step);
      holder = id;
    }
    expect(await keyed.release(endOf(holder))).toBeUndefined();
    expect(await queued(key)).toBe(0);
  });
});
