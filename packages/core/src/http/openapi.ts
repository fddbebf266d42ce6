/**
 * The OpenAPI description served at `/openapi.json`.
 */

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
/** The error answers of a route: the codes given, and 503 (with `Retry-After`) while the cluster elects a leader. */
const errors = (...codes: number[]) =>
  Object.fromEntries(
    [...codes, 503].map((code) => [
      String(code),
      {
        description: code === 503 ? '503: the cluster did not answer in time; try again after `Retry-After` seconds' : String(code),
        content: { 'application/json': { schema: error } },
      },
    ]),
  );
const json = (schema: object, description: string) => ({ description, content: { 'application/json': { schema } } });
const idParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });

/** OpenAPI 3.1 description of the HTTP API. */
export const OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'Durable execution engine', version: '0.1.0' },
  paths: {
    '/health': { get: { summary: 'Liveness', responses: { '200': json({ type: 'object' }, 'ok') } } },
    '/api/workflows/{name}/invoke': {
      post: {
        summary: 'Invoke a workflow; the JSON body is its input',
        parameters: [
          idParam('name'),
          { name: 'wait', in: 'query', schema: { type: 'boolean' }, description: 'wait for the result' },
          { name: 'timeout_ms', in: 'query', schema: { type: 'integer', default: 30000 } },
          { name: 'partition_key', in: 'query', schema: { type: 'string', default: 'default' } },
          { name: 'Idempotency-Key', in: 'header', schema: { type: 'string' }, description: 'becomes the invocation ID: the same key runs once' },
        ],
        requestBody: { content: { 'application/json': { schema: {} } } },
        responses: {
          '202': json({ type: 'object', properties: { invocation_id: { type: 'string' }, duplicate: { type: 'boolean' } } }, 'submitted'),
          '200': json(state, 'the final state, with wait=true'),
          ...errors(400, 404, 504),
        },
      },
    },
    '/api/workflows': {
      get: {
        summary: 'List invocations from the execution index, a page at a time, in the order of their last change',
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: STATUSES } },
          { name: 'handler', in: 'query', schema: { type: 'string' }, description: 'workflow name' },
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
        parameters: [{ name: 'handler', in: 'query', schema: { type: 'string' }, description: 'count only this workflow' }],
        responses: {
          '200': json({ type: 'object', properties: { total: { type: 'integer' }, by_status: counts, by_handler: counts } }, 'counts'),
        },
      },
    },
    '/api/workflows/{id}': {
      get: { summary: 'The state of one invocation', parameters: [idParam('id')], responses: { '200': json(state, 'state'), ...errors(404) } },
    },
    '/api/workflows/{id}/cancel': {
      post: { summary: 'Cancel an invocation', parameters: [idParam('id')], responses: { '202': json({ type: 'object' }, 'cancel requested'), ...errors(404, 409) } },
    },
    '/api/workflows/{id}/pause': {
      post: { summary: 'Pause an invocation', parameters: [idParam('id')], responses: { '202': json({ type: 'object' }, 'pause requested'), ...errors(404, 409) } },
    },
    '/api/workflows/{id}/resume': {
      post: { summary: 'Resume a paused invocation', parameters: [idParam('id')], responses: { '202': json({ type: 'object' }, 'resumed'), ...errors(404, 409) } },
    },
    '/api/workflows/{id}/retry': {
      post: {
        summary: 'Retry a failed or cancelled invocation under a new ID',
        parameters: [idParam('id')],
        responses: { '202': json({ type: 'object', properties: { invocation_id: { type: 'string' }, retry_of: { type: 'string' } } }, 'retry submitted'), ...errors(404, 409) },
      },
    },
    '/api/workflows/{id}/purge': {
      post: {
        summary: 'Remove an ended invocation now, with its journal, index entry, timers and awakeables (as its retention would later)',
        parameters: [idParam('id')],
        responses: { '200': json({ type: 'object', properties: { invocation_id: { type: 'string' }, purged: { type: 'boolean' } } }, 'removed'), ...errors(404, 409) },
      },
    },
    '/api/awakeables/{id}/resolve': {
      post: {
        summary: 'Resolve an awakeable',
        parameters: [idParam('id')],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { result: {} }, required: ['result'] } } } },
        responses: { '200': json({ type: 'object' }, 'resolved'), ...errors(400, 404, 409) },
      },
    },
    '/api/awakeables/{id}/reject': {
      post: {
        summary: 'Reject an awakeable',
        parameters: [idParam('id')],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } } } },
        responses: { '200': json({ type: 'object' }, 'rejected'), ...errors(400, 404, 409) },
      },
    },
  },
} as const;
