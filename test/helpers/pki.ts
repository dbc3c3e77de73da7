/**
 * A small X.509 factory for TLS tests: CAs, intermediates, server and client certificates (also
 * X509-SVIDs and deliberately broken ones), made with node:crypto (ECDSA P-256, SHA-256) and a
 * minimal DER encoder, so tests need no openssl binary and can ask for exactly the names, dates,
 * basic constraints and key usages a case needs; and SPIFFE bundle documents for those CAs. Test
 * fixtures only: nothing here checks its input the way a real CA must.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

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
  name: Buffer;
  key: KeyObject;
  keyId: Buffer;
  /** PEM of the issuer and its intermediates, up to (not including) the root. */
  chainPem: string;
}

/** A self-signed CA that issues leaf certificates and intermediates. */
export function createCa(cn = 'agentward test CA', options: CaOptions = {}): TestCa {
  const own = newKey();
  const name = encodeName({ cn, o: options.o ?? 'agentward tests' });
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
  return issueLeaf(options, { name: encodeName(options), key: own.privateKey, keyId: keyId(own.publicKey), chainPem: '' }, own);
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
      const name = encodeName({ cn, o: options.o ?? 'agentward tests' });
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

function caExtensions(options: CaOptions, publicKey: KeyObject, issuerKeyId: Buffer | undefined): Buffer[] {
  const bc = options.basicConstraints === undefined ? { ca: true } : options.basicConstraints;
  const ku = options.keyUsage === undefined ? (['keyCertSign', 'cRLSign'] as KeyUsageBit[]) : options.keyUsage;
  return [
    ...(bc === null ? [] : [basicConstraints(bc)]),
    ...(ku === null ? [] : [keyUsage(ku)]),
    extension(OID.subjectKeyIdentifier, octets(keyId(publicKey))),
    ...(issuerKeyId === undefined ? [] : [extension(OID.authorityKeyIdentifier, seq(tlv(0x80, issuerKeyId)))]),
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
    ...(eku === null ? [] : [extension(OID.extKeyUsage, seq(...eku.map((p) => oid(OID[p]))))]),
    extension(OID.authorityKeyIdentifier, seq(tlv(0x80, issuer.keyId))),
    ...subjectAltName(options.sans),
  ];
  const der = build({
    subject: encodeName(options),
    issuer: issuer.name,
    publicKey: own.publicKey,
    signer: issuer.key,
    extensions,
    notBefore: options.notBefore ?? new Date(Date.now() - 3600_000),
    notAfter: options.notAfter ?? new Date(Date.now() + 24 * 3600_000),
  });
  return finish(der, own.privateKey, issuer.chainPem);
}

/** RFC 5280 §4.2.1.9; cA=false is the DEFAULT, so DER leaves it out (X.690 §11.5). */
function basicConstraints(bc: { ca: boolean; pathLen?: number }): Buffer {
  const pathLen = bc.pathLen === undefined ? [] : [integer(Buffer.from([bc.pathLen]))];
  return extension(OID.basicConstraints, seq(...(bc.ca ? [bool(true)] : []), ...pathLen), true);
}

const KEY_USAGE_BITS: readonly KeyUsageBit[] = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'];

/** RFC 5280 §4.2.1.3: a named BIT STRING, trailing zero bits removed (X.690 §11.2.2). */
function keyUsage(bits: readonly KeyUsageBit[]): Buffer {
  const numbers = bits.map((b) => KEY_USAGE_BITS.indexOf(b));
  const length = numbers.length === 0 ? 0 : Math.max(...numbers) + 1;
  const bytes = Buffer.alloc(Math.ceil(length / 8));
  for (const n of numbers) bytes[n >> 3]! |= 0x80 >> (n & 7);
  return extension(OID.keyUsage, bitString(bytes, bytes.length * 8 - length), true);
}

function subjectAltName(sans: SubjectAltNames = {}): Buffer[] {
  const names = [
    ...(sans.email ?? []).map((v) => tlv(0x81, Buffer.from(v, 'ascii'))),
    ...(sans.dns ?? []).map((v) => tlv(0x82, Buffer.from(v, 'ascii'))),
    ...(sans.uri ?? []).map((v) => tlv(0x86, Buffer.from(v, 'ascii'))),
    ...(sans.ip ?? []).map((v) => tlv(0x87, ipBytes(v))),
  ];
  return names.length === 0 ? [] : [extension(OID.subjectAltName, seq(...names))];
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

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyId(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // A P-256 SPKI ends with its BIT STRING, whose last 65 bytes are the uncompressed point.
  return createHash('sha1').update(spki.subarray(spki.length - 65)).digest();
}

// ---------------------------------------------------------------- DER (ITU-T X.690)

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  anyExtendedKeyUsage: '2.5.29.37.0',
};

function tlv(tag: number, value: Buffer): Buffer {
  const n = value.length;
  let length: Buffer;
  if (n < 0x80) length = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    length = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), length, value]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (v: Buffer) => tlv(0x04, v);
const utf8 = (v: string) => tlv(0x0c, Buffer.from(v, 'utf8'));
const bitString = (v: Buffer, unused = 0) => tlv(0x03, Buffer.concat([Buffer.from([unused]), v]));
const explicit = (n: number, v: Buffer) => tlv(0xa0 + n, v);

/** X.690 §8.3.2: the minimal two's-complement encoding of a non-negative integer. */
function integer(v: Buffer): Buffer {
  let start = 0;
  while (start < v.length - 1 && v[start] === 0) start++;
  const bytes = v.subarray(start);
  return tlv(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const enc: number[] = [arc & 0x7f];
    for (let v = arc >> 7; v > 0; v >>= 7) enc.unshift((v & 0x7f) | 0x80);
    bytes.push(...enc);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049. */
function time(d: Date): Buffer {
  const iso = d.toISOString();
  const text = `${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return tlv(0x17, Buffer.from(text, 'ascii'));
}

function encodeName(n: { cn: string; o?: string }): Buffer {
  const rdns = [];
  if (n.o) rdns.push(set(seq(oid(OID.organization), utf8(n.o))));
  rdns.push(set(seq(oid(OID.commonName), utf8(n.cn))));
  return seq(...rdns);
}

function extension(id: string, value: Buffer, critical = false): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

function build(c: { subject: Buffer; issuer: Buffer; publicKey: KeyObject; signer: KeyObject; extensions: Buffer[]; notBefore: Date; notAfter: Date }): Buffer {
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(Buffer.concat([Buffer.from([0x01]), randomBytes(15)])), // positive, never zero (RFC 5280 §4.1.2.2)
    algorithm,
    c.issuer,
    seq(time(c.notBefore), time(c.notAfter)),
    c.subject,
    c.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...c.extensions)),
  );
  // ECDSA signatures from node:crypto are DER (RFC 3279 §2.2.3), as X.509 wants them.
  const signature = sign('sha256', tbs, c.signer);
  return seq(tbs, algorithm, bitString(signature));
}
