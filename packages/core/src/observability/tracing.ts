/**
 * Turns tracing on in an app when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: the OpenTelemetry
 * SDK and its OTLP/HTTP exporter are loaded then, and only then (a dynamic import), so an
 * app that does not trace loads neither.
 */
import type { Tracer } from '@opentelemetry/api';

/** Tracing as started by {@link startTracing}. */
export interface Tracing {
  tracer: Tracer;
  /** Sends the spans still buffered and stops. */
  shutdown(): Promise<void>;
}

/**
 * Starts exporting spans over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter also
 * reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and `OTEL_EXPORTER_OTLP_HEADERS`), as service
 * `OTEL_SERVICE_NAME` or `serviceName`; undefined when no endpoint is set.
 */
export async function startTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }, api] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/api'),
  ]);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME ?? serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  api.trace.setGlobalTracerProvider(provider);
  return { tracer: provider.getTracer('durable'), shutdown: () => provider.shutdown() };
}
