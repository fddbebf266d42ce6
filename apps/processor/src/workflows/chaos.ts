/**
 * The workflows `make chaos` drives (scripts/chaos.ts). Each one's first and last steps are
 * `ctx.now()`, so its journal records when its run started and ended: the chaos checker
 * reads from journals alone whether the invocations of one key ran in submission order and
 * one at a time. What each invocation does is in its input (a {@link ChaosPlan}), so one
 * workflow covers the whole mix: service calls, `ctx.run`, a durable sleep, an awakeable,
 * a child.
 */
import { type Context, defineWorkflow } from '@durable/core';

/** What one chaos invocation does, in this order. */
export interface ChaosPlan {
  /** The key of the sequence it belongs to. */
  key: string;
  /** Its submission index within that key. */
  index: number;
  /** Calls HelloService.SayHello with this name; '' is answered INVALID_ARGUMENT (meant to fail). */
  greet?: string;
  /** Reserves this ticket with TicketService. */
  ticket?: string;
  /** Runs a side effect with `ctx.run`. */
  run?: boolean;
  /** Sleeps durably this long, ms (over a second suspends the invocation). */
  sleepMs?: number;
  /** Waits on an awakeable, which the chaos run resolves over the HTTP API. */
  awakeable?: boolean;
  /** Invokes {@link chaosChild} and waits for it. */
  child?: boolean;
}

/** What a chaos invocation returns: its plan's place and its journaled start and end. */
export interface ChaosMark {
  key: string;
  index: number;
  startedAt: number;
  endedAt: number;
}

/** The keyed-state entry where {@link chaosExclusive} counts the invocations of its key. */
export const CHAOS_DONE_KEY = 'done';

/** A child: one service call between its own start and end marks. */
export const chaosChild = defineWorkflow<ChaosPlan, ChaosMark>('chaos_child', async (ctx, plan) => {
  const startedAt = await ctx.now();
  await ctx.call('HelloService', 'SayHello', { name: `${plan.key}-child` });
  return { key: plan.key, index: plan.index, startedAt, endedAt: await ctx.now() };
});

/** Runs a plan between two journaled marks. */
async function runPlan(ctx: Context, plan: ChaosPlan, between?: () => Promise<void>): Promise<ChaosMark> {
  const startedAt = await ctx.now();
  if (plan.greet !== undefined) await ctx.call('HelloService', 'SayHello', { name: plan.greet });
  if (plan.ticket !== undefined) await ctx.call('TicketService', 'Reserve', { ticketId: plan.ticket });
  if (plan.run) await ctx.run('chaos side effect', () => `${plan.key}#${plan.index}`);
  if (plan.sleepMs !== undefined) await ctx.sleep(plan.sleepMs);
  if (plan.awakeable) await ctx.awakeable<unknown>().promise;
  if (plan.child) await ctx.invoke(chaosChild, plan, { partitionKey: `${plan.key}-child` });
  await between?.();
  return { key: plan.key, index: plan.index, startedAt, endedAt: await ctx.now() };
}

/** A chaos invocation; invocations of one key are ordered, not exclusive. */
export const chaosTask = defineWorkflow<ChaosPlan, ChaosMark>('chaos_task', (ctx, plan) => runPlan(ctx, plan));

/**
 * An exclusive chaos invocation: one at a time per key, from start to end. Each counts
 * itself in the key's state, so a lost update shows as a count below the completed ones.
 */
export const chaosExclusive = defineWorkflow<ChaosPlan, ChaosMark>(
  'chaos_exclusive',
  (ctx, plan) => runPlan(ctx, plan, () => ctx.set(CHAOS_DONE_KEY, (ctx.get<number>(CHAOS_DONE_KEY) ?? 0) + 1)),
  { exclusive: true },
);
