/**
 * The HTTP API's defaults and bounds, shared by the routes and their OpenAPI description.
 */

/** Where the API listens unless told otherwise: this machine only. */
export const DEFAULT_HTTP_HOST = '127.0.0.1';

/** Largest request body, bytes, unless told otherwise: 1 MiB, the NATS server's default `max_payload`. */
export const DEFAULT_HTTP_BODY_LIMIT = 1024 * 1024;

/** How long `?wait=true` waits for the result unless `timeout_ms` says otherwise. */
export const DEFAULT_WAIT_TIMEOUT_MS = 30_000;

/** The longest `timeout_ms` a request may ask for, 5 minutes: each waiting request holds a connection and a subscription. */
export const MAX_WAIT_TIMEOUT_MS = 5 * 60_000;
