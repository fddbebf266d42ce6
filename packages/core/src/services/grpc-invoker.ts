/**
 * The {@link ServiceInvoker} that calls services over gRPC, generically: the registry
 * gives each method's path, serializers and message types, so any unary method declared
 * under proto/ can be called with a plain object and no code written for it.
 */
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  Metadata,
  type ServiceError,
  status as Status,
  credentials,
} from '@grpc/grpc-js';
import {
  InvalidArgumentError,
  RetryableError,
  ServiceCallError,
  errorMessage,
} from '../errors.js';
import { withOpensslReasons } from '../openssl-text.js';
import type { CallOptions, ServiceInvoker } from './service-invoker.js';
import type { ResolvedMethod, ServiceRegistry } from './service-registry.js';

/**
 * The statuses worth another attempt:
 * - UNAVAILABLE: the service is down, restarting or unreachable (connection refused too);
 * - DEADLINE_EXCEEDED: the attempt ran out of time; the service may have done the work,
 *   which is why every attempt of a step carries the same `idempotency-key`;
 * - RESOURCE_EXHAUSTED: a quota or rate limit, or an overloaded server, all of which pass.
 *   It also reports a message over the size limit, which never passes: the retry policy's
 *   attempt limit bounds that case.
 * ABORTED is left out: it asks the caller to retry a whole read-modify-write sequence,
 * which only the workflow can decide to do.
 */
const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.RESOURCE_EXHAUSTED,
]);

/** True for the gRPC status codes that are worth retrying (see {@link createGrpcInvoker}). */
export function isTransientStatus(code: number): boolean {
  return TRANSIENT_STATUSES.has(code);
}

/** Default deadline of one attempt, when the call gives none. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/**
 * Channel options applied to every channel. grpc-js backs off reconnecting up to two
 * minutes by default; a service back from an outage would keep failing calls fast for that
 * long, so the back-off is capped at five seconds. Channelz (grpc-js's call statistics for
 * debugging tools, which nothing here reads) is off: it cost 5 to 13 % of the client's CPU
 * per call in an A/B of 8,000 SayHello calls, 64 in flight.
 */
export const DEFAULT_CHANNEL_OPTIONS: Readonly<ChannelOptions> = {
  'grpc.max_reconnect_backoff_ms': 5_000,
  'grpc.enable_channelz': 0,
};

/** Options of {@link createGrpcInvoker}. */
export interface GrpcInvokerOptions {
  /** Deadline of one attempt when a call gives no `timeoutMs`. @default 30_000 */
  defaultTimeoutMs?: number;
  /**
   * Credentials of every channel to a service without `tls` in services.json; one with
   * `tls` gets TLS credentials from it. @default insecure (plain-text HTTP/2)
   */
  credentials?: ChannelCredentials;
  /** grpc-js channel options, merged over {@link DEFAULT_CHANNEL_OPTIONS}. @default {} */
  channelOptions?: ChannelOptions;
}

/**
 * An invoker calling the registry's services over gRPC, with one channel per address,
 * opened on first use and kept until {@link ServiceInvoker.close}.
 *
 * Failures: UNAVAILABLE (connection refused included), DEADLINE_EXCEEDED and
 * RESOURCE_EXHAUSTED throw `RetryableError` (its cause is the gRPC error); every other
 * status throws `ServiceCallError` with the status and details; an unknown service or
 * method throws `ServiceNotFoundError`; a request that does not fit the request message,
 * bad metadata or a bad timeout throw `InvalidArgumentError`. After `close()`, calls and
 * calls still in flight fail with `RetryableError`: a stopping processor must not turn
 * its own shutdown into the failure of a step.
 *
 * @example
 * const invoker = createGrpcInvoker(loadServiceRegistry());
 * const reply = await invoker.call('HelloService', 'SayHello', { name: 'World' }, {
 *   metadata: { 'idempotency-key': 'inv-1:0' },
 *   timeoutMs: 5_000,
 * });
 * // reply: { message: 'Hello, World! Welcome to Durable Execution on NATS JetStream.' }
 */
export function createGrpcInvoker(registry: ServiceRegistry, options: GrpcInvokerOptions = {}): ServiceInvoker {
  return new GrpcInvoker(registry, options);
}

class GrpcInvoker implements ServiceInvoker {
  readonly #registry: ServiceRegistry;
  readonly #defaultTimeoutMs: number;
  readonly #credentials: ChannelCredentials;
  readonly #channelOptions: ChannelOptions;
  readonly #clients = new Map<string, Client>();
  #closed = false;

  constructor(registry: ServiceRegistry, options: GrpcInvokerOptions) {
    this.#registry = registry;
    this.#defaultTimeoutMs = checkTimeout(options.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS, 'defaultTimeoutMs');
    this.#credentials = options.credentials ?? credentials.createInsecure();
    this.#channelOptions = { ...DEFAULT_CHANNEL_OPTIONS, ...options.channelOptions };
  }

  async call(service: string, method: string, request: unknown, options: CallOptions = {}): Promise<unknown> {
    const target = `${service}.${method}`;
    if (this.#closed) throw new RetryableError(`${target}: the service invoker is closed`);
    const resolved = this.#registry.resolve(service, method);
    if (!resolved.method.unary) {
      throw new InvalidArgumentError('method', `${target} is a streaming method; only unary methods can be called`);
    }
    const label = `${target} request`;
    this.#registry.protos.shapes.check(resolved.method.requestType, request, label);
    let payload: Buffer;
    try {
      payload = resolved.method.definition.requestSerialize(request as object);
    } catch (err) {
      throw new InvalidArgumentError(label, errorMessage(err));
    }
    const metadata = toMetadata(options.metadata, target);
    const timeoutMs = checkTimeout(options.timeoutMs ?? this.#defaultTimeoutMs, 'timeoutMs');
    const client = this.#client(resolved);

    return new Promise<unknown>((resolve, reject) => {
      // grpc-js captures the caller's stack at every call (a `new Error()`), to add to the
      // stack of the call's error if it fails: about 3 % of a busy processor's CPU. Not
      // captured: the error made of a failed call names its service, method and status.
      const stackTraceLimit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        client.makeUnaryRequest(
          resolved.method.path,
          // Serialized above, so that a bad request is an InvalidArgumentError and not a status.
          (bytes: Buffer) => bytes,
          (bytes: Buffer) => resolved.method.definition.responseDeserialize(bytes),
          payload,
          metadata,
          { deadline: Date.now() + timeoutMs },
          (err: ServiceError | null, response?: object) => {
            if (err) reject(this.#toError(err, service, method));
            else resolve(response);
          },
        );
      } finally {
        Error.stackTraceLimit = stackTraceLimit;
      }
    });
  }

  close(): void {
    this.#closed = true;
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  /**
   * One client, hence one channel, per address, shared by every service served there
   * without TLS; a service called over TLS has its own, with its own certificates.
   */
  #client(resolved: ResolvedMethod): Client {
    const { address, tls } = resolved;
    const key = tls === undefined ? address : `${resolved.service.fullName} over TLS at ${address}`;
    let client = this.#clients.get(key);
    if (!client) {
      const channelCredentials =
        tls === undefined ? this.#credentials : credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert));
      client = new Client(address, channelCredentials, this.#channelOptions);
      this.#clients.set(key, client);
    }
    return client;
  }

  #toError(err: ServiceError, service: string, method: string): Error {
    const code = typeof err.code === 'number' ? err.code : Status.UNKNOWN;
    const name = Status[code] ?? String(code);
    // A failed TLS handshake (a client certificate the service requires, missing) comes as
    // UNAVAILABLE with OpenSSL's multi-line text; made one line here, in the cause too, which logs print.
    const details = withOpensslReasons(err.details);
    err.details = details;
    err.message = withOpensslReasons(err.message);
    if (this.#closed || isTransientStatus(code)) {
      return new RetryableError(`${service}.${method} failed with ${name} (${code}): ${details}`, { cause: err });
    }
    return new ServiceCallError(service, method, code, details, { cause: err });
  }
}

/** Call metadata from a plain record; grpc-js rejects invalid keys and values, named here. */
function toMetadata(record: Record<string, string> | undefined, target: string): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(record ?? {})) {
    try {
      metadata.add(key, value);
    } catch (err) {
      throw new InvalidArgumentError(`${target} metadata ${JSON.stringify(key)}`, errorMessage(err));
    }
  }
  return metadata;
}

function pem(text: string | undefined): Buffer | null {
  return text === undefined ? null : Buffer.from(text);
}

function checkTimeout(ms: number, field: string): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new InvalidArgumentError(field, `${ms} is not a positive number of ms`);
  return ms;
}
