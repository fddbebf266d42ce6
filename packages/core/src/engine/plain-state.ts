/**
 * ExecutionState as an object V8 keeps in fast mode.
 *
 * protobuf-es builds a message by adding its fields one at a time under computed keys, and
 * V8 turns an object that grows that way past a dozen or so fields into a dictionary.
 * ExecutionState has 36 fields, so every state that `create` or `fromBinary` makes is a
 * dictionary, while every other message of the engine has 14 fields or fewer. Copying one
 * with a spread costs about 10 µs, a hundred times what copying a plain object costs. The
 * engine copies a state with a spread at each change, so each state it makes or decodes is
 * rebuilt once here, by name, into one object literal.
 */
import type { ExecutionState } from '../gen/durable/durable_pb.js';

/** The same state (its fields' values shared, as a spread shares them) in one object literal. */
export function plainState(s: ExecutionState): ExecutionState {
  return {
    $typeName: s.$typeName,
    invocationId: s.invocationId,
    handler: s.handler,
    journal: s.journal,
    currentState: s.currentState,
    status: s.status,
    currentStep: s.currentStep,
    currentStepType: s.currentStepType,
    workflowState: s.workflowState,
    awakeables: s.awakeables,
    partitionKey: s.partitionKey,
    service: s.service,
    input: s.input,
    error: s.error,
    createdAtMs: s.createdAtMs,
    updatedAtMs: s.updatedAtMs,
    endedAtMs: s.endedAtMs,
    attempt: s.attempt,
    owner: s.owner,
    journalLength: s.journalLength,
    journalStream: s.journalStream,
    journalSubject: s.journalSubject,
    parentInvocationId: s.parentInvocationId,
    retryOf: s.retryOf,
    errorCode: s.errorCode,
    cancelRequested: s.cancelRequested,
    pauseRequested: s.pauseRequested,
    // Always there, undefined when unset (as protobuf-es reads it): one shape for every state.
    parent: s.parent,
    startSequence: s.startSequence,
    keyedStateChanges: s.keyedStateChanges,
    keyedStateCleared: s.keyedStateCleared,
    journalLastSequence: s.journalLastSequence,
    runSequence: s.runSequence,
    runDelivery: s.runDelivery,
    statusHistory: s.statusHistory,
    traceParent: s.traceParent,
    replySubject: s.replySubject,
    // Fields a newer version wrote, which this one does not know: written back as they came.
    $unknown: s.$unknown,
  };
}
