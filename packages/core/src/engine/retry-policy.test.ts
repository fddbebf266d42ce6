import { describe, expect, it } from 'vitest';
import { backoffMs, DEFAULT_RETRY_POLICY, mergeRetryPolicy } from './retry-policy.js';

describe('retry policy', () => {
  it('doubles the wait up to the cap', () => {
    const policy = mergeRetryPolicy({ initialBackoffMs: 100, maxBackoffMs: 1_000, factor: 2 });
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffMs(policy, n))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('lets later parts win field by field and keeps defaults for the rest', () => {
    const policy = mergeRetryPolicy({ maxAttempts: 5, factor: 3 }, { factor: 4, initialBackoffMs: undefined });
    expect(policy).toEqual({ ...DEFAULT_RETRY_POLICY, maxAttempts: 5, factor: 4 });
  });
});
