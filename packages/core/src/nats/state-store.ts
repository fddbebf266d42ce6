/**
 * The EXECUTION_STATE bucket as a {@link StateStore}: one protobuf ExecutionState per
 * invocation ID, written only by create or compare-and-set on the key's revision. Given an
 * {@link ExecutionIndex}, every successful write also updates the index (in the background
 * unless the index says otherwise).
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { JetStreamApiError, JetStreamApiCodes } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { ExecutionStateSchema, type ExecutionState } from '../gen/durable/durable_pb.js';
import { DecodeError, FencedError } from '../errors.js';
import type { StateStore, VersionedState } from '../engine/stores.js';
import type { ExecutionIndex } from './execution-index.js';

/** A StateStore on a JetStream key-value bucket. */
export class NatsStateStore implements StateStore {
  /**
   * @param index kept in line with every write; without it the index is not maintained
   *   (tools that only read states need none).
   */
  constructor(
    private readonly kv: KV,
    private readonly index?: ExecutionIndex,
  ) {}

  async get(invocationId: string): Promise<VersionedState | null> {
    const entry = await this.kv.get(invocationId);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return null;
    return { state: decodeState(entry.value, invocationId), revision: entry.revision };
  }

  async create(state: ExecutionState): Promise<number> {
    let revision: number;
    try {
      revision = await this.kv.create(state.invocationId, toBinary(ExecutionStateSchema, state));
    } catch (err) {
      if (isWrongLastSequence(err)) throw new FencedError(`invocation ${state.invocationId} already has a state`, { cause: err });
      throw err;
    }
    await this.index?.record(state, { created: true });
    return revision;
  }

  async update(state: ExecutionState, revision: number, previous?: ExecutionState): Promise<number> {
    let written: number;
    try {
      written = await this.kv.update(state.invocationId, toBinary(ExecutionStateSchema, state), revision);
    } catch (err) {
      if (isWrongLastSequence(err)) {
        throw new FencedError(`state of ${state.invocationId} changed since revision ${revision}`, { cause: err });
      }
      throw err;
    }
    await this.index?.record(state, previous ? { previousStatus: previous.status } : {});
    return written;
  }
}

/**
 * An ExecutionState from the bytes stored under its key.
 * @throws DecodeError naming the key.
 */
export function decodeState(bytes: Uint8Array, key: string): ExecutionState {
  try {
    return fromBinary(ExecutionStateSchema, bytes);
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
