/**
 * The composition root: every long-lived object (key sets, verifier, policy engine, upstream
 * agent, logger, audit stream) is built here once; the request path only calls them
 * (conventions §3). `start` listens, `stop` drains.
 */
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { AgentwardError } from './errors.ts';
import type { AddressInfo, Socket } from 'node:net';
import { resolve } from 'node:path';
import type { Dispatcher } from 'undici';
import { relaxations, type LoadedConfig } from './config/load.ts';
import { durationMs } from './duration.ts';
import { AccessTokenVerifier } from './credentials/access-token.ts';
import { IssuerKeys } from './keys/issuer-keys.ts';
import { TxnTokenVerifier } from './credentials/txn-token.ts';
import { DpopNonces, DpopVerifier } from './credentials/dpop.ts';
import { TokenIntrospector, type IntrospectionClientAuth } from './credentials/introspection.ts';
import { AccessTokens } from './credentials/tokens.ts';
import { HttpSignatureVerifier } from './credentials/http-signature.ts';
import { JwtSvidVerifier, looksLikeJwtSvid } from './credentials/jwt-svid.ts';
import { presentsX509Svid } from './credentials/x509-svid.ts';
import { WimseVerifier } from './credentials/wimse.ts';
import { WorkloadAuthenticator } from './credentials/workload.ts';
import { TrustBundle } from './keys/trust-bundle.ts';
import type { IssuerConfig } from './config/schema.ts';
import type { JWK } from 'jose';
import { PolicyEngine } from './policy/engine.ts';
import { opaBinary } from './policy/compile.ts';
import { BundleVerifier } from './policy/bundle-signature.ts';
import { isUrlSource } from './policy/bundle-source.ts';
import { Forwarder } from './proxy/forward.ts';
import { explainRequest, type DescribedRequest, type ExplainResult } from './proxy/explain.ts';
import { handleClientError, handleRequest, type PipelineDeps, type RpcRoute } from './proxy/pipeline.ts';
import { protectedResource } from './proxy/protected-resource.ts';
import { ListenerTls } from './proxy/tls.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { AuditLog, NO_AUDIT, type AuditSink } from './observability/audit.ts';
import { createAdminServer } from './observability/health.ts';

export interface AppOptions {
  logger?: Logger;
  /** Outbound connection pool for key fetches (tests inject one). */
  dispatcher?: Dispatcher;
  now?: () => number;
  env?: NodeJS.ProcessEnv;
  /** Write no audit records and open no audit file (`agentward explain`). */
  noAudit?: boolean;
}

export interface App {
  /** Loads policy and keys, then listens on both addresses. */
  start(): Promise<{ address: AddressInfo; admin: AddressInfo }>;
  /** Loads policy and keys once, without listening or watching (`agentward explain`). */
  prepare(): Promise<void>;
  /** Runs a described request through the pipeline up to the decision; forwards nothing. */
  explain(request: DescribedRequest): Promise<ExplainResult>;
  /** Stops accepting, lets in-flight requests finish up to listen.shutdownTimeout, then closes. */
  stop(): Promise<void>;
  readonly logger: Logger;
  readonly policy: PolicyEngine;
  ready(): boolean;
}

export function createApp(loaded: LoadedConfig, options: AppOptions = {}): App {
  const { config, baseDir } = loaded;
  const logger = options.logger ?? createLogger(config.log.level);
  const now = options.now ?? Date.now;

  // Every key set (issuers, the Txn-Token service) is fetched and refreshed the same way.
  const keySetOptions = {
    maxAgeMs: durationMs(config.oauth.keys.maxAge),
    cooldownMs: durationMs(config.oauth.keys.cooldown),
    timeoutMs: durationMs(config.oauth.keys.timeout),
    logger,
    now,
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  };
  const issuers = config.oauth.issuers.map((issuer) => ({ config: issuer, keys: new IssuerKeys(issuer, keySetOptions) }));
  if (issuers.length === 0) logger.warn('no OAuth issuers are configured: every request with a token will be refused');

  // Read before the verifier: certificate-bound tokens are accepted only when the listener asks
  // for client certificates, and refused otherwise (MT-N05). Unusable files stop startup here.
  const tlsConfig = config.listen.tls;
  const tls =
    tlsConfig === undefined
      ? undefined
      : new ListenerTls({
          certFile: resolve(baseDir, tlsConfig.certFile),
          keyFile: resolve(baseDir, tlsConfig.keyFile),
          clientCaFile: tlsConfig.clientCaFile === undefined ? undefined : resolve(baseDir, tlsConfig.clientCaFile),
          clientCert: tlsConfig.clientCert,
          logger,
          now,
        });

  // The key bindings whose proof this resource can check (RFC 7800): the same for every token path.
  const bindings = { dpopBinding: config.oauth.dpop.mode !== 'disabled', certificateBinding: tls !== undefined && tls.clientCert !== 'none' };
  const jwtVerifier = new AccessTokenVerifier({
    issuers,
    resourceId: config.resource.id,
    clockSkewSeconds: durationMs(config.oauth.clockSkew) / 1000,
    maxDelegationDepth: config.oauth.maxDelegationDepth,
    cacheSize: config.oauth.tokenCacheSize,
    ...bindings,
    now,
  });
  const introspecting = issuers.find((i) => i.config.introspection !== undefined);
  const verifier = new AccessTokens(jwtVerifier, introspecting && createIntrospector(loaded, introspecting, bindings, options));

  const dpopConfig = config.oauth.dpop;
  const dpop =
    dpopConfig.mode === 'disabled'
      ? undefined
      : (() => {
          const nonces = dpopConfig.nonce.enabled ? new DpopNonces({ lifetimeMs: durationMs(dpopConfig.nonce.lifetime), now }) : undefined;
          const verifier = new DpopVerifier({
            algorithms: dpopConfig.algorithms,
            maxAgeSeconds: durationMs(dpopConfig.maxAge) / 1000,
            clockSkewSeconds: durationMs(config.oauth.clockSkew) / 1000,
            replayCacheSize: dpopConfig.replayCacheSize,
            nonces,
            now,
          });
          return { verifier, nonces, required: dpopConfig.mode === 'required' };
        })();

  // Txn-Tokens: the trust domain's Txn-Token service keys, fetched and refreshed like an issuer's.
  const txnConfig = config.txnTokens;
  const txnKeys =
    txnConfig === undefined
      ? undefined
      : new IssuerKeys(
          { issuer: txnConfig.issuer ?? txnConfig.trustDomain, jwksUri: txnConfig.jwksUri, discovery: 'auto', algorithms: [...txnConfig.algorithms], requiredClaims: [] },
          keySetOptions,
        );
  const txn =
    txnConfig === undefined || txnKeys === undefined
      ? undefined
      : {
          verifier: new TxnTokenVerifier({
            trustDomain: txnConfig.trustDomain,
            keys: (header, token) => txnKeys.getKey(header, token),
            algorithms: txnConfig.algorithms,
            clockSkewSeconds: durationMs(config.oauth.clockSkew) / 1000,
            maxLifetimeSeconds: durationMs(txnConfig.maxLifetime) / 1000,
            now,
          }),
          required: txnConfig.mode === 'required',
        };

  // Workload identity: one trust bundle per trust domain, never merged (SPIFFE Federation §4.2).
  const workloadConfig = config.workload;
  const bundles = new Map(
    (workloadConfig?.trustDomains ?? []).map((domain) => [
      domain.name,
      new TrustBundle({
        trustDomain: domain.name,
        // config/load.ts guarantees exactly one of file and url.
        source: domain.bundle.file !== undefined ? { file: resolve(baseDir, domain.bundle.file) } : { url: domain.bundle.url! },
        maxStaleMs: durationMs(domain.bundle.maxStale),
        timeoutMs: durationMs(domain.bundle.timeout),
        unknownKeyCooldownMs: durationMs(config.oauth.keys.cooldown),
        logger,
        now,
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      }),
    ]),
  );
  const acceptsX509Svids = workloadConfig !== undefined && workloadConfig.x509Svid.enabled && tls !== undefined && tls.clientCert !== 'none';
  // The handshake verifies client chains against clientCaFile plus every trust domain's X.509
  // authorities; the request path then checks each SVID against its own domain's bundle only.
  const installAuthorities = acceptsX509Svids ? () => tls!.setClientAuthorities([...bundles.values()].flatMap((b) => (b.ready ? safeAuthorities(b) : []))) : undefined;
  if (installAuthorities) for (const bundle of bundles.values()) bundle.onInstall(installAuthorities);
  const workload = workloadConfig && createWorkloadAuthenticator(loaded, bundles, acceptsX509Svids, now);

  const policy = createPolicyEngine(loaded, logger, options.env, options.dispatcher);

  const forwarder = new Forwarder({
    url: config.upstream.url,
    timeoutMs: durationMs(config.upstream.timeout),
    connectTimeoutMs: durationMs(config.upstream.connectTimeout),
    maxSockets: config.upstream.maxSockets,
  });

  const audit: AuditSink =
    config.audit.sink === 'off' || options.noAudit
      ? NO_AUDIT
      : new AuditLog({
          dest: config.audit.sink === 'stdout' ? 1 : config.audit.sink === 'stderr' ? 2 : resolve(baseDir, config.audit.file!),
          hashChain: config.audit.hashChain,
          hashKey: loaded.secrets.get('audit.hashKey'),
        });

  const resource = protectedResource(config);
  // JSON-RPC routes: exact paths (config/load.ts keeps a path under one protocol).
  const rpcRoutes = new Map<string, RpcRoute>([
    ...(config.mcp?.paths ?? []).map((entry): [string, RpcRoute] => {
      const own = typeof entry === 'string' ? { path: entry } : entry;
      return [own.path, { protocol: 'mcp', maxBodyBytes: own.maxBodyBytes ?? config.mcp!.maxBodyBytes, filterLists: own.filterLists ?? config.mcp!.filterLists }];
    }),
    ...(config.a2a?.paths ?? []).map((path): [string, RpcRoute] => [path, { protocol: 'a2a', maxBodyBytes: config.a2a!.maxBodyBytes, filterLists: false }]),
  ]);
  const shadowDenials = { count: 0 };
  const deps: PipelineDeps = {
    rpcRoutes,
    shadow: config.policy.mode === 'shadow',
    shadowDenials,
    resource,
    verifier,
    dpop,
    txn,
    workload,
    requireToken: config.oauth.requireToken,
    extraction: {
      accepted: { dpop: dpop !== undefined, wpt: workload !== undefined },
      workload: workloadConfig && {
        contextTokenHeaders: workloadConfig.wimse.contextTokenHeaders,
        isJwtSvid: workloadConfig.jwtSvid.enabled ? jwtSvidClassifier(new Set(bundles.keys()), new Set(config.oauth.issuers.map((i) => i.issuer))) : undefined,
        presentsX509Svid: acceptsX509Svids ? presentsX509Svid : undefined,
      },
    },
    schemes: { bearer: dpopConfig.mode !== 'required', dpopAlgs: dpop ? dpopConfig.algorithms.join(' ') : undefined, wpt: workload !== undefined },
    policy,
    forwarder,
    headerPlan: {
      stripCredentials: config.forward.stripCredentials,
      identityHeaders: new Map(Object.entries(config.forward.identityHeaders).map(([k, v]) => [k.toLowerCase(), v])),
      requestIdHeader: config.forward.requestIdHeader.toLowerCase(),
    },
    audit,
    logger,
    maxBodyBytes: config.listen.maxBodyBytes,
    exposeReason: config.policy.exposeReason,
    listenerProto: tls ? 'https' : 'http',
    now,
  };

  /** The pipeline answers every error itself; anything escaping it is a bug, never a crash. */
  const onPipelineBug = (err: unknown, res: ServerResponse) => {
    logger.error({ err }, 'request handling failed unexpectedly');
    res.destroy();
  };

  let draining = false;
  const ready = () => !draining && policy.status().loaded && issuers.every((i) => i.keys.ready) && (txnKeys?.ready ?? true) && [...bundles.values()].every((b) => b.ready && !b.status().stale);

  const httpOptions = {
    maxHeaderSize: config.listen.maxHeaderBytes,
    requestTimeout: durationMs(config.listen.requestTimeout),
    // How often Node checks requestTimeout (default 30 s, which would let a 1 s limit fire 30 s late).
    connectionsCheckingInterval: Math.min(1000, durationMs(config.listen.requestTimeout)),
    keepAliveTimeout: 65_000,
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (draining) res.setHeader('connection', 'close');
    // While draining, a keep-alive connection whose response just ended is closed at once,
    // so shutdown waits for requests, not for clients' idle sockets.
    res.once('close', () => {
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
    handleRequest(req, res, deps).catch((err: unknown) => onPipelineBug(err, res));
  };
  const httpsServer: HttpsServer | undefined = tls && createHttpsServer({ ...httpOptions, ...tls.serverOptions() }, onRequest);
  const server: Server = httpsServer ?? createServer(httpOptions, onRequest);
  if (httpsServer) {
    // The client certificate is read once per connection (src/credentials/client-certificate.ts);
    // TLS 1.2 renegotiation could swap it mid-connection, so it is refused.
    httpsServer.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
    // A failed handshake (no or unverifiable certificate with clientCert required, a client that
    // distrusts our certificate, a TCP probe) never becomes a request, so it has no audit record.
    httpsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const level = err.code === 'ECONNRESET' ? 'debug' : 'info';
      logger[level]({ err: err.message, code: err.code, remoteAddress: socket.remoteAddress }, 'TLS handshake failed');
    });
  }
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // A TLS 1.2 renegotiation attempt (refused above) is no HTTP request to answer: the connection is cut.
    if (err.code === 'ERR_TLS_RENEGOTIATION_DISABLED') {
      logger.info({ remoteAddress: socket.remoteAddress }, 'TLS renegotiation refused; connection closed');
      socket.destroy();
      return;
    }
    handleClientError(err, socket, deps);
  });
  // RFC 9110 §10.1.1: an expectation other than 100-continue cannot be met; 417, in our format.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) =>
    handleRequest(req, res, deps, new AgentwardError('ERR_EXPECTATION_FAILED')).catch((err: unknown) => onPipelineBug(err, res)),
  );

  const admin = createAdminServer({
    ready,
    detail: () => ({
      draining,
      policy: policy.status(),
      ...(config.policy.mode === 'shadow' ? { shadow: { wouldDeny: shadowDenials.count } } : {}),
      issuers: issuers.map((i) => i.keys.status()),
      ...(txnKeys ? { txnTokens: txnKeys.status() } : {}),
      ...(bundles.size > 0 ? { trustDomains: [...bundles.values()].map((b) => b.status()) } : {}),
      ...(tls ? { tls: tls.status() } : {}),
    }),
  });

  /** First policy load and key fetches; each failure is logged and answered per request. */
  const prepare = async () => {
    await Promise.all([
      policy.load().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'policy could not be loaded; requests are refused until it is')),
      ...issuers.map((i) => i.keys.start()),
      ...(txnKeys ? [txnKeys.start()] : []),
      ...[...bundles.values()].map((b) => b.start()),
    ]);
  };

  return {
    logger,
    policy,
    ready,
    prepare,
    explain: (request) => explainRequest(request, deps),
    async start() {
      for (const warning of relaxations(config)) logger.warn({ config: loaded.file }, warning);
      await prepare();
      if (config.policy.watch) policy.watch();
      if (httpsServer) tls?.watch(httpsServer);
      const address = await listen(server, config.listen.address);
      const adminAddress = await listen(admin, config.admin.address);
      logger.info({ address: `${address.address}:${address.port}`, admin: `${adminAddress.address}:${adminAddress.port}`, upstream: config.upstream.url, resource: resource.id }, 'agentward listening');
      return { address, admin: adminAddress };
    },
    async stop() {
      draining = true;
      const timeoutMs = durationMs(config.listen.shutdownTimeout);
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        logger.warn({ timeoutMs }, 'shutdown timeout reached; closing remaining connections');
        server.closeAllConnections();
      }, timeoutMs);
      await closed;
      clearTimeout(timer);
      await new Promise<void>((done) => admin.close(() => done()));
      admin.closeAllConnections();
      policy.close();
      tls?.close();
      for (const i of issuers) i.keys.close();
      txnKeys?.close();
      for (const b of bundles.values()) b.close();
      forwarder.close();
      await audit.flush();
      logger.info('agentward stopped');
    },
  };
}

/** RFC 7662 introspection for the one issuer that has it (config/load.ts allows one). */
function createIntrospector(
  loaded: LoadedConfig,
  issuer: { config: IssuerConfig; keys: IssuerKeys },
  bindings: { dpopBinding: boolean; certificateBinding: boolean },
  options: AppOptions,
): TokenIntrospector {
  const { config } = loaded;
  const settings = issuer.config.introspection!;
  const index = config.oauth.issuers.indexOf(issuer.config);
  const secret = (name: string) => loaded.secrets.get(`oauth.issuers[${index}].introspection.${name}`)!;
  let clientAuth: IntrospectionClientAuth;
  if (settings.auth === 'private_key_jwt') {
    const privateKey = JSON.parse(secret('privateKey')) as JWK;
    clientAuth = { method: 'private_key_jwt', clientId: settings.clientId, privateKey, alg: settings.algorithm ?? privateKey.alg! };
  } else {
    clientAuth = { method: settings.auth, clientId: settings.clientId, clientSecret: secret('clientSecret') };
  }
  return new TokenIntrospector({
    issuer: issuer.config.issuer,
    endpoint: settings.endpoint,
    clientAuth,
    resourceId: config.resource.id,
    audiences: new Set(issuer.config.audiences ?? [config.resource.id]),
    clockSkewSeconds: durationMs(config.oauth.clockSkew) / 1000,
    maxDelegationDepth: config.oauth.maxDelegationDepth,
    cache: { maxEntries: settings.cacheSize, maxTtlMs: durationMs(settings.cacheTtl), negativeTtlMs: durationMs(settings.negativeCacheTtl) },
    timeoutMs: durationMs(config.oauth.keys.timeout),
    ...bindings,
    responseFormat: settings.format,
    responseKeys: (header, token) => issuer.keys.getKey(header, token),
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
}

/** Whether a Bearer token is a JWT-SVID of a configured trust domain rather than an access token of an OAuth issuer. */
function jwtSvidClassifier(trustDomains: ReadonlySet<string>, oauthIssuers: ReadonlySet<string>): (token: string) => boolean {
  return (token) => looksLikeJwtSvid(token, trustDomains, oauthIssuers);
}

/** The workload authenticator: WIMSE verifiers and SPIFFE checks over the trust bundles. */
function createWorkloadAuthenticator(loaded: LoadedConfig, bundles: ReadonlyMap<string, TrustBundle>, acceptsX509Svids: boolean, now: () => number): WorkloadAuthenticator {
  const { config } = loaded;
  const settings = config.workload!;
  const clockSkewSeconds = durationMs(config.oauth.clockSkew) / 1000;
  const maxProofSeconds = durationMs(settings.wimse.maxProofLifetime) / 1000;
  const domains = settings.trustDomains.map((domain) => ({ domain, bundle: bundles.get(domain.name)!, maxLifetimeSeconds: durationMs(domain.maxLifetime) / 1000 }));
  const audiences = new Set(settings.wimse.audiences);
  return new WorkloadAuthenticator({
    wimse: new WimseVerifier({
      trustDomains: new Map(
        domains.map(({ domain, bundle, maxLifetimeSeconds }) => [domain.name, { witKeys: () => bundle.witSvidKeys(), algorithms: domain.algorithms, maxLifetimeSeconds }]),
      ),
      audiences,
      clockSkewSeconds,
      maxWptLifetimeSeconds: maxProofSeconds,
      replayCacheSize: settings.wimse.replayCacheSize,
      strictWptAudience: settings.wimse.strictAudience,
      cacheSize: config.oauth.tokenCacheSize,
      now,
    }),
    httpSignatures: new HttpSignatureVerifier({ audiences, clockSkewSeconds, maxLifetimeSeconds: maxProofSeconds, replayCacheSize: settings.wimse.replayCacheSize, now }),
    jwtSvid: settings.jwtSvid.enabled
      ? new JwtSvidVerifier({
          trustDomains: new Map(domains.map(({ domain, bundle, maxLifetimeSeconds }) => [domain.name, { jwtKeys: () => bundle.jwtSvidKeys(), maxLifetimeSeconds }])),
          audiences: new Set(settings.jwtSvid.audiences ?? [config.resource.id]),
          requireKid: settings.jwtSvid.requireKid,
          clockSkewSeconds,
          cacheSize: config.oauth.tokenCacheSize,
          now,
        })
      : undefined,
    x509Authorities: acceptsX509Svids ? (trustDomain) => bundles.get(trustDomain)?.x509Authorities() : undefined,
    required: settings.require,
    binding: { rule: settings.binding.rule, clients: settings.binding.clients },
    now,
  });
}

/** A bundle's X.509 authorities for the handshake; none while it is stale (its SVIDs are refused anyway). */
function safeAuthorities(bundle: TrustBundle) {
  try {
    return [...bundle.x509Authorities()];
  } catch {
    return [];
  }
}

/**
 * The policy engine for a config; `agentward check` uses it alone. A bundle URL is polled through
 * `dispatcher` (default: undici's global pool); a verification key is read here, once.
 */
export function createPolicyEngine(loaded: LoadedConfig, logger: Logger, env?: NodeJS.ProcessEnv, dispatcher?: Dispatcher): PolicyEngine {
  const { config, baseDir } = loaded;
  const settings = config.policy;
  const url = isUrlSource(settings.source);
  const verification = settings.verification;
  return new PolicyEngine({
    source: url ? settings.source : resolve(baseDir, settings.source),
    entrypoint: settings.entrypoint,
    dataFile: settings.data === undefined ? undefined : resolve(baseDir, settings.data),
    // A configured opa path is relative to the config file, like every other path; a bare name is looked up on PATH.
    opa: opaBinary(settings.opa?.includes('/') ? resolve(baseDir, settings.opa) : settings.opa, env),
    maxMemoryBytes: settings.maxMemoryBytes,
    logger,
    verifier:
      verification &&
      BundleVerifier.fromFile(resolve(baseDir, verification.keyFile), { algorithm: verification.algorithm, keyId: verification.keyId, scope: verification.scope }),
    poll: url
      ? { intervalMs: durationMs(settings.poll.interval), timeoutMs: durationMs(settings.poll.timeout), maxBytes: settings.poll.maxBytes, dispatcher }
      : undefined,
  });
}

function listen(server: Server, address: string): Promise<AddressInfo> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      done(server.address() as AddressInfo);
    });
  });
}
