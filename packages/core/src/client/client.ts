/**
 * The client: submits invocations and learns their outcome. Waiting is push-based: the
 * client listens on the invocation's result subject before it looks at the state, so an
 * outcome written at any moment is seen at once, without polling.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { context, trace as otelTrace } from '@opentelemetry/api';
import { headers as natsHeaders, TimeoutError as NatsTimeoutError } from '@nats-io/nats-core';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { randomBytes, randomUUID } from 'node:crypto';
import { checkAnyInvocationId, checkInvocationId, checkPartitionKey, engineNames, type EngineNames } from '../config.js';
import { CommandSchema, type ExecutionState, type JournalEntry } from '../gen/durable/durable_pb.js';
import {
  AwakeableNotFoundError,
  ConflictError,
  ConnectionError,
  FencedError,
  errorMessage,
  InvalidArgumentError,
  InvocationNotFoundError,
  TerminalError,
  TimeoutError,
  UnavailableError,
} from '../errors.js';
import { awakeableInvocation, ownerState } from '../engine/durable-context.js';
import { holdsWholeJournal, withInline, type AwakeableOutcome, type VersionedState } from '../engine/stores.js';
import { NatsAwakeableStore } from '../nats/awakeable-store.js';
import { decodeJson, encodeJson } from '../engine/codec.js';
import { isTerminal, transition } from '../engine/lifecycle.js';
import { whyKept } from '../engine/retention.js';
import { keyedValues } from '../engine/keyed-state.js';
import { inputCodec, outputCodec, workflowName, type WorkflowRef } from '../engine/workflow.js';
import { cancelInvocation, FRESH_ID_HEADER, sendResume, type AfterWrite, type ClusterHandles } from '../nats/invocations.js';
import { isTransient, withRetry, type RetryOptions } from '../nats/retry.js';
import { NatsKeyedRecordStore } from '../nats/keyed-state-store.js';
import { NatsJournalStore } from '../nats/journal-store.js';
import { NatsRetention } from '../nats/retention.js';
import { replySubjects, resultSubject } from '../nats/result-channel.js';
import { decodeState, NatsStateStore } from '../nats/state-store.js';
import { traceHeaders, type TraceHeaders } from '../observability/trace-context.js';
import { ExecutionIndex } from '../nats/execution-index.js';
import { journalPage, type JournalPage, type JournalPageOptions } from './journal-page.js';
import { WorkflowQueries, type ListWorkflowsOptions, type ReindexResult, type WorkflowPage, type WorkflowStats, type WorkflowStatsOptions } from './query.js';

/** Options of {@link DurableClient.connect}. */
export interface ClientOptions {
  /** A connection to the cluster; the client does not close it. */
  nc: NatsConnection;
  /** Prefixes every JetStream name, see `engineNames`. @default '' */
  namespace?: string;
  /**
   * How long a submission or state change is retried while the cluster elects a leader,
   * ms; past it the call throws an UnavailableError. @default 10_000
   */
  retryDeadlineMs?: number;
  /**
   * For tests: called after an operation's write and before what follows it (the wake-up or
   * signal); throwing here plays a client that died in between. A retry completes it.
   */
  afterWrite?: AfterWrite;
}

/** Options of {@link DurableClient.submit}. */
export interface SubmitOptions {
  /** The invocation's ID; submitting the same ID again runs it once. @default a random UUID */
  invocationId?: string;
  /** Invocations of one key start in submission order. @default 'default' */
  partitionKey?: string;
  /** The service recorded on the command, shown in the processor's log. @default the workflow's, else '' */
  service?: string;
  /** The failed invocation this one retries; recorded in its state. */
  retryOf?: string;
  /**
   * W3C trace context (`traceparent`, `tracestate`) carried in the command's headers: the
   * processor's span of the run continues this trace. @default the active OpenTelemetry span's, if any
   */
  trace?: TraceHeaders;
}

/** Room left in a command's message for its headers (the message ID). */
const COMMAND_HEADER_ROOM = 256;

/** Options of {@link DurableClient.waitForResult}. */
export interface WaitOptions {
  /** How long to wait, ms. @default 30_000 */
  timeoutMs?: number;
}

/** A wait for an invocation's outcome: its subscription to the announcement, and its deadline. */
interface ResultListener {
  /** The outcome announced, or undefined once the deadline has passed. */
  announced: Promise<ExecutionState | undefined>;
  /** Stops listening. */
  stop(): void;
  timeoutMs: number;
  deadline: number;
}

/** The one subscription on which a client hears the outcomes of the invocations it submitted and waits for. */
interface Replies {
  prefix: string;
  waiting: Map<string, (state: ExecutionState | undefined) => void>;
}

/** The outcome once announced, or 'look' when `ms` have passed first. */
function announcedWithin(announced: Promise<ExecutionState | undefined>, ms: number): Promise<ExecutionState | undefined | 'look'> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve('look'), ms);
    announced.then(
      (state) => {
        clearTimeout(timer);
        resolve(state);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The invocation ID a submission goes under, and whether this client made it just now. */
interface SubmittedId {
  invocationId: string;
  fresh: boolean;
}

/** The caller's invocation ID, checked, or a random UUID made here (fresh). */
function idOf(options: SubmitOptions): SubmittedId {
  return options.invocationId === undefined ? { invocationId: randomUUID(), fresh: true } : { invocationId: checkInvocationId(options.invocationId), fresh: false };
}

/** What {@link DurableClient.submit} did. */
export interface Submission {
  invocationId: string;
  handler: string;
  partitionKey: string;
  /** True when a command with this ID was already in the stream: nothing new was queued. */
  duplicate: boolean;
}


/** Submits invocations and reads their state. */
export class DurableClient {
  readonly names: EngineNames;
  /** The reply subscription of {@link DurableClient.submitAndWait}, made at its first use. */
  #replies: Replies | undefined;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #kv: KV;
  readonly #states: NatsStateStore;
  readonly #journals: NatsJournalStore;
  readonly #awakeables: NatsAwakeableStore;

  readonly #keyed: NatsKeyedRecordStore;
  readonly #retention: NatsRetention;
  readonly #cluster: ClusterHandles;
  readonly #retry: RetryOptions;

  private constructor(options: ClientOptions, names: EngineNames, kv: { direct: KV; leader: KV }, jsm: JetStreamManager, journals: NatsJournalStore, awakeables: KV, keyed: KV) {
    const { nc } = options;
    this.#nc = nc;
    this.names = names;
    this.#js = jetstream(nc);
    this.#jsm = jsm;
    this.#kv = kv.direct;
    // A client may exit right after a cancel or pause: its index writes are awaited.
    this.#states = new NatsStateStore(kv.direct, new ExecutionIndex(nc, names, { background: false }), undefined, kv.leader);
    this.#journals = journals;
    this.#awakeables = new NatsAwakeableStore(awakeables);
    this.#keyed = new NatsKeyedRecordStore(keyed);
    this.#retention = new NatsRetention(this.#js, jsm, names, journals);
    this.#retry = options.retryDeadlineMs === undefined ? {} : { deadlineMs: options.retryDeadlineMs };
    this.#cluster = { nc, js: this.#js, names, states: this.#states, retry: this.#retry, ...(options.afterWrite ? { afterWrite: options.afterWrite } : {}) };
  }

  /**
   * A client on an open connection. The processor creates the streams and bucket; the
   * client only uses them.
   */
  static async connect(options: ClientOptions): Promise<DurableClient> {
    const names = engineNames(options.namespace);
    // Direct gets, and the leader for a second look when they find no state (see NatsStateStore).
    const kv = { direct: await new Kvm(options.nc).open(names.stateBucket, { allow_direct: true }), leader: await new Kvm(options.nc).open(names.stateBucket, { allow_direct: false }) };
    const jsm = await jetstreamManager(options.nc);
    const journals = new NatsJournalStore(jetstream(options.nc), jsm, names);
    const awakeables = await new Kvm(options.nc).open(names.awakeablesBucket, { allow_direct: true });
    // From the stream's leader: whoever has seen an invocation end reads its keyed changes,
    // which a replica a little behind could still lack.
    const keyed = await new Kvm(options.nc).open(names.keyedStateBucket, { allow_direct: false });
    return new DurableClient(options, names, kv, jsm, journals, awakeables, keyed);
  }

  /**
   * Queues an invocation of a workflow and returns without waiting for it. Rides out a
   * leader election: the command is published again under the same message ID until the
   * stream takes it (de-duplicated, so it is queued once).
   * @throws UnavailableError when the stream did not take it within the retry deadline.
   *
   * @example
   * const { invocationId } = await client.submit('hello_workflow', { name: 'World' }, { partitionKey: 'user-123' });
   */
  async submit<In, Out>(workflow: WorkflowRef<In, Out>, input: In, options: SubmitOptions = {}): Promise<Submission> {
    return this.#submit(workflow, input, options, idOf(options));
  }

  /** Submits under `id`; `replySubject` where the outcome is to be announced to this client. */
  async #submit<In, Out>(workflow: WorkflowRef<In, Out>, input: In, options: SubmitOptions, { invocationId, fresh }: SubmittedId, replySubject = ''): Promise<Submission> {
    const handler = workflowName(workflow);
    const partitionKey = checkPartitionKey(options.partitionKey ?? 'default');
    const service = options.service ?? (typeof workflow === 'string' ? '' : (workflow.options.service ?? ''));
    const command = create(CommandSchema, {
      invocationId,
      handler,
      service,
      args: inputCodec(workflow).encode(input),
      partitionKey,
      submittedAtMs: BigInt(Date.now()),
      retryOf: options.retryOf ?? '',
      replySubject,
    });
    const subject = `${this.names.commandsSubject}.${partitionKey}`;
    const bytes = toBinary(CommandSchema, command);
    // Taken before the first await: the active context is the caller's here.
    const carried = options.trace ?? traceHeaders(otelTrace.getSpanContext(context.active()));
    const h = carried || fresh ? natsHeaders() : undefined;
    if (carried) for (const [key, value] of Object.entries(carried)) h!.set(key, value);
    if (fresh) h!.set(FRESH_ID_HEADER, '1');
    // Refused here with the reason, not by the client's publish as if the cluster were away.
    const limit = (this.#nc.info?.max_payload ?? Infinity) - COMMAND_HEADER_ROOM;
    if (bytes.length > limit) throw new InvalidArgumentError('input', `the command is ${bytes.length} bytes, over the NATS server's max_payload (${limit} bytes with its headers)`);
    const where = `submit to ${this.names.commandsStream} (no answer: a leader election, or no processor has created the stream yet)`;
    try {
      const ack = await withRetry(where, () => this.#js.publish(subject, bytes, { msgID: invocationId, ...(h ? { headers: h } : {}) }), this.#retry);
      return { invocationId, handler, partitionKey, duplicate: ack.duplicate };
    } catch (err) {
      if (err instanceof UnavailableError) throw err;
      throw new ConnectionError(`could not ${where}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /**
   * Waits until the invocation has ended and returns its final state.
   * @throws TimeoutError when it has not ended in time.
   */
  async waitForResult(invocationId: string, options: WaitOptions = {}): Promise<ExecutionState> {
    return this.#awaitResult(invocationId, this.#listen(invocationId, options), true);
  }

  /** Listens for the announcement of an invocation's outcome, until the wait's deadline. */
  #listen(invocationId: string, options: WaitOptions): ResultListener {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const sub = this.#nc.subscribe(resultSubject(this.names, invocationId), { max: 1, timeout: timeoutMs });
    const announced = (async () => {
      for await (const msg of sub) return decodeState(msg.data, invocationId);
      return undefined;
    })().catch((err: unknown) => {
      if (err instanceof NatsTimeoutError) return undefined;
      throw err;
    });
    return { announced, stop: () => sub.unsubscribe(), timeoutMs, deadline: Date.now() + timeoutMs };
  }

  /**
   * Listens for the outcome of an invocation this client is about to submit, on the
   * client's one reply subscription (made at its first use), and names the subject the
   * command is to carry.
   */
  #listenForReply(invocationId: string, options: WaitOptions): ResultListener & { subject: string } {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const replies = (this.#replies ??= this.#replySubscription());
    // Settles when announced; the wait ends at its deadline without it.
    const announced = new Promise<ExecutionState | undefined>((resolve) => replies.waiting.set(invocationId, resolve));
    const stop = () => void replies.waiting.delete(invocationId);
    return { subject: `${replies.prefix}.${invocationId}`, announced, stop, timeoutMs, deadline: Date.now() + timeoutMs };
  }

  #replySubscription(): Replies {
    const { prefix, wildcard } = replySubjects(this.names, randomBytes(9).toString('base64url'));
    const replies: Replies = { prefix, waiting: new Map() };
    this.#nc.subscribe(wildcard, {
      callback: (err, msg) => {
        if (err) return;
        const invocationId = msg.subject.slice(prefix.length + 1);
        const resolve = replies.waiting.get(invocationId);
        if (!resolve) return;
        replies.waiting.delete(invocationId);
        try {
          resolve(decodeState(msg.data, invocationId));
        } catch {
          // Not a state: the wait's looks find the outcome.
        }
      },
    });
    return replies;
  }

  /**
   * The outcome announced to `listener`, or found by a look now and then. `lookFirst` is
   * false only for an invocation submitted after the listener was made: its outcome can
   * only be announced after that, so an immediate look would find nothing.
   */
  async #awaitResult(invocationId: string, listener: ResultListener, lookFirst: boolean): Promise<ExecutionState> {
    const { announced, timeoutMs, deadline } = listener;
    try {
      // Listening before looking: an outcome written after the look is announced to us.
      const current = lookFirst ? await this.#lookSoft(invocationId) : null;
      if (current && isTerminal(current.state.status)) return current.state;
      // An announcement published before our interest reached the processor's server is
      // lost; a look now and then (1 s, 2 s, 4 s, then every 5 s) finds that outcome anyway.
      for (let pause = 1_000; Date.now() < deadline; pause = Math.min(pause * 2, 5_000)) {
        const woke = await announcedWithin(announced, Math.min(pause, Math.max(0, deadline - Date.now())));
        if (woke === undefined) break;
        if (woke !== 'look') return woke;
        const look = await this.#lookSoft(invocationId);
        if (look && isTerminal(look.state.status)) return look.state;
      }
    } finally {
      listener.stop();
    }
    const last = await this.#lookSoft(invocationId);
    if (last && isTerminal(last.state.status)) return last.state;
    const status = last === undefined ? 'unknown: the state bucket did not answer' : (last?.state.status ?? 'not started');
    throw new TimeoutError(`invocation ${invocationId} did not end within ${timeoutMs} ms (status: ${status})`);
  }

  /**
   * The state, or null also while the bucket does not answer: a client may start before
   * the first processor has created it, or the bucket may be electing a leader, and the
   * announcement still reaches us (or a later look finds the end).
   */
  async #lookSoft(invocationId: string): Promise<VersionedState | null | undefined> {
    try {
      return await this.#states.get(invocationId);
    } catch (err) {
      // Not created yet, or between leaders (an election): no look this time (undefined).
      if (isTransient(err)) return undefined;
      throw err;
    }
  }

  /**
   * Submits an invocation and waits until it has ended: {@link submit} then
   * {@link waitForResult}, one round trip less. `onSubmitted` is called once the stream has
   * taken the command.
   * @throws TimeoutError when it has not ended in time.
   */
  async submitAndWait<In, Out>(
    workflow: WorkflowRef<In, Out>,
    input: In,
    options: SubmitOptions & WaitOptions & { onSubmitted?: (submission: Submission) => void } = {},
  ): Promise<Submission & { state: ExecutionState }> {
    const id = idOf(options);
    const { invocationId, fresh } = id;
    // Listening before submitting: the outcome of an ID made just now can only be announced
    // after that, so it needs no look first. It is announced to this client's one reply
    // subscription; that of an ID given, which others may submit too, on its own subject.
    const reply = fresh ? this.#listenForReply(invocationId, options) : undefined;
    const listener = reply ?? this.#listen(invocationId, options);
    let submission: Submission;
    try {
      submission = await this.#submit(workflow, input, options, id, reply?.subject);
    } catch (err) {
      listener.stop();
      throw err;
    }
    options.onSubmitted?.(submission);
    return { ...submission, state: await this.#awaitResult(invocationId, listener, !fresh || submission.duplicate) };
  }

  /**
   * Runs a workflow and returns its output.
   * @throws TerminalError with the reason when the invocation failed or was cancelled.
   *
   * @example
   * const message = await client.invoke(helloWorkflow, { name: 'World' });
   */
  async invoke<In, Out>(workflow: WorkflowRef<In, Out>, input: In, options: SubmitOptions & WaitOptions = {}): Promise<Out> {
    const { state, invocationId } = await this.submitAndWait(workflow, input, options);
    if (state.status !== 'completed') throw new TerminalError(`invocation ${invocationId} ${state.status}: ${state.error}`);
    return outputCodec(workflow).decode(state.currentState, 'workflow output');
  }

  /**
   * Resolves an awakeable with a value; the invocation waiting on it continues. Safe to
   * retry: resolving it again with the same value sends the wake-up again and succeeds.
   * @throws AwakeableNotFoundError for an unknown ID.
   * @throws ConflictError when it was resolved with another value, or rejected (the first outcome stands).
   */
  async resolveAwakeable(awakeableId: string, value: unknown): Promise<void> {
    await this.#settle('resolve', awakeableId, { ok: true, value: encodeJson(value) });
  }

  /**
   * Rejects an awakeable: the workflow's await throws a TerminalError with the reason. Safe
   * to retry with the same reason.
   * @throws AwakeableNotFoundError for an unknown ID.
   * @throws ConflictError when it was resolved, or rejected with another reason.
   */
  async rejectAwakeable(awakeableId: string, reason: string): Promise<void> {
    await this.#settle('reject', awakeableId, { ok: false, error: reason || 'rejected' });
  }

  async #settle(operation: 'resolve' | 'reject', awakeableId: string, outcome: AwakeableOutcome): Promise<void> {
    const owner = awakeableInvocation(awakeableId);
    if (owner === undefined) throw new AwakeableNotFoundError(awakeableId);
    // The workflow hands the ID out as soon as it makes the awakeable, possibly before its
    // record is written: a live invocation's awakeable is settled even then, never lost.
    const live = async (owner: string): Promise<boolean> => {
      const state = await ownerState(owner, (id) => this.getState(id));
      return state !== null && !isTerminal(state.status);
    };
    // Settling again with the same outcome succeeds, so a settle retried after it took effect does.
    const invocationId = await withRetry(`${operation} ${awakeableId}`, () => this.#awakeables.settle(awakeableId, outcome, live), this.#retry);
    await this.#cluster.afterWrite?.(operation, awakeableId);
    const state = await withRetry(`${operation} ${awakeableId}`, () => ownerState(invocationId, (id) => this.getState(id)), this.#retry);
    if (!state || isTerminal(state.status)) return;
    await sendResume(this.#cluster, state, `${awakeableId}:settled`);
  }

  /**
   * Cancels an invocation. A suspended or paused one ends `cancelled` at once; a running one
   * stops at its next step boundary (its state is marked first, so even a processor that
   * crashes meanwhile ends it cancelled on its next run). Safe to retry: cancelling a
   * cancelled invocation sends what follows the cancel again, and succeeds.
   * @throws InvocationNotFoundError for an unknown ID.
   * @throws ConflictError when it has completed or failed.
   */
  async cancel(invocationId: string): Promise<void> {
    await cancelInvocation(this.#cluster, invocationId);
  }

  /**
   * Retries a failed or cancelled invocation: the same workflow and input under a new
   * invocation ID, whose state links to the old one (`retry_of`). Returns the new submission.
   * @throws InvocationNotFoundError, ConflictError (it has not failed)
   */
  async retry(invocationId: string, options: Pick<SubmitOptions, 'invocationId'> = {}): Promise<Submission> {
    const state = await this.getState(invocationId);
    if (!state) throw new InvocationNotFoundError(invocationId);
    if (state.status !== 'failed' && state.status !== 'cancelled') {
      throw new ConflictError(`invocation ${invocationId} is ${state.status}; only failed or cancelled ones are retried`);
    }
    return this.submit(state.handler, decodeJson(state.input, 'workflow input'), {
      ...options,
      partitionKey: state.partitionKey,
      service: state.service,
      retryOf: invocationId,
    });
  }

  /**
   * Pauses an invocation: a running one stops at its next step boundary, a suspended one
   * stays put even when its timer fires. A paused invocation holds no consumer slot. Safe to
   * retry: pausing a paused invocation (or one marked to pause) succeeds.
   * @throws InvocationNotFoundError, ConflictError (already ended)
   */
  async pause(invocationId: string): Promise<void> {
    const paused = await this.#change(invocationId, (state) => {
      if (state.status === 'paused' || (state.status === 'running' && state.pauseRequested)) return null;
      if (state.status === 'running') return { ...state, pauseRequested: true };
      return { ...state, status: transition(state.status, 'paused') };
    });
    await this.#cluster.afterWrite?.('pause', invocationId);
    if (paused.status === 'running') this.#nc.publish(`${this.names.controlSubject}.${invocationId}`, 'pause');
  }

  /**
   * Resumes a paused invocation: the same invocation ID continues from its journal. Safe to
   * retry: resuming one that is no longer paused succeeds, and one found suspended is woken
   * again (under the same message ID as the first wake-up, so it is queued once).
   * @throws InvocationNotFoundError, ConflictError (already ended)
   */
  async resume(invocationId: string): Promise<void> {
    const resumed = await this.#change(invocationId, (state) => {
      if (state.status === 'running' && state.pauseRequested) return { ...state, pauseRequested: false };
      if (state.status !== 'paused') return null;
      return { ...state, status: transition(state.status, 'suspended') };
    });
    await this.#cluster.afterWrite?.('resume', invocationId);
    if (resumed.status !== 'suspended') return;
    await sendResume(this.#cluster, resumed, `${invocationId}:resume:${resumed.updatedAtMs}`);
  }

  /**
   * Changes a state by compare-and-set, looking again when it changed under us. `change`
   * returns the new state, or null when the state is as asked already (a retry). Returns
   * the state as it now stands, for what follows the change.
   */
  async #change(invocationId: string, change: (state: ExecutionState) => ExecutionState | null): Promise<ExecutionState> {
    for (;;) {
      const found = await withRetry(`change ${invocationId}`, () => this.#states.get(invocationId), this.#retry);
      if (!found) throw new InvocationNotFoundError(invocationId);
      if (isTerminal(found.state.status)) throw new ConflictError(`invocation ${invocationId} is already ${found.state.status}`);
      const next = change(found.state);
      if (!next) return found.state;
      next.updatedAtMs = BigInt(Date.now());
      try {
        // A write retried after it took effect fails its compare-and-set: the loop looks again.
        await withRetry(`change ${invocationId}`, () => this.#states.update(next, found.revision, found.state), this.#retry);
      } catch (err) {
        if (err instanceof FencedError) continue;
        throw err;
      }
      return next;
    }
  }

  /**
   * The shared state of a partition key, as left by the invocations of exclusive workflows
   * that have ended on it (JSON values by key).
   */
  async getKeyedState(partitionKey: string): Promise<Record<string, unknown>> {
    const values = keyedValues((await this.#keyed.read(checkPartitionKey(partitionKey))).record);
    return Object.fromEntries([...values].map(([key, bytes]) => [key, decodeJson(bytes, `keyed state ${key}`)]));
  }

  /**
   * Removes an ended invocation now, with every record of it (state, journal, index entry,
   * timers, awakeables), as its retention would later.
   * @throws InvocationNotFoundError for an unknown ID.
   * @throws ConflictError when it has not ended, or its parent runs and may still read its outcome.
   */
  async purge(invocationId: string): Promise<void> {
    const state = await this.getState(checkAnyInvocationId(invocationId));
    if (!state) throw new InvocationNotFoundError(invocationId);
    const kept = await whyKept(state, this.#states);
    if (kept) throw new ConflictError(`invocation ${invocationId} is kept: ${kept}`);
    await withRetry(`purge ${invocationId}`, () => this.#retention.purge(state), this.#retry);
  }

  /** The state of an invocation, or null. */
  async getState(invocationId: string): Promise<ExecutionState | null> {
    return (await this.#states.get(invocationId))?.state ?? null;
  }

  /**
   * The whole journal of an invocation: a completed run's final state when it holds all of
   * it, else the state's copy taken with the journal stream (also while it runs, and past
   * the part copied into the final state).
   * @throws InvocationNotFoundError when it has no state.
   */
  async getJournal(invocationId: string): Promise<JournalEntry[]> {
    const { entries } = await this.#wholeJournal(invocationId);
    return [...entries].sort((a, b) => a.stepNumber - b.stepNumber);
  }

  /**
   * A page of an invocation's journal, by step: also while it runs or is suspended. Pass a
   * page's `nextAfterStep` as `afterStep` for the next one, and its `lastSequence` to
   * {@link followJournal} for the entries written after it.
   * @throws InvocationNotFoundError when it has no state.
   * @throws InvalidArgumentError naming `after` or `limit`.
   *
   * @example
   * const { entries, nextAfterStep } = await client.getJournalPage(id, { limit: 500 });
   */
  async getJournalPage(invocationId: string, options: JournalPageOptions = {}): Promise<JournalPage> {
    journalPage([], options); // the options are checked before anything is read
    const { entries, lastSeq } = await this.#wholeJournal(invocationId);
    return { ...journalPage(entries, options), lastSequence: lastSeq };
  }

  /**
   * Calls `onEntry` with each entry of an invocation's journal after stream sequence
   * `afterSequence` (a page's `lastSequence`; 0 for all), as it is appended, until the signal aborts.
   */
  async followJournal(invocationId: string, afterSequence: number, onEntry: (entry: JournalEntry, sequence: number) => void, signal: AbortSignal): Promise<void> {
    await this.#journals.follow(checkAnyInvocationId(invocationId), afterSequence, onEntry, signal);
  }

  /** The whole journal, from a completed run's final state when it holds it all, else from the state's copy and the journal stream. */
  async #wholeJournal(invocationId: string): Promise<{ entries: readonly JournalEntry[]; lastSeq: number }> {
    const state = await this.getState(invocationId);
    if (!state) throw new InvocationNotFoundError(invocationId);
    // A completed run's final state holds the whole journal when it fits: the record of its run.
    if (holdsWholeJournal(state)) return { entries: state.journal, lastSeq: 0 };
    // Any other state's copy is taken with the stream: it may hold outcomes no stream has yet
    // (a suspension's, held alone), or lag it.
    const streamed = await this.#journals.read(invocationId, this.#retry);
    return { entries: withInline(state.journal, streamed.entries).entries, lastSeq: streamed.lastSeq };
  }

  /** Calls `onState` with the state of one invocation each time it is written, from its current one, until the signal aborts. */
  async watchInvocation(invocationId: string, onState: (state: ExecutionState) => void, signal: AbortSignal): Promise<void> {
    const watcher = await this.#kv.watch({ key: checkAnyInvocationId(invocationId) });
    const stop = (): void => watcher.stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      if (signal.aborted) return;
      for await (const entry of watcher) {
        if (entry.operation === 'PUT' && entry.value.length > 0) onState(decodeState(entry.value, invocationId));
      }
    } finally {
      signal.removeEventListener('abort', stop);
      watcher.stop();
    }
  }

  /**
   * Waits until the invocation's state has one of the statuses; returns that state.
   * Push-based: watches the invocation's key, starting from its current value.
   * @throws TimeoutError when it does not get there in time.
   */
  async waitForStatus(invocationId: string, statuses: string | readonly string[], options: WaitOptions = {}): Promise<ExecutionState> {
    const wanted = typeof statuses === 'string' ? [statuses] : statuses;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const watcher = await this.#kv.watch({ key: invocationId });
    const timer = setTimeout(() => watcher.stop(), timeoutMs);
    try {
      for await (const entry of watcher) {
        if (entry.operation !== 'PUT' || entry.value.length === 0) continue;
        const state = decodeState(entry.value, invocationId);
        if (wanted.includes(state.status)) return state;
      }
    } finally {
      clearTimeout(timer);
      watcher.stop();
    }
    throw new TimeoutError(`invocation ${invocationId} did not become ${wanted.join(' or ')} within ${timeoutMs} ms`);
  }

  /**
   * Calls `onState` with every state written from now on, until the signal aborts; with
   * `sinceMs`, first with those written in the last `sinceMs` ms (a list read just after
   * `onFollowing` may miss those written shortly before: the index follows the states a
   * moment later). `onFollowing` is called once every later write is sure to be seen.
   */
  async watch(onState: (state: ExecutionState) => void, signal: AbortSignal, options: { sinceMs?: number; onFollowing?: () => void } = {}): Promise<void> {
    const { sinceMs = 0, onFollowing } = options;
    const bucket = this.names.stateBucket;
    const stream = `KV_${bucket}`;
    const prefix = `$KV.${bucket}.`;
    // From a sequence, not a time or "new": the consumer, made again after a reconnect
    // before it delivered anything, starts there rather than at the stream's first record.
    const consumer = await this.#js.consumers.get(stream, {
      filter_subjects: [`${prefix}>`],
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: await this.#firstSequenceSince(stream, sinceMs),
    });
    const messages = await consumer.consume();
    const stop = (): void => void messages.stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      if (signal.aborted) return;
      onFollowing?.();
      for await (const msg of messages) {
        // A delete or purge carries its operation in a header and no state.
        if (msg.data.length > 0 && !msg.headers?.has('KV-Operation')) onState(decodeState(msg.data, msg.subject.slice(prefix.length)));
      }
    } finally {
      signal.removeEventListener('abort', stop);
      void messages.stop();
      // Not left on the state stream until its inactivity limit (5 min).
      void consumer.delete().catch(() => undefined);
    }
  }

  /** The stream sequence of the first record stored in the last `sinceMs` ms, or the next one to be stored. */
  async #firstSequenceSince(stream: string, sinceMs: number): Promise<number> {
    if (sinceMs > 0) {
      // A direct get may answer from a replica a moment behind, with nothing that recent
      // yet: then the feed starts at the next record, and the list read on `onFollowing`
      // covers what is already indexed.
      const first = await this.#jsm.direct.getMessage(stream, { start_time: new Date(Date.now() - sinceMs) }).catch(() => null);
      if (first) return first.seq;
    }
    return (await this.#jsm.streams.info(stream)).state.last_seq + 1;
  }

  #queries: WorkflowQueries | undefined;

  #query(): WorkflowQueries {
    this.#queries ??= new WorkflowQueries({ nc: this.#nc, names: this.names, stateKv: this.#kv });
    return this.#queries;
  }

  /**
   * A page of invocations from the execution index, by status and workflow; never a scan.
   * @throws InvalidArgumentError naming `status`, `limit` or `cursor`.
   *
   * @example
   * const { invocations, nextCursor } = await client.listWorkflows({ status: 'failed', limit: 100 });
   */
  async listWorkflows(options: ListWorkflowsOptions = {}): Promise<WorkflowPage> {
    return this.#query().list(options);
  }

  /**
   * Invocation counts by status and workflow, counted by the server.
   *
   * @example
   * const { total, byStatus } = await client.getWorkflowStats({ handler: 'hello_workflow' });
   */
  async getWorkflowStats(options: WorkflowStatsOptions = {}): Promise<WorkflowStats> {
    return this.#query().stats(options);
  }

  /** Rebuilds the execution index from the state bucket (reads every state: an operator's tool). */
  async reindex(): Promise<ReindexResult> {
    return this.#query().reindex();
  }
}
