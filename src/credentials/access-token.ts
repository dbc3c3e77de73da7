/**
 * OAuth 2.0 JWT access tokens (RFC 9068). Checks run in the order of RFC 9068 §4 (typ, iss, aud,
 * signature, time), each failure with its own code; then the required claims of §2.2, the claim
 * types policies rely on, key binding (`cnf`) and the RFC 8693 delegation chain.
 *
 * A verified token is remembered by its SHA-256 until it expires (bounded LRU), so a repeated
 * token costs a hash and a map lookup, not a signature check. Entries are dropped when the key
 * that verified them leaves the issuer's key set.
 */
import { hash as digest } from 'node:crypto';
import { compactVerify, errors as joseErrors, type JWSHeaderParameters } from 'jose';
import { LRUCache } from 'lru-cache';
import { decodeJsonSegment, normalizeTyp } from './jose-parts.ts';
import { AgentwardError } from '../errors.ts';
import type { IssuerConfig } from '../config/schema.ts';
import { effectiveProfile, type AccessTokenProfile } from '../identity/issuer-profiles.ts';
import type { IssuerKeys } from '../keys/issuer-keys.ts';
import { flattenDelegation, type DelegationChain } from '../identity/delegation.ts';
import { audienceList, checkClaimTypes, dpopKeyOf, numericClaim, scopesOf } from './claims.ts';
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

export interface AccessTokenVerifierOptions {
  issuers: readonly { config: IssuerConfig; keys: IssuerKeys }[];
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
  config: IssuerConfig;
  keys: IssuerKeys;
  audiences: ReadonlySet<string>;
  algorithms: string[];
  profile: AccessTokenProfile;
  /** The profile's `typ` values, normalized once. */
  typ: ReadonlySet<string>;
}

/** RFC 9068 §2.1 */
const ACCESS_TOKEN_TYP = 'at+jwt';
/** A `typ` value shown back in an error detail: a short media type, never arbitrary caller text. */
const SHOWABLE_TYP = /^[A-Za-z0-9.+/-]{1,40}$/;

export class AccessTokenVerifier {
  private readonly issuers: Map<string, IssuerEntry>;
  private readonly skew: number;
  private readonly maxDepth: number;
  private readonly now: () => number;
  private readonly cache: LRUCache<string, VerifiedAccessToken> | undefined;
  /** Confirmation methods whose proof can be checked; others are refused, never ignored (AT-N24). */
  private readonly verifiableCnf: ReadonlySet<string>;

  constructor(options: AccessTokenVerifierOptions) {
    this.skew = options.clockSkewSeconds;
    this.maxDepth = options.maxDelegationDepth;
    this.now = options.now ?? Date.now;
    this.verifiableCnf = new Set([...(options.dpopBinding ? ['jkt'] : []), ...(options.certificateBinding ? ['x5t#S256'] : [])]);
    this.cache = options.cacheSize > 0 ? new LRUCache({ max: options.cacheSize, ttlAutopurge: false, perf: { now: () => this.now() } }) : undefined;
    this.issuers = new Map(
      options.issuers.map(({ config, keys }) => {
        keys.onRotation((issuer, staleKids) => this.forgetKeys(issuer, staleKids));
        const profile = effectiveProfile(config);
        const typ = new Set(profile.typ.map((t) => normalizeTyp(t)!));
        return [config.issuer, { config, keys, audiences: new Set(config.audiences ?? [options.resourceId]), algorithms: [...config.algorithms], profile, typ }];
      }),
    );
  }

  /** Verifies a compact JWT access token; throws AgentwardError with a specific code. */
  async verify(token: string): Promise<VerifiedAccessToken> {
    // One-shot crypto.hash: cheaper than a Hash object on the hot path.
    const hash = digest('sha256', token, 'base64url');
    const nowSeconds = this.now() / 1000;
    const cached = this.cache?.get(hash);
    if (cached) {
      if (nowSeconds > cached.expiresAt + this.skew) throw new AgentwardError('ERR_TOKEN_EXPIRED');
      return cached;
    }

    const parts = token.split('.');
    if (parts.length === 5) throw new AgentwardError('ERR_TOKEN_ENCRYPTED', 'Encrypted (JWE) access tokens were not negotiated with this resource.');
    if (parts.length !== 3) throw new AgentwardError('ERR_TOKEN_MALFORMED', 'The access token must be a compact JWS with three parts.');
    const header = decodeJsonSegment(parts[0]!, 'ERR_TOKEN_MALFORMED', 'The access token header') as JWSHeaderParameters;
    const claims = decodeJsonSegment(parts[1]!, 'ERR_TOKEN_MALFORMED', 'The access token payload');

    // RFC 9068 §4 step 1 (and RFC 8725 §3.11): explicit typing keeps ID tokens, DPoP proofs, WITs
    // and transaction tokens from being accepted as access tokens. An issuer profile may accept
    // other values (a documented deviation, docs/issuers.md); its confusion guard does the job.
    const issuer = typeof claims.iss === 'string' ? this.issuers.get(claims.iss) : undefined;
    if (normalizeTyp(header.typ) !== ACCESS_TOKEN_TYP && !(issuer && acceptsTyp(issuer, header.typ))) throw typError(header.typ, issuer);

    // Step 3: the issuer must be one configured out of band, compared exactly.
    if (typeof claims.iss !== 'string') throw new AgentwardError('ERR_TOKEN_ISSUER', 'The access token has no iss claim.');
    if (!issuer) throw new AgentwardError('ERR_TOKEN_ISSUER');
    const { profile } = issuer;
    const clientId = firstStringClaim(claims, profile.clientIdClaims);
    const audienceClaim = profile.audienceClaims.find((name) => claims[name] !== undefined) ?? profile.audienceClaims[0]!;
    const audiences = audienceList(claims[audienceClaim], audienceClaim);
    checkConfusionGuard(profile, claims, clientId, audiences);

    // Step 4: the audience must name this resource, exactly (RFC 9068 §4, RFC 8707 §2, RFC 9700 §2.3).
    if (!audiences.some((a) => issuer.audiences.has(a))) throw new AgentwardError('ERR_TOKEN_AUDIENCE');

    // Step 5: the signature, with an algorithm this issuer is allowed to use (RFC 8725 §3.1).
    if (typeof header.alg !== 'string' || !issuer.algorithms.includes(header.alg)) throw new AgentwardError('ERR_TOKEN_ALGORITHM');
    const key = await issuer.keys.getKey(header, { payload: parts[1]!, signature: parts[2]!, protected: parts[0]! });
    try {
      await compactVerify(token, key, { algorithms: issuer.algorithms });
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new AgentwardError('ERR_TOKEN_SIGNATURE', undefined, { cause: err });
      // Unknown `crit` (RFC 7515 §4.1.11), malformed segments, unusable key.
      throw new AgentwardError('ERR_TOKEN_MALFORMED', undefined, { cause: err });
    }

    // Step 6 and RFC 7519 §4.1.5-6: time, with a small leeway.
    const exp = numericClaim(claims, 'exp');
    if (exp === undefined) throw new AgentwardError('ERR_TOKEN_CLAIM_MISSING', 'The access token has no exp claim.');
    if (nowSeconds > exp + this.skew) throw new AgentwardError('ERR_TOKEN_EXPIRED');
    const nbf = numericClaim(claims, 'nbf');
    if (nbf !== undefined && nbf > nowSeconds + this.skew) throw new AgentwardError('ERR_TOKEN_NOT_YET_VALID');
    const iat = numericClaim(claims, 'iat');
    if (iat !== undefined && iat > nowSeconds + this.skew) throw new AgentwardError('ERR_TOKEN_ISSUED_IN_FUTURE');

    // RFC 9068 §2.2 required claims (configurable strictness).
    for (const name of profile.requiredClaims) {
      if (claims[name] === undefined || claims[name] === null) throw new AgentwardError('ERR_TOKEN_CLAIM_MISSING', `The access token has no ${name} claim (RFC 9068 section 2.2).`);
    }
    checkClaimTypes(claims);
    const jkt = dpopKeyOf(claims.cnf, this.verifiableCnf);
    const x5t = boundCertificateOf(claims.cnf);
    const delegation = flattenDelegation(claims.act, this.maxDepth);

    const verified: VerifiedAccessToken = Object.freeze({
      issuer: issuer.config.issuer,
      claims: Object.freeze(claims),
      subject: firstStringClaim(claims, [profile.subjectClaim]),
      clientId,
      scopes: scopesOf(claims, profile.scopeClaims),
      audiences,
      expiresAt: exp,
      kid: header.kid,
      jkt,
      x5t,
      delegation,
      hashPrefix: hash.slice(0, 16),
      format: 'jwt',
    });
    const ttlMs = (exp + this.skew) * 1000 - this.now();
    if (this.cache && ttlMs > 0) this.cache.set(hash, verified, { ttl: ttlMs });
    return verified;
  }

  /** Drops cached tokens whose key was removed or replaced. */
  private forgetKeys(issuer: string, staleKids: ReadonlySet<string | undefined>): void {
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
