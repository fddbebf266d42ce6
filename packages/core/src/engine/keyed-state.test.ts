import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ExecutionStateSchema, KeyedWaiterSchema } from '../gen/durable/durable_pb.js';
import { encodeJson } from './codec.js';
import { MemoryKeyedStateStore } from './memory-stores.js';

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
