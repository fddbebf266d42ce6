/**
 * What the engine needs from the services a workflow calls: one method, `call`. The gRPC
 * invoker (grpc-invoker.ts) is the implementation the apps use; tests substitute fakes.
 */

/** Options of one {@link ServiceInvoker.call} attempt. */
export interface CallOptions {
  /** gRPC metadata sent with the call, e.g. the idempotency key. */
  metadata?: Record<string, string>;
  /** Deadline of one attempt. @default 30_000 */
  timeoutMs?: number;
}

/**
 * Calls methods of the services in the registry.
 *
 * Failures are typed so the engine can branch on them: a transient failure throws
 * `RetryableError`; any other non-OK status throws `ServiceCallError` (terminal, carrying
 * the gRPC status); an unknown service or method throws `ServiceNotFoundError`; a request
 * that does not fit the method's message type throws `InvalidArgumentError`.
 *
 * @example
 * const invoker = createGrpcInvoker(loadServiceRegistry());
 * const { message } = (await invoker.call('HelloService', 'SayHello', { name: 'World' })) as { message: string };
 * invoker.close();
 */
export interface ServiceInvoker {
  /** Calls `service.method` with a plain-object request; resolves with the plain-object response. */
  call(service: string, method: string, request: unknown, options?: CallOptions): Promise<unknown>;
  close(): void;
}
