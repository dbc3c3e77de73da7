/**
 * The policy decision contract (docs/policy-guide.md "The decision"). The entrypoint returns `true`/`false` or an object
 * with only the keys below; anything else is a malformed decision, which denies.
 */
import { AgentwardError } from '../errors.ts';
import { CREDENTIAL_HEADERS } from '../identity/credential-headers.ts';

export interface Decision {
  allow: boolean;
  reason: string | undefined;
  /** Deny status the policy asked for: 403 (default) or 404, to hide that the resource exists. */
  status: 403 | 404 | undefined;
  /** RFC 6750 §3.1 `insufficient_scope` with `scope=`. */
  requiredScopes: string[];
  /** RFC 9470 §3 `insufficient_user_authentication`. */
  stepUp: { acrValues: string | undefined; maxAge: number | undefined } | undefined;
  /** Added to the upstream request on allow. */
  headers: Record<string, string>;
  /**
   * The scopes this request may use upstream: the minted Txn-Token's `scope` is the access
   * token's scopes narrowed to these (`forward.txnToken`, docs/upstream-identity.md). Undefined:
   * not narrowed.
   */
  scopes: string[] | undefined;
  /** Members added to the minted Txn-Token's `tctx` (draft-ietf-oauth-transaction-tokens §9.2), beside `method` and `path`. */
  context: Readonly<Record<string, unknown>> | undefined;
}

const KEYS = new Set(['allow', 'reason', 'status', 'requiredScopes', 'stepUp', 'headers', 'scopes', 'context']);
/** Largest `context`, as JSON: it rides in a header on every forwarded request. */
const MAX_CONTEXT_BYTES = 4096;
/** `tctx` members agentward sets itself from the request. */
const RESERVED_CONTEXT = new Set(['method', 'path']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110 §5.5 field-value: visible ASCII, space and tab. */
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;
/** RFC 6750 §3 scope-token: %x21 / %x23-5B / %x5D-7E. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
/** Headers a decision may never set: credentials, and those that frame the message. */
const RESERVED_HEADERS = new Set([...CREDENTIAL_HEADERS, 'host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive', 'proxy-connection', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

function invalid(why: string): AgentwardError {
  return new AgentwardError('ERR_POLICY_DECISION_INVALID', undefined, { cause: new Error(`malformed decision: ${why}`) });
}

/** Validates the raw value the entrypoint produced. */
export function parseDecision(value: unknown): Decision {
  if (typeof value === 'boolean') return { allow: value, reason: undefined, status: undefined, requiredScopes: [], stepUp: undefined, headers: {}, scopes: undefined, context: undefined };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(`expected a boolean or an object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  const d = value as Record<string, unknown>;
  for (const key of Object.keys(d)) if (!KEYS.has(key)) throw invalid(`unknown key "${key}"`);
  if (typeof d.allow !== 'boolean') throw invalid('"allow" must be a boolean');
  if (d.reason !== undefined && (typeof d.reason !== 'string' || d.reason.length > 1024)) throw invalid('"reason" must be a string of at most 1024 characters');
  // 401 is not offered: a policy asks for stronger authentication with stepUp (RFC 9470).
  if (d.status !== undefined && d.status !== 403 && d.status !== 404) throw invalid('"status" must be 403 or 404');

  let requiredScopes: string[] = [];
  if (d.requiredScopes !== undefined) {
    if (!Array.isArray(d.requiredScopes) || !d.requiredScopes.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s))) {
      throw invalid('"requiredScopes" must be an array of RFC 6750 scope tokens');
    }
    requiredScopes = d.requiredScopes as string[];
  }

  let stepUp: Decision['stepUp'];
  if (d.stepUp !== undefined) {
    const s = d.stepUp as Record<string, unknown>;
    if (s === null || typeof s !== 'object' || Array.isArray(s)) throw invalid('"stepUp" must be an object');
    for (const key of Object.keys(s)) if (key !== 'acrValues' && key !== 'maxAge') throw invalid(`unknown key "stepUp.${key}"`);
    if (s.acrValues !== undefined && (typeof s.acrValues !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/.test(s.acrValues))) {
      throw invalid('"stepUp.acrValues" must be space-separated ACR values (RFC 9470 §3)');
    }
    if (s.maxAge !== undefined && !(Number.isInteger(s.maxAge) && (s.maxAge as number) >= 0)) throw invalid('"stepUp.maxAge" must be a non-negative integer (RFC 9470 §3)');
    if (s.acrValues === undefined && s.maxAge === undefined) throw invalid('"stepUp" needs acrValues or maxAge');
    stepUp = { acrValues: s.acrValues as string | undefined, maxAge: s.maxAge as number | undefined };
  }

  const headers: Record<string, string> = {};
  if (d.headers !== undefined) {
    if (d.headers === null || typeof d.headers !== 'object' || Array.isArray(d.headers)) throw invalid('"headers" must be an object of strings');
    for (const [name, v] of Object.entries(d.headers as Record<string, unknown>)) {
      if (!TOKEN.test(name) || RESERVED_HEADERS.has(name.toLowerCase())) throw invalid(`header "${name}" cannot be set by a policy`);
      if (typeof v !== 'string' || !FIELD_VALUE.test(v)) throw invalid(`header "${name}" must have a visible-ASCII string value`);
      headers[name.toLowerCase()] = v;
    }
  }
  let scopes: string[] | undefined;
  if (d.scopes !== undefined) {
    if (!Array.isArray(d.scopes) || !d.scopes.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s))) throw invalid('"scopes" must be an array of RFC 6750 scope tokens');
    scopes = d.scopes as string[];
  }
  let context: Decision['context'];
  if (d.context !== undefined) {
    if (d.context === null || typeof d.context !== 'object' || Array.isArray(d.context)) throw invalid('"context" must be an object');
    for (const key of Object.keys(d.context)) if (RESERVED_CONTEXT.has(key)) throw invalid(`"context.${key}" is set by agentward from the request`);
    if (Buffer.byteLength(JSON.stringify(d.context)) > MAX_CONTEXT_BYTES) throw invalid(`"context" must be at most ${MAX_CONTEXT_BYTES} bytes as JSON`);
    context = d.context as Record<string, unknown>;
  }
  if (d.allow && (requiredScopes.length > 0 || stepUp !== undefined)) throw invalid('an allow cannot carry requiredScopes or stepUp');
  return { allow: d.allow, reason: d.reason as string | undefined, status: d.status as Decision['status'], requiredScopes, stepUp, headers, scopes, context };
}
