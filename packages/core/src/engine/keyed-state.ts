/**
 * The rules of a partition key's shared state and lock (workflows declared exclusive), as
 * pure functions of the stored record: the stores apply them by compare-and-set, so they
 * hold under concurrency and give the same answer when retried. The key's queue is not in
 * the record (it would grow with it): the rules are told a waiter's place in it, or the
 * oldest waiter, by the store (see `queued-keyed-state-store.ts`).
 */
import { clone, create } from '@bufbuild/protobuf';
import { KeyedStateSchema, KeyedUndoSchema, type ExecutionState, type KeyedState, type KeyedWaiter } from '../gen/durable/durable_pb.js';

/** A fresh record: no values, nobody holding the key. */
export function emptyKeyedState(): KeyedState {
  return create(KeyedStateSchema, {});
}

/** What asking for the key comes to. */
export interface AcquireOutcome {
  /** The invocation holds the key now. */
  granted: boolean;
  /** Not granted, and not yet in the key's queue: it takes a place there and asks again with it. */
  queue?: boolean;
  /** The record to write by compare-and-set for this to stand; none when nothing needs writing. */
  next?: KeyedState;
}

/**
 * The record after `invocationId` asks for the key, `place` being its place in the key's
 * queue once it has one. A waiter's record write is never skipped: it confirms the refusal
 * (a read may come from a replica a little behind, and a wake-up must not be lost), and it
 * moves `queue_tail` to its place, which is what makes a later release see it.
 */
export function acquireKey(current: KeyedState, invocationId: string, place?: bigint): AcquireOutcome {
  if (current.holder === invocationId) return { granted: true };
  const next = clone(KeyedStateSchema, current);
  if (current.holder === '') {
    next.holder = invocationId;
    return { granted: true, next };
  }
  if (place === undefined) return { granted: false, queue: true };
  if (place > next.queueTail) next.queueTail = place;
  return { granted: false, next };
}

/**
 * A record written by an older version, which kept its queue in `waiting`, once that queue
 * has been moved into the queue stream (in order, the last at `tail`).
 */
export function withQueueMoved(current: KeyedState, tail: bigint): KeyedState {
  const next = clone(KeyedStateSchema, current);
  next.waiting = [];
  if (tail > next.queueTail) next.queueTail = tail;
  return next;
}

/**
 * The values an invocation starts from. Once its changes are applied it may still run
 * again (a crash before its final state was written): it then starts from the values
 * before them, as the first time, so its replay sees what it saw.
 */
export function startingValues(current: KeyedState, invocationId: string): Map<string, Uint8Array> {
  return new Map(Object.entries(current.lastApplied === invocationId ? valuesBeforeLastApplied(current) : current.values));
}

/**
 * The record with an ending invocation's changes applied on top of the values it started
 * from, the same however often it is applied; undefined when it changed nothing. Only what
 * the changes replace is kept beside the values (`last_applied_undo`), not the values twice.
 */
export function applyChanges(current: KeyedState, ended: ExecutionState): KeyedState | undefined {
  const changes = Object.entries(ended.keyedStateChanges);
  if (changes.length === 0 && ended.keyedStateCleared.length === 0) return undefined;
  // Only the holder's changes take effect: a late or stale run of an invocation that has
  // handed the key on would undo what came after it.
  if (current.holder !== ended.invocationId) return undefined;
  const base = current.lastApplied === ended.invocationId ? valuesBeforeLastApplied(current) : current.values;
  const undo = create(KeyedUndoSchema, {});
  for (const key of new Set([...ended.keyedStateCleared, ...changes.map(([key]) => key)])) {
    const before = Object.hasOwn(base, key) ? base[key] : undefined;
    if (before === undefined) undo.absent.push(key);
    else undo.previous[key] = before;
  }
  const next = clone(KeyedStateSchema, current);
  next.values = { ...base };
  for (const key of ended.keyedStateCleared) delete next.values[key];
  for (const [key, value] of changes) next.values[key] = value;
  next.lastApplied = ended.invocationId;
  next.lastAppliedUndo = undo;
  next.valuesBeforeLastApplied = {};
  return next;
}

/**
 * The record after an invocation ended: its changes applied if they were not yet, and the
 * key handed to `oldest`, the oldest waiter in the key's queue other than itself (asked for
 * only when it holds the key), or freed. `wake` is the new holder, to be woken and taken
 * out of the queue; `next` is undefined when nothing needs writing.
 */
export function releaseKey(current: KeyedState, ended: ExecutionState, oldest?: KeyedWaiter): { next?: KeyedState; wake?: KeyedWaiter } {
  const id = ended.invocationId;
  if (current.holder !== id) {
    // Handed on already: the wake-up may not have been sent, so it is sent again.
    const handed = current.handedFrom === id && current.handedTo && current.holder === current.handedTo.invocationId;
    return handed ? { wake: current.handedTo } : {};
  }
  const next = (current.lastApplied === id ? undefined : applyChanges(current, ended)) ?? clone(KeyedStateSchema, current);
  next.holder = oldest?.invocationId ?? '';
  next.handedFrom = oldest ? id : '';
  next.handedTo = oldest;
  return oldest ? { next, wake: oldest } : { next };
}

/** The values of a record as a map. */
export function keyedValues(state: KeyedState): Map<string, Uint8Array> {
  return new Map(Object.entries(state.values));
}

/** The values before the last applied invocation's changes. */
function valuesBeforeLastApplied(current: KeyedState): Record<string, Uint8Array> {
  const undo = current.lastAppliedUndo;
  // A record of an older version kept them whole.
  if (!undo) return current.valuesBeforeLastApplied;
  const values = { ...current.values };
  for (const key of undo.absent) delete values[key];
  for (const [key, value] of Object.entries(undo.previous)) values[key] = value;
  return values;
}

/**
 * The key of a partition key's record in a key-value bucket, whose keys allow fewer
 * characters than partition keys: letters, digits, '_' and '-' as they are, anything
 * else base64url-encoded behind '='. Also the partition key's token in the queue's subjects.
 */
export function keyedStateKey(partitionKey: string): string {
  return /^[A-Za-z0-9_-]+$/.test(partitionKey) ? partitionKey : `=${Buffer.from(partitionKey, 'utf8').toString('base64url')}`;
}
