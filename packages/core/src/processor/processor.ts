/**
 * The processor: pulls commands from the shared durable consumer and runs them through
 * the executor, commands of one partition key in order and up to `maxConcurrent` at once.
 *
 * A command is acknowledged only once its invocation has ended (or was found ended);
 * while it runs, the processor tells the server it is still working on it, so a live
 * invocation is never redelivered and a crashed processor's invocations come back after
 * the ack wait. A command that cannot be decoded is moved to the dead-letter stream.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { headers } from '@nats-io/nats-core';
import { jetstream, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { hostname } from 'node:os';
import { setTimeout as wait } from 'node:timers/promises';
import { checkAnyInvocationId, type EngineNames } from '../config.js';
import { CommandKind, CommandSchema, type Command } from '../gen/durable/durable_pb.js';
import { CancelledError, DecodeError, errorMessage, PausedError } from '../errors.js';
import { Executor, type ExecutionOutcome } from '../engine/executor.js';
import { WorkflowRegistry, type AnyWorkflow } from '../engine/workflow.js';
import { createLogger, type Logger } from '../logger.js';
import { NatsJournalStore } from '../nats/journal-store.js';
import { NatsResultNotifier } from '../nats/result-channel.js';
import { setupEngine } from '../nats/setup.js';
import { NatsStateStore } from '../nats/state-store.js';
import { ExecutionIndex, registerWorkflows } from '../nats/execution-index.js';
import { NatsAwakeableStore } from '../nats/awakeable-store.js';
import { NatsInvocationGateway } from '../nats/invocations.js';
import { NatsKeyedStateStore } from '../nats/keyed-state-store.js';
import { NatsTimerScheduler } from '../nats/timers.js';
import type { ServiceInvoker } from '../services/service-invoker.js';
import { PartitionQueue } from './partition-queue.js';

/** Options of {@link Processor.start}. */
export interface ProcessorOptions {
  /** A connection to the cluster; the processor does not close it. */
  nc: NatsConnection;
  /** The workflows this processor runs. */
  workflows: WorkflowRegistry | AnyWorkflow[];
  /** Calls services for `ctx.call`. */
  services: ServiceInvoker;
  /** @default a logger printing the guide's lines */
  logger?: Logger;
  /** Prefixes every JetStream name, see `engineNames`. @default '' */
  namespace?: string;
  /** Durable consumer the processors share. @default 'processor-1' */
  consumerName?: string;
  /** Commands in flight at once. @default 100 */
  maxConcurrent?: number;
  /** Seconds a delivered command may go without word from its processor before it is redelivered. @default 30 */
  ackWaitSeconds?: number;
  /** Runs an invocation may take without finishing before it fails with the reason. @default 3 */
  maxAttempts?: number;
  /** Replicas of streams and buckets. @default 3 on a cluster, 1 on a single server */
  replicas?: number;
  /** Recorded as the owner of running invocations. @default `<hostname>-<pid>` */
  processorId?: string;
}

/** Options of {@link Processor.stop}. */
export interface StopOptions {
  /** How long running invocations get to reach a step boundary, ms. @default 10_000 */
  graceMs?: number;
}

/** Delay before a wake-up for an invocation running from another command is delivered again, ms. */
const BUSY_RETRY_MS = 250;

/** Delay before a command whose run hit an infrastructure error is delivered again, ms. */
const RETRY_DELAY_MS = 2_000;

/** A running processor. */
export class Processor {
  readonly consumerName: string;
  readonly #options: ProcessorOptions;
  readonly #names: EngineNames;
  readonly #js: JetStreamClient;
  readonly #executor: Executor;
  readonly #logger: Logger;
  readonly #ackWaitMs: number;
  readonly #queue = new PartitionQueue<JsMsg>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #stopping = new AbortController();
  #messages: ConsumerMessages | undefined;
  #index: ExecutionIndex | undefined;
  /** Per running invocation, aborts its run with a CancelledError. */
  readonly #cancels = new Map<string, AbortController>();
  #cancelRequests: Subscription | undefined;
  #loop: Promise<void> = Promise.resolve();

  private constructor(options: ProcessorOptions, names: EngineNames, executor: Executor, logger: Logger) {
    this.#options = options;
    this.#names = names;
    this.#executor = executor;
    this.#logger = logger;
    this.#js = jetstream(options.nc);
    this.consumerName = options.consumerName ?? 'processor-1';
    this.#ackWaitMs = (options.ackWaitSeconds ?? 30) * 1_000;
  }

  /**
   * Creates the streams, bucket and consumer where missing and starts consuming.
   *
   * @example
   * const processor = await Processor.start({ nc, workflows: [helloWorkflow], services });
   * process.on('SIGTERM', () => processor.stop());
   */
  static async start(options: ProcessorOptions): Promise<Processor> {
    const logger = options.logger ?? createLogger({ name: 'processor' });
    const resources = await setupEngine(options.nc, {
      logger,
      ...pick(options, ['namespace', 'replicas', 'consumerName', 'ackWaitSeconds', 'maxConcurrent']),
    });
    const js = jetstream(options.nc);
    const workflows = options.workflows instanceof WorkflowRegistry ? options.workflows : new WorkflowRegistry(options.workflows);
    const index = new ExecutionIndex(options.nc, resources.names, { logger });
    const states = new NatsStateStore(resources.stateKv, index);
    // Known to the stats from the start, with 0 until their first invocation.
    await registerWorkflows(options.nc, resources.names, workflows.names());
    const executor = new Executor({
      workflows,
      states,
      journals: new NatsJournalStore(js, resources.jsm, resources.names, { maxPayload: () => options.nc.info?.max_payload }),
      services: options.services,
      logger,
      notifier: new NatsResultNotifier(options.nc, resources.names),
      timers: new NatsTimerScheduler(js, resources.names),
      awakeables: new NatsAwakeableStore(resources.awakeablesKv),
      invocations: new NatsInvocationGateway({ nc: options.nc, js, names: resources.names, states }),
      keyed: new NatsKeyedStateStore(resources.keyedStateKv),
      processorId: options.processorId ?? `${hostname()}-${process.pid}`,
      ...(options.maxAttempts !== undefined ? { maxAttempts: options.maxAttempts } : {}),
    });
    const processor = new Processor(options, resources.names, executor, logger);
    processor.#index = index;
    processor.#listenForCancels();
    await processor.#consume();
    logger.info({ consumer: processor.consumerName }, `Processor started, consuming from ${processor.consumerName}`);
    return processor;
  }

  /**
   * Resolves once the runs in progress have finished (ended, suspended or stopped) and every
   * execution index write issued so far is stored (they are written in the background):
   * from then on, listings and stats include them.
   */
  async indexed(): Promise<void> {
    await Promise.allSettled([...this.#running.values()]);
    await this.#index?.settled();
  }

  /** Invocations running now. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Stops pulling commands, lets running invocations reach their next step boundary, and
   * hands back the commands it holds so they are delivered again at once.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopping.signal.aborted) return this.#loop;
    this.#stopping.abort();
    this.#messages?.stop();
    this.#cancelRequests?.unsubscribe();
    for (const msg of this.#queue.drainWaiting()) msg.nak();
    const grace = wait(options.graceMs ?? 10_000, 'timeout' as const);
    const settled = Promise.allSettled([...this.#running.values()]).then(() => 'done' as const);
    if ((await Promise.race([settled, grace])) === 'timeout') {
      this.#logger.warn(`${this.#running.size} invocations did not reach a step boundary in time; they will be redelivered`);
    }
    await this.#loop;
    // Index writes run in the background: let them land before the connection goes.
    await this.#index?.settled();
  }

  /** A cancel or pause request for an invocation running here stops it at its next step boundary. */
  #listenForCancels(): void {
    this.#cancelRequests = this.#options.nc.subscribe(`${this.#names.controlSubject}.*`, {
      callback: (_err, msg) => {
        const id = msg.subject.slice(this.#names.controlSubject.length + 1);
        this.#cancels.get(id)?.abort(msg.string() === 'pause' ? new PausedError() : new CancelledError());
      },
    });
  }

  async #consume(): Promise<void> {
    const consumer = await this.#js.consumers.get(this.#names.commandsStream, this.consumerName);
    const messages = await consumer.consume({ max_messages: this.#options.maxConcurrent ?? 100 });
    this.#messages = messages;
    this.#loop = (async () => {
      for await (const msg of messages) this.#receive(msg);
    })().catch((err: unknown) => {
      if (!this.#stopping.signal.aborted) this.#logger.error({ err }, `Stopped consuming commands: ${errorMessage(err)}`);
    });
  }

  #receive(msg: JsMsg): void {
    let command: Command;
    try {
      command = decodeCommand(msg.data);
    } catch (err) {
      void this.#deadLetter(msg, errorMessage(err));
      return;
    }
    const key = command.partitionKey;
    if (this.#queue.enqueue(key, msg)) this.#start(key, msg, command);
  }

  #start(key: string, msg: JsMsg, command: Command): void {
    const id = command.invocationId;
    const run = this.#run(msg, command)
      .catch((err: unknown) => {
        this.#logger.error({ err, invocation_id: id }, `Run of ${id} failed, retrying in ${RETRY_DELAY_MS / 1000} s: ${errorMessage(err)}`);
        msg.nak(RETRY_DELAY_MS);
      })
      .finally(() => {
        this.#running.delete(msg.info.streamSequence.toString());
        const next = this.#queue.next(key);
        if (next === undefined) return;
        if (this.#stopping.signal.aborted) {
          next.nak();
          for (let more = this.#queue.next(key); more; more = this.#queue.next(key)) more.nak();
          return;
        }
        this.#startDecoded(key, next);
      });
    this.#running.set(msg.info.streamSequence.toString(), run);
  }

  #startDecoded(key: string, msg: JsMsg): void {
    // It decoded when it arrived; decoding again is cheaper than keeping both around.
    this.#start(key, msg, decodeCommand(msg.data));
  }

  async #run(msg: JsMsg, command: Command): Promise<void> {
    this.#logger.info(
      { invocation_id: command.invocationId, handler: command.handler, service: command.service },
      `Processing command: invocation_id=${command.invocationId} handler=${command.handler} service=${command.service}`,
    );
    const heartbeat = setInterval(() => msg.working(), Math.max(1_000, this.#ackWaitMs / 3));
    const cancel = new AbortController();
    this.#cancels.set(command.invocationId, cancel);
    let outcome: ExecutionOutcome;
    try {
      outcome = await this.#executor.execute(command, {
        signal: AbortSignal.any([this.#stopping.signal, cancel.signal]),
        firstDelivery: msg.info.deliveryCount === 1 && command.kind === CommandKind.START,
        startSequence: BigInt(msg.seq),
      });
    } finally {
      clearInterval(heartbeat);
      this.#cancels.delete(command.invocationId);
    }
    switch (outcome.kind) {
      case 'ended':
        msg.ack();
        return;
      case 'already-ended':
        // Its index entry may lag if a processor stopped right after the final write.
        await this.#index?.syncIndex(outcome.state).catch(() => undefined);
        this.#logger.info({ invocation_id: command.invocationId }, `Invocation ${command.invocationId} already ${outcome.state.status}; not run again`);
        msg.ack();
        return;
      case 'suspended':
      case 'paused':
      case 'queued':
        msg.ack();
        return;
      case 'busy':
        // Running from another command: once it suspends or ends, this wake-up finds it so.
        msg.nak(BUSY_RETRY_MS);
        return;
      case 'dropped':
        this.#logger.debug({ invocation_id: command.invocationId }, `Dropped a command for ${command.invocationId}: ${outcome.reason}`);
        msg.ack();
        return;
      case 'duplicate':
        this.#logger.warn(
          { invocation_id: command.invocationId, seq: msg.seq },
          `Dropped a second start command for ${command.invocationId}: the invocation exists (${outcome.state.status})`,
        );
        msg.ack();
        return;
      case 'fenced':
        // Another processor holds the invocation and will acknowledge the command.
        this.#logger.warn({ invocation_id: command.invocationId }, `Abandoned ${command.invocationId}: ${outcome.reason}`);
        return;
      case 'interrupted':
        this.#logger.info({ invocation_id: command.invocationId }, `Stopped ${command.invocationId} at a step boundary: ${outcome.reason}`);
        msg.nak(this.#stopping.signal.aborted ? 0 : RETRY_DELAY_MS);
        return;
    }
  }

  /** Keeps an undecodable command where an operator can see it, then takes it out of the work queue. */
  async #deadLetter(msg: JsMsg, reason: string): Promise<void> {
    const h = headers();
    h.set('Durable-Reason', reason);
    h.set('Durable-Original-Subject', msg.subject);
    h.set('Durable-Original-Sequence', String(msg.seq));
    const tail = msg.subject.split('.').pop() ?? 'unknown';
    try {
      await this.#js.publish(`${this.#names.deadLetterSubject}.${tail}`, msg.data, { headers: h });
      msg.ack();
      this.#logger.warn(
        { reason, subject: msg.subject, seq: msg.seq },
        `Moved undecodable command ${msg.seq} to ${this.#names.deadLetterStream}: ${reason}`,
      );
    } catch (err) {
      this.#logger.error({ err }, `Could not move undecodable command ${msg.seq} aside; it will be delivered again`);
      msg.nak(RETRY_DELAY_MS);
    }
  }
}

/**
 * A command from its bytes, checked.
 * @throws DecodeError saying what is wrong.
 */
export function decodeCommand(bytes: Uint8Array): Command {
  let command: Command;
  try {
    command = fromBinary(CommandSchema, bytes);
  } catch (err) {
    throw new DecodeError(`not a durable.Command (${bytes.length} bytes): ${errorMessage(err)}`, { cause: err });
  }
  if (command.handler === '') throw new DecodeError('command has no handler');
  try {
    checkAnyInvocationId(command.invocationId);
  } catch (err) {
    throw new DecodeError(errorMessage(err), { cause: err });
  }
  return command;
}

function pick<T extends object, K extends keyof T>(source: T, keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}
