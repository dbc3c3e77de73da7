/**
 * Prometheus metrics end to end (issue 15 item 1): agentward in front of a real upstream, its
 * admin listener's /metrics read directly and scraped by a real Prometheus (Debian's package),
 * whose HTTP API must give the series back. The MCP tool label stays bounded when clients call
 * 10,000 distinct tool names (docs/operations.md, "Metrics").
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { join } from 'node:path';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { startPrometheus, type TestPrometheus } from '../helpers/prometheus.ts';

const RESOURCE = 'https://api.example.com';
const ECHO_POLICY = join(REPO, 'test/fixtures/policies/echo');
const TOOL_LIMIT = 20;

let issuer: TestIssuer;
let upstream: TestUpstream;
let aw: RunningAgentward;
let token: string;

beforeAll(async () => {
  [issuer, upstream] = await Promise.all([startIssuer({ audience: RESOURCE }), startUpstream()]);
  aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: ECHO_POLICY },
    mcp: { paths: ['/mcp'], maxBodyBytes: 1048576 },
    metrics: { mcpToolLabelLimit: TOOL_LIMIT },
  });
  token = await issuer.mint({ client_id: 'metrics-client' });
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([upstream?.close(), issuer?.close()]);
});

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of the text exposition format (Prometheus "Exposition formats"), comments skipped. */
function parseExposition(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return out;
}

async function scrape(target = aw): Promise<{ status: number; contentType: string | null; series: Series[] }> {
  const res = await fetch(`${target.adminUrl}/metrics`);
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), series: res.status === 200 ? parseExposition(text) : [] };
}

const find = (series: Series[], name: string, labels: Record<string, string> = {}) => series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const valueOf = (series: Series[], name: string, labels: Record<string, string> = {}) => find(series, name, labels).reduce((sum, s) => sum + s.value, 0);

function rpcBatch(names: string[], firstId: number): string {
  return JSON.stringify(names.map((name, i) => ({ jsonrpc: '2.0', id: firstId + i, method: 'tools/call', params: { name, arguments: {} } })));
}

describe('/metrics on the admin listener', () => {
  test('answers in the Prometheus text format, with the Node.js process metrics and each key set', async () => {
    const { status, contentType, series } = await scrape();
    expect(status).toBe(200);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(find(series, 'process_cpu_seconds_total')).toHaveLength(1);
    expect(find(series, 'nodejs_eventloop_lag_seconds')).toHaveLength(1);
    expect(valueOf(series, 'agentward_key_set_loaded', { kind: 'issuer', name: issuer.issuer })).toBe(1);
    expect(valueOf(series, 'agentward_key_set_refreshes_total', { kind: 'issuer', name: issuer.issuer })).toBeGreaterThanOrEqual(1);
    expect(find(series, 'agentward_key_set_age_seconds', { kind: 'issuer' })).toHaveLength(1);
  });

  test('counts requests by outcome, status and error code, and times each stage', async () => {
    const before = (await scrape()).series;
    const allowed = await fetch(`${aw.url}/items`, { headers: { authorization: `Bearer ${token}` } });
    const refused = await fetch(`${aw.url}/items`);
    const denied = await fetch(`${aw.url}/deny`, { headers: { authorization: `Bearer ${token}` } });
    expect([allowed.status, refused.status, denied.status]).toEqual([200, 401, 403]);
    const after = (await scrape()).series;
    const delta = (name: string, labels: Record<string, string>) => valueOf(after, name, labels) - valueOf(before, name, labels);
    expect(delta('agentward_requests_total', { outcome: 'allow', status: '200', code: '' })).toBe(1);
    expect(delta('agentward_requests_total', { outcome: 'deny', status: '401', code: 'ERR_CREDENTIALS_MISSING' })).toBe(1);
    expect(delta('agentward_requests_total', { outcome: 'deny', status: '403', code: 'ERR_POLICY_DENIED' })).toBe(1);
    expect(delta('agentward_request_duration_seconds_count', { outcome: 'deny' })).toBe(2);
    // The verify stage ran for the two with a token, policy for those two, upstream for the one forwarded.
    expect(delta('agentward_stage_duration_seconds_count', { stage: 'verify' })).toBe(2);
    expect(delta('agentward_stage_duration_seconds_count', { stage: 'policy' })).toBe(2);
    expect(delta('agentward_stage_duration_seconds_count', { stage: 'upstream' })).toBe(1);
    expect(delta('agentward_policy_evaluations_total', {})).toBe(2);
    expect(delta('agentward_audit_records_total', {})).toBe(3);
  });

  test(`the MCP tool label stays bounded: 10,000 distinct tool names make ${TOOL_LIMIT} series and "other"`, async () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `tool_${i}`);
    for (let i = 0; i < names.length; i += 1000) {
      const res = await fetch(`${aw.url}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: rpcBatch(names.slice(i, i + 1000), i),
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const { series } = await scrape();
    const tools = find(series, 'agentward_mcp_tool_calls_total');
    expect(tools).toHaveLength(TOOL_LIMIT + 1);
    expect(valueOf(series, 'agentward_mcp_tool_calls_total', { tool: 'other' })).toBe(10_000 - TOOL_LIMIT);
    expect(valueOf(series, 'agentward_mcp_calls_total', { method: 'tools/call' })).toBe(10_000);
    // The whole exposition stays small: no family grew with the tool names.
    expect(series.length).toBeLessThan(600);
  });

  test('a client-chosen MCP method name is counted as "other"', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'x/made-up-method', params: {} });
    const res = await fetch(`${aw.url}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body });
    expect(res.status).toBe(200);
    const { series } = await scrape();
    expect(find(series, 'agentward_mcp_calls_total', { method: 'x/made-up-method' })).toHaveLength(0);
    expect(valueOf(series, 'agentward_mcp_calls_total', { method: 'other' })).toBeGreaterThanOrEqual(1);
  });

  test('metrics.enabled false: /metrics is not served', async () => {
    const off = await startAgentward({ upstream: { url: upstream.url }, resource: { id: RESOURCE }, oauth: { issuers: [] }, policy: { source: ECHO_POLICY }, metrics: { enabled: false } });
    try {
      expect((await scrape(off)).status).toBe(404);
    } finally {
      await off.stop();
    }
  });
});

describe('a real Prometheus scraping agentward', () => {
  let prometheus: TestPrometheus;
  beforeAll(async () => {
    prometheus = await startPrometheus([new URL(aw.adminUrl).host]);
  });
  afterAll(async () => {
    await prometheus?.stop();
  });

  test('reads the request counters, stage histograms and key-set state back through its HTTP API', async () => {
    const refused = await fetch(`${aw.url}/scraped`);
    expect(refused.status).toBe(401);
    await prometheus.waitFor('up{job="agentward"}', (r) => r[0]?.value[1] === '1', 'the agentward target to be up');
    const denials = await prometheus.waitFor(
      'agentward_requests_total{outcome="deny",code="ERR_CREDENTIALS_MISSING"}',
      (r) => r.length === 1 && Number(r[0]!.value[1]) >= 1,
      'the 401 to be scraped',
    );
    expect(denials[0]!.metric).toMatchObject({ job: 'agentward', status: '401' });
    const verify = await prometheus.query('sum(agentward_stage_duration_seconds_count{stage="verify"})');
    expect(Number(verify[0]!.value[1])).toBeGreaterThan(0);
    const p99 = await prometheus.query('histogram_quantile(0.99, sum by (le) (agentward_request_duration_seconds_bucket))');
    expect(Number.isFinite(Number(p99[0]!.value[1]))).toBe(true);
    const age = await prometheus.query(`agentward_key_set_age_seconds{kind="issuer",name="${issuer.issuer}"}`);
    expect(age).toHaveLength(1);
  });
});
