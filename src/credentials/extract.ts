/**
 * Finds every credential a request presents (design §2 step 2). Ambiguity is a 400, never a
 * guess: two Authorization fields, a token in the query (RFC 6750 §2.3; MCP forbids it), an
 * unsupported scheme, or a DPoP proof next to a Bearer token. A token in a form body is detected
 * once the body is read (inspect step).
 */
import type { IncomingMessage } from 'node:http';
import { AgentwardError } from '../errors.ts';

export interface PresentedCredentials {
  /** The token from `Authorization: Bearer` (an access token or a JWT-SVID) or `Authorization: DPoP`, if any. */
  accessToken: string | undefined;
  /** Which scheme the Authorization field used. */
  scheme: 'bearer' | 'dpop' | 'wpt' | undefined;
  /** The Workload Proof Token of `Authorization: WPT` (wpt-02 §2), which then carries no access token (§2.2). */
  wpt: string | undefined;
  /** The `DPoP` header (RFC 9449 §4.1), with the DPoP scheme only. */
  dpopProof: string | undefined;
  /** Names of what was presented, for `input.credentials.presented` and the audit record. */
  presented: string[];
}

/** RFC 6750 §2.1 b64token, also RFC 9449 §7.1's token68 for the DPoP scheme. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Which Authorization schemes this resource accepts besides Bearer. */
export interface AcceptedSchemes {
  /** DPoP (RFC 9449), unless `oauth.dpop.mode` is `disabled`. */
  dpop: boolean;
  /** WPT (wpt-02 §2), when a `workload` section is configured. */
  wpt: boolean;
}

export function extractCredentials(req: IncomingMessage, query: URLSearchParams, accepted: AcceptedSchemes): PresentedCredentials {
  const dpopEnabled = accepted.dpop;
  // headersDistinct keeps every field; `req.headers` would silently drop a second Authorization.
  const authorization = req.headersDistinct.authorization ?? [];
  if (authorization.length > 1) throw new AgentwardError('ERR_AUTHORIZATION_MULTIPLE', 'The request has more than one Authorization header (RFC 6750 section 2).');
  if (query.has('access_token')) throw new AgentwardError('ERR_TOKEN_IN_QUERY');
  const proofs = req.headersDistinct.dpop ?? [];

  const presented: string[] = [];
  let accessToken: string | undefined;
  let wpt: string | undefined;
  let scheme: PresentedCredentials['scheme'];
  const header = authorization[0];
  if (header !== undefined) {
    const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/.exec(header.trim());
    if (!match) throw new AgentwardError('ERR_AUTHORIZATION_MALFORMED');
    const name = match[1]!.toLowerCase();
    const credentials = match[2] ?? '';
    if (name === 'bearer') scheme = 'bearer';
    else if (name === 'dpop' && dpopEnabled) scheme = 'dpop';
    else if (name === 'wpt' && accepted.wpt) scheme = 'wpt';
    else throw new AgentwardError('ERR_AUTHORIZATION_SCHEME', `Use Authorization: ${['Bearer', ...(dpopEnabled ? ['DPoP'] : []), ...(accepted.wpt ? ['WPT'] : [])].join(', ')}.`);
    if (scheme === 'wpt') {
      // wpt-02 §2: `WPT 1*SP token68`. A malformed one is a WPT failure (401 with the WPT
      // challenge, §2.1), reported by the WPT check (WPT-N05).
      wpt = credentials;
      presented.push('wpt');
    } else {
      if (!B64TOKEN.test(credentials)) throw new AgentwardError('ERR_AUTHORIZATION_MALFORMED', `The ${match[1]} credentials must be one token (RFC 6750 section 2.1).`);
      accessToken = credentials;
      presented.push('access_token');
    }
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
  return { accessToken, scheme, wpt, dpopProof, presented };
}
