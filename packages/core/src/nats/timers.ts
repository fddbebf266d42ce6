/**
 * Durable timers as scheduled messages (nats-server 2.12+, ADR-51). A timer is a message
 * in the COMMANDS stream on `timers.<invocation id>.<timer>`, holding the command to queue
 * when it is due and a `Nats-Schedule: @at <due time>` header. At the due time the server
 * itself publishes the command to `commands.<partition key>` and removes the timer.
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

/** Schedules the resume command of each sleep that suspends its invocation. */
export class NatsTimerScheduler implements TimerScheduler {
  constructor(
    private readonly js: JetStreamClient,
    private readonly names: EngineNames,
  ) {}

  async schedule(timer: TimerRequest): Promise<void> {
    // No message ID: a resume that finds its sleep not due yet (the server's clock ahead of
    // the processor's) schedules the timer again, and that one must fire too.
    await scheduleCommand(this.js, this.names, { command: resumeCommand(timer), dueAtMs: timer.wakeAtMs, timer: String(timer.step) });
  }
}
