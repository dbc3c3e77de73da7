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
import { decodeJsonSegment } from './jose-parts.ts';
import { AgentwardError } from '../errors.ts';
import type { IssuerConfig } from '../config/schema.ts';
import type { IssuerKeys } from '../keys/issuer-keys.ts';
import { flattenDelegation, type DelegationChain } from '../identity/delegation.ts';
import { audienceList, checkClaimTypes, dpopKeyOf, numericClaim } from './claims.ts';
import { boundCertificateOf } from './client-certificate.ts';

export interface VerifiedAccessToken {
  issuer: string;
  claims: Readonly<Record<string, unknown>>;
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
}

/** RFC 7515 §4.1.9: `typ` is a media type; compare case-insensitively, `application/` optional. */
export function normalizeTyp(typ: unknown): string | undefined {
  if (typeof typ !== 'string') return undefined;
  const lower = typ.toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

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
        return [config.issuer, { config, keys, audiences: new Set(config.audiences ?? [options.resourceId]), algorithms: [...config.algorithms] }];
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
    // and transaction tokens from being accepted as access tokens.
    if (header.typ === undefined) throw new AgentwardError('ERR_TOKEN_TYPE', 'The token has no typ header; access tokens carry typ at+jwt (RFC 9068 section 2.1).');
    if (normalizeTyp(header.typ) !== 'at+jwt') throw new AgentwardError('ERR_TOKEN_TYPE');

    // Step 3: the issuer must be one configured out of band, compared exactly.
    if (typeof claims.iss !== 'string') throw new AgentwardError('ERR_TOKEN_ISSUER', 'The access token has no iss claim.');
    const issuer = this.issuers.get(claims.iss);
    if (!issuer) throw new AgentwardError('ERR_TOKEN_ISSUER');

    // Step 4: the audience must name this resource, exactly (RFC 9068 §4, RFC 8707 §2, RFC 9700 §2.3).
    const audiences = audienceList(claims.aud);
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
    for (const name of issuer.config.requiredClaims) {
      if (claims[name] === undefined || claims[name] === null) throw new AgentwardError('ERR_TOKEN_CLAIM_MISSING', `The access token has no ${name} claim (RFC 9068 section 2.2).`);
    }
    checkClaimTypes(claims);
    const jkt = dpopKeyOf(claims.cnf, this.verifiableCnf);
    const x5t = boundCertificateOf(claims.cnf);
    const delegation = flattenDelegation(claims.act, this.maxDepth);

    const verified: VerifiedAccessToken = Object.freeze({
      issuer: issuer.config.issuer,
      claims: Object.freeze(claims),
      scopes: typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [],
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
