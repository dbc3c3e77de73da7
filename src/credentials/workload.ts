/**
 * Which workload (agent) is calling, proven cryptographically (design §3.3 `agent`; draft-aims
 * §6–§9). Four credentials prove a workload identity:
 *
 * - a WIT (`Workload-Identity-Token`, workload-creds-02 §5.1) with a proof of possession of its
 *   `cnf.jwk`: `Authorization: WPT` (wpt-02 §2) or a WIMSE HTTP message signature
 *   (http-signature §3, RFC 9421);
 * - an X.509-SVID as the TLS client certificate (X509-SVID §5);
 * - a JWT-SVID in `Authorization: Bearer` (JWT-SVID §5.2).
 *
 * Rules for combining them (credentials.md §A.6, §H.1; issue 4 item 7): every credential that is
 * presented is verified fully, and one that fails rejects the request even when another is valid;
 * all proven identities must be the same identifier (else ERR_WORKLOAD_CONFLICT); a WIT is never
 * accepted without its proof (WIT-N29). The identity is the full identifier URI (identifier-03
 * §4.3), never a header the caller sent.
 */
import type { IncomingMessage } from 'node:http';
import type { X509Certificate } from 'node:crypto';
import { AgentwardError } from '../errors.ts';
import type { VerifiedAccessToken } from './access-token.ts';
import type { PresentedCredentials } from './extract.ts';
import { findWimseSignature, type HttpSignatureVerifier } from './http-signature.ts';
import { looksLikeJwtSvid, type JwtSvidVerifier } from './jwt-svid.ts';
import type { WimseVerifier } from './wimse.ts';
import { verifyX509Svid } from './x509-svid.ts';

/** How the identity was proven (`input.agent.via`). */
export type WorkloadProof = 'wit+wpt' | 'wit+http_signature' | 'x509_svid' | 'jwt_svid';

/** A workload identity proven on a request; `input.agent` (design §3.3) is this plus the token match. */
export interface ProvenWorkload {
  /** The full workload identifier, exactly as the credential carries it, e.g. `spiffe://agents.example.com/research-bot`: compare it whole (identifier-03 §4.3). */
  id: string;
  trustDomain: string;
  /** The identifier path, e.g. `/research-bot`; meaningful only with `trustDomain`. */
  path: string;
  via: WorkloadProof;
  /** When the proving credential expires, seconds since the epoch. */
  expiresAt: number;
  /** The credential's other verified claims (WIT or JWT-SVID claims; certificate facts for an X.509-SVID). */
  claims: Record<string, unknown>;
}

/** Whether the access token's parties are this workload (`input.agent.token`); null when the token has no such party. */
export interface TokenMatch {
  clientId: boolean | null;
  actor: boolean | null;
}

export type BindingRule = 'none' | 'client_id' | 'actor' | 'client_id_or_actor';

export interface WorkloadAuthenticatorOptions {
  wimse: Pick<WimseVerifier, 'verify' | 'verifyIdentityToken'>;
  httpSignatures: Pick<HttpSignatureVerifier, 'verify'>;
  /** Undefined when `workload.jwtSvid.enabled` is false. */
  jwtSvid: Pick<JwtSvidVerifier, 'verify'> | undefined;
  /** X.509 authorities of a configured trust domain; undefined when X.509-SVIDs are not accepted. */
  x509Authorities: ((trustDomain: string) => readonly X509Certificate[] | undefined) | undefined;
  trustDomains: ReadonlySet<string>;
  /** Issuers of `oauth.issuers`: a token naming one of them is an access token, never a JWT-SVID. */
  oauthIssuers: ReadonlySet<string>;
  /** wpt-02 §2 `oth`: headers that carry other context tokens, lower case. */
  contextTokenHeaders: readonly string[];
  required: boolean;
  binding: { rule: BindingRule; clients: Readonly<Record<string, string>> };
  now: () => number;
}

export interface WorkloadRequest {
  req: IncomingMessage;
  credentials: PresentedCredentials;
  /** The target URI from trusted configuration: resource origin + path, no query. */
  targetUri: string;
  path: string;
  /** The raw query with its `?`, or `?` when there is none (RFC 9421 §2.2.7). */
  query: string;
  /** Reads the whole body (bounded); called only once the WIT has been verified. */
  readBody: () => Promise<Buffer>;
}

export interface WorkloadResult {
  agent: ProvenWorkload | undefined;
  /** True when the Bearer token was a JWT-SVID: it is a workload credential, not an access token. */
  bearerWasJwtSvid: boolean;
  /** Context-token headers a WPT did not bind with `oth`: they must not reach the policy (wpt-02 §2, WPT-N31). */
  unboundContextHeaders: string[];
  /** Names for `input.credentials.presented`, besides those of the Authorization field. */
  presented: string[];
}

const WIT_HEADER = 'workload-identity-token';
/** wpt-01 carried the proof here (with `ath`); wpt-02 moved it to Authorization (U11). */
const LEGACY_WPT_HEADER = 'workload-proof-token';

export class WorkloadAuthenticator {
  private readonly options: WorkloadAuthenticatorOptions;

  constructor(options: WorkloadAuthenticatorOptions) {
    this.options = options;
  }

  /**
   * How the request proves its WIT, decided before anything is verified so that a failure gets
   * the status of its mode (U3). Cheap: one header lookup and, with Signature-Input, one parse.
   */
  proofMode(req: IncomingMessage, credentials: PresentedCredentials): 'wpt' | 'http_signature' | undefined {
    if (credentials.scheme === 'wpt') return 'wpt';
    if (req.headersDistinct['signature-input'] !== undefined && findWimseSignature(req.headersDistinct as Record<string, string[]>)) return 'http_signature';
    if (req.headersDistinct[WIT_HEADER] !== undefined) return 'wpt';
    return undefined;
  }

  async authenticate(r: WorkloadRequest): Promise<WorkloadResult> {
    const { req, credentials } = r;
    const headers = req.headersDistinct as Record<string, string[]>;
    const proven: ProvenWorkload[] = [];
    const presented: string[] = [];
    let unboundContextHeaders: string[] = [];

    if (headers[LEGACY_WPT_HEADER] !== undefined) throw new AgentwardError('ERR_WPT_LEGACY');
    const wits = headers[WIT_HEADER];
    if (wits !== undefined && wits.length > 1) throw new AgentwardError('ERR_WIT_MULTIPLE');
    const wit = wits?.[0];
    const signature = headers['signature-input'] !== undefined ? findWimseSignature(headers) : undefined;
    if (wit !== undefined) presented.push('wit');
    if (signature !== undefined) presented.push('http_signature');

    if (credentials.scheme === 'wpt' || signature !== undefined) {
      if (wit === undefined) throw new AgentwardError('ERR_WIT_MISSING');
      if (credentials.scheme === 'wpt') {
        // wpt-02 §2: WIT first, then the WPT with wth, tth (U4) and oth bound to this request.
        const workload = await this.options.wimse.verify({
          wit,
          wpt: credentials.wpt!,
          targetUri: r.targetUri,
          txnToken: singleTxnToken(headers),
          otherTokens: this.contextTokens(headers),
        });
        unboundContextHeaders = this.options.contextTokenHeaders.filter((h) => headers[h] !== undefined && !workload.boundContextTokens.includes(h));
        proven.push({ id: workload.id, trustDomain: workload.trustDomain, path: workload.path, via: 'wit+wpt', expiresAt: workload.expiresAt, claims: witClaims(workload.witClaims) });
      }
      if (signature !== undefined) {
        // http-signature §3: the WIT is validated before the signature, and the body read only then.
        const verified = await this.options.wimse.verifyIdentityToken(wit, r.targetUri);
        const body = await r.readBody();
        await this.options.httpSignatures.verify({ method: req.method ?? 'GET', path: r.path, query: r.query, headers, body: body.length > 0 ? body : undefined }, { key: verified.key, alg: verified.alg, thumbprint: verified.jkt }, r.targetUri);
        if (credentials.scheme !== 'wpt') {
          proven.push({ id: verified.id.id, trustDomain: verified.id.trustDomain, path: verified.id.path, via: 'wit+http_signature', expiresAt: verified.exp, claims: witClaims(verified.claims) });
        }
      }
    } else if (wit !== undefined) {
      // WIT-N29: a WIT is not a bearer credential (creds-02 §5.1, §9.2; WIT-SVID §7.1).
      throw new AgentwardError('ERR_WIT_NO_PROOF');
    }

    if (this.options.x509Authorities) {
      const svid = verifyX509Svid(req.socket, this.options.x509Authorities, this.options.now());
      if (svid) {
        presented.push('x509_svid');
        proven.push({ id: svid.id, trustDomain: svid.trustDomain, path: svid.path, via: 'x509_svid', expiresAt: svid.expiresAt, claims: { ...svid.claims } });
      }
    }

    let bearerWasJwtSvid = false;
    const token = credentials.accessToken;
    if (credentials.scheme === 'bearer' && token !== undefined && this.options.jwtSvid && looksLikeJwtSvid(token, this.options.trustDomains, this.options.oauthIssuers)) {
      const svid = await this.options.jwtSvid.verify(token);
      bearerWasJwtSvid = true;
      presented.push('jwt_svid');
      proven.push({ id: svid.id, trustDomain: svid.trustDomain, path: svid.path, via: 'jwt_svid', expiresAt: svid.expiresAt, claims: svid.claims });
    }

    const agent = proven[0];
    if (agent !== undefined && proven.some((p) => p.id !== agent.id)) throw new AgentwardError('ERR_WORKLOAD_CONFLICT');
    if (agent === undefined && this.options.required) throw new AgentwardError('ERR_WORKLOAD_MISSING');
    return { agent, bearerWasJwtSvid, unboundContextHeaders, presented };
  }

  /**
   * Whether the access token was issued to this workload: its `client_id`, and its current actor
   * (RFC 8693 §4.1 `act.sub`; earlier actors never count), each mapped through
   * `workload.binding.clients`. The configured rule makes a mismatch a rejection (ACT-N05).
   */
  matchToken(agent: ProvenWorkload, token: VerifiedAccessToken): TokenMatch {
    const { rule, clients } = this.options.binding;
    const names = (value: unknown): boolean | null => (typeof value === 'string' ? (clients[value] ?? value) === agent.id : null);
    const match: TokenMatch = { clientId: names(token.clientId ?? undefined), actor: names(token.delegation.chain[0]?.sub) };
    const ok =
      rule === 'none' ||
      (rule === 'client_id' && match.clientId === true) ||
      (rule === 'actor' && match.actor === true) ||
      (rule === 'client_id_or_actor' && (match.clientId === true || match.actor === true));
    if (!ok) throw new AgentwardError('ERR_WORKLOAD_TOKEN_MISMATCH');
    return match;
  }

  /** The configured context-token headers present on the request, each exactly once (WPT-N30). */
  private contextTokens(headers: Readonly<Record<string, string[]>>): Record<string, string> | undefined {
    const found: Record<string, string> = {};
    for (const name of this.options.contextTokenHeaders) {
      const values = headers[name];
      if (values === undefined) continue;
      if (values.length > 1) throw new AgentwardError('ERR_WPT_OTH', `The context token header ${name} appears more than once; oth binds one value (wpt-02 section 2).`);
      found[name] = values[0]!;
    }
    return Object.keys(found).length > 0 ? found : undefined;
  }
}

/** The Txn-Token a WPT's `tth` must bind (wpt-02 §2); two are refused before any hash is compared. */
function singleTxnToken(headers: Readonly<Record<string, string[]>>): string | undefined {
  const values = headers['txn-token'];
  if (values === undefined) return undefined;
  if (values.length > 1) throw new AgentwardError('ERR_TXN_TOKEN_MULTIPLE');
  return values[0];
}

/** The WIT claims for the policy, minus those already in named fields or useless to it. */
function witClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const { sub: _sub, exp: _exp, cnf: _cnf, ...rest } = claims;
  return rest;
}
