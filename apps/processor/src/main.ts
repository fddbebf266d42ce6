/**
 * The processor app: runs the registered workflows from the COMMANDS stream.
 *
 *   processor [--consumer processor-1] [--max-concurrent 100] [--ack-wait 8] [--max-attempts 3] [--partitions 4]
 *             [--retention 24h] [--dead-letter-retention 7d] [--http-port 8080] [--http-host 127.0.0.1] [--http-body-limit 1048576]
 *
 * Env: NATS_URL (comma-separated servers) and the credentials and TLS files of a secured
 * cluster (NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT,
 * NATS_KEY), LOG_LEVEL, LOG_FORMAT=json, OTEL_EXPORTER_OTLP_ENDPOINT (traces, see the README), DURABLE_API_TOKEN (the HTTP API's bearer token;
 * unset, the API is open), SERVICES_CONFIG and the service registry's
 * SERVICE_<NAME>_ADDRESS overrides.
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as wait } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  API_TOKEN_ENV,
  apiTokenFromEnv,
  connectNats,
  createGrpcInvoker,
  createLogger,
  DEFAULT_HTTP_BODY_LIMIT,
  DEFAULT_HTTP_HOST,
  DEFAULT_RETENTION_MS,
  errorMessage,
  isTransient,
  loadServiceRegistry,
  onShutdown,
  parseDuration,
  parseNumberFlag,
  DurableClient,
  Processor,
  startHttpApi,
  startTracing,
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
      retention: { type: 'string' },
      'dead-letter-retention': { type: 'string' },
      'http-port': { type: 'string' },
      'http-host': { type: 'string', default: DEFAULT_HTTP_HOST },
      'http-body-limit': { type: 'string' },
    },
    strict: true,
  });
  const maxConcurrent = parseNumberFlag('--max-concurrent', values['max-concurrent'], 100);
  const ackWaitSeconds = parseNumberFlag('--ack-wait', values['ack-wait'], 8);
  // Only when this processor creates the command stream; afterwards the stream's own count
  // holds, and a count given that differs from it is warned about.
  const partitions = values.partitions === undefined ? undefined : parseNumberFlag('--partitions', values.partitions, 4);
  const deadLetter = values['dead-letter-retention'];
  const deadLetterRetentionMs = deadLetter === undefined ? undefined : parseDuration(deadLetter, '--dead-letter-retention');
  const maxAttempts = parseNumberFlag('--max-attempts', values['max-attempts'], 3);
  // How long ended invocations are kept (workflows may set their own); 0 keeps them.
  const retentionMs = values.retention === undefined ? DEFAULT_RETENTION_MS : parseDuration(values.retention, '--retention');
  const httpPort = parseNumberFlag('--http-port', values['http-port'], 8080, 0);
  const httpHost = values['http-host'];
  const httpBodyLimit = parseNumberFlag('--http-body-limit', values['http-body-limit'], DEFAULT_HTTP_BODY_LIMIT);
  const apiToken = apiTokenFromEnv();

  logger.info('Starting Durable Execution Processor...');
  const stopConnecting = new AbortController();
  let processor: Processor | undefined;
  let http: RunningHttpApi | undefined;
  let nc: Awaited<ReturnType<typeof connectNats>> | undefined;
  const services = createGrpcInvoker(loadServiceRegistry());
  const tracing = await startTracing('durable-processor');
  if (tracing) logger.info(`Tracing: spans exported over OTLP to ${process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT}`);
  onShutdown(async (signal) => {
    logger.info(`Received ${signal}, shutting down...`);
    stopConnecting.abort();
    await http?.close();
    await processor?.stop();
    await nc?.drain();
    services.close();
    await tracing?.shutdown();
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
        retentionMs,
        deadLetterRetentionMs,
        ...(tracing ? { tracer: tracing.tracer } : {}),
      });
      break;
    } catch (err) {
      if (!isTransient(err) || stopConnecting.signal.aborted) throw err;
      logger.warn(`Could not start yet (${errorMessage(err)}); trying again in 1 s`);
      await wait(1_000);
    }
  }
  const { metrics } = processor;
  const names = workflows.map((w) => w.name);
  logger.info({ workflows: names }, `Registered workflows: ${names.join(', ')}`);
  if (httpPort > 0) {
    try {
      http = await startHttpApi({
        client: await DurableClient.connect({ nc }),
        logger,
        workflows: names,
        port: httpPort,
        host: httpHost,
        bodyLimit: httpBodyLimit,
        metrics: () => metrics.scrape(),
        // The console's bundle lies beside this app's (dist/console, made by scripts/build.mjs).
        consoleDir: fileURLToPath(new URL('./console/', import.meta.url)),
        ...(apiToken !== undefined ? { token: apiToken } : {}),
      });
      logger.info(`HTTP API listening on ${hostPort(http.host, http.port)} (OpenAPI at /openapi.json)`);
      if (apiToken !== undefined) logger.info(`HTTP API requires Authorization: Bearer <${API_TOKEN_ENV}> on every route but /health and the console's files at /ui`);
      else if (!isLoopback(http.host)) logger.warn(`HTTP API is open to the network without a token: set ${API_TOKEN_ENV}`);
    } catch (err) {
      // Commands keep being processed; only the HTTP API is missing.
      logger.error(`HTTP API could not listen on ${hostPort(httpHost, httpPort)}: ${errorMessage(err)}`);
    }
  }
}

/** `127.0.0.1:8080`, `[::1]:8080`. */
function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

main().catch((err: unknown) => {
  logger.error(errorMessage(err));
  process.exit(2);
});
