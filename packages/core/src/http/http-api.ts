/**
 * The HTTP API the processor serves (`--http-port`, default 8080, on `--http-host`, default
 * 127.0.0.1): invoke workflows, read their state, list and count them, cancel them, and
 * resolve or reject awakeables, with JSON in and out.
 * `/openapi.json` describes every route. While the cluster elects a leader, calls are
 * retried by the client up to its deadline; past it the answer is 503 with `Retry-After`.
 * Made to face a network: an optional bearer token (see `api-token.ts`), a body size limit,
 * a bounded wait, and a 400 for every ID that cannot be one.
 */
import { serve, type ServerType } from '@hono/node-server';
import { Hono, type Context as HonoContext } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { DurableClient, SubmitOptions } from '../client/client.js';
import {
  AwakeableNotFoundError,
  ConflictError,
  DurableError,
  errorMessage,
  HandlerNotFoundError,
  InvalidArgumentError,
  InvocationNotFoundError,
  TimeoutError,
  UnavailableError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import { isTerminal } from '../engine/lifecycle.js';
import { holdsWholeJournal } from '../engine/stores.js';
import { isTransient } from '../nats/retry.js';
import { checkAnyInvocationId, checkAwakeableId, checkWorkflowName } from '../config.js';
import { requireApiToken } from './api-token.js';
import { addConsoleApiRoutes, addConsoleAssets } from './console-routes.js';
import { integerParam, invocationFilter, isObject, jsonBody } from './params.js';
import { DEFAULT_HTTP_BODY_LIMIT, DEFAULT_HTTP_HOST, DEFAULT_WAIT_TIMEOUT_MS, MAX_WAIT_TIMEOUT_MS } from './limits.js';
import { OPENAPI } from './openapi.js';
import { stateToJson } from './state-json.js';

/** Options of {@link createHttpApi}. */
export interface HttpApiOptions {
  client: DurableClient;
  logger?: Logger;
  /** Names of the workflows that can be invoked; others get a 404. @default any name */
  workflows?: readonly string[];
  /** Largest request body, bytes; a larger one (declared or streamed) gets a 413. @default {@link DEFAULT_HTTP_BODY_LIMIT} */
  bodyLimit?: number;
  /** The built console's folder (`dist/console`), served at `/ui`; without it `/ui` says to build it. @default none */
  consoleDir?: string;
  /** When set, every route but `/health` and the console's files answers 401 without `Authorization: Bearer <token>`. @default none: open */
  token?: string;
  /** Serves `GET /metrics` (Prometheus' text format), behind the token like the other routes. @default no such route */
  metrics?: () => Promise<{ contentType: string; body: string }>;
}

/** The routes, as a Hono app (serve it with {@link startHttpApi}, or test it with `app.request`). */
export function createHttpApi(options: HttpApiOptions): Hono {
  const { client, logger } = options;
  const app = new Hono();

  // Before the token check: a load balancer's probe needs no secret.
  app.get('/health', (c) => c.json({ status: 'ok' }));
  addConsoleAssets(app, options.consoleDir);
  if (options.token !== undefined) app.use(requireApiToken(options.token));
  const maxBytes = options.bodyLimit ?? DEFAULT_HTTP_BODY_LIMIT;
  app.use(
    bodyLimit({
      maxSize: maxBytes,
      // The rest of the body stays unread: close the connection rather than have it reused.
      onError: (c) => c.json({ error: `the request body is over the limit of ${maxBytes} bytes`, field: 'body' }, 413, { Connection: 'close' }),
    }),
  );
  app.get('/openapi.json', (c) => c.json(OPENAPI));
  const metrics = options.metrics;
  if (metrics) {
    app.get('/metrics', async (c) => {
      const { contentType, body } = await metrics();
      return c.body(body, 200, { 'Content-Type': contentType });
    });
  }

  app.post('/api/workflows/:name/invoke', async (c) => {
    const name = checkWorkflowName(c.req.param('name'));
    if (options.workflows && !options.workflows.includes(name)) throw new HandlerNotFoundError(name);
    // Everything is checked before the submission (the keys by `submit` itself): a 400 leaves no invocation behind.
    const wait = c.req.query('wait');
    const timeout = c.req.query('timeout_ms');
    const timeoutMs = timeout === undefined ? DEFAULT_WAIT_TIMEOUT_MS : timeoutParam(timeout);
    const partitionKey = c.req.query('partition_key');
    const idempotencyKey = c.req.header('Idempotency-Key');
    const input = await jsonBody(c, true);
    const traceparent = c.req.header('traceparent');
    const tracestate = c.req.header('tracestate');
    const submit: SubmitOptions = {
      // The caller's trace goes on through the command to the run.
      ...(traceparent ? { trace: tracestate ? { traceparent, tracestate } : { traceparent } } : {}),
      ...(partitionKey !== undefined ? { partitionKey } : {}),
      ...(idempotencyKey ? { invocationId: idempotencyKey } : {}),
    };
    if (wait !== 'true' && wait !== '1') {
      const submission = await client.submit(name, input, submit);
      return c.json({ invocation_id: submission.invocationId, duplicate: submission.duplicate }, 202);
    }
    const { state } = await client.submitAndWait(name, input, { ...submit, timeoutMs });
    return c.json(stateToJson(state), 200);
  });

  // Before `/api/workflows/:id`, so that `stats` is not taken for an invocation ID.
  app.get('/api/workflows/stats', async (c) => {
    const handler = c.req.query('handler');
    const stats = await client.getWorkflowStats(handler ? { handler: checkWorkflowName(handler) } : {});
    return c.json({ total: stats.total, by_status: stats.byStatus, by_handler: stats.byHandler });
  });

  addConsoleApiRoutes(app, client);

  app.get('/api/workflows', async (c) => {
    const { limit, cursor } = c.req.query();
    const page = await client.listWorkflows({
      ...invocationFilter(c.req.query()),
      ...(limit !== undefined ? { limit: integerParam('limit', limit) } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    });
    return c.json({
      invocations: page.invocations.map((s) => ({
        invocation_id: s.invocationId,
        handler: s.handler,
        status: s.status,
        partition_key: s.partitionKey,
        created_at_ms: s.createdAtMs,
        updated_at_ms: s.updatedAtMs,
      })),
      ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}),
    });
  });

  app.get('/api/workflows/:id', async (c) => {
    const id = invocationIdParam(c.req.param('id'));
    const state = await client.getState(id);
    if (!state) throw new InvocationNotFoundError(id);
    // `?journal=false`: the state alone (the console reads the journal a page at a time).
    if (c.req.query('journal') === 'false') return c.json(stateToJson(state, []));
    // A completed run's final state holds the whole journal when it fits; else it is read
    // with the stream.
    return c.json(stateToJson(state, holdsWholeJournal(state) ? state.journal : await client.getJournal(id)));
  });

  app.post('/api/workflows/:id/cancel', async (c) => {
    await client.cancel(invocationIdParam(c.req.param('id')));
    return c.json({ invocation_id: c.req.param('id'), cancel: 'requested' }, 202);
  });

  app.post('/api/workflows/:id/pause', async (c) => {
    await client.pause(invocationIdParam(c.req.param('id')));
    return c.json({ invocation_id: c.req.param('id'), pause: 'requested' }, 202);
  });

  app.post('/api/workflows/:id/resume', async (c) => {
    await client.resume(invocationIdParam(c.req.param('id')));
    return c.json({ invocation_id: c.req.param('id'), resumed: true }, 202);
  });

  app.post('/api/workflows/:id/retry', async (c) => {
    const retry = await client.retry(invocationIdParam(c.req.param('id')));
    return c.json({ invocation_id: retry.invocationId, retry_of: c.req.param('id') }, 202);
  });

  app.post('/api/workflows/:id/purge', async (c) => {
    await client.purge(invocationIdParam(c.req.param('id')));
    return c.json({ invocation_id: c.req.param('id'), purged: true });
  });

  app.post('/api/awakeables/:id/resolve', async (c) => {
    const id = checkAwakeableId(c.req.param('id'));
    const body = await jsonBody(c, false);
    if (!isObject(body) || !('result' in body)) throw new InvalidArgumentError('result', 'the body must be {"result": <json>}');
    // The original API sent the result as a JSON string; accept that and plain JSON alike.
    const result = typeof body.result === 'string' ? parseMaybeJson(body.result) : body.result;
    await client.resolveAwakeable(id, result);
    return c.json({ awakeable_id: id, resolved: true });
  });

  app.post('/api/awakeables/:id/reject', async (c) => {
    const id = checkAwakeableId(c.req.param('id'));
    const body = await jsonBody(c, false);
    if (!isObject(body) || typeof body.error !== 'string' || body.error === '') {
      throw new InvalidArgumentError('error', 'the body must be {"error": "<reason>"}');
    }
    await client.rejectAwakeable(id, body.error);
    return c.json({ awakeable_id: id, rejected: true });
  });

  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    // The token check's 401, with its own JSON body and `WWW-Authenticate`.
    if (err instanceof HTTPException) return err.getResponse();
    const status = statusOf(err);
    if (status === 503) {
      // The cluster is between leaders (the client retried up to its deadline): come back later.
      const seconds = Math.ceil((err instanceof UnavailableError ? err.retryAfterMs : DEFAULT_RETRY_AFTER_MS) / 1000);
      c.header('Retry-After', String(seconds));
      logger?.warn(`HTTP ${c.req.method} ${c.req.path} answered 503, retry after ${seconds} s: ${errorMessage(err)}`);
    } else if (status >= 500) {
      logger?.error({ err }, `HTTP ${c.req.method} ${c.req.path} failed: ${errorMessage(err)}`);
    }
    return c.json(
      { error: errorMessage(err), ...(err instanceof DurableError ? { code: err.code } : {}), ...(err instanceof InvalidArgumentError ? { field: err.field } : {}) },
      status,
    );
  });
  return app;
}

/** A running HTTP API. */
export interface RunningHttpApi {
  /** The address it listens on, e.g. `127.0.0.1`. */
  host: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves the API on a port (0 picks a free one) of one address; `host: '0.0.0.0'` (or `'::'`)
 * opens it to the network.
 */
export function startHttpApi(options: HttpApiOptions & { port: number; /** @default {@link DEFAULT_HTTP_HOST} */ host?: string }): Promise<RunningHttpApi> {
  const app = createHttpApi(options);
  return new Promise((resolve, reject) => {
    const server: ServerType = serve({ fetch: app.fetch, port: options.port, hostname: options.host ?? DEFAULT_HTTP_HOST }, (info) => {
      resolve({
        host: info.address,
        port: info.port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
    server.once('error', reject);
  });
}

function parseMaybeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function statusOf(err: Error): ContentfulStatusCode {
  if (err instanceof InvalidArgumentError) return 400;
  if (err instanceof InvocationNotFoundError || err instanceof AwakeableNotFoundError || err instanceof HandlerNotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  if (err instanceof TimeoutError) return 504;
  if (err instanceof UnavailableError || isTransient(err)) return 503;
  return 500;
}

/** `Retry-After` of a 503 for a transient error the client did not retry (a read). */
const DEFAULT_RETRY_AFTER_MS = 1_000;

/**
 * An invocation ID from the path, checked: one that cannot be an ID (a dot, a space, a
 * wildcard) is a 400 naming it, not a failed look-up.
 * @throws InvalidArgumentError
 */
function invocationIdParam(id: string): string {
  return checkAnyInvocationId(id);
}

/**
 * `timeout_ms`: whole milliseconds from 1 to {@link MAX_WAIT_TIMEOUT_MS}.
 * @throws InvalidArgumentError naming the parameter and the bound.
 */
function timeoutParam(value: string): number {
  const ms = /^[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
  if (!(ms >= 1 && ms <= MAX_WAIT_TIMEOUT_MS)) {
    throw new InvalidArgumentError('timeout_ms', `${JSON.stringify(value)} must be a whole number of milliseconds from 1 to ${MAX_WAIT_TIMEOUT_MS} (${MAX_WAIT_TIMEOUT_MS / 60_000} minutes)`);
  }
  return ms;
}
