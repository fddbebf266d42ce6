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
import { withRetry, type RetryOptions } from './retry.js';

/**
 * Header of a start command whose invocation ID its client made just now (a random UUID,
 * not one given by its caller): no invocation can have it yet, so the command's first
 * delivery runs without looking for one.
 */
export const FRESH_ID_HEADER = 'Durable-Fresh-Id';

/** A client operation that writes a state or record, then sends what follows from it. */
export type ClientOperation = 'resume' | 'pause' | 'cancel' | 'resolve' | 'reject';

/**
 * Called between an operation's write and what follows it (a wake-up, a signal), with the
 * invocation or awakeable ID. For tests: throwing here plays a caller that died in between.
 */
export type AfterWrite = (operation: ClientOperation, id: string) => void | Promise<void>;

/** The connection and names {@link cancelInvocation} and the gateway work with. */
export interface ClusterHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  names: EngineNames;
  states: StateStore;
  /** How long publishes and state writes are retried while the cluster elects a leader. @default 10 s */
  retry?: RetryOptions;
  afterWrite?: AfterWrite;
}

/** An InvocationGateway on the COMMANDS stream (and its timers). */
export class NatsInvocationGateway implements InvocationGateway {
  constructor(private readonly cluster: ClusterHandles) {}

  /** Retried through a leader election under its message ID, so a repeat is de-duplicated. */
  async start(command: Command, options: { delayMs?: number } = {}): Promise<void> {
    const { js, names, retry } = this.cluster;
    const bytes = toBinary(CommandSchema, command);
    const delayMs = options.delayMs ?? 0;
    if (delayMs > 0) {
      // A timer holding the start command: the server queues it when due.
      await withRetry(`start ${command.invocationId}`, () => scheduleCommand(js, names, { command, dueAtMs: Date.now() + delayMs, timer: 'start', msgID: `${command.invocationId}:start` }), retry);
      return;
    }
    const subject = `${names.commandsSubject}.${command.partitionKey}`;
    await withRetry(`start ${command.invocationId}`, () => js.publish(subject, bytes, { msgID: command.invocationId }), retry);
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

/**
 * Queues a resume command: the invocation continues from its journal on a processor.
 * Retried through a leader election under the same message ID, so it is queued once.
 */
export async function sendResume(cluster: ClusterHandles, target: WakeTarget, messageId: string): Promise<void> {
  const bytes = toBinary(CommandSchema, resumeCommand(target));
  const subject = `${cluster.names.commandsSubject}.${target.partitionKey}`;
  await withRetry(`wake ${target.invocationId}`, () => cluster.js.publish(subject, bytes, { msgID: messageId }), cluster.retry);
}

/**
 * Cancels an invocation. A running one is marked and told, and stops at its next step
 * boundary (the mark survives a processor crash). One that waits (suspended, paused,
 * pending) ends `cancelled` at once; a resume command then lets a processor do what
 * follows an end: cancel its children, wake its parent, pass its partition key on.
 * Safe to retry: a cancel that finds the invocation cancelled (or marked) already sends
 * what follows again, and succeeds.
 * @throws InvocationNotFoundError for an unknown ID.
 * @throws ConflictError when it has completed or failed.
 */
export async function cancelInvocation(cluster: ClusterHandles, invocationId: string): Promise<void> {
  const { states, retry } = cluster;
  for (;;) {
    const found = await withRetry(`cancel ${invocationId}`, () => states.get(invocationId), retry);
    if (!found) throw new InvocationNotFoundError(invocationId);
    const { state } = found;
    // Written before (by an attempt that died before what follows, or by another canceller).
    if (state.status === 'cancelled' || (state.status === 'running' && state.cancelRequested)) return afterCancel(cluster, state);
    if (isTerminal(state.status)) throw new ConflictError(`invocation ${invocationId} is already ${state.status}`);
    const at = BigInt(Date.now());
    const next: ExecutionState =
      state.status === 'running'
        ? { ...state, cancelRequested: true, updatedAtMs: at }
        : {
            ...state,
            cancelRequested: true,
            status: transition(state.status, 'cancelled'),
            error: 'invocation cancelled',
            owner: '',
            updatedAtMs: at,
            endedAtMs: at,
            currentStep: -1,
          };
    try {
      // A write retried after it took effect fails its compare-and-set: the loop looks again.
      await withRetry(`cancel ${invocationId}`, () => states.update(next, found.revision, state), retry);
    } catch (err) {
      if (err instanceof FencedError) continue; // It changed under us: look again.
      throw err;
    }
    await cluster.afterWrite?.('cancel', invocationId);
    return afterCancel(cluster, next);
  }
}

/**
 * What follows a cancel's write: a running invocation is told to stop at its next step
 * boundary; a cancelled one is announced to waiting clients, and a resume command lets a
 * processor finish its end (de-duplicated, and a repeat finds nothing left to do).
 */
async function afterCancel(cluster: ClusterHandles, state: ExecutionState): Promise<void> {
  const { nc, names } = cluster;
  if (state.status === 'running') {
    nc.publish(`${names.controlSubject}.${state.invocationId}`, 'cancel');
    return;
  }
  nc.publish(resultSubject(names, state.invocationId), toBinary(ExecutionStateSchema, state));
  await sendResume(cluster, state, `${state.invocationId}:cancelled`);
}
