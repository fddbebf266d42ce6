/**
 * W3C trace context (`traceparent`, `tracestate`) in and out of message headers and gRPC
 * metadata, without a global propagator: the engine carries the context whether or not the
 * app registered one.
 */
import { ROOT_CONTEXT, trace, TraceFlags, type Context, type SpanContext } from '@opentelemetry/api';

/** The headers of a trace context: `traceparent`, and `tracestate` when there is one. */
export type TraceHeaders = Record<string, string>;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The headers carrying a span's context, or undefined when it has none worth carrying. */
export function traceHeaders(span: SpanContext | undefined): TraceHeaders | undefined {
  if (!span || !trace.isSpanContextValid(span)) return undefined;
  const headers: TraceHeaders = { traceparent: `00-${span.traceId}-${span.spanId}-0${(span.traceFlags & TraceFlags.SAMPLED).toString(16)}` };
  const state = span.traceState?.serialize();
  if (state) headers.tracestate = state;
  return headers;
}

/** The context a `traceparent` header continues (a remote parent), or the root context when it is missing or malformed. */
export function contextFrom(headers: Readonly<Record<string, string | undefined>> | undefined): Context {
  const match = headers?.traceparent ? TRACEPARENT.exec(headers.traceparent) : null;
  if (!match) return ROOT_CONTEXT;
  const parent: SpanContext = { traceId: match[1]!, spanId: match[2]!, traceFlags: parseInt(match[3]!, 16), isRemote: true };
  return trace.isSpanContextValid(parent) ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
}

/** The trace ID a `traceparent` header names, or undefined. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return traceparent ? TRACEPARENT.exec(traceparent)?.[1] : undefined;
}
