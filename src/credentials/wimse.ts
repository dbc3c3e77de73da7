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
import { parseWorkloadId, WorkloadIdError, type WorkloadId } from '../identity/workload-id.ts';
import { normalizeTyp } from './access-token.ts';
import { normalizeHtu } from './dpop.ts';
import { txnTokenHash } from './txn-token.ts';

export const WIMSE_ERROR_MESSAGES = {
  ERR_WIT_MALFORMED: 'The workload identity token is not a well-formed compact JWS.',
  ERR_WIT_TYPE: 'The workload identity token must have typ wit+jwt.',
  ERR_WIT_ALGORITHM: 'The workload identity token algorithm is not allowed for its trust domain.',
  ERR_WIT_SUBJECT: 'The workload identity token sub is not a valid workload identifier.',
  ERR_WIT_TRUST_DOMAIN: 'The workload identity token names a trust domain that is not trusted here.',
  ERR_WIT_KEY_UNKNOWN: 'No single key of the trust domain matches the workload identity token.',
  ERR_WIT_SIGNATURE: 'The workload identity token signature is invalid.',
  ERR_WIT_EXPIRED: 'The workload identity token is expired or not yet valid.',
  ERR_WIT_CLAIM_MISSING: 'The workload identity token lacks a required claim (sub, exp, cnf).',
  ERR_WIT_CNF_INVALID: 'The workload identity token cnf.jwk is not a public signature key with a matching asymmetric alg.',
  ERR_WIT_AUDIENCE: 'The workload identity token audience does not include this resource.',
  ERR_WPT_MALFORMED: 'The workload proof token is not a well-formed compact JWS.',
  ERR_WPT_TYPE: 'The workload proof token must have typ wpt+jwt.',
  ERR_WPT_ALGORITHM: 'The workload proof token alg must equal the cnf.jwk.alg of the workload identity token.',
  ERR_WPT_SIGNATURE: 'The workload proof token is not signed by the key of the workload identity token.',
  ERR_WPT_CLAIM_MISSING: 'The workload proof token lacks a required claim (aud, exp, jti, wth).',
  ERR_WPT_AUDIENCE: 'The workload proof token audience is not this resource.',
  ERR_WPT_EXPIRED: 'The workload proof token is expired or not yet valid.',
  ERR_WPT_LIFETIME: 'The workload proof token expires too far in the future.',
  ERR_WPT_WTH: 'The workload proof token wth does not match the workload identity token.',
  ERR_WPT_TTH: 'The workload proof token tth does not match the Txn-Token of the request.',
  ERR_WPT_OTH: 'The workload proof token oth does not match the context tokens of the request.',
  ERR_WPT_ATH: 'The workload proof token carries ath, which wpt-02 removed.',
  ERR_WPT_REPLAYED: 'The workload proof token was already used.',
} as const;

export type WimseErrorCode = keyof typeof WIMSE_ERROR_MESSAGES;

/** A refused WIT or WPT. Not an AgentwardError yet: the codes are not in errors.ts (see report). */
export class WimseError extends Error {
  readonly code: WimseErrorCode;

  constructor(code: WimseErrorCode, options?: { cause?: unknown }) {
    super(WIMSE_ERROR_MESSAGES[code], options);
    this.name = 'WimseError';
    this.code = code;
  }
}

/** Selects a WIT key within one trust domain; `TrustBundle.witSvidKeys()` fits. */
export type WitKeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey | JWK | Uint8Array>;

export interface WimseTrustDomain {
  witKeys: WitKeyResolver;
  /** Algorithms the domain's issuer may sign WITs with (creds-02 §3). Symmetric ones are never used. */
  algorithms: readonly string[];
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
  now?: () => number;
}

export interface WimseRequest {
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

export class WimseVerifier {
  private readonly domains: ReadonlyMap<string, WimseTrustDomain>;
  private readonly audiences: ReadonlySet<string>;
  private readonly skew: number;
  private readonly maxLifetime: number;
  private readonly strictAudience: boolean;
  private readonly now: () => number;
  private readonly seen: LRUCache<string, number>;
  /** Proof keys by algorithm and thumbprint: a workload signs every WPT with the same key. */
  private readonly keys = new LRUCache<string, CryptoKey>({ max: 10_000 });
  /** WPTs expiring at or before this (seconds) are refused: their ids may have been forgotten. */
  private forgottenUpTo = -Infinity;

  constructor(options: WimseVerifierOptions) {
    this.domains = options.trustDomains;
    this.audiences = new Set([...options.audiences].map(normalizeHtu));
    this.skew = options.clockSkewSeconds;
    this.maxLifetime = options.maxWptLifetimeSeconds;
    this.strictAudience = options.strictWptAudience ?? false;
    this.now = options.now ?? Date.now;
    this.seen = new LRUCache<string, number>({
      max: options.replayCacheSize,
      ttlAutopurge: false,
      perf: { now: () => this.now() },
      dispose: (exp, _key, reason) => {
        if (reason === 'evict') this.forgottenUpTo = Math.max(this.forgottenUpTo, exp);
      },
    });
  }

  /** WPT ids held now, expired ones dropped first. */
  get replayCacheEntries(): number {
    this.seen.purgeStale();
    return this.seen.size;
  }

  async verify(request: WimseRequest): Promise<VerifiedWorkload> {
    const wit = await this.verifyWit(request.wit);
    const nowSeconds = this.now() / 1000;

    // wpt-02 §2 step 3: one compact JWS.
    const { wpt } = request;
    if (typeof wpt !== 'string' || !COMPACT_JWS.test(wpt)) throw new WimseError('ERR_WPT_MALFORMED');
    const header = decodeJson(wpt.slice(0, wpt.indexOf('.')), 'ERR_WPT_MALFORMED');

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
    const claims = parseObject(Buffer.from(payload).toString('utf8'), 'ERR_WPT_MALFORMED');
    const { aud, exp, jti, wth, nbf } = claims;
    if (aud === undefined || exp === undefined || jti === undefined || wth === undefined) throw new WimseError('ERR_WPT_CLAIM_MISSING');
    if (typeof exp !== 'number' || !Number.isFinite(exp) || typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH || typeof wth !== 'string') {
      throw new WimseError('ERR_WPT_MALFORMED');
    }
    // U11: ath belongs to wpt-01; legacy mode is off.
    if (claims.ath !== undefined) throw new WimseError('ERR_WPT_ATH');

    // Step 7 and U6: aud names this resource, from trusted configuration.
    if (!this.audienceMatches(aud)) throw new WimseError('ERR_WPT_AUDIENCE');

    // Step 8: within its short validity.
    if (exp <= nowSeconds - this.skew || exp <= this.forgottenUpTo) throw new WimseError('ERR_WPT_EXPIRED');
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
    const ttlMs = Math.max(1, Math.ceil((exp + this.skew) * 1000 - this.now()));
    this.seen.set(replayKey, exp, { ttl: ttlMs });

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

  private audienceMatches(aud: unknown): boolean {
    if (typeof aud === 'string') return this.audiences.has(normalizeHtu(aud));
    if (this.strictAudience || !Array.isArray(aud) || aud.length === 0) return false;
    return aud.every((a) => typeof a === 'string') && aud.some((a: string) => this.audiences.has(normalizeHtu(a)));
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

  private async verifyWit(wit: string): Promise<{ id: WorkloadId; exp: number; claims: Record<string, unknown>; alg: string; key: CryptoKey; jkt: string; witHash: string }> {
    // creds-02 §5.1.1: one compact JWS.
    if (typeof wit !== 'string' || !COMPACT_JWS.test(wit)) throw new WimseError('ERR_WIT_MALFORMED');
    const [headerPart, payloadPart] = wit.split('.') as [string, string, string];
    const header = decodeJson(headerPart, 'ERR_WIT_MALFORMED');
    if (normalizeTyp(header.typ) !== 'wit+jwt') throw new WimseError('ERR_WIT_TYPE');

    // The unverified sub picks the trust domain whose keys alone may verify it (§3, §9.1).
    const unverified = decodeJson(payloadPart, 'ERR_WIT_MALFORMED');
    if (unverified.sub === undefined) throw new WimseError('ERR_WIT_CLAIM_MISSING');
    const claimedDomain = parseSub(unverified.sub).trustDomain;
    const domain = this.domains.get(claimedDomain);
    if (!domain) throw new WimseError('ERR_WIT_TRUST_DOMAIN');

    const alg = header.alg;
    if (typeof alg !== 'string' || !(alg in KEY_FOR_ALG) || !domain.algorithms.includes(alg)) throw new WimseError('ERR_WIT_ALGORITHM');

    let payload: Uint8Array;
    try {
      payload = (await compactVerify(wit, domain.witKeys, { algorithms: [alg] })).payload;
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new WimseError('ERR_WIT_SIGNATURE', { cause: err });
      if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw new WimseError('ERR_WIT_KEY_UNKNOWN', { cause: err });
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw new WimseError('ERR_WIT_ALGORITHM', { cause: err });
      throw new WimseError('ERR_WIT_MALFORMED', { cause: err });
    }
    const claims = parseObject(Buffer.from(payload).toString('utf8'), 'ERR_WIT_MALFORMED');

    // The verified sub must still name the domain whose key signed it.
    if (claims.sub === undefined) throw new WimseError('ERR_WIT_CLAIM_MISSING');
    const id = parseSub(claims.sub);
    if (id.trustDomain !== claimedDomain) throw new WimseError('ERR_WIT_TRUST_DOMAIN');

    const nowSeconds = this.now() / 1000;
    const { exp, nbf, cnf, aud } = claims;
    if (exp === undefined || cnf === undefined) throw new WimseError('ERR_WIT_CLAIM_MISSING');
    if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new WimseError('ERR_WIT_MALFORMED');
    if (exp <= nowSeconds - this.skew) throw new WimseError('ERR_WIT_EXPIRED');
    if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf) || nbf > nowSeconds + this.skew)) throw new WimseError('ERR_WIT_EXPIRED');

    // U5: an aud, when present, must include this resource.
    if (aud !== undefined) {
      const list = typeof aud === 'string' ? [aud] : aud;
      if (!Array.isArray(list) || !list.some((a) => typeof a === 'string' && this.audiences.has(normalizeHtu(a)))) throw new WimseError('ERR_WIT_AUDIENCE');
    }

    // cnf.jwk: a public signature key with an asymmetric alg consistent with it (§5.1).
    if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) throw new WimseError('ERR_WIT_CNF_INVALID');
    const jwk = (cnf as Record<string, unknown>).jwk;
    if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new WimseError('ERR_WIT_CNF_INVALID');
    const k = jwk as Record<string, unknown>;
    const keyAlg = k.alg;
    if (typeof keyAlg !== 'string' || !(keyAlg in KEY_FOR_ALG) || !KEY_FOR_ALG[keyAlg]!(k)) throw new WimseError('ERR_WIT_CNF_INVALID');
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

    return { id, exp, claims, alg: keyAlg, key, jkt, witHash: hash('sha256', wit, 'base64url') };
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

function decodeJson(segment: string, code: WimseErrorCode): Record<string, unknown> {
  return parseObject(Buffer.from(segment, 'base64url').toString('utf8'), code);
}

function parseObject(text: string, code: WimseErrorCode): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WimseError(code);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new WimseError(code);
  return value as Record<string, unknown>;
}
