import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { EntryPhase, JournalEntrySchema } from '../gen/durable/durable_pb.js';
import { journalPage } from './journal-page.js';

/** A journal of `steps` steps, each a started and a completed entry, as the stream has it. */
function journal(steps: number) {
  return Array.from({ length: steps }, (_, step) => [
    create(JournalEntrySchema, { stepNumber: step, stepType: 'SLEEP', phase: EntryPhase.STARTED }),
    create(JournalEntrySchema, { stepNumber: step, stepType: 'SLEEP', phase: EntryPhase.COMPLETED }),
  ]).flat();
}

describe('journalPage', () => {
  it('serves a 10,000-step journal in pages of steps that cover it once, in order', () => {
    const entries = journal(10_000);
    const seen: number[] = [];
    let after: number | undefined;
    let pages = 0;
    do {
      const page = journalPage(entries, { limit: 1000, ...(after !== undefined ? { afterStep: after } : {}) });
      for (const e of page.entries) if (e.phase === EntryPhase.COMPLETED) seen.push(e.stepNumber);
      expect(page.entries.length).toBeLessThanOrEqual(2000);
      after = page.nextAfterStep;
      pages++;
    } while (after !== undefined);
    expect(pages).toBe(10);
    expect(seen).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
  });

  it('keeps both entries of a step in one page, started first', () => {
    const page = journalPage(journal(3), { afterStep: 0, limit: 1 });
    expect(page.entries.map((e) => [e.stepNumber, e.phase])).toEqual([
      [1, EntryPhase.STARTED],
      [1, EntryPhase.COMPLETED],
    ]);
    expect(page.nextAfterStep).toBe(1);
  });

  it('has no next step on the last page', () => {
    expect(journalPage(journal(3), { afterStep: 1 }).nextAfterStep).toBeUndefined();
  });

  it('names the parameter that is out of range', () => {
    expect(() => journalPage([], { limit: 0 })).toThrow(InvalidArgumentError);
    expect(() => journalPage([], { limit: 1001 })).toThrow(/limit/);
    expect(() => journalPage([], { afterStep: -2 })).toThrow(/after/);
  });
});
