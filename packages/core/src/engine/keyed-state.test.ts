import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ExecutionStateSchema, KeyedStateSchema, KeyedWaiterSchema, type KeyedWaiter } from '../gen/durable/durable_pb.js';
import { encodeJson } from './codec.js';
import { MemoryKeyedRecordStore, MemoryKeyedStateStore } from './memory-stores.js';

const waiter = (invocationId: string) => create(KeyedWaiterSchema, { invocationId, handler: 'cart_add' });
const ended = (invocationId: string, tickets: string[]) =>
  create(ExecutionStateSchema, { invocationId, partitionKey: 'cart', status: 'completed', keyedStateChanges: { tickets: encodeJson(tickets) } });
const text = (values: Map<string, Uint8Array> | null) => Object.fromEntries([...(values ?? [])].map(([k, v]) => [k, new TextDecoder().decode(v)]));

describe('keyed state', () => {
  it('gives a key to one invocation at a time, in order', async () => {
    const store = new MemoryKeyedStateStore();
    expect(await store.acquire('cart', waiter('a'))).toEqual(new Map());
    expect(await store.acquire('cart', waiter('b'))).toBeNull();
    expect(await store.acquire('cart', waiter('c'))).toBeNull();
    expect((await store.release(ended('a', ['A'])))?.invocationId).toBe('b');
    expect(text(await store.acquire('cart', waiter('b')))).toEqual({ tickets: '["A"]' });
    expect(await store.acquire('cart', waiter('c'))).toBeNull();
  });

  it('replays an invocation whose changes were applied before its final state from the values it started with', async () => {
    const store = new MemoryKeyedStateStore();
    await store.acquire('cart', waiter('a'));
    await store.release(ended('a', ['A']));
    await store.acquire('cart', waiter('b'));
    await store.apply(ended('b', ['A', 'B']));
    // b's processor died before b's final state: b runs again, from what it saw the first time.
    expect(text(await store.acquire('cart', waiter('b')))).toEqual({ tickets: '["A"]' });
    await store.apply(ended('b', ['A', 'B']));
    await store.release(ended('b', ['A', 'B']));
    expect(text(await store.values('cart'))).toEqual({ tickets: '["A","B"]' });
  });

  it('wakes the next holder again when the invocation that handed the key on releases it again (its wake-up may be lost)', async () => {
    const store = new MemoryKeyedStateStore();
    await store.acquire('cart', waiter('a'));
    expect(await store.acquire('cart', waiter('b'))).toBeNull();
    expect((await store.release(ended('a', ['A'])))?.invocationId).toBe('b');
    // a's processor died before it sent b's wake-up; a's command comes back and a is released again.
    expect((await store.release(ended('a', ['A'])))?.invocationId).toBe('b');
    // Once b runs and hands on in turn, a's release wakes nobody.
    await store.acquire('cart', waiter('b'));
    await store.release(ended('b', ['A', 'B']));
    expect(await store.release(ended('a', ['A']))).toBeUndefined();
  });

  it('applies nothing for an invocation that has handed its key on (a late command for it would undo what came after)', async () => {
    const store = new MemoryKeyedStateStore();
    await store.acquire('cart', waiter('a'));
    expect(await store.acquire('cart', waiter('b'))).toBeNull();
    await store.release(ended('a', ['A']));
    await store.acquire('cart', waiter('b'));
    await store.apply(ended('b', ['A', 'B']));
    await store.release(ended('b', ['A', 'B']));
    // a's command comes back late: its end is followed through again.
    await store.apply(ended('a', ['A']));
    await store.release(ended('a', ['A']));
    expect(text(await store.values('cart'))).toEqual({ tickets: '["A","B"]' });
  });
});

describe('keyed state kept small', () => {
  it('keeps beside the values only what the last changes replaced, and still replays from the values seen', async () => {
    const records = new MemoryKeyedRecordStore();
    const store = new MemoryKeyedStateStore({ records });
    await store.acquire('cart', waiter('a'));
    await store.release(create(ExecutionStateSchema, { invocationId: 'a', partitionKey: 'cart', keyedStateChanges: { big: encodeJson('x'.repeat(1000)), tickets: encodeJson([]) } }));
    await store.acquire('cart', waiter('b'));
    await store.apply(ended('b', ['B']));
    const { record } = await records.read('cart');
    expect(record.valuesBeforeLastApplied).toEqual({});
    expect(record.lastAppliedUndo?.previous).toEqual({ tickets: encodeJson([]) });
    expect(text(await store.acquire('cart', waiter('b')))).toEqual({ big: JSON.stringify('x'.repeat(1000)), tickets: '[]' });
  });

  it('moves the queue of a record written by an older version into the queue, in order, and honours its values before the last changes', async () => {
    const records = new MemoryKeyedRecordStore();
    await records.write('cart', olderVersionRecord(), 0);
    const store = new MemoryKeyedStateStore({ records });
    // a's processor died after applying its changes: it replays from the values before them.
    expect(text(await store.acquire('cart', waiter('a')))).toEqual({ tickets: '["A"]' });
    expect(await store.acquire('cart', waiter('e'))).toBeNull();
    expect((await records.read('cart')).record.waiting).toEqual([]);
    let holder = 'a';
    let tickets = ['A', 'a'];
    for (const next of ['b', 'c', 'd', 'e']) {
      expect((await store.release(ended(holder, tickets)))?.invocationId).toBe(next);
      expect(text(await store.acquire('cart', waiter(next)))).toEqual({ tickets: JSON.stringify(tickets) });
      holder = next;
      tickets = [...tickets, next];
    }
    expect(await store.release(ended(holder, tickets))).toBeUndefined();
    expect(text(await store.values('cart'))).toEqual({ tickets: JSON.stringify(tickets) });
  });

  it('loses no waiter when the key is released between its place in the queue and its record write', async () => {
    const store = new MemoryKeyedStateStore({
      afterEnqueue: async (_, queued) => {
        if (queued.invocationId === 'b') released.push(await store.release(ended('a', ['A'])));
      },
    });
    const released: Array<KeyedWaiter | undefined> = [];
    await store.acquire('cart', waiter('a'));
    // a's release does not see b (its place is not confirmed yet); b then finds the key free.
    expect(text(await store.acquire('cart', waiter('b')))).toEqual({ tickets: '["A"]' });
    expect(released).toEqual([undefined]);
    expect(await store.release(ended('b', ['A', 'B']))).toBeUndefined();
  });
});

/** A record as the previous version wrote it: a holds the key with its changes applied, b, c and d wait. */
function olderVersionRecord() {
  return create(KeyedStateSchema, {
    holder: 'a',
    lastApplied: 'a',
    values: { tickets: encodeJson(['A', 'a']) },
    valuesBeforeLastApplied: { tickets: encodeJson(['A']) },
    waiting: ['b', 'c', 'd'].map(waiter),
  });
}
