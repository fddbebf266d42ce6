/**
 * The processor's Prometheus metrics (`GET /metrics`), names prefixed `durable_`. Kept in a
 * registry of the processor's own, so several processors in one process do not collide.
 *
 * Counters and histograms are fed by the engine as it runs (see `engine/observer.ts`); the
 * gauges of invocations by status, command backlog and pending timers are read from the
 * cluster when scraped (counts the server keeps, never a scan), cached for a few seconds.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the scrape-time gauges read; each is asked at most once per cache period. */
export interface MetricSources {
  /** Invocations by status, from the execution index. */
  invocationsByStatus(): Promise<Record<string, number>>;
  /** The command consumers: pending (backlog), being redelivered, awaiting an ack. */
  consumers(): Promise<{ pending: number; redelivered: number; ackPending: number }>;
  /** Durable timers scheduled and not yet due. */
  timersPending(): Promise<number>;
}

/** How long a scrape-time read is reused, ms. */
const SOURCE_CACHE_MS = 2_000;

/** Buckets of durations from milliseconds (a step, an append) to minutes (an invocation), seconds. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Every metric of a processor. */
export class EngineMetrics {
  readonly registry = new Registry();
  readonly invocationsStarted = new Counter({ name: 'durable_invocations_started_total', help: 'Invocations taken up for the first time, by workflow', labelNames: ['workflow'], registers: [this.registry] });
  readonly runs = new Counter({ name: 'durable_invocation_runs_total', help: 'Runs (attempts) of invocations started: first runs, resumes and take-overs', labelNames: ['workflow'], registers: [this.registry] });
  readonly invocationsEnded = new Counter({ name: 'durable_invocations_ended_total', help: 'Invocations ended, by workflow and status (completed, failed, cancelled)', labelNames: ['workflow', 'status'], registers: [this.registry] });
  readonly invocationDuration = new Histogram({ name: 'durable_invocation_duration_seconds', help: 'Time from submission to end of ended invocations', labelNames: ['workflow', 'status'], buckets: DURATION_BUCKETS, registers: [this.registry] });
  readonly steps = new Counter({ name: 'durable_steps_total', help: 'Steps by workflow, kind and mode: executed (run for real) or replayed (answered from the journal)', labelNames: ['workflow', 'kind', 'mode'], registers: [this.registry] });
  readonly stepDuration = new Histogram({ name: 'durable_step_duration_seconds', help: 'Duration of executed steps, retries included', labelNames: ['workflow', 'kind'], buckets: DURATION_BUCKETS, registers: [this.registry] });
  readonly stepRetries = new Counter({ name: 'durable_step_retries_total', help: 'Step attempts that failed and were tried again', labelNames: ['workflow', 'kind'], registers: [this.registry] });
  readonly serviceCalls = new Counter({ name: 'durable_service_calls_total', help: 'Attempts of service calls, by service, method and gRPC status', labelNames: ['service', 'method', 'status'], registers: [this.registry] });
  readonly serviceRetries = new Counter({ name: 'durable_service_call_retries_total', help: 'Service call attempts that failed and were tried again', labelNames: ['service', 'method'], registers: [this.registry] });
  readonly fencedWrites = new Counter({ name: 'durable_fenced_writes_total', help: 'Writes refused because another processor owns the invocation now', registers: [this.registry] });
  readonly journalAppend = new Histogram({ name: 'durable_journal_append_seconds', help: 'Latency of journal appends (fenced, replicated writes)', buckets: DURATION_BUCKETS, registers: [this.registry] });
  readonly timerLateness = new Histogram({ name: 'durable_timer_lateness_seconds', help: 'How long after its due time a sleep resumed its invocation', buckets: DURATION_BUCKETS, registers: [this.registry] });

  readonly #sources: MetricSources | undefined;
  #cached: { at: number; read: Promise<SourceReading> } | undefined;

  /** @param sources where the scrape-time gauges are read; without them those gauges are absent. */
  constructor(sources?: MetricSources) {
    this.#sources = sources;
    if (!sources) return;
    const reading = () => this.#read();
    new Gauge({
      name: 'durable_invocations',
      help: 'Invocations by status now (pending, running, suspended, paused, ...), from the execution index',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const { byStatus } = await reading();
        for (const [status, count] of Object.entries(byStatus)) this.set({ status }, count);
      },
    });
    const gauge = (name: string, help: string, value: (r: SourceReading) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          this.set(value(await reading()));
        },
      });
    gauge('durable_command_backlog', 'Commands stored and not yet delivered to a processor (the consumers\' num_pending)', (r) => r.pending);
    gauge('durable_command_redeliveries', 'Commands delivered more than once and not yet acknowledged (the consumers\' num_redelivered)', (r) => r.redelivered);
    gauge('durable_commands_in_flight', 'Commands delivered and not yet acknowledged (the consumers\' num_ack_pending)', (r) => r.ackPending);
    gauge('durable_timers_pending', 'Durable timers scheduled and not yet due (messages on the COMMANDS stream\'s timers subjects)', (r) => r.timers);
  }

  /** The metrics in Prometheus' text format. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #read(): Promise<SourceReading> {
    const now = Date.now();
    if (this.#cached && now - this.#cached.at < SOURCE_CACHE_MS) return this.#cached.read;
    const sources = this.#sources!;
    const read = Promise.all([sources.invocationsByStatus(), sources.consumers(), sources.timersPending()]).then(([byStatus, consumers, timers]) => ({ byStatus, ...consumers, timers }));
    this.#cached = { at: now, read };
    // A failed read is not kept: the next scrape asks again.
    read.catch(() => {
      if (this.#cached?.read === read) this.#cached = undefined;
    });
    return read;
  }
}

interface SourceReading {
  byStatus: Record<string, number>;
  pending: number;
  redelivered: number;
  ackPending: number;
  timers: number;
}

/** `OK`, `UNAVAILABLE`, ... for a gRPC status code. */
export function grpcStatusName(code: number): string {
  return GrpcStatus[code] ?? String(code);
}

/** The service and method of a call step's type `<service>.<method>`. */
export function callTarget(stepType: string): { service: string; method: string } {
  const dot = stepType.lastIndexOf('.');
  return { service: stepType.slice(0, dot), method: stepType.slice(dot + 1) };
}
