/**
 * A workflow that only sleeps: the benchmark starts thousands at once to show what
 * waiting costs (nothing) and how close to its due time each one wakes.
 */
import { defineWorkflow } from '@durable/core';

/** Input of {@link nap}. */
export interface NapInput {
  /** How long to sleep, ms. */
  ms: number;
}

/** Output of {@link nap}. */
export interface NapOutput {
  /** When the sleep was due, unix ms. */
  dueAtMs: number;
  /** How long after its due time the workflow went on, ms. */
  lateMs: number;
}

/** Sleeps durably for `ms` and reports how late it woke. */
export const nap = defineWorkflow<NapInput, NapOutput>('nap', async (ctx, { ms }) => {
  const dueAtMs = (await ctx.now()) + ms;
  await ctx.sleep(ms);
  return { dueAtMs, lateMs: (await ctx.now()) - dueAtMs };
});
