/**
 * The HTTP API over a real socket, against the real cluster and a processor: its routes,
 * and what makes it fit to face a network (host, body limit, bounded waits, IDs, token).
 */
import { request } from 'node:http';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  connectNats,
  DEFAULT_HTTP_BODY_LIMIT,
  defineWorkflow,
  DurableClient,
  MAX_WAIT_TIMEOUT_MS,
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

async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}, to = base) {
  const res = await fetch(`${to}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(body !== undefined ? { body } : {}) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

/** POSTs `chunks` one write each, with no `content-length`: the body goes `transfer-encoding: chunked`. */
function postChunked(path: string, chunks: string[]): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

/** A JSON body of exactly `bytes` bytes: `{"result":"xx…"}`. */
function jsonOfSize(bytes: number): string {
  return `{"result":"${'x'.repeat(bytes - '{"result":""}'.length)}"}`;
}

let seq = 0;
/** An ID no other test uses. */
function uniq(prefix: string): string {
  return `${prefix}-${Date.now()}-${seq++}`;
}

beforeAll(async () => {
  nc = await connectNats({ servers: inject('natsUrl').split(','), maxAttempts: 3 });
  processor = await Processor.start({ nc, namespace, workflows: [echo, approval], services: noServices, logger: silentLogger() });
  client = await DurableClient.connect({ nc, namespace });
  // No host: the default, this machine only.
  http = await startHttpApi({ client, workflows: ['echo', 'approval'], port: 0 });
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
    expect(body).toMatchObject({ components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }, security: [{ bearer: [] }] });
    const paths = body.paths as Record<string, Record<string, { security?: unknown[]; responses: object; parameters?: { name: string; schema: object }[] }>>;
    expect(paths['/health']!.get!.security).toEqual([]);
    const invoke = paths['/api/workflows/{name}/invoke']!.post!;
    expect(Object.keys(invoke.responses)).toEqual(expect.arrayContaining(['400', '401', '413']));
    expect(invoke.parameters!.find((p) => p.name === 'timeout_ms')!.schema).toMatchObject({ minimum: 1, maximum: MAX_WAIT_TIMEOUT_MS });
    for (const [path, operations] of Object.entries(paths)) {
      if (path === '/health') continue;
      for (const operation of Object.values(operations)) expect(Object.keys(operation.responses), path).toEqual(expect.arrayContaining(['400', '401']));
    }
  });
});

describe('HTTP API facing a network', () => {
  it('listens on 127.0.0.1 unless told otherwise', () => {
    expect(http.host).toBe('127.0.0.1');
  });

  it('answers 413 naming the body past 1 MiB, declared or streamed in chunks, and takes a body at the limit', async () => {
    // A well-formed awakeable nobody made: a body the limit lets through gets a 404, nothing is written.
    const route = '/api/awakeables/awk_0_nobody/resolve';
    expect((await call('POST', route, jsonOfSize(DEFAULT_HTTP_BODY_LIMIT))).status).toBe(404);
    const declared = await call('POST', route, jsonOfSize(DEFAULT_HTTP_BODY_LIMIT + 1));
    expect(declared).toMatchObject({ status: 413, body: { field: 'body' } });
    expect(declared.body.error).toContain(String(DEFAULT_HTTP_BODY_LIMIT));
    // The rest of the body is left unread: the connection is not reused.
    expect(declared.headers.get('connection')).toBe('close');

    const over = jsonOfSize(DEFAULT_HTTP_BODY_LIMIT + 1);
    const streamed = await postChunked(route, [over.slice(0, 1000), over.slice(1000, 600_000), over.slice(600_000)]);
    expect(streamed).toMatchObject({ status: 413, body: { field: 'body' } });
    const small = await postChunked('/api/workflows/echo/invoke?wait=true', ['{"text":', '"chunked"}']);
    expect(small).toMatchObject({ status: 200, body: { status: 'completed', output: 'CHUNKED' } });
  });

  it('bounds timeout_ms: past the maximum or not a whole number is a 400 naming it and the bound, and submits nothing', async () => {
    for (const timeout of [String(MAX_WAIT_TIMEOUT_MS + 1), '99999999999', 'abc', '0', '-1', '1e3', '2.5', '']) {
      const key = uniq('timeout');
      const res = await call('POST', `/api/workflows/echo/invoke?wait=true&timeout_ms=${timeout}`, '{"text":"t"}', { 'Idempotency-Key': key });
      expect(res, timeout).toMatchObject({ status: 400, body: { field: 'timeout_ms' } });
      expect(res.body.error).toContain(String(MAX_WAIT_TIMEOUT_MS));
      expect((await call('GET', `/api/workflows/${key}`)).status, timeout).toBe(404);
    }
    const atMax = await call('POST', `/api/workflows/echo/invoke?wait=true&timeout_ms=${MAX_WAIT_TIMEOUT_MS}`, '{"text":"max"}');
    expect(atMax).toMatchObject({ status: 200, body: { status: 'completed', output: 'MAX' } });
  });

  it('answers 400 naming it, never 500, for an ID that cannot be a key, on every route', async () => {
    const expect400 = async (method: string, path: string, field: string, body?: string, headers?: Record<string, string>) => {
      const res = await call(method, path, body, headers);
      expect(res, `${method} ${path.slice(0, 80)}`).toMatchObject({ status: 400, body: { field } });
    };
    for (const id of ['a.b', 'a*', '%3E', '%20', 'a%2Fb', 'x'.repeat(129)]) {
      await expect400('GET', `/api/workflows/${id}`, 'invocation ID');
      for (const verb of ['cancel', 'pause', 'resume', 'retry']) await expect400('POST', `/api/workflows/${id}/${verb}`, 'invocation ID');
    }
    for (const id of ['garbage', 'awk_x_abc', 'awk_0_', 'awk_0_a.b', `awk_0_${'x'.repeat(129)}`, 'awk_12345678901_abc', 'awk_0_a%20b']) {
      await expect400('POST', `/api/awakeables/${id}/resolve`, 'awakeable ID', '{"result": 1}');
      await expect400('POST', `/api/awakeables/${id}/reject`, 'awakeable ID', '{"error": "no"}');
    }
    for (const name of ['a%20b', 'a*', '%E2%82%AC', 'x'.repeat(129)]) {
      await expect400('POST', `/api/workflows/${name}/invoke`, 'workflow name', '{}');
      await expect400('GET', `/api/workflows?handler=${name}`, 'workflow name');
      await expect400('GET', `/api/workflows/stats?handler=${name}`, 'workflow name');
    }
    for (const key of ['a.b', 'a%3Eb', 'a%00b', 'x'.repeat(257)]) {
      await expect400('POST', `/api/workflows/echo/invoke?partition_key=${key}`, 'partition key', '{}');
    }
    for (const key of ['a.b', 'a/1', 'x'.repeat(129)]) {
      await expect400('POST', '/api/workflows/echo/invoke', 'invocation ID', '{}', { 'Idempotency-Key': key });
    }
    // Well-formed but unknown: a 404, derived IDs (`<id>/<step>`, with `/` encoded) included.
    expect((await call('GET', '/api/workflows/nobody%2F3')).status).toBe(404);
    expect((await call('GET', '/api/workflows/stats?handler=no.such_workflow')).status).toBe(200);
  });
});

describe('HTTP API with a token (DURABLE_API_TOKEN)', () => {
  const token = 'tok-en_1.~+/==';
  let locked: RunningHttpApi;
  let lockedBase: string;

  beforeAll(async () => {
    locked = await startHttpApi({ client, workflows: ['echo'], port: 0, token, bodyLimit: 64 });
    lockedBase = `http://127.0.0.1:${locked.port}`;
  });

  afterAll(async () => {
    await locked?.close();
  });

  it('answers 401 with a JSON error and WWW-Authenticate: Bearer on every route but /health, without the token or with another', async () => {
    const refused: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${token}x` }, { authorization: `Basic ${token}` }, { authorization: 'Bearer two words' }, { authorization: token }];
    const routes: [string, string, string?][] = [
      ['GET', '/api/workflows/stats'],
      ['GET', '/api/workflows'],
      ['GET', '/openapi.json'],
      ['GET', '/api/workflows/some-id'],
      ['POST', '/api/workflows/echo/invoke', '{"text":"no"}'],
      ['POST', '/api/awakeables/awk_0_x/resolve', '{"result": 1}'],
      ['GET', '/no/such/route'],
    ];
    for (const headers of refused) {
      for (const [method, path, body] of routes) {
        const res = await call(method, path, body, headers, lockedBase);
        expect(res.status, `${method} ${path} with ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
        expect(res.body.error).toEqual(expect.stringContaining('DURABLE_API_TOKEN'));
      }
    }
  });

  it('serves a request with the token, and /health without one', async () => {
    expect(await call('GET', '/health', undefined, {}, lockedBase)).toMatchObject({ status: 200, body: { status: 'ok' } });
    const auth = { authorization: `Bearer ${token}` };
    expect((await call('GET', '/api/workflows/stats', undefined, auth, lockedBase)).status).toBe(200);
    expect((await call('GET', '/openapi.json', undefined, auth, lockedBase)).status).toBe(200);
    const invoked = await call('POST', '/api/workflows/echo/invoke?wait=true', '{"text":"ok"}', auth, lockedBase);
    expect(invoked).toMatchObject({ status: 200, body: { status: 'completed', output: 'OK' } });
  });

  it('checks the token before reading the body, and then its own body limit', async () => {
    const big = JSON.stringify({ text: 'y'.repeat(100) });
    expect((await call('POST', '/api/workflows/echo/invoke', big, {}, lockedBase)).status).toBe(401);
    const over = await call('POST', '/api/workflows/echo/invoke', big, { authorization: `Bearer ${token}` }, lockedBase);
    expect(over).toMatchObject({ status: 413, body: { field: 'body', error: 'the request body is over the limit of 64 bytes' } });
  });
});
