/**
 * The routes the web console reads and acts through, over a real socket against the real
 * cluster and a processor: journals read a page at a time while an invocation waits, live
 * feeds, filters and bulk actions.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectNats, defineWorkflow, DurableClient, Processor, silentLogger, startHttpApi, type RunningHttpApi } from '../src/index.js';
import { noServices } from './helpers.js';

const namespace = 'consoleapi';

/** `steps` side effects, then a wait for an awakeable: it suspends with a journal so far. */
const stepsThenWait = defineWorkflow<{ steps: number }, unknown>('steps_then_wait', async (ctx, { steps }) => {
  for (let i = 0; i < steps; i++) await ctx.run(`step ${i}`, () => i);
  return ctx.awakeable<unknown>().promise;
});

let nc: NatsConnection;
let processor: Processor;
let http: RunningHttpApi;
let base: string;
let client: DurableClient;

/** The fields of the API's answers that this test reads; each answer has the ones of its route. */
interface Answer {
  invocation_id: string;
  status: string;
  matched: number;
  last_sequence: number;
  next_after?: number;
  journal: { type: string }[];
  entries: { step: number }[];
  invocations: { invocation_id: string }[];
  failures: { error: string }[];
}

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as Answer };
}

/** An event's JSON: an object for every event the API sends. */
type EventData = Record<string, unknown>;

/** Reads a server-sent event stream until `until` returns true for an event; aborts it then. */
async function readEvents(path: string, until: (event: string, data: EventData) => boolean, onReady: () => Promise<unknown> = async () => undefined): Promise<{ event: string; data: EventData }[]> {
  const abort = new AbortController();
  const res = await fetch(`${base}${path}`, { signal: abort.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const seen: { event: string; data: EventData }[] = [];
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ${path} ended before the awaited event`);
      buffer += value;
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event === undefined || data === undefined) continue;
        const parsed = JSON.parse(data) as EventData;
        seen.push({ event, data: parsed });
        if (event === 'ready') await onReady();
        if (until(event, parsed)) return seen;
      }
    }
  } finally {
    abort.abort();
  }
}

/** A bulk action's dry run, asked again until it counts `n`: the index follows the states a moment later. */
async function countOnceIndexed(action: string, filter: Record<string, unknown>, n: number) {
  let dry = await call('POST', `/api/workflows/bulk/${action}`, { ...filter, dry_run: true });
  for (const deadline = Date.now() + 20_000; dry.body.matched < n && Date.now() < deadline; ) {
    dry = await call('POST', `/api/workflows/bulk/${action}`, { ...filter, dry_run: true });
  }
  return dry;
}

async function start(steps: number, partitionKey = 'default'): Promise<string> {
  const res = await call('POST', `/api/workflows/steps_then_wait/invoke?partition_key=${partitionKey}`, { steps });
  expect(res.status).toBe(202);
  return String(res.body.invocation_id);
}

beforeAll(async () => {
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  processor = await Processor.start({ nc, namespace, workflows: [stepsThenWait], services: noServices, logger: silentLogger() });
  client = await DurableClient.connect({ nc, namespace });
  http = await startHttpApi({ client, port: 0 });
  base = `http://127.0.0.1:${http.port}`;
});

afterAll(async () => {
  await http?.close();
  await processor?.stop();
  await nc?.close();
});

describe('the console API', () => {
  it('shows the journal so far of a suspended invocation, whole and a page at a time', async () => {
    const id = await start(10);
    await client.waitForStatus(id, 'suspended');
    const got = await call('GET', `/api/workflows/${id}`);
    expect(got.body.status).toBe('suspended');
    // Ten side effects and the awakeable: all read from the journal stream.
    expect(got.body.journal.filter((e) => e.type.startsWith('RUN:'))).toHaveLength(10);
    expect(got.body.journal.map((e) => e.type)).toContain(`AWAKEABLE:awk_10_${id}`);

    const first = await call('GET', `/api/workflows/${id}/journal?limit=4`);
    expect(first.body.entries.map((e) => e.step)).toEqual([0, 1, 2, 3]);
    expect(first.body.next_after).toBe(3);
    expect(first.body.last_sequence).toBeGreaterThan(0);
    const second = await call('GET', `/api/workflows/${id}/journal?after=3&limit=100`);
    expect(second.body.entries[0]?.step).toBe(4);
    expect(second.body.next_after).toBeUndefined();
    expect((await call('GET', `/api/workflows/${id}/journal?limit=0`)).body).toMatchObject({ field: 'limit' });
    expect((await call('GET', `/api/workflows/${id}/journal?after=x`)).status).toBe(400);
    expect((await call('GET', '/api/workflows/nobody/journal')).status).toBe(404);
  });

  it('follows an invocation live: the entries after a page and its state changes', async () => {
    const id = await start(2);
    await client.waitForStatus(id, 'suspended');
    const page = await call('GET', `/api/workflows/${id}/journal`);
    const events = await readEvents(
      `/api/workflows/${id}/events?after_sequence=${page.body.last_sequence}`,
      (event, data) => event === 'state' && data.status === 'completed',
      () => call('POST', `/api/awakeables/awk_2_${id}/resolve`, { result: { ok: true } }),
    );
    const entries = events.filter((e) => e.event === 'entry').map((e) => e.data);
    // Only what came after the page: the awakeable's outcome, with its sequence.
    expect(entries.every((e) => Number(e.sequence) > page.body.last_sequence)).toBe(true);
    expect(entries).toContainEqual(expect.objectContaining({ step: 2, response: { ok: true } }));
    expect((await call('GET', '/api/workflows/nobody/events')).status).toBe(404);
  });

  it('feeds every state change to the list, live', async () => {
    let id = '';
    const events = await readEvents(
      '/api/workflows/events',
      (event, data) => event === 'state' && data.invocation_id === id && data.status === 'suspended',
      async () => (id = await start(0)),
    );
    expect(events.some((e) => e.data.invocation_id === id)).toBe(true);
  });

  it('filters the list by partition key and creation time', async () => {
    const key = `pk-${Date.now()}`;
    const before = Date.now();
    const ids = [await start(0, key), await start(0, key)];
    await Promise.all(ids.map((id) => client.waitForStatus(id, 'suspended')));
    let listed = await call('GET', `/api/workflows?status=suspended&partition_key=${key}&limit=1000`);
    for (const deadline = Date.now() + 20_000; listed.body.invocations.length < 2 && Date.now() < deadline; ) {
      listed = await call('GET', `/api/workflows?status=suspended&partition_key=${key}&limit=1000`);
    }
    expect(listed.body.invocations.map((s) => s.invocation_id).sort()).toEqual([...ids].sort());
    const later = await call('GET', `/api/workflows?partition_key=${key}&created_after_ms=${Date.now() + 60_000}&limit=1000`);
    expect(later.body.invocations).toEqual([]);
    const since = await call('GET', `/api/workflows?partition_key=${key}&created_after_ms=${before}&limit=1000`);
    expect(since.body.invocations).toHaveLength(2);
    expect((await call('GET', '/api/workflows?created_after_ms=yesterday')).body).toMatchObject({ field: 'created_after_ms' });
    expect((await call('GET', '/api/workflows?partition_key=a.b')).status).toBe(400);
  });

  it('counts with a dry run, then cancels every invocation a filter matches, page by page', async () => {
    const key = `bulk-${Date.now()}`;
    const ids = await Promise.all([0, 1, 2].map(() => start(0, key)));
    await Promise.all(ids.map((id) => client.waitForStatus(id, 'suspended')));
    const filter = { status: 'suspended', handler: 'steps_then_wait', partition_key: key };
    const dry = await countOnceIndexed('cancel', filter, 3);
    expect(dry.body).toMatchObject({ dry_run: true, matched: 3, done: 0 });
    expect((await client.getState(ids[0]!))?.status).toBe('suspended');
    const done = await call('POST', '/api/workflows/bulk/cancel', filter);
    expect(done.body).toMatchObject({ matched: 3, done: 3, failed: 0 });
    await Promise.all(ids.map((id) => client.waitForStatus(id, 'cancelled')));
    // Ended ones refuse a resume: counted as failed, with the reason.
    await countOnceIndexed('resume', { partition_key: key, status: 'cancelled' }, 3);
    const resumed = await call('POST', '/api/workflows/bulk/resume', { partition_key: key, status: 'cancelled' });
    expect(resumed.body).toMatchObject({ matched: 3, done: 0, failed: 3 });
    expect(resumed.body.failures[0]?.error).toMatch(/cancelled/);
    expect((await call('POST', '/api/workflows/bulk/delete', filter)).body).toMatchObject({ field: 'action' });
    expect((await call('POST', '/api/workflows/bulk/cancel', { dry_run: 'yes' })).body).toMatchObject({ field: 'dry_run' });
  });
});
