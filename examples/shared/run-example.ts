/**
 * What every example that talks to the engine shares: a connection to the cluster, a
 * client, the processor's HTTP address, and one clear line saying what to start when the
 * cluster or the processor cannot be reached.
 *
 * Env: NATS_URL (comma-separated servers, default the local 3-node cluster),
 * DURABLE_HTTP_URL (the processor's HTTP API, default http://localhost:8080) and
 * DURABLE_API_TOKEN (sent as a bearer token when set, as a processor started with it wants).
 */
import { ConnectionError, DurableClient, TimeoutError, connectNats, errorMessage, natsServers, redactServer } from '@durable/core';

/** The processor's HTTP API. */
export const HTTP_URL = (process.env.DURABLE_HTTP_URL || 'http://localhost:8080').replace(/\/+$/, '');

/** The header a processor with `DURABLE_API_TOKEN` wants, when that variable is set here too. */
export const AUTH_HEADERS: Record<string, string> = process.env.DURABLE_API_TOKEN ? { authorization: `Bearer ${process.env.DURABLE_API_TOKEN}` } : {};

/** What an example's body gets. */
export interface ExampleContext {
  client: DurableClient;
  /** The processor's HTTP API, e.g. `${httpUrl}/api/workflows/<id>`. */
  httpUrl: string;
}

/** An error whose message is the one line to print, without a stack. */
export class ExampleError extends Error {}

/**
 * Connects, checks that a processor answers, runs `body`, and exits: 0 when it returned,
 * 1 with one line on stderr when it threw.
 */
export function runExample(body: (ctx: ExampleContext) => Promise<void>): void {
  void (async () => {
    const nc = await connectNats({ name: 'durable-example', maxAttempts: 1 }).catch((err: unknown) => {
      // Refused credentials or a bad NATS_CREDS path say what to fix themselves.
      if (!(err instanceof ConnectionError)) throw new ExampleError(errorMessage(err));
      throw new ExampleError(
        `cannot reach NATS at ${natsServers().map(redactServer).join(',')} (${errorMessage(err)}): start the cluster with \`make cluster-up\` (or \`make docker-up\`), or set NATS_URL`,
      );
    });
    try {
      await requireProcessor();
      const client = await DurableClient.connect({ nc });
      await body({ client, httpUrl: HTTP_URL });
    } finally {
      await nc.close();
    }
  })().catch((err: unknown) => {
    console.error(`error: ${explain(err)}`);
    process.exitCode = 1;
  });
}

/** The processor's health route answers, or an ExampleError saying to start one. */
export async function requireProcessor(): Promise<void> {
  const ok = await fetch(`${HTTP_URL}/health`, { signal: AbortSignal.timeout(3_000) }).then(
    (res) => res.ok,
    () => false,
  );
  if (!ok) throw new ExampleError(`no processor answers at ${HTTP_URL}: start one with \`make run-processor\` (or set DURABLE_HTTP_URL)`);
}

/** Sends a JSON request to the processor's HTTP API and returns the JSON answer; a non-2xx status throws. */
export async function httpJson<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${HTTP_URL}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...AUTH_HEADERS },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new ExampleError(`${method} ${path} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

function explain(err: unknown): string {
  if (err instanceof ExampleError) return err.message;
  if (err instanceof TimeoutError) {
    return `${err.message}: is the processor running (\`make run-processor\`), and the services its workflows call (\`make run-service\`, \`make run-ticket-service\`)?`;
  }
  if (err instanceof ConnectionError) return `${err.message}: start the cluster (\`make cluster-up\`) and a processor (\`make run-processor\`)`;
  return errorMessage(err);
}
