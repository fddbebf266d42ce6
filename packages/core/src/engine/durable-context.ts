/**
 * The replay engine: the implementation of {@link Context}.
 *
 * Every context operation takes the next step number when it is called, synchronously,
 * so a deterministic workflow asks for the same steps in the same order on every run. A
 * step whose number is in the journal is answered from it (after checking the workflow
 * asked for the same kind of step); any other step runs for real and its outcome is
 * appended to the journal before the workflow sees it. Appends are fenced: a processor
 * that lost the invocation learns it on its next append and stops.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { randomUUID } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import { checkPartitionKey, derivedInvocationId } from '../config.js';
import { CommandSchema, EntryPhase, JournalEntrySchema, ParentRefSchema, type JournalEntry } from '../gen/durable/durable_pb.js';
import {
  AttemptsExhaustedError,
  AwakeableNotFoundError,
  CancelledError,
  ConflictError,
  errorMessage,
  FencedError,
  InterruptedError,
  InvalidArgumentError,
  JournalEntryTooLargeError,
  NonDeterminismError,
  PausedError,
  ServiceCallError,
  TerminalError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { ServiceInvoker } from '../services/service-invoker.js';
import { decodeJson, encodeJson } from './codec.js';
import type { Awakeable, CallStepOptions, Context, InvokeOptions, RunStepOptions, SendOptions } from './context.js';
import { isTerminal } from './lifecycle.js';
import { NO_RUN_OBSERVER, secondsSince, stepKind, type RunObserver, type StepTrace } from './observer.js';
import { backoffMs, mergeRetryPolicy, type RetryPolicy } from './retry-policy.js';
import { entryBytesAtMost, sameOutcome, type AwakeableOutcome, type AwakeableStore, type InvocationGateway, type JournalLog, type StateStore, type TimerScheduler } from './stores.js';
import { inputCodec, outputCodec, workflowName, type WorkflowRef } from './workflow.js';

/** What a {@link DurableContext} needs. */
export interface DurableContextOptions {
  invocationId: string;
  handler: string;
  partitionKey: string;
  journal: JournalLog;
  services: ServiceInvoker;
  /** The processor's logger: replayed steps are reported here. */
  logger: Logger;
  /** The workflow's default retry policy. */
  retry?: Partial<RetryPolicy>;
  /** Aborted when the processor stops: no new step starts after that. */
  signal?: AbortSignal;
  /** Where awakeables are kept; without it, `awakeable()` fails. */
  awakeables?: AwakeableStore;
  /** Durable timers; without them every sleep waits in memory. */
  timers?: TimerScheduler;
  /** Sleeps due within this many ms wait in memory instead of suspending. @default 1_000 */
  inMemorySleepMs?: number;
  /** Starts, wakes and cancels other invocations; without it, `send` and `invoke` fail. */
  invocations?: InvocationGateway;
  /** Where child invocations' outcomes are read; needed by `invoke`. */
  states?: StateStore;
  /**
   * The partition key's shared state, for a workflow declared exclusive: `get/set/clear`
   * start from it and the changes are collected for the executor to apply at the end.
   */
  keyedState?: ReadonlyMap<string, Uint8Array>;
  /** Told of every step, call and append of this run. @default nothing */
  observer?: RunObserver;
  /**
   * Writes the invocation's state now, for a run that started without writing it (see the
   * executor's first deliveries); resolves once it is written. Called before the invocation
   * can be seen by others (an awakeable made, a send, a child started) and before the run's
   * first journal append: a run of the same invocation whose state exists (another start
   * of its ID, or a suspension that holds its journal alone) must not append beside it.
   * @default nothing to write
   */
  writeState?: () => Promise<void>;
  /**
   * With `writeState`: the state is also written before the run's first side effect (a run
   * that resumed a suspended invocation without claiming it: nothing it does beyond its
   * state goes unfenced by that claim). @default false
   */
  claimBeforeEffects?: boolean;
}

/** The outcome of a live step, before it is journaled. */
type StepOutcome = { ok: true; value: unknown } | { ok: false; error: TerminalError };

/** A step attempt that failed in a way worth retrying. */
type AttemptFailure = { retry: true; error: unknown } | { retry: false; error: TerminalError };

/** The context of one run of one invocation. */
export class DurableContext implements Context {
  readonly invocationId: string;
  readonly handler: string;
  readonly partitionKey: string;
  readonly log: Logger;

  readonly #options: DurableContextOptions;
  readonly #observer: RunObserver;
  /** Journaled entries by step number. */
  readonly #journaled = new Map<number, JournalEntry>();
  /** Every entry of the journal, loaded and new, in the order written. */
  readonly #entries: JournalEntry[];
  /** Steps below this number are in the journal: the workflow replays until it gets there. */
  readonly #replayEnd: number;
  #nextStep = 0;
  #replayed = 0;
  #appending: Promise<void> = Promise.resolve();
  /** Outcomes journaled and not appended yet, in step order: this run's, after those a suspension's state held alone (see {@link DurableContext.unappended}). */
  readonly #held: JournalEntry[] = [];
  /** Why the last append failed: no entry is appended after it. */
  #appendFailure: Error | undefined;
  /** The state write asked for by {@link DurableContextOptions.writeState}, once asked. */
  #stateWritten: Promise<void> | undefined;
  /** Why that write failed: nothing is appended after it. */
  #stateFailure: Error | undefined;
  #fatal: Error | undefined;
  /** Invocation-scoped state, as JSON bytes; rebuilt by replaying the set and clear steps. */
  readonly #state: Map<string, Uint8Array>;
  /** Keyed state changed by this invocation (exclusive workflows): the new bytes, null when cleared. */
  readonly #keyedChanges = new Map<string, Uint8Array | null>();
  /** Live steps running now: a suspension waits until none is, so no outcome is lost. */
  #liveSteps = 0;
  #suspendRequested = false;
  #resolveSuspension: () => void = () => undefined;
  /** Settles once the workflow waits only on things outside this run (timers). */
  readonly suspension: Promise<void> = new Promise((resolve) => {
    this.#resolveSuspension = resolve;
  });

  constructor(options: DurableContextOptions) {
    this.#options = options;
    this.#observer = options.observer ?? NO_RUN_OBSERVER;
    this.invocationId = options.invocationId;
    this.handler = options.handler;
    this.partitionKey = options.partitionKey;
    this.#entries = [...options.journal.entries];
    // Entries a suspension's state held alone: appended before anything of this run's.
    const unstreamed = options.journal.unstreamed ?? 0;
    if (unstreamed > 0) this.#held.push(...this.#entries.slice(-unstreamed));
    this.#state = new Map(options.keyedState ?? []);
    let replayEnd = 0;
    for (const entry of options.journal.entries) {
      this.#journaled.set(entry.stepNumber, entry);
      replayEnd = Math.max(replayEnd, entry.stepNumber + 1);
    }
    this.#replayEnd = replayEnd;
    this.log = options.logger.child(
      { invocation_id: options.invocationId, handler: options.handler },
      { level: replayEnd > 0 ? 'silent' : options.logger.level },
    );
  }

  /** Every journal entry, in the order written. */
  get entries(): readonly JournalEntry[] {
    return this.#entries;
  }

  /** How many steps were answered from the journal. */
  get replayedSteps(): number {
    return this.#replayed;
  }

  /** How many steps the workflow has asked for. */
  get stepCount(): number {
    return this.#nextStep;
  }

  /**
   * The error that ended this run whatever the workflow did with it (a non-deterministic
   * replay, a lost fence, a stop), or undefined. The workflow cannot swallow it: every later
   * step throws it again and the executor checks it once the workflow returns.
   */
  get fatal(): Error | undefined {
    return this.#fatal;
  }

  call<Res = unknown>(service: string, method: string, request: unknown, options: CallStepOptions = {}): Promise<Res> {
    const services = this.#options.services;
    const observer = this.#observer;
    return this.#step<Res>(`${service}.${method}`, request, options.retry, async (step, trace) => {
      const idempotency = `${this.invocationId}:${step}`;
      try {
        const response = await services.call(service, method, request, {
          // The step's trace context goes on to the service, so its spans join the workflow's trace.
          metadata: trace ? { ...trace.headers, 'idempotency-key': idempotency } : { 'idempotency-key': idempotency },
          ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
        });
        observer.serviceCalled(service, method, GRPC_OK);
        return response;
      } catch (err) {
        observer.serviceCalled(service, method, grpcStatusOf(err));
        throw err;
      }
    });
  }

  run<T>(name: string, fn: () => Promise<T> | T, options: RunStepOptions = {}): Promise<T> {
    return this.#step<T>(`RUN:${name}`, undefined, options.retry, async () => fn());
  }

  now(): Promise<number> {
    return this.#step<number>('NOW', undefined, undefined, async () => Date.now(), false);
  }

  random(): Promise<number> {
    return this.#step<number>('RANDOM', undefined, undefined, async () => Math.random(), false);
  }

  uuid(): Promise<string> {
    return this.#step<string>('UUID', undefined, undefined, async () => randomUUID(), false);
  }

  async #step<T>(
    stepType: string,
    request: unknown,
    retry: Partial<RetryPolicy> | undefined,
    attempt: (step: number, trace: StepTrace | undefined) => Promise<unknown>,
    sideEffect = true,
  ): Promise<T> {
    const step = this.#takeStep();
    const journaled = this.#journaled.get(step);
    if (journaled) return this.#replay<T>(step, stepType, journaled);
    if (step < this.#replayEnd) {
      // A gap in the journal: an earlier run started this step but never finished it.
      this.#options.logger.debug({ step, step_type: stepType }, `Step ${step} was not finished before; running it`);
    }

    const policy = mergeRetryPolicy(this.#options.retry, retry);
    const entry = await this.#live(async () => {
      // A side effect starts only once every earlier outcome is journaled: a replay after a
      // crash then never reaches it with different values.
      if (sideEffect) await this.#durable();
      const started = performance.now();
      const trace = this.#observer.traceStep(stepType, step);
      const { outcome, attempts } = await this.#attempt(step, stepType, policy, attempt, trace);
      this.#observer.stepExecuted(stepKind(stepType), secondsSince(started));
      trace?.end(outcome.ok ? undefined : outcome.error);
      const done = create(JournalEntrySchema, {
        stepNumber: step,
        stepType,
        request: encodeJson(request),
        recordedAtMs: BigInt(Date.now()),
        attempts,
      });
      if (outcome.ok) {
        done.response = encodeJson(outcome.value);
      } else {
        done.error = outcome.error instanceof ServiceCallError ? outcome.error.details : outcome.error.message;
        done.errorCode = outcome.error.errorCode;
      }
      const failure = this.#failIfTooLarge(done) ?? (outcome.ok ? undefined : outcome.error);
      this.#hold(done);
      if (failure) {
        await this.#flush();
        throw failure;
      }
      // The workflow goes on before the entry is appended: the next side effect appends it
      // first (above), and when the workflow ends here, its final state carries it.
      return done;
    });
    // What the workflow sees live is what it would see on replay: the value after a JSON round trip.
    return decodeJson<T>(entry.response, `result of step ${step}`);
  }

  async sleep(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError('sleep duration', `${ms} is not a number of ms >= 0`);
    const step = this.#takeStep();
    const journaled = this.#journaled.get(step);
    let wakeAtMs: number;
    if (journaled && journaled.phase === EntryPhase.COMPLETED) {
      this.#replay<void>(step, 'SLEEP', journaled);
      return;
    }
    if (journaled) {
      this.#checkType(step, 'SLEEP', journaled);
      wakeAtMs = decodeJson<{ wakeAtMs: number }>(journaled.request, `sleep of step ${step}`).wakeAtMs;
      // Woken by its timer (or by a redelivery after it was due): how late it came.
      const late = Date.now() - wakeAtMs;
      if (late >= 0) this.#observer.timerFired(late / 1000);
    } else {
      this.#checkRunning();
      wakeAtMs = Date.now() + ms;
    }
    const timers = this.#options.timers;
    const suspends = timers !== undefined && wakeAtMs - Date.now() > (this.#options.inMemorySleepMs ?? 1_000);
    if (!journaled) {
      const started = sleepEntry(step, wakeAtMs, EntryPhase.STARTED);
      // A sleep that suspends leaves its start to the suspension's state, which carries what
      // the run holds when it can (see the executor's suspension); one that waits here
      // appends it first, so that a run taken up again waits only for what is left.
      if (suspends) this.#hold(started);
      else await this.#live(() => this.#append(started));
    }
    if (timers && suspends) {
      // Live: the run does not end suspended before its timer exists.
      const { invocationId, handler, partitionKey } = this;
      await this.#live(() => this.#infrastructure('schedule a timer', () => timers.schedule({ invocationId, handler, partitionKey, step, wakeAtMs })));
      return this.#suspend();
    }
    await this.#live(async () => {
      await this.#backoff(wakeAtMs - Date.now());
      this.#checkRunning();
      // Appended with the next side effect, or carried by the final state: a run that stops
      // before that finds the sleep started and due, and goes on at once.
      this.#hold(sleepEntry(step, wakeAtMs, EntryPhase.COMPLETED));
    });
  }

  get<T = unknown>(key: string): T | undefined {
    const value = this.#state.get(key);
    return value === undefined ? undefined : decodeJson<T>(value, `state ${key}`);
  }

  async set(key: string, value: unknown): Promise<void> {
    const bytes = encodeJson(value);
    await this.#step<void>(`SET:${key}`, value, undefined, async () => undefined, false);
    this.#state.set(key, bytes);
    if (this.#options.keyedState) this.#keyedChanges.set(key, bytes);
  }

  async clear(key: string): Promise<void> {
    await this.#step<void>(`CLEAR:${key}`, undefined, undefined, async () => undefined, false);
    this.#state.delete(key);
    if (this.#options.keyedState) this.#keyedChanges.set(key, null);
  }

  /** What this invocation changed in its partition key's shared state (exclusive workflows). */
  get keyedChanges(): ReadonlyMap<string, Uint8Array | null> {
    return this.#keyedChanges;
  }

  send<In>(workflow: WorkflowRef<In, unknown>, input: In, options: SendOptions = {}): Promise<string> {
    const handler = workflowName(workflow);
    const delay = options.delay ?? 0;
    if (!Number.isFinite(delay) || delay < 0) throw new InvalidArgumentError('send delay', `${delay} is not a number of ms >= 0`);
    const partitionKey = checkPartitionKey(options.partitionKey ?? 'default');
    const args = inputCodec(workflow).encode(input);
    this.#writeState();
    return this.#step<string>(`SEND:${handler}`, { partitionKey, delay }, undefined, async (step) => {
      const invocationId = derivedInvocationId(this.invocationId, step);
      const command = create(CommandSchema, { invocationId, handler, args, partitionKey, submittedAtMs: BigInt(Date.now()), parentInvocationId: this.invocationId });
      await this.#infrastructure('send a command', () => this.#gateway().start(command, { delayMs: delay }));
      return invocationId;
    });
  }

  async invoke<In, Out>(workflow: WorkflowRef<In, Out>, input: In, options: InvokeOptions = {}): Promise<Out> {
    const handler = workflowName(workflow);
    const stepType = `INVOKE:${handler}`;
    const step = this.#takeStep();
    let childId = derivedInvocationId(this.invocationId, step);
    const output = outputCodec(workflow);
    const journaled = this.#journaled.get(step);
    if (journaled && journaled.phase === EntryPhase.COMPLETED) {
      this.#replay<unknown>(step, stepType, journaled);
      return output.decode(journaled.response, `output of child ${childId}`);
    }
    if (journaled) {
      this.#checkType(step, stepType, journaled);
      // The child the journal names: one started under an earlier form of derived IDs too.
      childId = decodeJson<{ invocationId: string }>(journaled.request, `request of step ${step}`).invocationId;
    } else {
      this.#checkRunning();
      this.#writeState();
      const partitionKey = checkPartitionKey(options.partitionKey ?? 'default');
      const command = create(CommandSchema, {
        invocationId: childId,
        handler,
        args: inputCodec(workflow).encode(input),
        partitionKey,
        submittedAtMs: BigInt(Date.now()),
        parentInvocationId: this.invocationId,
        parent: create(ParentRefSchema, { invocationId: this.invocationId, handler: this.handler, partitionKey: this.partitionKey, step }),
      });
      await this.#live(async () => {
        // Like any side effect, the child starts once every earlier outcome is journaled.
        await this.#durable();
        await this.#infrastructure('start a child invocation', () => this.#gateway().start(command));
        const request = encodeJson({ invocationId: childId, partitionKey });
        await this.#append(create(JournalEntrySchema, { stepNumber: step, stepType, request, phase: EntryPhase.STARTED, recordedAtMs: BigInt(Date.now()), attempts: 1 }));
      });
    }
    const entry = await this.#live(async () => {
      const states = this.#options.states;
      if (!states) throw new TerminalError('invoke needs a processor: this context has no state store');
      const child = await this.#infrastructure('read a child invocation', () => states.get(childId));
      if (!child || !isTerminal(child.state.status)) return undefined;
      const done = create(JournalEntrySchema, { stepNumber: step, stepType, request: encodeJson({ invocationId: childId }), recordedAtMs: BigInt(Date.now()), attempts: 1 });
      if (child.state.status === 'completed') done.response = child.state.currentState;
      else done.error = `child invocation ${childId} ${child.state.status}: ${child.state.error}`;
      this.#failIfTooLarge(done);
      await this.#append(done);
      return done;
    });
    if (!entry) return this.#suspend();
    if (entry.error !== '') throw new TerminalError(entry.error);
    return output.decode(entry.response, `output of child ${childId}`);
  }

  #gateway(): InvocationGateway {
    const gateway = this.#options.invocations;
    if (!gateway) throw new TerminalError('send and invoke need a processor or a local runtime: this context cannot start invocations');
    return gateway;
  }

  /**
   * Runs work on the cluster that is not a step of its own; a failure stops this run (it
   * continues later from its journal) rather than reaching the workflow.
   */
  async #infrastructure<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof TerminalError) throw err;
      this.#fatal ??= new InterruptedError(`could not ${what}: ${errorMessage(err)}`);
      throw this.#fatal;
    }
  }

  /** The invocation-scoped state, for the final ExecutionState. */
  get workflowState(): Record<string, Uint8Array> {
    return Object.fromEntries(this.#state);
  }

  awakeable<T = unknown>(): Awakeable<T> {
    const step = this.#takeStep();
    const id = awakeableId(this.invocationId, step);
    // Its ID may be handed out by the next step: the invocation must exist for whoever settles it.
    this.#writeState();
    const promise = this.#awaitAwakeable<T>(step, `AWAKEABLE:${id}`, id);
    // A workflow may never await it; its rejection must not crash the process then.
    promise.catch(() => undefined);
    return { id, promise };
  }

  async #awaitAwakeable<T>(step: number, stepType: string, id: string): Promise<T> {
    const store = this.#options.awakeables;
    if (!store) throw new TerminalError('awakeables need a processor: this context has no awakeable store');
    const journaled = this.#journaled.get(step);
    if (journaled && journaled.phase === EntryPhase.COMPLETED) return this.#replay<T>(step, stepType, journaled);
    if (journaled) {
      this.#checkType(step, stepType, journaled);
    } else {
      this.#checkRunning();
      await this.#live(async () => {
        await this.#infrastructure('record an awakeable', () => store.create(id, this.invocationId));
        await this.#append(create(JournalEntrySchema, { stepNumber: step, stepType, phase: EntryPhase.STARTED, recordedAtMs: BigInt(Date.now()), attempts: 1 }));
      });
    }
    const entry = await this.#live(async () => {
      const outcome = await this.#infrastructure('read an awakeable', () => store.outcome(id));
      if (!outcome) return undefined;
      const done = create(JournalEntrySchema, { stepNumber: step, stepType, recordedAtMs: BigInt(Date.now()), attempts: 1 });
      if (outcome.ok) done.response = outcome.value;
      else done.error = outcome.error;
      this.#failIfTooLarge(done);
      await this.#append(done);
      return done;
    });
    if (!entry) return this.#suspend();
    if (entry.error !== '') throw new TerminalError(entry.error);
    return decodeJson<T>(entry.response, `result of awakeable ${id}`);
  }

  async race<T>(promises: ReadonlyArray<Promise<T>>): Promise<T> {
    const winner = await this.#choose('RACE', promises, () => Promise.race(promises.map((p, i) => p.then(() => i, () => i))));
    return promises[winner] as Promise<T>;
  }

  async any<T>(promises: ReadonlyArray<Promise<T>>): Promise<T> {
    // The first to succeed, or -1 once every one has failed.
    const winner = await this.#choose('ANY', promises, () =>
      new Promise<number>((resolve) => {
        let failed = 0;
        promises.forEach((p, i) => p.then(() => resolve(i), () => ++failed === promises.length && resolve(-1)));
      }),
    );
    return winner === -1 ? Promise.any(promises) : (promises[winner] as Promise<T>);
  }

  /** Which of several promises `pick` chose, journaled (the same on every replay). */
  async #choose(stepType: 'RACE' | 'ANY', promises: ReadonlyArray<Promise<unknown>>, pick: () => Promise<number>): Promise<number> {
    if (promises.length === 0) throw new InvalidArgumentError(stepType.toLowerCase(), 'needs at least one promise');
    const step = this.#takeStep();
    const journaled = this.#journaled.get(step);
    let winner: number;
    if (journaled) {
      winner = this.#replay<{ winner: number }>(step, stepType, journaled).winner;
    } else {
      winner = await pick();
      await this.#live(() =>
        this.#append(create(JournalEntrySchema, { stepNumber: step, stepType, response: encodeJson({ winner }), recordedAtMs: BigInt(Date.now()), attempts: 1 })),
      );
    }
    if (winner >= promises.length) throw new NonDeterminismError(step, `${stepType} of ${winner + 1}+ promises`, `${stepType} of ${promises.length}`);
    return winner;
  }

  resolveAwakeable(awakeableId: string, value: unknown): Promise<void> {
    return this.#settleAwakeable('RESOLVE', awakeableId, { ok: true, value: encodeJson(value) });
  }

  rejectAwakeable(awakeableId: string, reason: string): Promise<void> {
    return this.#settleAwakeable('REJECT', awakeableId, { ok: false, error: reason || 'rejected' });
  }

  #settleAwakeable(verb: 'RESOLVE' | 'REJECT', awakeableId: string, outcome: AwakeableOutcome): Promise<void> {
    return this.#step<void>(`${verb}:${awakeableId}`, undefined, undefined, async () => {
      const { awakeables: store, states } = this.#options;
      if (!store || !states) throw new TerminalError('settling awakeables needs a processor: this context has no awakeable store');
      const live = async (owner: string) => {
        const found = await ownerState(owner, (id) => states.get(id));
        return found !== null && !isTerminal(found.state.status);
      };
      let owner: string;
      try {
        owner = await store.settle(awakeableId, outcome, live);
      } catch (err) {
        if (err instanceof AwakeableNotFoundError) throw new TerminalError(err.message, { cause: err });
        if (!(err instanceof ConflictError)) return this.#infrastructure('settle an awakeable', () => Promise.reject(err));
        // Settled by an earlier attempt of this very step (its wake-up then failed)? Then go on.
        if (!sameOutcome(await store.outcome(awakeableId), outcome)) throw new TerminalError(err.message, { cause: err });
        owner = awakeableInvocation(awakeableId) ?? '';
      }
      const waiting = await this.#infrastructure('read the awakeable’s invocation', () => ownerState(owner, (id) => states.get(id)));
      if (waiting && !isTerminal(waiting.state.status)) {
        await this.#infrastructure('wake the awakeable’s invocation', () => this.#gateway().wake(waiting.state, `${awakeableId}:settled`));
      }
    });
  }

  /** Takes the next step number; from the first step past the journal on, the workflow's log speaks again. */
  #takeStep(): number {
    if (this.#fatal) throw this.#fatal;
    const step = this.#nextStep++;
    // Lines up to the first step past the journal were printed by an earlier run.
    if (step >= this.#replayEnd) this.log.level = this.#options.logger.level;
    return step;
  }

  /** Runs live work of a step, counted so that a suspension waits for it. */
  async #live<T>(work: () => Promise<T>): Promise<T> {
    this.#liveSteps++;
    try {
      return await work();
    } finally {
      this.#liveSteps--;
      this.#maybeSuspend();
    }
  }

  /** Parks the workflow: the returned promise never settles, and the run ends suspended. */
  #suspend(): Promise<never> {
    this.#suspendRequested = true;
    this.#maybeSuspend();
    return new Promise<never>(() => undefined);
  }

  /**
   * Suspends once the workflow is blocked: no live step runs and, after every pending
   * callback has run, it took no new step. A workflow that moved on (a race another
   * promise won) is not suspended; the abandoned wait's wake-up later finds nothing to do.
   */
  #maybeSuspend(): void {
    if (!this.#suspendRequested || this.#liveSteps > 0) return;
    const stepsBefore = this.#nextStep;
    setImmediate(() => {
      if (this.#liveSteps === 0 && this.#nextStep === stepsBefore) this.#resolveSuspension();
      else if (this.#liveSteps === 0) this.#maybeSuspend();
    });
  }

  #checkType(step: number, stepType: string, entry: JournalEntry): void {
    if (entry.stepType !== stepType) {
      this.#fatal = new NonDeterminismError(step, entry.stepType, stepType);
      throw this.#fatal;
    }
  }

  #replay<T>(step: number, stepType: string, entry: JournalEntry): T {
    this.#checkType(step, stepType, entry);
    this.#replayed++;
    this.#observer.stepReplayed(stepKind(stepType));
    this.#options.logger.info(
      { invocation_id: this.invocationId, step, step_type: stepType },
      `Replayed step ${step}: ${stepType} (from journal)`,
    );
    if (entry.error !== '') throw journaledError(entry);
    return decodeJson<T>(entry.response, `journaled result of step ${step}`);
  }

  async #attempt(
    step: number,
    stepType: string,
    policy: RetryPolicy,
    attempt: (step: number, trace: StepTrace | undefined) => Promise<unknown>,
    trace: StepTrace | undefined,
  ): Promise<{ outcome: StepOutcome; attempts: number }> {
    for (let n = 1; ; n++) {
      this.#checkRunning();
      let failure: AttemptFailure;
      try {
        return { outcome: { ok: true, value: await attempt(step, trace) }, attempts: n };
      } catch (err) {
        // The cluster failed under the step (see #infrastructure): this run stops here.
        if (this.#fatal) throw this.#fatal;
        failure = err instanceof TerminalError
          ? { retry: false, error: err }
          : err instanceof InvalidArgumentError
            ? // A request that does not fit its message type never will: fail the step at once.
              { retry: false, error: new TerminalError(err.message, { cause: err }) }
            : { retry: true, error: err };
      }
      if (!failure.retry) return { outcome: { ok: false, error: failure.error }, attempts: n };
      if (n >= policy.maxAttempts) {
        return { outcome: { ok: false, error: new AttemptsExhaustedError(stepType, n, failure.error) }, attempts: n };
      }
      const backoff = backoffMs(policy, n);
      this.#observer.stepRetried(stepKind(stepType), stepType);
      this.#options.logger.warn(
        { invocation_id: this.invocationId, step, step_type: stepType, attempt: n, backoff_ms: backoff, err: failure.error },
        `Step ${step} ${stepType} failed (attempt ${n}), retrying in ${backoff} ms: ${errorMessage(failure.error)}`,
      );
      await this.#backoff(backoff);
    }
  }

  async #backoff(ms: number): Promise<void> {
    try {
      await wait(ms, undefined, this.#options.signal ? { signal: this.#options.signal } : {});
    } catch {
      // Aborted: #checkRunning below turns the stop into the run's fatal error.
    }
  }

  #checkRunning(): void {
    const signal = this.#options.signal;
    if (signal?.aborted) {
      const reason: unknown = signal.reason;
      this.#fatal ??= reason instanceof CancelledError || reason instanceof PausedError ? reason : new InterruptedError();
      throw this.#fatal;
    }
  }

  /**
   * Turns an outcome too large for the journal into the step's terminal failure, journaled
   * in its place (the step is not run again, and a replay throws the same error).
   * @returns the error, or undefined when the entry fits.
   */
  #failIfTooLarge(entry: JournalEntry): JournalEntryTooLargeError | undefined {
    const limit = this.#options.journal.maxEntryBytes;
    // Encoded only when the bound comes near the limit.
    if (limit === undefined || entryBytesAtMost(entry) <= limit) return undefined;
    const size = toBinary(JournalEntrySchema, entry).length;
    if (size <= limit) return undefined;
    const error = new JournalEntryTooLargeError({ invocationId: this.invocationId, step: entry.stepNumber, stepType: entry.stepType, size, limit });
    this.#options.logger.warn(
      { invocation_id: this.invocationId, step: entry.stepNumber, step_type: entry.stepType, size, limit },
      `Step ${entry.stepNumber} ${entry.stepType} failed: ${error.message}`,
    );
    entry.request = new Uint8Array();
    entry.response = new Uint8Array();
    entry.error = error.message;
    entry.errorCode = 0;
    return error;
  }

  /** Appends what is held, then resolves once every append has been written (or failed: see {@link fatal}). */
  drained(): Promise<void> {
    void this.#flush().catch(() => undefined);
    return this.#appending;
  }

  /** Resolves once the appends already issued have been written, leaving what is held unappended. */
  inFlight(): Promise<void> {
    return this.#appending;
  }

  /**
   * Step outcomes not appended yet, with those a suspension's state held alone. A step's
   * outcome is appended before the next side effect starts, or at a suspension unless the
   * suspension's state holds them alone; a run that completes right after it may leave it
   * to its final state, which carries the whole journal when it fits.
   */
  get unappended(): readonly JournalEntry[] {
    return this.#held;
  }

  /** Appends what is held, waits for the appends; throws the run's fatal error if one failed. */
  async #durable(): Promise<void> {
    if (this.#options.claimBeforeEffects) this.#writeState();
    await this.drained();
    await this.#stateWritten;
    if (this.#fatal) throw this.#fatal;
  }

  /** Has the invocation's state written, once, if the run started without it; the next side effect waits for it. */
  #writeState(): void {
    const write = this.#options.writeState;
    if (!write || this.#stateWritten) return;
    this.#stateWritten = write().catch((err: unknown) => {
      this.#stateFailure = err instanceof FencedError ? err : new InterruptedError(`could not write the state: ${errorMessage(err)}`);
      this.#fatal ??= this.#stateFailure;
    });
  }

  /** Journals an outcome without appending it yet: the next flush does. */
  #hold(entry: JournalEntry): void {
    this.#entries.push(entry);
    this.#held.push(entry);
  }

  /** Journals an entry and appends it, after what is held. */
  #append(entry: JournalEntry): Promise<void> {
    this.#hold(entry);
    return this.#flush();
  }

  /** Appends the held entries; resolves when the last is written, rejects as it failed. */
  #flush(): Promise<void> {
    let last: Promise<void> | undefined;
    for (const entry of this.#held.splice(0)) last = this.#appendNow(entry);
    return last ?? this.#appending.then(() => {
      if (this.#fatal) throw this.#fatal;
    });
  }

  /**
   * Appends in journal order, one at a time: each append is fenced on the previous one.
   * The entry counts as written from now on: a run whose append fails stops (see `fatal`)
   * unless its final state, which carries the entry, is written.
   */
  #appendNow(entry: JournalEntry): Promise<void> {
    const appended = this.#appending.then(async () => {
      // A finished outcome is appended also when the run stops (a stop, a pause, a cancel, a
      // failed call to the cluster): the next run must not do it again. Not once an append
      // failed (the journal's next sequence is not known), the journal is another's, or the
      // replay went astray.
      if (this.#appendFailure || this.#fatal instanceof FencedError || this.#fatal instanceof NonDeterminismError) throw this.#fatal;
      if (this.#options.writeState) {
        this.#writeState();
        await this.#stateWritten;
        if (this.#stateFailure) throw this.#stateFailure;
      }
      try {
        const started = performance.now();
        await this.#options.journal.append(entry);
        this.#observer.journalAppended(secondsSince(started));
      } catch (err) {
        // Fenced: another processor owns the invocation. Too large: no retry would make it
        // fit, so the invocation fails with the reason. Anything else (the cluster did not
        // answer): stop here and let the invocation be taken up again from its journal.
        this.#appendFailure = err instanceof FencedError || err instanceof JournalEntryTooLargeError
          ? err
          : new InterruptedError(`journal write failed: ${errorMessage(err)}`);
        this.#fatal ??= this.#appendFailure;
        throw this.#fatal;
      }
    });
    this.#appending = appended.catch(() => undefined);
    return appended;
  }
}

/** The children an invocation started with `invoke` whose outcome it has not journaled yet. */
export function openChildren(entries: readonly JournalEntry[]): string[] {
  const done = new Set(entries.filter((e) => e.phase === EntryPhase.COMPLETED).map((e) => e.stepNumber));
  return entries
    .filter((e) => e.phase === EntryPhase.STARTED && e.stepType.startsWith('INVOKE:') && !done.has(e.stepNumber))
    .map((e) => decodeJson<{ invocationId: string }>(e.request, `request of step ${e.stepNumber}`).invocationId);
}

/** The ID of the awakeable made at `step` of an invocation: it names its invocation, so finding it is O(1). */
export function awakeableId(invocationId: string, step: number): string {
  return `awk_${step}_${invocationId}`;
}

/** The invocation an awakeable ID belongs to, or undefined when it is not an awakeable ID. */
export function awakeableInvocation(id: string): string | undefined {
  return /^awk_\d+_([A-Za-z0-9_=/-]{1,128})$/.exec(id)?.[1];
}

/** A sleep's journal entry: STARTED records when it is due, COMPLETED that it passed. */
function sleepEntry(step: number, wakeAtMs: number, phase: EntryPhase): JournalEntry {
  return create(JournalEntrySchema, {
    stepNumber: step,
    stepType: 'SLEEP',
    request: encodeJson({ wakeAtMs }),
    phase,
    recordedAtMs: BigInt(Date.now()),
    attempts: 1,
  });
}

/** The error a journaled failed step throws again on replay. */
function journaledError(entry: JournalEntry): TerminalError {
  const call = /^([^:]+)\.([^.:]+)$/.exec(entry.stepType);
  if (call && entry.errorCode > 0) {
    return new ServiceCallError(call[1] ?? '', call[2] ?? '', entry.errorCode, entry.error);
  }
  return new TerminalError(entry.error, { errorCode: entry.errorCode });
}


/** gRPC status 0. */
/** Pauses before looking again for the state of an awakeable's invocation that is not there yet, ms (about 1 s in all). */
const OWNER_STATE_RECHECKS_MS = [50, 150, 300, 500];

/**
 * The state of the invocation an awakeable being settled belongs to, or null. A first run
 * writes its state when it makes an awakeable, not before: an ID handed out outside a step
 * can arrive first, so a state not there yet is looked for again a few times, about a
 * second in all (a bounded wait: only an unknown owner pays it).
 */
export async function ownerState<T>(owner: string, get: (invocationId: string) => Promise<T | null>): Promise<T | null> {
  let found = await get(owner);
  for (const delayMs of OWNER_STATE_RECHECKS_MS) {
    if (found) return found;
    await wait(delayMs);
    found = await get(owner);
  }
  return found;
}
const GRPC_OK = 0;
/** gRPC status 2, for a failure that carries none. */
const GRPC_UNKNOWN = 2;

/** The gRPC status of a failed call: from a ServiceCallError, or the grpc-js error a retryable one wraps. */
function grpcStatusOf(err: unknown): number {
  if (err instanceof ServiceCallError) return err.status;
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === 'number' ? cause.code : GRPC_UNKNOWN;
}
