/**
 * The policy input document, version 1 (docs/policy-input.md). This is a public contract: policies read
 * it as `input`. Absent credentials are `null`, never missing keys. docs/policy-guide.md
 * describes every field.
 */
import type { ClientCertificate } from '../identity/client-certificate.ts';
import type { DelegationChain } from '../identity/delegation.ts';
import type { ProvenWorkload, TokenMatch } from '../identity/workload.ts';

export interface RequestInput {
  id: string;
  method: string;
  scheme: 'http' | 'https';
  /** The resource's host from configuration (never the untrusted Host header). */
  host: string;
  path: string;
  query: Record<string, string[]>;
  /** Request headers, lower-cased, credentials removed, repeated fields joined with ", ". */
  headers: Record<string, string>;
  /**
   * The client certificate: this connection's TLS one (`listen.tls.clientCert` optional or
   * required), or the one a trusted proxy forwarded (`listen.trustedProxies`, RFC 9440); null
   * without one. Never from an untrusted peer's header.
   */
  clientCertificate: ClientCertificate | null;
  /**
   * Method override fields on the request (`X-HTTP-Method-Override`, `X-HTTP-Method`,
   * `X-Method-Override`, the `_method` query parameter), by `forward.methodOverride`: stripped
   * before the policy and the upstream saw them, or forwarded for the policy to decide on; null
   * when there were none (with the default `reject` such a request never reaches the policy).
   */
  methodOverride: MethodOverrideInput | null;
}

/** One method override field as sent. */
export interface MethodOverrideField {
  source: 'header' | 'query';
  /** The header name in lower case, or `_method`. */
  name: string;
  /** The value as sent (caller-controlled). */
  value: string;
}

export interface MethodOverrideInput {
  /** `stripped`: removed from the request (not in `request.headers` or `request.query`, not forwarded); `forwarded`: sent upstream as is. */
  action: 'stripped' | 'forwarded';
  fields: MethodOverrideField[];
}

export interface SubjectInput {
  iss: string;
  sub: string | null;
  clientId: string | null;
  scopes: string[];
  aud: string[];
  acr: string | null;
  amr: string[];
  authTime: number | null;
  authorizationDetails: unknown[];
  jti: string | null;
  expiresAt: number;
  /** `jwt`: verified locally (RFC 9068); `opaque`: described by the issuer's introspection (RFC 7662). */
  format: 'jwt' | 'opaque';
  /**
   * How the token is bound to its sender: `dpop` when it carries `cnf.jkt` (and so came with a
   * verified proof), `mtls` when it carries `cnf.x5t#S256` (and so came over a connection with that
   * client certificate, RFC 8705 §3).
   */
  binding: 'bearer' | 'dpop' | 'mtls';
  /** RFC 8693 §4.4: who may act for the subject. Informational; it grants nothing. */
  mayAct: Record<string, unknown> | null;
  /** The remaining verified claims, for policies that need them. */
  claims: Record<string, unknown>;
}

/**
 * The workload (agent) identity proven on this request (draft-aims §6–§9): from a WIT with its
 * WPT or HTTP message signature, an X.509-SVID, or a JWT-SVID. Never from a header the caller set.
 */
export interface AgentInput extends ProvenWorkload {
  /**
   * Whether the access token of this request was issued to this workload, by its `client_id` and
   * by its current actor (`act.sub`), after `workload.binding.clients`; null when the request has
   * no access token (or the token has no such party).
   */
  token: TokenMatch | null;
}


/**
 * A verified Transaction Token (draft-ietf-oauth-transaction-tokens §9.2): genuine, current and
 * for this trust domain. What it allows is the policy's decision.
 */
export interface TxnInput {
  /** `txn`: the transaction identifier. */
  txn: string;
  /** `sub`: the subject, unique within the trust domain. */
  sub: string;
  /** `scope` split on spaces. */
  scopes: string[];
  /** `tctx`: immutable transaction context, or null. */
  tctx: Record<string, unknown> | null;
  /** `rctx`: request environment, or null. */
  rctx: Record<string, unknown> | null;
  /** `req_wl`: the workload that requested the token. */
  reqWl: string;
  /** `iss`, or null. */
  iss: string | null;
  issuedAt: number;
  expiresAt: number;
  /** The other claims. */
  claims: Record<string, unknown>;
}

/**
 * One MCP JSON-RPC call on a `mcp.paths` route (Streamable HTTP). For a batch, the policy is
 * asked once per element with that element here.
 */
export interface McpInput {
  /** The JSON-RPC `method`, e.g. `tools/call`, `tools/list`, `resources/read`. */
  method: string;
  /** `params.name` (tools/call, prompts/get) or `params.uri` (resources/read, resources/subscribe); null otherwise. */
  name: string | null;
  /** `params.arguments` (tools/call, prompts/get) when it is an object; null otherwise. */
  arguments: Record<string, unknown> | null;
  /** The JSON-RPC `id`; null for a notification. */
  id: string | number | null;
  /**
   * True when the call is not being made but asked about: the policy decides whether one item of
   * a tools/list, prompts/list or resources/list result is shown (as the call it would allow).
   */
  listFilter: boolean;
}

/** One A2A JSON-RPC call on an `a2a.paths` route. */
export interface A2aInput {
  /** The JSON-RPC `method` as sent, e.g. `SendMessage` (A2A 1.0) or `message/send` (0.3). */
  method: string;
  /** The A2A 1.0 operation name for either naming (`SendMessage`, `GetTask`, ...); the method itself when unknown. */
  operation: string;
  /** The JSON-RPC `id`; null for a notification. */
  id: string | number | null;
  /** `params` when it is an object; null otherwise. */
  arguments: Record<string, unknown> | null;
}

export interface PolicyInput {
  version: 1;
  now: number;
  request: RequestInput;
  resource: { id: string };
  agent: AgentInput | null;
  subject: SubjectInput | null;
  delegation: DelegationChain;
  txn: TxnInput | null;
  mcp: McpInput | null;
  a2a: A2aInput | null;
  credentials: { presented: string[] };
}

/**
 * Input fields that `forward.identityHeaders` may copy into upstream headers. Kept to scalar
 * facts about the verified caller; arrays are joined with spaces.
 */
export const IDENTITY_HEADER_SOURCES: readonly string[] = [
  'agent.id',
  'agent.trustDomain',
  'agent.via',
  'subject.sub',
  'subject.clientId',
  'subject.iss',
  'subject.scopes',
  'subject.acr',
  'subject.amr',
  'subject.authTime',
  'subject.jti',
  'delegation.depth',
  'delegation.chain.0.sub',
  'request.id',
];

/** Reads a dotted path ("delegation.chain.0.sub") from the input; undefined when absent. */
export function readField(input: PolicyInput, path: string): unknown {
  let value: unknown = input;
  for (const segment of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}
