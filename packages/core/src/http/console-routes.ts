/**
 * The routes the web console needs beyond the API's first ones: a journal read a page at a
 * time, live feeds (server-sent events) of an invocation and of every state change, bulk
 * actions over a filter, keyed state, and the console's own files at `/ui`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { runBulkAction } from '../client/bulk.js';
import type { DurableClient } from '../client/client.js';
import { checkAnyInvocationId } from '../config.js';
import { errorMessage, InvalidArgumentError, InvocationNotFoundError } from '../errors.js';
import type { ExecutionState } from '../gen/durable/durable_pb.js';
import { integerParam, invocationFilter, isObject, jsonBody } from './params.js';
import { entryToJson, stateToJson } from './state-json.js';

/** The console's page: it loads the bundled app next to it. */
const CONSOLE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Durable console</title><link rel="stylesheet" href="/ui/console.css"></head>
<body><div id="app"><noscript>The console needs JavaScript.</noscript></div><script type="module" src="/ui/console.js"></script></body></html>
`;
const ASSETS: Record<string, string> = { 'console.js': 'text/javascript; charset=utf-8', 'console.css': 'text/css; charset=utf-8' };

/**
 * Serves the console at `/ui` from `dir` (the build's `dist/console`). Registered before the
 * token check: the page must load to ask for the token; every data route stays locked.
 */
export function addConsoleAssets(app: Hono, dir: string | undefined): void {
  app.get('/ui', (c) => c.redirect('/ui/'));
  app.get('/ui/', (c) => (dir === undefined ? notBuilt(c) : c.html(CONSOLE_PAGE)));
  app.get('/ui/:file', async (c) => {
    const file = c.req.param('file');
    const type = ASSETS[file];
    if (dir === undefined) return notBuilt(c);
    if (type === undefined) return c.html(CONSOLE_PAGE); // a deep link: the app routes it
    const body = await readFile(join(dir, file)).catch(() => undefined);
    if (body === undefined) return notBuilt(c);
    return c.body(body, 200, { 'Content-Type': type, 'Cache-Control': 'no-cache' });
  });
}

function notBuilt(c: { json: (body: unknown, status: 404) => Response }): Response {
  return c.json({ error: 'the console is not built: run `make build` (it bundles dist/console)' }, 404);
}

/** The console's data routes; registered before `/api/workflows/:id`, whose pattern would take `events` and `bulk`. */
export function addConsoleApiRoutes(app: Hono, client: DurableClient): void {
  // Every state written from now on, and those of the last few seconds, as `state` events:
  // the list's live feed. `ready` once it follows: a list read after it misses nothing.
  app.get('/api/workflows/events', (c) =>
    live(c, async (send, signal, ready) => {
      await client.watch((state) => send('state', summaryJson(state)), signal, { sinceMs: LIST_FEED_REPLAY_MS, onFollowing: ready });
    }),
  );

  app.post('/api/workflows/bulk/:action', async (c) => {
    const body = await jsonBody(c, true);
    if (!isObject(body)) throw new InvalidArgumentError('body', 'must be a JSON object: the filter and "dry_run"');
    const dryRun = body.dry_run ?? false;
    if (typeof dryRun !== 'boolean') throw new InvalidArgumentError('dry_run', 'must be true or false');
    const filter = invocationFilter(body);
    const result = await runBulkAction(client, c.req.param('action'), filter, { dryRun });
    return c.json({ action: c.req.param('action'), dry_run: dryRun, matched: result.matched, done: result.done, failed: result.failed, failures: result.failures.map((f) => ({ invocation_id: f.invocationId, error: f.error })) });
  });

  app.get('/api/workflows/:id/journal', async (c) => {
    const id = checkAnyInvocationId(c.req.param('id'));
    const { after, limit } = c.req.query();
    const page = await client.getJournalPage(id, {
      ...(after !== undefined ? { afterStep: integerParam('after', after) } : {}),
      ...(limit !== undefined ? { limit: integerParam('limit', limit) } : {}),
    });
    return c.json({
      invocation_id: id,
      entries: page.entries.map(entryToJson),
      ...(page.nextAfterStep !== undefined ? { next_after: page.nextAfterStep } : {}),
      last_sequence: page.lastSequence,
    });
  });

  // The invocation's state each time it is written (`state`) and each journal entry after
  // `after_sequence` (`entry`, with its `sequence`): the invocation page's live follow.
  app.get('/api/workflows/:id/events', async (c) => {
    const id = checkAnyInvocationId(c.req.param('id'));
    const raw = c.req.query('after_sequence');
    const after = raw === undefined ? 0 : integerParam('after_sequence', raw);
    if (after < 0) throw new InvalidArgumentError('after_sequence', 'must be a stream sequence (0 or more)');
    if (!(await client.getState(id))) throw new InvocationNotFoundError(id);
    return live(c, async (send, signal, ready) => {
      // The page reads the state and journal itself and follows from its `after_sequence`.
      ready();
      await Promise.all([
        client.watchInvocation(id, (state) => send('state', { ...stateToJson(state), journal: undefined }), signal),
        client.followJournal(id, after, (entry, sequence) => send('entry', { ...entryToJson(entry), sequence }), signal),
      ]);
    });
  });

  app.get('/api/keyed-state/:key', async (c) => {
    const key = c.req.param('key');
    return c.json({ partition_key: key, values: await client.getKeyedState(key) });
  });
}

type Send = (event: string, data: unknown) => void;

/**
 * A server-sent event stream fed by `feed` until the caller goes away; `ready` sends the
 * `ready` event. An error of the feed ends the stream with an `error` event carrying its message.
 */
function live(c: Parameters<typeof streamSSE>[0], feed: (send: Send, signal: AbortSignal, ready: () => void) => Promise<void>): Response {
  const requestSignal = c.req.raw.signal;
  return streamSSE(c, async (stream) => {
    const stop = new AbortController();
    const end = (): void => stop.abort();
    stream.onAbort(end);
    requestSignal.addEventListener('abort', end, { once: true });
    const send: Send = (event, data) => void stream.writeSSE({ event, data: JSON.stringify(data) }).catch(end);
    // Sent at once: the browser's fetch resolves, and a proxy sees the stream is alive.
    await stream.write(': open\n\n');
    const fed = feed(send, stop.signal, () => send('ready', {})).catch((err: unknown) => {
      if (stop.signal.aborted) return;
      // Ended: the caller connects again, and follows from there.
      send('error', { error: errorMessage(err) });
      end();
    });
    // A comment every 15 s keeps idle connections from being cut by proxies.
    while (!stop.signal.aborted) {
      await Promise.race([stream.sleep(KEEPALIVE_MS), new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }))]);
      if (!stop.signal.aborted) await stream.write(': keep-alive\n\n').catch(end);
    }
    await fed;
  });
}

const KEEPALIVE_MS = 15_000;

/**
 * How far back the list's feed starts: the index lists a state up to 200 ms after it is
 * written (it gathers writes), more under load; a list read as the feed starts may miss
 * states written this long before, and the feed brings them.
 */
const LIST_FEED_REPLAY_MS = 5_000;

function summaryJson(state: ExecutionState): Record<string, unknown> {
  return {
    invocation_id: state.invocationId,
    handler: state.handler,
    status: state.status,
    partition_key: state.partitionKey,
    created_at_ms: Number(state.createdAtMs),
    updated_at_ms: Number(state.updatedAtMs),
  };
}
