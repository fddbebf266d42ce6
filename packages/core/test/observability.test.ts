/**
 * Metrics, traces and log fields of a processor after a known workload, against the real
 * cluster and a real HelloService: `/metrics` scraped over HTTP counts exactly what ran,
 * one trace goes from the client through the run and its step into the service's metadata,
 * and every JSON line about an invocation names it, its workflow and its trace.
 */
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { InMemorySpanExporter, BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startHelloService, type RunningHelloService } from '../../../apps/hello-service/src/hello-service.js';
import {
  connectNats,
  createGrpcInvoker,
  createLogger,
  defineWorkflow,
  DurableClient,
  Processor,
  loadServiceRegistry,
  silentLogger,
  startHttpApi,
  TerminalError,
  type RunningHttpApi,
} from '../src/index.js';

const namespace = 'observe';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

const hello = defineWorkflow<{ name: string }, unknown>('obs_hello', async (ctx, { name }) => ctx.call('hello.HelloService', 'SayHello', { name }));
const failing = defineWorkflow('obs_failing', async (ctx) => {
  await ctx.run('before', () => 1);
  throw new TerminalError('meant to fail');
});
const sleeper = defineWorkflow('obs_sleeper', async (ctx) => {
  await ctx.sleep(3_600_000);
  return 'woke';
});
/** Sleeps durably, then runs a step: its second run is resumed by the timer. */
const napper = defineWorkflow('obs_napper', async (ctx) => {
  // Past the in-memory limit (1 s): the run suspends, and a timer resumes it.
  await ctx.sleep(2_500);
  return ctx.run('after the nap', () => 'rested');
});
let flaky = 0;
const retried = defineWorkflow('obs_retried', async (ctx) =>
  ctx.run('flaky', () => {
    if (flaky++ === 0) throw new Error('first attempt fails');
    return 'ok';
  }, { retry: { initialBackoffMs: 10 } }),
);

let processorNc: NatsConnection;
let clientNc: NatsConnection;
let processor: Processor;
let client: DurableClient;
let http: RunningHttpApi;
let service: RunningHelloService;
/** Tells of every span as it ends, so a test waits on the span it needs rather than polling. */
class EndedSpans extends InMemorySpanExporter {
  readonly #waiters = new Set<() => void>();
  override export(spans: Parameters<InMemorySpanExporter['export']>[0], done: Parameters<InMemorySpanExporter['export']>[1]): void {
    super.export(spans, done);
    for (const wake of this.#waiters) wake();
  }

  /** Resolves once `holds` is true of the finished spans; rejects after `timeoutMs`. */
  async until(holds: () => boolean, timeoutMs: number): Promise<void> {
    if (holds()) return;
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        if (!holds()) return;
        clearTimeout(timer);
        this.#waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(new Error(`spans not ended within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(wake);
    });
  }
}
const exporter = new EndedSpans();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const lines: Record<string, unknown>[] = [];
let metricsText = '';
const ids: Record<string, string> = {};

beforeAll(async () => {
  const servers = inject('natsUrl').split(',');
  service = await startHelloService({ port: 0, host: '127.0.0.1', logger: silentLogger() });
  processorNc = await connectNats({ servers, maxAttempts: 3 });
  clientNc = await connectNats({ servers, maxAttempts: 3 });
  const out = new PassThrough();
  out.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const registry = loadServiceRegistry({ addresses: { 'hello.HelloService': `127.0.0.1:${service.port}` } });
  processor = await Processor.start({
    nc: processorNc,
    namespace,
    workflows: [hello, failing, sleeper, retried, napper],
    services: createGrpcInvoker(registry),
    logger: createLogger({ format: 'json', destination: out }),
    tracer: provider.getTracer('test'),
  });
  client = await DurableClient.connect({ nc: clientNc, namespace });
  http = await startHttpApi({ client, port: 0, token: 'secret', metrics: () => processor.metrics.scrape() });

  for (let i = 0; i < 5; i++) {
    const trace = i === 0 ? { trace: { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` } } : {};
    ids[`hello${i}`] = (await client.submit(hello, { name: `n${i}` }, trace)).invocationId;
  }
  ids.failing = (await client.submit(failing, {})).invocationId;
  ids.retried = (await client.submit(retried, {})).invocationId;
  ids.sleeper = (await client.submit(sleeper, {})).invocationId;
  for (const key of ['hello0', 'hello1', 'hello2', 'hello3', 'hello4', 'failing', 'retried']) await client.waitForResult(ids[key]!, { timeoutMs: 30_000 });
  await client.waitForStatus(ids.sleeper!, 'suspended', { timeoutMs: 30_000 });
  await processor.indexed();
  const res = await fetch(`http://127.0.0.1:${http.port}/metrics`, { headers: { authorization: 'Bearer secret' } });
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  metricsText = await res.text();
});

afterAll(async () => {
  await http?.close();
  await processor?.stop();
  await processorNc?.close();
  await clientNc?.close();
  await service?.stop();
});

/** The value of one sample, e.g. `durable_invocations_ended_total{workflow="obs_hello",status="completed"}`. */
function sample(series: string): number | undefined {
  const line = metricsText.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  it('is behind the API token', async () => {
    const res = await fetch(`http://127.0.0.1:${http.port}/metrics`);
    expect(res.status).toBe(401);
  });

  it('counts invocations started and ended by workflow and status', () => {
    expect(sample('durable_invocations_started_total{workflow="obs_hello"}')).toBe(5);
    expect(sample('durable_invocations_started_total{workflow="obs_sleeper"}')).toBe(1);
    expect(sample('durable_invocations_ended_total{workflow="obs_hello",status="completed"}')).toBe(5);
    expect(sample('durable_invocations_ended_total{workflow="obs_failing",status="failed"}')).toBe(1);
    expect(sample('durable_invocations_ended_total{workflow="obs_retried",status="completed"}')).toBe(1);
    expect(sample('durable_invocation_duration_seconds_count{workflow="obs_hello",status="completed"}')).toBe(5);
  });

  it('counts steps, service calls by status, and retries', () => {
    expect(sample('durable_steps_total{workflow="obs_hello",kind="call",mode="executed"}')).toBe(5);
    expect(sample('durable_step_duration_seconds_count{workflow="obs_hello",kind="call"}')).toBe(5);
    expect(sample('durable_service_calls_total{service="hello.HelloService",method="SayHello",status="OK"}')).toBe(5);
    expect(sample('durable_step_retries_total{workflow="obs_retried",kind="run"}')).toBe(1);
    expect(sample('durable_steps_total{workflow="obs_failing",kind="run",mode="executed"}')).toBe(1);
    // Journal appends: the failed run's error. The other outcomes each end a completed
    // invocation and are in its final state only (one write, not two), and the sleeper's
    // start is in its suspended state only (nothing of its journal was in the stream).
    expect(sample('durable_journal_append_seconds_count')).toBe(1);
    expect(sample('durable_fenced_writes_total')).toBe(0);
  });

  it('reads invocations by status, backlog and timers from the cluster', () => {
    expect(sample('durable_invocations{status="suspended"}')).toBe(1);
    expect(sample('durable_invocations{status="completed"}')).toBe(6);
    expect(sample('durable_invocations{status="failed"}')).toBe(1);
    expect(sample('durable_invocations{status="running"}')).toBe(0);
    // The sleeper's timer, and the scheduled removal (retention) of the failed invocation (its
    // error is in the journal stream). The 6 completed ones left nothing but their state and
    // index entry, which go by themselves (a per-message TTL): no removal is scheduled for them.
    expect(sample('durable_timers_pending')).toBe(2);
    expect(sample('durable_command_backlog')).toBe(0);
    expect(sample('durable_command_redeliveries')).toBe(0);
  });

  it('has every metric the Grafana dashboard queries', () => {
    const dashboard = readFileSync(new URL('../../../deploy/grafana/dashboards/durable.json', import.meta.url), 'utf8');
    const queried = new Set([...dashboard.matchAll(/durable_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')));
    const exposed = new Set([...metricsText.matchAll(/^# TYPE (durable_[a-z_]+)/gm)].map((m) => m[1]!));
    expect(queried.size).toBeGreaterThan(5);
    for (const name of queried) expect(exposed, name).toContain(name);
  });
});

describe('traces', () => {
  it('follows the client through the run and its step into the service', () => {
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === TRACE_ID);
    const run = spans.find((s) => s.name === 'run obs_hello');
    const step = spans.find((s) => s.name === 'step hello.HelloService.SayHello');
    expect(run?.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
    expect(step?.parentSpanContext?.spanId).toBe(run?.spanContext().spanId);
    const received = service.received.find((r) => r.name === 'n0');
    expect(received?.traceparent).toBe(`00-${TRACE_ID}-${step?.spanContext().spanId}-01`);
  });

  it('continues the trace that started an invocation in its runs resumed by a timer', async () => {
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const { invocationId } = await client.submit(napper, {}, { trace: { traceparent: `00-${traceId}-${CLIENT_SPAN}-01` } });
    expect((await client.waitForResult(invocationId, { timeoutMs: 30_000 })).status).toBe('completed');
    // A run's span ends once its command is settled, just after the result is announced.
    const runs = () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId && s.name === 'run obs_napper');
    await exporter.until(() => runs().length >= 2, 10_000);
    // The first run suspends at the sleep; the timer's resume command carries no trace, the state does.
    expect(runs()).toHaveLength(2);
    expect(runs().every((s) => s.parentSpanContext?.spanId === CLIENT_SPAN)).toBe(true);
    // The resumed run's lines name that trace too.
    const resumed = lines.find((l) => l.invocation_id === invocationId && String(l.msg).startsWith('Resuming'));
    expect(resumed?.trace_id).toBe(traceId);
  });
});

describe('logs', () => {
  it('names the invocation, its workflow and its trace on every JSON line about it', () => {
    const about = lines.filter((l) => l.invocation_id === ids.hello0);
    expect(about.length).toBeGreaterThan(1);
    for (const line of about) expect(line).toMatchObject({ invocation_id: ids.hello0, workflow: 'obs_hello', trace_id: TRACE_ID });
    const sleeperLines = lines.filter((l) => l.invocation_id === ids.sleeper);
    expect(sleeperLines.length).toBeGreaterThan(1);
    // A command that carried no trace gets one from its run's span: the lines from the run on name it.
    const suspended = sleeperLines.find((l) => String(l.msg).startsWith('Suspended'));
    expect(suspended?.trace_id).toMatch(/^[0-9a-f]{32}$/);
  });
});
