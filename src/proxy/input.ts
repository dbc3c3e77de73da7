/**
 * Builds the policy input document, version 1 (docs/policy-input.md), from verified facts only: the proxy
 * turns what the credential verifiers proved into the contract that policies read, whose types
 * live in src/policy/input.ts. Absent credentials are `null`, never missing keys.
 */
import type { VerifiedAccessToken } from '../credentials/access-token.ts';
import type { PresentedCredentials } from '../credentials/extract.ts';
import type { VerifiedTxnToken } from '../credentials/txn-token.ts';
import { CREDENTIAL_HEADERS } from '../identity/credential-headers.ts';
import { NO_DELEGATION } from '../identity/delegation.ts';
import type { ProvenWorkload, TokenMatch } from '../identity/workload.ts';
import type { AgentInput, MethodOverrideInput, PolicyInput, SubjectInput, TxnInput } from '../policy/input.ts';
import type { ProtectedResource } from './protected-resource.ts';

/** What step 5 builds the input from: the request as received and what steps 2-4 proved. */
export interface InputFacts {
  requestId: string;
  method: string;
  target: URL;
  headers: Readonly<NodeJS.Dict<string[]>>;
  credentials: PresentedCredentials;
  agent: ProvenWorkload | undefined;
  tokenMatch: TokenMatch | null;
  token: VerifiedAccessToken | undefined;
  txn: VerifiedTxnToken | undefined;
  /** Context-token headers a WPT did not bind: they must not feed a decision (wpt-02 §2, WPT-N31). */
  unboundContextHeaders: readonly string[];
  /** Method override fields (src/proxy/method-override.ts); `target` already lacks a stripped `_method`. */
  methodOverride: MethodOverrideInput | null;
}

/** Step 5: the policy input, version 1 (docs/policy-input.md). */
export function buildInput(facts: InputFacts, resource: ProtectedResource, nowMs: number): PolicyInput {
  const { target, token } = facts;
  const query: Record<string, string[]> = {};
  // Without a query no URLSearchParams is made (URL.searchParams builds one on first use).
  if (target.search !== '') for (const [k, v] of target.searchParams) (query[k] ??= []).push(v);
  return {
    version: 1,
    now: Math.floor(nowMs / 1000),
    request: {
      id: facts.requestId,
      method: facts.method,
      scheme: resource.scheme,
      host: resource.host,
      path: target.pathname,
      query,
      headers: policyHeaders(facts.headers, hiddenHeaders(facts)),
      clientCertificate: facts.credentials.clientCertificate?.facts ?? null,
      methodOverride: facts.methodOverride,
    },
    resource: { id: resource.id },
    agent: facts.agent ? agentInput(facts.agent, facts.tokenMatch) : null,
    subject: token ? subjectInput(token) : null,
    delegation: token?.delegation ?? NO_DELEGATION,
    txn: facts.txn ? txnInput(facts.txn) : null,
    mcp: null,
    a2a: null,
    credentials: { presented: facts.credentials.presented },
  };
}

/** Headers the policy must not see besides credentials: unbound context tokens, stripped method overrides. */
function hiddenHeaders(facts: InputFacts): readonly string[] {
  const override = facts.methodOverride;
  if (override?.action !== 'stripped') return facts.unboundContextHeaders;
  return [...facts.unboundContextHeaders, ...override.fields.filter((f) => f.source === 'header').map((f) => f.name)];
}

/** Request headers for the policy: credentials removed, repeated fields joined. */
function policyHeaders(received: Readonly<NodeJS.Dict<string[]>>, unbound: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  // for-in, not Object.entries: no array of pairs per request (Node's headersDistinct has no prototype).
  for (const name in received) {
    const values = received[name];
    // Repeated fields join with ", " (RFC 9110 §5.3), cookies with "; " (RFC 6265 §5.4).
    if (values && !CREDENTIAL_HEADERS.includes(name) && !unbound.includes(name)) headers[name] = values.join(name === 'cookie' ? '; ' : ', ');
  }
  return headers;
}

/** `input.agent`: the proven workload and whether the access token names it. */
export function agentInput(agent: ProvenWorkload, token: TokenMatch | null): AgentInput {
  return { ...agent, token };
}

/** The policy view of a verified Txn-Token (no hash: that is for audit records). */
export function txnInput(token: VerifiedTxnToken): TxnInput {
  return {
    txn: token.txn,
    sub: token.sub,
    scopes: token.scopes,
    tctx: token.tctx,
    rctx: token.rctx,
    reqWl: token.reqWl,
    iss: token.iss,
    issuedAt: token.issuedAt,
    expiresAt: token.expiresAt,
    claims: token.claims,
  };
}


/** Claims mapped to named subject fields; the rest go to `subject.claims`. */
const MAPPED_CLAIMS = new Set(['iss', 'sub', 'client_id', 'scope', 'aud', 'acr', 'amr', 'auth_time', 'authorization_details', 'jti', 'exp', 'may_act', 'act']);

/** Subject inputs by verified token: a cached token reuses its subject instead of rebuilding it. */
const subjects = new WeakMap<VerifiedAccessToken, SubjectInput>();

export function subjectInput(token: VerifiedAccessToken): SubjectInput {
  let subject = subjects.get(token);
  if (!subject) {
    subject = buildSubject(token);
    subjects.set(token, subject);
  }
  return subject;
}

function buildSubject(token: VerifiedAccessToken): SubjectInput {
  const c = token.claims;
  const claims: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (!MAPPED_CLAIMS.has(k)) claims[k] = v;
  return {
    iss: token.issuer,
    sub: token.subject,
    clientId: token.clientId,
    scopes: token.scopes,
    aud: token.audiences,
    acr: typeof c.acr === 'string' ? c.acr : null,
    amr: Array.isArray(c.amr) ? c.amr.filter((x): x is string => typeof x === 'string') : [],
    authTime: typeof c.auth_time === 'number' ? c.auth_time : null,
    authorizationDetails: Array.isArray(c.authorization_details) ? c.authorization_details : [],
    jti: typeof c.jti === 'string' ? c.jti : null,
    expiresAt: token.expiresAt,
    format: token.format,
    binding: token.jkt ? 'dpop' : token.x5t ? 'mtls' : 'bearer',
    mayAct: c.may_act !== null && typeof c.may_act === 'object' && !Array.isArray(c.may_act) ? (c.may_act as Record<string, unknown>) : null,
    claims,
  };
}
