/**
 * OpenTelemetry tracing, built only when `tracing` is configured: without it no tracer exists and
 * the pipeline makes no span, no context and no closure (src/observability/telemetry.ts checks one
 * reference).
 *
 * Spans follow the OpenTelemetry HTTP semantic conventions (semconv 1.45, "HTTP spans"): one SERVER
 * span per request, named by its method (plus `http.route` for a configured JSON-RPC path), under
 * the caller's W3C trace context (W3C Trace Context §3.2, `traceparent`); an INTERNAL child span
 * for each of the verify and policy stages; and a CLIENT span for the call to the upstream, whose
 * span id is the parent-id of the `traceparent` the upstream receives (§3.2.2.3: each hop sends its
 * own span as parent, never the caller's). Attributes carry the outcome, error code, agent id and
 * client id; never a token or a credential header.
 *
 * Export is OTLP over HTTP (protobuf) in batches, off the request path; sampling is parent-based
 * with a ratio for traces this proxy starts.
 */
import type { Context, Span, Tracer } from '@opentelemetry/api';
import type { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';

export interface TracingOptions {
  serviceName: string;
  /** Share of new traces recorded (0..1); a caller's decision is followed. */
  sampleRatio: number;
  otlp: { endpoint: string; headers: Record<string, string>; timeoutMs: number };
  /** Tests: an exporter instead of OTLP. */
  exporter?: SpanExporter;
}

/** The spans of one request, kept on its context. */
export interface RequestSpans {
  server: Span;
  /** The server span as a parent. */
  context: Context;
  upstream: Span | undefined;
}

/** What the server span says about the request at its start. */
export interface ServerSpanStart {
  method: string;
  path: string;
  route: string | undefined;
  scheme: 'http' | 'https';
  host: string;
  headers: IncomingHttpHeaders;
  httpVersion: string;
  remoteAddress: string | undefined;
  startedAt: number;
}

/** What the server span records at its end (every value from verified state or configuration). */
export interface ServerSpanEnd {
  status: number;
  outcome: string;
  code: string | null;
  requestId: string;
  agentId: string | null;
  clientId: string | null;
  mcpMethod: string | null;
  mcpTool: string | null;
}

/**
 * The OpenTelemetry packages, loaded here and only by the `Tracing` constructor, so only when
 * `tracing` is configured: about 7 MiB of RSS that a process without tracing does not pay
 * (bench/README.md, issue 12). `require` (their CommonJS builds) keeps the composition root
 * synchronous; nothing else in agentward loads them.
 */
function loadOpenTelemetry() {
  const require = createRequire(import.meta.url);
  return {
    api: require('@opentelemetry/api') as typeof import('@opentelemetry/api'),
    core: require('@opentelemetry/core') as typeof import('@opentelemetry/core'),
    exporter: require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto'),
    resources: require('@opentelemetry/resources') as typeof import('@opentelemetry/resources'),
    sdk: require('@opentelemetry/sdk-trace') as typeof import('@opentelemetry/sdk-trace'),
    semconv: require('@opentelemetry/semantic-conventions') as typeof import('@opentelemetry/semantic-conventions'),
  };
}

/** The upstream's request headers as a TextMapSetter carrier. */
const headerSetter = { set: (carrier: IncomingHttpHeaders, key: string, value: string) => void (carrier[key] = value) };
const headerGetter = {
  get: (carrier: IncomingHttpHeaders, key: string) => carrier[key],
  keys: (carrier: IncomingHttpHeaders) => Object.keys(carrier),
};

export class Tracing {
  private readonly api: typeof import('@opentelemetry/api');
  private readonly semconv: typeof import('@opentelemetry/semantic-conventions');
  private readonly propagator: W3CTraceContextPropagator;
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly upstream: { host: string; port: number; origin: string };

  constructor(options: TracingOptions, upstreamUrl: string) {
    const otel = loadOpenTelemetry();
    const { TracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler, BatchSpanProcessor } = otel.sdk;
    const { ATTR_SERVICE_NAME } = otel.semconv;
    this.api = otel.api;
    this.semconv = otel.semconv;
    this.propagator = new otel.core.W3CTraceContextPropagator();
    const exporter =
      options.exporter ??
      new otel.exporter.OTLPTraceExporter({ url: options.otlp.endpoint, headers: options.otlp.headers, timeoutMillis: options.otlp.timeoutMs });
    this.provider = new TracerProvider({
      resource: otel.resources.resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio) }),
      spanProcessors: [new BatchSpanProcessor({ exporter })],
    });
    // Our own tracer, not the global one: nothing else in the process gets a provider from us.
    this.tracer = this.provider.getTracer('agentward');
    const url = new URL(upstreamUrl);
    this.upstream = { host: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)), origin: url.origin };
  }

  /** Starts the server span under the caller's trace context (a malformed traceparent starts a new trace). */
  startServer(start: ServerSpanStart): RequestSpans {
    const { ROOT_CONTEXT, SpanKind, trace } = this.api;
    const { ATTR_HTTP_REQUEST_METHOD, ATTR_URL_PATH, ATTR_URL_SCHEME, ATTR_SERVER_ADDRESS, ATTR_NETWORK_PROTOCOL_VERSION, ATTR_HTTP_ROUTE, ATTR_CLIENT_ADDRESS, ATTR_USER_AGENT_ORIGINAL } = this.semconv;
    const parent = this.propagator.extract(ROOT_CONTEXT, start.headers, headerGetter);
    const userAgent = start.headers['user-agent'];
    const server = this.tracer.startSpan(
      start.route ? `${start.method} ${start.route}` : start.method,
      {
        kind: SpanKind.SERVER,
        startTime: start.startedAt,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: start.method,
          [ATTR_URL_PATH]: start.path,
          [ATTR_URL_SCHEME]: start.scheme,
          [ATTR_SERVER_ADDRESS]: start.host,
          [ATTR_NETWORK_PROTOCOL_VERSION]: start.httpVersion,
          ...(start.route ? { [ATTR_HTTP_ROUTE]: start.route } : {}),
          ...(start.remoteAddress ? { [ATTR_CLIENT_ADDRESS]: start.remoteAddress } : {}),
          ...(typeof userAgent === 'string' ? { [ATTR_USER_AGENT_ORIGINAL]: userAgent } : {}),
        },
      },
      parent,
    );
    return { server, context: trace.setSpan(parent, server), upstream: undefined };
  }

  /** The trace id of the request (the caller's, or a new one). */
  traceId(spans: RequestSpans): string {
    return spans.server.spanContext().traceId;
  }

  /** A finished stage as an INTERNAL child of the server span. */
  stage(spans: RequestSpans, name: string, start: number, end: number): void {
    this.tracer.startSpan(name, { kind: this.api.SpanKind.INTERNAL, startTime: start }, spans.context).end(end);
  }

  /**
   * Starts the CLIENT span of the upstream call and writes its `traceparent` (and the caller's
   * `tracestate`, W3C Trace Context §3.3.1.1) into the upstream request's headers.
   */
  startUpstream(spans: RequestSpans, method: string, path: string, headers: IncomingHttpHeaders, startedAt: number): void {
    const { SpanKind, trace } = this.api;
    const { ATTR_HTTP_REQUEST_METHOD, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_URL_FULL } = this.semconv;
    const span = this.tracer.startSpan(
      method,
      {
        kind: SpanKind.CLIENT,
        startTime: startedAt,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          [ATTR_SERVER_ADDRESS]: this.upstream.host,
          [ATTR_SERVER_PORT]: this.upstream.port,
          // The query is left out: it may carry what the caller considers secret.
          [ATTR_URL_FULL]: `${this.upstream.origin}${path}`,
        },
      },
      spans.context,
    );
    spans.upstream = span;
    this.propagator.inject(trace.setSpan(spans.context, span), headers, headerSetter);
  }

  /** Ends the request's spans (the upstream one with the status it answered or the code of its failure). */
  end(spans: RequestSpans, result: ServerSpanEnd, end: number): void {
    const { SpanStatusCode } = this.api;
    const { ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_ERROR_TYPE } = this.semconv;
    const upstream = spans.upstream;
    if (upstream) {
      upstream.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, result.status);
      // HTTP client spans: a 4xx or 5xx answer, or no answer, is an error (semconv "Status").
      if (result.status >= 400 || (result.code !== null && result.code.startsWith('ERR_UPSTREAM'))) {
        upstream.setStatus({ code: SpanStatusCode.ERROR });
        upstream.setAttribute(ATTR_ERROR_TYPE, result.code?.startsWith('ERR_UPSTREAM') ? result.code : String(result.status));
      }
      upstream.end(end);
    }
    const server = spans.server;
    server.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, result.status);
    server.setAttribute('agentward.outcome', result.outcome);
    server.setAttribute('agentward.request.id', result.requestId);
    if (result.code !== null) {
      server.setAttribute('agentward.error.code', result.code);
      server.setAttribute(ATTR_ERROR_TYPE, result.code);
    }
    if (result.agentId !== null) server.setAttribute('agentward.agent.id', result.agentId);
    if (result.clientId !== null) server.setAttribute('agentward.client.id', result.clientId);
    // MCP semantic conventions (incubating): mcp.method.name, gen_ai.tool.name.
    if (result.mcpMethod !== null) server.setAttribute('mcp.method.name', result.mcpMethod);
    if (result.mcpTool !== null) server.setAttribute('gen_ai.tool.name', result.mcpTool);
    // HTTP server spans: only a 5xx is an error (a 4xx is the caller's, semconv "Status").
    if (result.status >= 500 || result.status === 0) server.setStatus({ code: SpanStatusCode.ERROR });
    server.end(end);
  }

  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
