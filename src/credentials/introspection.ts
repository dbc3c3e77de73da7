/**
 * OAuth 2.0 Token Introspection (RFC 7662) for opaque access tokens, with the optional signed
 * JWT response of RFC 9701. The answer of the authorization server (AS) says whether the token is
 * active; the resource-server checks (issuer, audience, time, claim types, key binding,
 * delegation) are still ours (RFC 7662 §4 leaves them to the resource server: "The RS still performs audience, scope and binding
 * checks") and produce the same VerifiedAccessToken as the JWT path, so the rest of the pipeline
 * does not know which path verified a token.
 *
 * Order in `introspect`, and why:
 *   cache → single flight → POST to the AS → transport checks → (RFC 9701 signature) → `active`
 *   → iss → aud → time → required claims → claim types → DPoP binding → delegation → cache.
 * The cache comes first so a repeated token costs a hash and a map lookup; concurrent requests
 * for one token share one call (single flight) so a burst cannot multiply load on the AS; only
 * a response that passed every check is cached, never an error (a transient outage must not
 * outlive itself), and never past the token's `exp` (RFC 7662 §4, AT-N27).
 *
 * Every failure fails closed with its own code (AT-N25, AT-N26). The token is a secret
 * (RFC 9700 §4.9): it is sent only in the POST body, keyed by its SHA-256, and never appears in a
 * log line or an error.
 */
import { hash as digest, randomUUID, type KeyObject } from 'node:crypto';
import { importJWK, jwtVerify, SignJWT, errors as joseErrors, type CryptoKey, type JWK, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Dispatcher } from 'undici';
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { durationMs } from '../duration.ts';
import type { Services } from '../services.ts';
import { isAsymmetricAlgorithm } from '../jose/algorithms.ts';
import { checkTimeClaims, type TimeRule } from '../jose/verify.ts';
import { flattenDelegation } from '../identity/delegation.ts';
import { postForm, type TransportFailure } from '../outbound/http.ts';
import type { VerifiedAccessToken } from './access-token.ts';
import { accessTokenTimes, audienceList, checkClaimTypes, dpopKeyOf, isObject } from './claims.ts';
import { boundCertificateOf } from './client-certificate.ts';

// ---------------------------------------------------------------- options and result

/** RFC 7591 §2 `token_endpoint_auth_method` values this client can use at the introspection endpoint. */
export type IntrospectionClientAuth =
  | { method: 'client_secret_basic'; clientId: string; clientSecret: string }
  | { method: 'client_secret_post'; clientId: string; clientSecret: string }
  | {
      method: 'private_key_jwt';
      clientId: string;
      /** A private key: CryptoKey, KeyObject, or a private JWK (with `d`). */
      privateKey: CryptoKey | KeyObject | JWK;
      /** An asymmetric JWS algorithm (RFC 8725 §3.1). */
      alg: string;
      /** `kid` header of the assertion. Default: the JWK's `kid`, if any. */
      kid?: string;
      /**
       * `aud` of the assertion. Default `issuer`: draft-ietf-oauth-rfc7523bis requires the AS
       * issuer identifier as the sole audience (the endpoint-URL audience of RFC 7523 §3 enabled
       * audience-injection attacks). `endpoint` sends the introspection endpoint URL for older
       * servers.
       */
      audience?: 'issuer' | 'endpoint';
    };

/** The proof of possession a token needs: none, or a DPoP proof (RFC 9449). */
export type TokenBinding = 'bearer' | 'dpop';

/**
 * Resolves the AS key for an RFC 9701 signed response. `IssuerKeys.getKey` fits:
 * `(header, input) => issuerKeys.getKey(header, input)`.
 */
export type IntrospectionKeyResolver = JWTVerifyGetKey;

export interface IntrospectionCacheOptions {
  /** Most tokens remembered; 0 disables the cache. */
  maxEntries: number;
  /** Longest an active result is reused (the revocation window, RFC 7662 §4); never past `exp`. */
  maxTtlMs: number;
  /** How long an inactive answer is reused; 0 asks again every time. */
  negativeTtlMs: number;
}

export interface TokenIntrospectorOptions {
  /** The AS issuer identifier. A response `iss`, when present, must equal it byte for byte. */
  issuer: string;
  /** The RFC 8414 `introspection_endpoint`. Called with POST; redirects are never followed. */
  endpoint: string;
  /** How this resource server authenticates to the AS (RFC 7662 §2.1: the AS must know who asks). */
  clientAuth: IntrospectionClientAuth;
  /** The resource identifier; the accepted audience when `audiences` is not given. */
  resourceId: string;
  /** Audience values that name this resource (exact match). Default: `{resourceId}`. */
  audiences?: ReadonlySet<string>;
  clockSkewSeconds: number;
  maxDelegationDepth: number;
  cache: IntrospectionCacheOptions;
  /** Deadline for connect, headers and body together. */
  timeoutMs: number;
  /** Largest response body read. Default 64 KiB. */
  maxResponseBytes?: number;
  /** Claims an active response must carry (besides `aud`, always required). Default none. */
  requiredClaims?: readonly string[];
  /**
   * Whether `cnf.jkt` bindings are accepted (DPoP not disabled); the pipeline checks the proof.
   * Any other confirmation method is refused, never downgraded to bearer (AT-N24).
   */
  dpopBinding: boolean;
  /** Whether `cnf["x5t#S256"]` bindings are accepted (the listener asks for client certificates). */
  certificateBinding?: boolean;
  /** `json` (RFC 7662) or `jwt` (RFC 9701 signed response). Default `json`. */
  responseFormat?: 'json' | 'jwt';
  /** Required with `responseFormat: 'jwt'`: the AS signing keys. */
  responseKeys?: IntrospectionKeyResolver;
  /** Algorithms accepted on a signed response. Default RS256, PS256, ES256, EdDSA. */
  responseAlgorithms?: readonly string[];
  /** Connection pool for the AS; tests and the composition root pass their own. */
  dispatcher?: Dispatcher;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

/** A VerifiedAccessToken (same shape as the JWT path) plus the binding the pipeline must check. */
export interface IntrospectedAccessToken extends VerifiedAccessToken {
  /**
   * The proof this token needs: `dpop` whenever `cnf.jkt` is present, whatever `token_type` says
   * (DP-N23). Always `jkt === undefined ? 'bearer' : 'dpop'`; the pipeline reads `jkt`.
   */
  binding: TokenBinding;
}

// ---------------------------------------------------------------- constants

const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
const DEFAULT_RESPONSE_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
/** RFC 7523 §3 item 4: the assertion lives only long enough to be checked. */
const ASSERTION_LIFETIME_S = 60;
/** RFC 7521 §4.2 */
const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** RFC 9701 §4 and §5 */
const JWT_RESPONSE_MEDIA_TYPE = 'application/token-introspection+jwt';
const JWT_RESPONSE_TYP = 'token-introspection+jwt';

/** `token_type` values that name a token kind other than an access token (RFC 8693 §3 URIs, and the bare names some servers use). */
const NOT_ACCESS_TOKEN_TYPES: ReadonlySet<string> = new Set([
  'refresh_token',
  'id_token',
  'urn:ietf:params:oauth:token-type:refresh_token',
  'urn:ietf:params:oauth:token-type:id_token',
]);
/** Keycloak's `typ` member for tokens that are not access tokens. */
const KEYCLOAK_NOT_ACCESS_TYP: ReadonlySet<string> = new Set(['refresh', 'offline', 'id', 'logout']);
/** A member value shown back in an error detail: a short word, never arbitrary text. */
const SHOWABLE_VALUE = /^[A-Za-z0-9_.:-]{1,64}$/;

type CacheEntry = { active: true; value: IntrospectedAccessToken; until: number } | { active: false; until: number };

interface RawAnswer {
  statusCode: number;
  mediaType: string | undefined;
  body: string;
}

// ---------------------------------------------------------------- the introspector

/** Duration (seconds) and outcome of one introspection call. */
export type IntrospectionCallListener = (seconds: number, outcome: 'ok' | 'error') => void;

export class TokenIntrospector {
  private readonly issuer: string;
  private readonly endpoint: URL;
  private readonly clientAuth: IntrospectionClientAuth;
  private readonly audiences: ReadonlySet<string>;
  private readonly skew: number;
  /** RFC 7519 §4.1.4-6, as for a JWT access token, but `exp` optional (RFC 7662 §2.2). */
  private readonly times: TimeRule;
  private readonly maxDepth: number;
  private readonly cacheOptions: IntrospectionCacheOptions;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly requiredClaims: readonly string[];
  /** Confirmation methods whose proof the pipeline checks (`jkt` unless DPoP is disabled). */
  private readonly verifiableCnf: ReadonlySet<string>;
  private readonly format: 'json' | 'jwt';
  private readonly responseKeys: IntrospectionKeyResolver | undefined;
  private readonly responseAlgorithms: string[];
  private readonly dispatcher: Dispatcher | undefined;
  private readonly now: () => number;
  private readonly cache: LRUCache<string, CacheEntry> | undefined;
  private readonly inflight = new Map<string, Promise<IntrospectedAccessToken>>();
  /** Precomputed once (conventions §3): the fixed request headers. */
  private readonly headers: Record<string, string>;
  private signingKey: Promise<CryptoKey | KeyObject | Uint8Array> | undefined;
  /** Answers served from the cache since start (for metrics). */
  cacheHits = 0;
  private readonly callListeners: IntrospectionCallListener[] = [];

  constructor(options: TokenIntrospectorOptions) {
    this.issuer = options.issuer;
    this.endpoint = new URL(options.endpoint);
    if (this.endpoint.protocol !== 'https:' && this.endpoint.protocol !== 'http:') throw new TypeError('The introspection endpoint must be an http(s) URL.');
    this.clientAuth = options.clientAuth;
    this.audiences = options.audiences ?? new Set([options.resourceId]);
    this.skew = options.clockSkewSeconds;
    this.maxDepth = options.maxDelegationDepth;
    this.cacheOptions = options.cache;
    this.timeoutMs = options.timeoutMs;
    this.maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.requiredClaims = options.requiredClaims ?? [];
    this.verifiableCnf = new Set([...(options.dpopBinding ? ['jkt'] : []), ...(options.certificateBinding ? ['x5t#S256'] : [])]);
    this.format = options.responseFormat ?? 'json';
    this.responseKeys = options.responseKeys;
    this.responseAlgorithms = [...(options.responseAlgorithms ?? DEFAULT_RESPONSE_ALGORITHMS)];
    this.dispatcher = options.dispatcher;
    this.now = options.now ?? Date.now;
    this.times = accessTokenTimes(this.skew, this.now);
    this.cache = options.cache.maxEntries > 0 ? new LRUCache({ max: options.cache.maxEntries }) : undefined;

    if (this.format === 'jwt' && !this.responseKeys) throw new TypeError('responseFormat "jwt" needs responseKeys (RFC 9701 §5: the RS verifies the signature).');
    // RFC 8725 §3.1-3.2: never let a response pick `none` or an HMAC keyed with public material.
    for (const alg of this.responseAlgorithms) if (!isAsymmetricAlgorithm(alg)) throw new TypeError(`responseAlgorithms: ${alg} is not an asymmetric JWS algorithm.`);

    const auth = options.clientAuth;
    this.headers = {
      'content-type': 'application/x-www-form-urlencoded',
      // RFC 9701 §4: ask for the signed form; RFC 7662 §2.2: JSON otherwise.
      accept: this.format === 'jwt' ? JWT_RESPONSE_MEDIA_TYPE : 'application/json',
    };
    if (auth.method === 'client_secret_basic') {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64 (a ':' in the id would split it otherwise).
      this.headers.authorization = `Basic ${Buffer.from(`${formEncode(auth.clientId)}:${formEncode(auth.clientSecret)}`).toString('base64')}`;
    } else if (auth.method === 'private_key_jwt') {
      if (!isAsymmetricAlgorithm(auth.alg)) throw new TypeError(`private_key_jwt: ${auth.alg} is not an asymmetric JWS algorithm.`);
      if (!isPrivateKey(auth.privateKey)) throw new TypeError('private_key_jwt needs a private key.');
    }
  }

  /**
   * Introspects an opaque access token and runs the resource-server checks on the answer.
   * Throws AgentwardError: ERR_TOKEN_INACTIVE, ERR_TOKEN_ISSUER, ERR_TOKEN_AUDIENCE,
   * ERR_TOKEN_EXPIRED, ERR_TOKEN_NOT_YET_VALID, ERR_TOKEN_ISSUED_IN_FUTURE,
   * ERR_TOKEN_CLAIM_MISSING, ERR_TOKEN_CLAIM_INVALID, ERR_TOKEN_BINDING_UNSUPPORTED,
   * ERR_DPOP_TOKEN_NOT_BOUND, ERR_DELEGATION_TOO_DEEP (the token), ERR_INTROSPECTION_UNAVAILABLE,
   * ERR_INTROSPECTION_RESPONSE_INVALID, ERR_KEYS_UNAVAILABLE (the AS).
   */
  async introspect(token: string): Promise<IntrospectedAccessToken> {
    // RFC 9700 §4.9: the token is a secret, so the cache and the flights are keyed by its hash.
    const hash = digest('sha256', token, 'base64url');
    const cached = this.cache?.get(hash);
    if (cached) {
      if (this.now() < cached.until) {
        this.cacheHits++;
        if (!cached.active) throw new AgentwardError('ERR_TOKEN_INACTIVE');
        return cached.value;
      }
      this.cache!.delete(hash);
    }
    let flight = this.inflight.get(hash);
    if (!flight) {
      flight = this.resolve(token, hash).finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, flight);
    }
    return flight;
  }

  /**
   * Called after every call to the endpoint with its duration and outcome (`ok`: an answer was
   * read, whatever it said; `error`: unreachable, timed out, or an HTTP status other than 200).
   * The composition root feeds the metrics with it; a listener must not throw.
   */
  onCall(listener: IntrospectionCallListener): void {
    this.callListeners.push(listener);
  }

  /** Forgets every cached answer (e.g. after the AS signals a mass revocation). */
  clear(): void {
    this.cache?.clear();
  }

  /** Drops every cached active answer `revoked` matches (docs/signals.md); returns how many. */
  purge(revoked: (token: VerifiedAccessToken) => boolean): number {
    if (!this.cache) return 0;
    let purged = 0;
    for (const [hash, entry] of this.cache.entries()) {
      if (entry.active && revoked(entry.value)) {
        this.cache.delete(hash);
        purged++;
      }
    }
    return purged;
  }

  private async resolve(token: string, hash: string): Promise<IntrospectedAccessToken> {
    const requestedAt = this.now();
    const answer = await this.timedPost(token);
    // RFC 7662 §2.3: a 401 means the AS does not accept our credentials; like any other
    // non-200 it says nothing about the token, so fail closed as unavailable (AT-N26).
    if (answer.statusCode !== 200) throw introspectionError('ERR_INTROSPECTION_UNAVAILABLE', `The introspection endpoint answered HTTP ${answer.statusCode}.`);
    const response = this.format === 'jwt' ? await this.verifySigned(answer, requestedAt) : parseJsonAnswer(answer);

    // RFC 7662 §2.2: `active` is a REQUIRED boolean. Anything but `true` denies; a non-boolean is
    // an AS we cannot understand, not an inactive token, so it is neither cached nor reported
    // to the client as invalid_token.
    if (response.active === false) {
      if (this.cache && this.cacheOptions.negativeTtlMs > 0) this.cache.set(hash, { active: false, until: this.now() + this.cacheOptions.negativeTtlMs });
      throw new AgentwardError('ERR_TOKEN_INACTIVE');
    }
    if (response.active !== true) throw introspectionError('ERR_INTROSPECTION_RESPONSE_INVALID', 'The introspection response has no boolean active member (RFC 7662 section 2.2).');

    const result = this.check(response, hash);
    const now = this.now();
    // RFC 7662 §4: "MUST NOT be cached beyond the time indicated" by `exp` (AT-N27); the revocation
    // window is bounded by maxTtlMs either way.
    const exp = response.exp as number | undefined;
    const until = Math.min(now + this.cacheOptions.maxTtlMs, exp === undefined ? Infinity : exp * 1000);
    if (this.cache && until > now) this.cache.set(hash, { active: true, value: result, until });
    return result;
  }

  /** The resource-server checks on an active response (RFC 7662 §4; RFC 9068 §4 order). */
  private check(claims: Record<string, unknown>, hash: string): IntrospectedAccessToken {
    const nowMs = this.now();

    // The AS is configured out of band, so a missing `iss` is the configured issuer; a present one
    // must match exactly (AT-N10).
    if (claims.iss !== undefined) {
      if (typeof claims.iss !== 'string') throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'The iss member must be a string.');
      if (claims.iss !== this.issuer) throw new AgentwardError('ERR_TOKEN_ISSUER');
    }

    checkTokenKind(claims);

    // RFC 9700 §2.3: the RS must know the token was meant for it. `aud` is optional in RFC 7662
    // §2.2, but without it nothing shows this resource was the intended audience, so an active
    // response without `aud` is refused (stricter than RFC 7662; AT-N11).
    const audiences = audienceList(claims.aud);
    if (!audiences.some((a) => this.audiences.has(a))) throw new AgentwardError('ERR_TOKEN_AUDIENCE');

    // The AS said active, but its clock or cache may lag: check time ourselves (RFC 7519 §4.1.4-6).
    const { exp } = checkTimeClaims(claims, this.times);

    for (const name of this.requiredClaims) {
      if (claims[name] === undefined || claims[name] === null) throw new AgentwardError('ERR_TOKEN_CLAIM_MISSING', `The introspection response has no ${name} member.`);
    }
    checkClaimTypes(claims);
    const jkt = boundKeyOf(claims.token_type, claims.cnf, this.verifiableCnf);
    const x5t = boundCertificateOf(claims.cnf);
    const delegation = flattenDelegation(claims.act, this.maxDepth);

    return Object.freeze({
      issuer: this.issuer,
      claims: Object.freeze(claims),
      subject: typeof claims.sub === 'string' ? claims.sub : null,
      clientId: typeof claims.client_id === 'string' ? claims.client_id : null,
      scopes: typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [],
      audiences,
      // Without `exp` the token has no known end; the result is good for as long as it may be
      // cached (maxTtlMs), so that is the expiry the rest of the pipeline sees.
      expiresAt: exp ?? Math.floor((nowMs + this.cacheOptions.maxTtlMs) / 1000),
      kid: undefined,
      jkt,
      x5t,
      delegation,
      hashPrefix: hash.slice(0, 16),
      format: 'opaque',
      binding: jkt === undefined ? 'bearer' : 'dpop',
    });
  }

  /** RFC 7662 §2.1: one POST, form-encoded, client-authenticated, within one deadline. */
  private async timedPost(token: string): Promise<RawAnswer> {
    if (this.callListeners.length === 0) return this.post(token);
    const started = performance.now();
    let outcome: 'ok' | 'error' = 'error';
    try {
      const answer = await this.post(token);
      if (answer.statusCode === 200) outcome = 'ok';
      return answer;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      for (const listener of this.callListeners) listener(seconds, outcome);
    }
  }

  private async post(token: string): Promise<RawAnswer> {
    const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
    const auth = this.clientAuth;
    if (auth.method === 'client_secret_post') {
      form.set('client_id', auth.clientId);
      form.set('client_secret', auth.clientSecret);
    } else if (auth.method === 'private_key_jwt') {
      form.set('client_assertion_type', JWT_BEARER_ASSERTION_TYPE);
      form.set('client_assertion', await this.assertion(auth));
    }

    // The outbound client follows no redirect on a POST: a 3xx is a non-200 and fails closed, so
    // the token and our credentials never go to a host we did not configure.
    const answer = await postForm(this.endpoint, form.toString(), {
      timeoutMs: this.timeoutMs,
      maxBytes: this.maxBytes,
      headers: this.headers,
      dispatcher: this.dispatcher,
      fail: (failure, _url, cause) => introspectionError('ERR_INTROSPECTION_UNAVAILABLE', unavailableDetail(failure), cause),
    });
    if (answer.status !== 200) return { statusCode: answer.status, mediaType: undefined, body: '' };
    return { statusCode: 200, mediaType: mediaTypeOf(answer.headers['content-type']), body: answer.body.toString('utf8') };
  }

  /** RFC 7523 §3 (with draft-ietf-oauth-rfc7523bis): a short-lived, single-use client assertion. */
  private async assertion(auth: Extract<IntrospectionClientAuth, { method: 'private_key_jwt' }>): Promise<string> {
    this.signingKey ??= isJwk(auth.privateKey) ? importJWK(auth.privateKey, auth.alg) : Promise.resolve(auth.privateKey);
    let key: CryptoKey | KeyObject | Uint8Array;
    try {
      key = await this.signingKey;
    } catch (err) {
      this.signingKey = undefined;
      throw introspectionError('ERR_INTROSPECTION_UNAVAILABLE', 'The client assertion key could not be imported.', err);
    }
    const nowS = Math.floor(this.now() / 1000);
    const kid = auth.kid ?? (isJwk(auth.privateKey) ? auth.privateKey.kid : undefined);
    try {
      return await new SignJWT({})
        .setProtectedHeader(kid === undefined ? { alg: auth.alg } : { alg: auth.alg, kid })
        .setIssuer(auth.clientId)
        .setSubject(auth.clientId)
        .setAudience(auth.audience === 'endpoint' ? this.endpoint.href : this.issuer)
        .setJti(randomUUID())
        .setIssuedAt(nowS)
        .setExpirationTime(nowS + ASSERTION_LIFETIME_S)
        .sign(key);
    } catch (err) {
      throw introspectionError('ERR_INTROSPECTION_UNAVAILABLE', 'The client assertion could not be signed.', err);
    }
  }

  /**
   * RFC 9701 §5: a JWS with `typ` token-introspection+jwt, signed by the AS, `iss` = the issuer,
   * `aud` = this resource server's client id, `iat` no older than our request; the members are
   * under `token_introspection`. Only the AS keys verify it (RFC 8725 §3.10).
   */
  private async verifySigned(answer: RawAnswer, requestedAt: number): Promise<Record<string, unknown>> {
    // Asked for a signed answer and got something else: do not fall back to unsigned JSON.
    if (answer.mediaType !== JWT_RESPONSE_MEDIA_TYPE) throw introspectionError('ERR_INTROSPECTION_UNAVAILABLE', `The introspection response is ${answer.mediaType ?? 'untyped'}, not ${JWT_RESPONSE_MEDIA_TYPE} (RFC 9701 section 5).`);
    const resolver = this.responseKeys!;
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(answer.body.trim(), resolver, {
        algorithms: this.responseAlgorithms,
        typ: JWT_RESPONSE_TYP,
        issuer: this.issuer,
        audience: this.clientAuth.clientId,
        requiredClaims: ['iat'],
        clockTolerance: this.skew,
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      // The key resolver's own coded errors: an unreachable key set stays "keys unavailable".
      if (err instanceof AgentwardError && err.status >= 500) throw err;
      throw introspectionError('ERR_INTROSPECTION_RESPONSE_INVALID', signedFailure(err), err);
    }
    // A fresh answer to this request, not a replay of an older signed one.
    const iat = payload.iat as number;
    if (iat < Math.floor(requestedAt / 1000) - this.skew || iat > this.now() / 1000 + this.skew) {
      throw introspectionError('ERR_INTROSPECTION_RESPONSE_INVALID', 'The signed introspection response was not issued for this request (iat out of range).');
    }
    const members = payload.token_introspection;
    if (!isObject(members)) throw introspectionError('ERR_INTROSPECTION_RESPONSE_INVALID', 'The signed introspection response has no token_introspection object (RFC 9701 section 5).');
    return members;
  }
}

// ---------------------------------------------------------------- helpers

function parseJsonAnswer(answer: RawAnswer): Record<string, unknown> {
  if (answer.mediaType !== 'application/json') throw introspectionError('ERR_INTROSPECTION_UNAVAILABLE', `The introspection response is ${answer.mediaType ?? 'untyped'}, not application/json (RFC 7662 section 2.2).`);
  let value: unknown;
  try {
    value = JSON.parse(answer.body);
  } catch (err) {
    throw introspectionError('ERR_INTROSPECTION_UNAVAILABLE', 'The introspection response is not JSON.', err);
  }
  if (!isObject(value)) throw introspectionError('ERR_INTROSPECTION_RESPONSE_INVALID', 'The introspection response is not a JSON object (RFC 7662 section 2.2).');
  return value;
}

function signedFailure(err: unknown): string {
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'The signature of the introspection response is invalid.';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'The introspection response is signed with an algorithm that is not allowed.';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `The signed introspection response has a wrong ${err.claim} (RFC 9701 section 5).`;
  if (err instanceof joseErrors.JWTExpired) return 'The signed introspection response has expired.';
  return 'The signed introspection response is malformed or its key is unknown.';
}

/**
 * What the answer says the token is, in the members servers use for it (docs/issuers.md):
 * `token_use` (Ory Hydra: access_token | refresh_token; Cognito's vocabulary: access | id),
 * `token_type` when it names a token kind instead of an RFC 6749 §7.1 type (refresh_token, the
 * RFC 8693 §3 URIs), and Keycloak's `typ` (Bearer | Refresh | Offline | ID | Logout). Most servers
 * introspect every token they issue, so without this a refresh token (Hydra: 30 days) or an ID
 * token presented as a Bearer token would be "active".
 */
function checkTokenKind(claims: Record<string, unknown>): void {
  const refuse = (member: string, value: string) =>
    new AgentwardError('ERR_TOKEN_NOT_ACCESS_TOKEN', `The introspection answer says ${member} "${value}": the token is not an access token.`);
  const use = claims.token_use;
  if (use !== undefined) {
    if (typeof use !== 'string') throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'The token_use member must be a string.');
    if (use !== 'access_token' && use !== 'access') throw refuse('token_use', SHOWABLE_VALUE.test(use) ? use : 'something else');
  }
  if (typeof claims.token_type === 'string' && NOT_ACCESS_TOKEN_TYPES.has(claims.token_type.toLowerCase())) throw refuse('token_type', claims.token_type);
  if (typeof claims.typ === 'string' && KEYCLOAK_NOT_ACCESS_TYP.has(claims.typ.toLowerCase())) throw refuse('typ', claims.typ);
}

/**
 * RFC 9449 §6.2: the DPoP key the token is bound to, if any. `cnf.jkt` makes the token DPoP-bound
 * even when `token_type` says Bearer (DP-N23); `token_type` DPoP without `cnf.jkt` has no key to
 * check (DP-N20). Unknown token types are refused, never downgraded to bearer (AT-N24).
 */
function boundKeyOf(tokenType: unknown, cnf: unknown, verifiable: ReadonlySet<string>): string | undefined {
  if (tokenType !== undefined && typeof tokenType !== 'string') throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'The token_type member must be a string.');
  // RFC 6749 §5.1: token type names are case-insensitive.
  const type = tokenType?.toLowerCase();
  if (type !== undefined && type !== 'bearer' && type !== 'dpop') {
    throw new AgentwardError('ERR_TOKEN_BINDING_UNSUPPORTED', 'The token type is not one this resource can verify (Bearer or DPoP).');
  }
  const jkt = dpopKeyOf(cnf, verifiable);
  if (type === 'dpop' && jkt === undefined) throw new AgentwardError('ERR_DPOP_TOKEN_NOT_BOUND', 'token_type is DPoP but the response has no cnf.jkt (RFC 9449 section 6.2).');
  return jkt;
}

function isJwk(key: CryptoKey | KeyObject | JWK): key is JWK {
  return typeof (key as JWK).kty === 'string';
}

function isPrivateKey(key: CryptoKey | KeyObject | JWK): boolean {
  if (isJwk(key)) return typeof key.d === 'string' || typeof key.priv === 'string';
  return key.type === 'private';
}

/** The media type of a Content-Type value, lower-cased, without parameters. */
function mediaTypeOf(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  return value.split(';', 1)[0]!.trim().toLowerCase() || undefined;
}

/** Why the endpoint could not answer, in words safe to log (never the token or the answer). */
function unavailableDetail(failure: TransportFailure): string {
  switch (failure.kind) {
    case 'timeout':
      return `The introspection endpoint did not answer within ${failure.timeoutMs}ms.`;
    case 'unreachable':
      return 'The introspection endpoint could not be reached.';
    case 'too-large':
      return `The introspection response is larger than ${failure.maxBytes} bytes.`;
    case 'read-failed':
      return 'Reading the introspection response failed.';
  }
}

/** application/x-www-form-urlencoded for one value (RFC 6749 Appendix B). */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

/** An error of this module, with the cause kept for logs. */
function introspectionError(code: ErrorCode, detail?: string, cause?: unknown): AgentwardError {
  return new AgentwardError(code, detail, cause === undefined ? {} : { cause });
}

// ---------------------------------------------------------------- builder

/** An issuer's `introspection` section as this module reads it (config/schema.ts describes the file). */
export interface IntrospectionSettings {
  endpoint: string;
  clientId: string;
  auth: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  /** private_key_jwt: the assertion's algorithm; default the key's `alg`. */
  algorithm?: string | undefined;
  format: 'json' | 'jwt';
  cacheTtl: string;
  negativeCacheTtl: string;
  cacheSize: number;
}

/** What the introspector needs from its surroundings besides the section. */
export interface IntrospectionContext {
  issuer: string;
  /** Accepted audiences (default: the resource identifier). */
  audiences: ReadonlySet<string>;
  resourceId: string;
  maxDelegationDepth: number;
  dpopBinding: boolean;
  certificateBinding: boolean;
  /** One deadline for the call (`oauth.keys.timeout`). */
  timeoutMs: number;
  /** The issuer's keys, for RFC 9701 signed answers. */
  responseKeys: IntrospectionKeyResolver;
  /** A resolved secret of the section (`clientSecret`, `privateKey`) by its name. */
  secret: (name: 'clientSecret' | 'privateKey') => string;
}

/** Builds RFC 7662 introspection for the one issuer that has it (config/load.ts allows one). */
export function buildIntrospector(settings: IntrospectionSettings, context: IntrospectionContext, services: Pick<Services, 'now' | 'clockSkewSeconds' | 'dispatcher'>): TokenIntrospector {
  let clientAuth: IntrospectionClientAuth;
  if (settings.auth === 'private_key_jwt') {
    const privateKey = JSON.parse(context.secret('privateKey')) as JWK;
    clientAuth = { method: 'private_key_jwt', clientId: settings.clientId, privateKey, alg: settings.algorithm ?? privateKey.alg! };
  } else {
    clientAuth = { method: settings.auth, clientId: settings.clientId, clientSecret: context.secret('clientSecret') };
  }
  return new TokenIntrospector({
    issuer: context.issuer,
    endpoint: settings.endpoint,
    clientAuth,
    resourceId: context.resourceId,
    audiences: context.audiences,
    clockSkewSeconds: services.clockSkewSeconds,
    maxDelegationDepth: context.maxDelegationDepth,
    cache: { maxEntries: settings.cacheSize, maxTtlMs: durationMs(settings.cacheTtl), negativeTtlMs: durationMs(settings.negativeCacheTtl) },
    timeoutMs: context.timeoutMs,
    dpopBinding: context.dpopBinding,
    certificateBinding: context.certificateBinding,
    responseFormat: settings.format,
    responseKeys: context.responseKeys,
    ...(services.dispatcher ? { dispatcher: services.dispatcher } : {}),
    now: services.now,
  });
}
