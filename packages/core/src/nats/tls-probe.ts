/**
 * Why a TLS connection to a NATS server fails, when nats.js cannot say. With TLS 1.3 a
 * server checks the client's certificate after the client has finished its handshake, so
 * a missing or untrusted client certificate reaches nats.js as an alert on a connection it
 * already counts as open: the alert is dropped and the connect only times out. This probe
 * repeats the handshake on a socket of its own and reports the alert.
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { withOpensslReasons } from '../openssl-text.js';

/** Options of {@link probeTls}. */
export interface TlsProbeOptions {
  /** CA, certificate and key as the connection uses them (PEM text). */
  tls: Pick<TlsConnectionOptions, 'ca' | 'cert' | 'key'>;
  /** Give up (and report nothing) after this long, ms. @default 3_000 */
  timeoutMs?: number;
}

/**
 * Dials `hostPort` (`host:port`), reads the server's INFO and, when the server requires
 * TLS, makes the handshake and a PING. Resolves with a one-phrase reason when the
 * handshake or the first read fails on TLS; undefined when TLS works, the server does not
 * require it, or the server cannot be reached at all (then it is not TLS that failed).
 */
export function probeTls(hostPort: string, options: TlsProbeOptions): Promise<string | undefined> {
  const colon = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(colon + 1));
  return new Promise((resolve) => {
    const sockets: Socket[] = [];
    const done = (reason: string | undefined): void => {
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(undefined), options.timeoutMs ?? 3_000);
    const tcp = connectTcp({ host, port });
    sockets.push(tcp);
    tcp.once('error', () => done(undefined));
    let info = '';
    const onInfo = (chunk: Buffer): void => {
      info += chunk.toString('latin1');
      if (!info.includes('\r\n')) return;
      tcp.off('data', onInfo);
      if (!/"tls_required"\s*:\s*true/.test(info)) return done(undefined);
      const secure = connectTls({ socket: tcp, servername: isIp(host) ? '' : host, ...options.tls });
      sockets.push(secure);
      secure.once('error', (err) => done(describeTlsError(err)));
      secure.once('secureConnect', () => secure.write('PING\r\n'));
      // Anything the server sends back over TLS means the handshake was accepted.
      secure.once('data', () => done(undefined));
    };
    tcp.on('data', onInfo);
  });
}

/** A TLS error as one line a person can act on: what to check, and what TLS said. */
export function describeTlsError(err: Error): string {
  const code = 'code' in err && typeof err.code === 'string' ? err.code : '';
  const hint = TLS_HINTS.find(([pattern]) => pattern.test(code))?.[1];
  const said = withOpensslReasons(err.message);
  return hint === undefined ? `TLS handshake failed: ${said}` : `TLS handshake failed: ${hint} (${said})`;
}


/** The error codes whose cause is known, and what to check. */
const TLS_HINTS: readonly (readonly [RegExp, string])[] = [
  [/CERTIFICATE_REQUIRED$/, 'the server requires a client certificate (NATS_CERT, NATS_KEY)'],
  [/ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN)$/, 'the server does not accept the client certificate (NATS_CERT, NATS_KEY)'],
  [/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT)$/,
    "the server's certificate is not signed by a trusted CA (NATS_CA)"],
  [/^ERR_TLS_CERT_ALTNAME_INVALID$/, "the server's certificate is not for this host name"],
  [/^CERT_HAS_EXPIRED$/, "the server's certificate has expired"],
];

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
