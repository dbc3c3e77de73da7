/**
 * The TLS client certificate of a connection: facts for the policy, and the check of an
 * RFC 8705 certificate-bound access token against it. The certificate comes from the TLS layer of
 * this connection only (RFC 8705 §3), never from a header: a `Client-Cert` field (RFC 9440) sent
 * by a caller proves nothing and is removed as a credential header (RFC 9700 §4.13; MT-N04).
 */
import { hash } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { deepFreeze } from '../jose/segments.ts';
import { AgentwardError } from '../errors.ts';
import type { ClientCertificate } from '../identity/client-certificate.ts';

/**
 * Facts per connection, computed on its first request. A connection's certificate cannot change
 * afterwards: the listener disables TLS renegotiation on every connection (src/app/listeners.ts), and
 * TLS 1.3 has none.
 */
const byConnection = new WeakMap<Socket, ClientCertificate | null>();

/** The client certificate of the connection `socket`, or null (plain HTTP, or no certificate sent). */
export function clientCertificateOf(socket: Socket): ClientCertificate | null {
  if (!(socket instanceof TLSSocket)) return null;
  let facts = byConnection.get(socket);
  if (facts === undefined) {
    facts = readCertificate(socket);
    byConnection.set(socket, facts);
  }
  return facts;
}

function readCertificate(socket: TLSSocket): ClientCertificate | null {
  const x509 = socket.getPeerX509Certificate();
  if (!x509) return null;
  return deepFreeze({
    subject: distinguishedName(x509.subject),
    issuer: distinguishedName(x509.issuer),
    sans: subjectAltNames(x509.subjectAltName),
    thumbprint: hash('sha256', x509.raw, 'base64url'),
    notBefore: Math.floor(x509.validFromDate.getTime() / 1000),
    notAfter: Math.floor(x509.validToDate.getTime() / 1000),
    verified: socket.authorized,
  });
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
 * RFC 8705 §3: a certificate-bound token must come over a connection whose client certificate
 * hashes to its `x5t#S256`; otherwise 401 `invalid_token`. The chain is not judged here: §6.2
 * lets the resource skip it for proof of possession (the handshake proved the private key), and
 * the policy sees `verified`.
 */
export function checkCertificateBinding(boundTo: string, certificate: ClientCertificate | null): void {
  if (certificate === null) throw new AgentwardError('ERR_MTLS_CERTIFICATE_MISSING');
  if (certificate.thumbprint === boundTo) return;
  throw new AgentwardError(
    'ERR_MTLS_BINDING_MISMATCH',
    THUMBPRINT.test(boundTo) ? undefined : 'cnf.x5t#S256 is not a base64url SHA-256 thumbprint of a DER certificate without padding (RFC 8705 section 3.1), so no certificate matches it.',
  );
}
