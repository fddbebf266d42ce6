/**
 * The OpenAPI description served at `/openapi.json`.
 */
import { ANY_INVOCATION_ID, AWAKEABLE_ID, INVOCATION_ID, PARTITION_KEY, WORKFLOW_NAME } from '../config.js';
import { DEFAULT_HTTP_BODY_LIMIT, DEFAULT_WAIT_TIMEOUT_MS, MAX_WAIT_TIMEOUT_MS } from './limits.js';

const STATUSES = ['pending', 'running', 'suspended', 'paused', 'completed', 'failed', 'cancelled'];
const error = {
  type: 'object',
  properties: { error: { type: 'string' }, code: { type: 'string' }, field: { type: 'string' } },
  required: ['error'],
};
/** What names an invocation, in its state and in a listing. */
const invocationFields = {
  invocation_id: { type: 'string' },
  handler: { type: 'string' },
  status: { type: 'string', enum: STATUSES },
  partition_key: { type: 'string' },
};
const state = {
  type: 'object',
  properties: {
    ...invocationFields,
    input: {},
    output: {},
    error: { type: 'string' },
    status_history: {
      type: 'array',
      description: 'the last status changes, oldest first, at most 20',
      items: { type: 'object', properties: { status: { type: 'string', enum: STATUSES }, at_ms: { type: 'integer' } } },
    },
    journal_length: { type: 'integer' },
    journal: { type: 'array', items: { type: 'object' } },
  },
};
const summary = {
  type: 'object',
  properties: {
    ...invocationFields,
    created_at_ms: { type: 'integer' },
    updated_at_ms: { type: 'integer' },
  },
};
const counts = { type: 'object', additionalProperties: { type: 'integer' } };
/** What each error status means, in the description of every route that may answer it. */
const ERROR_MEANINGS: Record<number, string> = {
  400: '400: a parameter, ID or body that cannot be valid; `field` names it',
  401: '401: no `Authorization: Bearer <token>`, or not the token of the processor (set when it runs with DURABLE_API_TOKEN)',
  413: `413: the request body is over the processor's limit (--http-body-limit, default ${DEFAULT_HTTP_BODY_LIMIT} bytes)`,
  503: '503: the cluster did not answer in time; try again after `Retry-After` seconds',
};
/**
 * The error answers of a route: the codes given, 401 (when the processor has a token) and
 * 503 (with `Retry-After`) while the cluster elects a leader.
 */
const errors = (...codes: number[]) =>
  Object.fromEntries(
    [...codes, 401, 503].map((code) => [
      String(code),
      { description: ERROR_MEANINGS[code] ?? String(code), content: { 'application/json': { schema: error } } },
    ]),
  );
const json = (schema: object, description: string) => ({ description, content: { 'application/json': { schema } } });
const idParam = (name: string, pattern: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string', pattern }, description });
const invocationId = idParam('id', ANY_INVOCATION_ID.source, 'an invocation ID (`/` percent-encoded as %2F); another form is a 400');
const awakeableId = idParam('id', AWAKEABLE_ID.source, 'an awakeable ID as `ctx.awakeable()` gives it; another form is a 400');
const workflowName = { type: 'string', pattern: WORKFLOW_NAME.source };

/** OpenAPI 3.1 description of the HTTP API. */
export const OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'Durable execution engine', version: '0.1.0' },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'Required when the processor runs with DURABLE_API_TOKEN set: `Authorization: Bearer <that token>`' },
    },
  },
  security: [{ bearer: [] }],
  paths: {
    '/health': { get: { summary: 'Liveness; never asks for the token', security: [], responses: { '200': json({ type: 'object' }, 'ok') } } },
    '/api/workflows/{name}/invoke': {
      post: {
        summary: 'Invoke a workflow; the JSON body is its input',
        parameters: [
          { name: 'name', in: 'path', required: true, schema: workflowName, description: 'the workflow; another form is a 400, an unknown one a 404' },
          { name: 'wait', in: 'query', schema: { type: 'boolean' }, description: 'wait for the result' },
          {
            name: 'timeout_ms',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: MAX_WAIT_TIMEOUT_MS, default: DEFAULT_WAIT_TIMEOUT_MS },
            description: 'how long wait=true waits (504 past it); past the maximum or not a whole number, a 400',
          },
          { name: 'partition_key', in: 'query', schema: { type: 'string', pattern: PARTITION_KEY.source, default: 'default' } },
          {
            name: 'Idempotency-Key',
            in: 'header',
            schema: { type: 'string', pattern: INVOCATION_ID.source },
            description: 'becomes the invocation ID: the same key runs once',
          },
        ],
        requestBody: { content: { 'application/json': { schema: {} } } },
        responses: {
          '202': json({ type: 'object', properties: { invocation_id: { type: 'string' }, duplicate: { type: 'boolean' } } }, 'submitted'),
          '200': json(state, 'the final state, with wait=true'),
          ...errors(400, 404, 413, 504),
        },
      },
    },
    '/api/workflows': {
      get: {
        summary: 'List invocations from the execution index, a page at a time, in the order of their last change',
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: STATUSES } },
          { name: 'handler', in: 'query', schema: workflowName, description: 'workflow name' },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'next_cursor of the previous page' },
        ],
        responses: {
          '200': json(
            { type: 'object', properties: { invocations: { type: 'array', items: summary }, next_cursor: { type: 'string', description: 'absent on the last page' } } },
            'a page of invocations',
          ),
          ...errors(400),
        },
      },
    },
    '/api/workflows/stats': {
      get: {
        summary: 'Count invocations by status and by workflow',
        parameters: [{ name: 'handler', in: 'query', schema: workflowName, description: 'count only this workflow' }],
        responses: {
          '200': json({ type: 'object', properties: { total: { type: 'integer' }, by_status: counts, by_handler: counts } }, 'counts'),
          ...errors(400),
        },
      },
    },
    '/api/workflows/events': {
      get: { summary: 'Every state written from now on and in the last 5 s, as server-sent `state` events, after a `ready` event once it follows (the console list\'s live feed)', responses: { '200': { description: 'text/event-stream' }, ...errors(400) } },
    },
    '/api/workflows/bulk/{action}': {
      post: {
        summary: 'cancel, pause, resume or retry every invocation a filter matches (`dry_run`: count only)',
        parameters: [{ name: 'action', in: 'path', required: true, schema: { type: 'string', enum: ['cancel', 'pause', 'resume', 'retry'] } }],
        requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { status: { type: 'string' }, handler: { type: 'string' }, partition_key: { type: 'string' }, created_after_ms: { type: 'integer' }, created_before_ms: { type: 'integer' }, dry_run: { type: 'boolean' } } } } } },
        responses: { '200': json({ type: 'object', properties: { matched: { type: 'integer' }, done: { type: 'integer' }, failed: { type: 'integer' } } }, 'what was done'), ...errors(400) },
      },
    },
    '/api/workflows/{id}/journal': {
      get: {
        summary: 'A page of steps of the journal, also while the invocation runs',
        parameters: [invocationId, { name: 'after', in: 'query', schema: { type: 'integer' } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } }],
        responses: { '200': json({ type: 'object', properties: { entries: { type: 'array' }, next_after: { type: 'integer' }, last_sequence: { type: 'integer' } } }, 'a page'), ...errors(400, 404) },
      },
    },
    '/api/workflows/{id}/events': {
      get: {
        summary: 'Server-sent `state` events and `entry` events (journal entries after `after_sequence`)',
        parameters: [invocationId, { name: 'after_sequence', in: 'query', schema: { type: 'integer', minimum: 0 } }],
        responses: { '200': { description: 'text/event-stream' }, ...errors(400, 404) },
      },
    },
    '/api/workflows/{id}': {
      get: { summary: 'The state of one invocation', parameters: [invocationId], responses: { '200': json(state, 'state'), ...errors(400, 404) } },
    },
    '/api/workflows/{id}/cancel': {
      post: { summary: 'Cancel an invocation', parameters: [invocationId], responses: { '202': json({ type: 'object' }, 'cancel requested'), ...errors(400, 404, 409, 413) } },
    },
    '/api/workflows/{id}/pause': {
      post: { summary: 'Pause an invocation', parameters: [invocationId], responses: { '202': json({ type: 'object' }, 'pause requested'), ...errors(400, 404, 409, 413) } },
    },
    '/api/workflows/{id}/resume': {
      post: { summary: 'Resume a paused invocation', parameters: [invocationId], responses: { '202': json({ type: 'object' }, 'resumed'), ...errors(400, 404, 409, 413) } },
    },
    '/api/workflows/{id}/retry': {
      post: {
        summary: 'Retry a failed or cancelled invocation under a new ID',
        parameters: [invocationId],
        responses: { '202': json({ type: 'object', properties: { invocation_id: { type: 'string' }, retry_of: { type: 'string' } } }, 'retry submitted'), ...errors(400, 404, 409, 413) },
      },
    },
    '/api/workflows/{id}/purge': {
      post: {
        summary: 'Remove an ended invocation now, with its journal, index entry, timers and awakeables (as its retention would later)',
        parameters: [invocationId],
        responses: { '200': json({ type: 'object', properties: { invocation_id: { type: 'string' }, purged: { type: 'boolean' } } }, 'removed'), ...errors(400, 404, 409, 413) },
      },
    },
    '/api/awakeables/{id}/resolve': {
      post: {
        summary: 'Resolve an awakeable',
        parameters: [awakeableId],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { result: {} }, required: ['result'] } } } },
        responses: { '200': json({ type: 'object' }, 'resolved'), ...errors(400, 404, 409, 413) },
      },
    },
    '/api/awakeables/{id}/reject': {
      post: {
        summary: 'Reject an awakeable',
        parameters: [awakeableId],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } } } },
        responses: { '200': json({ type: 'object' }, 'rejected'), ...errors(400, 404, 409, 413) },
      },
    },
  },
} as const;
