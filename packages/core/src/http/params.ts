/**
 * Request parameters of the HTTP API, checked: a malformed one is an InvalidArgumentError
 * naming it (a 400), never a failed look-up.
 */
import type { Context as HonoContext } from 'hono';
import type { InvocationFilter } from '../client/bulk.js';
import { checkPartitionKey, checkWorkflowName } from '../config.js';
import { InvalidArgumentError } from '../errors.js';

/** The request's JSON body; `{}` when it is empty and `optional`. @throws InvalidArgumentError naming `body`. */
export async function jsonBody(c: HonoContext, optional: boolean): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') {
    if (optional) return {};
    throw new InvalidArgumentError('body', 'a JSON body is required');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('body', 'is not valid JSON');
  }
}

/** A query parameter that must be a whole number; its range is checked by the API it goes to. */
export function integerParam(name: string, value: string): number {
  if (!/^-?[0-9]{1,16}$/.test(value)) throw new InvalidArgumentError(name, `${JSON.stringify(value)} is not an integer`);
  return Number(value);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The invocation filter of a listing or a bulk action, from query parameters or a JSON body:
 * `status`, `handler`, `partition_key`, `created_after_ms`, `created_before_ms`.
 * @throws InvalidArgumentError naming the field that is malformed.
 */
export function invocationFilter(raw: Record<string, unknown>): InvocationFilter {
  const text = (name: string): string | undefined => {
    const value = raw[name];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') throw new InvalidArgumentError(name, 'must be a string');
    return value;
  };
  const time = (name: string): number | undefined => {
    const value = raw[name];
    if (value === undefined || value === null || value === '') return undefined;
    const ms = typeof value === 'number' ? value : integerParam(name, String(value));
    if (!Number.isSafeInteger(ms) || ms < 0) throw new InvalidArgumentError(name, `${JSON.stringify(value)} must be unix milliseconds (a whole number from 0)`);
    return ms;
  };
  const status = text('status');
  const handler = text('handler');
  const partitionKey = text('partition_key');
  const createdAfterMs = time('created_after_ms');
  const createdBeforeMs = time('created_before_ms');
  return {
    ...(status !== undefined ? { status } : {}),
    ...(handler !== undefined ? { handler: checkWorkflowName(handler) } : {}),
    ...(partitionKey !== undefined ? { partitionKey: checkPartitionKey(partitionKey) } : {}),
    ...(createdAfterMs !== undefined ? { createdAfterMs } : {}),
    ...(createdBeforeMs !== undefined ? { createdBeforeMs } : {}),
  };
}
