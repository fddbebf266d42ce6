/**
 * The HelloService app: serves `hello.HelloService` until SIGINT or SIGTERM.
 *
 * Env: GRPC_PORT (default 9090), HELLO_DELAY_MS (delay before each answer, default 0),
 * DURABLE_PROTO_DIR, LOG_LEVEL, LOG_FORMAT=json.
 */
import { createLogger, errorMessage, onShutdown, parseNumberFlag } from '@durable/core';
import { startHelloService } from './hello-service.js';

const logger = createLogger({ name: 'hello-service' });

async function main(): Promise<void> {
  const port = parseNumberFlag('GRPC_PORT', process.env.GRPC_PORT, 9090, 0);
  const delayMs = parseNumberFlag('HELLO_DELAY_MS', process.env.HELLO_DELAY_MS, 0, 0);
  logger.info('Starting HelloService gRPC server...');
  const service = await startHelloService({ port, delayMs, logger });
  onShutdown(async (signal) => {
    logger.info(`Received ${signal}, shutting down...`);
    await service.stop();
    logger.info('HelloService stopped');
  });
  logger.info({ port: service.port }, `HelloService listening on :${service.port}`);
}

main().catch((err: unknown) => {
  logger.error(errorMessage(err));
  process.exit(1);
});
