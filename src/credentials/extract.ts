/**
 * Finds every credential a request presents (design §2 step 2). Ambiguity is a 400, never a
 * guess: two Authorization fields, a token in the query (RFC 6750 §2.3; MCP forbids it), an
 * unsupported scheme, or a DPoP proof next to a Bearer token. A token in a form body is detected
 * once the body is read (inspect step).
 */
import type { IncomingMessage } from 'node:http';
import { AgentwardError } from '../errors.ts';

export interface PresentedCredentials {
  /** The OAuth access token from `Authorization: Bearer` or `Authorization: DPoP`, if any. */
  accessToken: string | undefined;
  /** Which scheme carried it. */
  scheme: 'bearer' | 'dpop' | undefined;
  /** The `DPoP` header (RFC 9449 §4.1), with the DPoP scheme only. */
  dpopProof: string | undefined;
  /** Names of what was presented, for `input.credentials.presented` and the audit record. */
  presented: string[];
}

/** RFC 6750 §2.1 b64token, also RFC 9449 §7.1's token68 for the DPoP scheme. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * @param dpopEnabled whether the DPoP scheme is accepted at all (`oauth.dpop.mode` not `disabled`).
 */
export function extractCredentials(req: IncomingMessage, query: URLSearchParams, dpopEnabled: boolean): PresentedCredentials {
  // headersDistinct keeps every field; `req.headers` would silently drop a second Authorization.
  const authorization = req.headersDistinct.authorization ?? [];
  if (authorization.length > 1) throw new AgentwardError('ERR_AUTHORIZATION_MULTIPLE', 'The request has more than one Authorization header (RFC 6750 section 2).');
  if (query.has('access_token')) throw new AgentwardError('ERR_TOKEN_IN_QUERY');
  const proofs = req.headersDistinct.dpop ?? [];

  const presented: string[] = [];
  let accessToken: string | undefined;
  let scheme: PresentedCredentials['scheme'];
  const header = authorization[0];
  if (header !== undefined) {
    const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/.exec(header.trim());
    if (!match) throw new AgentwardError('ERR_AUTHORIZATION_MALFORMED');
    const name = match[1]!.toLowerCase();
    const credentials = match[2] ?? '';
    if (name === 'bearer') scheme = 'bearer';
    else if (name === 'dpop' && dpopEnabled) scheme = 'dpop';
    else throw new AgentwardError('ERR_AUTHORIZATION_SCHEME', dpopEnabled ? 'Use Authorization: Bearer or Authorization: DPoP.' : 'Use Authorization: Bearer.');
    if (!B64TOKEN.test(credentials)) throw new AgentwardError('ERR_AUTHORIZATION_MALFORMED', `The ${match[1]} credentials must be one token (RFC 6750 section 2.1).`);
    accessToken = credentials;
    presented.push('access_token');
  }

  let dpopProof: string | undefined;
  if (proofs.length > 0) {
    // RFC 9449 §7.2: a proof belongs to the DPoP scheme; with Bearer it would be silently unused.
    if (scheme !== 'dpop') throw new AgentwardError(dpopEnabled ? 'ERR_DPOP_WITH_BEARER' : 'ERR_AUTHORIZATION_SCHEME', dpopEnabled ? undefined : 'DPoP is not accepted by this resource.');
    if (proofs.length > 1) throw new AgentwardError('ERR_DPOP_PROOF_MULTIPLE');
    dpopProof = proofs[0];
    presented.push('dpop');
  } else if (scheme === 'dpop') {
    throw new AgentwardError('ERR_DPOP_PROOF_MISSING');
  }
  return { accessToken, scheme, dpopProof, presented };
}
