/**
 * The composition root: every long-lived object (key sets, verifiers, policy engine, upstream
 * pool, logger, audit stream) is built here once from the loaded configuration; the request path
 * only calls them (conventions §3). `start` listens, `stop` drains. The builders of each side live
 * beside this file (oauth.ts, workload.ts, policy.ts, listeners.ts).
 */
import type { AddressInfo } from 'node:net';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Dispatcher } from 'undici';
import { relaxations, type LoadedConfig } from '../config/load.ts';
import { TxnTokenMinter } from '../credentials/txn-mint.ts';
import type { Config, TxnMintConfig } from '../config/schema.ts';
import { durationMs } from '../duration.ts';
import { AuditLog, NO_AUDIT, workerFile, type AuditLogOptions, type AuditSink } from '../observability/audit.ts';
import { createAdminServer, type Readiness } from '../observability/health.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { Metrics, offerToPrimary, type KeySetSource } from '../observability/metrics.ts';
import { ServerErrorLog } from '../observability/server-errors.ts';
import { Telemetry } from '../observability/telemetry.ts';
import { Tracing } from '../observability/tracing.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import { explainRequest, type DescribedRequest, type ExplainResult } from '../proxy/explain.ts';
import { Forwarder } from '../proxy/forward.ts';
import { upstreamHeaderPlan } from '../proxy/headers.ts';
import type { PipelineDeps, RpcRoute } from '../proxy/pipeline.ts';
import type { UpstreamTxnPlan } from '../proxy/upstream-token.ts';
import { protectedResource } from '../proxy/protected-resource.ts';
import { ListenerTls } from '../proxy/tls.ts';
import { WebSocketProxy } from '../proxy/upgrade.ts';
import type { Services } from '../services.ts';
import { closeGracefully, createAgentListener, listen } from './listeners.ts';
import { buildOAuth, type OAuthParts } from './oauth.ts';
import { createPolicyEngine } from './policy.ts';
import { buildRevocations, buildSignals, type RevocationParts } from './signals.ts';
import { buildState, shareNonceKey, type StateParts } from './state.ts';
import { buildTrustedProxies } from './trusted-proxies.ts';
import { buildWorkload, type WorkloadParts } from './workload.ts';
import type { TrustedProxies } from '../credentials/client-cert-header.ts';

export { createPolicyEngine } from './policy.ts';

export interface AppOptions {
  logger?: Logger;
  /** Outbound connection pool for key fetches (tests inject one). */
  dispatcher?: Dispatcher;
  now?: () => number;
  env?: NodeJS.ProcessEnv;
  /** Write no audit records and open no audit file (`agentward explain`). */
  noAudit?: boolean;
  /**
   * This process is worker N (from 1) of `workers` (src/app/workers.ts): it opens no admin
   * listener (the primary serves it) and writes its own audit chain, `audit.wN.jsonl`.
   */
  worker?: number | undefined;
  /** Keep replay state in this process whatever `state` says (`agentward explain`: no proof id is taken in the shared store). */
  localState?: boolean;
}

export interface App {
  /** Loads policy and keys, then listens on both addresses (a worker: on the agent address only). */
  start(): Promise<{ address: AddressInfo; admin: AddressInfo | undefined }>;
  /** Loads policy and keys once, without listening or watching (`agentward explain`). */
  prepare(): Promise<void>;
  /** Runs a described request through the pipeline up to the decision; forwards nothing. */
  explain(request: DescribedRequest): Promise<ExplainResult>;
  /** Stops accepting, lets in-flight requests finish up to listen.shutdownTimeout, then closes. */
  stop(): Promise<void>;
  readonly logger: Logger;
  readonly policy: PolicyEngine;
  ready(): boolean;
  /** What /readyz answers; a worker sends it to the primary when asked. */
  readiness(): Readiness;
}

/** Everything built once, before the pipeline's dependencies are wired from it. */
interface Parts {
  tls: ListenerTls | undefined;
  oauth: OAuthParts;
  workload: WorkloadParts | undefined;
  /** `listen.trustedProxies`: who may forward a client certificate (RFC 9440). */
  trustedProxies: TrustedProxies | undefined;
  policy: PolicyEngine;
  forwarder: Forwarder;
  audit: AuditSink;
  /** Revocation marks and open streams; undefined without a `signals` section. */
  revocation: RevocationParts | undefined;
  /** `forward.txnToken` (mode not off): signs the upstream's Txn-Tokens, publishes their key set. */
  minter: TxnTokenMinter | undefined;
  /** `state`: the replay store, and the Redis connections when shared. */
  state: StateParts;
}

export function createApp(loaded: LoadedConfig, options: AppOptions = {}): App {
  const { config } = loaded;
  const services = createServices(loaded, options);
  const { logger } = services;
  const parts = buildParts(loaded, services, options);
  const { oauth, workload, policy, tls } = parts;
  const shadowDenials = { count: 0 };
  const bundles = [...(workload?.bundles.values() ?? [])];
  const witIssuerKeys = workload?.witIssuerKeys ?? [];
  const keySets = [...oauth.issuers.map((i) => i.keys), ...(oauth.txn ? [oauth.txn.keys] : []), ...witIssuerKeys];
  const metrics = config.metrics.enabled ? buildMetrics(config, parts, shadowDenials, services) : undefined;
  // A worker of several: the primary serves /metrics and gathers this registry at each scrape.
  if (metrics && options.worker !== undefined) offerToPrimary(metrics);
  const telemetry = buildTelemetry(loaded, parts, metrics);
  const deps = pipelineDeps(config, parts, shadowDenials, services, telemetry);
  const { state } = parts;
  const signals = parts.revocation && buildSignals(loaded, services, parts.revocation, { tokens: oauth.tokens, workload: workload?.authenticator, policy, audit: parts.audit }, state.redis);
  const agent = createAgentListener(config.listen, deps, tls, logger, signals?.mainRoutes);
  const ready = () => !agent.draining && policy.status().loaded && keySets.every((k) => k.ready) && bundles.every((b) => b.ready && !b.status().stale);
  const { minter } = parts;
  const detail = () => ({
      draining: agent.draining,
      admission: agent.admission.status(),
      policy: policy.status(),
      ...(config.policy.mode === 'shadow' ? { shadow: { wouldDeny: shadowDenials.count } } : {}),
      issuers: oauth.issuers.map((i) => i.keys.status()),
      ...(oauth.txn ? { txnTokens: oauth.txn.keys.status() } : {}),
      ...(bundles.length > 0 ? { trustDomains: bundles.map((b) => b.status()) } : {}),
      ...(witIssuerKeys.length > 0 ? { witIssuers: witIssuerKeys.map((k) => k.status()) } : {}),
      ...(tls ? { tls: tls.status() } : {}),
      ...(signals ? { signals: signals.status() } : {}),
      ...(minter ? { txnMint: minter.status() } : {}),
      // Not part of readiness: bearer requests are served without it (docs/operations.md "Shared state").
      state: state.status(),
  });
  const readiness = (): Readiness => ({ ready: ready(), detail: detail() });
  const admin = createAdminServer({
    readiness,
    ...(signals ? { routes: signals.adminRoutes } : {}),
    jwks: minter && (() => minter.jwks()),
    metrics: metrics && (() => metrics.scrape()),
  });
  /** First policy load and key fetches; each failure is logged and answered per request. */
  const prepare = async () => {
    const loadPolicy = policy.load().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'policy could not be loaded; requests are refused until it is'));
    await Promise.all([loadPolicy, ...keySets.map((k) => k.start()), ...bundles.map((b) => b.start())]);
  };
  return {
    logger,
    policy,
    ready,
    readiness,
    prepare,
    explain: (request) => explainRequest(request, deps),
    async start() {
      for (const warning of relaxations(config)) logger.warn({ config: loaded.file }, warning);
      await Promise.all([prepare(), state.start()]);
      if (config.policy.watch) policy.watch();
      if (agent.https) tls?.watch(agent.https);
      minter?.watch();
      const address = await listen(agent.server, config.listen.address);
      const adminAddress = options.worker === undefined ? await listen(admin, config.admin.address) : undefined;
      // After the listeners: a transmitter answers a verification request with a push at once.
      await signals?.start();
      logger.info(
        { address: `${address.address}:${address.port}`, ...(adminAddress ? { admin: `${adminAddress.address}:${adminAddress.port}` } : {}), upstream: config.upstream.url, resource: deps.resource.id },
        options.worker === undefined ? 'agentward listening' : 'worker listening',
      );
      return { address, admin: adminAddress };
    },
    async stop() {
      agent.drain();
      await closeGracefully(agent.server, durationMs(config.listen.shutdownTimeout), logger);
      if (admin.listening) {
        await new Promise<void>((done) => admin.close(() => done()));
        admin.closeAllConnections();
      }
      policy.close();
      tls?.close();
      minter?.close();
      for (const k of keySets) k.close();
      for (const b of bundles) b.close();
      signals?.close();
      parts.forwarder.close();
      deps.serverErrors.close();
      parts.audit.close();
      // The spans of the last requests are exported before the process ends.
      await telemetry.close().catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'spans could not be exported on shutdown'));
      await state.close();
      logger.info('agentward stopped');
    },
  };
}

/** The services every builder is handed (the primary of several workers builds them too). */
export function createServices(loaded: LoadedConfig, options: AppOptions): Services {
  const { config } = loaded;
  return {
    logger: options.logger ?? createLogger(config.log.level),
    now: options.now ?? Date.now,
    dispatcher: options.dispatcher,
    baseDir: loaded.baseDir,
    clockSkewSeconds: durationMs(config.oauth.clockSkew) / 1000,
    keySets: { maxAgeMs: durationMs(config.oauth.keys.maxAge), cooldownMs: durationMs(config.oauth.keys.cooldown), timeoutMs: durationMs(config.oauth.keys.timeout) },
  };
}

function buildParts(loaded: LoadedConfig, services: Services, options: AppOptions): Parts {
  const { config, baseDir } = loaded;
  // Read before the verifiers: certificate-bound tokens are accepted only when the listener asks
  // for client certificates or a trusted proxy forwards them, and refused otherwise (MT-N05).
  // Unusable files stop startup here.
  const tlsConfig = config.listen.tls;
  const tls =
    tlsConfig &&
    new ListenerTls({
      certFile: resolve(baseDir, tlsConfig.certFile),
      keyFile: resolve(baseDir, tlsConfig.keyFile),
      clientCaFile: tlsConfig.clientCaFile === undefined ? undefined : resolve(baseDir, tlsConfig.clientCaFile),
      clientCert: tlsConfig.clientCert,
      logger: services.logger,
      now: services.now,
    });
  const bindings = { dpopBinding: config.oauth.dpop.mode !== 'disabled', certificateBinding: (tls !== undefined && tls.clientCert !== 'none') || config.listen.trustedProxies !== undefined };
  const revocation = buildRevocations(config, services);
  const state = buildState(loaded, services, options.localState);
  const audit =
    config.audit.sink === 'off' || options.noAudit
      ? NO_AUDIT
      : new AuditLog({
          dest: config.audit.sink === 'stdout' ? 1 : config.audit.sink === 'stderr' ? 2 : workerFile(resolve(baseDir, config.audit.file!), options.worker),
          hashChain: config.audit.hashChain,
          hashKey: loaded.secrets.get('audit.hashKey'),
          fsync: config.audit.fsync,
          fsyncIntervalMs: durationMs(config.audit.fsyncInterval),
          rotate: config.audit.rotate && {
            maxBytes: config.audit.rotate.maxBytes,
            intervalMs: config.audit.rotate.interval === undefined ? undefined : durationMs(config.audit.rotate.interval),
          },
          checkpoint: config.audit.checkpoints && auditCheckpoints(config.audit.checkpoints, baseDir, services.logger, options.worker),
        });
  const workload = buildWorkload(loaded, services, tls, state.replay);
  const oauth = buildOAuth(loaded, services, bindings, revocation?.revocations, state.replay);
  if (state.redis && oauth.dpop?.nonces) shareNonceKey(state.redis, oauth.dpop.nonces);
  return {
    tls,
    oauth,
    workload,
    trustedProxies: buildTrustedProxies(loaded, services, workload?.acceptsX509Svids ? [...workload.bundles.values()] : []),
    policy: createPolicyEngine(loaded, services, options.env),
    forwarder: forwarder(config.upstream),
    audit,
    revocation,
    minter: txnMinter(loaded, services),
    state,
  };
}

/**
 * The Txn-Token minter: its key read now (an unusable file stops startup, as `check` reports it).
 * The primary of several workers builds one too, for /jwks.json alone (src/app/workers.ts).
 */
export function txnMinter(loaded: LoadedConfig, services: Services): TxnTokenMinter | undefined {
  const { config, baseDir } = loaded;
  const settings = config.forward.txnToken;
  if (!settings || settings.mode === 'off') return undefined;
  return new TxnTokenMinter({
    keyFile: resolve(baseDir, settings.keyFile),
    algorithm: settings.algorithm,
    audience: settings.audience,
    issuer: settings.issuer ?? config.resource.id,
    lifetimeSeconds: durationMs(settings.lifetime) / 1000,
    rotationOverlapMs: durationMs(settings.rotationOverlap),
    logger: services.logger,
    now: services.now,
  });
}

/**
 * Checkpoints go to the log (shipped off the host with it) and, when configured, to a file of
 * their own: two sinks apart from the audit file, so cutting its end off shows.
 */
function auditCheckpoints(settings: NonNullable<Config['audit']['checkpoints']>, baseDir: string, logger: Logger, worker: number | undefined): NonNullable<AuditLogOptions['checkpoint']> {
  // A worker's checkpoints name its own chain: they go to its own file (and carry its number in the log).
  const file = settings.file === undefined ? undefined : workerFile(resolve(baseDir, settings.file), worker);
  if (file) mkdirSync(dirname(file), { recursive: true });
  return {
    intervalMs: durationMs(settings.interval),
    write: (line) => {
      logger.info(JSON.parse(line) as object, 'audit checkpoint');
      if (file) appendFileSync(file, `${line}\n`);
    },
  };
}

/** The upstream forwarder: undici for requests, http-proxy-3 for WebSocket handshakes. */
function forwarder(upstream: Config['upstream']): Forwarder {
  const options = {
    url: upstream.url,
    timeoutMs: durationMs(upstream.timeout),
    connectTimeoutMs: durationMs(upstream.connectTimeout),
    maxSockets: upstream.maxSockets,
  };
  return new Forwarder(options, new WebSocketProxy(options));
}

/**
 * The Prometheus metrics: per-request counts come from the pipeline; the state of key sets,
 * caches, the policy engine and the audit stream is read from them when scraped.
 */
function buildMetrics(config: Readonly<Config>, parts: Parts, shadowDenials: { count: number }, services: Services): Metrics {
  const { oauth, workload } = parts;
  const keySets: KeySetSource[] = [
    ...oauth.issuers.map(({ keys }) => keySetSource('issuer', keys.issuer, keys)),
    ...(oauth.txn ? [keySetSource('txn_tokens', oauth.txn.keys.issuer, oauth.txn.keys)] : []),
    ...(workload?.witIssuerKeys ?? []).map((keys) => keySetSource('wit_issuer', keys.issuer, keys)),
    ...[...(workload?.bundles.values() ?? [])].map((bundle) => keySetSource('trust_domain', bundle.trustDomain, bundle)),
  ];
  const dpop = oauth.dpop?.verifier;
  const metrics = new Metrics(
    { mcpToolLabelLimit: config.metrics.mcpToolLabelLimit, processMetrics: config.metrics.processMetrics },
    {
      keySets,
      policy: parts.policy,
      introspection: oauth.introspector,
      replayCaches: () => ({
        ...(dpop ? { dpop: dpop.replayCacheEntries } : {}),
        ...(workload ? ((r) => ({ wpt: r.wpt, http_signature: r.httpSignature }))(workload.replayCacheEntries()) : {}),
      }),
      audit: parts.audit,
      shadowDenials: config.policy.mode === 'shadow' ? shadowDenials : undefined,
      now: services.now,
    },
  );
  oauth.introspector?.onCall((seconds, outcome) => metrics.introspectionCall(seconds, outcome));
  return metrics;
}

function keySetSource(kind: string, name: string, source: Pick<KeySetSource, 'refreshStats'>): KeySetSource {
  return { kind, name, refreshStats: () => source.refreshStats() };
}

/** Metrics and, when `tracing` is configured, the tracer with its OTLP exporter. */
function buildTelemetry(loaded: LoadedConfig, parts: Parts, metrics: Metrics | undefined): Telemetry {
  const { config } = loaded;
  const settings = config.tracing;
  const tracing =
    settings &&
    new Tracing(
      {
        serviceName: settings.serviceName,
        sampleRatio: settings.sampleRatio,
        otlp: {
          endpoint: settings.otlp.endpoint,
          headers: Object.fromEntries(Object.keys(settings.otlp.headers).map((name) => [name, loaded.secrets.get(`tracing.otlp.headers.${name}`)!])),
          timeoutMs: durationMs(settings.otlp.timeout),
        },
      },
      config.upstream.url,
    );
  const resource = new URL(config.resource.id);
  const routes = new Set([...(config.mcp?.paths ?? []).map((entry) => (typeof entry === 'string' ? entry : entry.path)), ...(config.a2a?.paths ?? [])]);
  return new Telemetry(metrics, tracing, { scheme: parts.tls ? 'https' : 'http', host: resource.hostname }, routes);
}

/** What the pipeline calls per request, wired from the parts. */
function pipelineDeps(config: Readonly<Config>, parts: Parts, shadowDenials: { count: number }, services: Services, telemetry: Telemetry): PipelineDeps {
  const { oauth, workload } = parts;
  const dpopMode = config.oauth.dpop.mode;
  return {
    rpcRoutes: rpcRoutes(config),
    shadow: config.policy.mode === 'shadow',
    shadowDenials,
    resource: protectedResource(config),
    verifier: oauth.tokens,
    dpop: oauth.dpop,
    txn: oauth.txn,
    workload: workload?.authenticator,
    requireToken: config.oauth.requireToken,
    anonymous: config.oauth.anonymous === 'policy',
    extraction: { accepted: { dpop: oauth.dpop !== undefined, wpt: workload !== undefined }, workload: workload?.extraction, trustedProxies: parts.trustedProxies },
    schemes: { bearer: dpopMode !== 'required', dpopAlgs: oauth.dpop ? config.oauth.dpop.algorithms.join(' ') : undefined, wpt: workload !== undefined },
    policy: parts.policy,
    forwarder: parts.forwarder,
    streams: parts.revocation?.streams,
    headerPlan: upstreamHeaderPlan({
      stripCredentials: config.forward.stripCredentials,
      identityHeaders: new Map(Object.entries(config.forward.identityHeaders).map(([k, v]) => [k.toLowerCase(), v])),
      requestIdHeader: config.forward.requestIdHeader.toLowerCase(),
      txnToken: parts.minter !== undefined,
    }),
    upstreamTxn: upstreamTxn(config.forward.txnToken?.mode, parts.minter),
    audit: parts.audit,
    telemetry,
    logger: services.logger,
    serverErrors: new ServerErrorLog(services.logger),
    methodOverride: config.forward.methodOverride,
    maxBodyBytes: config.listen.maxBodyBytes,
    exposeReason: config.policy.exposeReason,
    listenerProto: parts.tls ? 'https' : 'http',
    now: services.now,
  };
}

/** The pipeline's Txn-Token plan: a minter exists exactly when the mode is not off. */
function upstreamTxn(mode: TxnMintConfig['mode'] | undefined, minter: TxnTokenMinter | undefined): UpstreamTxnPlan | undefined {
  return minter && mode !== undefined && mode !== 'off' ? { mode, minter } : undefined;
}

/** JSON-RPC routes: exact paths (config/load.ts keeps a path under one protocol). */
function rpcRoutes(config: Readonly<Config>): Map<string, RpcRoute> {
  return new Map<string, RpcRoute>([
    ...(config.mcp?.paths ?? []).map((entry): [string, RpcRoute] => {
      const own = typeof entry === 'string' ? { path: entry } : entry;
      return [own.path, { protocol: 'mcp', maxBodyBytes: own.maxBodyBytes ?? config.mcp!.maxBodyBytes, filterLists: own.filterLists ?? config.mcp!.filterLists }];
    }),
    ...(config.a2a?.paths ?? []).map((path): [string, RpcRoute] => [path, { protocol: 'a2a', maxBodyBytes: config.a2a!.maxBodyBytes, filterLists: false }]),
  ]);
}
