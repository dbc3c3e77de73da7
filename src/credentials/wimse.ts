/**
 * WIMSE workload authentication: a Workload Identity Token (draft-ietf-wimse-workload-creds-02
 * §5.1; credentials.md §A.2) proved by a Workload Proof Token (draft-ietf-wimse-wpt-02 §2;
 * credentials.md §A.3), with the decisions of credentials.md §I (U4–U6).
 *
 * The WIT is verified only with the keys of the trust domain named by its `sub` (creds-02 §3,
 * §9.1): the unverified `sub` picks the domain, and the verified `sub` must name the same one, so
 * a key of domain A can never vouch for a workload of domain B. The identity counts as
 * authenticated only once the WPT, signed by the WIT's `cnf.jwk`, has passed too.
 *
 * Replay (wpt-02 §3.1.4): a WPT id is remembered until the WPT expires, keyed by a hash of the WIT
 * hash and `jti`, inserted only once every check has passed. The memory is bounded: when the cache
 * is full the oldest ids are forgotten, and from then on WPTs expiring no later than a forgotten
 * one are refused, so a forgotten id can never be replayed.
 */
import { hash } from 'node:crypto';
import { calculateJwkThumbprint, compactVerify, errors as joseErrors, importJWK, type CryptoKey, type JWK, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import { LRUCache } from 'lru-cache';
import { ReplayCache } from './replay-cache.ts';
import { decodeJsonSegment, parseJsonObject, normalizeTyp } from './jose-parts.ts';
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
  /** Algorithms the domain's issuer may sign WITs with (creds-02 §3). Symmetric ones are never used. */
  algorithms: readonly string[];
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

export interface WimseVerifierOptions {
  trustDomains: ReadonlyMap<string, WimseTrustDomain>;
  /** The target URIs (from trusted configuration, never from Host) this resource accepts as WPT `aud`. */
  audiences: ReadonlySet<string>;
  clockSkewSeconds: number;
  /** The most a WPT's `exp` may lie ahead of now (wpt-02 §2: "unreasonably far in the future"). */
  maxWptLifetimeSeconds: number;
  replayCacheSize: number;
  /** U6 strict mode: accept a WPT `aud` string only, not an array. Default false. */
  strictWptAudience?: boolean;
  /** Verified WITs remembered (by SHA-256) until they expire; 0 disables. Default 10000. */
  cacheSize?: number;
  now?: () => number;
}

/** A verified WIT as cached: with what its time and audience checks need again on every use. */
interface CachedWit extends VerifiedWit {
  /** The key resolver that verified it: a different one (a new bundle) means verify again. */
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

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_JTI_LENGTH = 256;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/** Asymmetric JWS algorithms and the keys they go with (RFC 7518 §3, RFC 8037 §3.1, RFC 9864). */
const KEY_FOR_ALG: Record<string, (jwk: Record<string, unknown>) => boolean> = {
  ES256: (k) => k.kty === 'EC' && k.crv === 'P-256',
  ES384: (k) => k.kty === 'EC' && k.crv === 'P-384',
  ES512: (k) => k.kty === 'EC' && k.crv === 'P-521',
  RS256: (k) => k.kty === 'RSA',
  RS384: (k) => k.kty === 'RSA',
  RS512: (k) => k.kty === 'RSA',
  PS256: (k) => k.kty === 'RSA',
  PS384: (k) => k.kty === 'RSA',
  PS512: (k) => k.kty === 'RSA',
  EdDSA: (k) => k.kty === 'OKP' && (k.crv === 'Ed25519' || k.crv === 'Ed448'),
  Ed25519: (k) => k.kty === 'OKP' && k.crv === 'Ed25519',
};

/** The algorithms SPIFFE allows for JWT-SVIDs and WIT-SVIDs (JWT-SVID §2.1, WIT-SVID §2.1, §3.2). */
export const SPIFFE_ALGORITHMS: ReadonlySet<string> = new Set(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512']);

export class WimseVerifier {
  private readonly domains: ReadonlyMap<string, WimseTrustDomain>;
  private readonly audiences: ReadonlySet<string>;
  private readonly skew: number;
  private readonly maxLifetime: number;
  private readonly strictAudience: boolean;
  private readonly now: () => number;
  private readonly seen: ReplayCache;
  /** Proof keys by algorithm and thumbprint: a workload signs every WPT with the same key. */
  private readonly keys = new LRUCache<string, CryptoKey>({ max: 10_000 });
  /**
   * Verified WITs by SHA-256: an agent sends the same WIT (valid for hours) with every request,
   * each time with a new proof, so the WIT's signature is checked once and only the proof after.
   */
  private readonly wits: LRUCache<string, CachedWit> | undefined;

  constructor(options: WimseVerifierOptions) {
    this.domains = options.trustDomains;
    this.audiences = new Set([...options.audiences].map(normalizeHtu));
    this.skew = options.clockSkewSeconds;
    this.maxLifetime = options.maxWptLifetimeSeconds;
    this.strictAudience = options.strictWptAudience ?? false;
    this.now = options.now ?? Date.now;
    const cacheSize = options.cacheSize ?? 10_000;
    this.wits = cacheSize > 0 ? new LRUCache<string, CachedWit>({ max: cacheSize, ttlAutopurge: false, perf: { now: () => this.now() } }) : undefined;
    // Marked with the WPT's exp: WPTs expiring no later than a forgotten one are refused.
    this.seen = new ReplayCache({ max: options.replayCacheSize, now: () => this.now() });
  }

  /** WPT ids held now, expired ones dropped first. */
  get replayCacheEntries(): number {
    return this.seen.size;
  }

  async verify(request: WimseRequest): Promise<VerifiedWorkload> {
    const wit = await this.verifyIdentityToken(request.wit, request.targetUri);
    const nowSeconds = this.now() / 1000;

    // wpt-02 §2 step 3: one compact JWS.
    const { wpt } = request;
    if (typeof wpt !== 'string' || !COMPACT_JWS.test(wpt)) throw new WimseError('ERR_WPT_MALFORMED');
    const header = decodeJsonSegment(wpt.slice(0, wpt.indexOf('.')), 'ERR_WPT_MALFORMED', 'The workload proof token header');

    // Steps 6, 4, 5: typ, alg equal to cnf.jwk.alg, signature by cnf.jwk.
    if (normalizeTyp(header.typ) !== 'wpt+jwt') throw new WimseError('ERR_WPT_TYPE');
    if (header.alg !== wit.alg) throw new WimseError('ERR_WPT_ALGORITHM');
    let payload: Uint8Array;
    try {
      payload = (await compactVerify(wpt, wit.key, { algorithms: [wit.alg] })).payload;
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new WimseError('ERR_WPT_SIGNATURE', { cause: err });
      throw new WimseError('ERR_WPT_MALFORMED', { cause: err });
    }
    const claims = parseJsonObject(Buffer.from(payload).toString('utf8'), 'ERR_WPT_MALFORMED', 'The workload proof token payload');
    const { aud, exp, jti, wth, nbf } = claims;
    if (aud === undefined || exp === undefined || jti === undefined || wth === undefined) throw new WimseError('ERR_WPT_CLAIM_MISSING');
    if (typeof exp !== 'number' || !Number.isFinite(exp) || typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH || typeof wth !== 'string') {
      throw new WimseError('ERR_WPT_MALFORMED');
    }
    // U11: ath belongs to wpt-01; legacy mode is off.
    if (claims.ath !== undefined) throw new WimseError('ERR_WPT_ATH');

    // Step 7 and U6: aud names this resource, from trusted configuration.
    if (!this.audienceMatches(aud, request.targetUri)) throw new WimseError('ERR_WPT_AUDIENCE');

    // Step 8: within its short validity.
    if (exp <= nowSeconds - this.skew || this.seen.forgotten(exp)) throw new WimseError('ERR_WPT_EXPIRED');
    if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf) || nbf > nowSeconds + this.skew)) throw new WimseError('ERR_WPT_EXPIRED');
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

    // Step 10: not seen before; check-and-insert with no await in between.
    const replayKey = hash('sha256', `${wit.witHash}.${jti}`, 'base64url');
    if (this.seen.has(replayKey)) throw new WimseError('ERR_WPT_REPLAYED');
    this.seen.add(replayKey, exp, (exp + this.skew) * 1000 - this.now());

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
   * The WIT alone (credentials.md §A.2 steps 1–8). The result is not an authenticated identity:
   * the caller must still check a proof by its `cnf.jwk` (a WPT here, or an HTTP message signature).
   */
  async verifyIdentityToken(wit: string, targetUri?: string): Promise<VerifiedWit> {
    const witHash = hash('sha256', wit, 'base64url');
    let verified = this.wits?.get(witHash);
    // A cached WIT still needs its trust domain's current keys to be the ones that verified it
    // (a bundle rotation or a stale bundle must reach it), and its time and audience checks.
    if (verified === undefined || this.domains.get(verified.id.trustDomain)!.witKeys() !== verified.verifiedWith) {
      verified = await this.verifyWitToken(wit, witHash);
      this.wits?.set(witHash, verified, { ttl: Math.max(1, Math.ceil((verified.exp + this.skew) * 1000 - this.now())) });
    }
    this.checkWitUse(verified, targetUri);
    return verified;
  }

  /** §A.2 steps 5–6 (time) and U5 (audience): what can change between two uses of one WIT. */
  private checkWitUse(wit: CachedWit, targetUri: string | undefined): void {
    const nowSeconds = this.now() / 1000;
    if (wit.exp <= nowSeconds - this.skew) throw new WimseError('ERR_WIT_EXPIRED');
    if (wit.nbf !== undefined && wit.nbf > nowSeconds + this.skew) throw new WimseError('ERR_WIT_EXPIRED');
    // U5: no aud in a WIT-SVID; elsewhere an aud, when present, must include this resource.
    if (wit.aud !== undefined && wit.witSvid) throw new WimseError('ERR_WIT_AUDIENCE');
    if (wit.aud !== undefined && !this.listNamesThisResource(typeof wit.aud === 'string' ? [wit.aud] : wit.aud, targetUri)) throw new WimseError('ERR_WIT_AUDIENCE');
  }

  /** §A.2 steps 1–5 and 7–8: everything about a WIT that does not change with time or target. */
  private async verifyWitToken(wit: string, witHash: string): Promise<CachedWit> {
    // creds-02 §5.1.1: one compact JWS.
    if (typeof wit !== 'string' || !COMPACT_JWS.test(wit)) throw new WimseError('ERR_WIT_MALFORMED');
    const [headerPart, payloadPart] = wit.split('.') as [string, string, string];
    const header = decodeJsonSegment(headerPart, 'ERR_WIT_MALFORMED', 'The workload identity token header');
    if (normalizeTyp(header.typ) !== 'wit+jwt') throw new WimseError('ERR_WIT_TYPE');

    // The unverified sub picks the trust domain whose keys alone may verify it (§3, §9.1).
    const unverified = decodeJsonSegment(payloadPart, 'ERR_WIT_MALFORMED', 'The workload identity token payload');
    if (unverified.sub === undefined) throw new WimseError('ERR_WIT_CLAIM_MISSING');
    const claimed = parseSub(unverified.sub);
    const claimedDomain = claimed.trustDomain;
    const domain = this.domains.get(claimedDomain);
    if (!domain) throw new WimseError('ERR_WIT_TRUST_DOMAIN');

    // A spiffe:// subject makes the token a WIT-SVID, whose profile is stricter (WIT-SVID §2.1,
    // §3.2, §3.7): `kid` required, RS/ES/PS algorithms only (for the token and for cnf.jwk), no `aud`.
    const witSvid = claimed.scheme === 'spiffe';
    const alg = header.alg;
    if (typeof alg !== 'string' || !(alg in KEY_FOR_ALG) || !domain.algorithms.includes(alg)) throw new WimseError('ERR_WIT_ALGORITHM');
    if (witSvid && !SPIFFE_ALGORITHMS.has(alg)) throw new WimseError('ERR_WIT_ALGORITHM');
    if (witSvid && (typeof header.kid !== 'string' || header.kid === '')) throw new WimseError('ERR_WIT_KEY_UNKNOWN');

    const verifiedWith = domain.witKeys();
    let payload: Uint8Array;
    try {
      payload = (await compactVerify(wit, verifiedWith, { algorithms: [alg] })).payload;
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new WimseError('ERR_WIT_SIGNATURE', { cause: err });
      if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw new WimseError('ERR_WIT_KEY_UNKNOWN', { cause: err });
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw new WimseError('ERR_WIT_ALGORITHM', { cause: err });
      throw new WimseError('ERR_WIT_MALFORMED', { cause: err });
    }
    const claims = parseJsonObject(Buffer.from(payload).toString('utf8'), 'ERR_WIT_MALFORMED', 'The workload identity token payload');

    // The verified sub must still name the domain whose key signed it.
    if (claims.sub === undefined) throw new WimseError('ERR_WIT_CLAIM_MISSING');
    const id = parseSub(claims.sub);
    if (id.trustDomain !== claimedDomain) throw new WimseError('ERR_WIT_TRUST_DOMAIN');

    const nowSeconds = this.now() / 1000;
    const { exp, nbf, cnf, aud } = claims;
    if (exp === undefined || cnf === undefined) throw new WimseError('ERR_WIT_CLAIM_MISSING');
    if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new WimseError('ERR_WIT_MALFORMED');
    if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf))) throw new WimseError('ERR_WIT_EXPIRED');
    // Expired before anything else is looked at (the same check runs again on every use).
    if (exp <= nowSeconds - this.skew) throw new WimseError('ERR_WIT_EXPIRED');
    if (domain.maxLifetimeSeconds !== undefined) {
      const { iat } = claims;
      const from = typeof iat === 'number' && Number.isFinite(iat) ? Math.min(iat, nowSeconds) : nowSeconds;
      if (exp - from > domain.maxLifetimeSeconds + this.skew) throw new WimseError('ERR_WIT_LIFETIME');
    }

    // cnf.jwk: a public signature key with an asymmetric alg consistent with it (§5.1).
    if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) throw new WimseError('ERR_WIT_CNF_INVALID');
    const jwk = (cnf as Record<string, unknown>).jwk;
    if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new WimseError('ERR_WIT_CNF_INVALID');
    const k = jwk as Record<string, unknown>;
    const keyAlg = k.alg;
    if (typeof keyAlg !== 'string' || !(keyAlg in KEY_FOR_ALG) || !KEY_FOR_ALG[keyAlg]!(k)) throw new WimseError('ERR_WIT_CNF_INVALID');
    if (witSvid && !SPIFFE_ALGORITHMS.has(keyAlg)) throw new WimseError('ERR_WIT_CNF_INVALID');
    if (PRIVATE_JWK_MEMBERS.some((m) => m in k)) throw new WimseError('ERR_WIT_CNF_INVALID');
    if (k.use !== undefined && k.use !== 'sig') throw new WimseError('ERR_WIT_CNF_INVALID');
    if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) throw new WimseError('ERR_WIT_CNF_INVALID');
    let jkt: string;
    let key: CryptoKey;
    try {
      jkt = await calculateJwkThumbprint(k as JWK, 'sha256');
      const cacheId = `${keyAlg}.${jkt}`;
      let cached = this.keys.get(cacheId);
      if (!cached) {
        cached = (await importJWK(k as JWK, keyAlg)) as CryptoKey;
        this.keys.set(cacheId, cached);
      }
      key = cached;
    } catch (err) {
      throw new WimseError('ERR_WIT_CNF_INVALID', { cause: err });
    }

    return { id, exp, claims, alg: keyAlg, key, jkt, witHash, verifiedWith, nbf: nbf as number | undefined, aud, witSvid };
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
