/**
 * Announces ended invocations on core NATS, `durable.result.<id>`, so a waiting client
 * learns of the outcome the moment it is written instead of polling for it.
 */
import { toBinary } from '@bufbuild/protobuf';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EngineNames } from '../config.js';
import { ExecutionStateSchema, type ExecutionState } from '../gen/durable/durable_pb.js';
import type { ResultNotifier } from '../engine/stores.js';
import { storedBytes } from './state-store.js';

/** The subject on which the outcome of an invocation is announced. */
export function resultSubject(names: EngineNames, invocationId: string): string {
  return `${names.resultSubject}.${invocationId}`;
}

/**
 * The subjects on which one client hears the outcomes of the invocations it submitted and
 * waits for (the start command's `reply_subject`): `<result subject>.to.<client>.<id>`, one
 * subscription for all of them instead of one per invocation.
 */
export function replySubjects(names: EngineNames, client: string): { prefix: string; wildcard: string } {
  const prefix = `${names.resultSubject}.to.${client}`;
  return { prefix, wildcard: `${prefix}.*` };
}

/** A reply subject a command may name: under the result subject's `to.`, with no wildcard or space. */
function isReplySubject(names: EngineNames, subject: string): boolean {
  return subject.startsWith(`${names.resultSubject}.to.`) && !/[\s*>]/.test(subject);
}

/** Publishes each final state on the invocation's result subject, and to the client that waits for it. */
export class NatsResultNotifier implements ResultNotifier {
  constructor(
    private readonly nc: NatsConnection,
    private readonly names: EngineNames,
  ) {}

  announce(state: ExecutionState): void {
    // As stored, when this process wrote it: the status history then ends with the end.
    const bytes = storedBytes(state) ?? toBinary(ExecutionStateSchema, state);
    this.nc.publish(resultSubject(this.names, state.invocationId), bytes);
    // One made up by a command is not published to: its client looks for the outcome instead.
    if (isReplySubject(this.names, state.replySubject)) this.nc.publish(state.replySubject, bytes);
  }
}
