/**
 * A workflow that only sleeps: the benchmark starts thousands at once to show what
 * waiting costs (nothing) and how close to its due time each one wakes.
 */
import { defineWorkflow } from '@durable/core';

/** Input of {@link nap}. */
export interface NapInput {
  /** How long to sleep, ms. */
  ms?: number;
  /** When to wake instead, unix ms: many naps can then be due at times chosen for them. */
  untilMs?: number;
}

/** Output of {@link nap}. */
export interface NapOutput {
  /** When the sleep was due, unix ms. */
  dueAtMs: number;
  /** How long after its due time the workflow went on, ms. */
  lateMs: number;
}

/** Sleeps durably for `ms` (or until `untilMs`) and reports how late it woke. */
export const nap = defineWorkflow<NapInput, NapOutput>('nap', async (ctx, { ms, untilMs }) => {
  const now = await ctx.now();
  const dueAtMs = untilMs ?? now + (ms ?? 0);
  await ctx.sleep(Math.max(0, dueAtMs - now));
  return { dueAtMs, lateMs: (await ctx.now()) - dueAtMs };
});
