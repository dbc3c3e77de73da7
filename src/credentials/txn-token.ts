/**
 * Transaction Tokens (draft-ietf-oauth-transaction-tokens-11; cases TXN-Nxx in docs/negative-cases.md). A Txn-Token
 * carries the user, the transaction and its immutable context through the call chain inside one
 * trust domain. It is neither an authentication credential (§13.12) nor an OAuth access token
 * (§13.13): this module only says whether the token is genuine, current and meant for this trust
 * domain; what it allows is policy's business (TXN-N10..N13) and its binding to the caller is the
 * WPT `tth` claim's (TXN-N14).
 *
 * Checks run in one fixed order, each failure with its own code: cardinality (§12.1), compact JWS,
 * `typ` (§9.1, RFC 8725 §3.11), algorithm allow-list (RFC 8725 §3.1), signature with a key of the
 * trust domain's TTS (§12.2 step 1), `aud` (step 2), `exp` (step 3), then the claims of §9.2 with
 * their types, `iat`, and the lifetime bound (§6, §13.1: minutes or less).
 *
 * The JWS steps are src/jose/verify.ts's, run with this module's profile and its own codes; the
 * claim checks shared with access tokens (claims.ts) report with the Txn-Token codes too.
 *
 * The token itself never appears in an error message or in the result; `hashPrefix` identifies it
 * in audit records (§15.2: never log it verbatim).
 */
import { hash as digest, type KeyObject, type webcrypto } from 'node:crypto';
import type { FlattenedJWSInput, JWK, JWSHeaderParameters } from 'jose';
import { isAsymmetricAlgorithm } from '../jose/algorithms.ts';
import { deepFreeze } from '../jose/segments.ts';
import { explicitTyp, notNumericDate, requireClaims, verifyCompactJws, type Claims, type Failure, type JwsFailures, type JwsProfile } from '../jose/verify.ts';
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { durationMs } from '../duration.ts';
import { IssuerKeys, keySetOptions } from '../keys/issuer-keys.ts';
import type { Services } from '../services.ts';
import { audienceList, checkClaimTypes, isObject, numericClaim, type ClaimErrors } from './claims.ts';

/** Failure codes of Txn-Token verification (each in src/errors.ts). */
export type TxnTokenErrorCode = Extract<ErrorCode, `ERR_TXN_TOKEN_${string}`>;

/** What `input.txn` is built from (docs/policy-input.md). Frozen, deeply. */
export interface VerifiedTxnToken {
  /** §9.2 `txn`: the transaction identifier (RFC 8417 §2.2). */
  txn: string;
  /** §9.2 `sub`: the subject, unique within the trust domain. */
  sub: string;
  /** §9.2 `scope` split on spaces (RFC 8693 §4.2 format). */
  scopes: string[];
  /** §9.2 `tctx`: immutable transaction context, or null when absent. */
  tctx: Readonly<Record<string, unknown>> | null;
  /** §9.2 `rctx`: request environment, or null when absent. */
  rctx: Readonly<Record<string, unknown>> | null;
  /** §9.2 `req_wl`: the workload that requested the token. */
  reqWl: string;
  /** §9.2 `iss` (optional), or null. */
  iss: string | null;
  /** `iat`, seconds since the epoch. */
  issuedAt: number;
  /** `exp`, seconds since the epoch. */
  expiresAt: number;
  /** The claims not listed above (and not `aud`, which equals the trust domain). */
  claims: Readonly<Record<string, unknown>>;
  /** First 16 characters of `txnTokenHash(token)`: an audit identifier that reveals nothing. */
  hashPrefix: string;
}

/** Selects the TTS key for a token; `IssuerKeys.getKey` fits (bind it to its instance). */
export type TxnKeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<webcrypto.CryptoKey | KeyObject | JWK | Uint8Array>;

export interface TxnTokenVerifierOptions {
  /** The trust domain this workload belongs to; `aud` must equal it (§9.2, §12.2 step 2). */
  trustDomain: string;
  /** Keys of the trust domain's single logical TTS (§3, §10). Header key material is never used (RFC 8725 §3.10). */
  keys: TxnKeyResolver;
  /** Asymmetric JWS algorithms the TTS may use (RFC 8725 §3.1); `none` and HMAC are refused. */
  algorithms: readonly string[];
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. */
  clockSkewSeconds: number;
  /** Longest accepted `exp - iat`, in seconds: Txn-Tokens live minutes or less (§6, §13.1). */
  maxLifetimeSeconds: number;
  /** Clock in milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
}

/**
 * The JWS failures, each with the detail it has always had. The form is `segments`: the signature
 * may be empty so that an unsecured JWS (`alg: none`) is refused for its algorithm.
 */
const FAILURES: JwsFailures = {
  malformed: { code: 'ERR_TXN_TOKEN_MALFORMED', detail: 'The Txn-Token must be a compact JWS with three base64url parts.' },
  algorithm: { code: 'ERR_TXN_TOKEN_ALGORITHM', detail: 'The Txn-Token signing algorithm is not allowed.' },
  // Any resolver failure but an outage (which stays the resolver's 5xx): fail closed, not "invalid".
  keyUnknown: { code: 'ERR_TXN_TOKEN_KEY_UNKNOWN', detail: "No key of the trust domain's Txn-Token service matches the token." },
  signature: { code: 'ERR_TXN_TOKEN_SIGNATURE', detail: 'The Txn-Token signature is invalid.' },
  // Unknown `crit` (RFC 7515 §4.1.11), a key unusable with the algorithm.
  unverifiable: { code: 'ERR_TXN_TOKEN_MALFORMED', detail: 'The Txn-Token could not be verified as a JWS.' },
};

/** Claim checks shared with access tokens (sub and scope strings, amr, authorization_details), with Txn-Token codes. */
const TXN_CLAIMS: ClaimErrors = { noun: 'The Txn-Token', invalid: 'ERR_TXN_TOKEN_CLAIM_INVALID', audience: 'ERR_TXN_TOKEN_AUDIENCE' };

const claimMissing = (name: string): Failure => ({ code: 'ERR_TXN_TOKEN_CLAIM_MISSING', detail: `The Txn-Token has no ${name} claim (draft-ietf-oauth-transaction-tokens section 9.2).` });

/** Claims §9.2 requires, in the order they are reported missing. */
const REQUIRED_CLAIMS = ['iat', 'aud', 'exp', 'txn', 'sub', 'scope', 'req_wl'] as const;

/** Claims surfaced as fields of the result, hence left out of `claims`. */
const EXTRACTED_CLAIMS: ReadonlySet<string> = new Set(['txn', 'sub', 'scope', 'tctx', 'rctx', 'req_wl', 'iss', 'iat', 'exp', 'aud']);

/**
 * base64url(SHA-256(token)) over the token exactly as received (the field value without its
 * surrounding whitespace, RFC 9110 §5.5): the WPT `tth` claim binds it (wpt-02 §2; spec H.3).
 */
export function txnTokenHash(token: string): string {
  return digest('sha256', token, 'base64url');
}

export class TxnTokenVerifier {
  private readonly trustDomain: string;
  private readonly skew: number;
  private readonly maxLifetime: number;
  private readonly now: () => number;
  private readonly profile: JwsProfile<undefined>;

  /** Throws TypeError on options that would loosen verification; config checking should catch these first. */
  constructor(options: TxnTokenVerifierOptions) {
    if (options.trustDomain === '') throw new TypeError('trustDomain must not be empty.');
    if (options.algorithms.length === 0) throw new TypeError('algorithms must list at least one algorithm.');
    const weak = options.algorithms.filter((alg) => !isAsymmetricAlgorithm(alg));
    if (weak.length > 0) throw new TypeError(`algorithms must be asymmetric JWS algorithms; not allowed: ${weak.join(', ')}.`);
    if (!(options.clockSkewSeconds >= 0)) throw new TypeError('clockSkewSeconds must be zero or more.');
    if (!(options.maxLifetimeSeconds > 0)) throw new TypeError('maxLifetimeSeconds must be more than zero.');
    this.trustDomain = options.trustDomain;
    this.skew = options.clockSkewSeconds;
    this.maxLifetime = options.maxLifetimeSeconds;
    this.now = options.now ?? Date.now;
    this.profile = {
      noun: 'The Txn-Token',
      form: 'segments',
      claimsFirst: true,
      // §9.1: typ MUST be txntoken+jwt; explicit typing keeps access tokens, ID tokens, WITs and
      // older-draft tokens (`txn_token`, `N_A`) out (RFC 8725 §3.11, TXN-N04).
      typ: explicitTyp({
        accepted: ['txntoken+jwt'],
        missing: { code: 'ERR_TXN_TOKEN_TYPE', detail: 'The Txn-Token has no typ header; it must be txntoken+jwt (draft-ietf-oauth-transaction-tokens section 9.1).' },
        wrong: { code: 'ERR_TXN_TOKEN_TYPE', detail: 'The Txn-Token typ must be txntoken+jwt (draft-ietf-oauth-transaction-tokens section 9.1).' },
      }),
      // RFC 8725 §3.1: the allow-list, never the token, picks the algorithm (TXN-N05).
      algorithms: [...options.algorithms],
      // §12.2 step 1: a signature by a key of this trust domain's TTS (TXN-N06).
      keys: options.keys,
      failures: FAILURES,
      afterSignature: (claims) => this.checkAudience(claims),
      // §12.2 step 3, with a small leeway (RFC 8725 §3.1) (TXN-N08). `iat` comes with the lifetime, below.
      time: {
        skew: this.skew,
        now: this.now,
        invalid: (name) => notNumericDate(TXN_CLAIMS.invalid, name),
        exp: { expired: { code: 'ERR_TXN_TOKEN_EXPIRED', detail: 'The Txn-Token has expired.' } },
        nbf: { future: { code: 'ERR_TXN_TOKEN_NOT_YET_VALID', detail: 'The Txn-Token is not valid yet.' } },
      },
    };
  }

  /**
   * Verifies the `Txn-Token` header field values of one request, as received (one entry per field
   * line). Throws AgentwardError with a specific code; a key set that cannot be loaded surfaces as
   * the resolver's own 5xx AgentwardError (fail closed, not "invalid").
   */
  async verify(headerValues: readonly string[]): Promise<VerifiedTxnToken> {
    // §12.1: the header "MUST be exactly one Txn-Token". A comma joins two field lines (RFC 9110
    // §5.3) and never occurs in a compact JWS, so it means two tokens (TXN-N02).
    if (headerValues.length === 0) throw new AgentwardError('ERR_TXN_TOKEN_MISSING', 'The request has no Txn-Token header.');
    if (headerValues.length > 1) throw new AgentwardError('ERR_TXN_TOKEN_MULTIPLE', 'Send exactly one Txn-Token header.');
    const token = headerValues[0]!.trim();
    if (token.includes(',')) throw new AgentwardError('ERR_TXN_TOKEN_MULTIPLE', 'The Txn-Token header must carry exactly one token.');
    if (token === '') throw new AgentwardError('ERR_TXN_TOKEN_MALFORMED', 'The Txn-Token header is empty.');
    const { claims, exp } = await verifyCompactJws(token, this.profile, undefined);

    // §9.2: the claims every Txn-Token carries (TXN-N09), then their types.
    requireClaims(claims, REQUIRED_CLAIMS, claimMissing);
    for (const name of ['txn', 'req_wl', 'iss'] as const) {
      if (claims[name] !== undefined && typeof claims[name] !== 'string') throw new AgentwardError('ERR_TXN_TOKEN_CLAIM_INVALID', `The Txn-Token ${name} claim must be a string.`);
    }
    checkClaimTypes(claims, TXN_CLAIMS);
    for (const name of ['tctx', 'rctx'] as const) {
      if (claims[name] !== undefined && !isObject(claims[name])) throw new AgentwardError('ERR_TXN_TOKEN_CLAIM_INVALID', `The Txn-Token ${name} claim must be a JSON object.`);
    }
    const scopes = (claims.scope as string).split(' ').filter(Boolean);
    if (scopes.length === 0) throw new AgentwardError('ERR_TXN_TOKEN_CLAIM_INVALID', 'The Txn-Token scope claim is empty.');

    // §6, §13.1: short-lived. A token issued in the future or valid for longer than configured is
    // refused, so a leaked or mis-issued token cannot be replayed for long.
    const iat = numericClaim(claims, 'iat', TXN_CLAIMS)!;
    if (iat > this.now() / 1000 + this.skew) throw new AgentwardError('ERR_TXN_TOKEN_ISSUED_IN_FUTURE', 'The Txn-Token was issued in the future.');
    if (exp! - iat > this.maxLifetime) throw new AgentwardError('ERR_TXN_TOKEN_LIFETIME', `The Txn-Token is valid for longer than ${this.maxLifetime} seconds.`);

    const rest: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(claims)) if (!EXTRACTED_CLAIMS.has(name)) rest[name] = value;
    return deepFreeze({
      txn: claims.txn as string,
      sub: claims.sub as string,
      scopes,
      tctx: (claims.tctx as Record<string, unknown> | undefined) ?? null,
      rctx: (claims.rctx as Record<string, unknown> | undefined) ?? null,
      reqWl: claims.req_wl as string,
      iss: (claims.iss as string | undefined) ?? null,
      issuedAt: iat,
      expiresAt: exp!,
      claims: rest,
      hashPrefix: txnTokenHash(token).slice(0, 16),
    });
  }

  /**
   * §12.2 step 2: the token "MUST NOT be accepted outside the Trust Domain" named in aud (TXN-N07);
   * then `exp`, which step 3 needs, present.
   */
  private checkAudience(claims: Claims): void {
    requireClaims(claims, ['aud'], claimMissing);
    if (!audienceList(claims.aud, 'aud', TXN_CLAIMS).includes(this.trustDomain)) throw new AgentwardError('ERR_TXN_TOKEN_AUDIENCE', 'The Txn-Token was not issued for this trust domain.');
    requireClaims(claims, ['exp'], claimMissing);
  }
}

/** The `txnTokens` section as this module reads it (config/schema.ts describes the file). */
export interface TxnTokenSettings {
  trustDomain: string;
  issuer?: string | undefined;
  jwksUri?: string | undefined;
  algorithms: readonly string[];
  maxLifetime: string;
  mode: 'optional' | 'required';
}

/** What the pipeline checks Txn-Tokens with, and the Txn-Token service's key set (started and shown in /readyz). */
export interface TxnTokenCheck {
  verifier: TxnTokenVerifier;
  required: boolean;
  keys: IssuerKeys;
}

/** Builds the Txn-Token check: the trust domain's Txn-Token service keys, fetched and refreshed like an issuer's. */
export function buildTxnTokens(settings: TxnTokenSettings, services: Services): TxnTokenCheck {
  const keys = new IssuerKeys({ issuer: settings.issuer ?? settings.trustDomain, jwksUri: settings.jwksUri, discovery: 'auto' }, keySetOptions(services));
  const verifier = new TxnTokenVerifier({
    trustDomain: settings.trustDomain,
    keys: (header, token) => keys.getKey(header, token),
    algorithms: settings.algorithms,
    clockSkewSeconds: services.clockSkewSeconds,
    maxLifetimeSeconds: durationMs(settings.maxLifetime) / 1000,
    now: services.now,
  });
  return { verifier, required: settings.mode === 'required', keys };
}
