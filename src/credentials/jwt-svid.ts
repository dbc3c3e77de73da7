/**
 * SPIFFE JWT-SVIDs (JWT-SVID.md, Stable; cases JS-Nxx in docs/negative-cases.md) presented as bearer tokens
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
 * The JWS steps are src/jose/verify.ts's, run with this module's profile: the checks above that
 * precede the signature run in its `locateKey` hook, `sub` and `aud` in `afterSignature`.
 *
 * A verified token is remembered by its SHA-256 until it expires (bounded LRU), like access tokens
 * (access-token.ts). A hit still asks the trust domain for its key resolver: an unavailable bundle
 * fails closed (ERR_KEYS_UNAVAILABLE), and a new bundle (a new resolver) sends the token through
 * full verification again, so a rotated-out key stops vouching at once without any listener.
 */
import { hash as digest } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { SPIFFE_ALGORITHMS } from '../jose/algorithms.ts';
import { deepFreeze } from '../jose/segments.ts';
import { explicitTyp, fail, hasJwsForm, notNumericDate, verifyCompactJws, type Claims, type CompactJws, type JwsFailures, type JwsProfile, type KeyChoice } from '../jose/verify.ts';
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { parseWorkloadId, type WorkloadId } from '../identity/workload-id.ts';
import type { KeyResolver } from '../keys/trust-bundle.ts';
import { audienceList, isObject, type ClaimErrors } from './claims.ts';

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
 * The JWS failures. The form is `segments`: the signature may be empty so that an unsecured JWS
 * (`alg: none`) is refused for its algorithm (JS-N01), not as malformed.
 */
const FAILURES: JwsFailures = {
  malformed: { code: 'ERR_JWT_SVID_MALFORMED', detail: 'The JWT-SVID must be a compact JWS with three base64url parts.' },
  algorithm: 'ERR_JWT_SVID_ALGORITHM',
  keyUnknown: 'ERR_JWT_SVID_KEY_UNKNOWN',
  // A bundle key jose cannot use for the algorithm.
  keyUnusable: 'ERR_JWT_SVID_MALFORMED',
  signature: 'ERR_JWT_SVID_SIGNATURE',
  signatureEveryKey: { code: 'ERR_JWT_SVID_SIGNATURE', detail: 'The JWT-SVID signature is invalid for every key of its trust domain.' },
  // Unknown `crit`, a key unusable with the algorithm (e.g. an RSA key under 2048 bits), bad segments.
  unverifiable: 'ERR_JWT_SVID_MALFORMED',
};

/** The claim checks shared with access tokens, reporting as a malformed JWT-SVID. */
const SVID_CLAIMS: ClaimErrors = { noun: 'The JWT-SVID', invalid: 'ERR_JWT_SVID_MALFORMED', audience: 'ERR_JWT_SVID_MALFORMED' };

/** What `locateKey` found for one token: the SPIFFE ID its unverified `sub` claims, and that domain's keys. */
interface JwtSvidRoute {
  claimed: WorkloadId | undefined;
  domain: JwtSvidTrustDomain | undefined;
  keys: KeyResolver | undefined;
}

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
    if (!hasJwsForm(token, 'segments')) return false;
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
  private readonly profile: JwsProfile<JwtSvidRoute>;

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
    this.profile = {
      noun: 'The JWT-SVID',
      // §5.1: compact serialization only; JWS JSON serialization and JWE are refused (JS-N08).
      form: 'segments',
      claimsFirst: true,
      // §2.3: typ absent, JWT or JOSE; so a WIT (wit+jwt), an access token (at+jwt) or a DPoP proof
      // is never taken for a JWT-SVID (RFC 8725 §3.11, JS-N02).
      typ: explicitTyp({ accepted: ['JWT', 'JOSE'], optional: true, wrong: 'ERR_JWT_SVID_TYPE' }),
      // §2.1: RS, ES or PS with 256, 384 or 512 only; never the token's choice (RFC 8725 §3.1, JS-N01).
      algorithms: [...SPIFFE_ALGORITHMS],
      // Without kid (requireKid off) every key of the domain that fits may have signed it.
      everyMatchingKey: true,
      failures: FAILURES,
      locateKey: (jws, route) => this.locateKey(jws, route),
      afterSignature: (claims, _jws, route) => this.checkSubjectAndAudience(claims, route),
      // §3.3 and RFC 7519 §4.1.4-6: exp not passed, nbf and iat not ahead, small leeway (JS-N05).
      time: {
        skew: this.skew,
        now: this.now,
        invalid: (name) => notNumericDate(SVID_CLAIMS.invalid, name),
        exp: { expired: 'ERR_JWT_SVID_EXPIRED', onOrAfter: true },
        nbf: { future: { code: 'ERR_JWT_SVID_EXPIRED', detail: 'The JWT-SVID is not valid yet (nbf).' } },
        iat: { future: 'ERR_JWT_SVID_ISSUED_IN_FUTURE' },
      },
    };
  }

  /**
   * Verifies a JWT-SVID presented as a bearer token. Throws AgentwardError with an
   * `ERR_JWT_SVID_*` code, or the trust bundle's ERR_KEYS_UNAVAILABLE (503) when the domain's
   * keys cannot be used. The token never appears in an error.
   */
  async verify(token: string): Promise<VerifiedJwtSvid> {
    // §5.1 before the cache: what is not a compact JWS (a JWS JSON object, a JWE) is not even hashed (JS-N08).
    if (!hasJwsForm(token, this.profile.form)) throw fail(FAILURES.malformed);
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

    const route: JwtSvidRoute = { claimed: undefined, domain: undefined, keys: undefined };
    const { header, claims, exp, iat } = await verifyCompactJws(token, this.profile, route);
    // `locateKey` set these: no token reaches its signature check without them.
    const claimed = route.claimed!;
    const domain = route.domain!;

    // A bearer credential is a replay risk for its whole life (§7.1): the domain may cap it.
    if (domain.maxLifetimeSeconds !== undefined && exp! - (iat ?? this.now() / 1000) > domain.maxLifetimeSeconds) throw new AgentwardError('ERR_JWT_SVID_LIFETIME');

    const rest: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(claims)) if (!EXTRACTED_CLAIMS.has(name)) rest[name] = value;
    const { kid } = header;
    const result: VerifiedJwtSvid = deepFreeze({
      id: claimed.id,
      trustDomain: claimed.trustDomain,
      path: claimed.path,
      expiresAt: exp!,
      claims: rest,
      kid: kid === undefined || kid === '' ? undefined : kid,
    });
    const ttlMs = (exp! + this.skew) * 1000 - this.now();
    if (this.cache && ttlMs > 0) this.cache.set(tokenHash, { result, keys: route.keys! }, { ttl: ttlMs });
    return result;
  }

  /** Drops every cached JWT-SVID whose SPIFFE ID `revoked` names (docs/signals.md); returns how many. */
  purge(revoked: (id: string) => boolean): number {
    if (!this.cache) return 0;
    let purged = 0;
    for (const [hash, entry] of this.cache.entries()) {
      if (revoked(entry.result.id)) {
        this.cache.delete(hash);
        purged++;
      }
    }
    return purged;
  }

  /**
   * Before the signature, with the algorithm settled: `crit`, `kid` (U10), then the unverified
   * `sub` (§3.1, JS-N09), whose trust domain alone supplies the keys (SPIFFE Bundle §3).
   */
  private locateKey(jws: CompactJws, route: JwtSvidRoute): KeyChoice {
    const { header } = jws;
    // RFC 7515 §4.1.11: no extension is understood here, so any `crit` makes the JWS invalid.
    if (header.crit !== undefined) throw new AgentwardError('ERR_JWT_SVID_MALFORMED', 'The JWT-SVID lists critical header extensions this resource does not understand (RFC 7515 section 4.1.11).');
    const kid = header.kid;
    if (kid !== undefined && typeof kid !== 'string') throw new AgentwardError('ERR_JWT_SVID_MALFORMED', 'The JWT-SVID kid header must be a string (RFC 7515 section 4.1.4).');
    // U10: bundles publish jwt-svid keys with a kid (Bundle §4.2.2); a token that names none is refused by default.
    if (this.requireKid && (kid === undefined || kid === '')) throw new AgentwardError('ERR_JWT_SVID_KEY_UNKNOWN', 'The JWT-SVID has no kid header; this resource requires one.');

    const unverified = jws.unverifiedClaims();
    if (unverified.sub === undefined) throw new AgentwardError('ERR_JWT_SVID_CLAIM_MISSING', 'The JWT-SVID has no sub claim (JWT-SVID section 3.1).');
    const claimed = spiffeId(unverified.sub);
    if (claimed === undefined) throw new AgentwardError('ERR_JWT_SVID_SUBJECT');
    const domain = this.domains.get(claimed.trustDomain);
    if (!domain) throw new AgentwardError('ERR_JWT_SVID_TRUST_DOMAIN');

    // §6, BND-N07: the `jwt-svid` entries of that domain's bundle, nothing else (JS-N06, JS-N07);
    // header `jwk`/`jku`/`x5u`/`x5c` are never looked at (RFC 8725 §3.10).
    route.claimed = claimed;
    route.domain = domain;
    route.keys = domain.jwtKeys();
    return { keys: route.keys };
  }

  /** The verified `sub` is the one that chose the keys; then §3.2: `aud` present and naming us (JS-N03, JS-N04). */
  private checkSubjectAndAudience(claims: Claims, route: JwtSvidRoute): void {
    if (claims.sub !== route.claimed!.id) throw new AgentwardError('ERR_JWT_SVID_SUBJECT');
    if (claims.aud === undefined || claims.aud === null) throw new AgentwardError('ERR_JWT_SVID_CLAIM_MISSING', 'The JWT-SVID has no aud claim (JWT-SVID section 3.2).');
    if (!audienceList(claims.aud, 'aud', SVID_CLAIMS).some((a) => this.audiences.has(a))) throw new AgentwardError('ERR_JWT_SVID_AUDIENCE');
    // §3.3: exp present (the time rule checks its value).
    if (claims.exp === undefined || claims.exp === null) throw new AgentwardError('ERR_JWT_SVID_CLAIM_MISSING', 'The JWT-SVID has no exp claim (JWT-SVID section 3.3).');
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
