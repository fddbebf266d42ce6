/**
 * Exclusive workflows on the real cluster: invocations of one partition key run one at a
 * time and in order, also while one of them is suspended, and share state kept across
 * invocations; other keys run meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJson, defineWorkflow, type DurableClient } from '../src/index.js';
import { startTestEngine, type TestEngine } from './helpers.js';

const namespace = 'keyedtest';

const addTicket = defineWorkflow<{ ticket: string }, number>(
  'cart_add',
  async (ctx, { ticket }) => {
    const tickets = ctx.get<string[]>('tickets') ?? [];
    await ctx.set('tickets', [...tickets, ticket]);
    return tickets.length + 1;
  },
  { exclusive: true },
);

const awakeables = new Map<string, string>();
const made = new Map<string, () => void>();

/** Adds a ticket once someone resolves its awakeable: holds the key while suspended. */
const addApproved = defineWorkflow<{ ticket: string }, number>(
  'cart_add_approved',
  async (ctx, { ticket }) => {
    const approval = ctx.awakeable<boolean>();
    awakeables.set(ctx.invocationId, approval.id);
    made.get(ctx.invocationId)?.();
    if (!(await approval.promise)) return -1;
    const tickets = ctx.get<string[]>('tickets') ?? [];
    await ctx.set('tickets', [...tickets, ticket]);
    return tickets.length + 1;
  },
  { exclusive: true },
);

const checkout = defineWorkflow<Record<string, never>, string[]>(
  'cart_checkout',
  async (ctx) => {
    const tickets = ctx.get<string[]>('tickets') ?? [];
    await ctx.clear('tickets');
    return tickets;
  },
  { exclusive: true },
);

let engine: TestEngine;
let client: DurableClient;

beforeAll(async () => {
  engine = await startTestEngine(namespace, [addTicket, addApproved, checkout]);
  client = engine.client;
});

afterAll(async () => {
  await engine?.stop();
});

function awakeableOf(invocationId: string): Promise<string> {
  return new Promise((resolve) => {
    const known = awakeables.get(invocationId);
    if (known) resolve(known);
    else made.set(invocationId, () => resolve(awakeables.get(invocationId) ?? ''));
  });
}

describe('exclusive workflows', () => {
  it('keep the state of a partition key across invocations', async () => {
    expect(await client.invoke(addTicket, { ticket: 'A1' }, { partitionKey: 'cart-1' })).toBe(1);
    expect(await client.invoke(addTicket, { ticket: 'B2' }, { partitionKey: 'cart-1' })).toBe(2);
    expect(await client.getKeyedState('cart-1')).toEqual({ tickets: ['A1', 'B2'] });
    expect(await client.invoke(checkout, {}, { partitionKey: 'cart-1' })).toEqual(['A1', 'B2']);
    expect(await client.getKeyedState('cart-1')).toEqual({});
  });

  it('run concurrent invocations of one key one at a time, in order, losing no update', async () => {
    const keys = ['cart-many-a', 'cart-many-b'];
    const submitted = [];
    for (let i = 0; i < 20; i++) {
      for (const key of keys) submitted.push(await client.submit(addTicket, { ticket: `${key}:${i}` }, { partitionKey: key }));
    }
    const finals = await Promise.all(submitted.map((s) => client.waitForResult(s.invocationId)));
    expect(finals.every((f) => f.status === 'completed')).toBe(true);
    for (const key of keys) {
      expect(await client.getKeyedState(key)).toEqual({ tickets: Array.from({ length: 20 }, (_, i) => `${key}:${i}`) });
    }
  });

  it('run 200 invocations queued on one key one after another, in the order submitted', { timeout: 600_000 }, async () => {
    const key = 'cart-200';
    const submitted = [];
    for (let i = 0; i < 200; i++) submitted.push(await client.submit(addTicket, { ticket: `${i}` }, { partitionKey: key }));
    const finals = await Promise.all(submitted.map((s) => client.waitForResult(s.invocationId, { timeoutMs: 300_000 })));
    // Each returns how many tickets there were once it had added its own.
    expect(finals.map((f) => f.status === 'completed' && decodeJson(f.currentState, 'output'))).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(await client.getKeyedState(key)).toEqual({ tickets: Array.from({ length: 200 }, (_, i) => `${i}`) });
  });

  it('show the changes of an invocation to whoever sees it ended', async () => {
    for (let i = 0; i < 10; i++) {
      const { invocationId } = await client.submit(addTicket, { ticket: `T${i}` }, { partitionKey: 'cart-seen' });
      await client.waitForStatus(invocationId, 'completed');
      expect(((await client.getKeyedState('cart-seen')).tickets as string[]).at(-1)).toBe(`T${i}`);
    }
  });

  it('queue later invocations of a key while one is suspended; other keys run meanwhile', async () => {
    const held = await client.submit(addApproved, { ticket: 'first' }, { partitionKey: 'cart-held' });
    const awakeable = await awakeableOf(held.invocationId);
    await client.waitForStatus(held.invocationId, 'suspended');

    const queued = await client.submit(addTicket, { ticket: 'second' }, { partitionKey: 'cart-held' });
    const pending = await client.waitForStatus(queued.invocationId, 'pending');
    expect(pending.owner).toBe('');
    // Another key is not held up.
    expect(await client.invoke(addTicket, { ticket: 'elsewhere' }, { partitionKey: 'cart-free' })).toBe(1);
    expect((await client.getState(queued.invocationId))?.status).toBe('pending');

    await client.resolveAwakeable(awakeable, true);
    expect((await client.waitForResult(held.invocationId)).status).toBe('completed');
    const second = await client.waitForResult(queued.invocationId);
    expect(second.status).toBe('completed');
    expect(await client.getKeyedState('cart-held')).toEqual({ tickets: ['first', 'second'] });
  });

  it('pass the key on past a queued invocation that was cancelled', async () => {
    const held = await client.submit(addApproved, { ticket: 'kept' }, { partitionKey: 'cart-cancel' });
    const awakeable = await awakeableOf(held.invocationId);
    await client.waitForStatus(held.invocationId, 'suspended');
    const dropped = await client.submit(addTicket, { ticket: 'dropped' }, { partitionKey: 'cart-cancel' });
    await client.waitForStatus(dropped.invocationId, 'pending');
    const after = await client.submit(addTicket, { ticket: 'after' }, { partitionKey: 'cart-cancel' });
    await client.waitForStatus(after.invocationId, 'pending');

    await client.cancel(dropped.invocationId);
    expect((await client.waitForResult(dropped.invocationId)).status).toBe('cancelled');
    await client.resolveAwakeable(awakeable, true);
    expect((await client.waitForResult(after.invocationId)).status).toBe('completed');
    expect(await client.getKeyedState('cart-cancel')).toEqual({ tickets: ['kept', 'after'] });
  });
});
