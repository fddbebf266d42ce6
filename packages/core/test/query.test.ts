/**
 * Listing and counting invocations through the execution index, on the real cluster: pages
 * by status and handler, exact counts, the index following status changes, repairs of
 * stale entries, and a rebuild from the state bucket.
 */
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  connectNats,
  defineWorkflow,
  DurableClient,
  engineNames,
  indexEntrySubject,
  InvalidArgumentError,
  TerminalError,
  type WorkflowStats,
} from '../src/index.js';
import { startTestEngine, type TestEngine } from './helpers.js';

const namespace = 'querytest';
const names = engineNames(namespace);

const done = defineWorkflow<{ n: number }, number>('q_done', async (ctx, { n }) => ctx.run('double', () => n * 2));
// A '.' in the name: its index token is escaped.
const fail = defineWorkflow('q.fail', async () => {
  throw new TerminalError('meant to fail');
});
const waits = defineWorkflow('q_wait', async (ctx) => ctx.awakeable<string>().promise);
const stale = defineWorkflow('q_stale', async () => 'ok');
const many = defineWorkflow<{ fail: boolean }, string>('q_many', async (ctx, input) =>
  ctx.run('maybe fail', () => {
    if (input.fail) throw new TerminalError('odd one');
    return 'ok';
  }),
);

let engine: TestEngine;
let client: DurableClient;
let nc: NatsConnection;

beforeAll(async () => {
  engine = await startTestEngine(namespace, [done, fail, waits, stale, many]);
  client = engine.client;
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
});

afterAll(async () => {
  await nc?.close();
  await engine?.stop();
});

/** Waits until the index writes the processor issued so far are stored, then checks. */
async function indexed<T>(check: () => Promise<T>): Promise<T> {
  await engine.processor.indexed();
  return check();
}

/** Every page of a listing, following the cursor. */
async function allPages(options: { status?: string; handler?: string; limit: number }): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await client.listWorkflows({ ...options, ...(cursor ? { cursor } : {}) });
    expect(page.invocations.length).toBeLessThanOrEqual(options.limit);
    ids.push(...page.invocations.map((s) => s.invocationId));
    cursor = page.nextCursor;
    pages++;
  } while (cursor);
  return { ids, pages };
}

function counts(stats: WorkflowStats): Record<string, number> {
  return Object.fromEntries(Object.entries(stats.byStatus).filter(([, n]) => n > 0));
}

describe('listWorkflows and getWorkflowStats', () => {
  it('lists by status and by handler a page at a time, without duplicates or gaps, and counts exactly', async () => {
    const completed = await Promise.all(Array.from({ length: 7 }, (_, n) => client.submit(done, { n })));
    const failed = await Promise.all(Array.from({ length: 5 }, () => client.submit(fail, {})));
    const suspended = await Promise.all(Array.from({ length: 3 }, () => client.submit(waits, {})));
    await Promise.all([...completed, ...failed].map((s) => client.waitForResult(s.invocationId)));
    await Promise.all(suspended.map((s) => client.waitForStatus(s.invocationId, 'suspended')));

    const stats = await indexed(async () => {
      const [d, f, w] = await Promise.all(['q_done', 'q.fail', 'q_wait'].map((handler) => client.getWorkflowStats({ handler })));
      expect(counts(d!)).toEqual({ completed: 7 });
      expect(counts(f!)).toEqual({ failed: 5 });
      expect(counts(w!)).toEqual({ suspended: 3 });
      return client.getWorkflowStats();
    });
    expect(stats.byHandler).toMatchObject({ q_done: 7, 'q.fail': 5, q_wait: 3 });
    expect(stats.total).toBe(Object.values(stats.byStatus).reduce((a, b) => a + b, 0));

    const byStatus = await allPages({ status: 'completed', handler: 'q_done', limit: 3 });
    expect(byStatus.pages).toBe(3);
    expect(byStatus.ids).toHaveLength(7);
    expect(new Set(byStatus.ids)).toEqual(new Set(completed.map((s) => s.invocationId)));

    const byHandler = await allPages({ handler: 'q.fail', limit: 2 });
    expect(byHandler.ids).toHaveLength(5);
    expect(new Set(byHandler.ids)).toEqual(new Set(failed.map((s) => s.invocationId)));

    const first = await client.listWorkflows({ status: 'suspended', limit: 1000 });
    const mine = first.invocations.filter((s) => s.handler === 'q_wait');
    expect(mine.map((s) => s.invocationId).sort()).toEqual(suspended.map((s) => s.invocationId).sort());
    expect(mine[0]).toMatchObject({ status: 'suspended', partitionKey: 'default' });
    expect(mine[0]!.createdAtMs).toBeGreaterThan(0);
    expect(first.nextCursor).toBeUndefined();
  });

  it('refuses a bad status, limit or cursor, naming it', async () => {
    await expect(client.listWorkflows({ status: 'asleep' })).rejects.toMatchObject({ field: 'status' });
    await expect(client.listWorkflows({ limit: 0 })).rejects.toMatchObject({ field: 'limit' });
    await expect(client.listWorkflows({ limit: 1001 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.listWorkflows({ cursor: 'not-a-cursor' })).rejects.toMatchObject({ field: 'cursor' });
  });

  it('follows a status change: suspended, then paused, then cancelled', async () => {
    const { invocationId } = await client.submit(waits, {});
    await client.waitForStatus(invocationId, 'suspended');
    const statusOf = async () => {
      const page = await client.listWorkflows({ handler: 'q_wait', limit: 1000 });
      return page.invocations.filter((s) => s.invocationId === invocationId).map((s) => s.status);
    };
    await indexed(async () => expect(await statusOf()).toEqual(['suspended']));

    // The client's own writes wait for their index write: no retrying from here on.
    await client.pause(invocationId);
    const paused = await client.listWorkflows({ status: 'paused', handler: 'q_wait' });
    expect(paused.invocations.map((s) => s.invocationId)).toEqual([invocationId]);
    expect((await client.getWorkflowStats({ handler: 'q_wait' })).byStatus).toMatchObject({ paused: 1, suspended: 3 });

    await client.cancel(invocationId);
    const cancelled = await client.listWorkflows({ status: 'cancelled', handler: 'q_wait' });
    expect(cancelled.invocations.map((s) => s.invocationId)).toEqual([invocationId]);
    expect((await client.getWorkflowStats({ handler: 'q_wait' })).byStatus).toMatchObject({ paused: 0, cancelled: 1, suspended: 3 });
    expect(await statusOf()).toEqual(['cancelled']);
  });

  it('repairs a stale entry, and drops one without a state, when a listing reads it', async () => {
    const { invocationId } = await client.submit(stale, {});
    await client.waitForResult(invocationId);
    await indexed(async () => expect(counts(await client.getWorkflowStats({ handler: 'q_stale' }))).toEqual({ completed: 1 }));

    // As if a crash had lost the purge of an older status, and as if a state had been deleted.
    const js = jetstream(nc);
    await js.publish(indexEntrySubject(names, 'running', 'q_stale', invocationId), '{}', { retries: 10 });
    await js.publish(indexEntrySubject(names, 'failed', 'q_stale', 'ghost-1'), '{}', { retries: 10 });
    await js.publish(indexEntrySubject(names, 'completed', 'q_done', invocationId), '{}', { retries: 10 }); // Under a wrong handler.
    expect(counts(await client.getWorkflowStats({ handler: 'q_stale' }))).toEqual({ completed: 1, running: 1, failed: 1 });
    const wrongHandler = await client.listWorkflows({ handler: 'q_done', limit: 1000 });
    expect(wrongHandler.invocations.map((s) => s.invocationId)).not.toContain(invocationId);

    expect((await client.listWorkflows({ status: 'running', handler: 'q_stale' })).invocations).toEqual([]);
    expect((await client.listWorkflows({ status: 'failed', handler: 'q_stale' })).invocations).toEqual([]);
    expect(counts(await client.getWorkflowStats({ handler: 'q_stale' }))).toEqual({ completed: 1 });
    const listed = await client.listWorkflows({ handler: 'q_stale' });
    expect(listed.invocations.map((s) => [s.invocationId, s.status])).toEqual([[invocationId, 'completed']]);
    expect(counts(await client.getWorkflowStats({ handler: 'q_done' }))).toEqual({ completed: 7 });
  });

  it('counts 200 concurrent invocations exactly', async () => {
    const submitted = await Promise.all(Array.from({ length: 200 }, (_, i) => client.submit(many, { fail: i % 4 === 0 })));
    const ended = await Promise.all(submitted.map((s) => client.waitForResult(s.invocationId, { timeoutMs: 60_000 })));
    expect(ended.filter((s) => s.status === 'failed')).toHaveLength(50);
    await indexed(async () => {
      const stats = await client.getWorkflowStats({ handler: 'q_many' });
      expect(counts(stats)).toEqual({ completed: 150, failed: 50 });
      expect(stats.total).toBe(200);
      expect(stats.byHandler).toEqual({ q_many: 200 });
    });
    const listed = await allPages({ handler: 'q_many', limit: 64 });
    expect(listed.ids).toHaveLength(200);
    expect(new Set(listed.ids).size).toBe(200);
  });

  it('gives the same pages when they are read again, with or without a filter, each invocation once', async () => {
    await engine.processor.indexed();
    const byHandler = await allPages({ handler: 'q_many', limit: 64 });
    // Read again: the first page from the consumer that holds it, the others from those anchored at their cursors.
    expect(await allPages({ handler: 'q_many', limit: 64 })).toEqual(byHandler);
    const first = await client.listWorkflows({ handler: 'q_many', limit: 64 });
    const second = await client.listWorkflows({ handler: 'q_many', limit: 64, cursor: first.nextCursor! });
    expect(await client.listWorkflows({ handler: 'q_many', limit: 64, cursor: first.nextCursor! })).toEqual(second);

    const everything = await allPages({ limit: 16 });
    expect(new Set(everything.ids).size).toBe(everything.ids.length);
    expect(everything.ids).toEqual(expect.arrayContaining(byHandler.ids));
    const stats = await client.getWorkflowStats();
    expect(everything.ids).toHaveLength(stats.total);
  });

  it('lists every invocation without a filter across a long stretch of removed entries', async () => {
    await engine.processor.indexed();
    const before = await allPages({ limit: 16 });
    // 600 entries written, then removed at once: a gap of 600 sequences in the middle of the stream.
    const js = jetstream(nc);
    await Promise.all(Array.from({ length: 600 }, (_, i) => js.publish(indexEntrySubject(names, 'failed', 'q_gap', `gap-${i}`), '{}', { retries: 10 })));
    await (await jetstreamManager(nc)).streams.purge(names.indexStream, { filter: indexEntrySubject(names, 'failed', 'q_gap', '*') });
    const late = await client.submit(done, { n: 1 });
    await client.waitForResult(late.invocationId);
    await engine.processor.indexed();

    const after = await allPages({ limit: 16 });
    expect(after.ids).toEqual([...before.ids, late.invocationId]);
  });

  it('reindex rebuilds a deleted index from the states, and drops entries without a state', async () => {
    const before = await indexed(async () => {
      const stats = await client.getWorkflowStats();
      expect(stats.byStatus.running).toBe(0);
      return stats;
    });
    expect(before.total).toBeGreaterThan(200);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(names.indexStream);

    const rebuilt = await client.reindex();
    expect(rebuilt).toEqual({ indexed: before.total, dropped: 0 });
    const after = await client.getWorkflowStats();
    expect(after).toEqual(before);
    expect((await jsm.streams.info(names.indexStream)).config).toMatchObject({ max_msgs_per_subject: 1, num_replicas: 3 });

    await jetstream(nc).publish(indexEntrySubject(names, 'completed', 'q_done', 'ghost-2'), '{}', { retries: 10 });
    expect(await client.reindex()).toEqual({ indexed: before.total, dropped: 1 });
    expect(await client.getWorkflowStats()).toEqual(before);
  });
});

describe('the server', () => {
  it('purges by a wildcard filter keeping the newest message (nats-server 2.10)', async () => {
    const jsm = await jetstreamManager(nc);
    const stream = 'QUERYTEST_PURGE_PROBE';
    await jsm.streams.add({ name: stream, subjects: ['probe.>'], retention: RetentionPolicy.Limits, storage: StorageType.File, max_msgs_per_subject: 1 });
    try {
      const js = jetstream(nc);
      await js.publish('probe.running.h.id1', 'a', { retries: 10 });
      await js.publish('probe.running.h.id1', 'b', { retries: 10 }); // Replaces 'a': one message per subject.
      await js.publish('probe.suspended.h.id1', 'c', { retries: 10 });
      await js.publish('probe.completed.h.id1', 'd', { retries: 10 });
      await js.publish('probe.running.h.id2', 'e', { retries: 10 });
      const { purged } = await jsm.streams.purge(stream, { filter: 'probe.*.h.id1', keep: 1 });
      expect(purged).toBe(2);
      const info = await jsm.streams.info(stream, { subjects_filter: '>' });
      expect(info.state.subjects).toEqual({ 'probe.completed.h.id1': 1, 'probe.running.h.id2': 1 });
      expect((await jsm.streams.purge(stream, { filter: 'probe.*.h.id1', keep: 1 })).purged).toBe(0);
    } finally {
      await jsm.streams.delete(stream);
    }
  });
});
