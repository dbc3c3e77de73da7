/**
 * OAuth 2.0 JWT access tokens (RFC 9068). Checks run in the order of RFC 9068 §4 (typ, iss, aud,
 * signature, time), each failure with its own code; then the required claims of §2.2, the claim
 * types policies rely on, key binding (`cnf`) and the RFC 8693 delegation chain. The JWS steps are
 * src/jose/verify.ts's; this module gives them its profile: the per-issuer `typ`, the issuer, the
 * confusion guard and the audience, which §4 checks before the signature (the `route` hook).
 *
 * A verified token is remembered by its SHA-256 until it expires (bounded LRU), so a repeated
 * token costs a hash and a map lookup, not a signature check. Entries are dropped when the key
 * that verified them leaves the issuer's key set.
 */
import { hash as digest } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { normalizeTyp } from '../jose/segments.ts';
import { requireClaims, verifyCompactJws, type CompactJws, type Failure, type JwsFailures, type JwsProfile, type KeyChoice } from '../jose/verify.ts';
import { AgentwardError } from '../errors.ts';
import { effectiveProfile, type AccessTokenProfile, type ProfileSettings } from '../identity/issuer-profiles.ts';
import type { IssuerKeys } from '../keys/issuer-keys.ts';
import { flattenDelegation, type DelegationChain } from '../identity/delegation.ts';
import { accessTokenTimes, audienceList, checkClaimTypes, dpopKeyOf, scopesOf } from './claims.ts';
import { boundCertificateOf } from './client-certificate.ts';

export interface VerifiedAccessToken {
  issuer: string;
  claims: Readonly<Record<string, unknown>>;
  /** The subject (RFC 9068 §2.2 `sub`, or the issuer profile's subject claim). */
  subject: string | null;
  /** The OAuth client (RFC 9068 §2.2 `client_id`, or the issuer profile's client claim: `azp`, `cid`, `appid`). */
  clientId: string | null;
  scopes: string[];
  audiences: string[];
  /** `exp`, seconds since the epoch. */
  expiresAt: number;
  kid: string | undefined;
  /** RFC 9449 §6.1 `cnf.jkt`: the token is bound to this DPoP key. */
  jkt: string | undefined;
  /**
   * RFC 8705 §3.1 `cnf["x5t#S256"]`: the token is bound to this client certificate. Optional so
   * that a verifier without certificate binding (which refuses such tokens) need not set it.
   */
  x5t?: string | undefined;
  delegation: DelegationChain;
  /** First 16 characters of base64url(SHA-256(token)): an audit identifier that reveals nothing. */
  hashPrefix: string;
  /** How it was verified: a JWT checked here (RFC 9068), or an opaque token introspected (RFC 7662). */
  format: 'jwt' | 'opaque';
}

/** What the verifier reads of one `oauth.issuers[]` entry: plain values, so this module imports no config. */
export interface AccessTokenIssuer extends ProfileSettings {
  /** Compared byte for byte with `iss` (RFC 9068 §4 step 3). */
  issuer: string;
  /** Default: the resource identifier. */
  audiences?: readonly string[] | undefined;
  /** The issuer's allow-list (RFC 8725 §3.1). */
  algorithms: readonly string[];
}

export interface AccessTokenVerifierOptions {
  issuers: readonly { config: AccessTokenIssuer; keys: IssuerKeys }[];
  /** Audiences accepted when an issuer lists none: the resource identifier. */
  resourceId: string;
  clockSkewSeconds: number;
  maxDelegationDepth: number;
  cacheSize: number;
  /** Whether `cnf.jkt` bindings are accepted (DPoP not disabled); the pipeline checks the proof. */
  dpopBinding: boolean;
  /**
   * Whether `cnf["x5t#S256"]` bindings are accepted (the listener asks for client certificates);
   * the pipeline checks the certificate. Default false: such tokens are refused (MT-N05).
   */
  certificateBinding?: boolean;
  now?: () => number;
}

interface IssuerEntry {
  config: AccessTokenIssuer;
  audiences: ReadonlySet<string>;
  profile: AccessTokenProfile;
  /** The profile's `typ` values, normalized once. */
  typ: ReadonlySet<string>;
  /** This issuer's algorithms and key set (RFC 8725 §3.1, §3.10), built once. */
  keys: KeyChoice;
}

/** What the profile's `route` found for one token: the issuer and the claims §4 read before the signature. */
interface AccessTokenRoute {
  issuer: IssuerEntry | undefined;
  clientId: string | null;
  audiences: string[];
}

/** RFC 9068 §2.1 */
const ACCESS_TOKEN_TYP = 'at+jwt';
/** Forged tokens remembered at most, and for how long (see AccessTokenVerifier.forged). */
const FORGED_CACHE_SIZE = 1000;
const FORGED_TTL_MS = 60_000;
/** A `typ` value shown back in an error detail: a short media type, never arbitrary caller text. */
const SHOWABLE_TYP = /^[A-Za-z0-9.+/-]{1,40}$/;

const FAILURES: JwsFailures = {
  malformed: { code: 'ERR_TOKEN_MALFORMED', detail: 'The access token must be a compact JWS with three parts.' },
  encrypted: { code: 'ERR_TOKEN_ENCRYPTED', detail: 'Encrypted (JWE) access tokens were not negotiated with this resource.' },
  algorithm: 'ERR_TOKEN_ALGORITHM',
  // IssuerKeys reports its own ERR_TOKEN_KEY_UNKNOWN (with why) and ERR_KEYS_UNAVAILABLE; both pass.
  keyUnknown: 'ERR_TOKEN_KEY_UNKNOWN',
  signature: 'ERR_TOKEN_SIGNATURE',
  // Unknown `crit` (RFC 7515 §4.1.11), malformed segments, unusable key.
  unverifiable: 'ERR_TOKEN_MALFORMED',
};

/** RFC 9068 §2.2 required claims (configurable strictness). */
const requiredClaimMissing = (name: string): Failure => ({ code: 'ERR_TOKEN_CLAIM_MISSING', detail: `The access token has no ${name} claim (RFC 9068 section 2.2).` });

export class AccessTokenVerifier {
  private readonly issuers: Map<string, IssuerEntry>;
  private readonly skew: number;
  private readonly maxDepth: number;
  private readonly now: () => number;
  private readonly cache: LRUCache<string, VerifiedAccessToken> | undefined;
  /**
   * Tokens whose signature failed, by SHA-256, with the error they got: a flood of one forged
   * token costs a hash and a lookup per request, not a signature check. Sound because a bad
   * signature stays bad under the same key set: the whole memory is dropped whenever any
   * issuer's key set changes, and an entry lives at most FORGED_TTL_MS.
   */
  private readonly forged: LRUCache<string, AgentwardError> | undefined;
  /** Confirmation methods whose proof can be checked; others are refused, never ignored (AT-N24). */
  private readonly verifiableCnf: ReadonlySet<string>;
  private readonly profile: JwsProfile<AccessTokenRoute>;

  constructor(options: AccessTokenVerifierOptions) {
    this.skew = options.clockSkewSeconds;
    this.maxDepth = options.maxDelegationDepth;
    this.now = options.now ?? Date.now;
    this.verifiableCnf = new Set([...(options.dpopBinding ? ['jkt'] : []), ...(options.certificateBinding ? ['x5t#S256'] : [])]);
    this.cache = options.cacheSize > 0 ? new LRUCache({ max: options.cacheSize, ttlAutopurge: false, perf: { now: () => this.now() } }) : undefined;
    this.forged = options.cacheSize > 0 ? new LRUCache({ max: FORGED_CACHE_SIZE, ttl: FORGED_TTL_MS, ttlAutopurge: false, perf: { now: () => this.now() } }) : undefined;
    this.issuers = new Map(
      options.issuers.map(({ config, keys }) => {
        keys.onRotation((issuer, staleKids) => this.forgetKeys(issuer, staleKids));
        const profile = effectiveProfile(config);
        const typ = new Set(profile.typ.map((t) => normalizeTyp(t)!));
        const choice: KeyChoice = { algorithms: [...config.algorithms], keys: (header, jws) => keys.getKey(header, jws) };
        return [config.issuer, { config, audiences: new Set(config.audiences ?? [options.resourceId]), profile, typ, keys: choice }];
      }),
    );
    this.profile = {
      noun: 'The access token',
      form: 'parts',
      claimsFirst: true,
      typ: (jws) => this.checkTyp(jws),
      failures: FAILURES,
      // Step 6 and RFC 7519 §4.1.5-6: time, with a small leeway.
      time: accessTokenTimes(this.skew, this.now, { code: 'ERR_TOKEN_CLAIM_MISSING', detail: 'The access token has no exp claim.' }),
      route: (jws, route) => this.route(jws, route),
    };
  }

  /** Verifies a compact JWT access token; throws AgentwardError with a specific code. */
  async verify(token: string): Promise<VerifiedAccessToken> {
    // One-shot crypto.hash: cheaper than a Hash object on the hot path.
    const hash = digest('sha256', token, 'base64url');
    const cached = this.cache?.get(hash);
    if (cached) {
      if (this.now() / 1000 > cached.expiresAt + this.skew) throw new AgentwardError('ERR_TOKEN_EXPIRED');
      return cached;
    }

    const forged = this.forged?.get(hash);
    if (forged) throw new AgentwardError(forged.code, forged.detail);

    const routed: AccessTokenRoute = { issuer: undefined, clientId: null, audiences: [] };
    const { header, claims, exp } = await this.verifyOrRemember(token, hash, routed);
    // `route` set the issuer: no token gets past it without one.
    const issuer = routed.issuer!;
    const { profile } = issuer;

    requireClaims(claims, profile.requiredClaims, requiredClaimMissing);
    checkClaimTypes(claims);
    const jkt = dpopKeyOf(claims.cnf, this.verifiableCnf);
    const x5t = boundCertificateOf(claims.cnf);
    const delegation = flattenDelegation(claims.act, this.maxDepth);

    const verified: VerifiedAccessToken = Object.freeze({
      issuer: issuer.config.issuer,
      claims: Object.freeze(claims),
      subject: firstStringClaim(claims, [profile.subjectClaim]),
      clientId: routed.clientId,
      scopes: scopesOf(claims, profile.scopeClaims),
      audiences: routed.audiences,
      expiresAt: exp!,
      kid: header.kid,
      jkt,
      x5t,
      delegation,
      hashPrefix: hash.slice(0, 16),
      format: 'jwt',
    });
    const ttlMs = (exp! + this.skew) * 1000 - this.now();
    if (this.cache && ttlMs > 0) this.cache.set(hash, verified, { ttl: ttlMs });
    return verified;
  }

  /**
   * RFC 9068 §4 step 1 (and RFC 8725 §3.11): explicit typing keeps ID tokens, DPoP proofs, WITs
   * and transaction tokens from being accepted as access tokens. An issuer profile may accept
   * other values (a documented deviation, docs/issuers.md); its confusion guard does the job.
   */
  private checkTyp(jws: CompactJws): void {
    const { iss } = jws.unverifiedClaims();
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    const { typ } = jws.header;
    if (normalizeTyp(typ) !== ACCESS_TOKEN_TYP && !(issuer && acceptsTyp(issuer, typ))) throw typError(typ, issuer);
  }

  /** RFC 9068 §4 steps 3-4, before the signature: the issuer, the confusion guard, the audience. */
  private route(jws: CompactJws, routed: AccessTokenRoute): KeyChoice {
    const claims = jws.unverifiedClaims();
    // Step 3: the issuer must be one configured out of band, compared exactly.
    if (typeof claims.iss !== 'string') throw new AgentwardError('ERR_TOKEN_ISSUER', 'The access token has no iss claim.');
    const issuer = this.issuers.get(claims.iss);
    if (!issuer) throw new AgentwardError('ERR_TOKEN_ISSUER');
    const { profile } = issuer;
    const clientId = firstStringClaim(claims, profile.clientIdClaims);
    const audienceClaim = profile.audienceClaims.find((name) => claims[name] !== undefined) ?? profile.audienceClaims[0]!;
    const audiences = audienceList(claims[audienceClaim], audienceClaim);
    checkConfusionGuard(profile, claims, clientId, audiences);

    // Step 4: the audience must name this resource, exactly (RFC 9068 §4, RFC 8707 §2, RFC 9700 §2.3).
    if (!audiences.some((a) => issuer.audiences.has(a))) throw new AgentwardError('ERR_TOKEN_AUDIENCE');
    routed.issuer = issuer;
    routed.clientId = clientId;
    routed.audiences = audiences;
    // Step 5: the signature, with an algorithm this issuer is allowed to use (RFC 8725 §3.1).
    return issuer.keys;
  }

  /**
   * Drops every remembered token `revoked` matches (a remediation, docs/signals.md); returns how
   * many. The revocation list refuses them anyway: this frees the memory and the counts say what
   * the event reached.
   */
  purge(revoked: (token: VerifiedAccessToken) => boolean): number {
    if (!this.cache) return 0;
    let purged = 0;
    for (const [hash, entry] of this.cache.entries()) {
      if (revoked(entry)) {
        this.cache.delete(hash);
        purged++;
      }
    }
    return purged;
  }

  /** The one JWS check; a bad signature is remembered (see `forged`). */
  private async verifyOrRemember(token: string, hash: string, routed: AccessTokenRoute): ReturnType<typeof verifyCompactJws> {
    try {
      return await verifyCompactJws(token, this.profile, routed);
    } catch (err) {
      if (this.forged && err instanceof AgentwardError && err.code === 'ERR_TOKEN_SIGNATURE') this.forged.set(hash, err);
      throw err;
    }
  }

  /** Drops cached tokens whose key was removed or replaced. */
  private forgetKeys(issuer: string, staleKids: ReadonlySet<string | undefined>): void {
    // A new key set may hold the key a remembered signature was made with.
    this.forged?.clear();
    if (!this.cache) return;
    for (const [hash, entry] of this.cache.entries()) {
      // A token without kid cannot be tied to one key; any change of the key set drops it.
      if (entry.issuer === issuer && (entry.kid === undefined || staleKids.has(entry.kid))) this.cache.delete(hash);
    }
  }
}

/** Whether the issuer's profile accepts this `typ` header (or its absence). */
function acceptsTyp(issuer: IssuerEntry, typ: unknown): boolean {
  if (typ === undefined) return !issuer.profile.typRequired;
  const normalized = normalizeTyp(typ);
  return normalized !== undefined && issuer.typ.has(normalized);
}

/** ERR_TOKEN_TYPE saying what was seen and where the setting is, without echoing arbitrary text. */
function typError(typ: unknown, issuer: IssuerEntry | undefined): AgentwardError {
  const seen = typ === undefined ? 'has no typ header' : typeof typ === 'string' && SHOWABLE_TYP.test(typ) ? `has typ "${typ}"` : 'has an unexpected typ header';
  const accepted = issuer ? [...issuer.typ].join(', ') + (issuer.profile.typRequired ? '' : ' or none') : ACCESS_TOKEN_TYP;
  const where = issuer
    ? `issuer ${issuer.config.issuer} (profile ${issuer.profile.name}) accepts ${accepted}`
    : 'access tokens carry typ at+jwt (RFC 9068 section 2.1)';
  return new AgentwardError('ERR_TOKEN_TYPE', `The token ${seen}; ${where}. If your authorization server does not send at+jwt, set oauth.issuers[].profile for it (docs/issuers.md).`);
}

/** The first claim of `names` that is present; it must be a string. */
function firstStringClaim(claims: Record<string, unknown>, names: readonly string[]): string | null {
  for (const name of names) {
    const value = claims[name];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', `The ${name} claim must be a string.`);
    return value;
  }
  return null;
}

/**
 * The issuer profile's confusion guard (docs/issuers.md): where `typ` does not say "access token",
 * these checks do. Runs where the typ check runs, before the audience, so that an ID token is
 * refused as what it is.
 */
function checkConfusionGuard(profile: AccessTokenProfile, claims: Record<string, unknown>, clientId: string | null, audiences: readonly string[]): void {
  const guard = profile.confusionGuard;
  const refuse = (why: string) => new AgentwardError('ERR_TOKEN_NOT_ACCESS_TOKEN', `${why} (issuer profile ${profile.name}, docs/issuers.md).`);
  for (const [name, value] of Object.entries(guard.claims)) {
    if (claims[name] !== value) throw refuse(`The token's ${name} claim is not "${value}", so it is not an access token`);
  }
  if (guard.requireClientId && clientId === null) throw refuse(`The token has no ${profile.clientIdClaims.join(' or ')} claim, which every access token of this issuer carries`);
  if (guard.requireScope && !profile.scopeClaims.some((name) => claims[name] !== undefined)) {
    throw refuse(`The token has no ${profile.scopeClaims.join(' or ')} claim, which every access token of this issuer carries`);
  }
  const marker = guard.forbidClaims.find((name) => claims[name] !== undefined);
  if (marker !== undefined) throw refuse(`The token has a ${marker} claim, which only ID tokens carry`);
  if (guard.audienceNotClientId && clientId !== null && audiences.includes(clientId)) throw refuse('The token\'s audience is its own client, the shape of an ID token');
}
