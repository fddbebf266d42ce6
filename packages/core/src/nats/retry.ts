/**
 * The one rule for riding out a JetStream leader election: a call that fails with a
 * transient error (no responders, "jetstream is not enabled" while no leader answers, a
 * timeout, "no suitable peers" or "temporarily unavailable" during an election) is tried
 * again with backoff until a deadline, then reported as an {@link UnavailableError}.
 *
 * Only calls that are safe to repeat go through it: a publish with a message ID (the stream
 * de-duplicates the repeat), a compare-and-set (a repeat of one that took effect is
 * refused, and the caller looks again), a read, or an operation written to be retried.
 */
import { NoRespondersError, RequestError, TimeoutError as NatsTimeoutError } from '@nats-io/nats-core';
// The status and not-enabled errors are exported only by the client's internal module.
import { JetStreamApiError, JetStreamStatusError, jserrors } from '@nats-io/jetstream/internal';
import { setTimeout as wait } from 'node:timers/promises';
import { ConfigurationError, ConnectionError, errorMessage, UnavailableError } from '../errors.js';

/** How long a call is retried by default, ms. */
export const DEFAULT_RETRY_DEADLINE_MS = 10_000;

/**
 * How long a run's write (a journal append, a state write) rides out an election, ms: each
 * try waits up to the client's timeout (5 s) for its answer, so a leader elected a few
 * seconds in still gets a try or two.
 */
export const WRITE_RETRY_DEADLINE_MS = 30_000;

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /** How long to keep trying, ms. @default 10_000 */
  deadlineMs?: number;
}

/** The first pause between attempts, ms; it doubles up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1_000;
/** What an UnavailableError suggests to wait before trying again, ms. */
const RETRY_AFTER_MS = 2_000;

/**
 * JetStream API errors of a cluster between leaders: 10005 no suitable peers for placement,
 * 10008 JetStream system temporarily unavailable, 10009 cluster cannot handle the request
 * (not leader), 10118 stream is offline.
 */
const TRANSIENT_API_CODES: ReadonlySet<number> = new Set([10005, 10008, 10009, 10118]);
const SERVICE_UNAVAILABLE = 503;

/** True when the error (or one it was caused by) goes away once the cluster has its leaders again. */
export function isTransient(err: unknown): boolean {
  for (let cause = err, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    if (cause instanceof NoRespondersError || cause instanceof NatsTimeoutError || cause instanceof jserrors.JetStreamNotEnabled) return true;
    if (cause instanceof RequestError && cause.isNoResponders()) return true;
    if (cause instanceof JetStreamStatusError && cause.code === SERVICE_UNAVAILABLE) return true;
    if (cause instanceof JetStreamApiError && (cause.status === SERVICE_UNAVAILABLE || TRANSIENT_API_CODES.has(cause.code))) return true;
  }
  return false;
}

/**
 * Runs `call`, again after each transient failure, until it succeeds or the deadline
 * passes. Other errors are thrown at once.
 * @param what names the call in the UnavailableError, e.g. `submit to COMMANDS`.
 * @throws UnavailableError when the deadline passes on a transient failure.
 */
export async function withRetry<T>(what: string, call: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const deadlineMs = options.deadlineMs ?? DEFAULT_RETRY_DEADLINE_MS;
  const deadline = Date.now() + deadlineMs;
  for (let backoff = FIRST_BACKOFF_MS; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
    try {
      return await call();
    } catch (err) {
      if (!isTransient(err)) throw err;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new UnavailableError(`${what}: the cluster did not answer within ${deadlineMs} ms: ${errorMessage(err)}`, {
          cause: err,
          retryAfterMs: RETRY_AFTER_MS,
        });
      }
      // Jittered, so that clients turned away together do not come back together.
      await wait(Math.min(left, backoff / 2 + Math.random() * backoff));
    }
  }
}

/**
 * A compare-and-set write of `bytes`, riding out a leader election ({@link withRetry}, for
 * {@link WRITE_RETRY_DEADLINE_MS}): a try that got no answer may have been stored, so when a
 * later try is `refused` for the sequence, `storedAfter` reads what now follows the
 * expected sequence (from the leader); if it holds these bytes, the write was stored, at
 * the sequence it gives. Otherwise the refusal is thrown.
 */
export async function writeOnce(
  what: string,
  bytes: Uint8Array,
  write: () => Promise<number>,
  refused: (err: unknown) => boolean,
  storedAfter: () => Promise<{ data: Uint8Array; seq: number } | undefined>,
): Promise<number> {
  let unanswered = false;
  return withRetry(
    what,
    async () => {
      try {
        return await write();
      } catch (err) {
        if (refused(err) && unanswered) {
          const stored = await storedAfter();
          if (stored && stored.data.length === bytes.length && Buffer.compare(stored.data, bytes) === 0) return stored.seq;
        }
        if (isTransient(err)) unanswered = true;
        throw err;
      }
    },
    { deadlineMs: WRITE_RETRY_DEADLINE_MS },
  );
}

/** How long setting up the engine's streams, buckets and consumers is retried, ms. */
const SETUP_DEADLINE_MS = 30_000;

/**
 * Setting up's rule: retries until the deadline, then gives up with a clear error. Just
 * after a cluster starts, and on a loaded machine, JetStream answers "not enabled", "no
 * suitable peers for placement" or nothing at all for a few seconds before its meta leader
 * settles; these look like configuration errors but pass, so every error is retried except
 * a {@link ConfigurationError}, the engine's own verdict that only an operator can change.
 * @param what names the resource in the error, e.g. `stream COMMANDS`.
 * @throws ConnectionError when the deadline passes.
 */
export async function withMetaRetry<T>(what: string, fn: () => Promise<T>, deadlineMs = SETUP_DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ConfigurationError) throw err;
      if (Date.now() > deadline) throw new ConnectionError(`could not set up ${what}: ${errorMessage(err)}`, { cause: err });
      await wait(250);
    }
  }
}
