/**
 * Durable timers as scheduled messages (nats-server 2.12+, ADR-51). A timer is a message
 * in the COMMANDS stream on `timers.<invocation id>.<timer>`, holding the command to queue
 * when it is due and a `Nats-Schedule: @at <time>` header. At that time the server itself
 * publishes the command to `commands.<partition key>` and removes the timer.
 *
 * The server fires the timers due at most every 250 ms, so a timer set for its due time
 * would fire up to 250 ms late when others keep the server busy firing. A sleep's wake-up
 * is scheduled {@link DEFAULT_TIMER_LEAD_MS} early instead and carries its due time
 * (`due_at_ms`): the processor holds it until then, in its key's line, without a run slot.
 *
 * No processor holds, polls or fires a timer: a waiting timer costs the processors nothing
 * and counts against no consumer's limit, and neither a processor's crash nor its clock can
 * delay or swallow it (the fired command carries no message ID, so a timer scheduled again
 * fires again). A timer due during an outage of the processors is queued on time and run
 * when one is up. Scheduling a timer again replaces it (one timer per subject).
 */
import { toBinary } from '@bufbuild/protobuf';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { EngineNames } from '../config.js';
import { CommandSchema, type Command } from '../gen/durable/durable_pb.js';
import type { TimerRequest, TimerScheduler } from '../engine/stores.js';
import { resumeCommand } from '../engine/commands.js';

/** A command to queue later. */
export interface DelayedCommand {
  command: Command;
  /** When the command is queued, unix ms. */
  dueAtMs: number;
  /** Names the timer among its invocation's (a sleep's step, `start`): scheduling the same name again replaces it. */
  timer: string;
  /** De-duplicates repeated publishes of the same timer within the stream's window. @default none */
  msgID?: string;
}

/** Schedules a command on the COMMANDS stream: the server queues it when due. */
export async function scheduleCommand(js: JetStreamClient, names: EngineNames, delayed: DelayedCommand): Promise<void> {
  const { command, dueAtMs, timer, msgID } = delayed;
  await js.publish(`${names.timersSubject}.${command.invocationId}.${timer}`, toBinary(CommandSchema, command), {
    schedule: { specification: new Date(dueAtMs), target: `${names.commandsSubject}.${command.partitionKey}` },
    ...(msgID !== undefined ? { msgID } : {}),
  });
}

/** How long before its due time a sleep's wake-up is fired, ms: the interval at which the server fires due timers. */
export const DEFAULT_TIMER_LEAD_MS = 250;

/** Schedules the resume command of each sleep that suspends its invocation. */
export class NatsTimerScheduler implements TimerScheduler {
  constructor(
    private readonly js: JetStreamClient,
    private readonly names: EngineNames,
    private readonly leadMs = DEFAULT_TIMER_LEAD_MS,
  ) {}

  async schedule(timer: TimerRequest): Promise<void> {
    // No message ID: a resume that finds its sleep not due yet (the server's clock ahead of
    // the processor's) schedules the timer again, and that one must fire too.
    // A sleep of a fractional number of ms is due at a fractional time: the whole ms after it.
    const command = { ...resumeCommand(timer), dueAtMs: BigInt(Math.ceil(timer.wakeAtMs)) };
    await scheduleCommand(this.js, this.names, { command, dueAtMs: timer.wakeAtMs - this.leadMs, timer: String(timer.step) });
  }
}
