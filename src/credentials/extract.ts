/**
 * Finds every credential a request presents (docs/architecture.md "The request pipeline", step 2), in one place: the Authorization
 * field and its DPoP proof, the workload headers (WIT, a WIMSE-tagged HTTP message signature,
 * context tokens), the Txn-Token, and the client certificate (the connection's, or the one a
 * trusted TLS-terminating hop forwards, RFC 9440). The verifiers take these values,
 * never the raw request, and the list of what was presented (`input.credentials.presented`, the
 * audit record) is made here and nowhere else.
 *
 * Ambiguity is a 400, never a guess: two Authorization fields, a token in the query (RFC 6750
 * §2.3; MCP forbids it), an unsupported scheme, a DPoP proof next to a Bearer token, or a client
 * certificate both on the connection and in a trusted hop's `Client-Cert`. A token in
 * a form body is detected once the body is read (inspect step). Repeated workload or Txn-Token
 * fields are kept as read and refused by their verifier, with that credential's code.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { AgentwardError, asAgentwardError } from '../errors.ts';
import { CREDENTIAL_HEADERS } from '../identity/credential-headers.ts';
import { tlsCertificateOf, type PresentedCertificate } from './client-certificate.ts';
import type { TrustedProxies } from './client-cert-header.ts';
import { findWimseSignature } from './http-signature.ts';

/** What a verifier may need to know about the request itself, besides the credentials. */
export interface RequestFacts {
  method: string;
  /** The request path as received (RFC 9421 §2.2.6), without the query. */
  path: string;
  /** The raw query with its `?`, or `?` when there is none (RFC 9421 §2.2.7). */
  query: string;
  /** The target URI from trusted configuration: resource origin + path, no query (never Host). */
  targetUri: string;
  /** The resource's authority (host[:port], lower case, default port left out), from configuration, never Host: `@authority` (RFC 9421 §2.2.3). */
  authority: string;
  /** The resource's scheme, lower case, from configuration: `@scheme` (RFC 9421 §2.2.4). */
  scheme: string;
  /** Every field as received, lower-case names (HTTP message signature components). */
  headers: Readonly<Record<string, string[]>>;
  /** Reads the whole body (bounded), once; called only after the caller is known. */
  readBody: () => Promise<Buffer>;
}

export interface PresentedCredentials {
  /** The token from `Authorization: Bearer` (an access token or a JWT-SVID) or `Authorization: DPoP`, if any. */
  accessToken: string | undefined;
  /** Which scheme the Authorization field used. */
  scheme: 'bearer' | 'dpop' | 'wpt' | undefined;
  /** The Workload Proof Token of `Authorization: WPT` (wpt-02 §2), which then carries no access token (§2.2). */
  wpt: string | undefined;
  /** The `DPoP` header (RFC 9449 §4.1), with the DPoP scheme only. */
  dpopProof: string | undefined;
  /** `Workload-Identity-Token` field values (one is allowed; the WIT check refuses more). */
  wits: readonly string[] | undefined;
  /** A wpt-01 `Workload-Proof-Token` field is present (wpt-02 moved the proof to Authorization). */
  legacyWpt: boolean;
  /**
   * The `Signature-Input` member tagged for WIMSE (RFC 9421 §4.1), found once; an unreadable
   * field is kept as its error and raised by the workload step, after the scheme is known.
   */
  signature: { label: string } | AgentwardError | undefined;
  /** `Txn-Token` field values (one is allowed; the Txn-Token check refuses more). */
  txnTokens: readonly string[] | undefined;
  /** Values of the configured context-token headers present (wpt-02 §2 `oth`). */
  contextTokens: Readonly<Record<string, readonly string[]>>;
  /**
   * The caller's client certificate: this connection's, or the `Client-Cert` of a trusted hop
   * (never both, never an untrusted peer's field); null without one. Certificate-bound tokens
   * and X.509-SVIDs are checked against this, and only this.
   */
  clientCertificate: PresentedCertificate | null;
  /** The Bearer token is a SPIFFE JWT-SVID, a workload credential, not an access token. */
  bearerIsJwtSvid: boolean;
  /** Names of what was presented, for `input.credentials.presented` and the audit record. */
  presented: string[];
  /**
   * Nothing at all was presented: no credential header (`CREDENTIAL_HEADERS`, whether or not this
   * resource reads it), no configured context-token header, no TLS client certificate. Only such
   * a request may reach the policy as anonymous (`oauth.anonymous: policy`); anything presented is
   * verified or refused, never ignored.
   */
  anonymous: boolean;
}

/** Workload headers are read only where a `workload` section makes them meaningful. */
export interface WorkloadExtraction {
  /** wpt-02 §2 `oth`: headers that carry other context tokens, lower case. */
  contextTokenHeaders: readonly string[];
  /** The one WIMSE signature label accepted (RFC 9421 §4.1, §7.2.8); undefined: any. */
  signatureLabel?: string | undefined;
  /** Whether a Bearer token is a JWT-SVID (JWT-SVID §5.2); absent when JWT-SVIDs are not accepted. */
  isJwtSvid: ((token: string) => boolean) | undefined;
  /** Whether the client certificate is a SPIFFE X.509-SVID; absent when they are not accepted. */
  presentsX509Svid: ((certificate: PresentedCertificate | null) => boolean) | undefined;
}

export interface ExtractOptions {
  accepted: AcceptedSchemes;
  /** Undefined without a `workload` section. */
  workload: WorkloadExtraction | undefined;
  /** `listen.trustedProxies`: who may forward a client certificate (RFC 9440); undefined: nobody. */
  trustedProxies: TrustedProxies | undefined;
}

const WIT_HEADER = 'workload-identity-token';
/** wpt-01 carried the proof here (with `ath`); wpt-02 moved it to Authorization (U11). */
const LEGACY_WPT_HEADER = 'workload-proof-token';

/** RFC 6750 §2.1 b64token, also RFC 9449 §7.1's token68 for the DPoP scheme. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Which Authorization schemes this resource accepts besides Bearer. */
export interface AcceptedSchemes {
  /** DPoP (RFC 9449), unless `oauth.dpop.mode` is `disabled`. */
  dpop: boolean;
  /** WPT (wpt-02 §2), when a `workload` section is configured. */
  wpt: boolean;
}

/**
 * Step 2: every credential of the request, with the list of what was presented. `query`: the
 * target's query, undefined when it has none (most requests: no URLSearchParams is made for them).
 */
export function extractCredentials(req: IncomingMessage, query: URLSearchParams | undefined, options: ExtractOptions): PresentedCredentials {
  const authorization = readAuthorization(req, query, options.accepted);
  const headers = req.headersDistinct;
  const workload = options.workload;
  const clientCertificate = readClientCertificate(req.socket, headers, options.trustedProxies);
  const bearerIsJwtSvid = authorization.scheme === 'bearer' && authorization.accessToken !== undefined && (workload?.isJwtSvid?.(authorization.accessToken) ?? false);
  // Read with or without a workload section: without one, a WIT is refused, never ignored.
  const wits = headers[WIT_HEADER];
  const signature = workload && headers['signature-input'] !== undefined ? wimseSignature(headers as Record<string, string[]>, workload.signatureLabel) : undefined;
  const txnTokens = headers['txn-token'];
  const contextTokens: Record<string, readonly string[]> = {};
  for (const name of workload?.contextTokenHeaders ?? []) {
    const values = headers[name];
    if (values !== undefined) contextTokens[name] = values;
  }

  const presented = authorization.presented.filter((name) => !(name === 'access_token' && bearerIsJwtSvid));
  if (wits !== undefined) presented.push('wit');
  if (signature !== undefined && !(signature instanceof AgentwardError)) presented.push('http_signature');
  if (workload?.presentsX509Svid?.(clientCertificate)) presented.push('x509_svid');
  if (bearerIsJwtSvid) presented.push('jwt_svid');
  if (txnTokens !== undefined) presented.push('txn_token');
  if (clientCertificate) presented.push('client_certificate');
  return {
    ...authorization,
    wits,
    legacyWpt: headers[LEGACY_WPT_HEADER] !== undefined,
    signature,
    txnTokens,
    contextTokens,
    clientCertificate,
    bearerIsJwtSvid,
    presented,
    anonymous: presented.length === 0 && Object.keys(contextTokens).length === 0 && !CREDENTIAL_HEADERS.some((name) => headers[name] !== undefined),
  };
}

/**
 * The caller's client certificate, by who the peer is (RFC 9440 §4: the fields are accepted only
 * from a trusted hop; RFC 9700 §4.13: and sanitized otherwise):
 * - no `listen.trustedProxies`: the connection's certificate; `Client-Cert` is never read, and is
 *   removed before forwarding as a credential header (MT-N04);
 * - a peer trusted by its certificate (an ingress connecting with mTLS): that certificate is the
 *   hop's identity, never the caller's; the caller's is the forwarded one, or none;
 * - a peer trusted by address: the forwarded one; with a certificate on the connection too, the
 *   request is refused as ambiguous rather than one of them chosen;
 * - any other peer: the connection's certificate, and a `Client-Cert` or `Client-Cert-Chain` from
 *   it is refused. With trusted proxies configured such a field means a caller that bypassed the
 *   ingress or an ingress missing from the list; both should be seen, not end in a puzzling 401.
 */
function readClientCertificate(socket: Socket, headers: NodeJS.Dict<string[]>, proxies: TrustedProxies | undefined): PresentedCertificate | null {
  if (proxies === undefined) return tlsCertificateOf(socket);
  const clientCert = headers['client-cert'];
  const chain = headers['client-cert-chain'];
  const forwarded = clientCert !== undefined || chain !== undefined;
  const trust = proxies.trustOf(socket);
  if (trust === 'certificate') return forwarded ? proxies.certificateFrom(clientCert, chain) : null;
  if (!forwarded) return tlsCertificateOf(socket);
  if (trust === undefined) throw new AgentwardError('ERR_CLIENT_CERT_HEADER_UNTRUSTED');
  if (tlsCertificateOf(socket) !== null) throw new AgentwardError('ERR_CLIENT_CERT_AMBIGUOUS');
  return proxies.certificateFrom(clientCert, chain);
}

function wimseSignature(headers: Readonly<Record<string, string[]>>, label: string | undefined): { label: string } | AgentwardError | undefined {
  try {
    return findWimseSignature(headers, label);
  } catch (err) {
    return asAgentwardError(err);
  }
}

type AuthorizationCredentials = Pick<PresentedCredentials, 'accessToken' | 'scheme' | 'wpt' | 'dpopProof' | 'presented'>;

/** The Authorization field and its DPoP proof (RFC 6750 §2, RFC 9449 §7.1, wpt-02 §2). */
function readAuthorization(req: IncomingMessage, query: URLSearchParams | undefined, accepted: AcceptedSchemes): AuthorizationCredentials {
  const dpopEnabled = accepted.dpop;
  // headersDistinct keeps every field; `req.headers` would silently drop a second Authorization.
  const authorization = req.headersDistinct.authorization ?? [];
  if (authorization.length > 1) throw new AgentwardError('ERR_AUTHORIZATION_MULTIPLE', 'The request has more than one Authorization header (RFC 6750 section 2).');
  if (query?.has('access_token')) throw new AgentwardError('ERR_TOKEN_IN_QUERY');
  const proofs = req.headersDistinct.dpop ?? [];

  const presented: string[] = [];
  let accessToken: string | undefined;
  let wpt: string | undefined;
  let scheme: PresentedCredentials['scheme'];
  const header = authorization[0];
  if (header !== undefined) {
    // Only OWS (SP, HTAB; RFC 9110 §5.6.3) is trimmed: String#trim would also drop U+00A0 (an
    // obs-text byte 0xA0 in a latin1-decoded field) and so accept a token the upstream reads differently.
    const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/.exec(header.replace(/^[ \t]+|[ \t]+$/g, ''));
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
