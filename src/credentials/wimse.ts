/**
 * WIMSE workload authentication: a Workload Identity Token (draft-ietf-wimse-workload-creds-02
 * §5.1; cases WIT-Nxx) proved by a Workload Proof Token (draft-ietf-wimse-wpt-02 §2;
 * cases WPT-Nxx), with the decisions U4–U6 (all in docs/negative-cases.md).
 *
 * The WIT is verified only with the keys of the trust domain named by its `sub` (creds-02 §3,
 * §9.1): the unverified `sub` picks the domain, and the verified `sub` must name the same one, so
 * a key of domain A can never vouch for a workload of domain B. A domain's keys are its SPIFFE
 * bundle's `wit-svid` entries, or the key set of a WIT issuer configured by its `iss` (exact
 * match, creds-02 §5.1 `iss`) for that domain; an `iss` is never used to find keys that were not
 * configured. The identity counts as
 * authenticated only once the WPT, signed by the WIT's `cnf.jwk`, has passed too.
 *
 * Replay (wpt-02 §3.1.4): a WPT id is remembered until the WPT expires, keyed by a hash of the WIT
 * hash and `jti`, inserted only once every check has passed. The memory is bounded: when the cache
 * is full the oldest ids are forgotten, and from then on WPTs expiring no later than a forgotten
 * one are refused, so a forgotten id can never be replayed.
 *
 * Both tokens go through src/jose/verify.ts with a profile each: the WIT's routes on its unverified
 * `sub`, the WPT's takes its algorithm and key from the verified WIT.
 */
import { hash } from 'node:crypto';
import { calculateJwkThumbprint, importJWK, type CryptoKey, type JWK, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import { LRUCache } from 'lru-cache';
import { MemoryReplayStore } from './replay-cache.ts';
import { claimAll, type ReplayClaim, type ReplaySpace, type ReplayStore } from '../state/replay.ts';
import { isAsymmetricAlgorithm, keyFitsAlgorithm, PRIVATE_JWK_MEMBERS, SPIFFE_ALGORITHMS } from '../jose/algorithms.ts';
import { explicitTyp, verifyCompactJws, type Claims, type CompactJws, type JwsFailures, type JwsProfile, type KeyChoice, type TimeRule } from '../jose/verify.ts';
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { parseWorkloadId, WorkloadIdError, type WorkloadId } from '../identity/workload-id.ts';
import { normalizeHtu } from './dpop.ts';
import { txnTokenHash } from './txn-token.ts';

/** Failure codes of WIT and WPT verification (each in src/errors.ts). */
export type WimseErrorCode = Extract<ErrorCode, `ERR_WIT_${string}` | `ERR_WPT_${string}`>;

class WimseError extends AgentwardError {
  constructor(code: WimseErrorCode, options?: { cause?: unknown }) {
    super(code, undefined, options);
  }
}

/** Selects a WIT key within one trust domain; `TrustBundle.witSvidKeys()` fits. */
export type WitKeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey | JWK | Uint8Array>;

export interface WimseTrustDomain {
  /**
   * The domain's current WIT keys (`() => bundle.witSvidKeys()` fits). A new resolver object means
   * new keys: WITs verified with the previous one are verified again. May throw
   * ERR_KEYS_UNAVAILABLE (a stale bundle), which then refuses cached WITs too.
   */
  witKeys: () => WitKeyResolver;
  /**
   * Algorithms the domain's issuer may sign WITs with. The WIMSE drafts allow any asymmetric JWS
   * algorithm (creds-02 §5.1 `alg`; wpt-02 §2 for the proof); symmetric ones are never used.
   */
  algorithms: readonly string[];
  /**
   * `spiffe`: a WIT whose `sub` is a `spiffe://` ID follows the SPIFFE WIT-SVID algorithm list
   * too: RS, ES or PS only, for the WIT and for its `cnf.jwk` (WIT-SVID §2.1, §3.2). `wimse`
   * (default): only `algorithms` applies, and `cnf.jwk` may use any asymmetric algorithm, as the
   * WIMSE drafts allow (EdDSA included). Either way a `spiffe://` WIT needs a `kid` and no `aud`.
   */
  profile?: 'wimse' | 'spiffe';
  /** Longest accepted WIT validity (`exp - iat`, or `exp - now` without `iat`), seconds. Default: no limit. */
  maxLifetimeSeconds?: number;
}

/** A WIT whose signature, claims and `cnf.jwk` have passed: not yet an identity (creds-02 §5.1, §9.2). */
export interface VerifiedWit {
  id: WorkloadId;
  exp: number;
  claims: Record<string, unknown>;
  /** `cnf.jwk.alg`: the algorithm every proof must use. */
  alg: string;
  /** `cnf.jwk`, imported. */
  key: CryptoKey;
  jkt: string;
  /** base64url(SHA-256(WIT)): the WPT `wth`. */
  witHash: string;
}

/**
 * A WIT issuer trusted by its `iss` (creds-02 §5.1), beside the trust-domain bundles: its own key
 * set and algorithms, for the trust domains it lists only. Its WITs follow the WIMSE drafts (the
 * SPIFFE WIT-SVID rules belong to bundles); `profile` is ignored.
 */
export interface WimseIssuer extends WimseTrustDomain {
  /** The trust domains whose workloads this issuer may name in `sub`. */
  trustDomains: ReadonlySet<string>;
}

export interface WimseVerifierOptions {
  trustDomains: ReadonlyMap<string, WimseTrustDomain>;
  /** WIT issuers by their exact `iss`. Default none. */
  issuers?: ReadonlyMap<string, WimseIssuer>;
  /** The target URIs (from trusted configuration, never from Host) this resource accepts as WPT `aud`. */
  audiences: ReadonlySet<string>;
  clockSkewSeconds: number;
  /** The most a WPT's `exp` may lie ahead of now (wpt-02 §2: "unreasonably far in the future"). */
  maxWptLifetimeSeconds: number;
  replayCacheSize: number;
  /** Where WPT ids are recorded (`state.backend`); default: this process's memory. */
  replay?: ReplayStore | undefined;
  /** U6 strict mode: accept a WPT `aud` string only, not an array. Default false. */
  strictWptAudience?: boolean;
  /** Verified WITs remembered (by SHA-256) until they expire; 0 disables. Default 10000. */
  cacheSize?: number;
  now?: () => number;
}

/** A verified WIT as cached: with what its time and audience checks need again on every use. */
interface CachedWit extends VerifiedWit {
  /** The key source (bundle or issuer) that verified it. */
  source: WimseTrustDomain;
  /** The key resolver that verified it: a different one (a new bundle, rotated issuer keys) means verify again. */
  verifiedWith: WitKeyResolver;
  nbf: number | undefined;
  aud: unknown;
  witSvid: boolean;
}

export interface WimseRequest {
  /**
   * This request's target URI built from trusted configuration (resource origin + path, no query;
   * wpt-02 §3.1.7: never from Host). Accepted as WPT `aud` besides `audiences`.
   */
  targetUri?: string | undefined;
  /** The `Workload-Identity-Token` value exactly as received. */
  wit: string;
  /** The `WPT` credentials of the `Authorization` field. */
  wpt: string;
  /** The `Txn-Token` value when the request carries one. */
  txnToken?: string | undefined;
  /** Other context tokens by header name (lower-cased here), value as received. */
  otherTokens?: Readonly<Record<string, string>> | undefined;
}

export interface VerifiedWorkload {
  /** The WIT `sub`, exactly as signed: the only value to authorize on (identifier-03 §4.3). */
  id: string;
  trustDomain: string;
  path: string;
  /** WIT `exp`, seconds. */
  expiresAt: number;
  witClaims: Record<string, unknown>;
  /** RFC 7638 SHA-256 thumbprint of `cnf.jwk`. */
  jkt: string;
  /** base64url(SHA-256(WIT)): the WPT `wth`. */
  witHash: string;
  /** WPT `jti`, for audit. */
  wptJti: string;
  /** Names of `otherTokens` bound by `oth`; any other context token must not reach policy (wpt-02 §2). */
  boundContextTokens: string[];
}

const MAX_JTI_LENGTH = 256;
const wptReplayed = (): Error => new WimseError('ERR_WPT_REPLAYED');
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** What the WIT profile's hooks found for one token. */
interface WitRoute {
  /** The SPIFFE or WIMSE ID the unverified `sub` claims: it picks the trust domain. */
  claimed: WorkloadId | undefined;
  /** The trust domain's bundle, or the configured issuer its `iss` names. */
  source: WimseTrustDomain | undefined;
  /** The `iss` that picked an issuer; undefined for a bundle. */
  issuer: string | undefined;
  /** A spiffe:// WIT verified with a SPIFFE bundle: the WIT-SVID rules apply (kid, no aud). */
  witSvid: boolean;
  /** The resolver that verified it, so that a cached WIT knows when its keys changed. */
  verifiedWith: WitKeyResolver | undefined;
  /** The verified `sub`. */
  id: WorkloadId | undefined;
}

/** What a WPT is checked against: the WIT it proves, the request it is for. */
interface WptContext {
  wit: VerifiedWit;
  targetUri: string | undefined;
}

/** What sets a WIT and a WPT apart where the JWS verifier is concerned; their codes carry no detail (the title says it). */
interface WimseToken {
  noun: string;
  /** The one `typ` (creds-02 §5.1, wpt-02 §2 step 6). */
  typ: string;
  type: WimseErrorCode;
  failures: JwsFailures & { malformed: WimseErrorCode };
  missing: WimseErrorCode;
  expired: WimseErrorCode;
  /** An `iat` later than now plus the skew (RFC 7519 §4.1.6), as access tokens and Txn-Tokens are judged. */
  issuedInFuture: WimseErrorCode;
  /** Whether `nbf` is checked with the token (a WPT) or on every use (a WIT: `checkWitUse`). */
  nbf: boolean;
}

const WIT: WimseToken = {
  noun: 'The workload identity token',
  typ: 'wit+jwt',
  type: 'ERR_WIT_TYPE',
  // A bundle key jose cannot use for the algorithm is `keyUnusable`.
  failures: { malformed: 'ERR_WIT_MALFORMED', algorithm: 'ERR_WIT_ALGORITHM', keyUnknown: 'ERR_WIT_KEY_UNKNOWN', keyUnusable: 'ERR_WIT_MALFORMED', signature: 'ERR_WIT_SIGNATURE', unverifiable: 'ERR_WIT_MALFORMED' },
  missing: 'ERR_WIT_CLAIM_MISSING',
  expired: 'ERR_WIT_EXPIRED',
  issuedInFuture: 'ERR_WIT_ISSUED_IN_FUTURE',
  nbf: false,
};

const WPT: WimseToken = {
  noun: 'The workload proof token',
  typ: 'wpt+jwt',
  type: 'ERR_WPT_TYPE',
  failures: { malformed: 'ERR_WPT_MALFORMED', algorithm: 'ERR_WPT_ALGORITHM', signature: 'ERR_WPT_SIGNATURE', unverifiable: 'ERR_WPT_MALFORMED' },
  missing: 'ERR_WPT_CLAIM_MISSING',
  expired: 'ERR_WPT_EXPIRED',
  issuedInFuture: 'ERR_WPT_ISSUED_IN_FUTURE',
  nbf: true,
};

export class WimseVerifier {
  private readonly domains: ReadonlyMap<string, WimseTrustDomain>;
  private readonly issuers: ReadonlyMap<string, WimseIssuer>;
  /** Trust domains some issuer vouches for: a WIT of one whose `iss` is not that issuer gets ERR_WIT_ISSUER. */
  private readonly issuerDomains: ReadonlySet<string>;
  private readonly audiences: ReadonlySet<string>;
  private readonly skew: number;
  private readonly maxLifetime: number;
  private readonly strictAudience: boolean;
  private readonly now: () => number;
  private readonly seen: ReplaySpace;
  /** Proof keys by algorithm and thumbprint: a workload signs every WPT with the same key. */
  private readonly keys = new LRUCache<string, CryptoKey>({ max: 10_000 });
  /**
   * Verified WITs by SHA-256: an agent sends the same WIT (valid for hours) with every request,
   * each time with a new proof, so the WIT's signature is checked once and only the proof after.
   */
  private readonly wits: LRUCache<string, CachedWit> | undefined;
  /**
   * Per key source (trust domain or issuer), the WIT algorithms: its asymmetric ones, and those a
   * `spiffe://` WIT may use (the SPIFFE ones among them under the `spiffe` profile, all of them under `wimse`).
   */
  private readonly witAlgorithms: ReadonlyMap<WimseTrustDomain, { any: readonly string[]; svid: readonly string[] }>;
  private readonly witProfile: JwsProfile<WitRoute>;
  private readonly wptProfile: JwsProfile<WptContext>;

  constructor(options: WimseVerifierOptions) {
    this.domains = options.trustDomains;
    this.issuers = options.issuers ?? new Map();
    this.issuerDomains = new Set([...this.issuers.values()].flatMap((issuer) => [...issuer.trustDomains]));
    this.audiences = new Set([...options.audiences].map(normalizeHtu));
    this.skew = options.clockSkewSeconds;
    this.maxLifetime = options.maxWptLifetimeSeconds;
    this.strictAudience = options.strictWptAudience ?? false;
    this.now = options.now ?? Date.now;
    const cacheSize = options.cacheSize ?? 10_000;
    this.wits = cacheSize > 0 ? new LRUCache<string, CachedWit>({ max: cacheSize, ttlAutopurge: false, perf: { now: () => this.now() } }) : undefined;
    // Marked with the WPT's exp: WPTs expiring no later than a forgotten one are refused.
    this.seen = (options.replay ?? new MemoryReplayStore(() => this.now())).space('wpt', { max: options.replayCacheSize });
    this.witAlgorithms = new Map(
      [...options.trustDomains.values(), ...this.issuers.values()].map((source) => {
        const any = source.algorithms.filter(isAsymmetricAlgorithm);
        return [source, { any, svid: source.profile === 'spiffe' && !this.isIssuer(source) ? any.filter((alg) => SPIFFE_ALGORITHMS.has(alg)) : any }];
      }),
    );
    this.witProfile = this.wimseProfile(WIT, {
      route: (jws, route) => this.routeWit(jws, route),
      locateKey: (jws, route) => this.witKeys(jws, route),
      afterSignature: (claims, _jws, route) => this.checkWitSubject(claims, route),
    });
    this.wptProfile = this.wimseProfile(WPT, {
      // wpt-02 §2 steps 4, 5: alg equal to cnf.jwk.alg, signature by cnf.jwk.
      route: (_jws, { wit }) => ({ algorithms: [wit.alg], keys: wit.key }),
      afterSignature: (claims, _jws, { targetUri }) => this.checkWptClaims(claims, targetUri),
    });
  }

  /**
   * One compact JWS with a signature (creds-02 §5.1.1, wpt-02 §2 step 3), claims read only once
   * verified. Time: expired on or after `exp` (RFC 7519 §4.1.4, wpt-02 §2 step 8), checked before
   * anything else of a WIT is looked at (and again on every use); an `nbf` that is not a
   * NumericDate counts as not valid now. An `iat` ahead of now beyond the skew is refused
   * (RFC 7519 §4.1.6), as for access tokens and Txn-Tokens; once accepted it only falls behind,
   * so a cached WIT needs no second look.
   */
  private wimseProfile<C>(token: WimseToken, hooks: Pick<JwsProfile<C>, 'route' | 'locateKey' | 'afterSignature'>): JwsProfile<C> {
    const time: TimeRule = {
      skew: this.skew,
      now: this.now,
      invalid: (name) => (name === 'nbf' ? token.expired : token.failures.malformed),
      exp: { missing: token.missing, expired: token.expired, onOrAfter: true },
      nbf: token.nbf ? { future: token.expired } : {},
      iat: { future: token.issuedInFuture },
    };
    return { noun: token.noun, form: 'signed', claimsFirst: false, typ: explicitTyp({ accepted: [token.typ], wrong: token.type }), failures: token.failures, time, ...hooks };
  }

  private isIssuer(source: WimseTrustDomain): boolean {
    return [...this.issuers.values()].includes(source as WimseIssuer);
  }

  /** WPT ids held now, expired ones dropped first. */
  get replayCacheEntries(): number {
    return this.seen.size;
  }

  /**
   * Verifies the WIT and its WPT (wpt-02 §2). The WPT id is recorded against replay at once, or,
   * when `replays` is given, added to it for the caller to make with the request's other proofs
   * (src/state/replay.ts `claimAll`: one round trip to a shared store).
   */
  async verify(request: WimseRequest, replays?: ReplayClaim[]): Promise<VerifiedWorkload> {
    const wit = await this.verifyIdentityToken(request.wit, request.targetUri);
    const nowSeconds = this.now() / 1000;

    const verified = await verifyCompactJws(request.wpt, this.wptProfile, { wit, targetUri: request.targetUri });
    const { claims } = verified;
    const exp = verified.exp!;
    const jti = claims.jti as string;
    const wth = claims.wth as string;
    // Step 8: a WPT expiring no later than a forgotten id could be a replay (wpt-02 §3.1.4).
    if (this.seen.forgotten(exp)) throw new WimseError('ERR_WPT_EXPIRED');
    if (exp - nowSeconds > this.maxLifetime + this.skew) throw new WimseError('ERR_WPT_LIFETIME');

    // Step 9: bound to exactly this WIT string.
    if (wth !== wit.witHash) throw new WimseError('ERR_WPT_WTH');

    // Step 11 and U4: tth iff a Txn-Token is present, and equal to its hash.
    const { tth } = claims;
    if (request.txnToken !== undefined) {
      if (typeof tth !== 'string' || tth !== txnTokenHash(request.txnToken)) throw new WimseError('ERR_WPT_TTH');
    } else if (tth !== undefined) {
      throw new WimseError('ERR_WPT_TTH');
    }

    // Steps 12, 13 and U4: every oth entry understood, present and matching.
    const bound = this.checkOth(claims.oth, request.otherTokens);

    // Step 10: not seen before. Keyed by a hash of the WIT hash and jti, kept until the WPT expires.
    const replay: ReplayClaim = { space: this.seen, key: hash('sha256', `${wit.witHash}.${jti}`, 'base64url'), mark: exp, ttlMs: (exp + this.skew) * 1000 - this.now(), replayed: wptReplayed };
    if (replays) replays.push(replay);
    else await claimAll([replay]);

    return {
      id: wit.id.id,
      trustDomain: wit.id.trustDomain,
      path: wit.id.path,
      expiresAt: wit.exp,
      witClaims: wit.claims,
      jkt: wit.jkt,
      witHash: wit.witHash,
      wptJti: jti,
      boundContextTokens: bound,
    };
  }

  /** wpt-02 §2: the claims a WPT carries, with their types; U11; step 7 and U6: aud names this resource, from trusted configuration. */
  private checkWptClaims(claims: Claims, targetUri: string | undefined): void {
    const { aud, exp, jti, wth } = claims;
    if (aud === undefined || exp === undefined || jti === undefined || wth === undefined) throw new WimseError('ERR_WPT_CLAIM_MISSING');
    if (typeof exp !== 'number' || !Number.isFinite(exp) || typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH || typeof wth !== 'string') {
      throw new WimseError('ERR_WPT_MALFORMED');
    }
    // U11: ath belongs to wpt-01; legacy mode is off.
    if (claims.ath !== undefined) throw new WimseError('ERR_WPT_ATH');
    if (!this.audienceMatches(aud, targetUri)) throw new WimseError('ERR_WPT_AUDIENCE');
  }

  /** U6: a string naming this resource, or (unless strict) an array of strings containing it. */
  private audienceMatches(aud: unknown, targetUri: string | undefined): boolean {
    if (typeof aud === 'string') return this.namesThisResource(aud, targetUri);
    if (this.strictAudience) return false;
    return this.listNamesThisResource(aud, targetUri);
  }

  private listNamesThisResource(list: unknown, targetUri: string | undefined): boolean {
    return Array.isArray(list) && list.length > 0 && list.every((a) => typeof a === 'string') && list.some((a: string) => this.namesThisResource(a, targetUri));
  }

  private namesThisResource(aud: string, targetUri: string | undefined): boolean {
    const n = normalizeHtu(aud);
    return (targetUri !== undefined && n === normalizeHtu(targetUri)) || this.audiences.has(n);
  }

  private checkOth(oth: unknown, otherTokens: Readonly<Record<string, string>> | undefined): string[] {
    if (oth === undefined) return [];
    if (oth === null || typeof oth !== 'object' || Array.isArray(oth)) throw new WimseError('ERR_WPT_OTH');
    const given = new Map<string, string>();
    for (const [name, value] of Object.entries(otherTokens ?? {})) given.set(name.toLowerCase(), value);
    const bound: string[] = [];
    for (const [name, expected] of Object.entries(oth)) {
      if (!HEADER_NAME.test(name) || typeof expected !== 'string') throw new WimseError('ERR_WPT_OTH');
      const value = given.get(name);
      if (value === undefined) throw new WimseError('ERR_WPT_OTH');
      if (hash('sha256', value.replace(/^[ \t]+|[ \t]+$/g, ''), 'base64url') !== expected) throw new WimseError('ERR_WPT_OTH');
      bound.push(name);
    }
    return bound;
  }

  /**
   * The WIT alone (decision U1 in docs/negative-cases.md: header, trust domain, key, signature,
   * time, cnf). The result is not an authenticated identity: the caller must still check a proof
   * by its `cnf.jwk` (a WPT here, or an HTTP message signature).
   */
  async verifyIdentityToken(wit: string, targetUri?: string): Promise<VerifiedWit> {
    const witHash = hash('sha256', wit, 'base64url');
    let verified = this.wits?.get(witHash);
    // A cached WIT still needs its key source's current keys to be the ones that verified it
    // (a bundle rotation, an issuer's removed key or a stale bundle must reach it), and its time
    // and audience checks.
    if (verified === undefined || verified.source.witKeys() !== verified.verifiedWith) {
      verified = await this.verifyWitToken(wit, witHash);
      this.wits?.set(witHash, verified, { ttl: Math.max(1, Math.ceil((verified.exp + this.skew) * 1000 - this.now())) });
    }
    this.checkWitUse(verified, targetUri);
    return verified;
  }

  /** The WIT's time checks and U5 (audience): what can change between two uses of one WIT. */
  private checkWitUse(wit: CachedWit, targetUri: string | undefined): void {
    const nowSeconds = this.now() / 1000;
    if (wit.exp <= nowSeconds - this.skew) throw new WimseError('ERR_WIT_EXPIRED');
    if (wit.nbf !== undefined && wit.nbf > nowSeconds + this.skew) throw new WimseError('ERR_WIT_EXPIRED');
    // U5: no aud in a WIT-SVID; elsewhere an aud, when present, must include this resource.
    if (wit.aud !== undefined && wit.witSvid) throw new WimseError('ERR_WIT_AUDIENCE');
    if (wit.aud !== undefined && !this.listNamesThisResource(typeof wit.aud === 'string' ? [wit.aud] : wit.aud, targetUri)) throw new WimseError('ERR_WIT_AUDIENCE');
  }

  /** The WIT checks other than time (U1): everything about a WIT that does not change with time or target. */
  private async verifyWitToken(wit: string, witHash: string): Promise<CachedWit> {
    const route: WitRoute = { claimed: undefined, source: undefined, issuer: undefined, witSvid: false, verifiedWith: undefined, id: undefined };
    const { claims, exp, nbf } = await verifyCompactJws(wit, this.witProfile, route);
    // The hooks set these: no WIT gets past them without.
    const domain = route.source!;
    const { witSvid } = route;
    if (domain.maxLifetimeSeconds !== undefined) {
      const nowSeconds = this.now() / 1000;
      const { iat } = claims;
      const from = typeof iat === 'number' && Number.isFinite(iat) ? Math.min(iat, nowSeconds) : nowSeconds;
      if (exp! - from > domain.maxLifetimeSeconds + this.skew) throw new WimseError('ERR_WIT_LIFETIME');
    }
    const proof = await this.proofKey(claims.cnf, witSvid && domain.profile === 'spiffe');
    return { id: route.id!, exp: exp!, claims, ...proof, witHash, source: domain, verifiedWith: route.verifiedWith!, nbf, aud: claims.aud, witSvid };
  }

  /**
   * The unverified sub picks the trust domain (creds-02 §3, §9.1), and within it the unverified
   * `iss` may pick a configured issuer for that domain (exact match); otherwise the domain's bundle.
   * Only their keys may verify it, with their algorithms.
   */
  private routeWit(jws: CompactJws, route: WitRoute): KeyChoice {
    const unverified = jws.unverifiedClaims();
    if (unverified.sub === undefined) throw new WimseError('ERR_WIT_CLAIM_MISSING');
    const claimed = parseSub(unverified.sub);
    const issuer = typeof unverified.iss === 'string' ? this.issuers.get(unverified.iss) : undefined;
    route.claimed = claimed;
    if (issuer !== undefined && issuer.trustDomains.has(claimed.trustDomain)) {
      route.source = issuer;
      route.issuer = unverified.iss as string;
      return { algorithms: this.witAlgorithms.get(issuer)!.any };
    }
    const domain = this.domains.get(claimed.trustDomain);
    if (!domain) {
      // A configured issuer that may not vouch for this domain, or a domain trusted only through issuers this `iss` is not.
      if (issuer !== undefined || this.issuerDomains.has(claimed.trustDomain)) throw new WimseError('ERR_WIT_ISSUER');
      throw new WimseError('ERR_WIT_TRUST_DOMAIN');
    }
    route.source = domain;
    route.witSvid = claimed.scheme === 'spiffe';
    // A spiffe:// subject makes the token a WIT-SVID (WIT-SVID §3.7: `kid` required, no `aud`);
    // under the domain's `spiffe` profile its algorithms are RS/ES/PS only, for the token and for
    // cnf.jwk (WIT-SVID §2.1, §3.2). The WIMSE drafts (the default profile) allow EdDSA too.
    const algorithms = this.witAlgorithms.get(domain)!;
    return { algorithms: route.witSvid ? algorithms.svid : algorithms.any };
  }

  /** WIT-SVID §3.7: a `kid`; then the source's current keys (which throw while its bundle or key set is unavailable). */
  private witKeys(jws: CompactJws, route: WitRoute): KeyChoice {
    const { kid } = jws.header;
    if (route.witSvid && (typeof kid !== 'string' || kid === '')) throw new WimseError('ERR_WIT_KEY_UNKNOWN');
    route.verifiedWith = route.source!.witKeys();
    return { keys: route.verifiedWith };
  }

  /** The verified sub must still name the domain whose key signed it; `cnf` is required (creds-02 §5.1). */
  private checkWitSubject(claims: Claims, route: WitRoute): void {
    if (claims.sub === undefined) throw new WimseError('ERR_WIT_CLAIM_MISSING');
    const id = parseSub(claims.sub);
    if (id.trustDomain !== route.claimed!.trustDomain) throw new WimseError('ERR_WIT_TRUST_DOMAIN');
    // The verified `iss` must be the one that picked the issuer's keys.
    if (route.issuer !== undefined && claims.iss !== route.issuer) throw new WimseError('ERR_WIT_ISSUER');
    route.id = id;
    if (claims.cnf === undefined) throw new WimseError('ERR_WIT_CLAIM_MISSING');
  }

  /** cnf.jwk: a public signature key with an asymmetric alg consistent with it (creds-02 §5.1), imported once. */
  private async proofKey(cnf: unknown, spiffeAlgorithms: boolean): Promise<{ alg: string; key: CryptoKey; jkt: string }> {
    if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) throw new WimseError('ERR_WIT_CNF_INVALID');
    const jwk = (cnf as Record<string, unknown>).jwk;
    if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new WimseError('ERR_WIT_CNF_INVALID');
    const k = jwk as Record<string, unknown>;
    const keyAlg = k.alg;
    if (!keyFitsAlgorithm(keyAlg, k)) throw new WimseError('ERR_WIT_CNF_INVALID');
    if (spiffeAlgorithms && !SPIFFE_ALGORITHMS.has(keyAlg)) throw new WimseError('ERR_WIT_CNF_INVALID');
    if (PRIVATE_JWK_MEMBERS.some((m) => m in k)) throw new WimseError('ERR_WIT_CNF_INVALID');
    if (k.use !== undefined && k.use !== 'sig') throw new WimseError('ERR_WIT_CNF_INVALID');
    if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) throw new WimseError('ERR_WIT_CNF_INVALID');
    try {
      const jkt = await calculateJwkThumbprint(k as JWK, 'sha256');
      const cacheId = `${keyAlg}.${jkt}`;
      let key = this.keys.get(cacheId);
      if (!key) {
        key = (await importJWK(k as JWK, keyAlg)) as CryptoKey;
        this.keys.set(cacheId, key);
      }
      return { alg: keyAlg, key, jkt };
    } catch (err) {
      throw new WimseError('ERR_WIT_CNF_INVALID', { cause: err });
    }
  }
}

function parseSub(sub: unknown): WorkloadId {
  if (typeof sub !== 'string') throw new WimseError('ERR_WIT_SUBJECT');
  try {
    return parseWorkloadId(sub);
  } catch (err) {
    if (err instanceof WorkloadIdError) throw new WimseError('ERR_WIT_SUBJECT', { cause: err });
    throw err;
  }
}
