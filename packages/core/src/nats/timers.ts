/**
 * Durable timers on the TIMERS work-queue stream. A timer is one message holding the
 * resume command of its invocation. A processor that receives a timer before it is due
 * gives it back with a delay of exactly the time left, so the server keeps every waiting
 * timer and redelivers it when due: no processor holds or polls anything meanwhile, and a
 * timer due during an outage fires as soon as a processor is up.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { headers } from '@nats-io/nats-core';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { EngineNames } from '../config.js';
import { CommandSchema } from '../gen/durable/durable_pb.js';
import { errorMessage } from '../errors.js';
import type { TimerRequest, TimerScheduler } from '../engine/stores.js';
import type { Logger } from '../logger.js';
import { TIMERS_CONSUMER } from './setup.js';
import { resumeCommand } from '../engine/commands.js';

/** Header of a timer message: when it is due, unix ms. */
export const WAKE_AT = 'Durable-Wake-At';

/** Schedules timers by publishing them to the TIMERS stream. */
export class NatsTimerScheduler implements TimerScheduler {
  constructor(
    private readonly js: JetStreamClient,
    private readonly names: EngineNames,
  ) {}

  async schedule(timer: TimerRequest): Promise<void> {
    const command = resumeCommand(timer);
    const h = headers();
    h.set(WAKE_AT, String(timer.wakeAtMs));
    await this.js.publish(`${this.names.timersSubject}.${timer.invocationId}`, toBinary(CommandSchema, command), {
      // No message ID: a duplicate timer only wakes the invocation once more for nothing,
      // while deduplication could swallow the timer of a sleep resumed after a pause.
      headers: h,
    });
  }
}

/** Fires due timers: sends each one's resume command to COMMANDS. */
export class TimerService {
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly js: JetStreamClient,
    private readonly names: EngineNames,
    private readonly logger: Logger,
  ) {}

  /** Starts consuming the timers. */
  async start(): Promise<void> {
    const consumer = await this.js.consumers.get(this.names.timersStream, TIMERS_CONSUMER);
    const messages = await consumer.consume({ max_messages: 256 });
    this.#messages = messages;
    this.#loop = (async () => {
      for await (const msg of messages) void this.#handle(msg);
    })().catch((err: unknown) => this.logger.error({ err }, `Stopped consuming timers: ${errorMessage(err)}`));
  }

  /** Stops consuming; timers stay in the stream for the next processor. */
  async stop(): Promise<void> {
    this.#messages?.stop();
    await this.#loop;
  }

  async #handle(msg: JsMsg): Promise<void> {
    const wakeAt = Number(msg.headers?.get(WAKE_AT) ?? 0);
    const left = wakeAt - Date.now();
    if (left > 0) {
      msg.nak(left);
      return;
    }
    const invocationId = msg.subject.slice(this.names.timersSubject.length + 1);
    let key: string;
    try {
      key = fromBinary(CommandSchema, msg.data).partitionKey || 'default';
    } catch (err) {
      // Not one of ours: drop it rather than redeliver it forever.
      this.logger.error({ err, subject: msg.subject }, `Dropped a timer that does not decode: ${errorMessage(err)}`);
      msg.term();
      return;
    }
    try {
      await this.js.publish(`${this.names.commandsSubject}.${key}`, msg.data, { msgID: `${invocationId}:wake:${wakeAt}` });
      msg.ack();
    } catch (err) {
      this.logger.warn({ err, invocation_id: invocationId }, `Could not fire the timer of ${invocationId}; retrying: ${errorMessage(err)}`);
      msg.nak(1_000);
    }
  }
}
