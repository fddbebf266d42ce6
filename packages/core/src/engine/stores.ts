/**
 * What the engine needs from storage, as interfaces: the processor backs them with
 * JetStream, local mode and unit tests with memory. Every write is fenced, so a writer
 * that lost ownership of an invocation learns it on its next write and stops.
 */
import type { Command, ExecutionState, JournalEntry, KeyedState, KeyedWaiter } from '../gen/durable/durable_pb.js';

/** An execution state with the revision it was read at, for compare-and-set. */
export interface VersionedState {
  state: ExecutionState;
  revision: number;
}

/** How a state is written. */
export interface StateWriteOptions {
  /**
   * The state, and the index entry that follows it, go by themselves this long after the
   * write, ms: for an ended invocation that left no other record, when the store can
   * (see {@link RetentionStore.expiresStates}).
   */
  expiresInMs?: number;
}

/** One ExecutionState per invocation, written only by compare-and-set. */
export interface StateStore {
  /** The state of an invocation, or null when it has none. */
  get(invocationId: string): Promise<VersionedState | null>;
  /**
   * Writes the first state of an invocation; returns its revision.
   * @throws FencedError when the invocation already has a state.
   */
  create(state: ExecutionState, options?: StateWriteOptions): Promise<number>;
  /**
   * Replaces the state if it is still at `revision`; returns the new revision. `previous`,
   * the state at `revision` when the caller has it, lets records that follow the state
   * (the execution index) change without reading it.
   * @throws FencedError when someone else wrote it since.
   */
  update(state: ExecutionState, revision: number, previous?: ExecutionState, options?: StateWriteOptions): Promise<number>;
}

/** The journal of one invocation, read in full and open for fenced appends. */
export interface JournalLog {
  /** The entries read when the log was opened, in the order they were written. */
  readonly entries: readonly JournalEntry[];
  /** Where the log's last entry is in its stream (0 when empty), for a later {@link JournalStore.open} with `known`. */
  readonly lastSequence: number;
  /** Bytes one entry may take at most (the server's max payload); undefined when there is no limit. */
  readonly maxEntryBytes?: number | undefined;
  /**
   * How many of the last {@link entries} are in no journal stream yet: a suspension's state
   * held them alone. The run appends them before anything of its own. @default 0
   */
  readonly unstreamed?: number;
  /**
   * Appends one entry if nobody else appended since this log's last read or write.
   * @throws FencedError otherwise.
   * @throws JournalEntryTooLargeError when the entry is over {@link maxEntryBytes}.
   */
  append(entry: JournalEntry): Promise<void>;
}

/** A whole journal the caller already holds (inline in a suspended state), and its last entry's sequence. */
export interface KnownJournal {
  entries: readonly JournalEntry[];
  lastSequence: number;
  /** How many of the last entries are in no journal stream yet (see {@link JournalLog.unstreamed}). @default 0 */
  unstreamed?: number;
}

/**
 * True when a state's inline journal is the invocation's whole journal: a completed run's
 * final state that carries all of it. Any other state's copy may lag the stream (a claim
 * keeps what its suspension held alone, and states copied from it keep that copy while the
 * run appends more) or hold entries the stream lacks: readers take it with the stream
 * ({@link withInline}).
 */
export function holdsWholeJournal(state: ExecutionState): boolean {
  return state.status === 'completed' && state.journal.length === state.journalLength;
}

/**
 * A journal from the entries a state holds inline, whole when it was written, and those the
 * stream holds: the inline ones, then the stream's others. A run appends the stream's part
 * of a journal in order, so the inline entries the stream lacks come after every other.
 */
export function withInline(inline: readonly JournalEntry[], streamed: readonly JournalEntry[]): { entries: JournalEntry[]; unstreamed: number } {
  const key = (entry: JournalEntry): string => `${entry.stepNumber}/${entry.phase}`;
  const inStream = new Set(streamed.map(key));
  const inState = new Set(inline.map(key));
  const missing = inline.filter((entry) => !inStream.has(key(entry)));
  return {
    entries: [...inline.filter((entry) => inStream.has(key(entry))), ...streamed.filter((entry) => !inState.has(key(entry))), ...missing],
    unstreamed: missing.length,
  };
}

/** Bytes a journal entry's fields other than its four of variable length take at most, encoded: five varints and four length prefixes, with their tags. */
const ENTRY_FIXED_BYTES = 5 * 11 + 4 * 6;

/**
 * A bound on the bytes of an entry encoded, without encoding it: its byte fields, up to
 * three UTF-8 bytes per UTF-16 unit of its strings, the rest at their largest, and any
 * fields it came with that this version does not know.
 */
export function entryBytesAtMost(entry: JournalEntry): number {
  let bytes = entry.request.length + entry.response.length + 3 * (entry.stepType.length + entry.error.length) + ENTRY_FIXED_BYTES;
  // Fields a newer version wrote, written back as they came: each its bytes and a tag.
  for (const field of entry.$unknown ?? []) bytes += field.data.length + 5;
  return bytes;
}

/** How a journal is opened. */
export interface OpenJournalOptions {
  /** The caller has just created the invocation: the journal is empty and nothing is read. */
  fresh?: boolean;
  /** The caller holds the whole journal already. */
  known?: KnownJournal;
  /**
   * The caller takes the invocation over from a run that may still be alive (stalled, not
   * dead): after reading, a claim mark is written, fenced on the last entry read, so that
   * the earlier run's next append fails. Marks are never returned as entries.
   */
  claim?: string;
  /**
   * The journal the invocation's state holds inline, whole when written: entries of it the
   * stream lacks (a suspension's state held them alone) are added to what is read, and
   * counted in {@link JournalLog.unstreamed}. Not with `known` or `fresh`.
   */
  inline?: readonly JournalEntry[];
}

/** Where journals live. */
export interface JournalStore {
  /**
   * Reads the journal of an invocation. With `fresh`, the caller knows it is empty (it has
   * just created the invocation's state) and nothing is read; with `known`, it holds the
   * whole journal already. Either way, appends stay fenced: a wrong guess is a FencedError.
   */
  open(invocationId: string, options?: OpenJournalOptions): Promise<JournalLog>;
  /** Where the entries of an invocation live, for the state's `journal_stream`/`journal_subject`. */
  location(invocationId: string): { stream: string; subject: string };
}

/** Told the final state of every invocation that ends, so waiting clients learn of it. */
export interface ResultNotifier {
  announce(state: ExecutionState): void;
}

/** A durable timer: wakes a suspended invocation once its sleep is due. */
export interface TimerRequest {
  invocationId: string;
  handler: string;
  partitionKey: string;
  /** The step the timer completes. */
  step: number;
  /** Unix ms. */
  wakeAtMs: number;
}

/** Keeps durable timers outside the processor's memory. */
export interface TimerScheduler {
  /** Records a timer. A duplicate is harmless: waking an invocation early just suspends it again. */
  schedule(timer: TimerRequest): Promise<void>;
}

/** How an awakeable was settled. */
export type AwakeableOutcome = { ok: true; value: Uint8Array } | { ok: false; error: string };

/** True when two outcomes are the same: the same value, or the same rejection reason. */
export function sameOutcome(stored: AwakeableOutcome | null, outcome: AwakeableOutcome): boolean {
  if (!stored || stored.ok !== outcome.ok) return false;
  return stored.ok && outcome.ok ? Buffer.compare(stored.value, outcome.value) === 0 : !stored.ok && !outcome.ok && stored.error === outcome.error;
}

/**
 * Awakeables by ID, one record each: O(1) to find, and settled at most once, so a second,
 * different resolution is a conflict and the first value stands.
 */
export interface AwakeableStore {
  /** Records a new awaited awakeable; creating one that exists is a no-op. */
  create(awakeableId: string, invocationId: string): Promise<void>;
  /** The outcome when settled, null while pending. */
  outcome(awakeableId: string): Promise<AwakeableOutcome | null>;
  /**
   * Settles an awakeable once; returns its invocation. One not recorded yet is settled in
   * advance when `ownerIsLive` says its invocation runs (a workflow hands the ID out first).
   * Settling it again with the same outcome returns its invocation too: a retry, whose
   * first attempt may have died before the wake-up that follows.
   * @throws AwakeableNotFoundError, ConflictError (settled before with another outcome: the first stands)
   */
  settle(awakeableId: string, outcome: AwakeableOutcome, ownerIsLive?: OwnerIsLive): Promise<string>;
}

/** Whether an invocation exists and has not ended. */
export type OwnerIsLive = (invocationId: string) => Promise<boolean> | boolean;

/**
 * How ended invocations go once their retention has passed: a purge command is scheduled
 * for each, routed like any command of its invocation, and removes every record of it.
 */
export interface RetentionStore {
  /**
   * True when a state written with `expiresInMs` goes by itself with its index entry: an
   * ended invocation that left no other record then needs no purge command.
   */
  readonly expiresStates?: boolean;
  /** Schedules the purge of an ended invocation at `dueAtMs`; scheduling it again replaces it. */
  schedulePurge(target: WakeTarget, dueAtMs: number, retentionMs: number): Promise<void>;
  /**
   * Removes every record of an ended invocation: its journal, timers, awakeables, index
   * entry and queue place first, its state last, so that a purge cut short is repeated
   * whole and a purge repeated after the state went removes nothing of a later invocation
   * that took the same ID. Safe to repeat.
   */
  purge(state: ExecutionState): Promise<void>;
}

/** The invocation a wake-up is for: enough to route a resume command to it. */
export interface WakeTarget {
  invocationId: string;
  handler: string;
  partitionKey: string;
}

/**
 * How a running invocation reaches other invocations: starts new ones (`ctx.send`,
 * `ctx.invoke`), wakes a suspended one, cancels one. The processor backs it with the
 * COMMANDS stream (and its scheduled timers), local mode with an in-process queue.
 */
export interface InvocationGateway {
  /**
   * Queues a start command, now or after `delayMs`. Queuing the same invocation ID again
   * starts nothing new: at most one invocation exists per ID.
   */
  start(command: Command, options?: { delayMs?: number }): Promise<void>;
  /** Queues a resume command; `messageId` deduplicates wake-ups for the same reason. */
  wake(target: WakeTarget, messageId: string): Promise<void>;
  /** Cancels an invocation (and its children); one that has ended or is unknown is left alone. */
  cancel(invocationId: string): Promise<void>;
}

/**
 * The shared state and the lock of each partition key for workflows declared exclusive:
 * one invocation holds a key at a time (also while suspended or paused); the others wait
 * in order. Changes an invocation made are applied once it has ended, exactly once.
 */
export interface KeyedStateStore {
  /**
   * Takes the key for the invocation (a no-op when it holds it already) and returns the
   * key's values; or, when another invocation holds it, queues this one and returns null.
   */
  acquire(partitionKey: string, waiter: KeyedWaiter): Promise<Map<string, Uint8Array> | null>;
  /**
   * Applies an ending invocation's changes (before its final state is written, so whoever
   * sees it ended reads them); the same however often it is called for that invocation.
   */
  apply(state: ExecutionState): Promise<void>;
  /**
   * For an ended invocation: applies its changes (once), hands the key to the next waiter
   * and returns that waiter, who must be woken. Safe to call again for the same state.
   */
  release(state: ExecutionState): Promise<KeyedWaiter | undefined>;
  /** The values of a key, for tools. */
  values(partitionKey: string): Promise<Map<string, Uint8Array>>;
}

/** A partition key's record with the revision it was read at, for compare-and-set (0: none yet). */
export interface VersionedKeyedState {
  record: KeyedState;
  revision: number;
}

/**
 * The records of partition keys (values, holder, last hand-over), one per key, each
 * written only by compare-and-set. Half of a {@link KeyedStateStore}, see
 * `queued-keyed-state-store.ts`.
 */
export interface KeyedRecordStore {
  /** The key's record as last written (a read fit to decide from); an empty one at revision 0 when it has none. */
  read(partitionKey: string): Promise<VersionedKeyedState>;
  /** Writes the record if it is still at `revision`; returns the new revision, or undefined when someone wrote it since. */
  write(partitionKey: string, record: KeyedState, revision: number): Promise<number | undefined>;
}

/** A waiter in a key's queue and its place: places grow with each waiter added. */
export interface QueuedWaiter {
  place: bigint;
  waiter: KeyedWaiter;
}

/**
 * The queues of partition keys: one entry per waiting invocation, oldest first, so that no
 * record grows with a queue. Half of a {@link KeyedStateStore}.
 */
export interface KeyedQueue {
  /** Adds the waiter at the end of the key's queue unless it is in it already; returns its place either way. */
  enqueue(partitionKey: string, waiter: KeyedWaiter): Promise<bigint>;
  /** The waiter with the lowest place up to `upTo`, `except` left out (a read fit to decide from). */
  oldest(partitionKey: string, upTo: bigint, except: string): Promise<QueuedWaiter | undefined>;
  /** The invocation's place in the key's queue, undefined when it is not in it (a read fit to decide from). */
  place(partitionKey: string, invocationId: string): Promise<bigint | undefined>;
  /** Takes the invocation out of the key's queue; nothing happens when it is not in it. */
  remove(partitionKey: string, invocationId: string): Promise<void>;
}
