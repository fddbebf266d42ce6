/**
 * Journals served a page at a time: a 10,000-step journal is read in pages of steps, each
 * page naming the step the next one starts after, and the stream sequence its entries reach
 * so that a reader can follow the entries written after it (see `DurableClient.followJournal`).
 */
import { InvalidArgumentError } from '../errors.js';
import type { JournalEntry } from '../gen/durable/durable_pb.js';

/** Steps per page when no limit is given. */
export const DEFAULT_JOURNAL_PAGE_STEPS = 100;
/** The most steps one page holds. */
export const MAX_JOURNAL_PAGE_STEPS = 1000;

/** Options of `DurableClient.getJournalPage`. */
export interface JournalPageOptions {
  /** Only steps numbered above this one (the previous page's `nextAfterStep`). @default -1: from the first step */
  afterStep?: number;
  /** Steps in the page, 1 to {@link MAX_JOURNAL_PAGE_STEPS}. @default {@link DEFAULT_JOURNAL_PAGE_STEPS} */
  limit?: number;
}

/** One page of a journal. */
export interface JournalPage {
  /** The entries of the page's steps in step order; a step's `started` entry comes before its `completed` one. */
  entries: JournalEntry[];
  /** Present when later steps exist: pass it as `afterStep` for the next page. */
  nextAfterStep?: number;
  /** Stream sequence of the journal's last entry when it was read (0 when it came from the final state, or the stream has none of it yet). */
  lastSequence: number;
}

/**
 * The page of `entries` (a whole journal) after `afterStep`, at most `limit` steps.
 * @throws InvalidArgumentError naming `after` or `limit` when one is out of range.
 */
export function journalPage(entries: readonly JournalEntry[], options: JournalPageOptions = {}): Omit<JournalPage, 'lastSequence'> {
  const afterStep = options.afterStep ?? -1;
  const limit = options.limit ?? DEFAULT_JOURNAL_PAGE_STEPS;
  if (!Number.isSafeInteger(afterStep) || afterStep < -1) throw new InvalidArgumentError('after', `${String(afterStep)} must be a step number (a whole number from -1)`);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_JOURNAL_PAGE_STEPS) {
    throw new InvalidArgumentError('limit', `${String(limit)} must be a whole number of steps from 1 to ${MAX_JOURNAL_PAGE_STEPS}`);
  }
  // Sorted by step; the stream's order is kept within a step (sort is stable).
  const later = entries.filter((e) => e.stepNumber > afterStep).sort((a, b) => a.stepNumber - b.stepNumber);
  const steps = [...new Set(later.map((e) => e.stepNumber))];
  if (steps.length <= limit) return { entries: later };
  const last = steps[limit - 1] as number;
  return { entries: later.filter((e) => e.stepNumber <= last), nextAfterStep: last };
}
