/**
 * Local mode: runs workflows in-process through the same executor and replay engine as the
 * processor, with in-memory journal and state instead of NATS. For fast tests of workflow
 * code and for trying a workflow without a cluster.
 */
import { create } from '@bufbuild/protobuf';
import { randomUUID } from 'node:crypto';
import { checkInvocationId, checkPartitionKey } from '../config.js';
import { CommandSchema, type Command, type ExecutionState } from '../gen/durable/durable_pb.js';
import { CancelledError, ConflictError, errorMessage, InvocationNotFoundError, ServiceNotFoundError, TerminalError } from '../errors.js';
import { Executor } from '../engine/executor.js';
import { isTerminal, transition } from '../engine/lifecycle.js';
import { MemoryAwakeableStore, MemoryJournalStore, MemoryKeyedStateStore, MemoryStateStore } from '../engine/memory-stores.js';
import type { InvocationGateway, ResultNotifier, WakeTarget } from '../engine/stores.js';
import { inputCodec, outputCodec, workflowName, WorkflowRegistry, type AnyWorkflow, type WorkflowRef } from '../engine/workflow.js';
import { silentLogger, type Logger } from '../logger.js';
import type { ServiceInvoker } from '../services/service-invoker.js';
import { resumeCommand } from '../engine/commands.js';

/** Options of {@link LocalRuntime}. */
export interface LocalRuntimeOptions {
  workflows: AnyWorkflow[];
  /** Answers `ctx.call`. @default none: every call fails with ServiceNotFoundError */
  services?: ServiceInvoker;
  /** @default silent */
  logger?: Logger;
}

/** Options of {@link LocalRuntime.run}. */
export interface LocalRunOptions {
  /** @default a random UUID */
  invocationId?: string;
  /** @default 'default' */
  partitionKey?: string;
}

const noServices: ServiceInvoker = {
  call: async (service) => {
    throw new ServiceNotFoundError(`no service ${service} in local mode: pass \`services\` to LocalRuntime`);
  },
  close: () => undefined,
};

/**
 * Runs workflows in-process. Sleeps wait in memory; sends, children, awakeables and
 * exclusive workflows work as on a processor, through in-memory stores and a queue.
 *
 * @example
 * const local = new LocalRuntime({ workflows: [greet], services: fakeHello });
 * expect(await local.invoke(greet, { name: 'Ada' })).toBe('Hello, Ada!');
 */
export class LocalRuntime implements InvocationGateway, ResultNotifier {
  readonly states = new MemoryStateStore();
  readonly journals = new MemoryJournalStore();
  readonly awakeables = new MemoryAwakeableStore();
  readonly keyed = new MemoryKeyedStateStore();
  readonly #executor: Executor;
  readonly #logger: Logger;
  /** Who waits for which invocation to end. */
  readonly #waiters = new Map<string, Array<{ resolve: (state: ExecutionState) => void; reject: (err: unknown) => void }>>();
  /** Wake-ups already sent, by message ID, as the stream's deduplication would keep them. */
  readonly #woken = new Set<string>();
  /** Invocations started here, so an awakeable of theirs may be resolved before it is recorded. */
  readonly #started = new Set<string>();
  /** Aborts a running invocation when it is cancelled. */
  readonly #running = new Map<string, AbortController>();

  constructor(options: LocalRuntimeOptions) {
    this.#logger = options.logger ?? silentLogger();
    this.#executor = new Executor({
      workflows: new WorkflowRegistry(options.workflows),
      states: this.states,
      journals: this.journals,
      services: options.services ?? noServices,
      logger: this.#logger,
      awakeables: this.awakeables,
      keyed: this.keyed,
      invocations: this,
      notifier: this,
    });
  }

  /** Runs an invocation to its end (through its suspensions) and returns its final state. */
  async run<In, Out>(workflow: WorkflowRef<In, Out>, input: In, options: LocalRunOptions = {}): Promise<ExecutionState> {
    const command = create(CommandSchema, {
      invocationId: checkInvocationId(options.invocationId ?? randomUUID()),
      handler: workflowName(workflow),
      args: inputCodec(workflow).encode(input),
      partitionKey: checkPartitionKey(options.partitionKey ?? 'default'),
      submittedAtMs: BigInt(Date.now()),
    });
    this.#started.add(command.invocationId);
    const earlier = await this.states.get(command.invocationId);
    if (earlier && isTerminal(earlier.state.status)) return earlier.state;
    const ended = this.waitForResult(command.invocationId);
    await this.start(command);
    return ended;
  }

  /**
   * Runs a workflow and returns its output.
   * @throws TerminalError with the reason when it failed.
   */
  async invoke<In, Out>(workflow: WorkflowRef<In, Out>, input: In, options: LocalRunOptions = {}): Promise<Out> {
    const state = await this.run(workflow, input, options);
    if (state.status !== 'completed') throw new TerminalError(`invocation ${state.invocationId} ${state.status}: ${state.error}`);
    return outputCodec(workflow).decode(state.currentState, 'workflow output');
  }

  /** Resolves once the invocation has ended. */
  waitForResult(invocationId: string): Promise<ExecutionState> {
    return new Promise((resolve, reject) => {
      const waiting = this.#waiters.get(invocationId) ?? [];
      waiting.push({ resolve, reject });
      this.#waiters.set(invocationId, waiting);
    });
  }

  /** Resolves an awakeable; the invocation waiting on it continues. */
  async resolveAwakeable(awakeableId: string, value: unknown): Promise<void> {
    await this.#settle(awakeableId, { ok: true, value: new TextEncoder().encode(JSON.stringify(value)) });
  }

  /** Rejects an awakeable: the workflow's await throws a TerminalError with the reason. */
  async rejectAwakeable(awakeableId: string, reason: string): Promise<void> {
    await this.#settle(awakeableId, { ok: false, error: reason || 'rejected' });
  }

  async #settle(awakeableId: string, outcome: Parameters<MemoryAwakeableStore['settle']>[1]): Promise<void> {
    const invocationId = await this.awakeables.settle(awakeableId, outcome, (owner) => this.#started.has(owner));
    const found = await this.states.get(invocationId);
    if (found) await this.wake(found.state, `${awakeableId}:settled`);
  }

  async start(command: Command, options: { delayMs?: number } = {}): Promise<void> {
    if (this.#woken.has(`start:${command.invocationId}`)) return;
    this.#woken.add(`start:${command.invocationId}`);
    this.#started.add(command.invocationId);
    const delayMs = options.delayMs ?? 0;
    if (delayMs > 0) setTimeout(() => this.#dispatch(command), delayMs).unref();
    else setImmediate(() => this.#dispatch(command));
  }

  async wake(target: WakeTarget, messageId: string): Promise<void> {
    if (this.#woken.has(messageId)) return;
    this.#woken.add(messageId);
    const resume = resumeCommand(target);
    setImmediate(() => this.#dispatch(resume));
  }

  async cancel(invocationId: string): Promise<void> {
    const found = await this.states.get(invocationId);
    if (!found) throw new InvocationNotFoundError(invocationId);
    if (isTerminal(found.state.status)) throw new ConflictError(`invocation ${invocationId} is already ${found.state.status}`);
    const at = BigInt(Date.now());
    if (found.state.status === 'running') {
      await this.states.update({ ...found.state, cancelRequested: true, updatedAtMs: at }, found.revision);
      this.#running.get(invocationId)?.abort(new CancelledError());
      return;
    }
    const cancelled = { ...found.state, cancelRequested: true, status: transition(found.state.status, 'cancelled'), error: 'invocation cancelled', updatedAtMs: at, endedAtMs: at };
    await this.states.update(cancelled, found.revision);
    // A processor would get a resume command: the executor does what follows an end.
    await this.wake(cancelled, `${invocationId}:cancelled`);
  }

  announce(state: ExecutionState): void {
    const waiting = this.#waiters.get(state.invocationId) ?? [];
    this.#waiters.delete(state.invocationId);
    for (const { resolve } of waiting) resolve(state);
  }

  #dispatch(command: Command): void {
    const control = new AbortController();
    this.#running.set(command.invocationId, control);
    this.#executor
      .execute(command, { signal: control.signal })
      .then((outcome) => {
        // In-process nothing redelivers: a run that can neither go on nor end is an error.
        if (outcome.kind === 'fenced' || outcome.kind === 'interrupted' || outcome.kind === 'busy' || outcome.kind === 'unavailable') {
          throw new TerminalError(`local run of ${command.invocationId} stopped: ${outcome.kind}${'reason' in outcome ? `: ${outcome.reason}` : ''}`);
        }
      })
      .catch((err: unknown) => {
        this.#logger.error({ err, invocation_id: command.invocationId }, `Local run failed: ${errorMessage(err)}`);
        const waiting = this.#waiters.get(command.invocationId) ?? [];
        this.#waiters.delete(command.invocationId);
        for (const { reject } of waiting) reject(err);
      })
      .finally(() => {
        if (this.#running.get(command.invocationId) === control) this.#running.delete(command.invocationId);
      });
  }
}
