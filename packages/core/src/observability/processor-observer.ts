/**
 * The processor's {@link EngineObserver}: feeds its Prometheus metrics and, when a tracer
 * is given, makes a span per invocation run (continuing the trace the command carried)
 * with a child span per step that executes; replayed steps get none.
 */
import { SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';
import { errorMessage } from '../errors.js';
import type { EngineObserver, RunInfo, RunObserver, StepKind, StepTrace } from '../engine/observer.js';
import { currentLogContext } from '../logger.js';
import { callTarget, grpcStatusName, type EngineMetrics } from './metrics.js';
import { contextFrom, traceHeaders, traceIdOf } from './trace-context.js';

/** Watches a processor's executor. */
export class ProcessorObserver implements EngineObserver {
  readonly metrics: EngineMetrics;
  readonly #tracer: Tracer | undefined;

  /** @param tracer makes the spans; without it, nothing is traced. */
  constructor(metrics: EngineMetrics, tracer?: Tracer) {
    this.metrics = metrics;
    this.#tracer = tracer;
  }

  runStarted(run: RunInfo): RunObserver {
    const { metrics } = this;
    metrics.runs.labels(run.workflow).inc();
    if (run.first) metrics.invocationsStarted.labels(run.workflow).inc();
    let span: Span | undefined;
    // A run resumed by a command without trace context continues the invocation's trace.
    const fields = currentLogContext();
    const traceId = traceIdOf(run.trace?.traceparent);
    if (fields && traceId && !fields.trace_id) fields.trace_id = traceId;
    if (this.#tracer) {
      span = this.#tracer.startSpan(
        `run ${run.workflow}`,
        { kind: SpanKind.CONSUMER, attributes: { 'durable.invocation_id': run.invocationId, 'durable.workflow': run.workflow, 'durable.attempt': run.attempt } },
        contextFrom(run.trace),
      );
      if (fields) fields.trace_id = span.spanContext().traceId;
    }
    return new ObservedRun(metrics, run.workflow, this.#tracer, span);
  }

  invocationEnded(workflow: string, status: 'completed' | 'failed' | 'cancelled', seconds: number): void {
    this.metrics.invocationsEnded.labels(workflow, status).inc();
    this.metrics.invocationDuration.labels(workflow, status).observe(seconds);
  }

  fenced(): void {
    this.metrics.fencedWrites.inc();
  }
}

/** One run: its workflow label, and its span when traced. */
class ObservedRun implements RunObserver {
  readonly traceId: string | undefined;
  readonly #metrics: EngineMetrics;
  readonly #workflow: string;
  readonly #tracer: Tracer | undefined;
  readonly #span: Span | undefined;

  constructor(metrics: EngineMetrics, workflow: string, tracer: Tracer | undefined, span: Span | undefined) {
    this.#metrics = metrics;
    this.#workflow = workflow;
    this.#tracer = tracer;
    this.#span = span;
    this.traceId = span?.spanContext().traceId;
  }

  stepReplayed(kind: StepKind): void {
    this.#metrics.steps.labels(this.#workflow, kind, 'replayed').inc();
  }

  stepExecuted(kind: StepKind, seconds: number): void {
    this.#metrics.steps.labels(this.#workflow, kind, 'executed').inc();
    this.#metrics.stepDuration.labels(this.#workflow, kind).observe(seconds);
  }

  traceStep(stepType: string, step: number): StepTrace | undefined {
    if (!this.#tracer || !this.#span) return undefined;
    const span = this.#tracer.startSpan(
      `step ${stepType}`,
      { kind: SpanKind.INTERNAL, attributes: { 'durable.step': step, 'durable.step_type': stepType } },
      trace.setSpan(contextFrom(undefined), this.#span),
    );
    return {
      headers: traceHeaders(span.spanContext()) ?? {},
      end(error?: unknown) {
        if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
        span.end();
      },
    };
  }

  serviceCalled(service: string, method: string, code: number): void {
    this.#metrics.serviceCalls.labels(service, method, grpcStatusName(code)).inc();
  }

  stepRetried(kind: StepKind, stepType: string): void {
    this.#metrics.stepRetries.labels(this.#workflow, kind).inc();
    if (kind !== 'call') return;
    const { service, method } = callTarget(stepType);
    this.#metrics.serviceRetries.labels(service, method).inc();
  }

  journalAppended(seconds: number): void {
    this.#metrics.journalAppend.observe(seconds);
  }

  timerFired(latenessSeconds: number): void {
    this.#metrics.timerLateness.observe(latenessSeconds);
  }

  finished(outcome: string): void {
    if (!this.#span) return;
    this.#span.setAttribute('durable.outcome', outcome);
    this.#span.end();
  }
}
