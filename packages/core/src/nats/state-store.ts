/**
 * The EXECUTION_STATE bucket as a {@link StateStore}: one protobuf ExecutionState per
 * invocation ID, written only by create or compare-and-set on the key's revision. Given an
 * {@link ExecutionIndex}, every successful write also updates the index (in the background
 * unless the index says otherwise). A write with `expiresInMs` gives the record and its
 * index entry a per-message TTL: the server removes both then, leaving no marker.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { JetStreamApiError, JetStreamApiCodes } from '@nats-io/jetstream';
import { Bucket, type KV } from '@nats-io/kv';
import { ExecutionStateSchema, type ExecutionState } from '../gen/durable/durable_pb.js';
import { parseDuration } from '../config.js';
import { DecodeError, FencedError } from '../errors.js';
import { isTerminal, withStatusHistory } from '../engine/lifecycle.js';
import { plainState } from '../engine/plain-state.js';
import type { StateStore, StateWriteOptions, VersionedState } from '../engine/stores.js';
import type { ExecutionIndex } from './execution-index.js';
import { isTransient, writeOnce } from './retry.js';

/** Room left under the server's max_payload for a write's headers and subject, bytes. */
const HEADER_ROOM = 4 * 1024;

/** A StateStore on a JetStream key-value bucket. */
export class NatsStateStore implements StateStore {
  /**
   * @param index kept in line with every write; without it the index is not maintained
   *   (tools that only read states need none).
   */
  constructor(
    private readonly kv: KV,
    private readonly index?: ExecutionIndex,
    /** The most bytes one write may carry (the server's max_payload), when known. */
    private readonly maxBytes: () => number | undefined = () => undefined,
    /**
     * The bucket opened for reads from its stream leader, when `kv` reads with direct gets:
     * asked again when they find no state, as a replica behind the latest write finds none
     * for an invocation whose first write was its last (a run that ended without pausing).
     */
    private readonly leader?: KV,
  ) {}

  async get(invocationId: string): Promise<VersionedState | null> {
    const found = await this.#read(this.kv, invocationId);
    if (found || !this.leader) return found;
    try {
      return await this.#read(this.leader, invocationId);
    } catch (err) {
      // A leader being elected: the direct answer stands, as it did before this second look.
      if (isTransient(err)) return null;
      throw err;
    }
  }

  async #read(kv: KV, invocationId: string): Promise<VersionedState | null> {
    const entry = await kv.get(invocationId);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return null;
    return { state: decodeState(entry.value, invocationId), revision: entry.revision };
  }

  async create(created: ExecutionState, options: StateWriteOptions = {}): Promise<number> {
    const state = withStatusHistory(created);
    const bytes = this.#encode(state);
    const ttl = messageTtl(options.expiresInMs);
    const revision = await this.#write(state, bytes, { created: true, ttl }, () => this.kv.create(state.invocationId, bytes, ttl), () =>
      `invocation ${state.invocationId} already has a state`,
    );
    written.set(created, bytes);
    return revision;
  }

  async update(next: ExecutionState, revision: number, previous?: ExecutionState, options: StateWriteOptions = {}): Promise<number> {
    const state = withStatusHistory(next, previous);
    const bytes = this.#encode(state);
    const ttl = messageTtl(options.expiresInMs);
    const updated = await this.#write(
      state,
      bytes,
      { ...(previous ? { previousStatus: previous.status } : {}), ttl },
      () => (ttl ? this.#updateExpiring(state.invocationId, bytes, revision, ttl) : this.kv.update(state.invocationId, bytes, revision)),
      () => `state of ${state.invocationId} changed since revision ${revision}`,
    );
    written.set(next, bytes);
    return updated;
  }

  /** A compare-and-set that also gives the record its time to live (the bucket's own update cannot). */
  async #updateExpiring(invocationId: string, bytes: Uint8Array, revision: number, ttl: string): Promise<number> {
    if (!(this.kv instanceof Bucket)) throw new Error(`state of ${invocationId}: this bucket cannot write a record that expires`);
    const ack = await this.kv.js.publish(this.kv.subjectForKey(invocationId, true), bytes, { expect: { lastSubjectSequence: revision }, ttl });
    return ack.seq;
  }

  /**
   * Writes a state and keeps the index in line: after the write, or, for a state that ends
   * its invocation, beside it, so that the end is listed by the time anyone learns of it.
   */
  async #write(
    state: ExecutionState,
    bytes: Uint8Array,
    move: { created?: boolean; previousStatus?: string; ttl?: string | undefined },
    put: () => Promise<number>,
    conflict: () => string,
  ): Promise<number> {
    const index = this.index;
    const ended = index && isTerminal(state.status) ? index.recordEnded(state, move) : undefined;
    let revision: number;
    try {
      revision = await this.#rideOut(state.invocationId, bytes, put);
    } catch (err) {
      // The entry published beside a write that failed is wrong: put back the one that stands.
      if (ended) void ended.then(() => this.#repair(state.invocationId));
      if (isWrongLastSequence(err)) throw new FencedError(conflict(), { cause: err });
      throw err;
    }
    await (ended ?? index?.record(state, move));
    return revision;
  }

  /**
   * A compare-and-set write, riding out a leader election: a try that got no answer may
   * have been stored, so a later try refused for the revision reads the record (from the
   * leader), and if it holds these bytes, the write was stored.
   */
  #rideOut(invocationId: string, bytes: Uint8Array, put: () => Promise<number>): Promise<number> {
    return writeOnce(`write the state of ${invocationId}`, bytes, put, isWrongLastSequence, async () => {
      const stored = await (this.leader ?? this.kv).get(invocationId);
      return stored?.operation === 'PUT' ? { data: stored.value, seq: stored.revision } : undefined;
    });
  }

  /**
   * A state's bytes. The inline copy of the journal is left out when it would take the
   * write past the server's limit: the journal stream then holds every entry, and
   * `journal_length` tells readers to look there. (A state whose inline journal has entries
   * the stream lacks is written only when it fits: see the executor's suspension.)
   */
  #encode(state: ExecutionState): Uint8Array {
    const bytes = toBinary(ExecutionStateSchema, state);
    const max = this.maxBytes();
    if (max === undefined || bytes.length <= max - HEADER_ROOM || state.journal.length === 0) return bytes;
    return toBinary(ExecutionStateSchema, { ...state, journal: [], journalLastSequence: 0n });
  }

  async #repair(invocationId: string): Promise<void> {
    try {
      const found = await this.get(invocationId);
      if (found) await this.index?.syncIndex(found.state);
    } catch {
      // Listing and reindex repair it later.
    }
  }
}

/** The bytes each state handed to a store's create or update was stored as, once written. */
const written = new WeakMap<ExecutionState, Uint8Array>();

/**
 * The bytes a state was stored as, when it was handed to a {@link NatsStateStore} write in
 * this process: the state as stored, its status history included, without encoding it again.
 */
export function storedBytes(state: ExecutionState): Uint8Array | undefined {
  return written.get(state);
}

/** A `Nats-TTL` for a record kept this long, ms: whole seconds, at least one (the server's least); undefined for none. */
export function messageTtl(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : `${Math.max(1, Math.ceil(ms / 1000))}s`;
}

/**
 * How long a stored record has left before the server removes it (its `Nats-TTL`, counted
 * from when it was stored), ms, at least 1; undefined for a record kept until removed.
 */
export function ttlLeftMs(ttl: string | undefined, storedAt: Date, nowMs = Date.now()): number | undefined {
  if (!ttl || ttl === 'never') return undefined;
  let ms: number;
  try {
    // As `messageTtl` writes it (`86400s`), or any duration the processor's flags take.
    ms = parseDuration(ttl, 'Nats-TTL');
  } catch {
    return undefined;
  }
  return Math.max(1, ms - (nowMs - storedAt.getTime()));
}

/**
 * An ExecutionState from the bytes stored under its key.
 * @throws DecodeError naming the key.
 */
export function decodeState(bytes: Uint8Array, key: string): ExecutionState {
  try {
    return plainState(fromBinary(ExecutionStateSchema, bytes));
  } catch (err) {
    throw new DecodeError(`state of ${key} is not a durable.ExecutionState`, { cause: err });
  }
}

/** True when a JetStream write failed its expected-last-sequence check. */
export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
