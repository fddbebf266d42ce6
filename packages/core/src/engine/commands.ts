/**
 * Commands the engine sends itself.
 */
import { create } from '@bufbuild/protobuf';
import { CommandKind, CommandSchema, type Command } from '../gen/durable/durable_pb.js';
import type { WakeTarget } from './stores.js';

/** The command that wakes an invocation: it continues from its journal on a processor. */
export function resumeCommand(target: WakeTarget): Command {
  return create(CommandSchema, {
    invocationId: target.invocationId,
    handler: target.handler,
    partitionKey: target.partitionKey,
    kind: CommandKind.RESUME,
    submittedAtMs: BigInt(Date.now()),
  });
}
