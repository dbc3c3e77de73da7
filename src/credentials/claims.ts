/**
 * Checks shared by every way an access token is verified (a JWT, RFC 9068; an introspection
 * response, RFC 7662): the types of the claims the policy input exposes, the audience list, the
 * time rule, and the key binding in `cnf`. One place, so both paths accept and refuse the same
 * things. Other JWT credentials (Txn-Tokens, JWT-SVIDs) run the same claim checks with their own
 * codes: each helper takes the ClaimErrors it reports with, so no error text is ever rewritten.
 */
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { fail, notNumericDate, type Failure, type TimeRule } from '../jose/verify.ts';

export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** How a credential reports a claim failure: how details name it, and its codes. */
export interface ClaimErrors {
  /** "The access token", as in "The access token has no aud claim." */
  readonly noun: string;
  /** A claim with the wrong type or form. */
  readonly invalid: ErrorCode;
  /** No audience claim. */
  readonly audience: ErrorCode;
}

/** The codes of access tokens (RFC 9068 and RFC 7662 alike): the default of every helper here. */
export const ACCESS_TOKEN_CLAIMS: ClaimErrors = { noun: 'The access token', invalid: 'ERR_TOKEN_CLAIM_INVALID', audience: 'ERR_TOKEN_AUDIENCE' };

/** RFC 7519 §4.1.3: `aud` is a string or an array of strings. `name` is the claim read (Cognito's audience is `client_id`). */
export function audienceList(aud: unknown, name = 'aud', errors: ClaimErrors = ACCESS_TOKEN_CLAIMS): string[] {
  if (aud === undefined) throw new AgentwardError(errors.audience, `${errors.noun} has no ${name} claim.`);
  return stringList(aud, name, errors);
}

/** A string or an array of strings, as an array (`aud`; `scp` and `roles` of issuer profiles). */
export function stringList(value: unknown, name: string, errors: ClaimErrors = ACCESS_TOKEN_CLAIMS): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((a) => typeof a === 'string')) return value as string[];
  throw new AgentwardError(errors.invalid, `The ${name} claim must be a string or an array of strings.`);
}

/**
 * Scopes from every claim that holds them (`scope`, or a profile's `scp`/`roles`): a string is a
 * space-separated list (RFC 8693 §4.2), an array lists them one by one. Joined, without repeats.
 */
export function scopesOf(claims: Record<string, unknown>, names: readonly string[]): string[] {
  const scopes = new Set<string>();
  for (const name of names) {
    const value = claims[name];
    if (value === undefined) continue;
    for (const item of stringList(value, name)) for (const scope of typeof value === 'string' ? item.split(' ') : [item]) if (scope) scopes.add(scope);
  }
  return [...scopes];
}

/** RFC 7519 §2 NumericDate, or undefined when absent. */
export function numericClaim(claims: Record<string, unknown>, name: string, errors: ClaimErrors = ACCESS_TOKEN_CLAIMS): number | undefined {
  const value = claims[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw fail(notNumericDate(errors.invalid, name));
  return value;
}

/**
 * The time rule of access tokens (RFC 9068 §4 step 6, RFC 7519 §4.1.4-6): `exp` required in a JWT
 * (`expMissing`), optional in an introspection answer (RFC 7662 §2.2); expired only after
 * `exp + skew`.
 */
export function accessTokenTimes(skew: number, now: () => number, expMissing?: Failure): TimeRule {
  return {
    skew,
    now,
    invalid: (name) => notNumericDate('ERR_TOKEN_CLAIM_INVALID', name),
    exp: { ...(expMissing === undefined ? {} : { missing: expMissing }), expired: 'ERR_TOKEN_EXPIRED' },
    nbf: { future: 'ERR_TOKEN_NOT_YET_VALID' },
    iat: { future: 'ERR_TOKEN_ISSUED_IN_FUTURE' },
  };
}

const STRING_CLAIMS = ['sub', 'client_id', 'scope', 'jti', 'acr', 'username'] as const;

/** Claims the policy input exposes must have the types their RFCs give them. */
export function checkClaimTypes(claims: Record<string, unknown>, errors: ClaimErrors = ACCESS_TOKEN_CLAIMS): void {
  for (const name of STRING_CLAIMS) {
    if (claims[name] !== undefined && typeof claims[name] !== 'string') throw new AgentwardError(errors.invalid, `The ${name} claim must be a string.`);
  }
  numericClaim(claims, 'auth_time', errors);
  if (claims.amr !== undefined && !(Array.isArray(claims.amr) && claims.amr.every((m) => typeof m === 'string'))) {
    throw new AgentwardError(errors.invalid, 'The amr claim must be an array of strings.');
  }
  checkAuthorizationDetails(claims.authorization_details, errors.invalid);
}

/**
 * RFC 9396 §2, §9: `authorization_details` is an array of objects, each with a string `type`;
 * anything else makes the token malformed (RAR-N01), never "no details". The other members are
 * type-specific and left to the policy (`agentward.lib.rar`). The detail names the element, never
 * its content, which may describe what the user approved.
 */
function checkAuthorizationDetails(details: unknown, code: ErrorCode): void {
  if (details === undefined) return;
  if (!Array.isArray(details)) throw new AgentwardError(code, 'The authorization_details claim must be an array (RFC 9396 section 2).');
  const bad = details.findIndex((d) => !isObject(d) || typeof d.type !== 'string');
  if (bad !== -1) {
    throw new AgentwardError(code, `Element ${bad} of the authorization_details claim must be an object with a string type (RFC 9396 section 2).`);
  }
}

/** A SHA-256 JWK thumbprint is 32 bytes: 43 base64url characters (RFC 7638 §3, RFC 9449 §6.1). */
const JWK_THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

/**
 * RFC 7800 §3.1: `cnf` binds the token to a key; a binding that cannot be checked is refused,
 * never downgraded to bearer (AT-N24). `verifiable` names the confirmation methods this resource
 * can check. Returns the DPoP key thumbprint (RFC 9449 §6.1) when the token is bound to one.
 */
export function dpopKeyOf(cnf: unknown, verifiable: ReadonlySet<string>): string | undefined {
  if (cnf === undefined) return undefined;
  if (!isObject(cnf)) throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'The cnf claim must be a JSON object (RFC 7800 section 3.1).');
  for (const member of Object.keys(cnf)) {
    if (!verifiable.has(member)) throw new AgentwardError('ERR_TOKEN_BINDING_UNSUPPORTED', 'The token is bound to a key with a confirmation method this resource cannot verify (RFC 7800).');
  }
  if (cnf.jkt === undefined) return undefined;
  if (typeof cnf.jkt !== 'string' || !JWK_THUMBPRINT.test(cnf.jkt)) throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'cnf.jkt must be a base64url SHA-256 JWK thumbprint (RFC 9449 section 6.1).');
  return cnf.jkt;
}
