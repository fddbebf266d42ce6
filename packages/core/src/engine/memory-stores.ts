/**
 * In-memory stores with the same fencing as the JetStream ones: for local mode and the
 * replay engine's unit tests.
 */
import { clone } from '@bufbuild/protobuf';
import { withStatusHistory } from './lifecycle.js';
import {
  ExecutionStateSchema,
  JournalEntrySchema,
  type ExecutionState,
  type JournalEntry,
  KeyedStateSchema,
  type KeyedState,
  type KeyedWaiter,
} from '../gen/durable/durable_pb.js';
import { AwakeableNotFoundError, ConflictError, FencedError } from '../errors.js';
import { awakeableInvocation } from './durable-context.js';
import { emptyKeyedState } from './keyed-state.js';
import { QueuedKeyedStateStore, type QueuedKeyedStateStoreOptions } from './queued-keyed-state-store.js';
import { plainState } from './plain-state.js';
import {
  sameOutcome,
  withInline,
  type AwakeableOutcome,
  type AwakeableStore,
  type JournalLog,
  type JournalStore,
  type KeyedQueue,
  type KeyedRecordStore,
  type OpenJournalOptions,
  type QueuedWaiter,
  type OwnerIsLive,
  type StateStore,
  type VersionedKeyedState,
  type VersionedState,
} from './stores.js';

/** A StateStore in memory. */
export class MemoryStateStore implements StateStore {
  readonly #states = new Map<string, VersionedState>();
  #revision = 0;

  async get(invocationId: string): Promise<VersionedState | null> {
    const found = this.#states.get(invocationId);
    return found ? { state: plainState(clone(ExecutionStateSchema, found.state)), revision: found.revision } : null;
  }

  async create(state: ExecutionState): Promise<number> {
    if (this.#states.has(state.invocationId)) {
      throw new FencedError(`invocation ${state.invocationId} already has a state`);
    }
    return this.#put(withStatusHistory(state));
  }

  async update(state: ExecutionState, revision: number): Promise<number> {
    const current = this.#states.get(state.invocationId);
    if (!current || current.revision !== revision) {
      throw new FencedError(`state of ${state.invocationId} changed since revision ${revision}`);
    }
    return this.#put(withStatusHistory(state, current.state));
  }

  /** Every state, for local mode's queries. */
  all(): ExecutionState[] {
    return [...this.#states.values()].map((v) => clone(ExecutionStateSchema, v.state));
  }

  #put(state: ExecutionState): number {
    const revision = ++this.#revision;
    this.#states.set(state.invocationId, { state: clone(ExecutionStateSchema, state), revision });
    return revision;
  }
}

/** A JournalStore in memory; `appends` counts durable writes, for tests. */
export class MemoryJournalStore implements JournalStore {
  readonly #journals = new Map<string, JournalEntry[]>();
  /** Claims per journal: a log opened before the latest claim may not append. */
  readonly #claims = new Map<string, number>();
  appends = 0;

  /** Sequences are entry counts: the last entry's sequence is the journal's length. */
  async open(invocationId: string, options: OpenJournalOptions = {}): Promise<JournalLog> {
    const stored = options.known?.entries ?? this.#journals.get(invocationId) ?? [];
    let expectedLength = options.known?.lastSequence ?? stored.length;
    const read = options.inline && !options.known ? withInline(options.inline, stored) : { entries: stored, unstreamed: options.known?.unstreamed ?? 0 };
    const entries = read.entries.map((e) => clone(JournalEntrySchema, e));
    if (options.claim !== undefined) this.#claims.set(invocationId, (this.#claims.get(invocationId) ?? 0) + 1);
    const claim = this.#claims.get(invocationId) ?? 0;
    return {
      entries,
      unstreamed: read.unstreamed,
      get lastSequence() {
        return expectedLength;
      },
      append: async (entry: JournalEntry) => {
        const current = this.#journals.get(invocationId) ?? [];
        if ((this.#claims.get(invocationId) ?? 0) !== claim) throw new FencedError(`journal of ${invocationId} was claimed by another run`);
        if (current.length !== expectedLength) {
          throw new FencedError(`journal of ${invocationId} has ${current.length} entries, expected ${expectedLength}`);
        }
        current.push(clone(JournalEntrySchema, entry));
        this.#journals.set(invocationId, current);
        expectedLength = current.length;
        this.appends++;
      },
    };
  }

  location(invocationId: string): { stream: string; subject: string } {
    return { stream: 'memory', subject: invocationId };
  }

  /** The stored entries of an invocation. */
  entries(invocationId: string): readonly JournalEntry[] {
    return this.#journals.get(invocationId) ?? [];
  }
}

/** An AwakeableStore in memory. */
export class MemoryAwakeableStore implements AwakeableStore {
  readonly #records = new Map<string, { invocationId: string; outcome: AwakeableOutcome | null }>();

  async create(awakeableId: string, invocationId: string): Promise<void> {
    if (!this.#records.has(awakeableId)) this.#records.set(awakeableId, { invocationId, outcome: null });
  }

  async outcome(awakeableId: string): Promise<AwakeableOutcome | null> {
    return this.#records.get(awakeableId)?.outcome ?? null;
  }

  /**
   * Settles an awakeable once; returns its invocation. One not recorded yet is settled in
   * advance when `ownerIsLive` says its invocation runs (it hands the ID out first). The
   * same outcome again is a retry and returns its invocation.
   * @throws AwakeableNotFoundError, ConflictError (another outcome)
   */
  async settle(awakeableId: string, outcome: AwakeableOutcome, ownerIsLive: OwnerIsLive = () => false): Promise<string> {
    const owner = awakeableInvocation(awakeableId);
    const record = this.#records.get(awakeableId) ?? (owner !== undefined && (await ownerIsLive(owner)) ? { invocationId: owner, outcome: null } : undefined);
    if (!record) throw new AwakeableNotFoundError(awakeableId);
    if (record.outcome && sameOutcome(record.outcome, outcome)) return record.invocationId;
    if (record.outcome) throw new ConflictError(`awakeable ${awakeableId} is already settled`);
    record.outcome = outcome;
    this.#records.set(awakeableId, record);
    return record.invocationId;
  }
}

/**
 * A KeyedStateStore in memory: the same algorithm as on JetStream, on a record map and an
 * array per key's queue. `records` lets a test start from a record as an older version wrote it.
 */
export class MemoryKeyedStateStore extends QueuedKeyedStateStore {
  constructor(options: QueuedKeyedStateStoreOptions & { records?: MemoryKeyedRecordStore } = {}) {
    super(options.records ?? new MemoryKeyedRecordStore(), new MemoryKeyedQueue(), options);
  }
}

/** The records of partition keys in memory, by compare-and-set. */
export class MemoryKeyedRecordStore implements KeyedRecordStore {
  readonly #records = new Map<string, VersionedKeyedState>();

  async read(partitionKey: string): Promise<VersionedKeyedState> {
    const found = this.#records.get(partitionKey);
    return found ? { record: clone(KeyedStateSchema, found.record), revision: found.revision } : { record: emptyKeyedState(), revision: 0 };
  }

  async write(partitionKey: string, record: KeyedState, revision: number): Promise<number | undefined> {
    if ((this.#records.get(partitionKey)?.revision ?? 0) !== revision) return undefined;
    this.#records.set(partitionKey, { record: clone(KeyedStateSchema, record), revision: revision + 1 });
    return revision + 1;
  }
}

/** The queues of partition keys in memory: an array per key, places counted over all keys. */
class MemoryKeyedQueue implements KeyedQueue {
  readonly #queues = new Map<string, QueuedWaiter[]>();
  #last = 0n;

  async enqueue(partitionKey: string, waiter: KeyedWaiter): Promise<bigint> {
    const queue = this.#queues.get(partitionKey) ?? [];
    const found = await this.place(partitionKey, waiter.invocationId);
    if (found !== undefined) return found;
    queue.push({ place: ++this.#last, waiter });
    this.#queues.set(partitionKey, queue);
    return this.#last;
  }

  async oldest(partitionKey: string, upTo: bigint, except: string): Promise<QueuedWaiter | undefined> {
    const first = (this.#queues.get(partitionKey) ?? []).find((q) => q.waiter.invocationId !== except);
    return first && first.place <= upTo ? first : undefined;
  }

  async place(partitionKey: string, invocationId: string): Promise<bigint | undefined> {
    return this.#queues.get(partitionKey)?.find((q) => q.waiter.invocationId === invocationId)?.place;
  }

  async remove(partitionKey: string, invocationId: string): Promise<void> {
    const queue = (this.#queues.get(partitionKey) ?? []).filter((q) => q.waiter.invocationId !== invocationId);
    if (queue.length === 0) this.#queues.delete(partitionKey);
    else this.#queues.set(partitionKey, queue);
  }
}
