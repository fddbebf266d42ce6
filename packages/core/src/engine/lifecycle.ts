/**
 * The invocation lifecycle: its states and the transitions allowed between them, in one
 * place. Everything that changes an invocation's status goes through {@link transition}.
 */
import { create } from '@bufbuild/protobuf';
import { ConflictError } from '../errors.js';
import { StatusChangeSchema, type ExecutionState } from '../gen/durable/durable_pb.js';

/** The status of an invocation, as stored in `ExecutionState.status`. */
export type InvocationStatus =
  | 'pending'
  | 'running'
  | 'suspended'
  | 'paused'
  | 'completed'
  | 'failed'
  | 'cancelled';

/** Statuses an invocation never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<InvocationStatus> = new Set(['completed', 'failed', 'cancelled']);

const TRANSITIONS: Record<InvocationStatus, readonly InvocationStatus[]> = {
  pending: ['running', 'paused', 'failed', 'cancelled'],
  // running → running: a processor takes an invocation up again after a crash.
  running: ['running', 'suspended', 'paused', 'completed', 'failed', 'cancelled'],
  suspended: ['running', 'paused', 'failed', 'cancelled'],
  // paused → suspended: resumed, waiting for a processor to take it up again.
  paused: ['running', 'suspended', 'cancelled', 'failed'],
  completed: [],
  failed: [],
  cancelled: [],
};

/** Every status, in lifecycle order. */
export const STATUSES: readonly InvocationStatus[] = Object.keys(TRANSITIONS) as InvocationStatus[];

/** True when `status` is a known status string. */
export function isStatus(status: string): status is InvocationStatus {
  return Object.hasOwn(TRANSITIONS, status);
}

/** True when the invocation has ended for good. */
export function isTerminal(status: string): boolean {
  return TERMINAL_STATUSES.has(status as InvocationStatus);
}

/** True when an invocation in `from` may move to `to`. */
export function canTransition(from: string, to: InvocationStatus): boolean {
  return isStatus(from) && TRANSITIONS[from].includes(to);
}

/**
 * The new status, after checking the move is allowed.
 * @throws ConflictError when the lifecycle forbids it (e.g. resuming a completed invocation).
 */
export function transition(from: string, to: InvocationStatus): InvocationStatus {
  if (!canTransition(from, to)) {
    throw new ConflictError(`invocation is ${from || 'unknown'}; it cannot become ${to}`);
  }
  return to;
}

/** Most status changes a state keeps (see `status_history`). */
export const STATUS_HISTORY_LIMIT = 20;

/**
 * The status history of `next`, written over `previous` (none when it is created): one
 * more change when the status moved, the oldest dropped past {@link STATUS_HISTORY_LIMIT}.
 */
export function withStatusHistory(next: ExecutionState, previous?: ExecutionState): ExecutionState {
  const history = previous ? previous.statusHistory : next.statusHistory;
  if (history.at(-1)?.status === next.status) return history === next.statusHistory ? next : { ...next, statusHistory: history };
  const change = create(StatusChangeSchema, { status: next.status, atMs: next.updatedAtMs > 0n ? next.updatedAtMs : BigInt(Date.now()) });
  return { ...next, statusHistory: [...history, change].slice(-STATUS_HISTORY_LIMIT) };
}
