/**
 * The metrics registry (src/observability/metrics.ts) read from fake sources, and the files built
 * on its names: every family is documented in docs/operations.md, and every series the Grafana
 * dashboard and the alerting rules query exists; the rules pass `promtool check rules` and their
 * own `promtool test rules`.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { HotHistogram, Metrics, type MetricSources } from '../../src/observability/metrics.ts';
import { promtool } from '../helpers/prometheus.ts';

const REPO = resolve(import.meta.dirname, '../..');
const NOW = Date.parse('2026-12-06T10:00:00Z');

function sources(overrides: Partial<MetricSources> = {}): MetricSources {
  return {
    keySets: [
      { kind: 'issuer', name: 'https://issuer.example.com', refreshStats: () => ({ refreshes: 3, failures: 2, loadedAt: NOW - 90_000 }) },
      { kind: 'trust_domain', name: 'agents.example.com', refreshStats: () => ({ refreshes: 0, failures: 5, loadedAt: undefined }) },
    ],
    policy: { counts: { evaluations: 10, memoHits: 7 } },
    introspection: { cacheHits: 4 },
    replayCaches: () => ({ dpop: 12, wpt: 0, http_signature: 1 }),
    audit: { counts: () => ({ written: 100, failed: 1 }) },
    shadowDenials: { count: 6 },
    now: () => NOW,
    ...overrides,
  };
}

async function values(metrics: Metrics): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const family of await metrics.registry.getMetricsAsJSON()) {
    for (const v of family.values) {
      const name = (v as { metricName?: string }).metricName ?? family.name;
      const labels = Object.entries(v.labels).map(([k, l]) => `${k}=${l}`).join(',');
      out.set(labels ? `${name}{${labels}}` : name, v.value);
    }
  }
  return out;
}

describe('Metrics', () => {
  test('reads key sets, policy, introspection, replay caches, audit and shadow mode when scraped', async () => {
    const v = await values(new Metrics({ mcpToolLabelLimit: 10, processMetrics: false }, sources()));
    expect(v.get('agentward_key_set_refreshes_total{kind=issuer,name=https://issuer.example.com}')).toBe(3);
    expect(v.get('agentward_key_set_refresh_failures_total{kind=trust_domain,name=agents.example.com}')).toBe(5);
    expect(v.get('agentward_key_set_age_seconds{kind=issuer,name=https://issuer.example.com}')).toBe(90);
    // Never loaded: no age, and loaded 0.
    expect(v.has('agentward_key_set_age_seconds{kind=trust_domain,name=agents.example.com}')).toBe(false);
    expect(v.get('agentward_key_set_loaded{kind=trust_domain,name=agents.example.com}')).toBe(0);
    expect(v.get('agentward_policy_evaluations_total')).toBe(10);
    expect(v.get('agentward_policy_cache_hits_total')).toBe(7);
    expect(v.get('agentward_introspection_cache_hits_total')).toBe(4);
    expect(v.get('agentward_replay_cache_entries{cache=dpop}')).toBe(12);
    expect(v.get('agentward_audit_records_total')).toBe(100);
    expect(v.get('agentward_audit_failures_total')).toBe(1);
    expect(v.get('agentward_shadow_would_deny_total')).toBe(6);
  });

  test('counts requests, replay refusals by cache, introspection calls; a counter read twice is not added twice', async () => {
    const metrics = new Metrics({ mcpToolLabelLimit: 10, processMetrics: false }, sources());
    metrics.request('allow', 200, null, 0.002);
    metrics.request('deny', 401, 'ERR_DPOP_REPLAYED', 0.001);
    metrics.request('deny', 401, 'ERR_DPOP_REPLAYED', 0.001);
    metrics.request('deny', 400, 'ERR_HSIG_REPLAYED', 0.001);
    metrics.introspectionCall(0.01, 'ok');
    metrics.introspectionCall(2, 'error');
    await values(metrics);
    const v = await values(metrics);
    expect(v.get('agentward_requests_total{outcome=allow,status=200,code=}')).toBe(1);
    expect(v.get('agentward_requests_total{outcome=deny,status=401,code=ERR_DPOP_REPLAYED}')).toBe(2);
    expect(v.get('agentward_replay_refusals_total{cache=dpop}')).toBe(2);
    expect(v.get('agentward_replay_refusals_total{cache=http_signature}')).toBe(1);
    expect(v.get('agentward_replay_refusals_total{cache=wpt}')).toBe(0);
    expect(v.get('agentward_request_duration_seconds_count{outcome=deny}')).toBe(3);
    expect(v.get('agentward_introspection_duration_seconds_count{outcome=error}')).toBe(1);
  });

  test('tool names beyond the limit, too long, or named "other" share the "other" series', async () => {
    const metrics = new Metrics({ mcpToolLabelLimit: 2, processMetrics: false }, sources());
    for (const name of ['a', 'b', 'c', 'a', 'x'.repeat(200), 'other']) metrics.mcpCall('tools/call', name);
    const v = await values(metrics);
    expect(v.get('agentward_mcp_tool_calls_total{tool=a}')).toBe(2);
    expect(v.get('agentward_mcp_tool_calls_total{tool=b}')).toBe(1);
    expect(v.get('agentward_mcp_tool_calls_total{tool=other}')).toBe(3);
    expect([...v.keys()].filter((k) => k.startsWith('agentward_mcp_tool_calls_total'))).toHaveLength(3);
  });
});

describe('dashboard, alerts and docs use the real names', () => {
  const families = async () => (await new Metrics({ mcpToolLabelLimit: 1, processMetrics: true }, sources()).registry.getMetricsAsJSON()).map((m) => ({ name: m.name, type: String(m.type) }));
  /** Every series name a family exposes (histograms: _bucket, _count, _sum). */
  const seriesNames = async () => new Set((await families()).flatMap((f) => (f.type === 'histogram' ? [`${f.name}_bucket`, `${f.name}_count`, `${f.name}_sum`] : [f.name])));
  const namesIn = (text: string) => new Set(text.match(/\b(agentward_[a-z_]+|process_[a-z_]+|nodejs_[a-z0-9_]+)\b/g) ?? []);

  test('docs/operations.md describes every agentward metric family, and no other', async () => {
    const doc = readFileSync(resolve(REPO, 'docs/operations.md'), 'utf8');
    const ours = (await families()).map((f) => f.name).filter((n) => n.startsWith('agentward_'));
    const rows = new Set([...doc.matchAll(/^\| `(agentward_[a-z_]+)` \|/gm)].map((m) => m[1]));
    expect([...rows].sort()).toEqual([...ours].sort());
  });

  test('the Grafana dashboard queries only series agentward exports', async () => {
    const dashboard = readFileSync(resolve(REPO, 'deploy/grafana/agentward-dashboard.json'), 'utf8');
    const known = await seriesNames();
    expect([...namesIn(dashboard)].filter((n) => !known.has(n))).toEqual([]);
    expect(JSON.parse(dashboard).panels.length).toBeGreaterThan(10);
  });

  test('the alerting rules query only series agentward exports, and pass promtool check and test', async () => {
    const rules = readFileSync(resolve(REPO, 'deploy/prometheus/agentward-alerts.yml'), 'utf8');
    const known = await seriesNames();
    expect([...namesIn(rules)].filter((n) => !known.has(n))).toEqual([]);
    const check = promtool(['check', 'rules', resolve(REPO, 'deploy/prometheus/agentward-alerts.yml')]);
    expect(check.status, check.output).toBe(0);
    const tested = promtool(['test', 'rules', resolve(REPO, 'deploy/prometheus/agentward-alerts.test.yml')]);
    expect(tested.status, tested.output).toBe(0);
  });
});

describe('HotHistogram', () => {
  test("exposes exactly what prom-client's Histogram does for the same observations (bounds, cumulative buckets, +Inf, sum, count)", async () => {
    const bounds = [0.001, 0.01, 0.1, 1];
    const hotRegistry = new Registry();
    const hot = new HotHistogram<'outcome'>(hotRegistry, 'x_seconds', 'help text', bounds);
    const refRegistry = new Registry();
    const ref = new Histogram({ name: 'x_seconds', help: 'help text', labelNames: ['outcome'], buckets: bounds, registers: [refRegistry] });
    const children = { allow: hot.child({ outcome: 'allow' }), deny: hot.child({ outcome: 'deny' }) };
    // Values on the bounds themselves (le is inclusive), between them, and above the last one.
    const seen: [keyof typeof children, number][] = [['allow', 0.0005], ['allow', 0.001], ['allow', 0.05], ['deny', 0.01], ['deny', 3], ['allow', 1], ['allow', 0.0001]];
    for (const [outcome, seconds] of seen) {
      children[outcome].observe(seconds);
      ref.labels(outcome).observe(seconds);
    }
    expect(await hotRegistry.metrics()).toBe(await refRegistry.metrics());
  });
});
