/**
 * src/observability/tracing.ts and telemetry.ts without a receiver: sampling is parent-based with
 * a ratio for new traces, the upstream always gets a traceparent naming our CLIENT span (sampled
 * or not), OTLP export carries the configured headers, and with tracing off no span is made.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, test } from 'vitest';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { Tracing } from '../../src/observability/tracing.ts';
import { Telemetry, type ObservedRequest } from '../../src/observability/telemetry.ts';

const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

/** Keeps every exported span (the SDK's InMemorySpanExporter forgets them on shutdown). */
class KeepingExporter implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  export(spans: ReadableSpan[], done: (result: { code: number }) => void): void {
    this.spans.push(...spans);
    done({ code: 0 });
  }
  getFinishedSpans(): ReadableSpan[] {
    return this.spans;
  }
  async shutdown(): Promise<void> {}
}

function tracing(sampleRatio: number, exporter = new KeepingExporter()) {
  return { exporter, tracing: new Tracing({ serviceName: 'unit', sampleRatio, otlp: { endpoint: 'http://127.0.0.1:9/v1/traces', headers: {}, timeoutMs: 1000 }, exporter }, 'http://127.0.0.1:3000') };
}

function request(headers: IncomingHttpHeaders): { ctx: ObservedRequest; req: never } {
  const ctx: ObservedRequest = {
    id: 'req-1',
    traceId: null,
    method: 'GET',
    path: '/items',
    status: 0,
    startedAt: performance.now(),
    verifiedAt: 0,
    policyStartedAt: 0,
    decidedAt: 0,
    upstreamStartedAt: 0,
    error: undefined,
    agent: undefined,
    token: { clientId: 'client-1' },
    spans: undefined,
  };
  const req = { headers, httpVersion: '1.1', socket: { remoteAddress: '127.0.0.1' } };
  return { ctx, req: req as never };
}

/** One request through begin → upstream → end; returns the headers the upstream would get. */
async function run(telemetry: Telemetry, inbound: IncomingHttpHeaders): Promise<{ ctx: ObservedRequest; upstream: IncomingHttpHeaders }> {
  const { ctx, req } = request({ ...inbound });
  telemetry.begin(ctx, req);
  ctx.verifiedAt = ctx.policyStartedAt = ctx.decidedAt = performance.now();
  telemetry.upstream(ctx, req, '/items');
  ctx.status = 200;
  telemetry.end(ctx, 'allow', performance.now());
  return { ctx, upstream: (req as { headers: IncomingHttpHeaders }).headers };
}

describe('sampling and propagation', () => {
  test("a sampled caller is followed even with sampleRatio 0; the upstream's parent is our CLIENT span", async () => {
    const { exporter, tracing: t } = tracing(0);
    const { ctx, upstream } = await run(new Telemetry(undefined, t, { scheme: 'http', host: 'api.example.com' }, new Set()), { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` });
    await t.shutdown();
    expect(ctx.traceId).toBe(CALLER_TRACE);
    const [, trace, parent, flags] = TRACEPARENT.exec(upstream.traceparent as string)!;
    expect([trace, flags]).toEqual([CALLER_TRACE, '01']);
    const spans = exporter.getFinishedSpans();
    const client = spans.find((s) => s.name === 'GET' && s.kind === 2)!;
    const server = spans.find((s) => s.kind === 1)!;
    expect(parent).toBe(client.spanContext().spanId);
    expect(server.parentSpanContext?.spanId).toBe(CALLER_SPAN);
    expect(client.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(spans.map((s) => s.name).sort()).toEqual(['GET', 'GET', 'policy', 'verify']);
    expect(server.attributes['agentward.client.id']).toBe('client-1');
  });

  test('an unsampled caller is not recorded, yet the upstream gets a traceparent of ours with flag 00', async () => {
    const { exporter, tracing: t } = tracing(1);
    const { upstream } = await run(new Telemetry(undefined, t, { scheme: 'http', host: 'api.example.com' }, new Set()), { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-00` });
    await t.shutdown();
    const [, trace, parent, flags] = TRACEPARENT.exec(upstream.traceparent as string)!;
    expect([trace, flags]).toEqual([CALLER_TRACE, '00']);
    expect(parent).not.toBe(CALLER_SPAN);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });

  test('without a traceparent, sampleRatio 0 records nothing and sampleRatio 1 records a new trace', async () => {
    const none = tracing(0);
    await run(new Telemetry(undefined, none.tracing, { scheme: 'http', host: 'h' }, new Set()), {});
    await none.tracing.shutdown();
    expect(none.exporter.getFinishedSpans()).toHaveLength(0);
    const all = tracing(1);
    const { ctx, upstream } = await run(new Telemetry(undefined, all.tracing, { scheme: 'http', host: 'h' }, new Set()), {});
    await all.tracing.shutdown();
    expect(all.exporter.getFinishedSpans()).toHaveLength(4);
    expect(TRACEPARENT.exec(upstream.traceparent as string)![1]).toBe(ctx.traceId);
  });
});

test('tracing off: no span, and the caller\'s traceparent is left as sent', async () => {
  const traceparent = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`;
  const { ctx, upstream } = await run(new Telemetry(undefined, undefined, { scheme: 'http', host: 'h' }, new Set()), { traceparent });
  expect(ctx.spans).toBeUndefined();
  expect(upstream.traceparent).toBe(traceparent);
});

test('OTLP export goes to the endpoint with the configured headers (protobuf)', async () => {
  const seen: IncomingHttpHeaders[] = [];
  const receiver = createServer((req, res) => {
    seen.push(req.headers);
    req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
  const t = new Tracing({ serviceName: 'unit', sampleRatio: 1, otlp: { endpoint, headers: { authorization: 'Bearer otlp-secret' }, timeoutMs: 2000 } }, 'http://127.0.0.1:3000');
  await run(new Telemetry(undefined, t, { scheme: 'http', host: 'h' }, new Set()), {});
  await t.shutdown();
  await new Promise<void>((r) => receiver.close(() => r()));
  expect(seen).toHaveLength(1);
  expect(seen[0]!.authorization).toBe('Bearer otlp-secret');
  expect(seen[0]!['content-type']).toBe('application/x-protobuf');
});
