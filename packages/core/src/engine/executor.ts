/**
 * Runs one invocation from a command: takes ownership of it, replays its journal, runs
 * the rest of the workflow, and writes its final state. Knows nothing of JetStream: the
 * processor gives it JetStream stores, local mode memory ones.
 *
 * Writes on the way: the state when the invocation is taken up (a compare-and-set when it
 * ran before; a first delivery runs before its state is written, see {@link OwnedState}),
 * one journal append per step, and the final state with the whole journal. Every one is
 * fenced.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import {
  CommandKind,
  ExecutionStateSchema,
  JournalEntrySchema,
  KeyedWaiterSchema,
  StatusChangeSchema,
  type Command,
  type ExecutionState,
  type JournalEntry,
} from '../gen/durable/durable_pb.js';
import {
  CancelledError,
  errorMessage,
  PausedError,
  FencedError,
  HandlerNotFoundError,
  InterruptedError,
  TerminalError,
  toError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { ServiceInvoker } from '../services/service-invoker.js';
import { DurableContext, openChildren } from './durable-context.js';
import { isTerminal, transition, type InvocationStatus } from './lifecycle.js';
import { NO_OBSERVER, type EngineObserver, type RunObserver } from './observer.js';
import { DEFAULT_RETENTION_MS, retentionOf, whyKept } from './retention.js';
import { plainState } from './plain-state.js';
import {
  entryBytesAtMost,
  withInline,
  type AwakeableStore,
  type InvocationGateway,
  type JournalLog,
  type JournalStore,
  type KeyedStateStore,
  type KnownJournal,
  type ResultNotifier,
  type RetentionStore,
  type StateStore,
  type StateWriteOptions,
  type TimerScheduler,
  type VersionedState,
} from './stores.js';
import type { AnyWorkflow, WorkflowRegistry } from './workflow.js';

/** Options of {@link Executor}. */
export interface ExecutorOptions {
  workflows: WorkflowRegistry;
  states: StateStore;
  journals: JournalStore;
  services: ServiceInvoker;
  logger: Logger;
  /** Where awakeables are kept. @default none: `ctx.awakeable()` fails */
  awakeables?: AwakeableStore;
  /** Durable timers for long sleeps. @default none: sleeps wait in memory */
  timers?: TimerScheduler;
  /** Told of every invocation that ends. @default none */
  notifier?: ResultNotifier;
  /** Starts, wakes and cancels other invocations (`send`, `invoke`, exclusive keys). @default none: those fail */
  invocations?: InvocationGateway;
  /** Shared state and locks of partition keys, for workflows declared exclusive. @default none: they fail */
  keyed?: KeyedStateStore;
  /** Recorded as the owner of the invocations this executor runs. @default 'local' */
  processorId?: string;
  /**
   * Runs an invocation may take without finishing (each crash or lost lease is one) before
   * it fails with the reason. @default 3
   */
  maxAttempts?: number;
  /** Most bytes of journal copied into a state; the rest stays in the journal stream. @default 32 KiB */
  journalInlineBytes?: number;
  /** Removes ended invocations once their retention has passed. @default none: they are kept */
  retention?: RetentionStore;
  /** Retention of the invocations of workflows that set none, ms; 0 keeps them. @default 24 h */
  retentionMs?: number;
  /** Told of runs, steps, calls and ends, for metrics and traces. @default none */
  observer?: EngineObserver;
}

/** What became of a command. */
export type ExecutionOutcome =
  /**
   * The invocation ended (completed, failed or cancelled) and its final state is written.
   * `removal`: its removal after the retention being scheduled; the command is to be
   * acknowledged only once that is done (a crash before it delivers the command again, and
   * the run that finds the invocation ended schedules it then).
   */
  | { kind: 'ended'; state: ExecutionState; removal: Promise<void> }
  /** The invocation had ended before: nothing was run again. */
  | { kind: 'already-ended'; state: ExecutionState }
  /** The workflow waits on a timer: its state says so and nothing of it stays in memory. */
  | { kind: 'suspended'; state: ExecutionState }
  /** The invocation is paused: nothing runs until it is resumed. */
  | { kind: 'paused'; state: ExecutionState }
  /** The invocation waits for its partition key, held by another invocation of an exclusive workflow. */
  | { kind: 'queued'; state: ExecutionState }
  /** A second start command for an invocation that exists: dropped, nothing was run. */
  | { kind: 'duplicate'; state: ExecutionState }
  /** The invocation is running from another command: this one (a wake-up) is to be delivered again a little later. */
  | { kind: 'busy'; state: ExecutionState }
  /** Nothing to do for this command. */
  | { kind: 'dropped'; reason: string }
  /** A purge removed every record of the ended invocation. */
  | { kind: 'purged'; state: ExecutionState }
  /** A purge found the invocation still needed (or not due yet) and scheduled itself again. */
  | { kind: 'kept'; reason: string }
  /** Another processor owns the invocation: nothing more was written. */
  | { kind: 'fenced'; reason: string }
  /** The run stopped at a step boundary (the processor is stopping, or a write failed); it continues later from its journal. */
  | { kind: 'interrupted'; reason: string }
  /** The invocation exists but its workflow is not registered here: another processor must run it. */
  | { kind: 'unavailable'; reason: string };

/** What admission found: an outcome already, or an invocation to claim. */
type Admission = { kind: 'outcome'; outcome: ExecutionOutcome } | Admitted;
interface Admitted {
  kind: 'admitted';
  workflow: AnyWorkflow;
  /** The state to claim: the one found, or a new one. */
  state: ExecutionState;
  found: VersionedState | null;
  /** A first delivery: the run starts before the state is written. */
  unwritten?: boolean;
}
/** An invocation this run owns, ready to run. */
interface Claimed {
  kind: 'claimed';
  state: ExecutionState;
  owned: OwnedState;
  input: unknown;
  journal: JournalLog;
  keyedState: Map<string, Uint8Array> | undefined;
}

/** Control of one run. */
export interface ExecuteOptions {
  /** Aborted when the processor stops: the run stops at its next step boundary. */
  signal?: AbortSignal;
  /**
   * The command is delivered for the first time and never run before: when its invocation
   * has no state, the run starts without writing one first (one durable write less); the
   * state is written when the run suspends, ends, exposes the invocation to others, or
   * before its first journal append, see {@link OwnedState}.
   * @default false
   */
  firstDelivery?: boolean;
  /**
   * A resume (a wake-up) delivered for the first time and never run before: a suspended
   * invocation whose state holds its whole journal is resumed before its claim is written.
   * The claim is written before the run's first side effect or journal append, when it
   * exposes the invocation to others, or once it has run for {@link UNWRITTEN_STATE_MS}; a
   * run that ends before any of these (it only replays, then returns) writes only its end,
   * by compare-and-set on the state it found (one durable write less).
   * @default false
   */
  resumeUnclaimed?: boolean;
  /**
   * With `firstDelivery`: the invocation ID was made just now by the client that sent the
   * command (not given by its caller), so no invocation can have it yet and the run starts
   * without reading its state. A write that finds one anyway is fenced, as without this.
   * @default false
   */
  freshId?: boolean;
  /**
   * The command's stream sequence: recorded when it creates the invocation, so that another
   * start command for the same ID is recognised as a duplicate and dropped.
   */
  startSequence?: bigint;
  /**
   * How many times the command has been delivered: a run takes over a running invocation
   * only from a copy delivered more often than the one it runs from.
   */
  delivery?: number;
  /** W3C trace context the command came with (`traceparent`, `tracestate`): the run's span continues its trace. */
  trace?: Readonly<Record<string, string>>;
}

/**
 * Default bound of the journal copied into a state: enough for the usual journal to resume
 * without a read, small enough that a state stays a small record however long its journal.
 */
const DEFAULT_INLINE_BYTES = 32 * 1024;
/** How long a first delivery runs before its state is written even if it has not suspended or ended, ms. */
const UNWRITTEN_STATE_MS = 500;
/** How soon a purge held back by a running parent looks again, at least, ms. */
const PURGE_RECHECK_MS = 60_000;

/** Runs invocations; one executor serves any number of concurrent invocations. */
export class Executor {
  readonly #options: ExecutorOptions;
  readonly #processorId: string;
  readonly #maxAttempts: number;
  readonly #observer: EngineObserver;

  constructor(options: ExecutorOptions) {
    this.#options = options;
    this.#observer = options.observer ?? NO_OBSERVER;
    this.#processorId = options.processorId ?? 'local';
    this.#maxAttempts = options.maxAttempts ?? 3;
  }

  /**
   * Runs the invocation a command names, as far as it can go now, in four phases: admit
   * (is there anything to run?), claim (take ownership with a fenced write), run the
   * workflow, settle (write what the run came to).
   */
  async execute(command: Command, options: ExecuteOptions = {}): Promise<ExecutionOutcome> {
    if (command.kind === CommandKind.PURGE) return this.#purge(command);
    const admitted = await this.#admit(command, options);
    if (admitted.kind === 'outcome') return admitted.outcome;
    const claimed = await this.#claim(admitted, command, options);
    if (claimed.kind === 'outcome') return claimed.outcome;
    const { invocationId, handler, attempt } = claimed.state;
    const run = this.#observer.runStarted({
      invocationId,
      workflow: handler,
      attempt,
      first: admitted.found === null,
      ...runTrace(options.trace, claimed.state),
    });
    try {
      let outcome = await this.#runAndSettle(claimed, admitted.workflow, options, run);
      if (outcome.kind === 'fenced' && admitted.unwritten) outcome = await this.#fencedUnwritten(command, options, outcome);
      run.finished(outcome.kind);
      return outcome;
    } catch (err) {
      run.finished('error');
      // The cluster failed under the run (an election): not a crash, so not an attempt.
      await this.#release(claimed.state, claimed.owned);
      throw err;
    }
  }

  /**
   * A run that started without writing its state was fenced: by an invocation that had its
   * ID already (a second start command, past the stream's duplicate window), which drops
   * the command, or by a run that took it over.
   */
  async #fencedUnwritten(command: Command, options: ExecuteOptions, fenced: ExecutionOutcome): Promise<ExecutionOutcome> {
    const found = await this.#options.states.get(command.invocationId);
    return found && isDuplicateStart(found.state, options.startSequence) ? { kind: 'duplicate', state: found.state } : fenced;
  }

  /** Decides what the command leads to before anything is written for it. */
  async #admit(command: Command, options: ExecuteOptions): Promise<Admission> {
    const { states, workflows } = this.#options;
    // A command delivered for the first time almost always starts a new invocation: it runs
    // at once, and its state is written later (its first write of it fails if the invocation
    // exists meanwhile). Not an exclusive workflow: it may have to queue for its key first.
    // Nor a child (`invoke`): its parent's cancel must find it to cancel it.
    const workflow = workflows.find(command.handler);
    const runsUnwritten = options.firstDelivery && workflow && !workflow.options.exclusive && !command.parent;
    // An ID its client made just now names no invocation yet: not even a look.
    const found = runsUnwritten && options.freshId ? null : await states.get(command.invocationId);
    if (!found && runsUnwritten) {
      return { kind: 'admitted', workflow, state: this.#initialState(command, options), found: null, unwritten: true };
    }
    const outcome = this.#refuse(command, found, options);
    if (outcome) return { kind: 'outcome', outcome: await outcome };
    const state = found?.state ?? this.#initialState(command, options);
    const handler = workflows.find(state.handler);
    if (!handler) {
      // An invocation that exists waits for a processor that has its workflow (a rolling
      // deploy); only a new one fails at once.
      if (found) return { kind: 'outcome', outcome: { kind: 'unavailable', reason: `workflow ${state.handler} is not registered here` } };
      return { kind: 'outcome', outcome: await this.#end(state, undefined, 'failed', new HandlerNotFoundError(state.handler)) };
    }
    if (found?.state.cancelRequested) return { kind: 'outcome', outcome: await this.#end(found.state, found.revision, 'cancelled', new CancelledError()) };
    if (found?.state.status === 'paused') return { kind: 'outcome', outcome: { kind: 'paused', state: found.state } };
    if (found?.state.pauseRequested) return { kind: 'outcome', outcome: await this.#pause(found.state, found.revision) };
    return { kind: 'admitted', workflow: handler, state, found };
  }

  /** The outcome of a command that must not run its invocation, or undefined when it may. */
  #refuse(command: Command, found: VersionedState | null, options: ExecuteOptions): Promise<ExecutionOutcome> | ExecutionOutcome | undefined {
    if (found && isTerminal(found.state.status)) {
      return this.#followUp(found.state).then(async () => {
        // Its end may not have been followed through (a crash right after the final write).
        this.#options.notifier?.announce(found.state);
        // A state written to go by itself gets a purge too: it finds the state gone, or removes it on time.
        await this.#scheduleRemoval(found.state);
        return { kind: 'already-ended', state: found.state } as const;
      });
    }
    if (found && command.kind === CommandKind.START && isDuplicateStart(found.state, options.startSequence)) {
      return { kind: 'duplicate', state: found.state };
    }
    if (found?.state.status === 'running') {
      // A wake-up for an invocation that is running: taking it over would run its current
      // step twice. Only the redelivery of the command it runs from takes it over (a crash),
      // and never a copy delivered fewer times than the one it runs from: that copy is stale.
      if (isAnotherRun(found.state, options.startSequence)) return { kind: 'busy', state: found.state };
      // The same delivery again is this processor retrying its own run after an error.
      if (options.delivery !== undefined && found.state.runDelivery > options.delivery) {
        return { kind: 'fenced', reason: `a stale copy (delivery ${options.delivery}) of the command it runs from (delivery ${found.state.runDelivery})` };
      }
    }
    // A wake-up for an invocation with no state: never a start (it has no input); its start
    // command, if there is one, creates it and runs it.
    if (!found && command.kind === CommandKind.RESUME) return { kind: 'dropped', reason: 'a wake-up for an invocation that has no state' };
    return undefined;
  }

  /**
   * Takes ownership of the invocation: its key first (exclusive workflows), then a fenced
   * write of its state that also counts the attempt, then its journal (claimed when the
   * invocation is taken over from a run that may be stalled rather than dead).
   */
  async #claim(admitted: Admitted, command: Command, options: ExecuteOptions): Promise<Claimed | { kind: 'outcome'; outcome: ExecutionOutcome }> {
    const { states, journals } = this.#options;
    const { workflow, unwritten } = admitted;
    let { found } = admitted;
    let state = admitted.state;
    let keyedState: Map<string, Uint8Array> | undefined;
    if (workflow.options.exclusive) {
      const taken = await this.#takeKey(workflow, state, found);
      if (taken.kind !== 'granted') return { kind: 'outcome', outcome: taken.outcome };
      keyedState = taken.values;
      found = taken.found;
    }
    // Never run before: nothing to read from its journal.
    const fresh = !found || (found.state.status === 'pending' && found.state.journalLength === 0);
    const takeover = found?.state.status === 'running';
    const attempt = takeover && found ? found.state.attempt + 1 : 1;
    if (found && attempt > this.#maxAttempts) {
      const reason = new TerminalError(
        `gave up after ${found.state.attempt} attempts: each run stopped without finishing (processor crash or lost lease)`,
      );
      return { kind: 'outcome', outcome: await this.#end(found.state, found.revision, 'failed', reason) };
    }
    // A suspended invocation woken by a command never run before, its whole journal in its
    // state: its claim waits (see ExecuteOptions.resumeUnclaimed) until its first side
    // effect or append; a run that has none writes only its end, on the revision found.
    const unclaimed =
      options.resumeUnclaimed === true && found?.state.status === 'suspended' && !workflow.options.exclusive && knownJournal(found.state).known !== undefined
        ? found
        : undefined;
    const location = journals.location(command.invocationId);
    if (found) {
      // The inline journal of a suspension is read below; the claim keeps a copy only when
      // some of it may be in no stream (see mayHoldUnstreamed).
      state = {
        ...found.state,
        status: transition(found.state.status, 'running'),
        attempt,
        owner: this.#processorId,
        updatedAtMs: now(),
        // A journal the suspension's state held alone stays in it until the run appends it:
        // a run that takes this one over reads it there.
        journal: mayHoldUnstreamed(found.state) ? found.state.journal : [],
        journalLastSequence: 0n,
        journalStream: location.stream,
        journalSubject: location.subject,
        runSequence: options.startSequence ?? 0n,
        runDelivery: options.delivery ?? 0,
      };
    }
    const claimedState = state;
    const written = await this.#fenced(async () => {
      if (unwritten || unclaimed) return undefined;
      if (!found) return states.create(claimedState);
      return states.update(claimedState, found.revision, found.state);
    });
    if (written !== undefined && typeof written !== 'number') return { kind: 'outcome', outcome: written };
    const owned =
      written !== undefined
        ? OwnedState.written(written)
        : unclaimed
          ? OwnedState.unclaimed(() => states.update(claimedState, unclaimed.revision, unclaimed.state), unclaimed)
          : OwnedState.unwritten(() => states.create(claimedState));
    let input: unknown;
    try {
      input = workflow.input.decode(state.input, 'workflow input');
    } catch (err) {
      owned.abandon();
      const base = owned.base();
      return { kind: 'outcome', outcome: await this.#end(state, base.revision, 'failed', new TerminalError(errorMessage(err), { cause: err }), { previous: base.previous }) };
    }
    // A first delivery's journal is empty. A start delivered again with no state may follow a
    // run that journaled before it stopped without writing the state, and that may be only
    // stalled: its journal is claimed, as a takeover's is. A suspended state's inline journal
    // is whole: a run resumed unclaimed claims the state before it appends (see
    // DurableContextOptions.writeState). A journal a state holds whole may have entries the
    // stream lacks (see #suspendsWhole): read with the stream.
    const inline = found && mayHoldUnstreamed(found.state) ? { inline: found.state.journal } : {};
    const opening = unwritten || (fresh && found) ? { fresh: true } : !found || takeover ? { claim: this.#processorId, ...inline } : { ...inline, ...knownJournal(found.state) };
    const journal = await this.#fenced(() => journals.open(command.invocationId, opening)).catch(async (err: unknown) => {
      await this.#release(state, owned);
      throw err;
    });
    if ('kind' in journal) {
      owned.abandon();
      return { kind: 'outcome', outcome: journal };
    }
    return { kind: 'claimed', state, owned, input, journal, keyedState };
  }

  /** Runs the workflow from its journal and writes what the run came to. */
  async #runAndSettle(claimed: Claimed, workflow: AnyWorkflow, options: ExecuteOptions, observer: RunObserver): Promise<ExecutionOutcome> {
    const { states, logger } = this.#options;
    const { state, owned, journal, keyedState } = claimed;
    const id = state.invocationId;
    const ctx = new DurableContext({
      invocationId: id,
      handler: state.handler,
      partitionKey: state.partitionKey,
      journal,
      services: this.#options.services,
      logger,
      ...(workflow.options.retry ? { retry: workflow.options.retry } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(this.#options.timers ? { timers: this.#options.timers } : {}),
      ...(this.#options.awakeables ? { awakeables: this.#options.awakeables } : {}),
      ...(this.#options.invocations ? { invocations: this.#options.invocations } : {}),
      states,
      ...(keyedState ? { keyedState } : {}),
      observer,
      ...(owned.isWritten ? {} : { writeState: () => owned.write(), claimBeforeEffects: owned.isUnclaimed }),
    });
    if (journal.entries.length > 0) {
      logger.info(
        { invocation_id: id, journaled: journal.entries.length },
        `Resuming ${id} from its journal: ${journal.entries.length} completed steps will be replayed, not re-executed`,
      );
    }

    let output: unknown;
    let thrown: unknown;
    let suspended = false;
    try {
      const run = workflow.handler(ctx, claimed.input).then((value) => ({ value }));
      const result = await Promise.race([run, ctx.suspension.then(() => undefined)]);
      if (result) output = result.value;
      else suspended = true;
    } catch (err) {
      thrown = err;
    }

    // Appends may still be in flight. A completed run writes its final state beside them
    // (the state carries every entry, and a run that lost the invocation fails its
    // compare-and-set too); any other ending waits for them first.
    const completed = !suspended && thrown === undefined && ctx.fatal === undefined;
    // Encoded once, for the end's state and for what it can carry; the journal part likewise.
    const encoded = completed ? encodeOutput(workflow, output) : undefined;
    const journalFields = lazy(() => this.#journalFields(id, ctx.entries));
    const withJournal = lazy(() => ({ ...state, ...journalFields(), workflowState: ctx.workflowState, ...keyedChangeFields(ctx.keyedChanges) }));
    const limit = journal.maxEntryBytes;
    // Decided once, before the run settles: appends issued after it could not write the state.
    const whole = completed && this.#endsWhole(workflow, withJournal(), ctx.entries.length, encoded?.bytes, limit);
    // A suspension of a run with nothing in its journal stream (a first run, or one resumed
    // from such a suspension) leaves its outcomes to its state when the state can carry them
    // all: a sleep then costs no append.
    const heldAlone = suspended && ctx.fatal === undefined && this.#suspendsWhole(workflow, { ...state, ...journalFields() }, ctx, journal, limit);
    if (!completed && !heldAlone) await ctx.drained();
    // A run without its state written (a first run, or one resumed unclaimed) ends without
    // writing it first only when its final state carries every outcome it holds; else it
    // appends them first, which writes its state (see DurableContextOptions.writeState).
    else if (completed && !owned.isWritten && !whole) {
      await ctx.drained();
    }
    const fatal = ctx.fatal;
    if (fatal instanceof FencedError) {
      owned.abandon();
      this.#observer.fenced();
      return { kind: 'fenced', reason: fatal.message };
    }
    if (fatal instanceof InterruptedError) {
      await this.#release(state, owned);
      return { kind: 'interrupted', reason: fatal.message };
    }
    // A state written while the run went on (it ran long, or exposed the invocation) is built
    // on; else, when resumed unclaimed, the state it found.
    const settled = await this.#fenced(() => owned.settle());
    if (typeof settled === 'object') return settled;
    const { revision, previous } = owned.base();
    if (suspended) return this.#suspend(state, revision, ctx.stepCount, ctx.entries, journal.lastSequence, previous, heldAlone);
    if (fatal instanceof CancelledError || fatal instanceof PausedError) return this.#stopOnRequest(withJournal(), fatal);
    // Nothing of this run outside its state and index entry: nothing in its journal stream
    // (none read, none appended: no awakeable or child call either; a sleep only when its
    // suspension held the journal alone), no parent that may still read it, no place in a
    // key's queue, and no earlier delivery's run that may still append. Its end may then go
    // by itself once its retention has passed.
    const alone = options.delivery === 1 && nothingStreamed(journal, ctx) && !state.parent && !workflow.options.exclusive;
    if (fatal || thrown !== undefined) return this.#end(withJournal(), revision, 'failed', toError(fatal ?? thrown), { alone, previous });
    if (!encoded?.bytes) {
      const err = encoded?.error;
      return this.#end(withJournal(), revision, 'failed', new TerminalError(`workflow output does not encode: ${errorMessage(err)}`, { cause: err }), { previous });
    }
    const currentState = encoded.bytes;
    // The final state could not be written, and every run would end the same way. It
    // carries the input and the workflow's state beside the output (its journal it can leave
    // to the journal stream).
    const over = limit === undefined ? undefined : overWithoutJournal({ ...withJournal(), currentState }, limit);
    if (over !== undefined) {
      // What it holds goes to the journal stream first, as for any end without the output.
      await ctx.drained();
      const beside = over - currentState.length;
      const why = `the NATS server's max_payload, less ${beside} bytes for the input and the rest of the final state`;
      return this.#end(withJournal(), revision, 'failed', new TerminalError(`workflow output of ${currentState.length} bytes is over the limit of ${Math.max(0, limit! - beside)} bytes (${why})`), { previous });
    }
    // Outcomes not appended yet are left to the final state when it holds the whole journal
    // and is sure to stay under the server's limit with it (one write less: its compare-and-set
    // fences it as an append would); else appended beside it. Not for an exclusive workflow:
    // its keyed changes take effect before its final write, only once its journal is whole.
    // Then the appends in flight, failing if one was refused: the run lost the invocation.
    const appends = (whole ? ctx.inFlight() : ctx.drained()).then(() => {
      if (ctx.fatal instanceof FencedError) throw ctx.fatal;
    });
    // Not alone if its held outcomes go to the journal stream beside the final state.
    const ended = await this.#end({ ...withJournal(), currentState }, revision, 'completed', undefined, { appends, alone: alone && whole, previous });
    // Set by an append still in flight above, which the compiler cannot see.
    const lateFailure = ctx.fatal as Error | undefined;
    if (ended.kind === 'ended' && lateFailure) {
      // The final state holds every entry; the journal stream lacks the one that failed.
      logger.warn({ invocation_id: id, err: lateFailure }, `Completed ${id}, but its last journal append failed: ${lateFailure.message}`);
    }
    return ended;
  }

  /**
   * True when a run's last state, its output encoded as `currentState` (empty for a
   * suspension; undefined: it does not encode), can carry its whole journal, every outcome
   * it holds included.
   */
  #endsWhole(workflow: AnyWorkflow, withJournal: ExecutionState, entries: number, currentState: Uint8Array | undefined, limit: number | undefined): boolean {
    if (workflow.options.exclusive || withJournal.journal.length !== entries || !currentState) return false;
    return limit === undefined || stateBytes(withJournal, currentState) <= limit;
  }

  /**
   * True when a suspending run's state can carry its whole journal and nothing of it is in
   * a journal stream (no entry read from one, none appended, no claim mark): its outcomes then
   * stay in the state alone until a run resumed from it appends them.
   */
  #suspendsWhole(workflow: AnyWorkflow, withJournal: ExecutionState, ctx: DurableContext, journal: JournalLog, limit: number | undefined): boolean {
    return nothingStreamed(journal, ctx) && this.#endsWhole(workflow, withJournal, ctx.entries.length, NO_OUTPUT, limit);
  }

  /**
   * A run stopped by a cancel or pause request: the request wrote the state, so the run
   * builds on the state as it is now (never on its own older copy, which would undo a
   * request that came after), and a cancel wins over a pause.
   */
  async #stopOnRequest(run: ExecutionState, fatal: CancelledError | PausedError): Promise<ExecutionOutcome> {
    // Only a written state is asked to stop: the request was written over it.
    const current = await this.#options.states.get(run.invocationId);
    if (!current || current.state.owner !== run.owner || current.state.status !== 'running') {
      return { kind: 'fenced', reason: 'state changed while stopping' };
    }
    const journal = { journal: run.journal, journalLength: run.journalLength, journalStream: run.journalStream, journalSubject: run.journalSubject };
    if (current.state.cancelRequested || fatal instanceof CancelledError) {
      return this.#end({ ...current.state, ...journal, workflowState: run.workflowState, cancelRequested: true }, current.revision, 'cancelled', new CancelledError());
    }
    // The run's journal when the state can carry it whole; else the copy the state holds,
    // which a claim keeps whole while some of it may be in no stream (see mayHoldUnstreamed).
    const whole = run.journal.length === run.journalLength;
    return this.#pause({ ...current.state, ...(whole ? journal : {}), pauseRequested: true }, current.revision);
  }

  /**
   * Replaces the state at `revision`: one this run wrote (`own`), kept by
   * {@link #updateOwned}; or, for a run resumed unclaimed, the state it found (`found`), by
   * a plain compare-and-set: a suspended state names no run, so any change is another's.
   */
  async #replace(
    next: ExecutionState,
    revision: number,
    own: ExecutionState,
    found: ExecutionState | undefined,
    options?: StateWriteOptions,
  ): Promise<{ revision: number; requested?: ExecutionState }> {
    if (!found) return this.#updateOwned(next, revision, own, options);
    return { revision: await this.#options.states.update(next, revision, found, options) };
  }

  /**
   * Replaces the state this run owns. A cancel or pause request written meanwhile changes
   * the revision without taking the invocation from the run (its notice may be lost on the
   * way): then the write is made again on the state as it is, keeping the request's mark.
   * A request that finds the run ending is too late to change how it ends.
   * @throws FencedError when another run owns the invocation now.
   */
  async #updateOwned(
    next: ExecutionState,
    revision: number,
    previous: ExecutionState,
    options?: StateWriteOptions,
  ): Promise<{ revision: number; requested?: ExecutionState }> {
    const { states } = this.#options;
    try {
      return { revision: await states.update(next, revision, previous, options) };
    } catch (err) {
      if (!(err instanceof FencedError)) throw err;
      const current = await states.get(next.invocationId);
      if (!current || !sameRun(current.state, previous)) throw err;
      const marks = isTerminal(next.status) ? {} : { cancelRequested: current.state.cancelRequested, pauseRequested: current.state.pauseRequested };
      const requested = { ...next, ...marks };
      return { revision: await states.update(requested, current.revision, current.state, options), requested };
    }
  }

  /** Runs a write; a FencedError (someone else owns the invocation now) becomes the `fenced` outcome. */
  async #fenced<T>(write: () => Promise<T>): Promise<T | { kind: 'fenced'; reason: string }> {
    try {
      return await write();
    } catch (err) {
      if (!(err instanceof FencedError)) throw err;
      this.#observer.fenced();
      return { kind: 'fenced', reason: err.message };
    }
  }

  /**
   * Takes the partition key for an invocation of an exclusive workflow, or queues it behind
   * the invocation holding the key (its state then says `pending`).
   */
  async #takeKey(
    workflow: AnyWorkflow,
    state: ExecutionState,
    found: VersionedState | null,
  ): Promise<{ kind: 'granted'; values: Map<string, Uint8Array>; found: VersionedState } | { kind: 'queued'; outcome: ExecutionOutcome }> {
    const keyed = this.#options.keyed;
    if (!keyed) throw new TerminalError(`workflow ${workflow.name} is exclusive, and this executor has no keyed state store`);
    if (!found) {
      // Its state exists before it joins the key's line: the release that hands it the key
      // wakes an invocation that is there to be woken.
      const pending: ExecutionState = { ...state, status: 'pending', owner: '', attempt: 0 };
      const revision = await this.#fenced(() => this.#options.states.create(pending));
      if (typeof revision !== 'number') return { kind: 'queued', outcome: { kind: 'busy', state: pending } };
      found = { state: pending, revision };
    }
    const values = await keyed.acquire(state.partitionKey, create(KeyedWaiterSchema, { invocationId: state.invocationId, handler: state.handler }));
    if (values) return { kind: 'granted', values, found };
    this.#options.logger.info(
      { invocation_id: state.invocationId, partition_key: state.partitionKey },
      `Queued ${state.invocationId}: partition key ${state.partitionKey} is held by an earlier invocation`,
    );
    return { kind: 'queued', outcome: { kind: 'queued', state: found.state } };
  }

  /**
   * What follows an invocation's end, each step safe to repeat: its parent is woken, its
   * partition key passed on (exclusive workflows), and when cancelled, its children cancelled.
   */
  async #followUp(ended: ExecutionState): Promise<void> {
    const entries = ended.journal;
    const { invocations, keyed, workflows } = this.#options;
    if (ended.status === 'cancelled' && invocations) {
      // The final state may hold part of the journal, none when cancelled before it ran, or
      // a copy that lags the stream (see holdsWholeJournal): taken with the stream.
      const journal = withInline(entries, (await this.#options.journals.open(ended.invocationId)).entries).entries;
      for (const child of openChildren(journal)) await invocations.cancel(child);
    }
    if (keyed && workflows.find(ended.handler)?.options.exclusive) {
      const next = await keyed.release(ended);
      if (next && invocations) {
        await invocations.wake({ invocationId: next.invocationId, handler: next.handler, partitionKey: ended.partitionKey }, `${next.invocationId}:turn`);
      }
    }
    const parent = ended.parent;
    if (parent && parent.invocationId !== '' && invocations) {
      await invocations.wake(parent, `${ended.invocationId}:ended`);
    }
  }

  /** The state of an invocation nobody has taken up yet. */
  #initialState(command: Command, options: ExecuteOptions): ExecutionState {
    const startSequence = options.startSequence;
    const at = now();
    const state = create(ExecutionStateSchema, {
      invocationId: command.invocationId,
      handler: command.handler,
      service: command.service,
      partitionKey: command.partitionKey,
      input: command.args,
      status: 'running',
      currentStep: -1,
      attempt: 1,
      owner: this.#processorId,
      createdAtMs: command.submittedAtMs > 0n ? command.submittedAtMs : at,
      updatedAtMs: at,
      parentInvocationId: command.parentInvocationId,
      retryOf: command.retryOf,
      startSequence: startSequence ?? 0n,
      runSequence: startSequence ?? 0n,
      traceParent: options.trace?.traceparent ?? '',
      replySubject: command.replySubject,
      runDelivery: options.delivery ?? 0,
      // When it was taken up, also in a state first written when the run ends.
      statusHistory: [create(StatusChangeSchema, { status: 'running', atMs: at })],
      ...(command.parent ? { parent: command.parent } : {}),
    });
    return plainState(state);
  }

  /** Writes the final state (creating it if the invocation never had one) and announces it. */
  async #end(
    state: ExecutionState,
    revision: number | undefined,
    status: Extract<InvocationStatus, 'completed' | 'failed' | 'cancelled'>,
    error?: Error,
    how: {
      /** Journal appends still in flight, written beside the final state; rejects with a FencedError when one was refused. */
      appends?: Promise<void>;
      /** The invocation left no record but its state and index entry (see #runAndSettle). */
      alone?: boolean;
      /** The state `revision` holds, when not one this run wrote (a run resumed unclaimed). */
      previous?: ExecutionState;
    } = {},
  ): Promise<ExecutionOutcome> {
    const { states, logger, notifier, retention } = this.#options;
    const appends = how.appends ?? Promise.resolve();
    const at = now();
    const final: ExecutionState = {
      ...state,
      status: revision === undefined ? status : transition(state.status, status),
      currentStep: -1,
      currentStepType: '',
      owner: '',
      updatedAtMs: at,
      endedAtMs: at,
      error: error?.message ?? '',
      errorCode: error instanceof TerminalError ? error.errorCode : 0,
    };
    const { keyed, workflows } = this.#options;
    if (keyed && workflows.find(final.handler)?.options.exclusive) {
      // Only journaled changes may take effect: a run whose last appends are refused (it
      // lost the invocation) must not have applied them. A run that applied them and then
      // loses its final write changes nothing, as the run that takes over replays them.
      const journaled = await this.#fenced(() => appends);
      if (journaled) return journaled;
      await keyed.apply(final);
    }
    // Kept for its retention, then gone: by itself when it left nothing else, else by a purge.
    const retentionMs = retention ? this.#retentionMs(final.handler) : 0;
    const expires = how.alone === true && retentionMs > 0 && retention?.expiresStates === true ? { expiresInMs: retentionMs } : undefined;
    const written = await this.#fenced(() =>
      Promise.all([revision === undefined ? states.create(final, expires) : this.#replace(final, revision, state, how.previous, expires), appends]),
    );
    if ('kind' in written) return written;
    this.#observer.invocationEnded(final.handler, status, Number(at - final.createdAtMs) / 1000);
    if (status === 'completed') {
      logger.info({ invocation_id: final.invocationId, status }, `Execution completed successfully: ${final.invocationId}`);
    } else {
      logger.warn(
        { invocation_id: final.invocationId, status, error: final.error },
        `Execution ${status}: ${final.invocationId}: ${final.error}`,
      );
    }
    // Followed through before it is announced: whoever is told of the end finds the next
    // invocation of its key under way and its parent woken.
    await this.#followUp(final);
    notifier?.announce(final);
    const removal = expires ? Promise.resolve() : this.#scheduleRemoval(final, retentionMs);
    removal.catch(() => undefined); // its failure is the caller's to see, not an unhandled rejection
    return { kind: 'ended', state: final, removal };
  }

  /** Schedules the removal of an ended invocation once its retention has passed. */
  async #scheduleRemoval(ended: ExecutionState, retentionMs = this.#retentionMs(ended.handler)): Promise<void> {
    const { retention } = this.#options;
    if (!retention || retentionMs === 0) return;
    await retention.schedulePurge(ended, Number(ended.endedAtMs) + retentionMs, retentionMs);
  }

  /** How long an ended invocation of the handler is kept, ms; 0 keeps it. */
  #retentionMs(handler: string): number {
    return retentionOf(this.#options.workflows.find(handler), this.#options.retentionMs ?? DEFAULT_RETENTION_MS);
  }

  /**
   * A purge command: removes every record of an ended invocation whose retention has
   * passed. A live invocation is left alone; one not due yet, or still needed by its
   * running parent, gets its purge scheduled again.
   */
  async #purge(command: Command): Promise<ExecutionOutcome> {
    const { retention, states, logger } = this.#options;
    if (!retention) return { kind: 'dropped', reason: 'this executor keeps ended invocations' };
    const found = await states.get(command.invocationId);
    if (!found) return { kind: 'dropped', reason: 'removed already' };
    const { state } = found;
    if (!isTerminal(state.status)) return { kind: 'dropped', reason: `it is ${state.status}: only ended invocations are removed` };
    const retentionMs = Number(command.retentionMs);
    const due = Number(state.endedAtMs) + retentionMs;
    const early = due > Date.now();
    const kept = early ? 'its retention has not passed yet' : await whyKept(state, states);
    if (kept) {
      await retention.schedulePurge(state, early ? due : Date.now() + Math.max(retentionMs, PURGE_RECHECK_MS), retentionMs);
      return { kind: 'kept', reason: kept };
    }
    await retention.purge(state);
    logger.info({ invocation_id: state.invocationId, status: state.status }, `Removed ${state.invocationId} (${state.status}): its retention has passed`);
    return { kind: 'purged', state };
  }

  /** Parks the invocation until a resume; it holds no consumer slot meanwhile. */
  async #pause(state: ExecutionState, revision: number): Promise<ExecutionOutcome> {
    const paused: ExecutionState = { ...state, status: transition(state.status, 'paused'), pauseRequested: false, owner: '', attempt: 0, updatedAtMs: now() };
    const written = await this.#fenced(() => this.#options.states.update(paused, revision, state));
    if (typeof written !== 'number') return written;
    this.#options.logger.info({ invocation_id: state.invocationId }, `Paused ${state.invocationId}`);
    return { kind: 'paused', state: paused };
  }

  /** Records that the invocation waits; whatever wakes it sends a resume command. */
  async #suspend(
    state: ExecutionState,
    revision: number | undefined,
    steps: number,
    entries: readonly JournalEntry[],
    lastSequence: number,
    /** The state `revision` holds, when not one this run wrote (a run resumed unclaimed). */
    previous?: ExecutionState,
    /** The state carries outcomes no journal stream has (see #suspendsWhole): it names no stream. */
    heldAlone = false,
  ): Promise<ExecutionOutcome> {
    const journal = this.#journalFields(state.invocationId, entries);
    const waiting: ExecutionState = {
      ...state,
      ...journal,
      ...(heldAlone ? { journalStream: '', journalSubject: '' } : {}),
      // With the whole journal inline, the run that resumes it reads no journal.
      journalLastSequence: journal.journal?.length === entries.length ? BigInt(lastSequence) : 0n,
      status: transition(state.status, 'suspended'),
      owner: '',
      attempt: 0,
      currentStep: steps - 1,
      currentStepType: '',
      updatedAtMs: now(),
    };
    const written = await this.#fenced(async (): Promise<{ revision: number; requested?: ExecutionState }> =>
      revision === undefined ? { revision: await this.#options.states.create(waiting) } : this.#replace(waiting, revision, state, previous),
    );
    if ('kind' in written) return written;
    // A request whose notice did not reach the run is acted on now, as at any suspension.
    const requested = written.requested;
    if (requested?.cancelRequested) return this.#end(requested, written.revision, 'cancelled', new CancelledError());
    if (requested?.pauseRequested) return this.#pause(requested, written.revision);
    this.#options.logger.info({ invocation_id: state.invocationId }, `Suspended ${state.invocationId}: waiting on a timer or an awakeable`);
    return { kind: 'suspended', state: waiting };
  }

  /**
   * After a stop, gives the attempt back: a processor that stopped cleanly did not crash,
   * so the next run should not count against the invocation. Best effort.
   */
  async #release(state: ExecutionState, owned: OwnedState): Promise<void> {
    try {
      const revision = await owned.settle();
      if (revision === undefined) return; // never written: nothing to give back
      await this.#options.states.update({ ...state, attempt: Math.max(0, state.attempt - 1), owner: '' }, revision, state);
    } catch (err) {
      this.#options.logger.debug({ err, invocation_id: state.invocationId }, 'Could not release the invocation');
    }
  }

  /** The journal copied into the final state, up to the inline limit, and where all of it is. */
  #journalFields(id: string, entries: readonly JournalEntry[]): Partial<ExecutionState> {
    const limit = this.#options.journalInlineBytes ?? DEFAULT_INLINE_BYTES;
    const sorted = [...entries].sort((a, b) => a.stepNumber - b.stepNumber);
    // Each entry encoded only when the bound of them all is over the limit.
    let inline = sorted;
    if (sorted.reduce((sum, entry) => sum + entryBytesAtMost(entry) + 4, 0) > limit) {
      inline = [];
      let bytes = 0;
      for (const entry of sorted) {
        bytes += toBinary(JournalEntrySchema, entry).length + 4;
        if (bytes > limit) break;
        inline.push(entry);
      }
    }
    const location = this.#options.journals.location(id);
    return {
      journal: inline,
      journalLength: sorted.length,
      journalStream: location.stream,
      journalSubject: location.subject,
    };
  }
}

/** The output of a state that has none yet (a suspension's). */
const NO_OUTPUT = new Uint8Array();

/** Room in a state for what is not counted by {@link stateBytes}, bytes. */
const STATE_FIELDS_ROOM = 16 * 1024;

/** A generous bound on the bytes of a final state with its inline journal. */
function stateBytes(state: ExecutionState, output: Uint8Array): number {
  let bytes = STATE_FIELDS_ROOM + state.input.length + output.length;
  // Up to three UTF-8 bytes per UTF-16 unit of a string.
  for (const entry of state.journal) bytes += entryBytesAtMost(entry);
  for (const value of Object.values(state.workflowState)) bytes += value.length + 64;
  for (const value of Object.values(state.keyedStateChanges)) bytes += value.length + 64;
  return bytes;
}

/**
 * The bytes of a final state without its inline journal (which the store leaves out when it
 * must) when they are over `limit`, else undefined: estimated, and encoded only when the
 * estimate comes near the limit (the estimate leaves out keys and short fields).
 */
function overWithoutJournal(state: ExecutionState, limit: number): number | undefined {
  const withoutJournal = { ...state, journal: [], journalLastSequence: 0n };
  if (stateBytes(withoutJournal, state.currentState) <= limit / 2) return undefined;
  const bytes = toBinary(ExecutionStateSchema, withoutJournal).length;
  return bytes > limit ? bytes : undefined;
}

/** A workflow's output encoded for its final state, or why it does not encode. */
function encodeOutput(workflow: AnyWorkflow, output: unknown): { bytes?: Uint8Array; error?: unknown } {
  try {
    return { bytes: workflow.output.encode(output) };
  } catch (error) {
    return { error };
  }
}

/** `make()`'s value, made on the first call only. */
function lazy<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

function now(): bigint {
  return BigInt(Date.now());
}


/** The trace a run continues: the one its command carried, else the one that started the invocation. */
function runTrace(trace: Readonly<Record<string, string>> | undefined, state: ExecutionState): { trace?: Readonly<Record<string, string>> } {
  if (trace?.traceparent) return { trace };
  return state.traceParent ? { trace: { traceparent: state.traceParent } } : {};
}

/** True when `current` is still the run `previous` was written by: same owner, attempt and command. */
function sameRun(current: ExecutionState, previous: ExecutionState): boolean {
  return (
    current.status === previous.status &&
    current.owner === previous.owner &&
    current.attempt === previous.attempt &&
    current.runSequence === previous.runSequence &&
    !isTerminal(current.status)
  );
}

/** True when a command is not the one the running invocation was taken up from. */
function isAnotherRun(state: ExecutionState, sequence: bigint | undefined): boolean {
  return sequence !== undefined && state.runSequence !== 0n && state.runSequence !== sequence;
}

/** True when a start command is not the one the invocation was created from. */
function isDuplicateStart(state: ExecutionState, startSequence: bigint | undefined): boolean {
  return startSequence !== undefined && state.startSequence !== 0n && state.startSequence !== startSequence;
}

/** The final state's record of what an invocation changed in its key's shared state. */
function keyedChangeFields(changes: ReadonlyMap<string, Uint8Array | null>): Partial<ExecutionState> {
  const keyedStateChanges: Record<string, Uint8Array> = {};
  const keyedStateCleared: string[] = [];
  for (const [key, value] of changes) {
    if (value === null) keyedStateCleared.push(key);
    else keyedStateChanges[key] = value;
  }
  return { keyedStateChanges, keyedStateCleared };
}

/** The journal a state holds inline when it was written at a suspension, for `JournalStore.open`. */
function knownJournal(state: ExecutionState): { known?: KnownJournal } {
  if (state.status !== 'suspended' || state.journal.length !== state.journalLength) return {};
  // Held alone: written so by a suspension (see #suspendsWhole), which names no journal stream.
  if (state.journalStream === '' && state.journalLength > 0) return { known: { entries: state.journal, lastSequence: 0, unstreamed: state.journal.length } };
  return state.journalLastSequence > 0n ? { known: { entries: state.journal, lastSequence: Number(state.journalLastSequence) } } : {};
}

/**
 * True when a state's inline journal may hold entries no stream has: a suspension that held
 * them alone (it names no journal stream), and a claim or other copy of it, which names the
 * stream again (`journal_last_sequence` stays 0: a suspension whose entries were all
 * appended records where the last one is).
 */
/** True when nothing of a run's journal is in a stream: none read, none appended, no claim mark. */
function nothingStreamed(journal: JournalLog, ctx: DurableContext): boolean {
  return journal.lastSequence === 0 && ctx.unappended.length === ctx.entries.length;
}

function mayHoldUnstreamed(state: ExecutionState): boolean {
  return state.journalLastSequence === 0n && state.journalLength > 0 && state.journal.length === state.journalLength;
}


/**
 * The revision of the state a run owns. A first delivery starts its run before its state is
 * written (until then the command in the stream is the invocation's only record): the state
 * is created when the run suspends or ends, when the workflow exposes the invocation to
 * others (an awakeable, a send, a child), before its first journal append, or once the run
 * has gone on for {@link UNWRITTEN_STATE_MS}, whichever comes first. That create is the run's fence: it
 * fails if the invocation exists.
 */
class OwnedState {
  #revision: number | undefined;
  #creating: Promise<number> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The run has ended, suspended or lost the invocation: what it writes from now on is its executor's. */
  #closed = false;

  private constructor(
    private readonly create: (() => Promise<number>) | undefined,
    revision: number | undefined,
    /** The state a run resumed unclaimed found: what `create` (its claim) replaces. */
    private readonly found?: VersionedState,
  ) {
    this.#revision = revision;
    if (create) this.#timer = setTimeout(() => void this.write().catch(() => undefined), UNWRITTEN_STATE_MS);
  }

  /** A state the run has written already. */
  static written(revision: number): OwnedState {
    return new OwnedState(undefined, revision);
  }

  /** A state to write later with `create`. */
  static unwritten(create: () => Promise<number>): OwnedState {
    return new OwnedState(create, undefined);
  }

  /** A suspended state taken up without a claim: `claim` writes it later, over `found`. */
  static unclaimed(claim: () => Promise<number>, found: VersionedState): OwnedState {
    return new OwnedState(claim, undefined, found);
  }

  /**
   * What the run's next write replaces, once settled: the revision it wrote last, or,
   * resumed unclaimed with nothing written, the revision and state it found (`previous`);
   * no revision when there is no state yet.
   */
  base(): { revision: number | undefined; previous?: ExecutionState } {
    if (this.#revision === undefined && this.found) return { revision: this.found.revision, previous: this.found.state };
    return { revision: this.#revision };
  }

  /** True when the run resumed a suspended state without claiming it yet. */
  get isUnclaimed(): boolean {
    return this.found !== undefined && this.#revision === undefined && this.#creating === undefined;
  }

  /** True when the run started with its state written. */
  get isWritten(): boolean {
    return this.#revision !== undefined && this.#creating === undefined;
  }

  /** Creates the state now, once; resolves when it is written. */
  async write(): Promise<void> {
    if (!this.create) return;
    // A branch of the workflow left running after the run settled (a send never awaited) writes nothing.
    if (this.#closed && this.#creating === undefined) throw new InterruptedError('the run is over: its state is written by its end');
    clearTimeout(this.#timer);
    this.#creating ??= this.create();
    this.#revision = await this.#creating;
  }

  /**
   * No state will be written unless one is in flight: the revision once that has landed,
   * undefined when none was written. Rejects as that write did.
   */
  async settle(): Promise<number | undefined> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#creating) this.#revision = await this.#creating;
    return this.#revision;
  }

  /** The run lost the invocation: no state is written for it. */
  abandon(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
