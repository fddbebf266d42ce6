/**
 * The HTTP API's optional bearer token. A processor started with `DURABLE_API_TOKEN` set
 * answers every route but `/health` with a 401 unless the request carries
 * `Authorization: Bearer <token>`; callers of the API send it when the same variable is set.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { InvalidArgumentError } from '../errors.js';

/** The environment variable holding the token, on the processor and on whoever calls its API. */
export const API_TOKEN_ENV = 'DURABLE_API_TOKEN';

/** What a bearer token can carry (RFC 6750's b64token), which is what hono/bearer-auth accepts. */
const BEARER_TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

/**
 * The token in `DURABLE_API_TOKEN`, or undefined when it is unset or empty (the API is open).
 * @throws InvalidArgumentError when it holds characters a bearer token cannot carry.
 */
export function apiTokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = env[API_TOKEN_ENV];
  return token === undefined || token === '' ? undefined : checkApiToken(token);
}

/**
 * Middleware that answers 401 (a JSON error and `WWW-Authenticate: Bearer`) to a request
 * without `Authorization: Bearer <token>`. Tokens are compared as SHA-256 digests in
 * constant time, so neither the time taken nor the length tells how much of one was right.
 * @throws InvalidArgumentError when `token` cannot be a bearer token.
 */
export function requireApiToken(token: string): MiddlewareHandler {
  const expected = digest(checkApiToken(token));
  const refuse = (error: string) => (c: Context) => c.json({ error }, 401);
  const missing = refuse(`this API requires the header Authorization: Bearer <token>, the processor's ${API_TOKEN_ENV}`);
  return bearerAuth({
    verifyToken: (presented) => timingSafeEqual(digest(presented), expected),
    noAuthenticationHeader: { message: missing },
    // Another scheme, or a token no bearer token can be: as good as none.
    invalidAuthenticationHeader: { message: missing },
    invalidToken: { message: refuse(`the bearer token is not this API's (${API_TOKEN_ENV} of the processor)`) },
  });
}

function checkApiToken(token: string): string {
  if (!BEARER_TOKEN.test(token)) {
    throw new InvalidArgumentError(API_TOKEN_ENV, "may hold only letters, digits, '-', '.', '_', '~', '+', '/' and a trailing '=' (a bearer token)");
  }
  return token;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
