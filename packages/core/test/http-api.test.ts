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

  it('describes itself at /openapi.json', async () => {
    const { status, body } = await call('GET', '/openapi.json');
    expect(status).toBe(200);
    expect(Object.keys(body.paths as object)).toContain('/api/awakeables/{id}/resolve');
  });
});
