/**
 * The HelloService app: serves `hello.HelloService` until SIGINT or SIGTERM.
 *
 *   hello-service [--tls-cert cert.pem --tls-key key.pem [--tls-ca ca.pem]]
 *
 * With `--tls-cert` and `--tls-key` it serves TLS; with `--tls-ca` too, every client must
 * show a certificate that CA signed.
 *
 * Env: GRPC_PORT (default 9090), HELLO_DELAY_MS (delay before each answer, default 0),
 * DURABLE_PROTO_DIR, LOG_LEVEL, LOG_FORMAT=json.
 */
import { parseArgs } from 'node:util';
import { type ServerTls, createLogger, errorMessage, InvalidArgumentError, onShutdown, parseNumberFlag, readPemFile } from '@durable/core';
import { startHelloService } from './hello-service.js';

const logger = createLogger({ name: 'hello-service' });

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
    },
    strict: true,
  });
  const port = parseNumberFlag('GRPC_PORT', process.env.GRPC_PORT, 9090, 0);
  const delayMs = parseNumberFlag('HELLO_DELAY_MS', process.env.HELLO_DELAY_MS, 0, 0);
  const tls = serverTls(values['tls-cert'], values['tls-key'], values['tls-ca']);
  logger.info('Starting HelloService gRPC server...');
  if (tls) logger.info(tls.ca ? 'Serving TLS; clients must show a certificate signed by the --tls-ca' : 'Serving TLS');
  const service = await startHelloService({ port, delayMs, logger, ...(tls ? { tls } : {}) });
  onShutdown(async (signal) => {
    logger.info(`Received ${signal}, shutting down...`);
    await service.stop();
    logger.info('HelloService stopped');
  });
  logger.info({ port: service.port }, `HelloService listening on :${service.port}`);
}

/** The TLS the flags ask for, their files read; undefined without `--tls-cert`. */
function serverTls(certFile: string | undefined, keyFile: string | undefined, caFile: string | undefined): ServerTls | undefined {
  if (certFile === undefined && keyFile === undefined) {
    if (caFile !== undefined) throw new InvalidArgumentError('--tls-ca', 'needs --tls-cert and --tls-key');
    return undefined;
  }
  if (certFile === undefined) throw new InvalidArgumentError('--tls-key', 'needs --tls-cert too');
  if (keyFile === undefined) throw new InvalidArgumentError('--tls-cert', 'needs --tls-key too');
  const read = (flag: string, file: string, kind: 'CERTIFICATE' | 'PRIVATE KEY') => Buffer.from(readPemFile(flag, file, kind));
  return {
    cert: read('--tls-cert', certFile, 'CERTIFICATE'),
    key: read('--tls-key', keyFile, 'PRIVATE KEY'),
    ...(caFile !== undefined ? { ca: read('--tls-ca', caFile, 'CERTIFICATE') } : {}),
  };
}

main().catch((err: unknown) => {
  logger.error(errorMessage(err));
  process.exit(1);
});
