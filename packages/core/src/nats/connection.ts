/**
 * Connecting to the cluster. An unreachable cluster is reported in one line and retried;
 * a lost connection is reported and the client reconnects on its own. A server older than
 * the engine needs, or one that refuses the credentials or the certificate, is reported
 * at once, in one line. Credentials and TLS come from the environment
 * (see connection-settings.ts for the variables).
 */
import { connect, errors as natsErrors, type NatsConnection, type ReconnectToServerHandler } from '@nats-io/transport-node';
import { setTimeout as wait } from 'node:timers/promises';
import { AccessDeniedError, ConnectionError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { type ConnectionSettings, type Env, connectionSettings } from './connection-settings.js';
import { assertServerVersion } from './server-version.js';
import { describeTlsError, probeTls } from './tls-probe.js';

/** Options of {@link connectNats}. */
export interface ConnectOptions {
  /**
   * Server URLs; `tls://` requires TLS, `user:password@` or `token@` authenticates.
   * @default `NATS_URL` split on commas, else the local 3-node cluster
   */
  servers?: string[];
  /**
   * Where `NATS_URL` and the credential and TLS variables (`NATS_USER`, `NATS_PASSWORD`,
   * `NATS_TOKEN`, `NATS_NKEY`, `NATS_CREDS`, `NATS_CA`, `NATS_CERT`, `NATS_KEY`) are read.
   * @default process.env
   */
  env?: Env;
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** Where connection trouble is reported. */
  logger?: Logger;
  /** Connection attempts before giving up. @default Infinity */
  maxAttempts?: number;
  /** Wait between attempts, ms. @default 2_000 */
  retryDelayMs?: number;
  /** Stops the retries (e.g. on SIGINT). */
  signal?: AbortSignal;
}

/**
 * Connects to the cluster, retrying while it is unreachable.
 * @throws InvalidArgumentError for unusable credential or TLS settings (a file that cannot be read), before connecting.
 * @throws ConnectionError after `maxAttempts`, or when aborted.
 * @throws AccessDeniedError when the server refuses the credentials or the TLS handshake; not retried.
 * @throws ServerVersionError when the server is older than the engine needs (`MIN_NATS_SERVER_VERSION`, 2.12); not retried.
 */
export async function connectNats(options: ConnectOptions = {}): Promise<NatsConnection> {
  const nc = await connectWithRetries(options);
  try {
    assertServerVersion(nc);
  } catch (err) {
    await nc.close();
    throw err;
  }
  if (options.logger) reportStatus(nc, options.logger);
  return nc;
}

async function connectWithRetries(options: ConnectOptions): Promise<NatsConnection> {
  const settings = connectionSettings(options.env ?? process.env, options.servers);
  const servers = settings.display.join(',');
  const maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
  const retryDelayMs = options.retryDelayMs ?? 2_000;
  for (let attempt = 1; ; attempt++) {
    const firstDials = new FirstDials();
    try {
      const nc = await connect({
        servers: settings.servers,
        ...settings.options,
        reconnectToServer: firstDials.handler,
        ...(options.name ? { name: options.name } : {}),
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: 3_000,
        // A server cut off without a reset (a network partition) is noticed after two
        // unanswered pings, 10 s, and the connection moves to another; the default is minutes.
        pingInterval: 5_000,
        maxPingOut: 2,
        // No stack captured at every request for a richer timeout error: measurable CPU on
        // the hot path, where requests are many and their errors say what they are anyway.
        noAsyncTraces: true,
      });
      firstDials.connected = true;
      return nc;
    } catch (err) {
      const denied = await refusal(err, settings);
      if (denied !== undefined) throw new AccessDeniedError(servers, denied, { cause: err });
      const message = `NATS unreachable at ${servers}: ${errorMessage(err)}`;
      if (attempt >= maxAttempts || options.signal?.aborted) throw new ConnectionError(message, { cause: err });
      options.logger?.warn(`${message}; retrying in ${Math.round(retryDelayMs / 1000)} s`);
      try {
        await wait(retryDelayMs, undefined, options.signal ? { signal: options.signal } : {});
      } catch {
        throw new ConnectionError(message, { cause: err });
      }
    }
  }
}

/**
 * Why the server turned the connection down for who we are rather than for where it is,
 * or undefined: the credentials (nats.js's AuthorizationError) or the TLS handshake (a
 * certificate one side does not trust, a client certificate missing). Trying again cannot
 * help. A refused client certificate reaches nats.js as a timeout (see tls-probe.ts): a
 * timeout on a TLS connection is checked by a probe of the servers.
 */
async function refusal(err: unknown, settings: ConnectionSettings): Promise<string | undefined> {
  if (err instanceof natsErrors.AuthorizationError) return err.message;
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = 'code' in e && typeof e.code === 'string' ? e.code : '';
    if (/^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT)/.test(code)) return describeTlsError(e);
  }
  if (!(err instanceof natsErrors.TimeoutError) && !FirstDials.gaveUp(err)) return undefined;
  const tls = settings.options.tls ?? {};
  const reasons = await Promise.all(settings.servers.map((server) => probeTls(hostPort(server), { tls })));
  return reasons.find((reason) => reason !== undefined);
}

/**
 * Bounds the first connect to one dial per server. nats.js adds the servers a cluster
 * announces in its INFO to its list on every attempt, and retries what fails after that
 * INFO (a TLS handshake the server refuses) without end, even on a first connect; past the
 * first connect, reconnects go on as nats.js does them.
 */
class FirstDials {
  /** Set once connected: from then on every dial is nats.js's own choice. */
  connected = false;
  readonly #dialed = new Set<string>();

  /** True when `err` is the first connect given up by {@link FirstDials}. */
  static gaveUp(err: unknown): boolean {
    for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof EveryServerTried) return true;
    return false;
  }

  /** nats.js's `reconnectToServer`: a throw ends its first connect with that error as the cause. */
  readonly handler: ReconnectToServerHandler = (pool) => {
    const next = pool[0];
    if (this.connected || next === undefined) return null;
    if (this.#dialed.has(next.listen)) throw new EveryServerTried();
    this.#dialed.add(next.listen);
    return null;
  };
}

class EveryServerTried extends Error {
  constructor() {
    super('every server was tried once and none took the connection');
  }
}

/** `host:port` of a server URL (nats.js's default port when it has none). */
function hostPort(server: string): string {
  const rest = server.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  return /:\d+$/.test(rest) ? rest : `${rest}:4222`;
}

/** Logs disconnects and reconnects, one line each. */
function reportStatus(nc: NatsConnection, logger: Logger): void {
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') logger.warn(`Lost connection to NATS server ${status.server}; reconnecting`);
      if (status.type === 'reconnect') logger.info(`Reconnected to NATS server ${status.server}`);
    }
  })().catch(() => undefined);
}
