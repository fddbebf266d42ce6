/**
 * Local mode: runs workflows in-process through the same executor and replay engine as the
 * processor, with in-memory journal and state instead of NATS. For fast tests of workflow
 * code and for trying a workflow without a cluster.
 */
import { create } from '@bufbuild/protobuf';
import { randomUUID } from 'node:crypto';
import { checkInvocationId, checkPartitionKey } from '../config.js';
import { CommandSchema, type ExecutionState } from '../gen/durable/durable_pb.js';
import { ServiceNotFoundError, TerminalError } from '../errors.js';
import { decodeJson, encodeJson } from '../engine/codec.js';
import { Executor } from '../engine/executor.js';
import { MemoryJournalStore, MemoryStateStore } from '../engine/memory-stores.js';
import { WorkflowRegistry, type AnyWorkflow, type Workflow } from '../engine/workflow.js';
import { silentLogger, type Logger } from '../logger.js';
import type { ServiceInvoker } from '../services/service-invoker.js';

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
 * Runs workflows in-process. Sleeps wait in memory; everything else behaves as on a
 * processor, journal and replay included.
 *
 * @example
 * const local = new LocalRuntime({ workflows: [greet], services: fakeHello });
 * expect(await local.invoke(greet, { name: 'Ada' })).toBe('Hello, Ada!');
 */
export class LocalRuntime {
  readonly states = new MemoryStateStore();
  readonly journals = new MemoryJournalStore();
  readonly #executor: Executor;

  constructor(options: LocalRuntimeOptions) {
    this.#executor = new Executor({
      workflows: new WorkflowRegistry(options.workflows),
      states: this.states,
      journals: this.journals,
      services: options.services ?? noServices,
      logger: options.logger ?? silentLogger(),
    });
  }

  /** Runs an invocation to its end and returns its final state. */
  async run<In, Out>(workflow: string | Workflow<In, Out>, input: In, options: LocalRunOptions = {}): Promise<ExecutionState> {
    const command = create(CommandSchema, {
      invocationId: checkInvocationId(options.invocationId ?? randomUUID()),
      handler: typeof workflow === 'string' ? workflow : workflow.name,
      args: encodeJson(input),
      partitionKey: checkPartitionKey(options.partitionKey ?? 'default'),
      submittedAtMs: BigInt(Date.now()),
    });
    const outcome = await this.#executor.execute(command);
    if (outcome.kind === 'ended' || outcome.kind === 'already-ended') return outcome.state;
    throw new TerminalError(`local run of ${command.invocationId} did not end: ${outcome.kind}`);
  }

  /**
   * Runs a workflow and returns its output.
   * @throws TerminalError with the reason when it failed.
   */
  async invoke<In, Out>(workflow: Workflow<In, Out>, input: In, options: LocalRunOptions = {}): Promise<Out> {
    const state = await this.run(workflow, input, options);
    if (state.status !== 'completed') throw new TerminalError(`invocation ${state.invocationId} ${state.status}: ${state.error}`);
    return decodeJson<Out>(state.currentState, 'workflow output');
  }
}
