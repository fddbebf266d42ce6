/**
 * Workflow definitions and the registry a processor (or local mode) runs them from.
 */
import { HandlerNotFoundError, InvalidArgumentError } from '../errors.js';
import type { Context } from './context.js';
import type { RetryPolicy } from './retry-policy.js';

/** Options of {@link defineWorkflow}. */
export interface WorkflowOptions {
  /** The service the workflow mainly calls, shown in logs and commands. @default '' */
  service?: string;
  /** Default retry policy of the workflow's steps. @default retry forever, 100 ms doubling to 10 s */
  retry?: Partial<RetryPolicy>;
}

/** A workflow's code: a plain async function of its context and input. */
export type WorkflowHandler<In, Out> = (ctx: Context, input: In) => Promise<Out>;

/** A workflow: its name, its code and its options. `In`/`Out` type the client's calls. */
export interface Workflow<In = unknown, Out = unknown> {
  readonly name: string;
  readonly handler: WorkflowHandler<In, Out>;
  readonly options: Readonly<WorkflowOptions>;
}

/**
 * A workflow of any input and output, as the registry holds them. `any`, not `unknown`:
 * a handler taking `{ name: string }` is not assignable to one taking `unknown` (parameters
 * are contravariant), and the registry must hold both side by side.
 */
export type AnyWorkflow = Workflow<any, any>;

/**
 * Defines a workflow. Register it with a processor; invoke it by name, or with the
 * definition itself for typed input and output.
 *
 * @example
 * export const greet = defineWorkflow<{ name: string }, string>('greet', async (ctx, { name }) => {
 *   const res = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name });
 *   return res.message;
 * });
 */
export function defineWorkflow<In = unknown, Out = unknown>(
  name: string,
  handler: WorkflowHandler<In, Out>,
  options: WorkflowOptions = {},
): Workflow<In, Out> {
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(name)) {
    throw new InvalidArgumentError('workflow name', `${JSON.stringify(name)} must be 1 to 128 letters, digits, '_', '.' or '-'`);
  }
  return Object.freeze({ name, handler, options: Object.freeze({ ...options }) });
}

/** The workflows a processor can run, by name. */
export class WorkflowRegistry {
  readonly #workflows = new Map<string, AnyWorkflow>();

  constructor(workflows: Iterable<AnyWorkflow> = []) {
    for (const workflow of workflows) this.register(workflow);
  }

  /** Adds a workflow; a second workflow of the same name is an error. */
  register(workflow: AnyWorkflow): this {
    if (this.#workflows.has(workflow.name)) {
      throw new InvalidArgumentError('workflow name', `${workflow.name} is registered twice`);
    }
    this.#workflows.set(workflow.name, workflow);
    return this;
  }

  /** The workflow of that name, or undefined. */
  find(name: string): AnyWorkflow | undefined {
    return this.#workflows.get(name);
  }

  /**
   * The workflow of that name.
   * @throws HandlerNotFoundError
   */
  get(name: string): AnyWorkflow {
    const workflow = this.#workflows.get(name);
    if (!workflow) throw new HandlerNotFoundError(name);
    return workflow;
  }

  /** The registered names, sorted. */
  names(): string[] {
    return [...this.#workflows.keys()].sort();
  }
}
