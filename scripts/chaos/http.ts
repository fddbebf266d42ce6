/** Requests to the processors' HTTP APIs, answered or not, never thrown. */

/** A request's outcome: the status and body, or why there was no answer. */
export type HttpOutcome = { status: number; body: string } | { error: string };

/** How long one request may take, ms. */
const REQUEST_TIMEOUT_MS = 15_000;

/** The processors inherit `DURABLE_API_TOKEN` from this process: send it when set. */
const AUTH_HEADERS: Record<string, string> = process.env.DURABLE_API_TOKEN ? { authorization: `Bearer ${process.env.DURABLE_API_TOKEN}` } : {};

/** Sends one request to the processor HTTP API on `port`. */
export async function request(
  port: number,
  method: 'GET' | 'POST',
  path: string,
  options: { body?: string; headers?: Record<string, string> } = {},
): Promise<HttpOutcome> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      ...(options.body !== undefined ? { body: options.body } : {}),
      headers: { 'content-type': 'application/json', ...AUTH_HEADERS, ...options.headers },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : '';
    return { error: `${err instanceof Error ? err.message : String(err)}${cause ? ` (${cause})` : ''}` };
  }
}

/**
 * True when the processor went away (killed: refused or reset), not the API's fault; a
 * processor crashed by a request is counted apart, as a crash.
 */
export function processorGone(outcome: HttpOutcome): boolean {
  return 'error' in outcome && /ECONNREFUSED|ECONNRESET|other side closed|socket hang up/i.test(outcome.error);
}
