/**
 * Sending and children on the real cluster: `ctx.send` starts exactly one invocation per
 * journaled send, now or after a durable delay; `ctx.invoke` awaits a child while the
 * parent is suspended; cancelling a parent cancels its children.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandSchema } from '../src/gen/durable/durable_pb.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, defineWorkflow, encodeJson, Processor, silentLogger, TerminalError, type DurableClient } from '../src/index.js';
import { noServices, startTestEngine, type TestEngine } from './helpers.js';
import { inject } from 'vitest';

const namespace = 'childrentest';

/** Runs of each child invocation, by ID: a second run of the same send would show here. */
const childRuns = new Map<string, number>();
/** The awakeable each waiting child made, by invocation ID. */
const childAwakeables = new Map<string, string>();
const awakeableMade = new Map<string, () => void>();

const record = defineWorkflow<{ note: string }, string>('record', async (ctx, { note }) => {
  const at = await ctx.now();
  childRuns.set(ctx.invocationId, (childRuns.get(ctx.invocationId) ?? 0) + 1);
  return `${note}@${at}`;
});

const sender = defineWorkflow<{ delay: number }, { sentTo: string; sentAt: number }>('sender', async (ctx, { delay }) => {
  const sentAt = await ctx.now();
  const sentTo = await ctx.send(record, { note: 'hi' }, { delay, partitionKey: 'notes' });
  // A sleep long enough to suspend: the rest runs in a new run that replays the send.
  await ctx.sleep(1_200);
  return { sentTo, sentAt };
});

const waitingChild = defineWorkflow<{ fail: boolean }, string>('waiting_child', async (ctx, { fail }) => {
  const approval = ctx.awakeable<string>();
  childAwakeables.set(ctx.invocationId, approval.id);
  awakeableMade.get(ctx.invocationId)?.();
  const value = await approval.promise;
  if (fail) throw new TerminalError(`child refused ${value}`);
  return `child got ${value}`;
});

const parent = defineWorkflow<{ fail: boolean }, string>('parent', async (ctx, { fail }) => {
  try {
    return await ctx.invoke(waitingChild, { fail });
  } catch (err) {
    if (err instanceof TerminalError) return `parent caught: ${err.message}`;
    throw err;
  }
});

/** Runs of the slow step, by parent: a wake-up that took the parent over would run it twice. */
const slowRuns = new Map<string, number>();

const quick = defineWorkflow<{ n: number }, number>('quick', async (_ctx, { n }) => n + 1);

/** Its child ends (and wakes it) while it is still running a step of its own. */
const busyParent = defineWorkflow<{ n: number }, number>('busy_parent', async (ctx, { n }) => {
  const child = ctx.invoke(quick, { n }, { partitionKey: 'elsewhere' });
  await ctx.run('slow', async () => {
    slowRuns.set(ctx.invocationId, (slowRuns.get(ctx.invocationId) ?? 0) + 1);
    await new Promise<void>((resolve) => setTimeout(resolve, 500)); // a step that takes a while
  });
  return child;
});

let engine: TestEngine;
let client: DurableClient;
let nc: NatsConnection;

beforeAll(async () => {
  engine = await startTestEngine(namespace, [record, sender, waitingChild, parent, quick, busyParent]);
  client = engine.client;
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
});

afterAll(async () => {
  await nc?.close();
  await engine?.stop();
});

/** Resolves once the child of `parentId` has made its awakeable; returns the awakeable's ID. */
function childAwakeable(parentId: string): Promise<string> {
  const childId = `${parentId}/0`;
  return new Promise((resolve) => {
    const known = childAwakeables.get(childId);
    if (known) resolve(known);
    else awakeableMade.set(childId, () => resolve(childAwakeables.get(childId) ?? ''));
  });
}

describe('ctx.send', () => {
  it('starts exactly one invocation per send, however often the sender replays', async () => {
    const { invocationId } = await client.submit(sender, { delay: 0 });
    const final = await client.waitForResult(invocationId);
    expect(final.status).toBe('completed');
    const { sentTo } = JSON.parse(new TextDecoder().decode(final.currentState)) as { sentTo: string };
    expect(sentTo).toBe(`${invocationId}/1`);
    const child = await client.waitForResult(sentTo);
    expect(child.status).toBe('completed');
    expect(child.parentInvocationId).toBe(invocationId);
    expect(child.partitionKey).toBe('notes');
    // The sender ran twice (before and after its sleep) and replayed the send once.
    expect(final.journal.map((e) => e.stepType)).toEqual(['NOW', 'SEND:record', 'SLEEP', 'SLEEP']);
    expect(childRuns.get(sentTo)).toBe(1);
  });

  it('starts the new invocation after its delay, held by a durable timer', async () => {
    const { invocationId } = await client.submit(sender, { delay: 1_500 });
    const final = await client.waitForResult(invocationId);
    const { sentTo, sentAt } = JSON.parse(new TextDecoder().decode(final.currentState)) as { sentTo: string; sentAt: number };
    const child = await client.waitForResult(sentTo, { timeoutMs: 10_000 });
    const ranAt = Number(new TextDecoder().decode(child.currentState).replace(/^"hi@(\d+)"$/, '$1'));
    expect(ranAt - sentAt).toBeGreaterThanOrEqual(1_500);
    expect(ranAt - sentAt).toBeLessThan(1_500 + 2_500);
  });

  it('drops a second start command for an invocation that exists, past the stream deduplication', async () => {
    const { invocationId } = await client.submit(record, { note: 'once' });
    await client.waitForResult(invocationId);
    // The same command again without a message ID: the stream takes it, the processor must not run it.
    const again = create(CommandSchema, { invocationId, handler: 'record', args: encodeJson({ note: 'twice' }), partitionKey: 'default' });
    await jetstream(nc).publish(`${client.names.commandsSubject}.default`, toBinary(CommandSchema, again));
    // A marker behind it on the same key: once it has run, the duplicate has been handled.
    const marker = await client.submit(record, { note: 'marker' });
    await client.waitForResult(marker.invocationId);
    expect(childRuns.get(invocationId)).toBe(1);
    const state = await client.getState(invocationId);
    expect(new TextDecoder().decode(state?.currentState)).toMatch(/^"once@/);
  });
});

describe('ctx.invoke', () => {
  it('returns the child output while the parent waits suspended', async () => {
    const { invocationId } = await client.submit(parent, { fail: false });
    const awakeable = await childAwakeable(invocationId);
    const waiting = await client.waitForStatus(invocationId, 'suspended');
    expect(waiting.owner).toBe('');
    await client.resolveAwakeable(awakeable, 'yes');
    const final = await client.waitForResult(invocationId);
    expect(final.status).toBe('completed');
    expect(JSON.parse(new TextDecoder().decode(final.currentState))).toBe('child got yes');
    expect(final.journal.map((e) => e.stepType)).toEqual(['INVOKE:waiting_child', 'INVOKE:waiting_child']);
    const child = await client.getState(`${invocationId}/0`);
    expect(child?.parent?.invocationId).toBe(invocationId);
  });

  it('throws the child failure in the parent as a TerminalError it may catch', async () => {
    const { invocationId } = await client.submit(parent, { fail: true });
    await client.resolveAwakeable(await childAwakeable(invocationId), 'no');
    const final = await client.waitForResult(invocationId);
    expect(final.status).toBe('completed');
    expect(JSON.parse(new TextDecoder().decode(final.currentState))).toBe(
      `parent caught: child invocation ${invocationId}/0 failed: child refused no`,
    );
  });

  it('cancels the children of a cancelled parent', async () => {
    const { invocationId } = await client.submit(parent, { fail: false });
    await childAwakeable(invocationId);
    await client.waitForStatus(invocationId, 'suspended');
    await client.cancel(invocationId);
    expect((await client.waitForResult(invocationId)).status).toBe('cancelled');
    const child = await client.waitForResult(`${invocationId}/0`);
    expect(child.status).toBe('cancelled');
  });

  it('lets a parent finish its running step when its child wakes it early, running that step once', async () => {
    // A second processor on the same consumer: a parent's wake-up may reach either one,
    // also the one not running the parent.
    const secondNc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
    const second = await Processor.start({ nc: secondNc, namespace, workflows: [record, sender, waitingChild, parent, quick, busyParent], services: noServices, logger: silentLogger() });
    try {
      const submitted = await Promise.all(Array.from({ length: 8 }, (_, i) => client.submit(busyParent, { n: i }, { partitionKey: `busy-${i}` })));
      const finals = await Promise.all(submitted.map((s) => client.waitForResult(s.invocationId)));
      finals.forEach((final, i) => {
        expect(final.status).toBe('completed');
        expect(JSON.parse(new TextDecoder().decode(final.currentState))).toBe(i + 1);
        expect(slowRuns.get(final.invocationId)).toBe(1);
      });
    } finally {
      await second.stop();
      await secondNc.close();
    }
  });
});
