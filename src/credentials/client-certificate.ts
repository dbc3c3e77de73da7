/**
 * The client certificate of a request: facts for the policy, and the check of an RFC 8705
 * certificate-bound access token against it. The certificate comes from the TLS layer of this
 * connection (RFC 8705 §3), or, behind a TLS-terminating hop listed in `listen.trustedProxies`,
 * from that hop's RFC 9440 `Client-Cert` field (src/credentials/client-cert-header.ts, RFC 8705
 * §6.5). Anyone else's `Client-Cert` proves nothing: never read, and removed as a credential
 * header (RFC 9700 §4.13; MT-N04), or refused when trusted proxies are configured.
 */
import { hash, X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { deepFreeze } from '../jose/segments.ts';
import { AgentwardError } from '../errors.ts';
import type { ClientCertificate } from '../identity/client-certificate.ts';

/**
 * A client certificate as presented, whatever carried it: one object per TLS connection, or per
 * distinct `Client-Cert` value from a trusted hop, so that what is computed from it (the X.509-SVID
 * checks, src/credentials/x509-svid.ts) can be kept with it.
 */
export interface PresentedCertificate {
  /** What carried it: this connection's TLS handshake, or a trusted hop's `Client-Cert` field. */
  via: 'tls' | 'header';
  leaf: X509Certificate;
  /** The facts the policy sees; `verified` says whose check the chain passed (docs/policy-guide.md). */
  facts: ClientCertificate;
  /**
   * The certificates sent above the leaf, in the order sent (TLS: as Node links them), at most
   * `max`: candidates for intermediates, never anchors. Read on first use.
   */
  issuers(max: number): readonly X509Certificate[];
  /** Why the chain was not verified, when `facts.verified` is false. */
  verifyError: unknown;
}

/**
 * Per connection, computed on its first request. A connection's certificate cannot change
 * afterwards: the listener disables TLS renegotiation on every connection (src/app/listeners.ts), and
 * TLS 1.3 has none.
 */
const byConnection = new WeakMap<Socket, PresentedCertificate | null>();

/** The TLS client certificate of the connection `socket`, or null (plain HTTP, or no certificate sent). */
export function tlsCertificateOf(socket: Socket): PresentedCertificate | null {
  if (!(socket instanceof TLSSocket)) return null;
  let presented = byConnection.get(socket);
  if (presented === undefined) {
    presented = readCertificate(socket);
    byConnection.set(socket, presented);
  }
  return presented;
}

function readCertificate(socket: TLSSocket): PresentedCertificate | null {
  const leaf = socket.getPeerX509Certificate();
  if (!leaf) return null;
  let issuers: X509Certificate[] | undefined;
  return {
    via: 'tls',
    leaf,
    facts: certificateFacts(leaf, socket.authorized),
    issuers: (max) => (issuers ??= linkedIssuers(socket, leaf, max)),
    verifyError: socket.authorizationError,
  };
}

/**
 * A client certificate that reached the caller some other way than agentward's own listener (a
 * library caller's transport, a header of a hop it trusts): the leaf, the certificates sent above
 * it (candidates for intermediates, never anchors), and whether that transport verified the chain
 * (`verified`, like `socket.authorized`). verifyX509Svid builds the chain to the trust domain's own
 * authorities itself (X509-SVID §5.1); it refuses an SVID whose chain was not `verified` where it
 * was presented with ERR_X509_SVID_CHAIN, because that check covers what it does not repeat
 * (unknown critical extensions, name constraints: RFC 5280 §6.1). Build one object per
 * certificate and keep it: what is computed from it is kept with it.
 */
export function presentedCertificate(leaf: X509Certificate, options: { issuers?: readonly X509Certificate[] | undefined; verified: boolean; verifyError?: unknown }): PresentedCertificate {
  const issuers = [...(options.issuers ?? [])];
  return { via: 'header', leaf, facts: certificateFacts(leaf, options.verified), issuers: (max) => issuers.slice(0, max), verifyError: options.verifyError };
}

/** The facts of `leaf` for the policy; `verified` is the caller's verdict on its chain. */
export function certificateFacts(leaf: X509Certificate, verified: boolean): ClientCertificate {
  return deepFreeze({
    subject: distinguishedName(leaf.subject),
    issuer: distinguishedName(leaf.issuer),
    sans: subjectAltNames(leaf.subjectAltName),
    thumbprint: hash('sha256', leaf.raw, 'base64url'),
    notBefore: Math.floor(leaf.validFromDate.getTime() / 1000),
    notAfter: Math.floor(leaf.validToDate.getTime() / 1000),
    verified,
  });
}

/**
 * The certificates above the leaf as the client sent them, in the order Node links them
 * (`issuerCertificate`, by name and key identifier; it may also append the matching CA from the
 * listener's own store). At most `max` are read.
 */
function linkedIssuers(socket: TLSSocket, leaf: X509Certificate, max: number): X509Certificate[] {
  const seen = new Set([leaf.fingerprint256]);
  const issuers: X509Certificate[] = [];
  let cert = socket.getPeerCertificate(true);
  for (let i = 0; i < max; i++) {
    const next = cert.issuerCertificate as typeof cert | undefined;
    if (next === undefined || next === cert || !Buffer.isBuffer(next.raw)) break;
    cert = next;
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(next.raw);
    } catch {
      break;
    }
    if (seen.has(x509.fingerprint256)) break;
    seen.add(x509.fingerprint256);
    issuers.push(x509);
  }
  return issuers;
}

/**
 * A distinguished name as an RFC 4514 string, from Node's `X509Certificate.subject`/`.issuer`.
 * Node prints one RDN per line, in certificate order, values escaped as RFC 4514 §2.4 asks;
 * RFC 4514 §2.1 writes the RDNs in reverse order, separated by commas.
 */
export function distinguishedName(multiline: string): string {
  return multiline === '' ? '' : multiline.split('\n').reverse().join(',');
}

/**
 * Parses Node's `subjectAltName` text ("DNS:a, IP Address:10.0.0.1, URI:..."). A value that holds
 * a comma, quote, backslash or control character is printed as a JSON string, so splitting on
 * ", " outside quotes is unambiguous.
 */
function subjectAltNames(text: string | undefined): ClientCertificate['sans'] {
  const sans: ClientCertificate['sans'] = { uri: [], dns: [], email: [], ip: [] };
  if (!text) return sans;
  for (const m of text.matchAll(/(?:^|, )([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const value = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
    switch (m[1]) {
      case 'URI':
        sans.uri.push(value);
        break;
      case 'DNS':
        sans.dns.push(value);
        break;
      case 'email':
        sans.email.push(value);
        break;
      case 'IP Address':
        // Node prints IPv6 upper-case and uncompressed; policies compare the RFC 5952 form.
        sans.ip.push(value.includes(':') ? new URL(`http://[${value}]`).hostname.slice(1, -1) : value);
        break;
    }
  }
  return sans;
}

/**
 * RFC 8705 §3.1: the certificate a token is bound to, `cnf["x5t#S256"]`, or undefined. Runs after
 * the confirmation methods were found verifiable on this listener (`dpopKeyOf` in claims.ts). The
 * value is compared as sent: a thumbprint in another encoding (hex, padded) or over the PEM text
 * simply matches no certificate (MT-N03).
 */
export function boundCertificateOf(cnf: unknown): string | undefined {
  if (cnf === null || typeof cnf !== 'object') return undefined;
  const x5t = (cnf as Record<string, unknown>)['x5t#S256'];
  if (x5t === undefined) return undefined;
  if (typeof x5t !== 'string' || x5t === '') throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'cnf.x5t#S256 must be a base64url SHA-256 certificate thumbprint (RFC 8705 section 3.1).');
  // RFC 7800 §3.1: `cnf` represents a single proof-of-possession key.
  if ('jkt' in cnf) throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'The cnf claim names both a DPoP key and a certificate; RFC 7800 section 3.1 allows one proof-of-possession key.');
  return x5t;
}

/** SHA-256 is 32 bytes: 43 base64url characters without padding. */
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

/**
 * RFC 8705 §3: a certificate-bound token must come with a client certificate (this connection's,
 * or a trusted hop's `Client-Cert`) that hashes to its `x5t#S256`; otherwise 401 `invalid_token`.
 * The chain is not judged here: §6.2 lets the resource skip it for proof of possession (the
 * handshake, ours or the hop's, proved the private key), and the policy sees `verified`.
 */
export function checkCertificateBinding(boundTo: string, certificate: ClientCertificate | null): void {
  if (certificate === null) throw new AgentwardError('ERR_MTLS_CERTIFICATE_MISSING');
  if (certificate.thumbprint === boundTo) return;
  throw new AgentwardError(
    'ERR_MTLS_BINDING_MISMATCH',
    THUMBPRINT.test(boundTo) ? undefined : 'cnf.x5t#S256 is not a base64url SHA-256 thumbprint of a DER certificate without padding (RFC 8705 section 3.1), so no certificate matches it.',
  );
}
