/**
 * Announces ended invocations on core NATS, `durable.result.<id>`, so a waiting client
 * learns of the outcome the moment it is written instead of polling for it.
 */
import { toBinary } from '@bufbuild/protobuf';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EngineNames } from '../config.js';
import { ExecutionStateSchema, type ExecutionState } from '../gen/durable/durable_pb.js';
import type { ResultNotifier } from '../engine/stores.js';

/** The subject on which the outcome of an invocation is announced. */
export function resultSubject(names: EngineNames, invocationId: string): string {
  return `${names.resultSubject}.${invocationId}`;
}

/** Publishes each final state on the invocation's result subject. */
export class NatsResultNotifier implements ResultNotifier {
  constructor(
    private readonly nc: NatsConnection,
    private readonly names: EngineNames,
  ) {}

  announce(state: ExecutionState): void {
    this.nc.publish(resultSubject(this.names, state.invocationId), toBinary(ExecutionStateSchema, state));
  }
}
