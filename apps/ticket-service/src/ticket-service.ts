/**
 * TicketService (`ticket.TicketService` of proto/ticket/ticket.proto): reserves and
 * releases tickets, in memory, for the ticket-cart example.
 *
 * The engine retries a call whose answer it never saw (a deadline, a lost connection)
 * with the same `idempotency-key`. A Reserve retried after it succeeded would otherwise
 * answer "already reserved" to its own reservation, so the first answer given under a key
 * is remembered and given again.
 */
import {
  Server,
  type ServerUnaryCall,
  type sendUnaryData,
  status as Status,
} from '@grpc/grpc-js';
import { type Logger, createLogger, listenInsecure, loadProtoServices, metadataValue, shutdownServer } from '@durable/core';

/** Options of {@link startTicketService}. */
export interface TicketServiceOptions {
  /** Port to listen on; 0 picks a free one (see {@link RunningTicketService.port}). @default 9091 */
  port?: number;
  /** Interface to listen on. @default '0.0.0.0' (all IPv4 interfaces) */
  host?: string;
  /** Where request lines go. @default createLogger({ name: 'ticket-service' }) */
  logger?: Logger;
  /** The proto directory. @default found as the service registry finds it */
  protoDir?: string;
}

/** One request as the service received it. */
export interface ReceivedTicketRequest {
  method: 'Reserve' | 'Release';
  ticketId: string;
  /** The `idempotency-key` metadata, when the caller sent one. */
  idempotencyKey?: string;
}

/** A started TicketService. */
export interface RunningTicketService {
  /** The port it listens on (the real one when started with port 0). */
  port: number;
  /** The tickets reserved now. */
  reserved: ReadonlySet<string>;
  /** Every request, in arrival order, repeats under one idempotency key included. */
  received: ReceivedTicketRequest[];
  /** Stops accepting calls and waits for those in flight. */
  stop(): Promise<void>;
}

type TicketRequest = { ticketId?: string };
type ReserveResponse = { success: boolean; message: string };
type ReleaseResponse = { success: boolean };

/**
 * Starts TicketService. Reserve succeeds when the ticket is free
 * (`{ success: true, message: 'reserved <id>' }`) and fails softly when it is taken
 * (`{ success: false, message: 'ticket <id> is already reserved' }`); Release frees a
 * ticket and says whether it was reserved. An empty ticket ID is INVALID_ARGUMENT.
 *
 * @example
 * const tickets = await startTicketService({ port: 0, host: '127.0.0.1' });
 * await tickets.stop();
 */
export async function startTicketService(options: TicketServiceOptions = {}): Promise<RunningTicketService> {
  const logger = options.logger ?? createLogger({ name: 'ticket-service' });
  const protos = loadProtoServices(options.protoDir !== undefined ? { protoDir: options.protoDir } : {});
  const reserved = new Set<string>();
  const received: ReceivedTicketRequest[] = [];
  /** First answer per `<method>:<idempotency key>`. Unbounded: this is a demo service. */
  const answered = new Map<string, ReserveResponse | ReleaseResponse>();

  /** Logs and records a request, and answers it once per idempotency key. */
  const handle = <Res extends ReserveResponse | ReleaseResponse>(
    method: ReceivedTicketRequest['method'],
    call: ServerUnaryCall<TicketRequest, Res>,
    callback: sendUnaryData<Res>,
    apply: (ticketId: string) => Res,
  ): void => {
    const ticketId = call.request.ticketId ?? '';
    const idempotencyKey = metadataValue(call.metadata, 'idempotency-key');
    received.push(idempotencyKey === undefined ? { method, ticketId } : { method, ticketId, idempotencyKey });
    logger.info(
      { rpc: method, ticket_id: ticketId, idempotency_key: idempotencyKey },
      `Received ${method} request: ticket_id=${ticketId}`,
    );
    if (ticketId === '') {
      callback({ code: Status.INVALID_ARGUMENT, details: 'ticket_id is required' });
      return;
    }
    const key = idempotencyKey === undefined ? undefined : `${method}:${idempotencyKey}`;
    const earlier = key === undefined ? undefined : answered.get(key);
    if (earlier) {
      logger.debug({ rpc: method, idempotency_key: idempotencyKey }, `Repeated ${method} request: answering as before`);
      callback(null, earlier as Res);
      return;
    }
    const response = apply(ticketId);
    if (key !== undefined) answered.set(key, response);
    callback(null, response);
  };

  const server = new Server();
  server.addService(protos.service('ticket.TicketService').definition, {
    Reserve: (call: ServerUnaryCall<TicketRequest, ReserveResponse>, callback: sendUnaryData<ReserveResponse>) =>
      handle('Reserve', call, callback, (id) => {
        if (reserved.has(id)) return { success: false, message: `ticket ${id} is already reserved` };
        reserved.add(id);
        return { success: true, message: `reserved ${id}` };
      }),
    Release: (call: ServerUnaryCall<TicketRequest, ReleaseResponse>, callback: sendUnaryData<ReleaseResponse>) =>
      handle('Release', call, callback, (id) => ({ success: reserved.delete(id) })),
  });
  const port = await listenInsecure(server, options.host ?? '0.0.0.0', options.port ?? 9091);
  return { port, reserved, received, stop: () => shutdownServer(server) };
}
