/**
 * The console's calls to the HTTP API: JSON in and out, the bearer token from the session,
 * and server-sent event streams read with fetch (EventSource cannot send a header).
 */

const TOKEN_KEY = 'durable-api-token';

/** An answer of the API that is not a success, with its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value);
}

function headers(json: boolean): Record<string, string> {
  const bearer = token();
  return { ...(json ? { 'Content-Type': 'application/json' } : {}), ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}) };
}

/** Calls the API; a failure is an ApiError carrying the API's own message. */
export async function api<T = any>(path: string, options: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: options.method ?? 'GET',
      headers: { ...headers(options.body !== undefined), ...options.headers },
      ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) } : {}),
    });
  } catch (err) {
    throw new ApiError(0, `the API did not answer: ${String(err)}`);
  }
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    body = { error: text };
  }
  const error = typeof body === 'object' && body !== null && 'error' in body ? String(body.error) : undefined;
  if (!res.ok) throw new ApiError(res.status, error ?? `${res.status} ${res.statusText}`);
  return body as T;
}

/** One event of a live feed: its name and its JSON. A caller names the events it expects as a union. */
export interface FeedEvent {
  event: string;
  data: unknown;
}

/**
 * Reads a server-sent event stream, calling `onEvent` per event, until `signal` aborts.
 * Reconnects after a break (a processor restart), calling `path()` again for where to resume.
 */
export async function follow<E extends FeedEvent>(path: () => string, onEvent: (event: E) => void, signal: AbortSignal, onError: (err: Error) => void): Promise<void> {
  while (!signal.aborted) {
    try {
      const res = await fetch(path(), { headers: headers(false), signal });
      if (!res.ok || !res.body) throw new ApiError(res.status, `the live feed answered ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          // The feed's JSON is taken for the events the caller names: the server sends those.
          if (event !== undefined && data !== undefined) onEvent({ event, data: JSON.parse(data) } as E);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      onError(err instanceof Error ? err : new Error(String(err)));
    }
    if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

/** How long to wait before reconnecting a live feed that broke. */
const RECONNECT_MS = 2_000;
