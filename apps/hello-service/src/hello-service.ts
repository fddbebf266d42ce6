/**
 * HelloService (`hello.HelloService` of proto/hello/hello.proto): a plain gRPC server
 * that greets by name. The usage guide's first workflow calls it; any gRPC client can too.
 */
import {
  Server,
  type ServerUnaryCall,
  type sendUnaryData,
  status as Status,
} from '@grpc/grpc-js';
import {
  type Logger,
  type ServerTls,
  createLogger,
  listenInsecure,
  listenTls,
  loadProtoServices,
  metadataValue,
  shutdownServer,
} from '@durable/core';

/** The greeting HelloService answers with. */
export function greeting(name: string): string {
  return `Hello, ${name}! Welcome to Durable Execution on NATS JetStream.`;
}

/** Options of {@link startHelloService}. */
export interface HelloServiceOptions {
  /** Port to listen on; 0 picks a free one (see {@link RunningHelloService.port}). @default 9090 */
  port?: number;
  /** Interface to listen on. @default '0.0.0.0' (all IPv4 interfaces) */
  host?: string;
  /** Where request lines go. @default createLogger({ name: 'hello-service' }) */
  logger?: Logger;
  /** Wait this long before answering, to play a slow service. @default 0 */
  delayMs?: number;
  /** The proto directory. @default found as the service registry finds it */
  protoDir?: string;
  /** Serve TLS with this certificate and key; with `ca`, require client certificates it signed. @default plain text */
  tls?: ServerTls;
}

/** One SayHello request as the service received it. */
export interface ReceivedHello {
  name: string;
  /** The `idempotency-key` metadata, when the caller sent one. */
  idempotencyKey?: string;
  /** The W3C `traceparent` metadata, when the caller traces. */
  traceparent?: string;
}

/** A started HelloService. */
export interface RunningHelloService {
  /** The port it listens on (the real one when started with port 0). */
  port: number;
  /** How many requests arrived per name. */
  calls: Map<string, number>;
  /** Every request, in arrival order. */
  received: ReceivedHello[];
  /**
   * Stops accepting calls and waits for those in flight. Calls still waiting out
   * `delayMs` are answered UNAVAILABLE at once, so callers retry elsewhere or later.
   */
  stop(): Promise<void>;
}

type HelloRequest = { name?: string };
type HelloResponse = { message: string };

/**
 * Starts HelloService. Empty names are answered INVALID_ARGUMENT `name is required`.
 *
 * @example
 * const service = await startHelloService({ port: 0, host: '127.0.0.1' });
 * // ... call it on 127.0.0.1:${service.port}
 * await service.stop();
 */
export async function startHelloService(options: HelloServiceOptions = {}): Promise<RunningHelloService> {
  const logger = options.logger ?? createLogger({ name: 'hello-service' });
  const delayMs = options.delayMs ?? 0;
  const protos = loadProtoServices(options.protoDir !== undefined ? { protoDir: options.protoDir } : {});
  const calls = new Map<string, number>();
  const received: ReceivedHello[] = [];
  const stopping = new AbortController();

  const sayHello = (call: ServerUnaryCall<HelloRequest, HelloResponse>, callback: sendUnaryData<HelloResponse>): void => {
    const name = call.request.name ?? '';
    const idempotencyKey = metadataValue(call.metadata, 'idempotency-key');
    const traceparent = metadataValue(call.metadata, 'traceparent');
    received.push({ name, ...(idempotencyKey !== undefined ? { idempotencyKey } : {}), ...(traceparent !== undefined ? { traceparent } : {}) });
    calls.set(name, (calls.get(name) ?? 0) + 1);
    // `request.name`, not `name`: the logger's own `name` field says which process logged.
    logger.info({ rpc: 'SayHello', request: { name }, idempotency_key: idempotencyKey }, `Received SayHello request: name=${name}`);
    if (name === '') {
      callback({ code: Status.INVALID_ARGUMENT, details: 'name is required' });
      return;
    }
    afterDelay(delayMs, stopping.signal).then(
      () => callback(null, { message: greeting(name) }),
      () => callback({ code: Status.UNAVAILABLE, details: 'HelloService is shutting down' }),
    );
  };

  const server = new Server();
  server.addService(protos.service('hello.HelloService').definition, { SayHello: sayHello });
  const host = options.host ?? '0.0.0.0';
  const port = options.tls
    ? await listenTls(server, host, options.port ?? 9090, options.tls)
    : await listenInsecure(server, host, options.port ?? 9090);
  return {
    port,
    calls,
    received,
    stop: async () => {
      stopping.abort();
      await shutdownServer(server);
    },
  };
}

/** Resolves after `ms`, or rejects at once when `signal` aborts. */
function afterDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
