/**
 * Actions over every invocation a filter matches (the console's bulk cancel, pause, resume
 * and retry): the matching invocations are read a page at a time through the index's
 * cursor, never by a scan of the states, and acted on as each page comes.
 */
import { errorMessage, InvalidArgumentError } from '../errors.js';
import type { DurableClient } from './client.js';
import { MAX_LIST_LIMIT, type ExecutionStateSummary, type ListWorkflowsOptions } from './query.js';

/** What can be done over a filter. */
export const BULK_ACTIONS = ['cancel', 'pause', 'resume', 'retry'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];

/** Which invocations a bulk action takes: the listing's filters. */
export type InvocationFilter = Omit<ListWorkflowsOptions, 'cursor' | 'limit'>;

/** Options of {@link runBulkAction}. */
export interface BulkOptions {
  /** Only count the invocations the action would take; act on none. @default false */
  dryRun?: boolean;
}

/** What a bulk action did. */
export interface BulkResult {
  /** Invocations the filter matched. */
  matched: number;
  /** Those the action was applied to (0 in a dry run). */
  done: number;
  /** Those it failed for (already ended, say), the first {@link MAX_REPORTED_FAILURES} with the reason. */
  failed: number;
  failures: { invocationId: string; error: string }[];
}

/** Failures named in a result at most; the rest are counted. */
export const MAX_REPORTED_FAILURES = 100;

/** Whether `name` is a bulk action. */
export function isBulkAction(name: string): name is BulkAction {
  return (BULK_ACTIONS as readonly string[]).includes(name);
}

/**
 * Calls `fn` for every invocation the filter matches, a page of the index at a time, each
 * once: an invocation whose entry moves further along the index while this runs (its status
 * changed) is not taken twice.
 */
export async function forEachMatching(client: DurableClient, filter: InvocationFilter, fn: (summary: ExecutionStateSummary) => Promise<void>): Promise<void> {
  const seen = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await client.listWorkflows({ ...filter, limit: MAX_LIST_LIMIT, ...(cursor !== undefined ? { cursor } : {}) });
    for (const summary of page.invocations) {
      if (seen.has(summary.invocationId)) continue;
      seen.add(summary.invocationId);
      await fn(summary);
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}

/**
 * Applies `action` to every invocation the filter matches (or counts them, with `dryRun`).
 * One that refuses it (a cancel of an ended invocation) is counted in `failed`; the others go on.
 * @throws InvalidArgumentError when `action` is not one of {@link BULK_ACTIONS}, or a filter is malformed.
 */
export async function runBulkAction(client: DurableClient, action: string, filter: InvocationFilter, options: BulkOptions = {}): Promise<BulkResult> {
  if (!isBulkAction(action)) throw new InvalidArgumentError('action', `${JSON.stringify(action)} is not one of ${BULK_ACTIONS.join(', ')}`);
  const result: BulkResult = { matched: 0, done: 0, failed: 0, failures: [] };
  await forEachMatching(client, filter, async ({ invocationId }) => {
    result.matched++;
    if (options.dryRun) return;
    try {
      await (action === 'retry' ? client.retry(invocationId) : client[action](invocationId));
      result.done++;
    } catch (err) {
      result.failed++;
      if (result.failures.length < MAX_REPORTED_FAILURES) result.failures.push({ invocationId, error: errorMessage(err) });
    }
  });
  return result;
}
