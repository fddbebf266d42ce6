/**
 * Execution states as JSON for the HTTP API: snake_case fields, JSON payloads parsed.
 */
import type { ExecutionState, JournalEntry } from '../gen/durable/durable_pb.js';
import { bytesToText } from '../engine/codec.js';

/** A JSON payload parsed, or its text when it is not JSON. */
function payload(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return null;
  const text = bytesToText(bytes);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** One journal entry as JSON. */
export function entryToJson(entry: JournalEntry): Record<string, unknown> {
  return {
    step: entry.stepNumber,
    type: entry.stepType,
    phase: entry.phase === 1 ? 'started' : 'completed',
    request: payload(entry.request),
    response: payload(entry.response),
    ...(entry.error ? { error: entry.error, error_code: entry.errorCode } : {}),
    attempts: entry.attempts,
    recorded_at_ms: Number(entry.recordedAtMs),
  };
}

/** An execution state as JSON, with `journal` (the state's own by default: complete once it has ended). */
export function stateToJson(state: ExecutionState, journal: readonly JournalEntry[] = state.journal): Record<string, unknown> {
  return {
    invocation_id: state.invocationId,
    handler: state.handler,
    status: state.status,
    partition_key: state.partitionKey,
    input: payload(state.input),
    output: payload(state.currentState),
    ...(state.error ? { error: state.error } : {}),
    created_at_ms: Number(state.createdAtMs),
    updated_at_ms: Number(state.updatedAtMs),
    ...(state.endedAtMs > 0n ? { ended_at_ms: Number(state.endedAtMs) } : {}),
    attempt: state.attempt,
    ...(state.owner ? { owner: state.owner } : {}),
    current_step: state.currentStep,
    ...(state.currentStepType ? { current_step_type: state.currentStepType } : {}),
    ...(state.parent?.invocationId ? { parent_invocation_id: state.parent.invocationId } : {}),
    ...(state.retryOf ? { retry_of: state.retryOf } : {}),
    ...(state.cancelRequested ? { cancel_requested: true } : {}),
    ...(state.pauseRequested ? { pause_requested: true } : {}),
    status_history: state.statusHistory.map((c) => ({ status: c.status, at_ms: Number(c.atMs) })),
    journal_length: state.journalLength,
    journal: journal.map(entryToJson),
  };
}
