/**
 * A small X.509 factory for TLS tests: CAs, intermediates, server and client certificates (also
 * X509-SVIDs and deliberately broken ones), and SPIFFE bundle documents for those CAs. Keys and
 * signatures come from node:crypto (ECDSA P-256, SHA-256); the certificate structure is encoded by
 * the ASN.1 schemas of @peculiar/asn1-x509 (RFC 5280), the library src/credentials/x509-svid.ts
 * reads them back with. So tests need no openssl binary and can ask for exactly the names, dates,
 * basic constraints and key usages a case needs. Test fixtures only: nothing here checks its
 * input the way a real CA must.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  anyExtendedKeyUsage,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_codeSigning,
  id_kp_serverAuth,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';

export interface SubjectAltNames {
  dns?: string[];
  ip?: string[];
  uri?: string[];
  email?: string[];
}

export type KeyUsageBit = 'digitalSignature' | 'nonRepudiation' | 'keyEncipherment' | 'dataEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign' | 'encipherOnly' | 'decipherOnly';
export type ExtKeyUsagePurpose = 'serverAuth' | 'clientAuth' | 'codeSigning' | 'anyExtendedKeyUsage';

export interface CertificateOptions {
  /** Subject common name. */
  cn: string;
  /** Subject organization. */
  o?: string;
  sans?: SubjectAltNames;
  /** Extended key usage: server (serverAuth), client (clientAuth) or both. Default both. `extKeyUsage` overrides it. */
  usage?: 'server' | 'client' | 'both';
  /** Extended key usage purposes, in this order; `null` leaves the extension out. */
  extKeyUsage?: ExtKeyUsagePurpose[] | null;
  /** Basic constraints (critical). Default `{ ca: false }`; `null` leaves the extension out. */
  basicConstraints?: { ca: boolean; pathLen?: number } | null;
  /** Key usage bits (critical). Default `['digitalSignature']`; `null` leaves the extension out. */
  keyUsage?: KeyUsageBit[] | null;
  notBefore?: Date;
  notAfter?: Date;
}

/** A CA certificate: root (self-signed) or intermediate. */
export interface CaOptions {
  /** Subject organization. Default `agentward tests`. */
  o?: string;
  /** SPIFFE CAs usually name their trust domain, e.g. `{ uri: ['spiffe://example.org'] }`. */
  sans?: SubjectAltNames;
  /** Default `{ ca: true }`; `null` leaves the extension out. */
  basicConstraints?: { ca: boolean; pathLen?: number } | null;
  /** Default `['keyCertSign', 'cRLSign']`; `null` leaves the extension out. */
  keyUsage?: KeyUsageBit[] | null;
  notBefore?: Date;
  notAfter?: Date;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  /** The certificate, DER. */
  der: Buffer;
  /** RFC 8705 §3.1 `x5t#S256`: base64url SHA-256 of the DER, no padding. */
  thumbprint: string;
  x509: X509Certificate;
  /** What a TLS peer sends: this certificate, then each intermediate up to (not including) the root. */
  chainPem: string;
}

export interface TestCa extends IssuedCertificate {
  issue(options: CertificateOptions): IssuedCertificate;
  /** A CA signed by this one (basic constraints cA=true, keyCertSign and cRLSign by default). */
  intermediate(cn: string, options?: CaOptions): TestCa;
}

interface Issuer {
  name: Name;
  key: KeyObject;
  keyId: Buffer;
  /** PEM of the issuer and its intermediates, up to (not including) the root. */
  chainPem: string;
}

/** A self-signed CA that issues leaf certificates and intermediates. */
export function createCa(cn = 'agentward test CA', options: CaOptions = {}): TestCa {
  const own = newKey();
  const name = distinguishedName({ cn, o: options.o ?? 'agentward tests' });
  const der = build({
    subject: name,
    issuer: name,
    publicKey: own.publicKey,
    signer: own.privateKey,
    extensions: caExtensions(options, own.publicKey, undefined),
    notBefore: options.notBefore ?? new Date(Date.now() - 3600_000),
    notAfter: options.notAfter ?? new Date(Date.now() + 24 * 3600_000),
  });
  return asCa(finish(der, own.privateKey, ''), { name, key: own.privateKey, keyId: keyId(own.publicKey), chainPem: '' });
}

/** A self-signed leaf (for a client certificate no CA vouches for). */
export function selfSigned(options: CertificateOptions): IssuedCertificate {
  const own = newKey();
  return issueLeaf(options, { name: distinguishedName(options), key: own.privateKey, keyId: keyId(own.publicKey), chainPem: '' }, own);
}

/**
 * A SPIFFE trust bundle (SPIFFE Trust Domain and Bundle §4) holding the given CAs as `x509-svid`
 * authorities: one JWK per CA, its public key with `x5c` = [the CA certificate], as parseBundle
 * in src/keys/trust-bundle.ts accepts it. `extraKeys` are appended as they are (jwt-svid keys,
 * malformed entries).
 */
export function spiffeBundle(authorities: readonly IssuedCertificate[], options: { sequence?: number; refreshHint?: number; extraKeys?: readonly object[] } = {}): { keys: object[]; spiffe_sequence?: number; spiffe_refresh_hint?: number } {
  const keys: object[] = authorities.map((ca) => {
    const { kty, crv, x, y, n, e } = ca.x509.publicKey.export({ format: 'jwk' });
    return { use: 'x509-svid', kty, ...(crv === undefined ? {} : { crv, x, y }), ...(n === undefined ? {} : { n, e }), x5c: [ca.der.toString('base64')] };
  });
  return {
    keys: [...keys, ...(options.extraKeys ?? [])],
    ...(options.sequence === undefined ? {} : { spiffe_sequence: options.sequence }),
    ...(options.refreshHint === undefined ? {} : { spiffe_refresh_hint: options.refreshHint }),
  };
}

function asCa(cert: IssuedCertificate, self: Issuer): TestCa {
  return {
    ...cert,
    issue: (options) => issueLeaf(options, self),
    intermediate: (cn, options = {}) => {
      const own = newKey();
      const name = distinguishedName({ cn, o: options.o ?? 'agentward tests' });
      const der = build({
        subject: name,
        issuer: self.name,
        publicKey: own.publicKey,
        signer: self.key,
        extensions: caExtensions(options, own.publicKey, self.keyId),
        notBefore: options.notBefore ?? new Date(Date.now() - 3600_000),
        notAfter: options.notAfter ?? new Date(Date.now() + 24 * 3600_000),
      });
      const issued = finish(der, own.privateKey, self.chainPem);
      return asCa(issued, { name, key: own.privateKey, keyId: keyId(own.publicKey), chainPem: issued.chainPem });
    },
  };
}

function caExtensions(options: CaOptions, publicKey: KeyObject, issuerKeyId: Buffer | undefined): Extension[] {
  const bc = options.basicConstraints === undefined ? { ca: true } : options.basicConstraints;
  const ku = options.keyUsage === undefined ? (['keyCertSign', 'cRLSign'] as KeyUsageBit[]) : options.keyUsage;
  return [
    ...(bc === null ? [] : [basicConstraints(bc)]),
    ...(ku === null ? [] : [keyUsage(ku)]),
    extension(id_ce_subjectKeyIdentifier, new SubjectKeyIdentifier(keyId(publicKey))),
    ...(issuerKeyId === undefined ? [] : [authorityKeyIdentifier(issuerKeyId)]),
    ...subjectAltName(options.sans),
  ];
}

function issueLeaf(options: CertificateOptions, issuer: Issuer, own = newKey()): IssuedCertificate {
  const usage = options.usage ?? 'both';
  const eku = options.extKeyUsage === undefined ? [...(usage !== 'client' ? (['serverAuth'] as const) : []), ...(usage !== 'server' ? (['clientAuth'] as const) : [])] : options.extKeyUsage;
  const bc = options.basicConstraints === undefined ? { ca: false } : options.basicConstraints;
  const ku = options.keyUsage === undefined ? (['digitalSignature'] as KeyUsageBit[]) : options.keyUsage;
  const extensions = [
    ...(bc === null ? [] : [basicConstraints(bc)]),
    ...(ku === null ? [] : [keyUsage(ku)]),
    ...(eku === null ? [] : [extension(id_ce_extKeyUsage, new ExtendedKeyUsage(eku.map((p) => PURPOSES[p])))]),
    authorityKeyIdentifier(issuer.keyId),
    ...subjectAltName(options.sans),
  ];
  const der = build({
    subject: distinguishedName(options),
    issuer: issuer.name,
    publicKey: own.publicKey,
    signer: issuer.key,
    extensions,
    notBefore: options.notBefore ?? new Date(Date.now() - 3600_000),
    notAfter: options.notAfter ?? new Date(Date.now() + 24 * 3600_000),
  });
  return finish(der, own.privateKey, issuer.chainPem);
}

/** RFC 5280 §4.2.1.9. cA=false is the DEFAULT, which DER leaves out (X.690 §11.5); the serializer does. */
function basicConstraints(bc: { ca: boolean; pathLen?: number }): Extension {
  return extension(id_ce_basicConstraints, new BasicConstraints({ cA: bc.ca, pathLenConstraint: bc.pathLen }), true);
}

/**
 * RFC 5280 §4.2.1.3: a named BIT STRING with trailing zero bits removed (X.690 §11.2.2), which
 * BitString.fromNumber does; no bits at all is the empty BIT STRING, which fromNumber(0) is not.
 */
function keyUsage(bits: readonly KeyUsageBit[]): Extension {
  const flags = bits.reduce((all, bit) => all | KeyUsageFlags[bit], 0);
  return extension(id_ce_keyUsage, flags === 0 ? new KeyUsage(new Uint8Array(0)) : new KeyUsage(flags), true);
}

/** RFC 5280 §4.2.1.12 key purposes, by the names CertificateOptions uses. */
const PURPOSES: Record<ExtKeyUsagePurpose, string> = {
  serverAuth: id_kp_serverAuth,
  clientAuth: id_kp_clientAuth,
  codeSigning: id_kp_codeSigning,
  anyExtendedKeyUsage,
};

/** RFC 5280 §4.2.1.1: the keyIdentifier form only. */
function authorityKeyIdentifier(issuerKeyId: Buffer): Extension {
  return extension(id_ce_authorityKeyIdentifier, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(issuerKeyId) }));
}

/** RFC 5280 §4.2.1.6, names in a fixed order: email, DNS, URI, IP. */
function subjectAltName(sans: SubjectAltNames = {}): Extension[] {
  const names = [
    ...(sans.email ?? []).map((rfc822Name) => new GeneralName({ rfc822Name })),
    ...(sans.dns ?? []).map((dNSName) => new GeneralName({ dNSName })),
    ...(sans.uri ?? []).map((uniformResourceIdentifier) => new GeneralName({ uniformResourceIdentifier })),
    // The library parses the text itself; it would turn a typo into some bytes rather than fail.
    ...(sans.ip ?? []).map((iPAddress) => {
      if (isIP(iPAddress) === 0) throw new Error(`not an IP address: ${iPAddress}`);
      return new GeneralName({ iPAddress });
    }),
  ];
  return names.length === 0 ? [] : [extension(id_ce_subjectAltName, new SubjectAlternativeName(names))];
}

function extension(extnID: string, value: object, critical = false): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

function finish(der: Buffer, privateKey: KeyObject, issuerChainPem: string): IssuedCertificate {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  const certPem = `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
  return {
    certPem,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    der,
    thumbprint: createHash('sha256').update(der).digest('base64url'),
    x509: new X509Certificate(der),
    chainPem: certPem + issuerChainPem,
  };
}

function newKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

function subjectPublicKeyInfo(publicKey: KeyObject): SubjectPublicKeyInfo {
  return AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
function keyId(publicKey: KeyObject): Buffer {
  return createHash('sha1').update(new Uint8Array(subjectPublicKeyInfo(publicKey).subjectPublicKey)).digest();
}

const OID = {
  /** RFC 5758 §3.2; its AlgorithmIdentifier has no parameters. */
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
};

/** O (when given), then CN, each a UTF8String in its own RDN. */
function distinguishedName(n: { cn: string; o?: string }): Name {
  const rdn = (type: string, utf8String: string) => new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String }) })]);
  return new Name([...(n.o ? [rdn(OID.organization, n.o)] : []), rdn(OID.commonName, n.cn)]);
}

function build(c: { subject: Name; issuer: Name; publicKey: KeyObject; signer: KeyObject; extensions: Extension[]; notBefore: Date; notAfter: Date }): Buffer {
  const algorithm = new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 });
  const tbsCertificate = new TBSCertificate({
    version: Version.v3,
    // 16 bytes, the first 0x01: positive, never zero, minimal DER (RFC 5280 §4.1.2.2).
    serialNumber: new Uint8Array([0x01, ...randomBytes(15)]).buffer,
    signature: algorithm,
    issuer: c.issuer,
    // Validity (RFC 5280 §4.1.2.5): UTCTime through 2049, GeneralizedTime after; whole seconds.
    validity: new Validity({ notBefore: c.notBefore, notAfter: c.notAfter }),
    subject: c.subject,
    subjectPublicKeyInfo: subjectPublicKeyInfo(c.publicKey),
    extensions: new Extensions(c.extensions),
  });
  // ECDSA signatures from node:crypto are DER (RFC 3279 §2.2.3), as X.509 wants them. DER is
  // deterministic, so serializing tbsCertificate again inside Certificate gives the signed bytes.
  const signature = sign('sha256', Buffer.from(AsnConvert.serialize(tbsCertificate)), c.signer);
  const certificate = new Certificate({ tbsCertificate, signatureAlgorithm: algorithm, signatureValue: new Uint8Array(signature).buffer });
  return Buffer.from(AsnConvert.serialize(certificate));
}
