/**
 * The one compact-JWS verifier. Every JWT-shaped credential (access tokens, RFC 9068; Txn-Tokens;
 * JWT-SVIDs; WIMSE WITs and WPTs; DPoP proofs, RFC 9449) goes through `verifyCompactJws`, in this
 * order:
 *
 *   form → header (and, where the claims route the token, payload) → `typ` → route → algorithm
 *   → locateKey → key → signature → payload → afterSignature → time
 *
 * Explicit typing comes first (RFC 8725 §3.11) so that one kind of token is never judged by the
 * rules of another; the algorithm is checked against an allow-list before any key is looked at
 * (RFC 8725 §3.1); the key comes only from the credential's own key source, never from the token
 * (RFC 8725 §3.10); claims are trusted only once the signature holds, except for routing (the
 * issuer or trust domain whose keys apply, which the signature then confirms).
 *
 * A credential describes itself in a `JwsProfile`: its `typ` rule, algorithms, key source, the
 * checks it must run at fixed points (`route`, `locateKey`, `afterSignature`), its time rule and
 * its own failure codes and details. Nothing here knows a credential by name, and no error text is
 * ever rewritten: each failure is raised with the code and detail its profile gives.
 *
 * The signature is checked in exactly one place, `signedPayload`.
 *
 * Adding a JWT-shaped credential: write its profile (typ, algorithms, key source, failures, time
 * rule, and the hooks its specification orders before the signature), call `verifyCompactJws`, then
 * check what is particular to it on the verified claims.
 */
import type { KeyObject } from 'node:crypto';
import { compactVerify, errors as joseErrors, type CryptoKey, type FlattenedJWSInput, type JWK, type JWSHeaderParameters } from 'jose';
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { decodeJsonSegment, normalizeTyp, parseJsonObject } from './segments.ts';
import { checkJwsSignature } from './signature.ts';

/** JWT claims (RFC 7519 §4), as decoded. */
export type Claims = Record<string, unknown>;

/**
 * How one failure is reported: the credential's own code, alone (the client sees the code's
 * title) or with the detail it has always said.
 */
export type Failure = ErrorCode | { readonly code: ErrorCode; readonly detail: string };

/** A key `compactVerify` accepts. */
export type JwsKey = CryptoKey | KeyObject | JWK | Uint8Array;

/** Selects the key for a token from a key set (`IssuerKeys.getKey`, a trust bundle's resolver). */
export type KeyResolver = (header: JWSHeaderParameters, jws: FlattenedJWSInput) => Promise<JwsKey> | JwsKey;

/** Where the verification key comes from: one key (a WPT's `cnf.jwk`), or a resolver. */
export type KeySource = JwsKey | KeyResolver;

/**
 * How strictly the three segments are checked before decoding (RFC 7515 §7.1):
 * - `parts`: three dot-separated parts; the header and payload are judged when decoded, the
 *   signature by jose (access tokens, DPoP proofs);
 * - `segments`: three base64url segments, the signature possibly empty, so that an unsecured JWS
 *   (`alg: none`) is refused for its algorithm rather than its shape (Txn-Tokens, JWT-SVIDs);
 * - `signed`: three non-empty base64url segments (WITs, WPTs).
 */
export type JwsForm = 'parts' | 'segments' | 'signed';

const FORMS: Readonly<Record<Exclude<JwsForm, 'parts'>, RegExp>> = {
  segments: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/,
  signed: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/,
};

/** Whether `token` has the form (`parts`: any string; the split is checked when read). */
export function hasJwsForm(token: unknown, form: JwsForm): token is string {
  return typeof token === 'string' && (form === 'parts' || FORMS[form].test(token));
}

/** The codes (and details) of the steps every credential shares. */
export interface JwsFailures {
  /** Not a compact JWS; also the code of a header or payload that is not base64url JSON. */
  readonly malformed: Failure;
  /** Five parts: a JWE (RFC 7516 §7.1), where the credential says so apart from malformed. */
  readonly encrypted?: Failure;
  /** `alg` missing or not in the allow-list (RFC 8725 §3.1). */
  readonly algorithm: Failure;
  /** The resolver knows no key for the token. Default: `unverifiable`. */
  readonly keyUnknown?: Failure;
  /** The resolver failed otherwise (a key it could not import). Default: `keyUnknown`. */
  readonly keyUnusable?: Failure;
  /** The signature does not verify. */
  readonly signature: Failure;
  /** With `everyMatchingKey`: no matching key verifies the signature. Default: `signature`. */
  readonly signatureEveryKey?: Failure;
  /** jose refused the JWS for another reason: an unknown `crit` (RFC 7515 §4.1.11), a key unusable with the algorithm. */
  readonly unverifiable: Failure;
}

/**
 * RFC 7519 §4.1.4-6 checks on a verified payload (or an introspection answer, RFC 7662 §2.2), with
 * `skew` seconds of leeway. A claim left out is not looked at.
 */
export interface TimeRule {
  readonly skew: number;
  /** Clock in milliseconds since the epoch. */
  readonly now: () => number;
  /** A present `exp`, `nbf` or `iat` that is not a NumericDate (RFC 7519 §2). */
  readonly invalid: (name: 'exp' | 'nbf' | 'iat') => Failure;
  readonly exp?: {
    /** Absent `exp`; without it, `exp` is optional. */
    readonly missing?: Failure;
    readonly expired: Failure;
    /**
     * RFC 7519 §4.1.4: expired "on or after" `exp` (plus skew). False (default): only after it,
     * as the access-token and Txn-Token verifiers have always counted.
     */
    readonly onOrAfter?: boolean;
  };
  /** Without `future`, only the type of `nbf` is checked (a WIT's `nbf` is checked on every use). */
  readonly nbf?: { readonly future?: Failure };
  readonly iat?: { readonly future: Failure };
}

/** The NumericDate claims a time check read, each undefined when absent. */
export interface TimeClaims {
  readonly exp: number | undefined;
  readonly nbf: number | undefined;
  readonly iat: number | undefined;
}

/** What a hook decides for one token, where the profile leaves it open. */
export interface KeyChoice {
  /** The allow-list for this token (per issuer, per trust domain). */
  readonly algorithms?: readonly string[];
  readonly keys?: KeySource;
}

/**
 * One credential's rules for the shared steps. `C` is what its hooks share for one token (the
 * issuer or trust domain a hook picked, the request a proof is bound to): created by the caller
 * for each call, read by it after.
 */
export interface JwsProfile<C> {
  /** How details name the credential: "The Txn-Token" gives "The Txn-Token header is not a JSON object." */
  readonly noun: string;
  readonly form: JwsForm;
  /** Decode the payload with the header, before `typ` (it routes the token), rather than after the signature. */
  readonly claimsFirst: boolean;
  /** The `typ` check (RFC 8725 §3.11); `explicitTyp` builds the usual one. */
  readonly typ: (jws: CompactJws) => void;
  /** The allow-list, unless `route` picks it per token. */
  readonly algorithms?: readonly string[];
  /** The key source, unless `route` or `locateKey` picks it per token. */
  readonly keys?: KeySource;
  /** When the resolver finds several keys (no `kid`), try each: all are trusted for this token. */
  readonly everyMatchingKey?: boolean;
  readonly failures: JwsFailures;
  readonly time?: TimeRule;
  /** After `typ`, before the algorithm: the unverified claims pick the issuer or trust domain. */
  readonly route?: (jws: CompactJws, context: C) => KeyChoice;
  /** After the algorithm, before the key is resolved: checks that need it settled, and the key source. */
  readonly locateKey?: (jws: CompactJws, context: C) => KeyChoice;
  /** On the verified claims, before the time checks. */
  readonly afterSignature?: (claims: Claims, jws: CompactJws, context: C) => void;
}

/** A compact JWS whose shape and header have been read; nothing about it is verified yet. */
export class CompactJws {
  readonly token: string;
  /** The three segments as received, which is what resolvers are given (jose's flattened form). */
  readonly segments: FlattenedJWSInput & { protected: string; payload: string };
  readonly header: JWSHeaderParameters;
  private readonly code: ErrorCode;
  private readonly noun: string;
  private claims: Claims | undefined;

  constructor(token: string, segments: [string, string, string], code: ErrorCode, noun: string) {
    this.token = token;
    this.segments = { protected: segments[0], payload: segments[1], signature: segments[2] };
    this.code = code;
    this.noun = noun;
    this.header = decodeJsonSegment(segments[0], code, `${noun} header`) as JWSHeaderParameters;
  }

  /** The payload as sent, NOT verified: for routing only (the issuer, the trust domain). Decoded once. */
  unverifiedClaims(): Claims {
    this.claims ??= decodeJsonSegment(this.segments.payload, this.code, `${this.noun} payload`);
    return this.claims;
  }
}

/** The verified header and claims, and the NumericDates the time rule read. */
export interface VerifiedJws extends TimeClaims {
  readonly header: JWSHeaderParameters;
  readonly claims: Claims;
}

/**
 * Verifies a compact JWS by `profile`, running its hooks with `context`. Throws AgentwardError with
 * the profile's codes; a key source's own 5xx AgentwardError (a key set that cannot be loaded)
 * passes unchanged, so an outage fails closed as unavailable, not as an invalid token.
 */
export async function verifyCompactJws<C>(token: string, profile: JwsProfile<C>, context: C): Promise<VerifiedJws> {
  const jws = readCompactJws(token, profile);
  profile.typ(jws);
  const routed = profile.route?.(jws, context);
  const alg = allowedAlgorithm(jws.header, routed?.algorithms ?? profile.algorithms ?? [], profile.failures);
  const located = profile.locateKey?.(jws, context);
  const keys = located?.keys ?? routed?.keys ?? profile.keys;
  if (keys === undefined) throw new TypeError(`${profile.noun}: the profile names no key source.`);
  const payload = await verifySignature(jws, keys, alg, profile);
  // With claimsFirst the signed payload is the segment decoded before (RFC 7515 §7.1); otherwise
  // the claims come from the verified bytes only.
  const claims = profile.claimsFirst ? jws.unverifiedClaims() : parseJsonObject(Buffer.from(payload).toString('utf8'), codeOf(profile.failures.malformed), `${profile.noun} payload`);
  profile.afterSignature?.(claims, jws, context);
  const times = profile.time ? checkTimeClaims(claims, profile.time) : NO_TIMES;
  return { header: jws.header, claims, exp: times.exp, nbf: times.nbf, iat: times.iat };
}

const NO_TIMES: TimeClaims = Object.freeze({ exp: undefined, nbf: undefined, iat: undefined });

/** RFC 7515 §7.1: the form, then the header (and the payload, where it routes the token). */
function readCompactJws(token: string, profile: JwsProfile<never>): CompactJws {
  const { malformed, encrypted } = profile.failures;
  if (!hasJwsForm(token, profile.form)) throw fail(malformed);
  const parts = token.split('.');
  if (parts.length === 5 && encrypted !== undefined) throw fail(encrypted);
  if (parts.length !== 3) throw fail(malformed);
  const jws = new CompactJws(token, parts as [string, string, string], codeOf(malformed), profile.noun);
  if (profile.claimsFirst) jws.unverifiedClaims();
  return jws;
}

/** RFC 8725 §3.1: the allow-list, never the token, decides the algorithm. */
function allowedAlgorithm(header: JWSHeaderParameters, algorithms: readonly string[], failures: JwsFailures): string {
  const { alg } = header;
  if (typeof alg !== 'string' || !algorithms.includes(alg)) throw fail(failures.algorithm);
  return alg;
}

/** Resolves the key (RFC 8725 §3.10: only from the profile's source) and checks the signature with it. */
async function verifySignature(jws: CompactJws, source: KeySource, alg: string, profile: JwsProfile<never>): Promise<Uint8Array> {
  const { failures } = profile;
  let key: JwsKey;
  try {
    key = typeof source === 'function' ? await source(jws.header, jws.segments) : source;
  } catch (err) {
    if (err instanceof joseErrors.JWKSMultipleMatchingKeys && profile.everyMatchingKey) return verifyWithEach(jws, err, alg, failures);
    throw resolverFailure(err, failures);
  }
  const result = await signedPayload(jws, key, alg, failures);
  if (result instanceof joseErrors.JWSSignatureVerificationFailed) throw fail(failures.signature, result);
  return result;
}

/**
 * Several keys of the source match a token without `kid` (allowed where the profile says so): all
 * are trusted for it, so any of them may verify it. jose imports them one by one.
 */
async function verifyWithEach(jws: CompactJws, candidates: joseErrors.JWKSMultipleMatchingKeys, alg: string, failures: JwsFailures): Promise<Uint8Array> {
  for await (const key of candidates) {
    const result = await signedPayload(jws, key, alg, failures);
    if (!(result instanceof joseErrors.JWSSignatureVerificationFailed)) return result;
  }
  throw fail(failures.signatureEveryKey ?? failures.signature, candidates);
}

/**
 * The signature check of every credential's JWS, in this one place (the signature math can change
 * here alone): the verified payload, or jose's error when the signature does not verify. Any other
 * refusal (unknown `crit`, a key unusable with `alg`, a bad signature segment) is the profile's
 * `unverifiable`. A CryptoKey with one of ASYMMETRIC_ALGORITHMS is checked synchronously by
 * node:crypto (signature.ts, held to jose's answers by test/unit/jose-differential.test.ts);
 * anything else by jose's `compactVerify`.
 */
async function signedPayload(jws: CompactJws, key: JwsKey, alg: string, failures: JwsFailures): Promise<Uint8Array | joseErrors.JWSSignatureVerificationFailed> {
  try {
    return checkJwsSignature(jws, key, alg) ?? (await compactVerify(jws.token, key, { algorithms: [alg] })).payload;
  } catch (err) {
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) return err;
    throw fail(failures.unverifiable, err);
  }
}

/** Wraps a key source's throw (conventions §6); an outage stays its own 5xx (conventions §9). */
function resolverFailure(err: unknown, failures: JwsFailures): AgentwardError {
  const unknown = failures.keyUnknown ?? failures.unverifiable;
  // The source's own "no such key" says more than ours (e.g. "the token must name its key").
  if (err instanceof AgentwardError && (err.status >= 500 || err.code === codeOf(unknown))) return err;
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) return fail(unknown, err);
  return fail(failures.keyUnusable ?? unknown, err);
}

/**
 * RFC 7519 §4.1.4-6: `exp`, `nbf` and `iat` by `rule`, each with a leeway of `rule.skew` seconds.
 * Also serves claims that did not come in a JWS (an introspection answer, RFC 7662 §2.2).
 */
export function checkTimeClaims(claims: Claims, rule: TimeRule): TimeClaims {
  const now = rule.now() / 1000;
  const { skew } = rule;
  let exp: number | undefined;
  if (rule.exp) {
    exp = numericDate(claims, 'exp', rule, rule.exp.missing);
    if (exp !== undefined && (rule.exp.onOrAfter ? now >= exp + skew : now > exp + skew)) throw fail(rule.exp.expired);
  }
  let nbf: number | undefined;
  if (rule.nbf) {
    nbf = numericDate(claims, 'nbf', rule);
    if (nbf !== undefined && rule.nbf.future !== undefined && nbf > now + skew) throw fail(rule.nbf.future);
  }
  let iat: number | undefined;
  if (rule.iat) {
    iat = numericDate(claims, 'iat', rule);
    if (iat !== undefined && iat > now + skew) throw fail(rule.iat.future);
  }
  return { exp, nbf, iat };
}

/** RFC 7519 §2 NumericDate: a finite JSON number; undefined when absent and not required. */
function numericDate(claims: Claims, name: 'exp' | 'nbf' | 'iat', rule: TimeRule, missing?: Failure): number | undefined {
  const value = claims[name];
  if (value === undefined) {
    if (missing !== undefined) throw fail(missing);
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) throw fail(rule.invalid(name));
  return value;
}

/** Throws `missing(name)` for the first of `names` that is absent or null (a claim a credential requires). */
export function requireClaims(claims: Claims, names: readonly string[], missing: (name: string) => Failure): void {
  for (const name of names) {
    if (claims[name] === undefined || claims[name] === null) throw fail(missing(name));
  }
}

/** The detail a NumericDate failure has always said, for credentials that name the claim (RFC 7519 §2). */
export function notNumericDate(code: ErrorCode, name: string): Failure {
  return { code, detail: `The ${name} claim must be a NumericDate (RFC 7519 section 2).` };
}

/** The usual `typ` rule: one of `accepted`, compared as media types (RFC 7515 §4.1.9). */
export interface ExplicitTyp {
  readonly accepted: readonly string[];
  /** A token without `typ` passes (JWT-SVID §2.3). Default false (RFC 8725 §3.11). */
  readonly optional?: boolean;
  /** No `typ` header. Default: `wrong`. */
  readonly missing?: Failure;
  readonly wrong: Failure;
}

/** Builds the `typ` check of a profile from an ExplicitTyp. */
export function explicitTyp(rule: ExplicitTyp): (jws: CompactJws) => void {
  const accepted: ReadonlySet<string> = new Set(rule.accepted.map((t) => normalizeTyp(t)!));
  return ({ header }) => {
    if (header.typ === undefined) {
      if (rule.optional) return;
      throw fail(rule.missing ?? rule.wrong);
    }
    if (!accepted.has(normalizeTyp(header.typ) ?? '')) throw fail(rule.wrong);
  };
}

/** The AgentwardError a Failure describes. */
export function fail(failure: Failure, cause?: unknown): AgentwardError {
  return typeof failure === 'string' ? new AgentwardError(failure, undefined, { cause }) : new AgentwardError(failure.code, failure.detail, { cause });
}

function codeOf(failure: Failure): ErrorCode {
  return typeof failure === 'string' ? failure : failure.code;
}
