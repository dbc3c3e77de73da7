/**
 * SPIFFE JWT-SVIDs (JWT-SVID.md, Stable; spec credentials.md §B.2) presented as bearer tokens
 * (`Authorization: Bearer`, JWT-SVID §5.2).
 *
 * Checks run in one fixed order, each failure with its own code: compact JWS (§5.1, JS-N08),
 * `typ` (§2.3, JS-N02), algorithm allow-list (§2.1, JS-N01), `crit`, `kid` (U10), the unverified
 * `sub` as a SPIFFE ID (§3.1, JS-N09) whose trust domain picks the only keys that may verify the
 * token (SPIFFE Bundle §3: the `jwt-svid` entries of that domain's bundle; JS-N06, JS-N07), the
 * signature, `aud` (§3.2, JS-N03/N04), time (§3.3, RFC 7519 §4.1.4-6, JS-N05) and the configured
 * lifetime bound.
 *
 * The unverified `sub` chooses the key set, so a key of domain A can never vouch for a workload of
 * domain B. The verified `sub` is then required to be that same string; with a compact JWS the
 * signed payload is the decoded one, so this only guards against a future change of that path.
 *
 * A verified token is remembered by its SHA-256 until it expires (bounded LRU), like access tokens
 * (access-token.ts). A hit still asks the trust domain for its key resolver: an unavailable bundle
 * fails closed (ERR_KEYS_UNAVAILABLE), and a new bundle (a new resolver) sends the token through
 * full verification again, so a rotated-out key stops vouching at once without any listener.
 */
import { hash as digest } from 'node:crypto';
import { compactVerify, errors as joseErrors, type JWSHeaderParameters } from 'jose';
import { LRUCache } from 'lru-cache';
import { decodeJsonSegment, deepFreeze, parseJsonObject, normalizeTyp } from './jose-parts.ts';
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { parseWorkloadId, type WorkloadId } from '../identity/workload-id.ts';
import type { KeyResolver } from '../keys/trust-bundle.ts';
import { audienceList, isObject, numericClaim } from './claims.ts';
import { SPIFFE_ALGORITHMS } from './wimse.ts';

/** Failure codes of JWT-SVID verification (each in src/errors.ts). */
export type JwtSvidErrorCode = Extract<ErrorCode, `ERR_JWT_SVID_${string}`>;

export interface VerifiedJwtSvid {
  /** The `sub` SPIFFE ID exactly as signed: the only value to authorize on. */
  id: string;
  trustDomain: string;
  /** The SPIFFE ID path, starting with `/` (never empty: a JWT-SVID names a workload). */
  path: string;
  /** `exp`, seconds since the epoch. */
  expiresAt: number;
  /** Every other claim (`iat`, `nbf`, `iss`, `jti`, extensions), frozen; not `sub`, `aud`, `exp`. */
  claims: Record<string, unknown>;
  /** The header `kid` that selected the key, when there was one. */
  kid: string | undefined;
}

export interface JwtSvidTrustDomain {
  /**
   * The resolver over this domain's `jwt-svid` bundle entries only: `() => bundle.jwtSvidKeys()`.
   * Called on every verification (it is an accessor), so a rotated or stale bundle takes effect at
   * once; its ERR_KEYS_UNAVAILABLE propagates unchanged (fail closed, conventions §9).
   */
  jwtKeys: () => KeyResolver;
  /** Longest accepted `exp - iat` (or `exp - now` without `iat`), seconds. Default: no limit. */
  maxLifetimeSeconds?: number;
}

export interface JwtSvidVerifierOptions {
  /** The trust domains whose JWT-SVIDs are accepted, by name (e.g. `example.org`). */
  trustDomains: ReadonlyMap<string, JwtSvidTrustDomain>;
  /** Values this resource accepts in `aud` (JWT-SVID §3.2), compared exactly. From config; default the resource id. */
  audiences: ReadonlySet<string>;
  /** U10: refuse a JWT-SVID without `kid`. Config default true. */
  requireKid: boolean;
  /** Leeway for `exp`, `nbf` and `iat`, seconds. */
  clockSkewSeconds: number;
  /** Verified tokens remembered until they expire. Default 10 000; 0 turns the cache off. */
  cacheSize?: number;
  /** Clock in milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
}

/**
 * Three base64url segments (RFC 7515 §7.1). The signature may be empty here so that an unsecured
 * JWS (`alg: none`) is refused for its algorithm (JS-N01), not as malformed.
 */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** JWT-SVID §2.3: `typ`, when present, is `JWT` or `JOSE` (compared as media types, RFC 7515 §4.1.9). */
const JWT_SVID_TYPES: ReadonlySet<string> = new Set(['jwt', 'jose']);
/** Claims surfaced as fields of the result, hence left out of `claims`. */
const EXTRACTED_CLAIMS: ReadonlySet<string> = new Set(['sub', 'aud', 'exp']);
const DEFAULT_CACHE_SIZE = 10_000;

interface CacheEntry {
  result: VerifiedJwtSvid;
  /** The resolver that verified it: a different one means the bundle changed since. */
  keys: KeyResolver;
}

/**
 * Cheap routing test on the UNVERIFIED token: true when it looks like a JWT-SVID meant for one of
 * the configured trust domains: a 3-part compact JWS whose payload `sub` is a SPIFFE ID (with a
 * path) in one of `trustDomains`, and whose `iss` is not one of `oauthIssuers` (a token whose
 * `iss` is a configured OAuth issuer is always an access token, even when its `sub` is a SPIFFE
 * ID, as in a client-credentials grant to a workload). Proves nothing; never throws.
 */
export function looksLikeJwtSvid(token: string, trustDomains: ReadonlySet<string>, oauthIssuers: ReadonlySet<string>): boolean {
  try {
    if (typeof token !== 'string' || !COMPACT_JWS.test(token)) return false;
    const claims = JSON.parse(Buffer.from(token.slice(token.indexOf('.') + 1, token.lastIndexOf('.')), 'base64url').toString('utf8')) as unknown;
    if (!isObject(claims)) return false;
    if (typeof claims.iss === 'string' && oauthIssuers.has(claims.iss)) return false;
    const id = spiffeId(claims.sub);
    return id !== undefined && trustDomains.has(id.trustDomain);
  } catch {
    return false;
  }
}

export class JwtSvidVerifier {
  private readonly domains: ReadonlyMap<string, JwtSvidTrustDomain>;
  private readonly audiences: ReadonlySet<string>;
  private readonly requireKid: boolean;
  private readonly skew: number;
  private readonly now: () => number;
  private readonly cache: LRUCache<string, CacheEntry> | undefined;

  /** Throws TypeError on options that cannot work; config checking should catch these first. */
  constructor(options: JwtSvidVerifierOptions) {
    if (options.audiences.size === 0) throw new TypeError('audiences must name at least one value (JWT-SVID section 3.2).');
    if (!(options.clockSkewSeconds >= 0)) throw new TypeError('clockSkewSeconds must be zero or more.');
    for (const [name, domain] of options.trustDomains) {
      if (domain.maxLifetimeSeconds !== undefined && !(domain.maxLifetimeSeconds > 0)) throw new TypeError(`maxLifetimeSeconds of ${name} must be more than zero.`);
    }
    this.domains = options.trustDomains;
    this.audiences = options.audiences;
    this.requireKid = options.requireKid;
    this.skew = options.clockSkewSeconds;
    this.now = options.now ?? Date.now;
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.cache = size > 0 ? new LRUCache({ max: size, ttlAutopurge: false, perf: { now: () => this.now() } }) : undefined;
  }

  /**
   * Verifies a JWT-SVID presented as a bearer token. Throws AgentwardError with an
   * `ERR_JWT_SVID_*` code, or the trust bundle's ERR_KEYS_UNAVAILABLE (503) when the domain's
   * keys cannot be used. The token never appears in an error.
   */
  async verify(token: string): Promise<VerifiedJwtSvid> {
    // §5.1: compact serialization only; JWS JSON serialization and JWE are refused (JS-N08).
    if (typeof token !== 'string' || !COMPACT_JWS.test(token)) throw new AgentwardError('ERR_JWT_SVID_MALFORMED', 'The JWT-SVID must be a compact JWS with three base64url parts.');
    const tokenHash = digest('sha256', token, 'base64url');
    const hit = this.cache?.get(tokenHash);
    if (hit) {
      // The accessor throws when the bundle is unavailable or stale: a cached token does not outlive its keys.
      if (this.domains.get(hit.result.trustDomain)!.jwtKeys() === hit.keys) {
        if (this.now() / 1000 >= hit.result.expiresAt + this.skew) throw new AgentwardError('ERR_JWT_SVID_EXPIRED');
        return hit.result;
      }
      this.cache!.delete(tokenHash);
    }

    const [protectedHeader, payload] = token.split('.') as [string, string, string];
    const header = decodeJsonSegment(protectedHeader, 'ERR_JWT_SVID_MALFORMED', 'The JWT-SVID header') as JWSHeaderParameters;
    const unverified = decodeJsonSegment(payload, 'ERR_JWT_SVID_MALFORMED', 'The JWT-SVID payload');

    // §2.3: typ absent, JWT or JOSE; so a WIT (wit+jwt), an access token (at+jwt) or a DPoP proof
    // is never taken for a JWT-SVID (RFC 8725 §3.11, JS-N02).
    if (header.typ !== undefined && !JWT_SVID_TYPES.has(normalizeTyp(header.typ) ?? '')) throw new AgentwardError('ERR_JWT_SVID_TYPE');

    // §2.1: RS, ES or PS with 256, 384 or 512 only; never the token's choice (RFC 8725 §3.1, JS-N01).
    const alg = header.alg;
    if (typeof alg !== 'string' || !SPIFFE_ALGORITHMS.has(alg)) throw new AgentwardError('ERR_JWT_SVID_ALGORITHM');

    // RFC 7515 §4.1.11: no extension is understood here, so any `crit` makes the JWS invalid.
    if (header.crit !== undefined) throw new AgentwardError('ERR_JWT_SVID_MALFORMED', 'The JWT-SVID lists critical header extensions this resource does not understand (RFC 7515 section 4.1.11).');
    const kid = header.kid;
    if (kid !== undefined && typeof kid !== 'string') throw new AgentwardError('ERR_JWT_SVID_MALFORMED', 'The JWT-SVID kid header must be a string (RFC 7515 section 4.1.4).');
    // U10: bundles publish jwt-svid keys with a kid (Bundle §4.2.2); a token that names none is refused by default.
    if (this.requireKid && (kid === undefined || kid === '')) throw new AgentwardError('ERR_JWT_SVID_KEY_UNKNOWN', 'The JWT-SVID has no kid header; this resource requires one.');

    // §3.1: sub is the workload's SPIFFE ID; its trust domain alone supplies the keys (Bundle §3).
    if (unverified.sub === undefined) throw new AgentwardError('ERR_JWT_SVID_CLAIM_MISSING', 'The JWT-SVID has no sub claim (JWT-SVID section 3.1).');
    const claimed = spiffeId(unverified.sub);
    if (claimed === undefined) throw new AgentwardError('ERR_JWT_SVID_SUBJECT');
    const domain = this.domains.get(claimed.trustDomain);
    if (!domain) throw new AgentwardError('ERR_JWT_SVID_TRUST_DOMAIN');

    // §6, BND-N07: the `jwt-svid` entries of that domain's bundle, nothing else (JS-N06, JS-N07).
    const keys = domain.jwtKeys();
    const claims = parseJsonObject(Buffer.from(await verifySignature(token, keys, alg)).toString('utf8'), 'ERR_JWT_SVID_MALFORMED', 'The JWT-SVID payload');
    if (claims.sub !== claimed.id) throw new AgentwardError('ERR_JWT_SVID_SUBJECT');

    // §3.2: aud must be present and hold one of our values (JS-N03, JS-N04).
    if (claims.aud === undefined || claims.aud === null) throw new AgentwardError('ERR_JWT_SVID_CLAIM_MISSING', 'The JWT-SVID has no aud claim (JWT-SVID section 3.2).');
    const audiences = asJwtSvidError(() => audienceList(claims.aud));
    if (!audiences.some((a) => this.audiences.has(a))) throw new AgentwardError('ERR_JWT_SVID_AUDIENCE');

    // §3.3 and RFC 7519 §4.1.4-6: exp present and not passed, nbf and iat not ahead, small leeway (JS-N05).
    const nowSeconds = this.now() / 1000;
    if (claims.exp === undefined || claims.exp === null) throw new AgentwardError('ERR_JWT_SVID_CLAIM_MISSING', 'The JWT-SVID has no exp claim (JWT-SVID section 3.3).');
    const exp = asJwtSvidError(() => numericClaim(claims, 'exp'))!;
    if (nowSeconds >= exp + this.skew) throw new AgentwardError('ERR_JWT_SVID_EXPIRED');
    const nbf = asJwtSvidError(() => numericClaim(claims, 'nbf'));
    if (nbf !== undefined && nbf > nowSeconds + this.skew) throw new AgentwardError('ERR_JWT_SVID_EXPIRED', 'The JWT-SVID is not valid yet (nbf).');
    const iat = asJwtSvidError(() => numericClaim(claims, 'iat'));
    if (iat !== undefined && iat > nowSeconds + this.skew) throw new AgentwardError('ERR_JWT_SVID_EXPIRED', 'The JWT-SVID was issued in the future (iat).');

    // A bearer credential is a replay risk for its whole life (§7.1): the domain may cap it.
    if (domain.maxLifetimeSeconds !== undefined && exp - (iat ?? nowSeconds) > domain.maxLifetimeSeconds) throw new AgentwardError('ERR_JWT_SVID_LIFETIME');

    const rest: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(claims)) if (!EXTRACTED_CLAIMS.has(name)) rest[name] = value;
    const result: VerifiedJwtSvid = deepFreeze({
      id: claimed.id,
      trustDomain: claimed.trustDomain,
      path: claimed.path,
      expiresAt: exp,
      claims: rest,
      kid: kid === undefined || kid === '' ? undefined : kid,
    });
    const ttlMs = (exp + this.skew) * 1000 - this.now();
    if (this.cache && ttlMs > 0) this.cache.set(tokenHash, { result, keys }, { ttl: ttlMs });
    return result;
  }
}

/** A SPIFFE ID naming a workload (SPIFFE-ID §2; a path, as JWT-SVID §3.1 names "the workload"), or undefined. */
function spiffeId(sub: unknown): WorkloadId | undefined {
  if (typeof sub !== 'string' || !sub.startsWith('spiffe://')) return undefined;
  try {
    return parseWorkloadId(sub, { requirePath: true });
  } catch {
    // WorkloadIdError: every reason means "not a SPIFFE ID" here; the code says so, the reason is not needed.
    return undefined;
  }
}

/**
 * The signature, by a key of `keys` only (RFC 8725 §3.10: header `jwk`/`jku`/`x5u`/`x5c` are
 * never looked at). When several keys of the domain match (no `kid`, allowed with requireKid
 * off), each is tried: all of them are trusted for this domain.
 */
async function verifySignature(token: string, keys: KeyResolver, alg: string): Promise<Uint8Array> {
  try {
    return (await compactVerify(token, keys, { algorithms: [alg] })).payload;
  } catch (err) {
    if (err instanceof joseErrors.JWKSMultipleMatchingKeys) {
      for await (const key of err) {
        try {
          return (await compactVerify(token, key, { algorithms: [alg] })).payload;
        } catch (inner) {
          if (!(inner instanceof joseErrors.JWSSignatureVerificationFailed)) throw joseFailure(inner);
        }
      }
      throw new AgentwardError('ERR_JWT_SVID_SIGNATURE', 'The JWT-SVID signature is invalid for every key of its trust domain.', { cause: err });
    }
    throw joseFailure(err);
  }
}

/** Maps a jose throw to our code (conventions §6); our own errors pass unchanged. */
function joseFailure(err: unknown): AgentwardError {
  if (err instanceof AgentwardError) return err;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new AgentwardError('ERR_JWT_SVID_SIGNATURE', undefined, { cause: err });
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) return new AgentwardError('ERR_JWT_SVID_KEY_UNKNOWN', undefined, { cause: err });
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new AgentwardError('ERR_JWT_SVID_ALGORITHM', undefined, { cause: err });
  // Unknown `crit`, a key unusable with the algorithm (e.g. an RSA key under 2048 bits), bad segments.
  return new AgentwardError('ERR_JWT_SVID_MALFORMED', undefined, { cause: err });
}

/** Runs a shared claim check from claims.ts and gives its failure the JWT-SVID code. */
function asJwtSvidError<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof AgentwardError) {
      // claims.ts messages name the claim, never its value.
      throw new AgentwardError('ERR_JWT_SVID_MALFORMED', err.detail.replace('access token', 'JWT-SVID'), { cause: err });
    }
    throw err;
  }
}
