/**
 * The one mapping from an error to a response (conventions §5): status, `WWW-Authenticate`
 * challenge (RFC 6750 §3, RFC 9470 §3, RFC 9728 §5.1) and an RFC 9457 problem body with the
 * stable code and the request id. 5xx bodies say nothing internal; nothing echoes a credential.
 */
import type { ServerResponse } from 'node:http';
import { ERROR_CODES, type AgentwardError } from '../errors.ts';
import type { JsonRpcId } from '../rpc/json-rpc.ts';

/** The authentication schemes this resource offers, fixed at startup. */
export interface ChallengeSchemes {
  bearer: boolean;
  /** RFC 9449 §7.1 `algs` for the DPoP challenge; undefined when DPoP is not offered. */
  dpopAlgs: string | undefined;
  /** wpt-02 §2.1: the `WPT` scheme (no auth-params) is offered when workload identity is configured. */
  wpt: boolean;
}

export interface RejectContext {
  requestId: string;
  /** RFC 9728 §5.1 `resource_metadata` URL, sent in every challenge. */
  resourceMetadataUrl: string;
  schemes: ChallengeSchemes;
  /** The scheme the request used, which carries the `error` when it is offered. */
  scheme?: 'bearer' | 'dpop' | 'wpt' | undefined;
  /**
   * How the request proved its WIT, when it did (decision U3, docs/negative-cases.md): a WIT failure is a 401
   * with the WPT challenge in WPT mode, a 400 without challenge in HTTP-signature mode.
   */
  workloadProof?: 'wpt' | 'http_signature' | undefined;
  /** RFC 9449 §9: sent as `DPoP-Nonce` with `use_dpop_nonce`. */
  dpopNonce?: string | undefined;
  /** Policy reason, sent only when `policy.exposeReason` is on. */
  exposedReason?: string | undefined;
  /**
   * Set on `mcp.paths` and `a2a.paths`: refusals with a JSON-RPC code are answered in JSON-RPC
   * (JSON-RPC 2.0 §5), one error per request id of the body (none known: one with id null).
   */
  rpc?: { ids: readonly JsonRpcId[]; batch: boolean; deniedId?: JsonRpcId | undefined } | undefined;
}

export interface ProblemResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
}

/**
 * RFC 9110 §5.6.4 quoted-string: escape backslash and double quote. RFC 6750 §3 allows only
 * visible ASCII and space in these parameters, so anything else is dropped.
 */
export function quote(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

type Params = [string, string | undefined][];

function challenge(scheme: 'Bearer' | 'DPoP' | 'WPT', params: Params): string {
  // wpt-02 §2.1 defines no auth-params for WPT.
  if (scheme === 'WPT') return 'WPT';
  return `${scheme} ${params
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(', ')}`;
}

/**
 * One challenge per offered scheme (RFC 9449 §7.2: both when both are accepted). The error
 * parameters go on the scheme the request used (DPoP-only errors always on DPoP); the other
 * scheme's challenge only says it exists.
 */
function challenges(schemes: ChallengeSchemes, used: RejectContext['scheme'], dpopOnly: boolean, errorParams: Params, metadata: [string, string]): string[] {
  const offered: ('Bearer' | 'DPoP' | 'WPT')[] = [];
  if (schemes.bearer) offered.push('Bearer');
  if (schemes.dpopAlgs !== undefined) offered.push('DPoP');
  if (schemes.wpt) offered.push('WPT');
  const preferred = dpopOnly || used === 'dpop' ? 'DPoP' : 'Bearer';
  const carrier = offered.includes(preferred) ? preferred : offered[0];
  return offered.map((scheme) => {
    const params: Params = scheme === carrier ? [...errorParams] : [];
    if (scheme === 'DPoP') params.unshift(['algs', schemes.dpopAlgs]);
    params.push(metadata);
    return challenge(scheme, params);
  });
}

/**
 * A refusal on a JSON-RPC route, as JSON-RPC error responses. A policy denial of calls that
 * expect an answer is HTTP 200: MCP clients (and A2A clients) handle a JSON-RPC error per call,
 * and surface its message, where an HTTP 403 without `insufficient_scope` is an opaque transport
 * failure (docs/mcp.md, "How a deny reaches an agent"). Request errors keep their HTTP status.
 */
function rpcErrorFor(err: AgentwardError, rpcCode: number, ctx: RejectContext): ProblemResponse | undefined {
  const rpc = ctx.rpc!;
  const policyDeny = err.code === 'ERR_POLICY_DENIED' || err.code === 'ERR_POLICY_NOT_FOUND';
  // A denied notification has no id to answer: it gets the plain HTTP refusal.
  if (policyDeny && rpc.ids.length === 0) return undefined;
  const title = ERROR_CODES[err.code].title;
  const data: Record<string, unknown> = { type: `urn:agentward:error:${err.code}`, code: err.code, requestId: ctx.requestId };
  if (ctx.exposedReason !== undefined) data.reason = ctx.exposedReason;
  const errorFor = (id: JsonRpcId) => {
    const skipped = policyDeny && rpc.batch && rpc.deniedId !== undefined && id !== rpc.deniedId;
    return { jsonrpc: '2.0', id, error: { code: rpcCode, message: skipped ? 'Not executed: another call of this batch was denied.' : err.expose ? err.detail : title, data } };
  };
  const ids = rpc.ids.length > 0 ? rpc.ids : [null];
  const body = rpc.batch && rpc.ids.length > 0 ? ids.map(errorFor) : errorFor(ids[0]!);
  return { status: policyDeny ? 200 : err.status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: JSON.stringify(body) };
}

export function problemFor(err: AgentwardError, ctx: RejectContext): ProblemResponse {
  const codeInfo = ERROR_CODES[err.code];
  if (ctx.rpc && 'rpcError' in codeInfo) {
    const answer = rpcErrorFor(err, codeInfo.rpcError, ctx);
    if (answer) return answer;
  }
  const headers: Record<string, string | string[]> = { 'content-type': 'application/problem+json', 'cache-control': 'no-store' };
  const wimse = 'wimse' in ERROR_CODES[err.code];
  // U3: a WIT or WPT failure names the WPT scheme alone (wpt-02 §2.1); with an HTTP message
  // signature it is a plain 400 (http-signature §3.5: 401 NOT RECOMMENDED).
  const status = wimse && ctx.workloadProof === 'http_signature' ? 400 : err.status;
  const description = err.expose ? err.detail : undefined;
  const metadata: [string, string] = ['resource_metadata', ctx.resourceMetadataUrl];
  const offer = (params: Params, dpopOnly = false) => {
    const list = challenges(ctx.schemes, ctx.scheme, dpopOnly, params, metadata);
    headers['www-authenticate'] = list.length === 1 ? list[0]! : list;
  };

  // Which challenge, if any, goes with the error. Exhaustive over the RFC 6750, RFC 9449 and
  // RFC 9470 errors.
  // A 401 without an OAuth error (no access token, or a Txn-Token problem: a Txn-Token is not an
  // access token, §13.13) still carries a challenge (RFC 9110 §15.5.2), the plain one.
  const kind = wimse ? (status === 401 ? 'wpt' : 'none') : (err.oauthError ?? (err.status === 401 ? 'no_credentials' : 'none'));
  switch (kind) {
    case 'wpt':
      headers['www-authenticate'] = challenge('WPT', []);
      break;
    case 'no_credentials':
      // RFC 6750 §3, RFC 9449 §7.1: no authentication information, so no `error`.
      offer([]);
      break;
    case 'invalid_request':
    case 'invalid_token':
      offer([['error', kind], ['error_description', description]]);
      break;
    case 'invalid_dpop_proof':
      offer([['error', kind], ['error_description', description]], true);
      break;
    case 'use_dpop_nonce':
      offer([['error', kind], ['error_description', description]], true);
      if (ctx.dpopNonce !== undefined) headers['dpop-nonce'] = ctx.dpopNonce;
      break;
    case 'insufficient_scope':
      offer([['error', kind], ['error_description', description], ['scope', err.hints.scope?.join(' ')]]);
      break;
    case 'insufficient_user_authentication':
      offer([
        ['error', kind],
        ['error_description', description],
        ['acr_values', err.hints.acrValues],
        ['max_age', err.hints.maxAge?.toString()],
      ]);
      break;
    case 'none':
      // RFC 9110 §10.2.3. An overload passes in a moment, and so does a Redis reconnect (retried at
      // least every second); an unavailable issuer or policy takes longer.
      if (err.status === 503) headers['retry-after'] = err.code === 'ERR_OVERLOADED' || err.code === 'ERR_STATE_UNAVAILABLE' ? '1' : '5';
      if (err.code === 'ERR_METHOD_NOT_ALLOWED') headers.allow = 'GET, HEAD';
      break;
    default: {
      const unreachable: never = kind;
      throw new Error(`unmapped challenge kind ${String(unreachable)}`);
    }
  }

  // RFC 9457 §3.1: `title` is fixed per type; `detail` is this occurrence, and 5xx get none.
  const title = ERROR_CODES[err.code].title;
  const body: Record<string, unknown> = { type: `urn:agentward:error:${err.code}`, title, status, code: err.code };
  if (description !== undefined && description !== title) body.detail = description;
  body.requestId = ctx.requestId;
  if (ctx.exposedReason !== undefined) body.reason = ctx.exposedReason;
  return { status, headers, body: JSON.stringify(body) };
}

/** Writes the problem response, unless the response has already started (then the socket is cut). */
export function sendProblem(res: ServerResponse, err: AgentwardError, ctx: RejectContext): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const problem = problemFor(err, ctx);
  res.writeHead(problem.status, { ...problem.headers, 'content-length': Buffer.byteLength(problem.body) });
  res.end(problem.body);
}
