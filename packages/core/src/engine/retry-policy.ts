/**
 * Retry policies: how often and how fast a failed attempt is tried again.
 */

/** How a step retries transient failures. */
export interface RetryPolicy {
  /** Attempts in all, the first included. @default Infinity (retry until it succeeds) */
  maxAttempts: number;
  /** Wait before the second attempt, ms. @default 100 */
  initialBackoffMs: number;
  /** Longest wait between attempts, ms. @default 10_000 */
  maxBackoffMs: number;
  /** Each wait is the previous one times this. @default 2 */
  factor: number;
}

/** The default: retry forever, 100 ms doubling up to 10 s. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: Number.POSITIVE_INFINITY,
  initialBackoffMs: 100,
  maxBackoffMs: 10_000,
  factor: 2,
};

/** A policy from partial ones, later ones winning field by field. */
export function mergeRetryPolicy(...parts: Array<Partial<RetryPolicy> | undefined>): RetryPolicy {
  const merged: RetryPolicy = { ...DEFAULT_RETRY_POLICY };
  for (const part of parts) {
    if (!part) continue;
    for (const [key, value] of Object.entries(part) as Array<[keyof RetryPolicy, number | undefined]>) {
      if (value !== undefined) merged[key] = value;
    }
  }
  return merged;
}

/** The wait after failed attempt `attempt` (1-based), ms. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const raw = policy.initialBackoffMs * policy.factor ** Math.max(0, attempt - 1);
  return Math.min(policy.maxBackoffMs, raw);
}
