/**
 * Finds every credential a request presents (design §2 step 2). Ambiguity is a 400, never a
 * guess: two Authorization fields, a token in the query (RFC 6750 §2.3; MCP forbids it), or an
 * unsupported scheme. A token in a form body is detected once the body is read (inspect step).
 */
import type { IncomingMessage } from 'node:http';
import { AgentwardError } from '../errors.ts';

export interface PresentedCredentials {
  /** The OAuth access token from `Authorization: Bearer`, if any. */
  accessToken: string | undefined;
  /** Names of what was presented, for `input.credentials.presented` and the audit record. */
  presented: string[];
}

/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

export function extractCredentials(req: IncomingMessage, query: URLSearchParams): PresentedCredentials {
  // headersDistinct keeps every field; `req.headers` would silently drop a second Authorization.
  const authorization = req.headersDistinct.authorization ?? [];
  if (authorization.length > 1) throw new AgentwardError('ERR_AUTHORIZATION_MULTIPLE', 'The request has more than one Authorization header (RFC 6750 section 2).');
  if (query.has('access_token')) throw new AgentwardError('ERR_TOKEN_IN_QUERY');

  const presented: string[] = [];
  let accessToken: string | undefined;
  const header = authorization[0];
  if (header !== undefined) {
    const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/.exec(header.trim());
    if (!match) throw new AgentwardError('ERR_AUTHORIZATION_MALFORMED');
    const scheme = match[1]!.toLowerCase();
    const credentials = match[2] ?? '';
    if (scheme !== 'bearer') throw new AgentwardError('ERR_AUTHORIZATION_SCHEME');
    if (!B64TOKEN.test(credentials)) throw new AgentwardError('ERR_AUTHORIZATION_MALFORMED', 'The Bearer credentials must be one RFC 6750 section 2.1 b64token.');
    accessToken = credentials;
    presented.push('access_token');
  }
  return { accessToken, presented };
}
