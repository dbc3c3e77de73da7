/**
 * The client certificate of a request, as facts: plain data, produced from the TLS layer
 * (src/credentials/client-certificate.ts) or from a trusted proxy's RFC 9440 `Client-Cert`
 * (src/credentials/client-cert-header.ts), never from anyone else's header.
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
  /** Whether the chain was verified: in the handshake (`socket.authorized`), or by agentward for a forwarded certificate (always true: one that fails is refused). */
  verified: boolean;
}
