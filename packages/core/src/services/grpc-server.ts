/**
 * Small pieces every gRPC service app needs: listening, reading metadata and a shutdown
 * that cannot hang.
 */
import { ServerCredentials, type Metadata, type Server } from '@grpc/grpc-js';

/** The first value of a metadata key, as text. */
export function metadataValue(metadata: Metadata, key: string): string | undefined {
  const [value] = metadata.get(key);
  return value === undefined ? undefined : value.toString();
}

/** Listens without TLS on `host:port` (port 0 picks a free one); resolves with the port. */
export function listenInsecure(server: Server, host: string, port: number): Promise<number> {
  return bind(server, host, port, ServerCredentials.createInsecure());
}

/** A gRPC server's TLS: its certificate chain and key, and the CA its clients' certificates must come from (PEM). */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** When given, every client must show a certificate this CA signed. @default clients show none */
  ca?: Buffer;
}

/** Listens with TLS on `host:port` (port 0 picks a free one); resolves with the port. */
export function listenTls(server: Server, host: string, port: number, tls: ServerTls): Promise<number> {
  const credentials = ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.ca !== undefined);
  return bind(server, host, port, credentials);
}

function bind(server: Server, host: string, port: number, credentials: ServerCredentials): Promise<number> {
  // IPv6 literals need brackets in a `host:port` address.
  const address = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
  });
}

/** Graceful shutdown, forced after `graceMs` so a stuck call cannot hold the process. */
export function shutdownServer(server: Server, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    force.unref();
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
