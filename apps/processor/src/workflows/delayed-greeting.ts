/**
 * The delayed-execution example: a scheduler workflow that starts a greeting later with
 * `ctx.send(..., { delay })`. The send is a journaled step and the delay a durable timer,
 * so the greeting starts once, on time, even if every processor restarts meanwhile.
 */
import { defineWorkflow } from '@durable/core';

/** Input of {@link delayedGreeting}. */
export interface DelayedGreetingInput {
  name: string;
  /** When the scheduler asked for it, ms since the epoch. */
  scheduledAtMs: number;
}

/** Output of {@link delayedGreeting}. */
export interface DelayedGreetingOutput {
  message: string;
  scheduledAtMs: number;
  ranAtMs: number;
}

/** Greets through HelloService and says how long after its scheduling it ran. */
export const delayedGreeting = defineWorkflow<DelayedGreetingInput, DelayedGreetingOutput>(
  'delayed_greeting',
  async (ctx, input) => {
    const ranAtMs = await ctx.now();
    const { message } = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name: input.name });
    ctx.log.info(`Delayed greeting ran ${ranAtMs - input.scheduledAtMs} ms after it was scheduled: ${message}`);
    return { message, scheduledAtMs: input.scheduledAtMs, ranAtMs };
  },
  { service: 'HelloService' },
);

/** Input of {@link scheduleGreeting}. */
export interface ScheduleGreetingInput {
  name?: string;
  /** How long from now the greeting starts, ms. @default 5_000 */
  delayMs?: number;
}

/** Output of {@link scheduleGreeting}. */
export interface ScheduleGreetingOutput {
  /** The invocation ID of the greeting, to wait for or inspect. */
  greetingId: string;
  scheduledAtMs: number;
  dueAtMs: number;
}

/** Schedules {@link delayedGreeting} and returns at once, without waiting for it. */
export const scheduleGreeting = defineWorkflow<ScheduleGreetingInput, ScheduleGreetingOutput>('schedule_greeting', async (ctx, input) => {
  const name = input?.name ?? 'World';
  const delayMs = input?.delayMs ?? 5_000;
  const scheduledAtMs = await ctx.now();
  const greetingId = await ctx.send(delayedGreeting, { name, scheduledAtMs }, { delay: delayMs });
  ctx.log.info(`Scheduled a greeting for ${name} in ${delayMs} ms: invocation ${greetingId}`);
  return { greetingId, scheduledAtMs, dueAtMs: scheduledAtMs + delayMs };
});

/** Input of {@link reminder}. */
export interface ReminderInput {
  name?: string;
  /** How long to sleep before greeting, ms. @default 10_000 */
  sleepMs?: number;
}

/**
 * Sleeps, then greets: the pause-cancel example's workflow. While it sleeps it is
 * `suspended`, holding nothing in the processor, so it can be paused, resumed or cancelled.
 */
export const reminder = defineWorkflow<ReminderInput, string>(
  'reminder',
  async (ctx, input) => {
    const name = input?.name ?? 'World';
    await ctx.sleep(input?.sleepMs ?? 10_000);
    const { message } = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name });
    ctx.log.info(`Reminder for ${name}: ${message}`);
    return message;
  },
  { service: 'HelloService' },
);
