/**
 * Prometheus metrics (prom-client), served at `GET /metrics` on the admin listener. Names and
 * labels follow the Prometheus conventions (base units, `_total` for counters, `_seconds`); the
 * reference is docs/operations.md, "Metrics".
 *
 * Two kinds of sources:
 * - per request, from the pipeline (src/observability/telemetry.ts): counts are kept in plain
 *   numbers on the hot path and handed to prom-client when scraped (`collect`), histograms are
 *   observed through label children built at startup;
 * - state that lives in other modules (key sets, trust bundles, the introspection cache, replay
 *   caches, the policy engine, the audit stream): read by `collect` callbacks when scraped, through
 *   the small getters those modules expose, so no verifier imports this file (arrows point down).
 */
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/** The pipeline stages timed on their own (docs/architecture.md, "The request pipeline"). */
export type Stage = 'verify' | 'policy' | 'upstream';
/** What became of a request: the audit record's `decision`. */
export type Outcome = 'allow' | 'deny' | 'error';

/** A key set or trust bundle as the metrics read it. */
export interface KeySetSource {
  /** `issuer` (oauth.issuers), `txn_tokens`, `wit_issuer` (workload.witIssuers) or `trust_domain` (a SPIFFE bundle). */
  kind: string;
  /** The issuer identifier or trust domain name (from configuration, so bounded). */
  name: string;
  refreshStats(): { refreshes: number; failures: number; loadedAt: number | undefined };
}

/** Everything read when scraped; each part is optional (absent: that family has no series). */
export interface MetricSources {
  keySets: readonly KeySetSource[];
  policy: { readonly counts: { readonly evaluations: number; readonly memoHits: number } } | undefined;
  introspection: { readonly cacheHits: number } | undefined;
  /** Ids held now by each replay cache that is configured (`dpop`, `wpt`, `http_signature`). */
  replayCaches: () => Readonly<Record<string, number>>;
  audit: { counts?(): { written: number; failed: number } } | undefined;
  /** policy.mode shadow: decisions that would have denied. */
  shadowDenials: { readonly count: number } | undefined;
  /** Milliseconds since the epoch (key-set ages). */
  now: () => number;
}

export interface MetricsOptions {
  /** Distinct MCP tool names with a label value of their own; the rest count as `other`. */
  mcpToolLabelLimit: number;
  /** Node.js process metrics (prom-client's default set). */
  processMetrics: boolean;
}

/** Seconds: from 0.25 ms (a memoized decision) to 10 s (a slow upstream). */
const LATENCY_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** MCP methods of the 2025-06-18 and 2026-07-28 revisions: any other method counts as `other` (a client picks the method name). */
const MCP_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'logging/setLevel',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'sampling/createMessage',
  'elicitation/create',
  'roots/list',
]);
/** Tool names longer than this count as `other` (label values are kept short). */
const MAX_TOOL_LABEL_LENGTH = 128;
const OTHER = 'other';

/**
 * A counter whose per-label counts are plain numbers on the hot path; prom-client sees them when
 * scraped. Cheaper than `counter.labels(...).inc()` per request, which hashes the labels each time.
 */
class HotCounter<L extends string> {
  private readonly entries: { labels: Partial<Record<L, string>>; count: number }[] = [];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    const entries = this.entries;
    new Counter<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const entry of entries) this.inc(entry.labels, entry.count);
      },
    });
  }

  /** A count for these labels, made once and kept by the caller. */
  child(labels: Partial<Record<L, string>>): { count: number } {
    const entry = { labels, count: 0 };
    this.entries.push(entry);
    return entry;
  }
}

/**
 * A histogram whose per-label bucket counts are plain numbers on the hot path (an index found in
 * a dozen bounds, three additions), exposed in prom-client's histogram form when scraped.
 * `histogram.labels(...).observe()` costs ~0.6 µs: it rebuilds and hashes the label set, checks
 * the labels and looks the series up, on every call (four calls per request here).
 */
export class HotHistogram<L extends string> {
  private readonly series: { labels: Record<L, string>; counts: number[]; sum: number; count: number }[] = [];
  private readonly name: string;
  private readonly bounds: readonly number[];

  constructor(registry: Registry, name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.bounds = bounds;
    // The shape prom-client's own histograms give the registry (type, values with metricName),
    // so the exposition and the cluster aggregation (summed across workers) treat it as one.
    const metric = { name, help, type: 'histogram', aggregator: 'sum', get: () => Promise.resolve({ name, help, type: 'histogram', aggregator: 'sum', values: this.values() }), reset: () => undefined };
    registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series for these labels, made once and kept by the caller. */
  child(labels: Record<L, string>): { observe(seconds: number): void } {
    const entry = { labels, counts: new Array<number>(this.bounds.length).fill(0), sum: 0, count: 0 };
    this.series.push(entry);
    const bounds = this.bounds;
    return {
      observe(seconds: number): void {
        let i = 0;
        while (i < bounds.length && seconds > bounds[i]!) i++;
        if (i < bounds.length) entry.counts[i]!++;
        entry.sum += seconds;
        entry.count++;
      },
    };
  }

  private values(): { labels: Record<string, string | number>; value: number; metricName: string }[] {
    const out: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const { labels, counts, sum, count } of this.series) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += counts[i]!;
        out.push({ labels: { le, ...labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      out.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: `${this.name}_bucket` });
      out.push({ labels: { ...labels }, value: sum, metricName: `${this.name}_sum` });
      out.push({ labels: { ...labels }, value: count, metricName: `${this.name}_count` });
    }
    return out;
  }
}

type Observer = { observe(seconds: number): void };

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: HotCounter<'outcome' | 'status' | 'code'>;
  /** outcome → code ('' for none) → status → count. */
  private readonly requestCounts = new Map<Outcome, Map<string, Map<number, { count: number }>>>();
  private readonly duration: Record<Outcome, Observer>;
  private readonly stages: Record<Stage, Observer>;
  private readonly mcpCalls: HotCounter<'method'>;
  private readonly mcpMethodCounts = new Map<string, { count: number }>();
  private readonly mcpTools: HotCounter<'tool'>;
  private readonly mcpToolCounts = new Map<string, { count: number }>();
  private readonly mcpToolOther: { count: number };
  private readonly toolLimit: number;
  private readonly replayRefusals: Map<string, { count: number }>;
  private readonly introspectionDuration: Record<'ok' | 'error', Observer>;

  constructor(options: MetricsOptions, sources: MetricSources) {
    const registry = this.registry;
    this.toolLimit = options.mcpToolLabelLimit;
    if (options.processMetrics) collectDefaultMetrics({ register: registry });

    this.requests = new HotCounter(registry, 'agentward_requests_total', 'Requests answered, by outcome (allow, deny, error), HTTP status and error code (empty when none).', ['outcome', 'status', 'code']);
    const duration = new HotHistogram<'outcome'>(registry, 'agentward_request_duration_seconds', 'Time from admission to the end of the response (or the refusal), by outcome.', LATENCY_BUCKETS);
    this.duration = { allow: duration.child({ outcome: 'allow' }), deny: duration.child({ outcome: 'deny' }), error: duration.child({ outcome: 'error' }) };
    const stages = new HotHistogram<'stage'>(
      registry,
      'agentward_stage_duration_seconds',
      'Time spent in each pipeline stage: verify (credentials), policy (input and decision), upstream (forwarding until the response ended).',
      LATENCY_BUCKETS,
    );
    this.stages = { verify: stages.child({ stage: 'verify' }), policy: stages.child({ stage: 'policy' }), upstream: stages.child({ stage: 'upstream' }) };

    this.mcpCalls = new HotCounter(registry, 'agentward_mcp_calls_total', 'MCP JSON-RPC calls decided, by method (methods outside the MCP specification count as "other").', ['method']);
    for (const method of [...MCP_METHODS, OTHER]) this.mcpMethodCounts.set(method, this.mcpCalls.child({ method }));
    this.mcpTools = new HotCounter(registry, 'agentward_mcp_tool_calls_total', 'MCP tools/call calls by tool name; beyond metrics.mcpToolLabelLimit distinct names, "other".', ['tool']);
    this.mcpToolOther = this.mcpTools.child({ tool: OTHER });

    const replay = new HotCounter(registry, 'agentward_replay_refusals_total', 'Proofs refused because their id was already used, by replay cache (dpop, wpt, http_signature).', ['cache']);
    this.replayRefusals = new Map([
      ['ERR_DPOP_REPLAYED', replay.child({ cache: 'dpop' })],
      ['ERR_WPT_REPLAYED', replay.child({ cache: 'wpt' })],
      ['ERR_HSIG_REPLAYED', replay.child({ cache: 'http_signature' })],
    ]);

    const introspection = new HotHistogram<'outcome'>(registry, 'agentward_introspection_duration_seconds', 'Calls to the introspection endpoint (RFC 7662), by outcome (ok: an answer was read; error: unreachable, timed out or not HTTP 200).', LATENCY_BUCKETS);
    this.introspectionDuration = { ok: introspection.child({ outcome: 'ok' }), error: introspection.child({ outcome: 'error' }) };

    registerSources(registry, sources);
  }

  /** Counts one request that took `seconds`. */
  request(outcome: Outcome, status: number, code: string | null, seconds: number): void {
    let byCode = this.requestCounts.get(outcome);
    if (!byCode) this.requestCounts.set(outcome, (byCode = new Map()));
    const codeLabel = code ?? '';
    let byStatus = byCode.get(codeLabel);
    if (!byStatus) byCode.set(codeLabel, (byStatus = new Map()));
    let counter = byStatus.get(status);
    if (!counter) byStatus.set(status, (counter = this.requests.child({ outcome, status: String(status), code: codeLabel })));
    counter.count++;
    this.duration[outcome].observe(seconds);
    if (code !== null) {
      const replay = this.replayRefusals.get(code);
      if (replay) replay.count++;
    }
  }

  stage(stage: Stage, seconds: number): void {
    this.stages[stage].observe(seconds);
  }

  /** One MCP call: its method, and for tools/call the tool's name. */
  mcpCall(method: string, name: string | null): void {
    (this.mcpMethodCounts.get(method) ?? this.mcpMethodCounts.get(OTHER)!).count++;
    if (name === null) return;
    let counter = this.mcpToolCounts.get(name);
    if (!counter) {
      // Bounded cardinality: the first mcpToolLabelLimit names get a series each; all later ones share "other".
      if (this.mcpToolCounts.size >= this.toolLimit || name.length > MAX_TOOL_LABEL_LENGTH || name === OTHER) counter = this.mcpToolOther;
      else this.mcpToolCounts.set(name, (counter = this.mcpTools.child({ tool: name })));
    }
    counter.count++;
  }

  /** One call to the introspection endpoint (TokenIntrospector.onCall). */
  introspectionCall(seconds: number, outcome: 'ok' | 'error'): void {
    this.introspectionDuration[outcome].observe(seconds);
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * In a worker of several (`workers`, src/app/workers.ts): answer the primary's scrapes with this
 * registry, over the cluster IPC channel (prom-client's cluster aggregation).
 */
export function offerToPrimary(metrics: Metrics): void {
  new AggregatorRegistry(); // installs the worker's answer to the primary's requests
  AggregatorRegistry.setRegistries([metrics.registry]);
}

/**
 * In the primary of several workers: every worker's metrics in one exposition. Counters and
 * histograms are summed across workers, as are gauges unless they say otherwise (the key set's
 * age is the oldest, its loaded flag the least).
 */
export function clusterScrape(): () => Promise<{ contentType: string; body: string }> {
  const aggregator = new AggregatorRegistry();
  return async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() });
}

/** The families read from other modules when scraped. */
function registerSources(registry: Registry, sources: MetricSources): void {
  const { keySets, policy, introspection, audit, shadowDenials } = sources;
  const keyLabels = ['kind', 'name'] as const;
  const eachKeySet = (read: (set: KeySetSource, stats: ReturnType<KeySetSource['refreshStats']>) => void) => {
    for (const set of keySets) read(set, set.refreshStats());
  };
  new Counter({
    name: 'agentward_key_set_refreshes_total',
    help: 'Key sets (issuer JWK Sets, SPIFFE trust bundles) loaded, by kind and name.',
    labelNames: keyLabels,
    registers: [registry],
    collect() {
      this.reset();
      eachKeySet((set, stats) => this.inc({ kind: set.kind, name: set.name }, stats.refreshes));
    },
  });
  new Counter({
    name: 'agentward_key_set_refresh_failures_total',
    help: 'Key set loads that failed (the last good set is kept), by kind and name.',
    labelNames: keyLabels,
    registers: [registry],
    collect() {
      this.reset();
      eachKeySet((set, stats) => this.inc({ kind: set.kind, name: set.name }, stats.failures));
    },
  });
  new Gauge({
    name: 'agentward_key_set_age_seconds',
    help: 'Age of the key set in use, by kind and name; no series until a first load worked.',
    labelNames: keyLabels,
    registers: [registry],
    // With several workers the primary shows the oldest set any worker uses.
    aggregator: 'max',
    collect() {
      this.reset();
      const now = sources.now();
      eachKeySet((set, stats) => {
        if (stats.loadedAt !== undefined) this.set({ kind: set.kind, name: set.name }, Math.max(0, (now - stats.loadedAt) / 1000));
      });
    },
  });
  new Gauge({
    name: 'agentward_key_set_loaded',
    help: '1 when the key set has been loaded (requests it verifies can be served), 0 before.',
    labelNames: keyLabels,
    registers: [registry],
    // With several workers: 1 only when every worker has it.
    aggregator: 'min',
    collect() {
      this.reset();
      eachKeySet((set, stats) => this.set({ kind: set.kind, name: set.name }, stats.loadedAt === undefined ? 0 : 1));
    },
  });
  if (policy) {
    new Counter({
      name: 'agentward_policy_evaluations_total',
      help: 'Policy decisions asked for (one per request, one per JSON-RPC call, one per MCP list item), memoized or not.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(policy.counts.evaluations);
      },
    });
    new Counter({
      name: 'agentward_policy_cache_hits_total',
      help: 'Policy decisions answered from the decision memo (src/policy/memo.ts) without evaluating the policy.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(policy.counts.memoHits);
      },
    });
  }
  if (introspection) {
    new Counter({
      name: 'agentward_introspection_cache_hits_total',
      help: 'Opaque tokens answered from the introspection cache (no call to the endpoint).',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(introspection.cacheHits);
      },
    });
  }
  new Gauge({
    name: 'agentward_replay_cache_entries',
    help: 'Proof ids held by each replay cache (dpop, wpt, http_signature).',
    labelNames: ['cache'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [cache, size] of Object.entries(sources.replayCaches())) this.set({ cache }, size);
    },
  });
  if (audit?.counts) {
    const counts = audit.counts.bind(audit);
    new Counter({
      name: 'agentward_audit_records_total',
      help: 'Audit records written to the audit destination.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(counts().written);
      },
    });
    new Counter({
      name: 'agentward_audit_failures_total',
      help: 'Audit records that could not be written or put on disk (fsync).',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(counts().failed);
      },
    });
  }
  if (shadowDenials) {
    new Counter({
      name: 'agentward_shadow_would_deny_total',
      help: 'policy.mode shadow: requests the policy would have denied (forwarded anyway).',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(shadowDenials.count);
      },
    });
  }
}
