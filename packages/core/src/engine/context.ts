/**
 * The workflow context: everything a workflow does that is not pure computation goes
 * through it, so that it is journaled once and replayed identically after a crash.
 */
import type { Logger } from '../logger.js';
import type { RetryPolicy } from './retry-policy.js';
import type { WorkflowRef } from './workflow.js';

/** Options of {@link Context.send}. */
export interface SendOptions {
  /** Start the new invocation this many ms from now; the wait is a durable timer. @default 0 */
  delay?: number;
  /** Partition key of the new invocation. @default 'default' */
  partitionKey?: string;
}

/** Options of {@link Context.invoke}. */
export interface InvokeOptions {
  /** Partition key of the child invocation. @default 'default' */
  partitionKey?: string;
}

/** Options of {@link Context.call}. */
export interface CallStepOptions {
  /** How transient failures (UNAVAILABLE, DEADLINE_EXCEEDED) are retried. @default the workflow's, else retry forever */
  retry?: Partial<RetryPolicy>;
  /** Deadline of one attempt, ms. @default 30_000 */
  timeoutMs?: number;
}

/** Options of {@link Context.run}. */
export interface RunStepOptions {
  /** How failures other than `TerminalError` are retried. @default the workflow's, else retry forever */
  retry?: Partial<RetryPolicy>;
}

/** See {@link Context.awakeable}. */
export interface Awakeable<T> {
  readonly id: string;
  readonly promise: Promise<T>;
}

/** The context a workflow receives. */
export interface Context {
  /** The ID of this invocation. */
  readonly invocationId: string;
  /** The workflow's name. */
  readonly handler: string;
  /** The partition key the invocation was submitted with. */
  readonly partitionKey: string;
  /**
   * A logger that stays silent while the workflow replays journaled steps, so each line
   * is printed once however often the workflow is replayed.
   */
  readonly log: Logger;

  /**
   * Calls a gRPC method of a service in the registry and journals the response. On replay
   * the journaled response is returned and the service is not called again. Each attempt
   * carries the metadata `idempotency-key: <invocationId>:<step>`. Transient failures are
   * retried with backoff; any other status is journaled and thrown as a `ServiceCallError`.
   *
   * @example
   * const { message } = await ctx.call<{ message: string }>('HelloService', 'SayHello', { name: 'World' });
   */
  call<Res = unknown>(service: string, method: string, request: unknown, options?: CallStepOptions): Promise<Res>;

  /**
   * Runs a side effect once and journals its result (which must be JSON-serialisable).
   * A thrown `TerminalError` fails the step for good; any other error is retried.
   *
   * @example
   * const charge = await ctx.run('charge card', () => payments.charge(order), { retry: { maxAttempts: 5 } });
   */
  run<T>(name: string, fn: () => Promise<T> | T, options?: RunStepOptions): Promise<T>;

  /** The current time in ms since the epoch, journaled: the same on every replay. */
  now(): Promise<number>;
  /** A random number in [0, 1), journaled: the same on every replay. */
  random(): Promise<number>;
  /** A random UUID, journaled: the same on every replay. */
  uuid(): Promise<string>;

  /**
   * Sleeps durably. A long sleep suspends the invocation: the processor keeps nothing of it
   * in memory, a timer outside the processor wakes it when due (also after restarts), and
   * the workflow continues from its journal.
   *
   * @example
   * await ctx.sleep(3 * 24 * 60 * 60 * 1000); // three days
   */
  sleep(ms: number): Promise<void>;

  /**
   * An awakeable: an ID to hand to someone outside, and a promise that settles when they
   * resolve or reject it by that ID (client, HTTP API or another workflow). Awaiting it
   * suspends the invocation until then; a resolution that comes first is kept, not lost.
   * A rejection throws a `TerminalError` with the reason.
   *
   * @example
   * const approval = ctx.awakeable<{ approved: boolean }>();
   * await ctx.run('ask for approval', () => mailer.send(manager, approval.id));
   * const { approved } = await approval.promise;
   */
  awakeable<T = unknown>(): Awakeable<T>;

  /**
   * The first of several durable promises to settle, the same one on every replay (the
   * winner is journaled; a plain `Promise.race` could pick another one on replay).
   * `Promise.all` needs no help: it waits for every promise whatever their order.
   *
   * @example
   * const approval = ctx.awakeable<boolean>();
   * const timeout = ctx.sleep(24 * 60 * 60 * 1000).then(() => false);
   * const approved = await ctx.race([approval.promise, timeout]);
   */
  race<T>(promises: ReadonlyArray<Promise<T>>): Promise<T>;

  /**
   * The first of several durable promises to succeed, the same one on every replay; when
   * all fail, an `AggregateError` of their errors.
   *
   * @example
   * const quote = await ctx.any([ctx.invoke(quoteA, order), ctx.invoke(quoteB, order)]);
   */
  any<T>(promises: ReadonlyArray<Promise<T>>): Promise<T>;

  /**
   * Resolves another invocation's awakeable (a journaled step: done once); the invocation
   * waiting on it continues. An unknown ID or one settled before fails the step with a
   * `TerminalError` saying so.
   */
  resolveAwakeable(awakeableId: string, value: unknown): Promise<void>;
  /** Rejects another invocation's awakeable: its await throws a `TerminalError` with the reason. */
  rejectAwakeable(awakeableId: string, reason: string): Promise<void>;

  /**
   * Starts another invocation and does not wait for it: durable fire-and-forget. The send is
   * a journaled step, so however often this workflow replays, exactly one invocation is
   * started per send; its ID (derived from this invocation's and the step's) is returned.
   * With `delay`, it starts after that many ms, held by a durable timer meanwhile.
   *
   * @example
   * await ctx.send(reminder, { orderId }, { delay: 24 * 60 * 60 * 1000, partitionKey: orderId });
   */
  send<In>(workflow: WorkflowRef<In, unknown>, input: In, options?: SendOptions): Promise<string>;

  /**
   * Runs another workflow as a child and returns its output. While the child runs, this
   * invocation is suspended: the processor holds nothing of it in memory. A child that
   * fails or is cancelled throws a `TerminalError` here; cancelling this invocation cancels
   * its running children.
   *
   * @example
   * const receipt = await ctx.invoke(chargeCard, { orderId, amount });
   */
  invoke<In, Out>(workflow: WorkflowRef<In, Out>, input: In, options?: InvokeOptions): Promise<Out>;

  /**
   * The value stored under `key`, or undefined. State is scoped to the invocation and rebuilt
   * from the journal on replay; it ends up in the final state's `workflow_state`. In a
   * workflow declared `exclusive`, state belongs to the partition key instead: every
   * invocation of that key sees what the ones before it left.
   */
  get<T = unknown>(key: string): T | undefined;
  /** Stores a JSON value under `key` (one journal entry). */
  set(key: string, value: unknown): Promise<void>;
  /** Removes `key` (one journal entry). */
  clear(key: string): Promise<void>;
}
