/**
 * A small X.509 factory for TLS tests: a CA, server and client certificates, made with node:crypto
 * (ECDSA P-256, SHA-256) and a minimal DER encoder, so tests need no openssl binary and can ask for
 * exactly the names, dates and key usages a case needs. Test fixtures only: nothing here checks
 * its input the way a real CA must.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

export interface SubjectAltNames {
  dns?: string[];
  ip?: string[];
  uri?: string[];
  email?: string[];
}

export interface CertificateOptions {
  /** Subject common name. */
  cn: string;
  /** Subject organization. */
  o?: string;
  sans?: SubjectAltNames;
  /** Extended key usage: server (serverAuth), client (clientAuth) or both. Default both. */
  usage?: 'server' | 'client' | 'both';
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
}

export interface TestCa extends IssuedCertificate {
  issue(options: CertificateOptions): IssuedCertificate;
}

/** A self-signed CA that issues leaf certificates. */
export function createCa(cn = 'agentward test CA'): TestCa {
  const { privateKey, publicKey } = newKey();
  const name = encodeName({ cn, o: 'agentward tests' });
  const ca = build({
    subject: name,
    issuer: name,
    publicKey,
    signer: privateKey,
    extensions: [
      extension(OID.basicConstraints, seq(bool(true)), true),
      extension(OID.keyUsage, bitString(Buffer.from([0x06]), 1), true), // keyCertSign, cRLSign
      extension(OID.subjectKeyIdentifier, octets(keyId(publicKey))),
    ],
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
  });
  return {
    ...finish(ca, privateKey),
    issue: (options) => issueLeaf(options, name, privateKey, keyId(publicKey)),
  };
}

/** A self-signed leaf (for a client certificate no CA vouches for). */
export function selfSigned(options: CertificateOptions): IssuedCertificate {
  const { privateKey, publicKey } = newKey();
  return issueLeaf(options, encodeName(options), privateKey, keyId(publicKey), { privateKey, publicKey });
}

function issueLeaf(options: CertificateOptions, issuerName: Buffer, issuerKey: KeyObject, issuerKeyId: Buffer, own = newKey()): IssuedCertificate {
  const usage = options.usage ?? 'both';
  const eku = [...(usage !== 'client' ? [OID.serverAuth] : []), ...(usage !== 'server' ? [OID.clientAuth] : [])];
  const extensions = [
    extension(OID.basicConstraints, seq(), true),
    extension(OID.keyUsage, bitString(Buffer.from([0x80]), 7), true), // digitalSignature
    extension(OID.extKeyUsage, seq(...eku.map(oid))),
    extension(OID.authorityKeyIdentifier, seq(tlv(0x80, issuerKeyId))),
  ];
  const sans = options.sans ?? {};
  const names = [
    ...(sans.email ?? []).map((v) => tlv(0x81, Buffer.from(v, 'ascii'))),
    ...(sans.dns ?? []).map((v) => tlv(0x82, Buffer.from(v, 'ascii'))),
    ...(sans.uri ?? []).map((v) => tlv(0x86, Buffer.from(v, 'ascii'))),
    ...(sans.ip ?? []).map((v) => tlv(0x87, ipBytes(v))),
  ];
  if (names.length > 0) extensions.push(extension(OID.subjectAltName, seq(...names)));
  const der = build({
    subject: encodeName(options),
    issuer: issuerName,
    publicKey: own.publicKey,
    signer: issuerKey,
    extensions,
    notBefore: options.notBefore ?? new Date(Date.now() - 3600_000),
    notAfter: options.notAfter ?? new Date(Date.now() + 24 * 3600_000),
  });
  return finish(der, own.privateKey);
}

function finish(der: Buffer, privateKey: KeyObject): IssuedCertificate {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  const certPem = `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
  return {
    certPem,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    der,
    thumbprint: createHash('sha256').update(der).digest('base64url'),
    x509: new X509Certificate(der),
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
