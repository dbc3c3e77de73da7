/**
 * SPIFFE X509-SVIDs (X509-SVID.md, Stable; cases X5-Nxx in docs/negative-cases.md) presented as the
 * client certificate of a request: the TLS client certificate of the connection, or the
 * `Client-Cert` of a trusted TLS-terminating hop (src/credentials/client-cert-header.ts), judged
 * the same way.
 *
 * A client certificate is an X509-SVID when it carries a URI SAN with the `spiffe` scheme (any
 * case, so `SPIFFE://` is judged, not waved through). Without one it is a plain client
 * certificate (RFC 8705, `input.request.clientCertificate`) and nothing here applies. With one it
 * must pass every check below or the request is refused; there is no partial identity.
 *
 * Checks run in one fixed order, each failure with its own code:
 * 1. exactly one URI SAN (§2; X5-N01, X5-N02: a SPIFFE ID next to any other URI is refused);
 * 2. SPIFFE ID syntax with a non-root path (SPIFFE-ID §2, §5.2; X5-N03, X5-N08, ID-N15);
 * 3. the trust domain is configured (Bundle §3, identifier-03 §7.3);
 * 4. leaf profile (§4.1, §4.3, §5.2; X5-N04, X5-N05): not a CA; key usage present, with
 *    `digitalSignature`, without `keyCertSign`/`cRLSign`; each extension at most once (RFC 5280
 *    §4.2). Decision on EKU (§4.4 asks issuers for both `serverAuth` and `clientAuth` when it is
 *    present): a client certificate needs `clientAuth` (mutual-tls §3.2, and OpenSSL's own client
 *    purpose check in the handshake); `serverAuth` is not required, because a validator gains
 *    nothing from it and go-spiffe does not check EKU at all;
 * 5. the chain (§5.1, X5-N06): built signature by signature from the leaf to an X.509 authority
 *    of the SVID's own trust domain, through intermediates the client sent that are CAs
 *    (cA=true, `keyCertSign`, path length constraints honoured), at most {@link MAX_CHAIN_LENGTH}
 *    certificates. Only bundle authorities are anchors: nothing the client sends is trusted as
 *    one. The handshake verified the chain against the union of all CAs (listen.tls.clientCaFile
 *    and every bundle), which would let domain A's CA vouch for a domain B ID; this check is what
 *    ties the ID to its own domain;
 * 6. every certificate of that chain, anchor included, is within its validity at `nowMs` (X5-N07).
 *    After the chain, so that the dates of a certificate nobody vouches for are never reported;
 * 7. the chain was verified where the certificate was presented too (`facts.verified`: the TLS
 *    handshake's `socket.authorized`, or agentward's own check of a hop's `Client-Cert`, which is
 *    refused before this when it fails). Last, because OpenSSL also refuses an expired chain and
 *    would hide the precise code of step 6. It adds what this module does not repeat: unknown
 *    critical extensions and name constraints (RFC 5280 §6.1).
 *
 * Work per presented certificate (one per connection, or per distinct `Client-Cert` value): the
 * certificates are parsed once and the chain is built once per bundle (the authorities array is
 * replaced, never mutated, when a bundle changes: src/keys/trust-bundle.ts), so a keep-alive
 * connection's later requests only ask for the authorities (an unavailable bundle still fails
 * closed, ERR_KEYS_UNAVAILABLE) and compare the clock with the chain's validity. A connection's
 * certificate cannot change: the listener refuses renegotiation (src/app/listeners.ts).
 *
 * X.509 extensions are read with @peculiar/asn1-x509: node:crypto's X509Certificate exposes
 * neither key usage bits nor basic constraints, and prints SANs as text that is hard to split
 * safely.
 */
import type { X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Asn1Schema from '@peculiar/asn1-schema';
import type * as Asn1X509 from '@peculiar/asn1-x509';
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { parseWorkloadId, WorkloadIdError, type WorkloadId } from '../identity/workload-id.ts';
import { distinguishedName, type PresentedCertificate } from './client-certificate.ts';

export interface VerifiedX509Svid {
  /** The SPIFFE ID exactly as in the certificate: the only value to authorize on. */
  id: string;
  trustDomain: string;
  /** The SPIFFE ID path, starting with `/` (never empty: §5.2). */
  path: string;
  /** The leaf's notAfter, seconds since the epoch. */
  expiresAt: number;
  /** Facts of the leaf for the policy and the audit record. */
  claims: {
    /** Upper-case hex, as node:crypto prints it. */
    serialNumber: string;
    /** SHA-256 of the DER, colon-separated upper-case hex, as node:crypto prints it. */
    fingerprint256: string;
    /** Issuer distinguished name, RFC 4514 string. */
    issuer: string;
    /** Validity, seconds since the epoch. */
    notBefore: number;
    notAfter: number;
  };
}

/**
 * The X.509 authorities of a trust domain, or undefined when the domain is not configured:
 * `(td) => bundles.get(td)?.x509Authorities()`. It may throw ERR_KEYS_UNAVAILABLE (no bundle
 * loaded, or a stale one); that propagates unchanged (fail closed, conventions §9). It must return
 * the same array until the domain's authorities change.
 */
export type X509AuthoritiesOf = (trustDomain: string) => readonly X509Certificate[] | undefined;

/** Longest accepted chain, leaf and anchor included. SPIRE's deepest usual chains have 4. */
export const MAX_CHAIN_LENGTH = 8;

type X509SvidErrorCode = Extract<ErrorCode, `ERR_X509_SVID_${string}`>;

/** A failure remembered for a connection; each request gets its own error object. */
export interface Failure {
  code: X509SvidErrorCode;
  detail: string;
  /** buildChain: no anchor was reached (the other failures are about the chain's shape). */
  noAnchor?: true;
}

interface Presented {
  id: WorkloadId;
  leaf: X509Certificate;
  /** A leaf profile failure (step 4), thrown after the trust domain check (step 3). */
  leafFailure: Failure | undefined;
  /** The certificates the client sent above the leaf: candidates for intermediates, never anchors. */
  issuers: readonly X509Certificate[];
  /** Whether the chain was verified where it was presented (`facts.verified`). */
  authorized: boolean;
  result: VerifiedX509Svid;
  /** The chain built for one authorities array (compared by reference). */
  built: { authorities: readonly X509Certificate[]; outcome: Chain | Failure } | undefined;
}

export interface Chain {
  /** Latest notBefore and earliest notAfter over the chain, anchor included, in ms. */
  notBefore: number;
  notAfter: number;
  /** Which certificate bounds each side, for the error detail. */
  notBeforeOf: string;
  notAfterOf: string;
}

/** Per presented certificate: what was read from it, or null for a plain certificate. */
const byCertificate = new WeakMap<PresentedCertificate, Presented | Failure | null>();

/**
 * Verifies the request's client certificate as an X509-SVID, in the order of the module comment.
 * Returns undefined when there is no client certificate, or it has no `spiffe` URI SAN (a plain client certificate, not a workload credential).
 * Otherwise returns the verified SVID or throws AgentwardError with an ERR_X509_SVID_* code (or
 * the ERR_KEYS_UNAVAILABLE of `authoritiesOf`).
 *
 * @param nowMs the time to judge validity at, ms since the epoch (checked on every call).
 */
export function verifyX509Svid(certificate: PresentedCertificate | null, authoritiesOf: X509AuthoritiesOf, nowMs: number): VerifiedX509Svid | undefined {
  if (!presentsX509Svid(certificate)) return undefined;
  const presented = byCertificate.get(certificate!)!;
  if (!('id' in presented)) throw fail(presented);

  const authorities = authoritiesOf(presented.id.trustDomain);
  if (authorities === undefined) {
    throw new AgentwardError('ERR_X509_SVID_TRUST_DOMAIN', 'The trust domain of the client certificate SPIFFE ID is not configured here (X509-SVID section 5.1).');
  }
  if (presented.leafFailure !== undefined) throw fail(presented.leafFailure);

  if (presented.built?.authorities !== authorities) {
    presented.built = { authorities, outcome: buildChain(presented.leaf, presented.issuers, authorities) };
  }
  const chain = presented.built.outcome;
  if ('code' in chain) throw fail(chain);

  if (nowMs < chain.notBefore) throw new AgentwardError('ERR_X509_SVID_EXPIRED', `The ${chain.notBeforeOf} of the client certificate chain is not valid yet.`);
  if (nowMs > chain.notAfter) throw new AgentwardError('ERR_X509_SVID_EXPIRED', `The ${chain.notAfterOf} of the client certificate chain has expired.`);

  if (!presented.authorized) {
    throw new AgentwardError('ERR_X509_SVID_CHAIN', 'The TLS handshake did not verify the client certificate chain.', { cause: certificate!.verifyError });
  }
  return presented.result;
}

/**
 * Whether the request's client certificate is presented as a workload credential (it has a
 * `spiffe` URI SAN), whether or not it verifies: what extraction lists as `x509_svid`.
 */
export function presentsX509Svid(certificate: PresentedCertificate | null): boolean {
  if (certificate === null) return false;
  let presented = byCertificate.get(certificate);
  if (presented === undefined) {
    presented = readPresented(certificate);
    byCertificate.set(certificate, presented);
  }
  return presented !== null;
}

function fail(failure: Failure): AgentwardError {
  return new AgentwardError(failure.code, failure.detail);
}

/** Steps 1, 2 and 4, which depend on the certificate alone; null when it is not an SVID. */
function readPresented(certificate: PresentedCertificate): Presented | Failure | null {
  const leaf = certificate.leaf;
  let facts: CertificateFacts;
  try {
    facts = certificateFacts(leaf);
  } catch {
    // OpenSSL parsed it; our parser did not. Node's own SAN text then decides whether it claims a
    // SPIFFE ID: one that does is refused, a plain certificate keeps working as before.
    if (!/(?:^|, )URI:"?spiffe:/i.test(leaf.subjectAltName ?? '')) return null;
    return { code: 'ERR_X509_SVID_LEAF', detail: 'The client certificate extensions cannot be parsed.' };
  }

  if (!facts.uris.some((uri) => SPIFFE_SCHEME.test(uri))) return null;
  if (facts.uris.length !== 1) {
    return { code: 'ERR_X509_SVID_SAN', detail: `The client certificate has ${facts.uris.length} URI SANs; an X509-SVID has exactly one, its SPIFFE ID (X509-SVID section 2).` };
  }
  let id: WorkloadId;
  try {
    id = parseWorkloadId(facts.uris[0]!, { requirePath: true });
  } catch (err) {
    if (err instanceof WorkloadIdError) return { code: 'ERR_X509_SVID_ID', detail: err.message };
    throw err;
  }

  const notBefore = Math.floor(leaf.validFromDate.getTime() / 1000);
  const notAfter = Math.floor(leaf.validToDate.getTime() / 1000);
  return {
    id,
    leaf,
    leafFailure: leafFailure(facts),
    issuers: certificate.issuers(MAX_CHAIN_LENGTH - 1),
    authorized: certificate.facts.verified,
    result: Object.freeze({
      id: id.id,
      trustDomain: id.trustDomain,
      path: id.path,
      expiresAt: notAfter,
      claims: Object.freeze({ serialNumber: leaf.serialNumber, fingerprint256: leaf.fingerprint256, issuer: distinguishedName(leaf.issuer), notBefore, notAfter }),
    }),
    built: undefined,
  };
}

/**
 * The ASN.1 packages, loaded at the first certificate read (`require`: their CommonJS builds, so
 * the callers stay synchronous). A deployment whose callers present no client certificate never
 * loads them: ~1.6 MiB of heap with asn1js and their helpers (docs/operations.md "Memory").
 */
let asn1: { schema: typeof Asn1Schema; x509: typeof Asn1X509 } | undefined;
function asn1Packages(): { schema: typeof Asn1Schema; x509: typeof Asn1X509 } {
  if (asn1 === undefined) {
    const require = createRequire(import.meta.url);
    asn1 = { schema: require('@peculiar/asn1-schema') as typeof Asn1Schema, x509: require('@peculiar/asn1-x509') as typeof Asn1X509 };
  }
  return asn1;
}

/** RFC 3986 §3.1: schemes compare case-insensitively. */
const SPIFFE_SCHEME = /^spiffe:/i;

/** Step 4: X509-SVID §4.1, §4.3, §4.4, §5.2. */
function leafFailure(facts: CertificateFacts): Failure | undefined {
  const { KeyUsageFlags, id_kp_clientAuth } = asn1Packages().x509;
  const leaf = (detail: string): Failure => ({ code: 'ERR_X509_SVID_LEAF', detail });
  if (facts.duplicate !== undefined) return leaf(`The client certificate has extension ${facts.duplicate} more than once (RFC 5280 section 4.2).`);
  if (facts.ca) return leaf('The client certificate is a CA certificate (basic constraints cA=true); an X509-SVID leaf must not be (X509-SVID section 4.1).');
  if (facts.keyUsage === undefined) return leaf('The client certificate has no key usage extension; an X509-SVID leaf must have one with digitalSignature (X509-SVID section 4.3).');
  if ((facts.keyUsage & (KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)) !== 0) {
    return leaf('The client certificate key usage includes keyCertSign or cRLSign; an X509-SVID leaf must not sign certificates or CRLs (X509-SVID section 4.3).');
  }
  if ((facts.keyUsage & KeyUsageFlags.digitalSignature) === 0) return leaf('The client certificate key usage lacks digitalSignature (X509-SVID section 4.3).');
  if (facts.extKeyUsage !== undefined && !facts.extKeyUsage.includes(id_kp_clientAuth)) {
    return leaf('The client certificate extended key usage lacks clientAuth (X509-SVID section 4.4).');
  }
  return undefined;
}

/**
 * Step 5 and the validity window for step 6. At each link an authority of the trust domain is
 * tried first, so a chain ends at the first anchor it reaches; otherwise a certificate the client
 * sent that signed the current one and is a CA becomes the next link. Also the chain check of a
 * certificate forwarded by a trusted hop (src/credentials/client-cert-header.ts), whose anchors
 * are broader.
 */
export function buildChain(leaf: X509Certificate, issuers: readonly X509Certificate[], authorities: readonly X509Certificate[]): Chain | Failure {
  const chainFailure = (detail: string): Failure => ({ code: 'ERR_X509_SVID_CHAIN', detail });
  const path = [leaf];
  for (let current = leaf; path.length < MAX_CHAIN_LENGTH; ) {
    const below = path.length - 1; // intermediates under the next certificate
    const anchor = authorities.find((a) => signed(a, current));
    if (anchor !== undefined) {
      // The bundle checked it is a CA (src/keys/trust-bundle.ts); its path length constraint
      // still bounds the chain (RFC 5280 §4.2.1.9).
      const facts = caFactsOf(anchor);
      if (facts === undefined) return chainFailure('The X.509 authority the client certificate chains to cannot be parsed.');
      if (facts.pathLen !== undefined && below > facts.pathLen) {
        return chainFailure('The client certificate chain is longer than the path length constraint of its trust anchor allows.');
      }
      return validity([...path, anchor]);
    }
    const next = issuers.find((c) => !path.includes(c) && signed(c, current));
    if (next === undefined) return { ...chainFailure('The client certificate does not chain to an X.509 authority of its own trust domain (X509-SVID section 5.1).'), noAnchor: true };
    const facts = caFactsOf(next);
    if (facts === undefined || !facts.ca || !facts.keyCertSign) {
      return chainFailure('An intermediate certificate of the client certificate chain is not a CA (it needs basic constraints cA=true and key usage keyCertSign, X509-SVID section 4.1).');
    }
    if (facts.pathLen !== undefined && below > facts.pathLen) {
      return chainFailure('The client certificate chain is longer than the path length constraint of an intermediate allows.');
    }
    path.push(next);
    current = next;
  }
  return chainFailure(`The client certificate chain has more than ${MAX_CHAIN_LENGTH} certificates.`);
}

/** Whether `issuer` issued `subject`: names and key identifiers match, and its key verifies the signature. */
function signed(issuer: X509Certificate, subject: X509Certificate): boolean {
  try {
    return subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function validity(chain: readonly X509Certificate[]): Chain {
  const role = (i: number) => (i === 0 ? 'leaf' : i === chain.length - 1 ? 'trust anchor' : 'intermediate');
  const window: Chain = { notBefore: -Infinity, notAfter: Infinity, notBeforeOf: '', notAfterOf: '' };
  chain.forEach((cert, i) => {
    const from = cert.validFromDate.getTime();
    const to = cert.validToDate.getTime();
    if (from > window.notBefore) Object.assign(window, { notBefore: from, notBeforeOf: role(i) });
    if (to < window.notAfter) Object.assign(window, { notAfter: to, notAfterOf: role(i) });
  });
  return window;
}

// ---------------------------------------------------------------- X.509 extensions (RFC 5280 §4.2)

interface CertificateFacts {
  /** URI SANs over every SAN extension, as encoded. */
  uris: string[];
  /** Basic constraints cA (false when the extension is absent). */
  ca: boolean;
  pathLen: number | undefined;
  /** KeyUsageFlags bits, or undefined without the extension. */
  keyUsage: number | undefined;
  /** Key purpose OIDs, or undefined without the extension. */
  extKeyUsage: string[] | undefined;
  /** The OID of an extension that appears more than once. */
  duplicate: string | undefined;
}

/** Throws when the certificate or one of these extensions is not well-formed DER. */
function certificateFacts(cert: X509Certificate): CertificateFacts {
  const { schema, x509 } = asn1Packages();
  const { AsnConvert } = schema;
  const { BasicConstraints, Certificate, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, id_ce_basicConstraints, id_ce_extKeyUsage, id_ce_keyUsage, id_ce_subjectAltName } = x509;
  const parsed = AsnConvert.parse(cert.raw, Certificate);
  const facts: CertificateFacts = { uris: [], ca: false, pathLen: undefined, keyUsage: undefined, extKeyUsage: undefined, duplicate: undefined };
  const seen = new Set<string>();
  for (const ext of parsed.tbsCertificate.extensions ?? []) {
    if (seen.has(ext.extnID)) facts.duplicate ??= ext.extnID;
    seen.add(ext.extnID);
    const value = ext.extnValue.buffer;
    switch (ext.extnID) {
      case id_ce_subjectAltName:
        for (const name of AsnConvert.parse(value, SubjectAlternativeName)) {
          if (name.uniformResourceIdentifier !== undefined) facts.uris.push(name.uniformResourceIdentifier);
        }
        break;
      case id_ce_basicConstraints: {
        const bc = AsnConvert.parse(value, BasicConstraints);
        facts.ca = bc.cA;
        facts.pathLen = bc.pathLenConstraint;
        break;
      }
      case id_ce_keyUsage:
        facts.keyUsage = AsnConvert.parse(value, KeyUsage).toNumber();
        break;
      case id_ce_extKeyUsage:
        facts.extKeyUsage = [...AsnConvert.parse(value, ExtendedKeyUsage)];
        break;
    }
  }
  return facts;
}

interface CaFacts {
  ca: boolean;
  keyCertSign: boolean;
  pathLen: number | undefined;
}

/** Parsed once per certificate object: anchors live as long as their bundle, intermediates as their connection. */
const caFactsCache = new WeakMap<X509Certificate, CaFacts | undefined>();

/** undefined when the certificate cannot be parsed. A CA without key usage is not accepted (RFC 5280 §4.2.1.3: CAs MUST include it). */
function caFactsOf(cert: X509Certificate): CaFacts | undefined {
  if (caFactsCache.has(cert)) return caFactsCache.get(cert);
  let facts: CaFacts | undefined;
  try {
    const f = certificateFacts(cert);
    facts = { ca: f.ca && f.duplicate === undefined, keyCertSign: ((f.keyUsage ?? 0) & asn1Packages().x509.KeyUsageFlags.keyCertSign) !== 0, pathLen: f.pathLen };
  } catch {
    facts = undefined;
  }
  caFactsCache.set(cert, facts);
  return facts;
}
