/**
 * Differential test of the JWS signature step (issue 12; src/jose/signature.ts): every token is
 * checked by jose's `compactVerify` and by the node:crypto path, and the two must answer alike:
 * both accept with the same payload bytes, both refuse because the signature does not verify, or
 * both refuse for another reason (the profile's `unverifiable`). At two levels:
 *
 * - the signature step: `checkJwsSignature` against `compactVerify(token, key, { algorithms: [alg] })`,
 *   for every token whose header the verifier can read (the step's precondition), with the
 *   node:crypto path required to answer itself for every CryptoKey and asymmetric algorithm;
 * - the whole verifier: `verifyCompactJws` against a copy of it whose signature step is jose's
 *   (signature.ts mocked to defer), for each form, with a key set and with one key, and the DPoP
 *   verifier likewise: same code and detail, or same verified header and claims.
 *
 * Tokens: those the test helpers mint for each credential (access tokens of the test issuer and of
 * the five vendor-shaped issuers, DPoP proofs with the RFC 9449 published ones, Txn-Tokens,
 * JWT-SVIDs, WITs, WPTs), each also mutated; and tokens generated with fast-check: wrong algorithm
 * for the key, RS/PS confusion, wrong curve, Ed448, a 1024-bit RSA key, private, ECDH and
 * usage-less keys, `none`, HMAC keyed with the public key, truncated, extended, empty, flipped,
 * high-S and DER signatures, padded, standard-alphabet, whitespace and non-canonical base64url,
 * tampered headers and payloads, `crit` and `b64` in every shape, a header with a dangling
 * character or invalid UTF-8, a payload that is padded, unencoded or not ASCII.
 *
 * The seed is fixed. JOSE_DIFFERENTIAL_RUNS (default 200) and JOSE_DIFFERENTIAL_SEED change the
 * generated runs; scripts/jose-differential.sh runs it long.
 */
import { constants, createHmac, generateKeyPairSync, randomUUID, sign as nodeSign, type KeyObject as KeyObjectType, type webcrypto } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT, compactVerify, createLocalJWKSet, errors as joseErrors, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { ASYMMETRIC_ALGORITHMS, isAsymmetricAlgorithm } from '../../src/jose/algorithms.ts';
import { checkJwsSignature } from '../../src/jose/signature.ts';
import * as nativeVerify from '../../src/jose/verify.ts';
import * as nativeDpop from '../../src/credentials/dpop.ts';
import { newKey, startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { proof, proofKey } from '../helpers/dpop.ts';
import { mintJwtSvid, mintWit, mintWpt, newWorkloadKey } from '../helpers/workload-tokens.ts';
import { VENDOR_NAMES, startVendorIssuer, type VendorIssuer } from '../helpers/vendor-issuer.ts';

type WebCryptoKey = webcrypto.CryptoKey;

const RUNS = Number(process.env.JOSE_DIFFERENTIAL_RUNS ?? 200);
const SEED = Number(process.env.JOSE_DIFFERENTIAL_SEED ?? 20_261_206);
const FC = { numRuns: RUNS, seed: SEED, endOnFailure: false } as const;

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

// ---------------------------------------------------------------- keys

type Family = 'RS' | 'PS' | 'ES' | 'Ed' | 'HS' | 'none' | 'other';
const family = (alg: string): Family =>
  /^RS\d/.test(alg) ? 'RS' : /^PS\d/.test(alg) ? 'PS' : /^ES\d/.test(alg) ? 'ES' : alg === 'EdDSA' || alg === 'Ed25519' ? 'Ed' : /^HS\d/.test(alg) ? 'HS' : alg === 'none' ? 'none' : 'other';
const bits = (alg: string): number => Number(/\d{3}$/.exec(alg)?.[0] ?? 256);

/** Every algorithm a header may name here: the verifier's, and some it never allows. */
const HEADER_ALGS = [...ASYMMETRIC_ALGORITHMS, 'HS256', 'HS512', 'none', 'ML-DSA-44', 'RSA-OAEP', 'es256', ''] as const;

interface Signer {
  readonly name: string;
  readonly privateKey: KeyObjectType;
  readonly publicKey: KeyObjectType;
  readonly jwk: JWK;
  /** The algorithms the key is made for. */
  readonly algs: readonly string[];
  /** ECDSA: the curve order, for high-S signatures. */
  readonly order?: bigint;
}

const ORDERS: Record<string, bigint> = {
  'P-256': 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  'P-384': 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  'P-521': 0x01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
};

function signer(name: string, pair: { privateKey: KeyObjectType; publicKey: KeyObjectType }, algs: readonly string[]): Signer {
  const jwk = { ...(pair.publicKey.export({ format: 'jwk' }) as JWK), kid: name };
  return { name, ...pair, jwk, algs, ...(jwk.crv !== undefined && ORDERS[jwk.crv] !== undefined ? { order: ORDERS[jwk.crv] } : {}) };
}

const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const SIGNERS: readonly Signer[] = [
  signer('p256', generateKeyPairSync('ec', { namedCurve: 'P-256' }), ['ES256']),
  signer('p256b', generateKeyPairSync('ec', { namedCurve: 'P-256' }), ['ES256']),
  signer('p384', generateKeyPairSync('ec', { namedCurve: 'P-384' }), ['ES384']),
  signer('p521', generateKeyPairSync('ec', { namedCurve: 'P-521' }), ['ES512']),
  signer('secp256k1', generateKeyPairSync('ec', { namedCurve: 'secp256k1' }), ['ES256']),
  signer('rsa2048', generateKeyPairSync('rsa', { modulusLength: 2048 }), RSA_ALGS),
  signer('rsa1024', generateKeyPairSync('rsa', { modulusLength: 1024 }), RSA_ALGS),
  signer('ed25519', generateKeyPairSync('ed25519'), ['EdDSA', 'Ed25519']),
  signer('ed448', generateKeyPairSync('ed448'), ['EdDSA']),
];
const SIGNER = new Map(SIGNERS.map((s) => [s.name, s]));

/** A verification key as a resolver could hand it out, with a name for the failure report. */
interface VerificationKey {
  readonly label: string;
  readonly key: unknown;
}

/** Per signer, the CryptoKey imported for each algorithm that fits it (as createLocalJWKSet does). */
const IMPORTED = new Map<string, Map<string, WebCryptoKey>>();
/** Keys no resolver of ours hands out, but a verifier must refuse alike: wrong type, usage, algorithm, curve. */
const ODD_KEYS: VerificationKey[] = [];
const ALL_KEYS: VerificationKey[] = [];

async function importKeys(): Promise<void> {
  for (const s of SIGNERS) {
    const byAlg = new Map<string, WebCryptoKey>();
    for (const alg of [...ASYMMETRIC_ALGORITHMS]) {
      const key = await importJWK({ ...s.jwk, kid: undefined }, alg).catch(() => undefined);
      if (key instanceof globalThis.CryptoKey) byAlg.set(alg, key);
    }
    IMPORTED.set(s.name, byAlg);
  }
  const p256 = SIGNER.get('p256')!;
  const { kid: _, ...jwk } = p256.jwk;
  const subtle = globalThis.crypto.subtle;
  ODD_KEYS.push(
    { label: 'p256 private CryptoKey', key: p256.privateKey.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']) },
    { label: 'p256 public, not extractable (jose decides)', key: await subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']) },
    { label: 'p256 public, no usages', key: await subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, true, []) },
    { label: 'p256 as ECDH', key: await subtle.importKey('jwk', jwk, { name: 'ECDH', namedCurve: 'P-256' }, true, []) },
    { label: 'ed448 CryptoKey', key: await subtle.importKey('jwk', SIGNER.get('ed448')!.publicKey.export({ format: 'jwk' }), { name: 'Ed448' }, true, ['verify']) },
    { label: 'HMAC CryptoKey', key: await subtle.importKey('raw', hmacSecret(p256), { name: 'HMAC', hash: 'SHA-256' }, true, ['verify']) },
    { label: 'p256 KeyObject (jose decides)', key: p256.publicKey },
    { label: 'p256 JWK (jose decides)', key: { ...jwk } },
  );
  for (const [name, byAlg] of IMPORTED) for (const [alg, key] of byAlg) ALL_KEYS.push({ label: `${name} for ${alg}`, key });
  ALL_KEYS.push(...ODD_KEYS);
}

/** RFC 8725 §2.1's confusion: the public key, as an HMAC secret. */
const hmacSecret = (s: Signer): Buffer => Buffer.from(s.publicKey.export({ type: 'spki', format: 'pem' }));

/** The key a resolver would give for `alg` from this signer's JWK, else the one for the signer's own algorithm. */
function naturalKey(s: Signer, alg: string): VerificationKey {
  const byAlg = IMPORTED.get(s.name)!;
  const key = byAlg.get(alg) ?? byAlg.get(s.algs[0]!);
  return { label: `${s.name} for ${byAlg.has(alg) ? alg : s.algs[0]!}`, key: key ?? SIGNER.get('p256')!.publicKey };
}

// ---------------------------------------------------------------- signing and mutations

/** RSASSA-PSS salt lengths to sign with: RFC 7518 §3.5's (the hash's), none, and as long as fits. */
type Salt = 'hash' | 'none' | 'max';
const SALT_LENGTH: Record<Salt, (alg: string) => number> = { hash: (alg) => bits(alg) / 8, none: () => 0, max: () => constants.RSA_PSS_SALTLEN_MAX_SIGN };

/** Signs `input` as `alg` with `s`, whatever the fit; what no primitive would sign gets random bytes. */
function signBytes(s: Signer, alg: string, input: Buffer, salt: Salt = 'hash'): Buffer {
  const digest = `sha${bits(alg)}`;
  try {
    switch (family(alg)) {
      case 'RS':
        return nodeSign(digest, input, s.privateKey);
      case 'PS':
        return nodeSign(digest, input, { key: s.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: SALT_LENGTH[salt](alg) });
      case 'ES':
        return nodeSign(digest, input, { key: s.privateKey, dsaEncoding: 'ieee-p1363' });
      case 'Ed':
        return nodeSign(null, input, s.privateKey);
      case 'HS':
        return createHmac(digest, hmacSecret(s)).update(input).digest();
      case 'none':
        return Buffer.alloc(0);
      default:
        return Buffer.from(randomUUID().replaceAll('-', ''), 'hex');
    }
  } catch {
    return Buffer.from(randomUUID().replaceAll('-', '') + randomUUID().replaceAll('-', ''), 'hex');
  }
}

type SignatureMutation =
  | { op: 'keep' | 'empty' | 'highS' | 'der' | 'std' }
  | { op: 'truncate'; n: number }
  | { op: 'extend'; bytes: Uint8Array }
  | { op: 'flip'; at: number; bit: number }
  | { op: 'pad'; text: string }
  | { op: 'trailing'; delta: number }
  | { op: 'insert'; at: number; text: string }
  | { op: 'random'; text: string };

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The signature segment after `m`, in bytes where the mutation is of bytes, in text where it is of encoding. */
function mutateSignature(signature: Buffer, m: SignatureMutation, order: bigint | undefined): string {
  switch (m.op) {
    case 'keep':
      return signature.toString('base64url');
    case 'empty':
      return '';
    case 'truncate':
      return signature.subarray(0, Math.max(0, signature.length - 1 - (m.n % Math.max(1, signature.length)))).toString('base64url');
    case 'extend':
      return Buffer.concat([signature, m.bytes]).toString('base64url');
    case 'flip': {
      const copy = Buffer.from(signature);
      if (copy.length > 0) copy[m.at % copy.length]! ^= 1 << m.bit;
      return copy.toString('base64url');
    }
    case 'highS':
      return highS(signature, order).toString('base64url');
    case 'der':
      return p1363ToDer(signature).toString('base64url');
    case 'std':
      return signature.toString('base64url').replaceAll('-', '+').replaceAll('_', '/');
    case 'pad':
      return signature.toString('base64url') + m.text;
    case 'trailing':
      return nonCanonical(signature.toString('base64url'), m.delta);
    case 'insert': {
      const text = signature.toString('base64url');
      const at = text.length === 0 ? 0 : m.at % text.length;
      return text.slice(0, at) + m.text + text.slice(at);
    }
    case 'random':
      return m.text;
  }
}

/** ECDSA (r, s) → (r, n - s): the same signature in its other form, which OpenSSL accepts (no low-S rule in JWS). */
function highS(signature: Buffer, order: bigint | undefined): Buffer {
  if (order === undefined || signature.length % 2 !== 0 || signature.length === 0) return signature;
  const half = signature.length / 2;
  const s = BigInt(`0x${signature.subarray(half).toString('hex') || '0'}`);
  if (s === 0n || s >= order) return signature;
  return Buffer.concat([signature.subarray(0, half), Buffer.from((order - s).toString(16).padStart(half * 2, '0'), 'hex')]);
}

/** RFC 7518 §3.4 forbids DER; an X.509-style ECDSA-Sig-Value must be refused like any wrong length. */
function p1363ToDer(signature: Buffer): Buffer {
  const half = Math.floor(signature.length / 2);
  const integer = (bytes: Buffer): Buffer => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    const body = bytes[i]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes.subarray(i)]) : bytes.subarray(i);
    return Buffer.concat([Buffer.from([0x02, body.length]), body]);
  };
  const content = Buffer.concat([integer(signature.subarray(0, half)), integer(signature.subarray(half))]);
  const length = content.length < 0x80 ? Buffer.from([content.length]) : Buffer.from([0x81, content.length]);
  return Buffer.concat([Buffer.from([0x30]), length, content]);
}

/** Base64url with the unused low bits of the last character set: the same bytes to a forgiving decoder. */
function nonCanonical(text: string, delta: number): string {
  const spare = text.length % 4 === 2 ? 15 : text.length % 4 === 3 ? 3 : 0;
  if (spare === 0 || text.length === 0) return text;
  const index = B64URL.indexOf(text.at(-1)!);
  return text.slice(0, -1) + B64URL[(index & ~spare) | (1 + (delta % spare))];
}

// ---------------------------------------------------------------- generated tokens

type PayloadForm = 'b64' | 'padded' | 'raw' | 'nonAscii' | 'space';
type HeaderMutation = 'none' | 'tamperAfter' | 'danglingBefore' | 'danglingAfter' | 'badUtf8';

interface GeneratedCase {
  signer: string;
  signAlg: string;
  headerAlg: string;
  kid: string | undefined;
  extras: Record<string, unknown>;
  claims: Record<string, unknown>;
  payloadForm: PayloadForm;
  headerMutation: HeaderMutation;
  signature: SignatureMutation;
  salt: Salt;
  /** Index into ALL_KEYS, or -1 for the key a resolver would give. */
  keyChoice: number;
}

const signerPairs = SIGNERS.flatMap((s) => s.algs.map((alg) => ({ signer: s.name, alg })));
/** Keys a verifier refuses whatever the token: jose cannot import them (secp256k1, Ed448) or refuses their size. */
const REFUSED_SIGNERS = new Set(['secp256k1', 'rsa1024', 'ed448']);

const extrasArb: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    typ: fc.constantFrom('JWT', 'at+jwt', 'dpop+jwt'),
    crit: fc.constantFrom<unknown>(['b64'], [], 'b64', [''], ['urn:example:ext'], ['b64', 'b64'], ['b64', 'urn:example:ext'], null, [1], ['exp']),
    b64: fc.constantFrom<unknown>(true, false, 'false', null, 0),
    'urn:example:ext': fc.constant(true),
    jwk: fc.constant({ kty: 'oct', k: 'c2VjcmV0' }),
    x: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: [] },
);

const signatureArb: fc.Arbitrary<SignatureMutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ op: 'keep' as const }) },
  { weight: 1, arbitrary: fc.constantFrom({ op: 'empty' as const }, { op: 'highS' as const }, { op: 'der' as const }, { op: 'std' as const }) },
  { weight: 2, arbitrary: fc.constant({ op: 'highS' as const }) },
  { weight: 1, arbitrary: fc.nat(600).map((n) => ({ op: 'truncate' as const, n })) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4 }).map((bytes) => ({ op: 'extend' as const, bytes })) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(600), fc.nat(7)).map(([at, bit]) => ({ op: 'flip' as const, at, bit })) },
  { weight: 1, arbitrary: fc.constantFrom('=', '==', '===', 'A', 'AA').map((text) => ({ op: 'pad' as const, text })) },
  { weight: 2, arbitrary: fc.nat(14).map((delta) => ({ op: 'trailing' as const, delta })) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(600), fc.constantFrom(' ', '\t', '\n', '\f', '\r', '=', '+', '/', '!', '~', '%', '\u00e9')).map(([at, text]) => ({ op: 'insert' as const, at, text })) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...`${B64URL}=+/ \t`), maxLength: 120 }).map((text) => ({ op: 'random' as const, text })) },
);

const caseArb: fc.Arbitrary<GeneratedCase> = fc
  .record({
    // Mostly a key signing with its own algorithm, so that the mutations below act on a token that would verify.
    pair: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...signerPairs.filter((p) => !REFUSED_SIGNERS.has(p.signer))) },
      { weight: 1, arbitrary: fc.constantFrom(...signerPairs.filter((p) => REFUSED_SIGNERS.has(p.signer))) },
      { weight: 1, arbitrary: fc.record({ signer: fc.constantFrom(...SIGNERS.map((s) => s.name)), alg: fc.constantFrom(...HEADER_ALGS) }) },
    ),
    // Mostly the algorithm it was signed with; sometimes another (alg confusion).
    headerAlg: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...HEADER_ALGS) }),
    kid: fc.option(fc.constantFrom(...SIGNERS.map((s) => s.name), 'unknown'), { freq: 3, nil: undefined }),
    extras: fc.oneof({ weight: 1, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: extrasArb }),
    claims: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
    payloadForm: fc.constantFrom<PayloadForm>('b64', 'b64', 'b64', 'b64', 'padded', 'raw', 'nonAscii', 'space'),
    headerMutation: fc.constantFrom<HeaderMutation>('none', 'none', 'none', 'none', 'none', 'tamperAfter', 'danglingBefore', 'danglingAfter', 'badUtf8'),
    signature: signatureArb,
    salt: fc.constantFrom<Salt>('hash', 'hash', 'hash', 'hash', 'none', 'max'),
    keyChoice: fc.oneof({ weight: 3, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.nat(200) }),
  })
  .map(({ pair, headerAlg, ...rest }) => ({ ...rest, signer: pair.signer, signAlg: pair.alg, headerAlg: headerAlg ?? pair.alg }));

/** The compact JWS a case describes, and the key it is verified with. */
function buildCase(c: GeneratedCase): { token: string; key: VerificationKey } {
  const s = SIGNER.get(c.signer)!;
  const header: Record<string, unknown> = { alg: c.headerAlg, ...(c.kid === undefined ? {} : { kid: c.kid }), ...c.extras };
  if (c.payloadForm === 'raw') Object.assign(header, { crit: ['b64'], b64: false });
  let h = c.headerMutation === 'badUtf8' ? Buffer.concat([Buffer.from(JSON.stringify(header).slice(0, -1)), Buffer.from(',"bad":"\xff\xfe"}', 'latin1')]).toString('base64url') : b64(header);
  if (c.headerMutation === 'danglingBefore') h += 'A';
  const json = JSON.stringify(c.claims);
  const p = {
    b64: b64(json),
    padded: b64(json) + '='.repeat((4 - (b64(json).length % 4)) % 4),
    raw: json.replaceAll('.', ''),
    nonAscii: `${b64(json)}\u00e9`,
    space: `${b64(json).slice(0, 2)} ${b64(json).slice(2)}`,
  }[c.payloadForm];
  const signature = signBytes(s, c.signAlg, Buffer.from(`${h}.${p}`, 'utf8'), c.salt);
  if (c.headerMutation === 'tamperAfter') h = b64({ ...header, tampered: true });
  if (c.headerMutation === 'danglingAfter') h += 'A';
  const key = c.keyChoice === -1 ? naturalKey(s, c.headerAlg) : ALL_KEYS[c.keyChoice % ALL_KEYS.length]!;
  return { token: `${h}.${p}.${mutateSignature(signature, c.signature, s.order)}`, key };
}

// ---------------------------------------------------------------- level 1: the signature step

/** What a signature check decided: accepted (with the payload bytes), a bad signature, or another refusal. */
type Decision = { readonly kind: 'accept'; readonly payload: string } | { readonly kind: 'signature' } | { readonly kind: 'refuse' };

async function byJose(token: string, key: unknown, alg: string): Promise<Decision> {
  try {
    const { payload } = await compactVerify(token, key as WebCryptoKey, { algorithms: [alg] });
    return { kind: 'accept', payload: Buffer.from(payload).toString('hex') };
  } catch (err) {
    return err instanceof joseErrors.JWSSignatureVerificationFailed ? { kind: 'signature' } : { kind: 'refuse' };
  }
}

/** The node:crypto decision, or `undefined` where it defers to jose; `null` when the verifier refuses before the signature step. */
function byNode(token: string, key: unknown): { decision: Decision | undefined; alg: string } | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  let jws: nativeVerify.CompactJws;
  try {
    jws = new nativeVerify.CompactJws(token, parts as [string, string, string], 'ERR_TOKEN_MALFORMED', 'The token');
  } catch {
    return null;
  }
  const { alg } = jws.header;
  if (typeof alg !== 'string') return null;
  try {
    const result = checkJwsSignature(jws, key, alg);
    if (result === undefined) return { decision: undefined, alg };
    return { decision: result instanceof joseErrors.JWSSignatureVerificationFailed ? { kind: 'signature' } : { kind: 'accept', payload: Buffer.from(result).toString('hex') }, alg };
  } catch {
    return { decision: { kind: 'refuse' }, alg };
  }
}

const tally = { compared: 0, accept: 0, signature: 0, refuse: 0, deferred: 0, before: 0 };

/** Both paths must decide alike; node:crypto must decide itself for a CryptoKey and an asymmetric algorithm. */
async function expectSameDecision(token: string, key: VerificationKey): Promise<void> {
  const native = byNode(token, key.key);
  if (native === null) {
    tally.before++;
    return;
  }
  const reference = await byJose(token, key.key, native.alg);
  const context = `${key.label}, alg ${JSON.stringify(native.alg)}, token ${token}`;
  if (native.decision === undefined) {
    tally.deferred++;
    expect(key.key instanceof globalThis.CryptoKey && key.key.extractable && isAsymmetricAlgorithm(native.alg), `node:crypto deferred to jose: ${context}`).toBe(false);
    return;
  }
  tally.compared++;
  tally[native.decision.kind]++;
  expect(native.decision, context).toEqual(reference);
}

// ---------------------------------------------------------------- level 2: the whole verifier

type Graph = { verify: typeof nativeVerify; dpop: typeof nativeDpop };
let reference: Graph;

/** src/jose/verify.ts and dpop.ts again, with the signature step deferring to jose for every key. */
async function referenceGraph(): Promise<Graph> {
  vi.resetModules();
  vi.doMock('../../src/jose/signature.ts', () => ({ checkJwsSignature: () => undefined }));
  const graph = { verify: await import('../../src/jose/verify.ts'), dpop: await import('../../src/credentials/dpop.ts') };
  vi.doUnmock('../../src/jose/signature.ts');
  vi.resetModules();
  return graph;
}

/** A verifier's answer, comparable across the two module graphs (each has its own AgentwardError). */
async function answer(run: () => Promise<unknown>): Promise<unknown> {
  try {
    const value = (await run()) as { header?: unknown; claims?: unknown; jkt?: unknown } | undefined;
    return { ok: true, header: value?.header, claims: value?.claims, jkt: value?.jkt };
  } catch (err) {
    const e = err as { name?: string; code?: unknown; detail?: unknown; status?: unknown };
    return { name: e.name, code: e.code, detail: e.detail, status: e.status };
  }
}

/** One profile per form and claims rule, each failure told apart by code or detail. */
function profiles(keys: nativeVerify.KeySource, everyMatchingKey: boolean): nativeVerify.JwsProfile<null>[] {
  const failures: nativeVerify.JwsFailures = {
    malformed: 'ERR_TOKEN_MALFORMED',
    encrypted: 'ERR_TOKEN_ENCRYPTED',
    algorithm: 'ERR_TOKEN_ALGORITHM',
    keyUnknown: 'ERR_TOKEN_KEY_UNKNOWN',
    keyUnusable: { code: 'ERR_TOKEN_KEY_UNKNOWN', detail: 'unusable' },
    signature: 'ERR_TOKEN_SIGNATURE',
    signatureEveryKey: { code: 'ERR_TOKEN_SIGNATURE', detail: 'every key' },
    unverifiable: { code: 'ERR_TOKEN_MALFORMED', detail: 'unverifiable' },
  };
  const forms: [nativeVerify.JwsForm, boolean][] = [['parts', true], ['parts', false], ['segments', true], ['signed', false]];
  return forms.map(([form, claimsFirst]) => ({ noun: 'The token', form, claimsFirst, typ: () => undefined, algorithms: [...ASYMMETRIC_ALGORITHMS, 'HS256'], keys, everyMatchingKey, failures }));
}

const JWKS = createLocalJWKSet({ keys: SIGNERS.filter((s) => s.name !== 'ed448').map((s) => s.jwk) });

/** verifyCompactJws and its jose-only copy answer alike, for every profile, with the key set and with `key`. */
async function expectSameVerdict(token: string, key: VerificationKey): Promise<void> {
  const sources: [nativeVerify.KeySource, boolean][] = [[(header, jws) => JWKS(header, jws), true], [key.key as nativeVerify.KeySource, false]];
  for (const [keys, every] of sources) {
    for (const profile of profiles(keys, every)) {
      const mine = await answer(() => nativeVerify.verifyCompactJws(token, profile, null));
      const theirs = await answer(() => reference.verify.verifyCompactJws(token, profile as never, null));
      expect(mine, `${profile.form}/${profile.claimsFirst ? 'claims first' : 'claims after'}, ${typeof keys === 'function' ? 'key set' : key.label}, token ${token}`).toEqual(theirs);
    }
  }
}

// ---------------------------------------------------------------- tokens the test helpers mint

interface Minted {
  readonly kind: string;
  readonly token: string;
  /** The public JWK that verifies it. */
  readonly jwk: JWK;
}

const closers: (() => Promise<void>)[] = [];

async function mintAccessTokens(): Promise<Minted[]> {
  const out: Minted[] = [];
  const issuer: TestIssuer = await startIssuer({ audience: 'https://tools.example.com/mcp' });
  closers.push(() => issuer.close());
  for (const alg of ['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'PS512', 'EdDSA']) {
    const key = await issuer.rotate({ alg, keep: true });
    out.push({ kind: `access token ${alg}`, token: await issuer.mint({ cnf: { jkt: 'x'.repeat(43) } }, { key }), jwk: key.publicJwk });
  }
  for (const vendor of VENDOR_NAMES) {
    const v: VendorIssuer = await startVendorIssuer(vendor);
    closers.push(() => v.close());
    const { keys } = (await (await fetch(v.jwksUri)).json()) as { keys: JWK[] };
    for (const token of [await v.access(), await v.id()]) {
      const kid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid;
      out.push({ kind: `${vendor} token`, token, jwk: keys.find((k) => k.kid === kid)! });
    }
  }
  return out;
}

async function mintTxnTokens(): Promise<Minted[]> {
  const out: Minted[] = [];
  for (const alg of ['ES256', 'RS256']) {
    const key = await newKey(alg, `tts-${alg}`);
    const token = await new SignJWT({ txn: randomUUID(), sub: 'd084sdrt234fsaw34tr23t', aud: 'trust.example.com', iat: 1_700_000_000, exp: 1_700_000_300, purp: 'trade.stocks', azd: { ticker: 'MSFT' } })
      .setProtectedHeader({ alg, kid: key.kid, typ: 'txntoken+jwt' })
      .sign(key.privateKey);
    out.push({ kind: `Txn-Token ${alg}`, token, jwk: key.publicJwk });
  }
  return out;
}

async function mintProofs(): Promise<Minted[]> {
  const out: Minted[] = [];
  for (const alg of ['ES256', 'RS256', 'PS256', 'EdDSA']) {
    const key = await proofKey(alg);
    for (const accessToken of [undefined, 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU']) {
      out.push({ kind: `DPoP proof ${alg}`, token: await proof(key, { htm: 'GET', htu: 'https://resource.example.org/protectedresource', ...(accessToken ? { accessToken } : {}) }), jwk: key.publicJwk });
    }
  }
  // RFC 9449 Fig. 13 and Fig. 2, as published: the key is the header's own.
  for (const published of [
    'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA',
    'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg',
  ]) {
    out.push({ kind: 'RFC 9449 published proof', token: published, jwk: JSON.parse(Buffer.from(published.split('.')[0]!, 'base64url').toString()).jwk });
  }
  return out;
}

async function mintWorkloadTokens(): Promise<Minted[]> {
  const out: Minted[] = [];
  for (const alg of ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA']) {
    const issuer = await newWorkloadKey(alg, `issuer-${alg}`);
    const workload = await newWorkloadKey(alg);
    const sub = 'spiffe://example.org/agent';
    out.push({ kind: `JWT-SVID ${alg}`, token: await mintJwtSvid({ key: issuer, sub, aud: 'https://api.example.com' }), jwk: issuer.publicJwk });
    const wit = await mintWit({ key: issuer, sub, cnfJwk: workload.publicJwk });
    out.push({ kind: `WIT ${alg}`, token: wit, jwk: issuer.publicJwk });
    out.push({ kind: `WPT ${alg}`, token: await mintWpt({ wit, privateKey: workload.privateKey, alg, aud: 'https://api.example.com/tools' }), jwk: workload.publicJwk });
    // A `crit` the verifier must refuse, signed as the suites sign it.
    out.push({ kind: `WIT ${alg} with crit`, token: await mintWit({ key: issuer, sub, cnfJwk: workload.publicJwk, header: { crit: ['x-unknown'], 'x-unknown': 1 } }), jwk: issuer.publicJwk });
  }
  return out;
}

/** The fixed mutations every minted token also goes through. */
const FIXED_MUTATIONS: SignatureMutation[] = [
  { op: 'keep' },
  { op: 'empty' },
  { op: 'truncate', n: 0 },
  { op: 'extend', bytes: new Uint8Array([0]) },
  { op: 'flip', at: 7, bit: 3 },
  { op: 'highS' },
  { op: 'der' },
  { op: 'std' },
  { op: 'pad', text: '=' },
  { op: 'pad', text: '==' },
  { op: 'trailing', delta: 0 },
  { op: 'insert', at: 10, text: ' ' },
];

/** The token with its signature segment mutated (and, for `keep`, its payload tampered too). */
function mutations(token: string, order: bigint | undefined): string[] {
  const [h, p, s] = token.split('.') as [string, string, string];
  const signature = Buffer.from(s, 'base64url');
  const tampered = `${h}.${p.slice(0, -2)}${p.at(-2) === 'A' ? 'B' : 'A'}${p.at(-1)}.${s}`;
  return [...FIXED_MUTATIONS.map((m) => `${h}.${p}.${mutateSignature(signature, m, order)}`), tampered, `${b64({ alg: 'none' })}.${p}.`];
}

let minted: Minted[] = [];

beforeAll(async () => {
  await importKeys();
  reference = await referenceGraph();
  minted = [...(await mintAccessTokens()), ...(await mintTxnTokens()), ...(await mintProofs()), ...(await mintWorkloadTokens())];
}, 120_000);

afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  // The figure the issue asks for: how many decisions were compared, and of what kind.
  console.log(`jose differential: ${JSON.stringify(tally)} (runs ${RUNS}, seed ${SEED})`);
});

describe('tokens the test helpers mint', () => {
  test('each, and its mutations, is decided alike by jose and node:crypto, at the signature step and by the whole verifier', async () => {
    expect(minted.length).toBeGreaterThan(40);
    for (const m of minted) {
      const alg = JSON.parse(Buffer.from(m.token.split('.')[0]!, 'base64url').toString()).alg as string;
      const resolved = await createLocalJWKSet({ keys: [{ ...m.jwk, kid: undefined, alg: undefined }] })({ alg }, { payload: '', signature: '' });
      const key: VerificationKey = { label: m.kind, key: resolved };
      expect(byNode(m.token, resolved)?.decision, m.kind).toMatchObject({ kind: m.kind.endsWith('with crit') ? 'refuse' : 'accept' });
      const order = m.jwk.crv === undefined ? undefined : ORDERS[m.jwk.crv];
      for (const token of mutations(m.token, order)) {
        await expectSameDecision(token, key);
        await expectSameVerdict(token, key);
      }
    }
  });

  test('the DPoP verifier, with node:crypto and with jose, gives each proof and its mutations the same answer', async () => {
    const options = { algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA'], maxAgeSeconds: 300, clockSkewSeconds: 30, replayCacheSize: 1000 };
    const mine = new nativeDpop.DpopVerifier(options);
    const theirs = new reference.dpop.DpopVerifier(options);
    const request = { method: 'GET', uri: 'https://resource.example.org/protectedresource', accessToken: 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU' };
    let accepted = 0;
    for (const m of minted.filter((x) => x.kind.startsWith('DPoP'))) {
      for (const token of mutations(m.token, m.jwk.crv === undefined ? undefined : ORDERS[m.jwk.crv])) {
        const a = await answer(() => mine.verify(token, request));
        expect(a, token).toEqual(await answer(() => theirs.verify(token, request)));
        if ((a as { ok?: boolean }).ok) accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(0);
  });
});

describe('generated tokens (fast-check)', () => {
  test('the signature step decides each alike (jose compactVerify vs node:crypto)', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const { token, key } = buildCase(c);
        // The case's key, and every odd key a resolver never hands out (wrong type, usage, curve, algorithm).
        for (const k of [key, ...ODD_KEYS]) await expectSameDecision(token, k);
      }),
      FC,
    );
    // The generator reaches every outcome, so no answer is compared only with itself.
    expect(tally.accept).toBeGreaterThan(0);
    expect(tally.signature).toBeGreaterThan(0);
    expect(tally.refuse).toBeGreaterThan(0);
  });

  test('the whole verifier gives each the same code and detail, or the same claims', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const { token, key } = buildCase(c);
        await expectSameVerdict(token, key);
      }),
      { ...FC, numRuns: Math.max(1, Math.floor(RUNS / 4)) },
    );
  });
});

describe('cases named in the issue, each asserted outright', () => {
  const token = (signerName: string, alg: string, header: Record<string, unknown> = {}, payload = b64({ sub: 'x' })): { h: string; p: string; sig: Buffer } => {
    const h = b64({ alg, ...header });
    return { h, p: payload, sig: signBytes(SIGNER.get(signerName)!, alg, Buffer.from(`${h}.${payload}`)) };
  };
  const decide = (t: string, key: unknown) => byNode(t, key)?.decision;
  const key = (signerName: string, alg: string) => IMPORTED.get(signerName)!.get(alg)!;

  test('high-S ECDSA is accepted by both (JWS has no low-S rule); DER and wrong lengths are bad signatures', async () => {
    const { h, p, sig } = token('p256', 'ES256');
    const high = `${h}.${p}.${highS(sig, ORDERS['P-256']).toString('base64url')}`;
    expect(decide(high, key('p256', 'ES256'))).toMatchObject({ kind: 'accept' });
    expect(await byJose(high, key('p256', 'ES256'), 'ES256')).toMatchObject({ kind: 'accept' });
    for (const bad of [p1363ToDer(sig), sig.subarray(0, 63), Buffer.concat([sig, Buffer.from([0])]), Buffer.alloc(0)]) {
      expect(decide(`${h}.${p}.${bad.toString('base64url')}`, key('p256', 'ES256'))).toEqual({ kind: 'signature' });
    }
  });

  test('RS/PS confusion, the wrong curve, a 1024-bit RSA key and Ed448 are refused before any signature math', () => {
    const rs = token('rsa2048', 'RS256');
    expect(decide(`${b64({ alg: 'PS256' })}.${rs.p}.${rs.sig.toString('base64url')}`, key('rsa2048', 'RS256'))).toEqual({ kind: 'refuse' });
    const p384 = token('p384', 'ES256');
    expect(decide(`${p384.h}.${p384.p}.${p384.sig.toString('base64url')}`, key('p384', 'ES384'))).toEqual({ kind: 'refuse' });
    const small = token('rsa1024', 'RS256');
    expect(decide(`${small.h}.${small.p}.${small.sig.toString('base64url')}`, key('rsa1024', 'RS256'))).toEqual({ kind: 'refuse' });
    const ed448 = token('ed448', 'EdDSA');
    expect(decide(`${ed448.h}.${ed448.p}.${ed448.sig.toString('base64url')}`, ODD_KEYS.find((k) => k.label === 'ed448 CryptoKey')!.key)).toEqual({ kind: 'refuse' });
  });

  test('`none` and HMAC keyed with the public key are never decided by node:crypto, and jose refuses them', async () => {
    const none = `${b64({ alg: 'none' })}.${b64({ sub: 'x' })}.`;
    expect(decide(none, key('p256', 'ES256'))).toBeUndefined();
    expect(await byJose(none, key('p256', 'ES256'), 'none')).toEqual({ kind: 'refuse' });
    const hs = token('p256', 'HS256');
    const forged = `${hs.h}.${hs.p}.${hs.sig.toString('base64url')}`;
    expect(decide(forged, key('p256', 'ES256'))).toBeUndefined();
    expect(await byJose(forged, key('p256', 'ES256'), 'HS256')).toEqual({ kind: 'refuse' });
  });

  test('crit: only b64 is understood; an unknown extension is refused, not a bad signature', () => {
    for (const [header, expected] of [
      [{ crit: ['urn:example:ext'], 'urn:example:ext': true }, 'refuse'],
      [{ crit: [] }, 'refuse'],
      [{ crit: [], b64: true }, 'refuse'],
      [{ crit: ['b64', ''], b64: true }, 'refuse'],
      [{ crit: ['b64'] }, 'refuse'],
      [{ crit: ['b64'], b64: 'false' }, 'refuse'],
      [{ crit: ['b64'], b64: true }, 'accept'],
      [{ b64: false }, 'accept'],
    ] as const) {
      const t = token('p256', 'ES256', header);
      expect(decide(`${t.h}.${t.p}.${t.sig.toString('base64url')}`, key('p256', 'ES256')), JSON.stringify(header)).toMatchObject({ kind: expected });
    }
  });

  test('the algorithm is the header\'s own: another one is refused', () => {
    const t = token('p256', 'ES256');
    const parts = [t.h, t.p, t.sig.toString('base64url')] as [string, string, string];
    const jws = new nativeVerify.CompactJws(parts.join('.'), parts, 'ERR_TOKEN_MALFORMED', 'The token');
    expect(checkJwsSignature(jws, key('p256', 'ES256'), 'ES256')).toBeInstanceOf(Uint8Array);
    expect(() => checkJwsSignature(jws, key('p256', 'ES256'), 'ES384')).toThrow(joseErrors.JOSEAlgNotAllowed);
  });

  test('RSASSA-PSS: only the salt length of RFC 7518 §3.5 verifies', async () => {
    for (const [salt, expected] of [['hash', 'accept'], ['none', 'signature'], ['max', 'signature']] as const) {
      const h = b64({ alg: 'PS256' });
      const p = b64({ sub: 'x' });
      const jws = `${h}.${p}.${signBytes(SIGNER.get('rsa2048')!, 'PS256', Buffer.from(`${h}.${p}`), salt).toString('base64url')}`;
      expect(decide(jws, key('rsa2048', 'PS256')), salt).toMatchObject({ kind: expected });
      expect(await byJose(jws, key('rsa2048', 'PS256'), 'PS256'), salt).toMatchObject({ kind: expected });
    }
  });

  test('b64: false with crit (RFC 7797) is accepted by jose over the raw payload, so by node:crypto too', async () => {
    const raw = '{"sub":"x"}';
    const t = token('p256', 'ES256', { crit: ['b64'], b64: false }, raw);
    const jws = `${t.h}.${raw}.${t.sig.toString('base64url')}`;
    const expected = { kind: 'accept', payload: Buffer.from(raw).toString('hex') };
    expect(decide(jws, key('p256', 'ES256'))).toEqual(expected);
    expect(await byJose(jws, key('p256', 'ES256'), 'ES256')).toEqual(expected);
  });
});

