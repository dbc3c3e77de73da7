/**
 * The TLS client certificate of a connection, as facts: plain data, produced from the TLS layer
 * only (src/credentials/client-certificate.ts), never from a header.
 */

/** What the policy sees as `input.request.clientCertificate` (docs/policy-guide.md). */
export interface ClientCertificate {
  /** Subject distinguished name, RFC 4514 string (most specific RDN first, as RFC 8705 §2.1.2 uses). */
  subject: string;
  /** Issuer distinguished name, same format. */
  issuer: string;
  /** Subject alternative names by type; other name types are not exposed. IPv6 in RFC 5952 form. */
  sans: { uri: string[]; dns: string[]; email: string[]; ip: string[] };
  /** RFC 8705 §3.1 `x5t#S256`: base64url (no padding) SHA-256 of the certificate's DER. */
  thumbprint: string;
  /** Validity, seconds since the epoch. */
  notBefore: number;
  notAfter: number;
  /** Whether the chain was verified against `listen.tls.clientCaFile` in the handshake (`socket.authorized`). */
  verified: boolean;
}
