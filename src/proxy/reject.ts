/**
 * The one mapping from an error to a response (conventions §5): status, `WWW-Authenticate`
 * challenge (RFC 6750 §3, RFC 9470 §3, RFC 9728 §5.1) and an RFC 9457 problem body with the
 * stable code and the request id. 5xx bodies say nothing internal; nothing echoes a credential.
 */
import type { ServerResponse } from 'node:http';
import { ERROR_CODES, type AgentwardError } from '../errors.ts';

export interface RejectContext {
  requestId: string;
  /** RFC 9728 §5.1 `resource_metadata` URL, sent in every challenge. */
  resourceMetadataUrl: string;
  /** Policy reason, sent only when `policy.exposeReason` is on. */
  exposedReason?: string | undefined;
}

export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * RFC 9110 §5.6.4 quoted-string: escape backslash and double quote. RFC 6750 §3 allows only
 * visible ASCII and space in these parameters, so anything else is dropped.
 */
export function quote(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function challenge(params: [string, string | undefined][]): string {
  return `Bearer ${params
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(', ')}`;
}

export function problemFor(err: AgentwardError, ctx: RejectContext): ProblemResponse {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json', 'cache-control': 'no-store' };
  const description = err.expose ? err.detail : undefined;
  const metadata: [string, string] = ['resource_metadata', ctx.resourceMetadataUrl];

  // Which challenge, if any, goes with the error. Exhaustive over the RFC 6750 / RFC 9470 errors.
  const kind = err.oauthError ?? (err.code === 'ERR_CREDENTIALS_MISSING' ? 'no_credentials' : 'none');
  switch (kind) {
    case 'no_credentials':
      // RFC 6750 §3: no authentication information, so no `error`; RFC 9728 §5.1 metadata pointer.
      headers['www-authenticate'] = challenge([metadata]);
      break;
    case 'invalid_request':
    case 'invalid_token':
      headers['www-authenticate'] = challenge([['error', kind], ['error_description', description], metadata]);
      break;
    case 'insufficient_scope':
      headers['www-authenticate'] = challenge([['error', kind], ['error_description', description], ['scope', err.hints.scope?.join(' ')], metadata]);
      break;
    case 'insufficient_user_authentication':
      headers['www-authenticate'] = challenge([
        ['error', kind],
        ['error_description', description],
        ['acr_values', err.hints.acrValues],
        ['max_age', err.hints.maxAge?.toString()],
        metadata,
      ]);
      break;
    case 'none':
      if (err.status === 503) headers['retry-after'] = '5';
      if (err.code === 'ERR_METHOD_NOT_ALLOWED') headers.allow = 'GET, HEAD';
      break;
    default: {
      const unreachable: never = kind;
      throw new Error(`unmapped challenge kind ${String(unreachable)}`);
    }
  }

  // RFC 9457 §3.1: `title` is fixed per type; `detail` is this occurrence, and 5xx get none.
  const title = ERROR_CODES[err.code].title;
  const body: Record<string, unknown> = { type: `urn:agentward:error:${err.code}`, title, status: err.status, code: err.code };
  if (description !== undefined && description !== title) body.detail = description;
  body.requestId = ctx.requestId;
  if (ctx.exposedReason !== undefined) body.reason = ctx.exposedReason;
  return { status: err.status, headers, body: JSON.stringify(body) };
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
