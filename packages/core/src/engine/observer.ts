/**
 * What the engine tells whoever watches it: invocations run and ended, steps executed or
 * replayed, service calls, fenced writes, journal appends. The processor turns these into
 * Prometheus metrics and OpenTelemetry spans (`observability/`); the engine knows neither.
 *
 * Every method is synchronous and must not throw: it runs on the hot path of every step.
 * {@link NO_OBSERVER} is used when none is configured.
 */

/** The kind of a journaled step, from its step type: a bounded label for metrics. */
export type StepKind =
  | 'call'
  | 'run'
  | 'sleep'
  | 'now'
  | 'random'
  | 'uuid'
  | 'set'
  | 'clear'
  | 'send'
  | 'invoke'
  | 'awakeable'
  | 'resolve'
  | 'reject'
  | 'race'
  | 'any'
  | 'other';

/** The kind of a step from its step type (`RUN:charge`, `hello.HelloService.SayHello`, `SLEEP`); allocates nothing. */
export function stepKind(stepType: string): StepKind {
  if (stepType.startsWith('RUN:')) return 'run';
  if (stepType === 'SLEEP') return 'sleep';
  if (stepType === 'NOW') return 'now';
  if (stepType === 'RANDOM') return 'random';
  if (stepType === 'UUID') return 'uuid';
  if (stepType.startsWith('SET:')) return 'set';
  if (stepType.startsWith('CLEAR:')) return 'clear';
  if (stepType.startsWith('SEND:')) return 'send';
  if (stepType.startsWith('INVOKE:')) return 'invoke';
  if (stepType.startsWith('AWAKEABLE:')) return 'awakeable';
  if (stepType.startsWith('RESOLVE:')) return 'resolve';
  if (stepType.startsWith('REJECT:')) return 'reject';
  if (stepType === 'RACE') return 'race';
  if (stepType === 'ANY') return 'any';
  // A service call's step type is `<service>.<method>`, and nothing else has a dot and no colon.
  return stepType.includes('.') && !stepType.includes(':') ? 'call' : 'other';
}

/** One run (attempt) of an invocation, as the executor starts it. */
export interface RunInfo {
  invocationId: string;
  workflow: string;
  /** 1 for the first run; more after crashes or lost leases. */
  attempt: number;
  /** True when this run created the invocation (its first). */
  first: boolean;
  /** W3C trace context the command carried (`traceparent`, `tracestate`), if any. */
  trace?: Readonly<Record<string, string>>;
}

/** A step being traced; only handed out while tracing. */
export interface StepTrace {
  /** W3C trace context of the step, for the metadata of the service call it makes. */
  readonly headers: Readonly<Record<string, string>>;
  /** The step finished; `error` when it failed. */
  end(error?: unknown): void;
}

/** What one run reports. */
export interface RunObserver {
  /** W3C trace context of the run (`traceparent`), for log lines and calls; undefined when nothing traces. */
  readonly traceId: string | undefined;
  /** A step was answered from the journal. */
  stepReplayed(kind: StepKind): void;
  /** A step ran for real and its outcome was recorded, in `seconds`. */
  stepExecuted(kind: StepKind, seconds: number): void;
  /** A span for a step about to run, or undefined when nothing traces. */
  traceStep(stepType: string, step: number): StepTrace | undefined;
  /** One attempt of a service call ended with a gRPC status code (0 OK, 14 UNAVAILABLE, ...). */
  serviceCalled(service: string, method: string, code: number): void;
  /** A step's attempt failed and it is tried again (`stepType` names the service and method of a call). */
  stepRetried(kind: StepKind, stepType: string): void;
  /** A journal append was acknowledged after `seconds`. */
  journalAppended(seconds: number): void;
  /** A sleep's timer woke the invocation `seconds` after it was due. */
  timerFired(latenessSeconds: number): void;
  /** The run is over: how it ended (`ended`, `suspended`, `interrupted`, `fenced`, ...). */
  finished(outcome: string): void;
}

/** Watches an executor. */
export interface EngineObserver {
  /** A run of an invocation starts (after it was claimed). */
  runStarted(run: RunInfo): RunObserver;
  /** An invocation ended; `seconds` from its submission to its end. */
  invocationEnded(workflow: string, status: 'completed' | 'failed' | 'cancelled', seconds: number): void;
  /** A write was refused because another processor owns the invocation now. */
  fenced(): void;
}

/** A run observer that does nothing. */
export const NO_RUN_OBSERVER: RunObserver = {
  traceId: undefined,
  stepReplayed: () => undefined,
  stepExecuted: () => undefined,
  traceStep: () => undefined,
  serviceCalled: () => undefined,
  stepRetried: () => undefined,
  journalAppended: () => undefined,
  timerFired: () => undefined,
  finished: () => undefined,
};

/** The observer used when none is configured: does nothing, allocates nothing. */
export const NO_OBSERVER: EngineObserver = {
  runStarted: () => NO_RUN_OBSERVER,
  invocationEnded: () => undefined,
  fenced: () => undefined,
};

/** Seconds since `startMs` (a `performance.now()` reading). */
export function secondsSince(startMs: number): number {
  return (performance.now() - startMs) / 1000;
}
