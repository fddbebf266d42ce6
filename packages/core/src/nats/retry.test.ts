import { NoRespondersError, RequestError, TimeoutError as NatsTimeoutError } from '@nats-io/nats-core';
import { JetStreamApiError, JetStreamStatusError, jserrors } from '@nats-io/jetstream/internal';
import { describe, expect, it } from 'vitest';
import { ConfigurationError, ConflictError, ConnectionError, FencedError, UnavailableError } from '../errors.js';
import { isTransient, withMetaRetry, withRetry } from './retry.js';

/** A call that fails with `errors` in turn, then answers `done`. */
function failing(...errors: Error[]): { call: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    call: async () => {
      const err = errors[calls++];
      if (err) throw err;
      return 'done';
    },
    calls: () => calls,
  };
}

describe('the retry rule', () => {
  it('calls transient what an election answers, and nothing else', () => {
    expect(isTransient(new JetStreamStatusError('no responders', 503))).toBe(true);
    expect(isTransient(new jserrors.JetStreamNotEnabled('jetstream is not enabled'))).toBe(true);
    expect(isTransient(new NatsTimeoutError())).toBe(true);
    expect(isTransient(new RequestError('failed', { cause: new NoRespondersError('$JS.API.X') }))).toBe(true);
    expect(isTransient(new JetStreamApiError({ code: 500, err_code: 10005, description: 'no suitable peers for placement' }))).toBe(true);
    expect(isTransient(new JetStreamApiError({ code: 503, err_code: 10008, description: 'JetStream system temporarily unavailable' }))).toBe(true);
    expect(isTransient(new Error('wrapped', { cause: new NatsTimeoutError() }))).toBe(true);

    expect(isTransient(new JetStreamApiError({ code: 400, err_code: 10071, description: 'wrong last sequence: 3' }))).toBe(false);
    expect(isTransient(new JetStreamStatusError('request timeout', 408))).toBe(false);
    expect(isTransient(new FencedError('moved on'))).toBe(false);
    expect(isTransient(new Error('no responders'))).toBe(false);
  });

  it('tries a call again after transient failures until it succeeds', async () => {
    const flaky = failing(new JetStreamStatusError('no responders', 503), new NatsTimeoutError());
    expect(await withRetry('test', flaky.call)).toBe('done');
    expect(flaky.calls()).toBe(3);
  });

  it('throws any other failure at once', async () => {
    const refused = failing(new ConflictError('already resolved'));
    await expect(withRetry('test', refused.call)).rejects.toBeInstanceOf(ConflictError);
    expect(refused.calls()).toBe(1);
  });

  it('gives up at the deadline with an UnavailableError that says when to come back', async () => {
    const down = { call: async () => Promise.reject(new jserrors.JetStreamNotEnabled('jetstream is not enabled')) };
    const err = await withRetry('submit to COMMANDS', down.call, { deadlineMs: 120 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', retryAfterMs: expect.any(Number) });
    expect((err as UnavailableError).message).toContain('submit to COMMANDS');
    expect((err as UnavailableError).cause).toBeInstanceOf(jserrors.JetStreamNotEnabled);
  });
});

describe("setting up's retry rule", () => {
  it('tries every error again, but throws a ConfigurationError at once', async () => {
    const settling = failing(new JetStreamApiError({ code: 503, err_code: 10023, description: 'insufficient resources' }), new Error('anything'));
    expect(await withMetaRetry('stream JOURNAL', settling.call)).toBe('done');
    expect(settling.calls()).toBe(3);

    const misconfigured = failing(new ConfigurationError('stream JOURNAL uses memory storage'));
    await expect(withMetaRetry('stream JOURNAL', misconfigured.call)).rejects.toBeInstanceOf(ConfigurationError);
    expect(misconfigured.calls()).toBe(1);
  });

  it('gives up at the deadline with a ConnectionError naming what it set up', async () => {
    const down = { call: async () => Promise.reject(new Error('no suitable peers')) };
    const err = await withMetaRetry('bucket EXECUTION_STATE', down.call, 120).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).message).toBe('could not set up bucket EXECUTION_STATE: no suitable peers');
  });
});
