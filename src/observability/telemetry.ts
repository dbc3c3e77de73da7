/**
 * What the pipeline tells the metrics and the tracer about a request, in three calls: `begin`
 * (step 1: the server span), `upstream` (before forwarding: the span whose id the upstream sees),
 * `end` (step 8: counts, stage latencies, the spans ended). Stage boundaries are plain
 * `performance.now()` marks on the request context (one per boundary), read here at the end, so
 * the pipeline stays one readable function and the hot path makes no object for telemetry when
 * tracing is off (`tracing` undefined: every tracing branch is skipped on one reference check).
 */
import type { IncomingMessage } from 'node:http';
import type { Metrics, Outcome } from './metrics.ts';
import type { RequestSpans, Tracing } from './tracing.ts';

/** The parts of the pipeline's request context read here (src/proxy/pipeline.ts RequestContext). */
export interface ObservedRequest {
  id: string;
  traceId: string | null;
  method: string;
  path: string;
  status: number;
  startedAt: number;
  /** `performance.now()` at the end of step 3 (credentials verified); 0 when not reached. */
  verifiedAt: number;
  /** `performance.now()` around step 6 (input built and decided); 0 when not reached. */
  policyStartedAt: number;
  decidedAt: number;
  /** `performance.now()` when forwarding began; 0 when nothing was forwarded. */
  upstreamStartedAt: number;
  error: { code: string } | undefined;
  agent: { id: string } | undefined;
  token: { clientId: string | null } | undefined;
  route?: { protocol: string } | undefined;
  rpc?: { calls: readonly { call: { method: string }; mcp: { method: string; name: string | null } | null }[] } | undefined;
  decidedCall?: { call: { method: string }; mcp: { name: string | null } | null } | undefined;
  spans: RequestSpans | undefined;
}

/** How the listener is reached, for the server span. */
export interface ServedAs {
  scheme: 'http' | 'https';
  host: string;
}

export class Telemetry {
  private readonly metrics: Metrics | undefined;
  private readonly tracing: Tracing | undefined;
  private readonly servedAs: ServedAs;
  /** Configured JSON-RPC paths: the server span's `http.route` (low cardinality, from configuration). */
  private readonly routes: ReadonlySet<string>;

  constructor(metrics: Metrics | undefined, tracing: Tracing | undefined, servedAs: ServedAs, routes: ReadonlySet<string>) {
    this.metrics = metrics;
    this.tracing = tracing;
    this.servedAs = servedAs;
    this.routes = routes;
  }

  /** Whether spans are made (`tracing` configured). */
  get tracingEnabled(): boolean {
    return this.tracing !== undefined;
  }

  /** Step 1: the server span under the caller's traceparent; the request's trace id becomes its trace's. */
  begin(ctx: ObservedRequest, req: IncomingMessage): void {
    const tracing = this.tracing;
    if (!tracing) return;
    ctx.spans = tracing.startServer({
      method: ctx.method,
      path: ctx.path,
      route: this.routes.has(ctx.path) ? ctx.path : undefined,
      scheme: this.servedAs.scheme,
      host: this.servedAs.host,
      headers: req.headers,
      httpVersion: req.httpVersion,
      remoteAddress: req.socket.remoteAddress,
      startedAt: ctx.startedAt,
    });
    ctx.traceId = tracing.traceId(ctx.spans);
  }

  /**
   * Forwarding begins: marks the upstream stage and, with tracing, starts its CLIENT span and sets
   * the upstream's `traceparent` to it. Without tracing the caller's `traceparent` goes on as sent.
   */
  upstream(ctx: ObservedRequest, req: IncomingMessage, path: string): void {
    ctx.upstreamStartedAt = performance.now();
    if (this.tracing && ctx.spans) this.tracing.startUpstream(ctx.spans, ctx.method, path, req.headers, ctx.upstreamStartedAt);
  }

  /** Step 8: counts the request and its MCP calls, observes each stage reached, ends the spans. */
  end(ctx: ObservedRequest, outcome: Outcome, end: number): void {
    const metrics = this.metrics;
    const code = ctx.error?.code ?? null;
    if (metrics) {
      metrics.request(outcome, ctx.status, code, (end - ctx.startedAt) / 1000);
      if (ctx.verifiedAt > 0) metrics.stage('verify', (ctx.verifiedAt - ctx.startedAt) / 1000);
      if (ctx.decidedAt > 0) metrics.stage('policy', (ctx.decidedAt - ctx.policyStartedAt) / 1000);
      if (ctx.upstreamStartedAt > 0) metrics.stage('upstream', (end - ctx.upstreamStartedAt) / 1000);
      const calls = ctx.route?.protocol === 'mcp' ? ctx.rpc?.calls : undefined;
      if (calls) for (const { call, mcp } of calls) metrics.mcpCall(call.method, call.method === 'tools/call' ? (mcp?.name ?? null) : null);
    }
    const spans = ctx.spans;
    if (this.tracing && spans) {
      if (ctx.verifiedAt > 0) this.tracing.stage(spans, 'verify', ctx.startedAt, ctx.verifiedAt);
      if (ctx.decidedAt > 0) this.tracing.stage(spans, 'policy', ctx.policyStartedAt, ctx.decidedAt);
      const decided = ctx.route?.protocol === 'mcp' ? ctx.decidedCall : undefined;
      this.tracing.end(
        spans,
        {
          status: ctx.status,
          outcome,
          code,
          requestId: ctx.id,
          agentId: ctx.agent?.id ?? null,
          clientId: ctx.token?.clientId ?? null,
          mcpMethod: decided?.call.method ?? null,
          mcpTool: decided?.mcp?.name ?? null,
        },
        end,
      );
    }
  }

  /** Exports the spans still buffered (on shutdown). */
  async close(): Promise<void> {
    await this.tracing?.shutdown();
  }
}
