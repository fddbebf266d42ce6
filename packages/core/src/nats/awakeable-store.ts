/**
 * Awakeables in the AWAKEABLES bucket: key = awakeable ID, value = a protobuf
 * `durable.AwakeableState`. The workflow creates the record when it makes the awakeable;
 * a resolution is a compare-and-set from pending to settled, so it happens once (the same
 * resolution again is a retry, and succeeds).
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { KV } from '@nats-io/kv';
import { AwakeableStateSchema, type AwakeableState } from '../gen/durable/durable_pb.js';
import { AwakeableNotFoundError, ConflictError, DecodeError } from '../errors.js';
import { sameOutcome, type AwakeableOutcome, type AwakeableStore, type OwnerIsLive } from '../engine/stores.js';
import { awakeableInvocation } from '../engine/durable-context.js';
import { isWrongLastSequence } from './state-store.js';

/** An AwakeableStore on a JetStream key-value bucket. */
export class NatsAwakeableStore implements AwakeableStore {
  constructor(private readonly kv: KV) {}

  async create(awakeableId: string, invocationId: string): Promise<void> {
    const record = create(AwakeableStateSchema, { awakeableId, invocationId, createdAt: BigInt(Math.floor(Date.now() / 1000)) });
    try {
      await this.kv.create(awakeableId, toBinary(AwakeableStateSchema, record));
    } catch (err) {
      if (!isWrongLastSequence(err)) throw err;
    }
  }

  async outcome(awakeableId: string): Promise<AwakeableOutcome | null> {
    const found = await this.get(awakeableId);
    return found ? outcomeOf(found.state) : null;
  }

  /**
   * Settles an awakeable; returns the invocation waiting on it. When it has no record yet,
   * `ownerIsLive` decides whether it is one its invocation is about to record (the record
   * is then written settled) or unknown. Settling it again with the same outcome is a retry:
   * it returns the invocation, whose wake-up the caller sends again.
   * @throws AwakeableNotFoundError when there is none of that ID.
   * @throws ConflictError when it was settled before with another outcome (the first stands).
   */
  async settle(awakeableId: string, outcome: AwakeableOutcome, ownerIsLive?: OwnerIsLive): Promise<string> {
    for (;;) {
      const found = await this.get(awakeableId);
      if (found?.state.resolved) {
        if (sameOutcome(outcomeOf(found.state), outcome)) return found.state.invocationId;
        throw new ConflictError(`awakeable ${awakeableId} is already ${found.state.error ? 'rejected' : 'resolved'}`);
      }
      const invocationId = found?.state.invocationId ?? awakeableInvocation(awakeableId);
      if (!invocationId || (!found && !(await ownerIsLive?.(invocationId)))) throw new AwakeableNotFoundError(awakeableId);
      const settled = create(AwakeableStateSchema, {
        awakeableId,
        invocationId,
        createdAt: found?.state.createdAt ?? BigInt(Math.floor(Date.now() / 1000)),
        resolved: true,
        result: outcome.ok ? outcome.value : new Uint8Array(),
        error: outcome.ok ? '' : outcome.error,
      });
      try {
        const bytes = toBinary(AwakeableStateSchema, settled);
        if (found) await this.kv.update(awakeableId, bytes, found.revision);
        else await this.kv.create(awakeableId, bytes);
        return invocationId;
      } catch (err) {
        // Written meanwhile: by the workflow (look again) or by another resolver (a conflict).
        if (!isWrongLastSequence(err)) throw err;
      }
    }
  }

  private async get(awakeableId: string): Promise<{ state: AwakeableState; revision: number } | null> {
    const entry = await this.kv.get(awakeableId);
    if (!entry || entry.operation !== 'PUT') return null;
    try {
      return { state: fromBinary(AwakeableStateSchema, entry.value), revision: entry.revision };
    } catch (err) {
      throw new DecodeError(`awakeable ${awakeableId} is not a durable.AwakeableState`, { cause: err });
    }
  }
}

/** How a record was settled, or null while it is pending. */
function outcomeOf(record: AwakeableState): AwakeableOutcome | null {
  if (!record.resolved) return null;
  return record.error !== '' ? { ok: false, error: record.error } : { ok: true, value: record.result };
}
