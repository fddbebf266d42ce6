/**
 * The processor app: runs the registered workflows from the COMMANDS stream.
 *
 *   processor [--consumer processor-1] [--max-concurrent 100] [--ack-wait 8] [--max-attempts 3] [--partitions 16] [--http-port 8080]
 *
 * Env: NATS_URL (comma-separated servers) and the credentials and TLS files of a secured
 * cluster (NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT,
 * NATS_KEY), LOG_LEVEL, LOG_FORMAT=json, SERVICES_CONFIG and the service registry's
 * SERVICE_<NAME>_ADDRESS overrides.
 */
import { setTimeout as wait } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  connectNats,
  createGrpcInvoker,
  createLogger,
  errorMessage,
  isTransient,
  loadServiceRegistry,
  onShutdown,
  parseNumberFlag,
  DurableClient,
  Processor,
  startHttpApi,
  type RunningHttpApi,
} from '@durable/core';
import { workflows } from './workflows/index.js';

const logger = createLogger({ name: 'processor' });

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      consumer: { type: 'string', default: process.env.CONSUMER_NAME ?? 'processor-1' },
      'max-concurrent': { type: 'string' },
      'ack-wait': { type: 'string' },
      'max-attempts': { type: 'string' },
      partitions: { type: 'string' },
      'http-port': { type: 'string' },
    },
    strict: true,
  });
  const maxConcurrent = parseNumberFlag('--max-concurrent', values['max-concurrent'], 100);
  const ackWaitSeconds = parseNumberFlag('--ack-wait', values['ack-wait'], 8);
  // Only when this processor creates the command stream; afterwards the stream's own count holds.
  const partitions = parseNumberFlag('--partitions', values.partitions, 16);
  const maxAttempts = parseNumberFlag('--max-attempts', values['max-attempts'], 3);
  const httpPort = parseNumberFlag('--http-port', values['http-port'], 8080, 0);

  logger.info('Starting Durable Execution Processor...');
  const stopConnecting = new AbortController();
  let processor: Processor | undefined;
  let http: RunningHttpApi | undefined;
  let nc: Awaited<ReturnType<typeof connectNats>> | undefined;
  const services = createGrpcInvoker(loadServiceRegistry());
  onShutdown(async (signal) => {
    logger.info(`Received ${signal}, shutting down...`);
    stopConnecting.abort();
    await http?.close();
    await processor?.stop();
    await nc?.drain();
    services.close();
    logger.info('Processor stopped');
  });

  nc = await connectNats({ name: 'durable-processor', logger, signal: stopConnecting.signal });
  // A leader election (a NATS node lost) can outlast the setup's own retries: start again.
  for (;;) {
    try {
      processor = await Processor.start({
        nc,
        workflows,
        services,
        logger,
        consumerName: values.consumer,
        maxConcurrent,
        ackWaitSeconds,
        maxAttempts,
        partitions,
      });
      break;
    } catch (err) {
      if (!isTransient(err) || stopConnecting.signal.aborted) throw err;
      logger.warn(`Could not start yet (${errorMessage(err)}); trying again in 1 s`);
      await wait(1_000);
    }
  }
  const names = workflows.map((w) => w.name);
  logger.info({ workflows: names }, `Registered workflows: ${names.join(', ')}`);
  if (httpPort > 0) {
    try {
      http = await startHttpApi({ client: await DurableClient.connect({ nc }), logger, workflows: names, port: httpPort });
      logger.info(`HTTP API listening on :${http.port} (OpenAPI at /openapi.json)`);
    } catch (err) {
      // Commands keep being processed; only the HTTP API is missing.
      logger.error(`HTTP API could not listen on :${httpPort}: ${errorMessage(err)}`);
    }
  }
}

main().catch((err: unknown) => {
  logger.error(errorMessage(err));
  process.exit(2);
});
