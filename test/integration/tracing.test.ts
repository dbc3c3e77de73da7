/**
 * OpenTelemetry tracing end to end (issue 15 item 2): a caller with its own span calls through
 * agentward to an upstream that makes its own span from the traceparent it receives; agentward
 * exports over OTLP to a real Jaeger, and the test reads the trace back through Jaeger's query
 * API: agentward's server span is a child of the caller's span, its stage spans and upstream
 * CLIENT span children of the server span, and the upstream's span a child of that CLIENT span
 * (W3C Trace Context §3.2.2.3: the upstream sees our span as parent, never the caller's). No
 * span carries the token. The audit record carries the trace id.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ROOT_CONTEXT, SpanKind, trace, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { startJaeger, type JaegerSpan, type JaegerTrace, type TestJaeger } from '../helpers/jaeger.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://api.example.com';
const ECHO_POLICY = join(REPO, 'test/fixtures/policies/echo');
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

let issuer: TestIssuer;
let jaeger: TestJaeger;
let aw: RunningAgentward;
let plain: RunningAgentward;
let token: string;
/** The traced upstream: what it received, and its own spans' exporter. */
let upstream: Server;
let upstreamUrl: string;
const received: { url: string; traceparent: string | undefined }[] = [];
let providers: TracerProvider[] = [];
let callerTracer: Tracer;
const propagator = new W3CTraceContextPropagator();

function sdk(serviceName: string, endpoint: string): Tracer {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter({ url: endpoint }) })],
  });
  providers.push(provider);
  return provider.getTracer(serviceName);
}

beforeAll(async () => {
  [issuer, jaeger] = await Promise.all([startIssuer({ audience: RESOURCE }), startJaeger()]);
  callerTracer = sdk('test-caller', jaeger.otlpTracesUrl);
  const upstreamTracer = sdk('test-upstream', jaeger.otlpTracesUrl);
  // The upstream continues the trace it is handed, as an instrumented service would.
  upstream = createServer((req, res) => {
    const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
    received.push({ url: req.url ?? '', traceparent });
    const parent = propagator.extract(ROOT_CONTEXT, req.headers, { get: (c, k) => c[k] as string | undefined, keys: (c) => Object.keys(c) });
    const span = upstreamTracer.startSpan('upstream handler', { kind: SpanKind.SERVER }, parent);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    span.end();
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const base = { upstream: { url: upstreamUrl }, resource: { id: RESOURCE }, oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }, policy: { source: ECHO_POLICY } };
  [aw, plain] = await Promise.all([
    startAgentward({ ...base, tracing: { serviceName: 'agentward-under-test', otlp: { endpoint: jaeger.otlpTracesUrl, headers: { 'x-test-header': { value: 'export-secret' } } } } }),
    startAgentward(base),
  ]);
  token = await issuer.mint({ client_id: 'tracing-client' });
}, 60_000);
afterAll(async () => {
  await Promise.all([aw?.stop(), plain?.stop()]);
  await Promise.all(providers.map((p) => p.shutdown()));
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
  await Promise.all([jaeger?.stop(), issuer?.close()]);
});

const tag = (span: JaegerSpan, key: string) => span.tags.find((t) => t.key === key)?.value;
const parentOf = (span: JaegerSpan) => span.references.find((r) => r.refType === 'CHILD_OF')?.spanID;
const service = (t: JaegerTrace, span: JaegerSpan) => t.processes[span.processID]?.serviceName;
const ours = (t: JaegerTrace) => t.spans.filter((s) => service(t, s) === 'agentward-under-test');

/** The audit record of the request to `path` (written at the end of the event-loop turn after the response). */
async function auditOf(target: RunningAgentward, path: string): Promise<Record<string, unknown>> {
  const find = () => target.audit().find((r) => (r.action as { path: string }).path === path);
  await waitFor(async () => find() !== undefined, `the audit record of ${path}`);
  return find()!;
}

/** A caller span of its own, and the traceparent naming it. */
function callerSpan(): { end: () => void; traceId: string; spanId: string; traceparent: string } {
  const span = callerTracer.startSpan('caller', { kind: SpanKind.CLIENT });
  const headers: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, { set: (c, k, v) => void (c[k] = v) });
  const { traceId, spanId } = span.spanContext();
  return { end: () => span.end(), traceId, spanId, traceparent: headers.traceparent! };
}

// agentward exports in batches (every 5 s): each test may wait that long for its spans.
describe('tracing on, exported to Jaeger over OTLP', { timeout: 60_000 }, () => {
  test("agentward's spans sit under the caller's span and above the upstream's span", async () => {
    const caller = callerSpan();
    const res = await fetch(`${aw.url}/traced?q=1`, { headers: { authorization: `Bearer ${token}`, traceparent: caller.traceparent } });
    expect(res.status).toBe(200);
    await res.text();
    caller.end();

    const sent = received.find((r) => r.url === '/traced?q=1')!;
    const [, sentTrace, sentParent] = TRACEPARENT.exec(sent.traceparent ?? '') ?? [];
    expect(sentTrace).toBe(caller.traceId);
    expect(sentParent).not.toBe(caller.spanId);

    // caller + server + verify + policy + upstream CLIENT + the upstream's own span.
    const found = await jaeger.waitForTrace(caller.traceId, 6);
    const spans = ours(found);
    const server = spans.find((s) => tag(s, 'span.kind') === 'server')!;
    const client = spans.find((s) => tag(s, 'span.kind') === 'client')!;
    expect(server.operationName).toBe('GET');
    expect(parentOf(server)).toBe(caller.spanId);
    expect(spans.filter((s) => s.operationName === 'verify' || s.operationName === 'policy').map((s) => [s.operationName, parentOf(s)])).toEqual(
      expect.arrayContaining([
        ['verify', server.spanID],
        ['policy', server.spanID],
      ]),
    );
    expect(parentOf(client)).toBe(server.spanID);
    expect(client.spanID).toBe(sentParent);
    const upstreamSpan = found.spans.find((s) => service(found, s) === 'test-upstream')!;
    expect(parentOf(upstreamSpan)).toBe(client.spanID);

    // HTTP semantic conventions, and who asked (never a token).
    expect(tag(server, 'http.request.method')).toBe('GET');
    expect(tag(server, 'url.path')).toBe('/traced');
    expect(tag(server, 'http.response.status_code')).toBe(200);
    expect(tag(server, 'agentward.outcome')).toBe('allow');
    expect(tag(server, 'agentward.client.id')).toBe('tracing-client');
    expect(tag(client, 'http.response.status_code')).toBe(200);
    expect(tag(client, 'url.full')).toBe(`${upstreamUrl}/traced`);
    expect(JSON.stringify(found)).not.toContain(token);
    expect(JSON.stringify(found)).not.toContain(token.split('.')[2]);

    const record = await auditOf(aw, '/traced');
    expect(record.traceId).toBe(caller.traceId);
  });

  test('a refused request is one server span with its error code, and nothing is forwarded', async () => {
    const caller = callerSpan();
    const res = await fetch(`${aw.url}/refused`, { headers: { traceparent: caller.traceparent } });
    expect(res.status).toBe(401);
    caller.end();
    const found = await jaeger.waitForTrace(caller.traceId, 2);
    const spans = ours(found);
    expect(spans).toHaveLength(1);
    expect(parentOf(spans[0]!)).toBe(caller.spanId);
    expect(tag(spans[0]!, 'agentward.error.code')).toBe('ERR_CREDENTIALS_MISSING');
    expect(tag(spans[0]!, 'agentward.outcome')).toBe('deny');
    expect(tag(spans[0]!, 'http.response.status_code')).toBe(401);
    expect(received.some((r) => r.url === '/refused')).toBe(false);
  });

  test('without a traceparent agentward starts the trace; the audit record and the upstream carry it', async () => {
    const res = await fetch(`${aw.url}/untraced`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    await res.text();
    const record = await auditOf(aw, '/untraced');
    expect(record.traceId).toMatch(/^[0-9a-f]{32}$/);
    const sent = TRACEPARENT.exec(received.find((r) => r.url === '/untraced')!.traceparent ?? '')!;
    expect(sent[1]).toBe(record.traceId);
    const found = await jaeger.waitForTrace(record.traceId as string, 5);
    const server = ours(found).find((s) => tag(s, 'span.kind') === 'server')!;
    expect(server.references).toHaveLength(0);
  });
});

describe('tracing off', () => {
  test("the caller's traceparent reaches the upstream unchanged, and the audit record carries its trace id", async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const res = await fetch(`${plain.url}/passthrough`, { headers: { authorization: `Bearer ${token}`, traceparent } });
    expect(res.status).toBe(200);
    await res.text();
    expect(received.find((r) => r.url === '/passthrough')!.traceparent).toBe(traceparent);
    expect((await auditOf(plain, '/passthrough')).traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    // The upstream continues the trace and exports its own span; once that span is in Jaeger, the
    // trace holds nothing from agentward (a 404 checked earlier would only show the upstream's
    // export had not landed yet, and failed when it had).
    const found = await jaeger.waitForTrace('0af7651916cd43dd8448eb211c80319c', 1);
    expect(found.spans.map((s) => service(found, s))).toEqual(['test-upstream']);
  });
});
