/**
 * Every error the engine raises. Each condition has its own class and a stable `code`;
 * callers branch on `instanceof` or `code`, never on message text. Whether an error is
 * worth retrying is part of its type: a {@link TerminalError} never is.
 */

/** Stable codes of the engine's errors. */
export const ErrorCode = {
  Terminal: 'TERMINAL',
  ServiceCall: 'SERVICE_CALL',
  ServiceNotFound: 'SERVICE_NOT_FOUND',
  HandlerNotFound: 'HANDLER_NOT_FOUND',
  NonDeterminism: 'NON_DETERMINISM',
  Fenced: 'FENCED',
  InvalidArgument: 'INVALID_ARGUMENT',
  InvocationNotFound: 'INVOCATION_NOT_FOUND',
  Timeout: 'TIMEOUT',
  Decode: 'DECODE',
  AttemptsExhausted: 'ATTEMPTS_EXHAUSTED',
  Connection: 'CONNECTION',
  AccessDenied: 'ACCESS_DENIED',
  ServerVersion: 'SERVER_VERSION',
  Conflict: 'CONFLICT',
  Cancelled: 'CANCELLED',
  Interrupted: 'INTERRUPTED',
  AwakeableNotFound: 'AWAKEABLE_NOT_FOUND',
  Paused: 'PAUSED',
  Configuration: 'CONFIGURATION',
  JournalEntryTooLarge: 'JOURNAL_ENTRY_TOO_LARGE',
  Unavailable: 'UNAVAILABLE',
} as const;

/** One of {@link ErrorCode}'s values. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error the engine raises. */
export class DurableError extends Error {
  readonly code: ErrorCodeValue;

  constructor(code: ErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An error that must not be retried. Thrown from a step, it fails the step for good and
 * is journaled; the workflow may catch it. Thrown out of a workflow, it fails the invocation.
 *
 * @example
 * await ctx.run('charge', async () => {
 *   if (card.expired) throw new TerminalError('card expired');
 * });
 */
export class TerminalError extends DurableError {
  /** An application-defined code carried through the journal (0 when none). */
  readonly errorCode: number;

  constructor(message: string, options?: { cause?: unknown; errorCode?: number; code?: ErrorCodeValue }) {
    super(options?.code ?? ErrorCode.Terminal, message, options);
    this.errorCode = options?.errorCode ?? 0;
  }
}

/**
 * A service answered a call with a non-transient gRPC status. Journaled as the step's
 * outcome, so a replay throws the same error again.
 */
export class ServiceCallError extends TerminalError {
  /** The gRPC status code. */
  readonly status: number;
  readonly service: string;
  readonly method: string;

  /** The status details the service sent. */
  readonly details: string;

  constructor(service: string, method: string, status: number, details: string, options?: { cause?: unknown }) {
    super(`${service}.${method} failed: ${details}`, { ...options, errorCode: status, code: ErrorCode.ServiceCall });
    this.status = status;
    this.service = service;
    this.method = method;
    this.details = details;
  }
}

/** A transient failure: retried with backoff and never journaled as a step's outcome. */
export class RetryableError extends DurableError {
  constructor(message: string, options?: { cause?: unknown; code?: ErrorCodeValue }) {
    super(options?.code ?? ErrorCode.ServiceCall, message, options);
  }
}

/** The registry knows no service (or method) of that name. */
export class ServiceNotFoundError extends TerminalError {
  constructor(message: string) {
    super(message, { code: ErrorCode.ServiceNotFound });
  }
}

/** No workflow is registered under the handler name a command asked for. */
export class HandlerNotFoundError extends TerminalError {
  readonly handler: string;

  constructor(handler: string) {
    super(`handler not found: ${handler}`, { code: ErrorCode.HandlerNotFound });
    this.handler = handler;
  }
}

/**
 * A replay asked for a different step than the journal holds at that position: the
 * workflow code changed or is not deterministic. The invocation stops; the journal stays.
 */
export class NonDeterminismError extends TerminalError {
  readonly stepNumber: number;
  readonly journaled: string;
  readonly requested: string;

  constructor(stepNumber: number, journaled: string, requested: string) {
    super(
      `non-deterministic replay at step ${stepNumber}: the journal has ${journaled} but the workflow asked for ${requested}`,
      { code: ErrorCode.NonDeterminism },
    );
    this.stepNumber = stepNumber;
    this.journaled = journaled;
    this.requested = requested;
  }
}

/**
 * Another writer changed the journal or state since this one read it: this processor no
 * longer owns the invocation and must abandon it without writing anything more.
 */
export class FencedError extends DurableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Fenced, message, options);
  }
}

/** Input that cannot be accepted: the message names the field and what was wrong. */
export class InvalidArgumentError extends DurableError {
  readonly field: string;

  constructor(field: string, message: string) {
    super(ErrorCode.InvalidArgument, `invalid ${field}: ${message}`);
    this.field = field;
  }
}

/** No invocation has that ID. */
export class InvocationNotFoundError extends DurableError {
  readonly invocationId: string;

  constructor(invocationId: string) {
    super(ErrorCode.InvocationNotFound, `invocation not found: ${invocationId}`);
    this.invocationId = invocationId;
  }
}

/** No awakeable has that ID. */
export class AwakeableNotFoundError extends DurableError {
  readonly awakeableId: string;

  constructor(awakeableId: string) {
    super(ErrorCode.AwakeableNotFound, `awakeable not found: ${awakeableId}`);
    this.awakeableId = awakeableId;
  }
}

/** A wait ran past its deadline. */
export class TimeoutError extends DurableError {
  constructor(message: string) {
    super(ErrorCode.Timeout, message);
  }
}

/** A record on the wire could not be decoded. */
export class DecodeError extends DurableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Decode, message, options);
  }
}

/** A retry policy ran out of attempts; the last failure is the cause. */
export class AttemptsExhaustedError extends TerminalError {
  readonly attempts: number;

  constructor(what: string, attempts: number, cause: unknown) {
    super(`${what} failed after ${attempts} attempts: ${errorMessage(cause)}`, {
      cause,
      code: ErrorCode.AttemptsExhausted,
    });
    this.attempts = attempts;
  }
}

/** The NATS cluster cannot be reached. */
export class ConnectionError extends DurableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Connection, message, options);
  }
}

/**
 * The NATS server turned the connection down for who the client is: it refused the
 * credentials, or the TLS handshake failed (a certificate one side does not trust, a
 * client certificate missing, TLS required by one side only). Not retried: the settings
 * must change (`NATS_CREDS`, `NATS_CA`, ...; see the README's Secured NATS).
 */
export class AccessDeniedError extends DurableError {
  /** The servers, as logs may show them (no password or token). */
  readonly servers: string;

  constructor(servers: string, reason: string, options?: { cause?: unknown }) {
    super(ErrorCode.AccessDenied, `NATS at ${servers} refused the connection: ${reason}`, options);
    this.servers = servers;
  }
}

/** The cluster's resources are set up in a way this version cannot use; the message says what to do. */
export class ConfigurationError extends DurableError {
  constructor(message: string) {
    super(ErrorCode.Configuration, message);
  }
}

/**
 * The nats-server the connection reached is older than the engine needs. Not retried:
 * the server must be upgraded (scripts/install-nats-server.sh fetches a recent one).
 */
export class ServerVersionError extends DurableError {
  /** The server's version as it reported it. */
  readonly serverVersion: string;
  /** The server's address. */
  readonly server: string;
  /** The oldest version the engine accepts. */
  readonly minimum: string;

  constructor(serverVersion: string, server: string, minimum: string) {
    super(
      ErrorCode.ServerVersion,
      `nats-server ${serverVersion} at ${server} is too old: this engine needs ${minimum} or newer (scripts/install-nats-server.sh fetches one)`,
    );
    this.serverVersion = serverVersion;
    this.server = server;
    this.minimum = minimum;
  }
}

/**
 * The cluster did not take a write or answer a read within the retry deadline (a leader
 * election that lasted longer, or a stream nobody has created). Safe to try again later:
 * `retryAfterMs` says when; the HTTP API answers 503 with `Retry-After`.
 */
export class UnavailableError extends DurableError {
  readonly retryAfterMs: number;

  constructor(message: string, options: { cause?: unknown; retryAfterMs: number }) {
    super(ErrorCode.Unavailable, message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The operation conflicts with what already happened (resolved twice, already ended, ...). */
export class ConflictError extends DurableError {
  constructor(message: string) {
    super(ErrorCode.Conflict, message);
  }
}

/**
 * The processor is stopping: the invocation stops at a step boundary, nothing more is
 * written, and another processor (or this one, restarted) continues it from its journal.
 */
export class InterruptedError extends DurableError {
  constructor(message = 'processor is stopping') {
    super(ErrorCode.Interrupted, message);
  }
}

/** The invocation was paused: it stops at a step boundary and waits for a resume. */
export class PausedError extends DurableError {
  constructor(message = 'invocation paused') {
    super(ErrorCode.Paused, message);
  }
}

/** The invocation was cancelled. */
export class CancelledError extends TerminalError {
  constructor(message = 'invocation cancelled') {
    super(message, { code: ErrorCode.Cancelled });
  }
}

/**
 * A step's outcome cannot be journaled: its entry is larger than the journal takes (the
 * NATS server's max payload). Running the step again would not make it smaller, so the
 * step fails for good; the workflow may catch this like any {@link TerminalError}.
 */
export class JournalEntryTooLargeError extends TerminalError {
  readonly invocationId: string;
  readonly step: number;
  readonly stepType: string;
  /** Bytes of the entry. */
  readonly size: number;
  /** Bytes an entry may take at most. */
  readonly limit: number;

  constructor(entry: { invocationId: string; step: number; stepType: string; size: number; limit: number }) {
    super(
      `step ${entry.step} (${entry.stepType}) of ${entry.invocationId} cannot be journaled: its entry of ${entry.size} bytes is over the journal's limit of ${entry.limit} bytes (the NATS server's max_payload)`,
      { code: ErrorCode.JournalEntryTooLarge },
    );
    this.invocationId = entry.invocationId;
    this.step = entry.step;
    this.stepType = entry.stepType;
    this.size = entry.size;
    this.limit = entry.limit;
  }
}

/** Anything thrown, as an `Error`: the boundary where foreign throws are normalised. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : safeStringify(thrown));
}

/** The message of anything thrown. */
export function errorMessage(thrown: unknown): string {
  return toError(thrown).message;
}

/** True when the error says another writer owns the invocation now. */
export function isFenced(err: unknown): err is FencedError {
  return err instanceof FencedError;
}

/** True when the error must not be retried. */
export function isTerminal(err: unknown): err is TerminalError {
  return err instanceof TerminalError;
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
