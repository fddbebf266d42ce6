import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { apiTokenFromEnv, requireApiToken } from './api-token.js';

describe('apiTokenFromEnv', () => {
  it('is undefined when DURABLE_API_TOKEN is unset or empty: the API is open', () => {
    expect(apiTokenFromEnv({})).toBeUndefined();
    expect(apiTokenFromEnv({ DURABLE_API_TOKEN: '' })).toBeUndefined();
  });

  it('returns a token a bearer header can carry', () => {
    expect(apiTokenFromEnv({ DURABLE_API_TOKEN: 'aZ09-._~+/==' })).toBe('aZ09-._~+/==');
  });

  it('refuses one it cannot carry, naming the variable', () => {
    for (const token of ['two words', 'a:b', 'héllo', '=abc', 'a=b']) {
      expect(() => apiTokenFromEnv({ DURABLE_API_TOKEN: token }), token).toThrow(InvalidArgumentError);
      expect(() => apiTokenFromEnv({ DURABLE_API_TOKEN: token }), token).toThrow(/DURABLE_API_TOKEN/);
    }
  });
});

describe('requireApiToken', () => {
  const app = new Hono();
  app.use(requireApiToken('secret'));
  app.get('/', (c) => c.text('in'));
  app.onError((err) => (err instanceof HTTPException ? err.getResponse() : new Response(String(err), { status: 500 })));

  it('lets the token through and refuses any other, of any length, with a 401', async () => {
    expect((await app.request('/', { headers: { authorization: 'Bearer secret' } })).status).toBe(200);
    for (const presented of ['secre', 'secrets', 'x', 'Secret', 'secret'.repeat(100)]) {
      const res = await app.request('/', { headers: { authorization: `Bearer ${presented}` } });
      expect(res.status, presented).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    }
  });
});
