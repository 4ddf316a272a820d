import {
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';

/*
 * W3C Trace Context for a waypoint, with the OpenTelemetry SDK (loaded only when tracing is on): a server span per request (the child
 * of the client's `traceparent`, or a new trace), a client span per upstream attempt, whose context is
 * the `traceparent` the backend receives. Spans go to an OTLP/HTTP endpoint in batches. New traces are
 * sampled at a configured rate; a request whose caller sampled it is always traced (parent-based, as
 * Envoy and Istio do).
 */

export type Headers = Record<string, string | string[] | undefined>;

export interface TracingOptions {
  /** OTLP/HTTP traces URL. */
  readonly endpoint: string;
  readonly serviceName: string;
  readonly sampling: number;
  readonly attributes?: Readonly<Record<string, string>>;
}

/** One request's trace: its server span, and the context its attempts start from. */
export interface RequestTrace {
  readonly traceId: string;
  readonly span: Span;
  /** A client span for one upstream attempt; `inject` writes its `traceparent` into the request headers. */
  attempt(name: string, attributes: Readonly<Record<string, string | number>>): AttemptTrace;
  end(attributes: Readonly<Record<string, string | number>>, error: boolean): void;
}

export interface AttemptTrace {
  inject(headers: Headers): void;
  end(attributes: Readonly<Record<string, string | number>>, error: boolean): void;
}

const propagator = new W3CTraceContextPropagator();

export class Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;

  constructor(o: TracingOptions) {
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': o.serviceName, ...o.attributes }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(o.sampling) }),
      spanProcessors: [
        new BatchSpanProcessor(new OTLPTraceExporter({ url: o.endpoint }), { scheduledDelayMillis: 1000 }),
      ],
    });
    this.tracer = this.provider.getTracer('ambit-waypoint');
  }

  /** Starts the server span of a request, continuing the caller's trace when its headers carry one. */
  request(
    name: string,
    headers: Headers,
    attributes: Readonly<Record<string, string | number>>,
    startTime: number,
  ): RequestTrace {
    const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
    const span = this.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes, startTime }, parent);
    const ctx: Context = trace.setSpan(parent, span);
    const tracer = this.tracer;
    return {
      traceId: span.spanContext().traceId,
      span,
      attempt(attemptName, attrs) {
        const child = tracer.startSpan(attemptName, { kind: SpanKind.CLIENT, attributes: attrs }, ctx);
        const childCtx = trace.setSpan(ctx, child);
        return {
          inject: (h) => propagator.inject(childCtx, h, defaultTextMapSetter),
          end: (a, error) => finish(child, a, error),
        };
      },
      end: (a, error) => finish(span, a, error),
    };
  }

  /** Sends what is buffered and stops. */
  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}

function finish(span: Span, attributes: Readonly<Record<string, string | number>>, error: boolean): void {
  span.setAttributes(attributes);
  if (error) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
