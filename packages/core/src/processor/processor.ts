/**
 * The processor: owns some partitions of the command stream and runs their commands
 * through the executor, commands of one partition key in order and up to `maxConcurrent`
 * at once.
 *
 * The work is shared by partition. The command stream maps each key to one of its
 * partitions; each partition has a durable consumer whose owner group pins one client at a
 * time, so one processor receives a partition's commands. Live processors agree on who
 * should own which partition from their heartbeat records (`membership.ts`); a processor
 * that joins takes its share within seconds, one that leaves or dies has its partitions
 * taken over once its record expires and the server unpins it.
 *
 * A command is acknowledged only once its run has finished (ended, suspended, queued or
 * found done); while it runs or waits for its key, the processor tells the server it is
 * still working on it, so a live processor's commands are never redelivered and a crashed
 * processor's come back after the ack wait. A command that cannot be decoded is moved to
 * the dead-letter stream.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { headers } from '@nats-io/nats-core';
import { jetstream, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { setTimeout as wait } from 'node:timers/promises';
import { checkAnyInvocationId, type EngineNames } from '../config.js';
import { CommandKind, CommandSchema, type Command } from '../gen/durable/durable_pb.js';
import { CancelledError, DecodeError, errorMessage, PausedError } from '../errors.js';
import { Executor, type ExecutionOutcome } from '../engine/executor.js';
import { WorkflowRegistry, type AnyWorkflow } from '../engine/workflow.js';
import { BatchWindow } from '../batch-window.js';
import { createLogger, withLogContext, type Logger } from '../logger.js';
import { natsMetricSources } from '../nats/metric-sources.js';
import { EngineMetrics } from '../observability/metrics.js';
import { ProcessorObserver } from '../observability/processor-observer.js';
import { traceIdOf, type TraceHeaders } from '../observability/trace-context.js';
import type { Tracer } from '@opentelemetry/api';
import { NatsJournalStore } from '../nats/journal-store.js';
import { NatsResultNotifier } from '../nats/result-channel.js';
import { DEFAULT_ACK_WAIT_S, MAX_PARTITION_IN_FLIGHT, OWNER_GROUP, partitionConsumer, setupEngine, type EngineResources } from '../nats/setup.js';
import { NatsStateStore } from '../nats/state-store.js';
import { ExecutionIndex, registerWorkflows } from '../nats/execution-index.js';
import { NatsAwakeableStore } from '../nats/awakeable-store.js';
import { FRESH_ID_HEADER, NatsInvocationGateway } from '../nats/invocations.js';
import { NatsKeyedStateStore } from '../nats/keyed-state-store.js';
import { NatsRetention } from '../nats/retention.js';
import { NatsTimerScheduler } from '../nats/timers.js';
import type { ServiceInvoker } from '../services/service-invoker.js';
import { Membership } from './membership.js';
import { PartitionLane, type Disposition, type LaneHandler } from './partition-lane.js';
import { Slots } from './slots.js';

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
  /** Seconds a delivered command may go without word from its processor before it is redelivered. @default 8 */
  ackWaitSeconds?: number;
  /**
   * How long before its due time a sleep's wake-up is fired, ms; the processor holds it
   * until due, without a run slot. @default 250 (the server fires due timers at most every 250 ms)
   */
  timerLeadMs?: number;
  /** Runs an invocation may take without finishing before it fails with the reason. @default 3 */
  maxAttempts?: number;
  /** Replicas of streams and buckets. @default 3 on a cluster, 1 on a single server */
  replicas?: number;
  /** Recorded as the owner of running invocations. @default `<hostname>-<pid>-<random>` */
  processorId?: string;
  /** Partitions of the command stream when this processor creates it. @default 4 (`DEFAULT_PARTITIONS`) */
  partitions?: number;
  /**
   * How long ended invocations are kept before every record of them is removed, ms, for
   * workflows that set no `retention` of their own; 0 keeps them. @default 24 h
   */
  retentionMs?: number;
  /** How long the dead-letter stream keeps a command that could not be decoded, ms; 0 keeps them for good. @default 7 days */
  deadLetterRetentionMs?: number;
  /** Makes a span per invocation run and per executed step (see the README's Traces). @default none: nothing is traced */
  tracer?: Tracer;
}

/** Options of {@link Processor.stop}. */
export interface StopOptions {
  /** How long running invocations get to reach a step boundary, ms. @default 10_000 */
  graceMs?: number;
}

/** Delay before a wake-up for an invocation running from another command is tried again, ms. */
const BUSY_RETRY_MS = 250;

/** Delay before a command whose run hit an infrastructure error is tried again, ms. */
const RETRY_DELAY_MS = 2_000;

/** How long a partition given up to another processor lets its running invocations finish, ms. */
const HANDOVER_GRACE_MS = 10_000;
/**
 * Commands finished within this long of each other are acknowledged together, ms: each
 * acknowledgement removes its command from the stream, a replicated, synced write, which
 * sent at once held up the next command's publish (1 to 2 ms of a one-at-a-time
 * invocation's latency); together they take one. A crash before it delivers them again,
 * and each run finds its invocation where the first left it.
 */
const ACK_BATCH_MS = 50;

/** A running processor. */
export class Processor {
  readonly consumerName: string;
  /** This processor's Prometheus metrics, in a registry of its own (`metrics.scrape()` for `/metrics`). */
  readonly metrics: EngineMetrics;
  readonly #options: ProcessorOptions;
  readonly #resources: EngineResources;
  readonly #names: EngineNames;
  readonly #js: JetStreamClient;
  readonly #executor: Executor;
  readonly #workflows: WorkflowRegistry;
  readonly #logger: Logger;
  readonly #ackWaitMs: number;
  readonly #slots: Slots;
  readonly #lanes = new Map<number, PartitionLane>();
  /** Processors found dead when the partitions were last shared out. */
  #deathsSeen = 0;
  /** Partitions whose lane is being opened. */
  readonly #opening = new Set<number>();
  /** Lanes being given up, until their running invocations have finished. */
  readonly #leaving = new Map<PartitionLane, Promise<void>>();
  readonly #stopping = new AbortController();
  #membership: Membership | undefined;
  #index: ExecutionIndex | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** Per running invocation, aborts its run with a CancelledError. */
  readonly #cancels = new Map<string, AbortController>();
  /** The command each message held by a lane carries, decoded when it arrived. */
  readonly #decoded = new WeakMap<JsMsg, Command>();
  #cancelRequests: Subscription | undefined;
  /** Workflows this processor lacks, each reported once. */
  readonly #missing = new Set<string>();
  /** Commands run here before (a retry keeps its delivery count): not a first delivery any more. */
  readonly #ranBefore = new WeakSet<JsMsg>();
  /** The window in which finished commands are acknowledged together. */
  readonly #acks = new BatchWindow(ACK_BATCH_MS);

  private constructor(options: ProcessorOptions, resources: EngineResources, executor: Executor, workflows: WorkflowRegistry, logger: Logger, metrics: EngineMetrics) {
    this.metrics = metrics;
    this.#options = options;
    this.#resources = resources;
    this.#names = resources.names;
    this.#executor = executor;
    this.#workflows = workflows;
    this.#logger = logger;
    this.#js = jetstream(options.nc);
    this.consumerName = resources.consumerName;
    this.#ackWaitMs = (options.ackWaitSeconds ?? DEFAULT_ACK_WAIT_S) * 1_000;
    this.#slots = new Slots(options.maxConcurrent ?? 100);
    // One listener per running command (see abortWith): many, on purpose.
    setMaxListeners(0, this.#stopping.signal);
  }

  /**
   * Creates the streams, buckets and consumers where missing (and brings those an older
   * version made to this version's settings), joins the processors and starts consuming
   * its share of the partitions.
   *
   * @example
   * const processor = await Processor.start({ nc, workflows: [helloWorkflow], services });
   * process.on('SIGTERM', () => processor.stop());
   */
  static async start(options: ProcessorOptions): Promise<Processor> {
    const logger = options.logger ?? createLogger({ name: 'processor' });
    const resources = await setupEngine(options.nc, {
      logger,
      ...pick(options, ['namespace', 'replicas', 'consumerName', 'ackWaitSeconds', 'maxConcurrent', 'partitions', 'deadLetterRetentionMs']),
    });
    const js = jetstream(options.nc);
    const workflows = options.workflows instanceof WorkflowRegistry ? options.workflows : new WorkflowRegistry(options.workflows);
    const index = new ExecutionIndex(options.nc, resources.names, { logger });
    const states = new NatsStateStore(resources.stateKv, index, () => options.nc.info?.max_payload);
    // Known to the stats from the start, with 0 until their first invocation.
    await registerWorkflows(options.nc, resources.names, workflows.names());
    const processorId = options.processorId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const metrics = new EngineMetrics(natsMetricSources(options.nc, resources));
    const journals = new NatsJournalStore(js, resources.jsm, resources.names, { maxPayload: () => options.nc.info?.max_payload });
    const executor = new Executor({
      workflows,
      states,
      journals,
      services: options.services,
      logger,
      notifier: new NatsResultNotifier(options.nc, resources.names),
      timers: new NatsTimerScheduler(js, resources.names, options.timerLeadMs),
      awakeables: new NatsAwakeableStore(resources.awakeablesKv),
      invocations: new NatsInvocationGateway({ nc: options.nc, js, names: resources.names, states }),
      keyed: new NatsKeyedStateStore({ kv: resources.keyedStateKv, js, jsm: resources.jsm, names: resources.names }),
      processorId,
      retention: new NatsRetention(js, resources.jsm, resources.names, journals, index),
      observer: new ProcessorObserver(metrics, options.tracer),
      ...pick(options, ['maxAttempts', 'retentionMs']),
    });
    const processor = new Processor(options, resources, executor, workflows, logger, metrics);
    processor.#index = index;
    processor.#membership = await Membership.join({
      nc: options.nc,
      kv: resources.processorsKv,
      pings: resources.names.processorsSubject,
      self: processorId,
      workflows: workflows.names(),
      logger,
    });
    processor.#listenForCancels();
    processor.#membership.onChange(() => void processor.#rebalance());
    processor.#heartbeat = setInterval(() => processor.#keepAlive(), Math.max(500, processor.#ackWaitMs / 4));
    await processor.#rebalance();
    logger.info({ consumer: processor.consumerName }, `Processor started, consuming from ${processor.consumerName}`);
    return processor;
  }

  /**
   * Resolves once the runs in progress have finished (ended, suspended or stopped) and every
   * execution index write issued so far is stored (they are written in the background):
   * from then on, listings and stats include them.
   */
  async indexed(): Promise<void> {
    await Promise.allSettled([...this.#lanes.values()].map((lane) => lane.idle()));
    await this.#index?.settled();
  }

  /** Invocations running now. */
  get running(): number {
    let running = 0;
    for (const lane of this.#lanes.values()) running += lane.running;
    return running;
  }

  /** The partitions this processor owns now. */
  get partitions(): number[] {
    return [...this.#lanes.keys()].sort((a, b) => a - b);
  }

  /**
   * Stops pulling commands, lets running invocations reach their next step boundary, and
   * hands back the commands it holds so they are delivered again at once; its partitions
   * go to the other processors.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopping.signal.aborted) return;
    this.#stopping.abort();
    this.#slots.close();
    this.#cancelRequests?.unsubscribe();
    await this.#membership?.leave();
    let late = 0;
    const lanes = [...this.#lanes.values()];
    this.#lanes.clear();
    // Heartbeated until they have stopped: their runs are still this processor's.
    for (const lane of lanes) this.#leaving.set(lane, lane.stop(options.graceMs ?? 10_000, (running) => (late += running)));
    await Promise.all([...this.#leaving.values()]);
    clearInterval(this.#heartbeat);
    if (late > 0) this.#logger.warn(`${late} invocations did not reach a step boundary in time; they will be redelivered`);
    // Index writes run in the background: let them land before the connection goes.
    await this.#index?.settled();
  }

  /**
   * Takes the partitions assigned to this processor and gives up the others. A partition
   * it cannot open now (the cluster is electing a leader) is tried again a second later.
   */
  async #rebalance(): Promise<void> {
    if (this.#stopping.signal.aborted || !this.#membership) return;
    const wanted = this.#membership.assigned(this.#resources.partitions);
    for (const [partition, lane] of this.#lanes) {
      if (wanted.has(partition)) continue;
      this.#lanes.delete(partition);
      this.#leaving.set(lane, lane.stop(HANDOVER_GRACE_MS).finally(() => this.#leaving.delete(lane)));
    }
    let missed = false;
    // Partitions of a processor found dead: its pin would hold them until it times out.
    const deaths = this.#membership.deaths;
    const afterDeath = deaths > this.#deathsSeen;
    this.#deathsSeen = deaths;
    for (const partition of wanted) {
      if (this.#lanes.has(partition) || this.#opening.has(partition)) continue;
      this.#opening.add(partition);
      try {
        // Still ours by then (the view may have changed while opening others).
        if (afterDeath && this.#membership.assigned(this.#resources.partitions).has(partition)) await this.#resources.jsm.consumers.unpin(this.#names.commandsStream, partitionConsumer(this.consumerName, partition), OWNER_GROUP).catch(() => undefined);
        const lane = await this.#lane(partition);
        if (this.#stopping.signal.aborted || !this.#membership.assigned(this.#resources.partitions).has(partition)) void lane.stop(0);
        else this.#lanes.set(partition, lane);
      } catch (err) {
        missed = true;
        this.#logger.warn({ err, partition }, `Could not open partition ${partition}, trying again: ${errorMessage(err)}`);
      } finally {
        this.#opening.delete(partition);
      }
    }
    this.#logger.debug({ partitions: this.partitions }, `Owning partitions ${this.partitions.join(', ')}`);
    if (missed && !this.#stopping.signal.aborted) setTimeout(() => void this.#rebalance(), 1_000).unref();
  }

  async #lane(partition: number): Promise<PartitionLane> {
    const name = partitionConsumer(this.consumerName, partition);
    const lane = new PartitionLane({
      partition,
      stream: this.#names.commandsStream,
      consumerName: name,
      consumer: await this.#js.consumers.get(this.#names.commandsStream, name),
      subjectPrefix: `${this.#names.commandsSubject}.${partition}`,
      jsm: this.#resources.jsm,
      handler: this.#laneHandler,
      logger: this.#logger,
      maxMessages: MAX_PARTITION_IN_FLIGHT,
      retryDelayMs: () => RETRY_DELAY_MS,
      trim: this.#resources.trimCommands,
    });
    await lane.start();
    return lane;
  }

  readonly #laneHandler: LaneHandler = {
    decode: (msg) => {
      try {
        const command = decodeCommand(msg.data);
        this.#decoded.set(msg, command);
        // The key that chose the partition: the stored subject's last token.
        return { key: msg.subject.slice(msg.subject.lastIndexOf('.') + 1), dueAtMs: Number(command.dueAtMs) };
      } catch (err) {
        void this.#deadLetter(msg, errorMessage(err));
        return undefined;
      }
    },
    // Decoded when it arrived (a protobuf message is no larger than its bytes; both go with the message).
    run: (msg, giveUp, storedSince) => this.#run(msg, this.#decoded.get(msg) ?? decodeCommand(msg.data), giveUp, storedSince),
    slot: () => this.#slots.acquire(),
    release: () => this.#slots.release(),
  };

  /** Tells the server every command held here, running or waiting for its key, is still being worked on. */
  #keepAlive(): void {
    // Lanes being given up too: their running invocations are still this processor's.
    for (const lane of [...this.#lanes.values(), ...this.#leaving.keys()]) for (const msg of lane.held()) msg.working();
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

  #run(msg: JsMsg, command: Command, giveUp: AbortSignal, storedSince: boolean): Promise<Disposition> {
    const trace = traceOf(msg);
    const traceId = traceIdOf(trace?.traceparent);
    // Every JSON line about the invocation, the workflow's own included, carries these.
    const fields = { invocation_id: command.invocationId, workflow: command.handler, ...(traceId ? { trace_id: traceId } : {}) };
    return withLogContext(fields, () => this.#runCommand(msg, command, giveUp, trace, storedSince));
  }

  async #runCommand(msg: JsMsg, command: Command, giveUp: AbortSignal, trace: TraceHeaders | undefined, storedSince: boolean): Promise<Disposition> {
    if (command.kind === CommandKind.PURGE) return this.#purge(command);
    if (!this.#workflows.find(command.handler) && this.#membership?.someoneRuns(command.handler)) {
      // A rolling deploy: another processor has this workflow. The command waits, its key
      // with it, until the partition moves to a processor that has it.
      this.#reportMissing(command.handler, 'another processor has it');
      return 'retry';
    }
    this.#logger.info(
      { invocation_id: command.invocationId, handler: command.handler, service: command.service },
      `Processing command: invocation_id=${command.invocationId} handler=${command.handler} service=${command.service}`,
    );
    // Aborted by a cancel or pause request, the partition given up, or the processor stopping.
    const cancel = new AbortController();
    const unlink = abortWith(cancel, [this.#stopping.signal, giveUp]);
    this.#cancels.set(command.invocationId, cancel);
    // A consumer that lost its state (its servers' memory, see setup) counts again from 1:
    // such a "first" delivery of a command run before reads its state (its lane knows it
    // may have been delivered before: not `storedSince`), or, that state not yet written,
    // is fenced by the run's first write, and goes on from there, a step at most done again.
    const neverRun = msg.info.deliveryCount === 1 && !this.#ranBefore.has(msg);
    const firstDelivery = neverRun && command.kind === CommandKind.START;
    this.#ranBefore.add(msg);
    let outcome: ExecutionOutcome;
    try {
      outcome = await this.#executor.execute(command, {
        signal: cancel.signal,
        firstDelivery,
        resumeUnclaimed: neverRun && command.kind === CommandKind.RESUME,
        // Not a command that may have been delivered before the consumer lost its state: an
        // acknowledged one can come back with it (the stream's removal lost with the servers).
        freshId: firstDelivery && storedSince && msg.headers?.get(FRESH_ID_HEADER) === '1',
        startSequence: BigInt(msg.seq),
        delivery: msg.info.deliveryCount,
        ...(trace ? { trace } : {}),
      });
    } catch (err) {
      this.#logger.error({ err, invocation_id: command.invocationId }, `Run of ${command.invocationId} failed, retrying in ${RETRY_DELAY_MS / 1000} s: ${errorMessage(err)}`);
      return 'retry';
    } finally {
      this.#cancels.delete(command.invocationId);
      unlink();
    }
    switch (outcome.kind) {
      case 'ended':
        // Acknowledged once its removal is scheduled: a crash before delivers it again.
        return this.#acknowledged(outcome.removal);
      case 'suspended':
      case 'paused':
      case 'queued':
        return this.#acknowledged();
      case 'already-ended':
        // Its index entry may lag if a processor stopped right after the final write.
        await this.#index?.syncIndex(outcome.state).catch(() => undefined);
        this.#logger.info({ invocation_id: command.invocationId }, `Invocation ${command.invocationId} already ${outcome.state.status}; not run again`);
        return this.#acknowledged();
      case 'busy':
        // Running from another command: once it suspends or ends, this wake-up finds it so.
        await wait(BUSY_RETRY_MS);
        return 'retry';
      case 'purged':
      case 'kept':
        return this.#acknowledged();
      case 'dropped':
        this.#logger.debug({ invocation_id: command.invocationId }, `Dropped a command for ${command.invocationId}: ${outcome.reason}`);
        return this.#acknowledged();
      case 'duplicate':
        this.#logger.warn(
          { invocation_id: command.invocationId, seq: msg.seq },
          `Dropped a second start command for ${command.invocationId}: the invocation exists (${outcome.state.status})`,
        );
        return this.#acknowledged();
      case 'fenced':
        // Another processor holds the invocation and will acknowledge the command.
        this.#logger.warn({ invocation_id: command.invocationId }, `Abandoned ${command.invocationId}: ${outcome.reason}`);
        return 'abandon';
      case 'interrupted':
        this.#logger.info({ invocation_id: command.invocationId }, `Stopped ${command.invocationId} at a step boundary: ${outcome.reason}`);
        // Stopping, or the partition given up: the command goes back at once.
        return this.#stopping.signal.aborted || giveUp.aborted ? 'handback' : 'retry';
      case 'unavailable':
        this.#reportMissing(command.handler, outcome.reason);
        return 'retry';
    }
  }

  /** Removes an ended invocation whose retention has passed (any processor can: it runs no workflow). */
  async #purge(command: Command): Promise<Disposition> {
    try {
      const outcome = await this.#executor.execute(command);
      if (outcome.kind === 'kept' || outcome.kind === 'dropped') {
        this.#logger.debug({ invocation_id: command.invocationId }, `Kept ${command.invocationId}: ${outcome.reason}`);
      }
      return 'ack';
    } catch (err) {
      this.#logger.error({ err, invocation_id: command.invocationId }, `Could not remove ${command.invocationId}, retrying in ${RETRY_DELAY_MS / 1000} s: ${errorMessage(err)}`);
      return 'retry';
    }
  }

  /**
   * A finished command's disposition: acknowledged once `after` is done, with the others
   * finished within the same window (see {@link ACK_BATCH_MS}).
   */
  #acknowledged(after?: Promise<void>): Disposition {
    const window = this.#acks.end();
    return { ackAfter: after ? Promise.all([after, window]).then(() => undefined) : window };
  }

  /** Says once per workflow that its commands wait here for a processor that has it. */
  #reportMissing(handler: string, reason: string): void {
    if (this.#missing.has(handler)) return;
    this.#missing.add(handler);
    this.#logger.warn({ handler }, `Workflow ${handler} is not registered on this processor (${reason}); its commands wait for one that has it`);
  }

  /** Keeps an undecodable command where an operator can see it, then takes it out of the work queue. */
  async #deadLetter(msg: JsMsg, reason: string): Promise<void> {
    const h = headers();
    h.set('Durable-Reason', reason);
    // Stored on `<commands>.<partition>.<key>`, published on `<commands>.<key>`: the latter is what its sender used.
    h.set('Durable-Original-Subject', `${this.#names.commandsSubject}.${msg.subject.split('.').pop() ?? ''}`);
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

/** The W3C trace context a command's headers carry, if any. */
function traceOf(msg: JsMsg): TraceHeaders | undefined {
  const traceparent = msg.headers?.get('traceparent');
  if (!traceparent) return undefined;
  const tracestate = msg.headers?.get('tracestate');
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

function pick<T extends object, K extends keyof T>(source: T, keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

/**
 * Aborts `controller` when one of `signals` aborts, with its reason, as `AbortSignal.any`
 * does without that call's cost per command (weak references the collector must clear).
 * Returns what undoes the link.
 */
function abortWith(controller: AbortController, signals: readonly AbortSignal[]): () => void {
  const unlinks = signals.map((signal) => {
    const abort = (): void => controller.abort(signal.reason);
    if (signal.aborted) abort();
    else signal.addEventListener('abort', abort, { once: true });
    return () => signal.removeEventListener('abort', abort);
  });
  return () => unlinks.forEach((unlink) => unlink());
}
