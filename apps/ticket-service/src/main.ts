/**
 * The TicketService app: serves `ticket.TicketService` until SIGINT or SIGTERM.
 *
 * Env: GRPC_PORT (default 9091), DURABLE_PROTO_DIR, LOG_LEVEL, LOG_FORMAT=json.
 */
import { createLogger, errorMessage, onShutdown, parseNumberFlag } from '@durable/core';
import { startTicketService } from './ticket-service.js';

const logger = createLogger({ name: 'ticket-service' });

async function main(): Promise<void> {
  const port = parseNumberFlag('GRPC_PORT', process.env.GRPC_PORT, 9091, 0);
  logger.info('Starting TicketService gRPC server...');
  const service = await startTicketService({ port, logger });
  onShutdown(async (signal) => {
    logger.info(`Received ${signal}, shutting down...`);
    await service.stop();
    logger.info('TicketService stopped');
  });
  logger.info({ port: service.port }, `TicketService listening on :${service.port}`);
}

main().catch((err: unknown) => {
  logger.error(errorMessage(err));
  process.exit(1);
});
