/**
 * The HTTP API over a real socket, against the real cluster and a processor.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  connectNats,
  defineWorkflow,
  DurableClient,
  Processor,
  silentLogger,
  startHttpApi,
  type RunningHttpApi,
} from '../src/index.js';
import { noServices } from './helpers.js';

const namespace = 'httptest';

const echo = defineWorkflow<{ text: string }, string>('echo', async (ctx, { text }) => ctx.run('echo', () => text.toUpperCase()));
const approval = defineWorkflow('approval', async (ctx) => ctx.awakeable<{ ok: boolean }>().promise);


let nc: NatsConnection;
let processor: Processor;
let http: RunningHttpApi;
let base: string;
let client: DurableClient;

/** True once the stats count `n` or more ended invocations and none running. */
function indexHas(stats: Record<string, unknown>, n: number): boolean {
  const byStatus = stats.by_status as Record<string, number> | undefined;
  return byStatus !== undefined && byStatus.running === 0 && (byStatus.completed ?? 0) >= n;
}

async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(body !== undefined ? { body } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  processor = await Processor.start({ nc, namespace, workflows: [echo, approval], services: noServices, logger: silentLogger() });
  client = await DurableClient.connect({ nc, namespace });
  http = await startHttpApi({ client, workflows: ['echo', 'approval'], port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${http.port}`;
});

afterAll(async () => {
  await http?.close();
  await processor?.stop();
  await nc?.close();
});

describe('HTTP API', () => {
  it('invokes and waits for the result, and runs an Idempotency-Key once', async () => {
    const key = `http-${Date.now()}`;
    const first = await call('POST', '/api/workflows/echo/invoke?wait=true', '{"text":"hi"}', { 'Idempotency-Key': key });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ invocation_id: key, status: 'completed', output: 'HI' });
    const again = await call('POST', '/api/workflows/echo/invoke', '{"text":"hi"}', { 'Idempotency-Key': key });
    expect(again).toMatchObject({ status: 202, body: { invocation_id: key, duplicate: true } });
    const got = await call('GET', `/api/workflows/${key}`);
    expect(got.body).toMatchObject({ status: 'completed', journal_length: 1 });
  });

  it('resolves an awakeable by ID, and refuses a second resolution and unknown IDs', async () => {
    const submitted = await call('POST', '/api/workflows/approval/invoke', '{}');
    const id = `awk_0_${String(submitted.body.invocation_id)}`;
    // The awakeable exists once the workflow made it; resolving earlier is a clear 404.
    let resolved = await call('POST', `/api/awakeables/${id}/resolve`, '{"result": "{\\"ok\\": true}"}');
    const deadline = Date.now() + 10_000;
    while (resolved.status === 404 && Date.now() < deadline) {
      await new Promise<void>((r) => setImmediate(r));
      resolved = await call('POST', `/api/awakeables/${id}/resolve`, '{"result": "{\\"ok\\": true}"}');
    }
    expect(resolved.status).toBe(200);
    expect((await call('POST', `/api/awakeables/${id}/resolve`, '{"result": 1}')).status).toBe(409);
    const final = await call('POST', `/api/workflows/approval/invoke?wait=true`, '{}', { 'Idempotency-Key': String(submitted.body.invocation_id) });
    expect(final.body).toMatchObject({ status: 'completed', output: { ok: true } });
    expect((await call('POST', '/api/awakeables/awk_0_nobody/resolve', '{"result": 1}')).status).toBe(404);
  });

  it('answers bad input with 4xx errors that name the problem', async () => {
    const malformed = await call('POST', '/api/workflows/echo/invoke', '{not json');
    expect(malformed).toMatchObject({ status: 400, body: { field: 'body' } });
    const badKey = await call('POST', '/api/workflows/echo/invoke?partition_key=a.b', '{}');
    expect(badKey).toMatchObject({ status: 400, body: { field: 'partition key' } });
    expect((await call('POST', '/api/workflows/nope/invoke', '{}')).status).toBe(404);
    expect((await call('GET', '/api/workflows/no-such-invocation')).status).toBe(404);
    const reject = await call('POST', '/api/awakeables/awk_0_x/reject', '{}');
    expect(reject).toMatchObject({ status: 400, body: { field: 'error' } });
  });

  it('pauses, resumes and retries through the API, with 409 where the lifecycle forbids it', async () => {
    const submitted = await call('POST', '/api/workflows/approval/invoke', '{}');
    const id = String(submitted.body.invocation_id);
    await client.waitForStatus(id, 'suspended');
    expect((await call('POST', `/api/workflows/${id}/pause`)).status).toBe(202);
    expect((await call('POST', `/api/workflows/${id}/retry`)).status).toBe(409);
    expect((await call('POST', `/api/workflows/${id}/cancel`)).status).toBe(202);
    expect((await call('POST', `/api/workflows/${id}/resume`)).status).toBe(409);
    const retried = await call('POST', `/api/workflows/${id}/retry`);
    expect(retried).toMatchObject({ status: 202, body: { retry_of: id } });
    expect(retried.body.invocation_id).not.toBe(id);
    expect((await call('POST', '/api/workflows/nobody/resume')).status).toBe(404);
  });

  it('lists invocations by status and handler, page by page, and counts them at /api/workflows/stats', async () => {
    const ids = await Promise.all(
      ['a', 'b', 'c'].map(async (text) => String((await call('POST', '/api/workflows/echo/invoke?wait=true', JSON.stringify({ text }))).body.invocation_id)),
    );
    // The processor writes the index in the background: wait until what it issued is stored.
    await processor.indexed();
    const stats = await call('GET', '/api/workflows/stats?handler=echo');
    expect(stats.status, JSON.stringify(stats.body)).toBe(200);
    expect(indexHas(stats.body, ids.length)).toBe(true);
    expect(stats.body).toMatchObject({ by_status: { running: 0, failed: 0 }, by_handler: { echo: stats.body.total } });

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await call('GET', `/api/workflows?status=completed&handler=echo&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      const invocations = page.body.invocations as Record<string, unknown>[];
      expect(invocations.length).toBeLessThanOrEqual(2);
      for (const item of invocations) expect(item).toMatchObject({ handler: 'echo', status: 'completed', partition_key: 'default' });
      seen.push(...invocations.map((item) => String(item.invocation_id)));
      cursor = page.body.next_cursor as string | undefined;
    } while (cursor);
    expect(seen).toEqual(expect.arrayContaining(ids));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe((stats.body.by_status as Record<string, number>).completed);

    const all = await call('GET', '/api/workflows/stats');
    expect((all.body.by_handler as Record<string, number>).echo).toBe(stats.body.total);
  });

  it('answers a bad listing with a 400 naming the field', async () => {
    expect(await call('GET', '/api/workflows?status=sleeping')).toMatchObject({ status: 400, body: { field: 'status' } });
    for (const limit of ['0', '1001', 'ten', '2.5']) {
      expect(await call('GET', `/api/workflows?limit=${limit}`)).toMatchObject({ status: 400, body: { field: 'limit' } });
    }
    expect(await call('GET', '/api/workflows?cursor=%21%21')).toMatchObject({ status: 400, body: { field: 'cursor' } });
    expect((await call('GET', '/api/workflows?limit=1000')).status).toBe(200);
  });

  it('describes itself at /openapi.json', async () => {
    const { status, body } = await call('GET', '/openapi.json');
    expect(status).toBe(200);
    expect(Object.keys(body.paths as object)).toContain('/api/awakeables/{id}/resolve');
    expect(Object.keys(body.paths as object)).toEqual(expect.arrayContaining(['/api/workflows', '/api/workflows/stats']));
  });
});
