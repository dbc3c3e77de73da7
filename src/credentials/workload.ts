/**
 * Which workload (agent) is calling, proven cryptographically (docs/policy-input.md `agent`; draft-aims
 * §6–§9). Four credentials prove a workload identity:
 *
 * - a WIT (`Workload-Identity-Token`, workload-creds-02 §5.1) with a proof of possession of its
 *   `cnf.jwk`: `Authorization: WPT` (wpt-02 §2) or a WIMSE HTTP message signature
 *   (http-signature §3, RFC 9421);
 * - an X.509-SVID as the client certificate (X509-SVID §5): the TLS one, or a trusted hop's `Client-Cert`;
 * - a JWT-SVID in `Authorization: Bearer` (JWT-SVID §5.2).
 *
 * Rules for combining them (docs/workload-identity.md "Combining credentials"; issue 4 item 7): every credential that is
 * presented is verified fully, and one that fails rejects the request even when another is valid;
 * all proven identities must be the same identifier (else ERR_WORKLOAD_CONFLICT); a WIT is never
 * accepted without its proof (WIT-N29). The identity is the full identifier URI (identifier-03
 * §4.3), never a header the caller sent.
 */
import type { X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { AgentwardError } from '../errors.ts';
import type { VerifiedAccessToken } from './access-token.ts';
import { durationMs } from '../duration.ts';
import { IssuerKeys, keySetOptions } from '../keys/issuer-keys.ts';
import type { TrustBundle } from '../keys/trust-bundle.ts';
import type { Services } from '../services.ts';
import type { PresentedCredentials, RequestFacts, WorkloadExtraction } from './extract.ts';
import { HttpSignatureVerifier } from './http-signature.ts';
import { JwtSvidVerifier, looksLikeJwtSvid } from './jwt-svid.ts';
import { WimseVerifier, type WimseIssuer, type WitKeyResolver } from './wimse.ts';
import { presentsX509Svid, verifyX509Svid } from './x509-svid.ts';
import type { ProvenWorkload, TokenMatch } from '../identity/workload.ts';
import type { ReplayClaim, ReplayStore } from '../state/replay.ts';

export type BindingRule = 'none' | 'client_id' | 'actor' | 'client_id_or_actor';

export interface WorkloadAuthenticatorOptions {
  wimse: Pick<WimseVerifier, 'verify' | 'verifyIdentityToken'>;
  httpSignatures: Pick<HttpSignatureVerifier, 'verify'>;
  /** Undefined when `workload.jwtSvid.enabled` is false. */
  jwtSvid: (Pick<JwtSvidVerifier, 'verify'> & Partial<Pick<JwtSvidVerifier, 'purge'>>) | undefined;
  /** X.509 authorities of a configured trust domain; undefined when X.509-SVIDs are not accepted. */
  x509Authorities: ((trustDomain: string) => readonly X509Certificate[] | undefined) | undefined;
  required: boolean;
  binding: { rule: BindingRule; clients: Readonly<Record<string, string>> };
  now: () => number;
}

export interface WorkloadResult {
  agent: ProvenWorkload | undefined;
  /** Context-token headers a WPT did not bind with `oth`: they must not reach the policy (wpt-02 §2, WPT-N31). */
  unboundContextHeaders: string[];
  /** The proof ids (WPT `jti`, signature `nonce`) still to record against replay: the pipeline makes them with the DPoP proof's (src/state/replay.ts). */
  replays: ReplayClaim[];
}

export class WorkloadAuthenticator {
  private readonly options: WorkloadAuthenticatorOptions;

  constructor(options: WorkloadAuthenticatorOptions) {
    this.options = options;
  }

  /** Drops cached JWT-SVIDs whose SPIFFE ID `revoked` names (a remediation, docs/signals.md). */
  purgeJwtSvids(revoked: (id: string) => boolean): number {
    return this.options.jwtSvid?.purge?.(revoked) ?? 0;
  }

  /**
   * How the request proves its WIT, decided before anything is verified so that a failure gets
   * the status of its mode (U3). An unreadable Signature-Input is raised here, first.
   */
  proofMode(credentials: PresentedCredentials): 'wpt' | 'http_signature' | undefined {
    if (credentials.signature instanceof AgentwardError) throw credentials.signature;
    if (credentials.scheme === 'wpt') return 'wpt';
    if (credentials.signature !== undefined) return 'http_signature';
    if (credentials.wits !== undefined) return 'wpt';
    return undefined;
  }

  /** Verifies every workload credential presented; all must name the same workload. */
  async authenticate(credentials: PresentedCredentials, facts: RequestFacts): Promise<WorkloadResult> {
    if (credentials.legacyWpt) throw new AgentwardError('ERR_WPT_LEGACY');
    const { wits } = credentials;
    if (wits !== undefined && wits.length > 1) throw new AgentwardError('ERR_WIT_MULTIPLE');
    const wit = wits?.[0];
    const signature = credentials.signature instanceof AgentwardError ? undefined : credentials.signature;
    const proven: ProvenWorkload[] = [];
    const replays: ReplayClaim[] = [];
    let unboundContextHeaders: string[] = [];

    if (credentials.scheme === 'wpt' || signature !== undefined) {
      if (wit === undefined) throw new AgentwardError('ERR_WIT_MISSING');
      if (credentials.scheme === 'wpt') {
        // wpt-02 §2: WIT first, then the WPT with wth, tth (U4) and oth bound to this request.
        const workload = await this.options.wimse.verify({
          wit,
          wpt: credentials.wpt!,
          targetUri: facts.targetUri,
          txnToken: singleTxnToken(credentials.txnTokens),
          otherTokens: contextTokens(credentials.contextTokens),
        }, replays);
        unboundContextHeaders = Object.keys(credentials.contextTokens).filter((h) => !workload.boundContextTokens.includes(h));
        proven.push({ id: workload.id, trustDomain: workload.trustDomain, path: workload.path, via: 'wit+wpt', expiresAt: workload.expiresAt, claims: witClaims(workload.witClaims) });
      }
      if (signature !== undefined) {
        // http-signature §3: the WIT is validated before the signature, and the body read only then.
        const verified = await this.options.wimse.verifyIdentityToken(wit, facts.targetUri);
        const body = await facts.readBody();
        // @authority and @scheme are the configured resource's (RFC 9421 §2.2.3, §2.2.4), never Host: a signature over another authority fails.
        const request = { method: facts.method, path: facts.path, query: facts.query, headers: facts.headers, body: body.length > 0 ? body : undefined, authority: facts.authority, scheme: facts.scheme };
        await this.options.httpSignatures.verify(request, { key: verified.key, alg: verified.alg, thumbprint: verified.jkt }, facts.targetUri, replays);
        if (credentials.scheme !== 'wpt') {
          proven.push({ id: verified.id.id, trustDomain: verified.id.trustDomain, path: verified.id.path, via: 'wit+http_signature', expiresAt: verified.exp, claims: witClaims(verified.claims) });
        }
      }
    } else if (wit !== undefined) {
      // WIT-N29: a WIT is not a bearer credential (creds-02 §5.1, §9.2; WIT-SVID §7.1).
      throw new AgentwardError('ERR_WIT_NO_PROOF');
    }

    if (this.options.x509Authorities) {
      const svid = verifyX509Svid(credentials.clientCertificate, this.options.x509Authorities, this.options.now());
      if (svid) proven.push({ id: svid.id, trustDomain: svid.trustDomain, path: svid.path, via: 'x509_svid', expiresAt: svid.expiresAt, claims: { ...svid.claims } });
    }

    if (credentials.bearerIsJwtSvid && this.options.jwtSvid) {
      const svid = await this.options.jwtSvid.verify(credentials.accessToken!);
      proven.push({ id: svid.id, trustDomain: svid.trustDomain, path: svid.path, via: 'jwt_svid', expiresAt: svid.expiresAt, claims: svid.claims });
    }

    const agent = proven[0];
    if (agent !== undefined && proven.some((p) => p.id !== agent.id)) throw new AgentwardError('ERR_WORKLOAD_CONFLICT');
    if (agent === undefined && this.options.required) throw new AgentwardError('ERR_WORKLOAD_MISSING');
    return { agent, unboundContextHeaders, replays };
  }

  /**
   * Whether the access token was issued to this workload: its `client_id`, and its current actor
   * (RFC 8693 §4.1 `act.sub`; earlier actors never count), each mapped through
   * `workload.binding.clients`. The configured rule makes a mismatch a rejection (ACT-N05).
   */
  matchToken(agent: ProvenWorkload, token: VerifiedAccessToken): TokenMatch {
    const { rule, clients } = this.options.binding;
    const names = (value: unknown): boolean | null => (typeof value === 'string' ? (clients[value] ?? value) === agent.id : null);
    const match: TokenMatch = { clientId: names(token.clientId ?? undefined), actor: names(token.delegation.chain[0]?.sub) };
    const ok =
      rule === 'none' ||
      (rule === 'client_id' && match.clientId === true) ||
      (rule === 'actor' && match.actor === true) ||
      (rule === 'client_id_or_actor' && (match.clientId === true || match.actor === true));
    if (!ok) throw new AgentwardError('ERR_WORKLOAD_TOKEN_MISMATCH');
    return match;
  }
}

/** The configured context-token headers present on the request, each exactly once (WPT-N30). */
function contextTokens(present: Readonly<Record<string, readonly string[]>>): Record<string, string> | undefined {
  const found: Record<string, string> = {};
  for (const [name, values] of Object.entries(present)) {
    if (values.length > 1) throw new AgentwardError('ERR_WPT_OTH', `The context token header ${name} appears more than once; oth binds one value (wpt-02 section 2).`);
    found[name] = values[0]!;
  }
  return Object.keys(found).length > 0 ? found : undefined;
}

/** The Txn-Token a WPT's `tth` must bind (wpt-02 §2); two are refused before any hash is compared. */
function singleTxnToken(values: readonly string[] | undefined): string | undefined {
  if (values === undefined) return undefined;
  if (values.length > 1) throw new AgentwardError('ERR_TXN_TOKEN_MULTIPLE');
  return values[0];
}

/** The WIT claims for the policy, minus those already in named fields or useless to it. */
function witClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const { sub: _sub, exp: _exp, cnf: _cnf, ...rest } = claims;
  return rest;
}

// ---------------------------------------------------------------- builder

/** The `workload` section as this module reads it (config/schema.ts describes the file). */
export interface WorkloadSettings {
  trustDomains: readonly { name: string; algorithms: readonly string[]; witProfile: 'wimse' | 'spiffe'; maxLifetime: string }[];
  witIssuers: readonly { issuer: string; jwksUri?: string | undefined; jwksFile?: string | undefined; trustDomains: readonly string[]; algorithms: readonly string[]; maxLifetime: string }[];
  require: boolean;
  wimse: {
    audiences: readonly string[];
    maxProofLifetime: string;
    replayCacheSize: number;
    strictAudience: boolean;
    contextTokenHeaders: readonly string[];
    httpSignature: { label?: string | undefined; maxAge?: string | undefined; requiredComponents: readonly string[] };
  };
  jwtSvid: { enabled: boolean; audiences?: readonly string[] | undefined; requireKid: boolean };
  x509Svid: { enabled: boolean };
  binding: { rule: BindingRule; clients: Readonly<Record<string, string>> };
}

/** The trust bundle of each trust domain, and whether X.509-SVIDs can be seen (the listener asks for client certificates, or trusted proxies forward them). */
export interface WorkloadContext {
  bundles: ReadonlyMap<string, TrustBundle>;
  acceptsX509Svids: boolean;
  /** The resource identifier: JWT-SVIDs' audience unless `jwtSvid.audiences` says otherwise. */
  resourceId: string;
  /** Issuers of `oauth.issuers`: a token naming one of them is an access token, never a JWT-SVID. */
  oauthIssuers: ReadonlySet<string>;
  /** Verified WITs and JWT-SVIDs remembered (`oauth.tokenCacheSize`). */
  cacheSize: number;
  /** Where WPT ids and signature nonces are recorded (`state.backend`); default: this process's memory. */
  replay?: ReplayStore | undefined;
}

/**
 * Builds the workload authenticator (WIMSE and SPIFFE verifiers over the trust bundles and the
 * WIT issuers' key sets), what extraction reads for it, and the WIT issuers' key sets (to start,
 * report and close with the others).
 */
export function buildWorkloadAuthenticator(
  settings: WorkloadSettings,
  context: WorkloadContext,
  services: Services,
): { authenticator: WorkloadAuthenticator; extraction: WorkloadExtraction; witIssuerKeys: IssuerKeys[]; replayCacheEntries: () => { wpt: number; httpSignature: number } } {
  const { clockSkewSeconds, now } = services;
  const keyOptions = keySetOptions(services);
  const witIssuers = settings.witIssuers.map((config) => ({
    config,
    // One key-set holder (fetch, refresh, refetch on an unknown kid) for URLs and files alike.
    keys: new IssuerKeys({ issuer: config.issuer, jwksUri: config.jwksUri, jwksFile: config.jwksFile === undefined ? undefined : resolve(services.baseDir, config.jwksFile), discovery: 'auto' }, keyOptions),
  }));
  const issuers = new Map<string, WimseIssuer>(
    witIssuers.map(({ config, keys }) => [
      config.issuer,
      { witKeys: issuerWitKeys(keys), algorithms: config.algorithms, trustDomains: new Set(config.trustDomains), maxLifetimeSeconds: durationMs(config.maxLifetime) / 1000 },
    ]),
  );
  const { bundles, cacheSize } = context;
  const maxProofSeconds = durationMs(settings.wimse.maxProofLifetime) / 1000;
  const domains = settings.trustDomains.map((domain) => ({ domain, bundle: bundles.get(domain.name)!, maxLifetimeSeconds: durationMs(domain.maxLifetime) / 1000 }));
  const audiences = new Set(settings.wimse.audiences);
  const replayCacheSize = settings.wimse.replayCacheSize;
  const { httpSignature } = settings.wimse;
  const wimse = new WimseVerifier({
    trustDomains: new Map(domains.map(({ domain, bundle, maxLifetimeSeconds }) => [domain.name, { witKeys: () => bundle.witSvidKeys(), algorithms: domain.algorithms, profile: domain.witProfile, maxLifetimeSeconds }])),
    issuers,
    audiences,
    clockSkewSeconds,
    maxWptLifetimeSeconds: maxProofSeconds,
    replayCacheSize,
    replay: context.replay,
    strictWptAudience: settings.wimse.strictAudience,
    cacheSize,
    now,
  });
  const httpSignatures = new HttpSignatureVerifier({
    audiences,
    clockSkewSeconds,
    maxLifetimeSeconds: maxProofSeconds,
    maxAgeSeconds: httpSignature.maxAge === undefined ? undefined : durationMs(httpSignature.maxAge) / 1000,
    requiredComponents: httpSignature.requiredComponents,
    label: httpSignature.label,
    replayCacheSize,
    replay: context.replay,
    now,
  });
  const authenticator = new WorkloadAuthenticator({
    wimse,
    httpSignatures,
    jwtSvid: settings.jwtSvid.enabled
      ? new JwtSvidVerifier({
          trustDomains: new Map(domains.map(({ domain, bundle, maxLifetimeSeconds }) => [domain.name, { jwtKeys: () => bundle.jwtSvidKeys(), maxLifetimeSeconds }])),
          audiences: new Set(settings.jwtSvid.audiences ?? [context.resourceId]),
          requireKid: settings.jwtSvid.requireKid,
          clockSkewSeconds,
          cacheSize,
          now,
        })
      : undefined,
    x509Authorities: context.acceptsX509Svids ? (trustDomain) => bundles.get(trustDomain)?.x509Authorities() : undefined,
    required: settings.require,
    binding: settings.binding,
    now,
  });
  const trustDomains: ReadonlySet<string> = new Set(bundles.keys());
  const extraction: WorkloadExtraction = {
    contextTokenHeaders: settings.wimse.contextTokenHeaders,
    signatureLabel: httpSignature.label,
    // A Bearer token is a JWT-SVID when its sub is a SPIFFE ID of a configured trust domain and its iss no OAuth issuer.
    isJwtSvid: settings.jwtSvid.enabled ? (token) => looksLikeJwtSvid(token, trustDomains, context.oauthIssuers) : undefined,
    presentsX509Svid: context.acceptsX509Svids ? presentsX509Svid : undefined,
  };
  const replayCacheEntries = () => ({ wpt: wimse.replayCacheEntries, httpSignature: httpSignatures.replayCacheEntries });
  return { authenticator, extraction, witIssuerKeys: witIssuers.map((i) => i.keys), replayCacheEntries };
}

/**
 * A WIT issuer's keys as the WIT verifier takes them: a resolver replaced whenever the issuer
 * removes or replaces a key (so cached WITs verified with it are verified again), and the key
 * set's "no such key" reported as the WIT's own code. ERR_KEYS_UNAVAILABLE passes unchanged.
 */
function issuerWitKeys(keys: IssuerKeys): () => WitKeyResolver {
  const resolver = (): WitKeyResolver => async (header, token) => {
    try {
      return await keys.getKey(header, token);
    } catch (err) {
      if (err instanceof AgentwardError && err.code === 'ERR_TOKEN_KEY_UNKNOWN') throw new AgentwardError('ERR_WIT_KEY_UNKNOWN', undefined, { cause: err });
      throw err;
    }
  };
  let current = resolver();
  keys.onRotation(() => {
    current = resolver();
  });
  return () => current;
}
