/**
 * The rules of a partition key's shared state and lock (workflows declared exclusive), as
 * pure functions of the stored record: the memory and JetStream stores apply them by
 * compare-and-set, so they hold under concurrency and give the same answer when retried.
 */
import { clone, create } from '@bufbuild/protobuf';
import { KeyedStateSchema, KeyedWaiterSchema, type ExecutionState, type KeyedState, type KeyedWaiter } from '../gen/durable/durable_pb.js';

/** A fresh record: no values, nobody holding the key. */
export function emptyKeyedState(): KeyedState {
  return create(KeyedStateSchema, {});
}

/**
 * The record after `waiter` asks for the key: `granted` when it holds the key now; `next`
 * is undefined when nothing needs writing.
 */
export function acquireKey(current: KeyedState, waiter: KeyedWaiter): { granted: boolean; next?: KeyedState } {
  if (current.holder === waiter.invocationId) return { granted: true };
  if (current.holder === '') {
    const next = clone(KeyedStateSchema, current);
    next.holder = waiter.invocationId;
    next.waiting = next.waiting.filter((w) => w.invocationId !== waiter.invocationId);
    return { granted: true, next };
  }
  if (current.waiting.some((w) => w.invocationId === waiter.invocationId)) return { granted: false };
  const next = clone(KeyedStateSchema, current);
  next.waiting.push(create(KeyedWaiterSchema, { invocationId: waiter.invocationId, handler: waiter.handler }));
  return { granted: false, next };
}

/**
 * The values an invocation starts from. Once its changes are applied it may still run
 * again (a crash before its final state was written): it then starts from the values
 * before them, as the first time, so its replay sees what it saw.
 */
export function startingValues(current: KeyedState, invocationId: string): Map<string, Uint8Array> {
  return new Map(Object.entries(current.lastApplied === invocationId ? current.valuesBeforeLastApplied : current.values));
}

/**
 * The record with an ending invocation's changes applied on top of the values it started
 * from, the same however often it is applied; undefined when it changed nothing.
 */
export function applyChanges(current: KeyedState, ended: ExecutionState): KeyedState | undefined {
  const changes = Object.entries(ended.keyedStateChanges);
  if (changes.length === 0 && ended.keyedStateCleared.length === 0) return undefined;
  // Only the holder's changes take effect: a late or stale run of an invocation that has
  // handed the key on would undo what came after it.
  if (current.holder !== ended.invocationId) return undefined;
  const base = current.lastApplied === ended.invocationId ? current.valuesBeforeLastApplied : current.values;
  const next = clone(KeyedStateSchema, current);
  next.valuesBeforeLastApplied = { ...base };
  next.values = { ...base };
  for (const key of ended.keyedStateCleared) delete next.values[key];
  for (const [key, value] of changes) next.values[key] = value;
  next.lastApplied = ended.invocationId;
  return next;
}

/**
 * The record after an invocation ended: its changes applied if they were not yet, the key
 * handed to the oldest waiter, the invocation out of the queue. `wake` is the new holder,
 * to be woken; `next` is undefined when nothing needs writing.
 */
export function releaseKey(current: KeyedState, ended: ExecutionState): { next?: KeyedState; wake?: KeyedWaiter } {
  const id = ended.invocationId;
  const applied = current.lastApplied === id ? undefined : applyChanges(current, ended);
  const holds = current.holder === id;
  const queued = current.waiting.some((w) => w.invocationId === id);
  if (!applied && !holds && !queued) {
    // Handed on already: the wake-up may not have been sent, so it is sent again.
    const handed = current.handedFrom === id && current.handedTo && current.holder === current.handedTo.invocationId;
    return handed ? { wake: current.handedTo } : {};
  }
  const next = applied ?? clone(KeyedStateSchema, current);
  next.waiting = next.waiting.filter((w) => w.invocationId !== id);
  let wake: KeyedWaiter | undefined;
  if (holds) {
    wake = next.waiting.shift();
    next.holder = wake?.invocationId ?? '';
    next.handedFrom = wake ? id : '';
    next.handedTo = wake;
  }
  return wake ? { next, wake } : { next };
}

/** The values of a record as a map. */
export function keyedValues(state: KeyedState): Map<string, Uint8Array> {
  return new Map(Object.entries(state.values));
}

/**
 * The key of a partition key's record in a key-value bucket, whose keys allow fewer
 * characters than partition keys: letters, digits, '_' and '-' as they are, anything
 * else base64url-encoded behind '='.
 */
export function keyedStateKey(partitionKey: string): string {
  return /^[A-Za-z0-9_-]+$/.test(partitionKey) ? partitionKey : `=${Buffer.from(partitionKey, 'utf8').toString('base64url')}`;
}
