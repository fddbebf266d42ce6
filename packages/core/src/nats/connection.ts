/**
 * Connecting to the cluster. An unreachable cluster is reported in one line and retried;
 * a lost connection is reported and the client reconnects on its own. A server older than
 * the engine needs is refused at once, in one line.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { setTimeout as wait } from 'node:timers/promises';
import { natsServers } from '../config.js';
import { ConnectionError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { assertServerVersion } from './server-version.js';

/** Options of {@link connectNats}. */
export interface ConnectOptions {
  /** Server URLs. @default `NATS_URL` split on commas, else the local 3-node cluster */
  servers?: string[];
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
 * @throws ConnectionError after `maxAttempts`, or when aborted.
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
  const servers = options.servers ?? natsServers();
  const maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
  const retryDelayMs = options.retryDelayMs ?? 2_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect({
        servers,
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
    } catch (err) {
      const message = `NATS unreachable at ${servers.join(',')}: ${errorMessage(err)}`;
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

/** Logs disconnects and reconnects, one line each. */
function reportStatus(nc: NatsConnection, logger: Logger): void {
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') logger.warn(`Lost connection to NATS server ${status.server}; reconnecting`);
      if (status.type === 'reconnect') logger.info(`Reconnected to NATS server ${status.server}`);
    }
  })().catch(() => undefined);
}
