/**
 * Reaching invocations on the cluster: starting them (now, or later through a durable
 * timer), waking suspended ones with a resume command, cancelling them. Shared by the
 * client and by running workflows (`ctx.send`, `ctx.invoke`, cancellation of children).
 */
import { toBinary } from '@bufbuild/protobuf';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EngineNames } from '../config.js';
import { CommandSchema, ExecutionStateSchema, type Command, type ExecutionState } from '../gen/durable/durable_pb.js';
import { ConflictError, FencedError, InvocationNotFoundError } from '../errors.js';
import { isTerminal, transition } from '../engine/lifecycle.js';
import type { InvocationGateway, StateStore, WakeTarget } from '../engine/stores.js';
import { resultSubject } from './result-channel.js';
import { scheduleCommand } from './timers.js';
import { resumeCommand } from '../engine/commands.js';

/** The connection and names {@link cancelInvocation} and the gateway work with. */
export interface ClusterHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  names: EngineNames;
  states: StateStore;
}

/** An InvocationGateway on the COMMANDS stream (and its timers). */
export class NatsInvocationGateway implements InvocationGateway {
  constructor(private readonly cluster: ClusterHandles) {}

  async start(command: Command, options: { delayMs?: number } = {}): Promise<void> {
    const { js, names } = this.cluster;
    const bytes = toBinary(CommandSchema, command);
    const delayMs = options.delayMs ?? 0;
    if (delayMs > 0) {
      // A timer holding the start command: the server queues it when due.
      await scheduleCommand(js, names, { command, dueAtMs: Date.now() + delayMs, timer: 'start', msgID: `${command.invocationId}:start` });
      return;
    }
    await js.publish(`${names.commandsSubject}.${command.partitionKey}`, bytes, { msgID: command.invocationId });
  }

  async wake(target: WakeTarget, messageId: string): Promise<void> {
    await sendResume(this.cluster, target, messageId);
  }

  async cancel(invocationId: string): Promise<void> {
    try {
      await cancelInvocation(this.cluster, invocationId);
    } catch (err) {
      if (!(err instanceof ConflictError || err instanceof InvocationNotFoundError)) throw err;
    }
  }
}

/** Queues a resume command: the invocation continues from its journal on a processor. */
export async function sendResume(cluster: ClusterHandles, target: WakeTarget, messageId: string): Promise<void> {
  const resume = resumeCommand(target);
  await cluster.js.publish(`${cluster.names.commandsSubject}.${target.partitionKey}`, toBinary(CommandSchema, resume), { msgID: messageId });
}

/**
 * Cancels an invocation. A running one is marked and told, and stops at its next step
 * boundary (the mark survives a processor crash). One that waits (suspended, paused,
 * pending) ends `cancelled` at once; a resume command then lets a processor do what
 * follows an end: cancel its children, wake its parent, pass its partition key on.
 * @throws InvocationNotFoundError for an unknown ID.
 * @throws ConflictError when it has already ended.
 */
export async function cancelInvocation(cluster: ClusterHandles, invocationId: string): Promise<void> {
  const { nc, names, states } = cluster;
  for (;;) {
    const found = await states.get(invocationId);
    if (!found) throw new InvocationNotFoundError(invocationId);
    if (isTerminal(found.state.status)) {
      // What follows a cancel may not have been sent (the canceller died after the write):
      // send it again; it is de-duplicated, and a repeat finds nothing left to do.
      if (found.state.status === 'cancelled') await sendResume(cluster, found.state, `${invocationId}:cancelled`);
      throw new ConflictError(`invocation ${invocationId} is already ${found.state.status}`);
    }
    const running = found.state.status === 'running';
    const at = BigInt(Date.now());
    const next: ExecutionState = running
      ? { ...found.state, cancelRequested: true, updatedAtMs: at }
      : {
          ...found.state,
          cancelRequested: true,
          status: transition(found.state.status, 'cancelled'),
          error: 'invocation cancelled',
          owner: '',
          updatedAtMs: at,
          endedAtMs: at,
          currentStep: -1,
        };
    try {
      await states.update(next, found.revision, found.state);
    } catch (err) {
      if (err instanceof FencedError) continue; // It changed under us: look again.
      throw err;
    }
    if (running) {
      nc.publish(`${names.controlSubject}.${invocationId}`, 'cancel');
      return;
    }
    nc.publish(resultSubject(names, invocationId), toBinary(ExecutionStateSchema, next));
    await sendResume(cluster, next, `${invocationId}:cancelled`);
    return;
  }
}
