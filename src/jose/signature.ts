/**
 * The signature math of the one compact-JWS verifier (verify.ts `signedPayload`): a synchronous
 * `crypto.verify` on a KeyObject built once per key, where jose's `compactVerify` would hand each
 * check to WebCrypto on libuv's thread pool (about a third more CPU per ES256 check, and a thread
 * hop per request; issue 12).
 *
 * `checkJwsSignature` decides exactly what jose 6 `compactVerify(token, key, { algorithms: [alg] })`
 * decides for the same token and key: it returns the payload bytes jose would return, returns
 * jose's JWSSignatureVerificationFailed where jose throws it, and throws (a jose error class, or a
 * TypeError where jose throws one) for everything jose refuses otherwise, which the verifier maps
 * to the profile's `unverifiable`. test/unit/jose-differential.test.ts holds the two to identical
 * answers. Where this module cannot say (a key that is not a CryptoKey, an algorithm outside
 * ASYMMETRIC_ALGORITHMS), it returns `undefined` and the verifier asks jose.
 *
 * Keys stay jose's: imported, thumbprinted and selected by jose (createLocalJWKSet, importJWK).
 * Each CryptoKey a resolver hands out is converted to a KeyObject once, and the conversion is kept
 * for as long as the resolver keeps the CryptoKey (a WeakMap): one per installed key.
 */
import { constants, KeyObject, sign, verify, type VerifyKeyObjectInput, type webcrypto } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { errors as joseErrors } from 'jose';
import type { AsymmetricAlgorithm } from './algorithms.ts';

/** The parts of a compact JWS this check reads; the header as decoded by the verifier. */
export interface JwsParts {
  readonly token: string;
  readonly segments: { readonly protected: string; readonly payload: string; readonly signature: string };
  /** The protected header, decoded from `segments.protected` (the same bytes jose parses). */
  readonly header: Readonly<Record<string, unknown>>;
}

/**
 * RFC 7518 §3.3-3.5 and RFC 8037 §3.1 (jose's JWS table): what a CryptoKey must say of itself to
 * serve `alg`, and how node:crypto checks the signature.
 */
interface NativeAlgorithm {
  /** The WebCrypto algorithm the key was imported for (jose `checkCryptoKey`). */
  readonly name: 'RSASSA-PKCS1-v1_5' | 'RSA-PSS' | 'ECDSA' | 'Ed25519';
  /** RSA keys carry their hash (WebCrypto `RsaHashedKeyAlgorithm`). */
  readonly hash?: string;
  /** EC keys carry their curve: ES256 only with P-256, and so on (RFC 7518 §3.4). */
  readonly namedCurve?: string;
  /** The digest given to `crypto.verify`; `null` for Ed25519, which hashes internally. */
  readonly digest: string | null;
  /** `crypto.verify` key options besides the key. */
  readonly options: Omit<VerifyKeyObjectInput, 'key'>;
}

const rsa = (bits: 256 | 384 | 512): NativeAlgorithm => ({ name: 'RSASSA-PKCS1-v1_5', hash: `SHA-${bits}`, digest: `sha${bits}`, options: { padding: constants.RSA_PKCS1_PADDING } });
// RFC 7518 §3.5: MGF1 with the same hash (node's default), salt as long as the hash.
const pss = (bits: 256 | 384 | 512): NativeAlgorithm => ({ name: 'RSA-PSS', hash: `SHA-${bits}`, digest: `sha${bits}`, options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: bits / 8 } });
// RFC 7518 §3.4: R || S, each as long as the curve's order (IEEE P1363), never DER.
const ecdsa = (namedCurve: string, bits: 256 | 384 | 512): NativeAlgorithm => ({ name: 'ECDSA', namedCurve, digest: `sha${bits}`, options: { dsaEncoding: 'ieee-p1363' } });
// jose 6 verifies EdDSA with Ed25519 keys only; an Ed448 key is refused as unusable, here too.
const ed25519: NativeAlgorithm = { name: 'Ed25519', digest: null, options: {} };

const NATIVE: Readonly<Record<AsymmetricAlgorithm, NativeAlgorithm>> = {
  RS256: rsa(256),
  RS384: rsa(384),
  RS512: rsa(512),
  PS256: pss(256),
  PS384: pss(384),
  PS512: pss(512),
  ES256: ecdsa('P-256', 256),
  ES384: ecdsa('P-384', 384),
  ES512: ecdsa('P-521', 512),
  EdDSA: ed25519,
  Ed25519: ed25519,
};

/** RFC 7518 §3.3 and §3.5: a key of 2048 bits or larger MUST be used; jose refuses smaller ones. */
const MIN_RSA_BITS = 2048;

/** What a CryptoKey says of itself, read once, and its KeyObject. */
interface NativeKey {
  readonly keyObject: KeyObject;
  readonly type: string;
  readonly name: string;
  readonly hash: string | undefined;
  readonly namedCurve: string | undefined;
  readonly modulusLength: unknown;
  readonly canVerify: boolean;
  /** `crypto.verify` inputs by algorithm, built on first use. */
  readonly inputs: Map<string, VerifyKeyObjectInput>;
}

/** One per CryptoKey, for as long as its resolver keeps it (a key set per installed JWK Set, a proof-key cache). */
const NATIVE_KEYS = new WeakMap<webcrypto.CryptoKey, NativeKey | null>();

/**
 * The signature check of a compact JWS with `key` for `alg`, as jose's `compactVerify` decides it
 * (see the module comment): the verified payload bytes, or JWSSignatureVerificationFailed, or a
 * throw for any other refusal, or `undefined` when jose must decide.
 */
export function checkJwsSignature(jws: JwsParts, key: unknown, alg: string): Uint8Array | joseErrors.JWSSignatureVerificationFailed | undefined {
  const entry = Object.hasOwn(NATIVE, alg) ? NATIVE[alg as AsymmetricAlgorithm] : undefined;
  const native = entry === undefined ? undefined : nativeKey(key);
  if (entry === undefined || native === undefined) return undefined;
  const { protected: protectedHeader, payload, signature } = jws.segments;
  checkProtectedHeader(protectedHeader);
  // The verifier passes the header's own `alg`; jose allows that one alone.
  if (jws.header.alg !== alg) throw new joseErrors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  const b64 = payloadEncoding(jws.header);
  // RFC 7515 §5.2 step 8: the signing input is ASCII(header.payload); jose refuses any other character.
  if (NON_ASCII.test(payload)) throw new joseErrors.JWSInvalid('The payload is not a valid base64url string');
  const signatureBytes = decodeBase64url(signature, 'signature');
  const input = keyInput(native, entry, alg);
  let verified: boolean;
  try {
    verified = verify(entry.digest, Buffer.from(jws.token.slice(0, protectedHeader.length + payload.length + 1), 'latin1'), input, signatureBytes);
  } catch (cause) {
    // jose: any throw of the primitive is a signature that does not verify.
    return new joseErrors.JWSSignatureVerificationFailed(undefined, { cause });
  }
  if (!verified) return SIGNATURE_INVALID;
  // RFC 7797 §3: with `b64: false` the payload is the segment's own bytes.
  return b64 ? decodeBase64url(payload, 'payload') : Buffer.from(payload, 'latin1');
}

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * The signature over a JWS signing input (RFC 7515 §5.1 step 5) with a private KeyObject built
 * once: the same algorithm table as the check above, in reverse, so what agentward signs is what
 * it (and jose) verifies. Synchronous `crypto.sign`, no WebCrypto round trip per request. The
 * caller makes sure the key fits `alg` (src/credentials/txn-mint.ts checks it when it loads the
 * key); node:crypto throws on a key of the wrong type.
 */
export function signJws(alg: AsymmetricAlgorithm, key: KeyObject, signingInput: string): Buffer {
  const entry = NATIVE[alg];
  return sign(entry.digest, Buffer.from(signingInput, 'latin1'), { key, ...entry.options });
}

/**
 * The answer for every signature that does not verify: one instance, built once, so that a flood of
 * forged tokens does not pay a stack trace each (issue 12). It carries nothing about any token.
 */
const SIGNATURE_INVALID = Object.freeze(new joseErrors.JWSSignatureVerificationFailed());

/**
 * The CryptoKey's facts and KeyObject; `undefined` for anything else (jose decides), and for a key
 * imported as not extractable (`ext: false` in its JWK): converting one to a KeyObject is
 * deprecated (DEP0204), so jose checks those, slower but alike.
 */
function nativeKey(key: unknown): NativeKey | undefined {
  if (!(key instanceof globalThis.CryptoKey) || !key.extractable) return undefined;
  let native = NATIVE_KEYS.get(key);
  if (native === undefined) {
    native = describe(key);
    NATIVE_KEYS.set(key, native);
  }
  return native ?? undefined;
}

function describe(key: webcrypto.CryptoKey): NativeKey | null {
  let keyObject: KeyObject;
  try {
    keyObject = KeyObject.from(key);
  } catch {
    return null;
  }
  const algorithm = key.algorithm as { name: string; hash?: { name?: unknown }; namedCurve?: unknown; modulusLength?: unknown };
  return {
    keyObject,
    type: key.type,
    name: algorithm.name,
    hash: typeof algorithm.hash?.name === 'string' ? algorithm.hash.name : undefined,
    namedCurve: typeof algorithm.namedCurve === 'string' ? algorithm.namedCurve : undefined,
    modulusLength: algorithm.modulusLength,
    canVerify: key.usages.includes('verify'),
    inputs: new Map(),
  };
}

/**
 * jose `prepareKey`, `checkCryptoKey` and `checkModulusLength`: a public key imported for this
 * algorithm (its name, RSA hash, EC curve), usable to verify, RSA of 2048 bits or more. Each
 * refusal is a TypeError, as jose's.
 */
function keyInput(native: NativeKey, entry: NativeAlgorithm, alg: string): VerifyKeyObjectInput {
  let input = native.inputs.get(alg);
  if (input !== undefined) return input;
  if (native.type !== 'public') throw new TypeError(`CryptoKey instances must be of type "public" for the ${alg} algorithm`);
  if (native.name !== entry.name) throw new TypeError(`CryptoKey does not support this operation, its algorithm.name must be ${entry.name}`);
  if (entry.hash !== undefined && native.hash !== entry.hash) throw new TypeError(`CryptoKey does not support this operation, its algorithm.hash must be ${entry.hash}`);
  if (entry.namedCurve !== undefined && native.namedCurve !== entry.namedCurve) throw new TypeError(`CryptoKey does not support this operation, its algorithm.namedCurve must be ${entry.namedCurve}`);
  if (!native.canVerify) throw new TypeError('CryptoKey does not support this operation, its usages must include verify.');
  if (entry.hash !== undefined && (typeof native.modulusLength !== 'number' || native.modulusLength < MIN_RSA_BITS)) throw new TypeError(`${alg} requires key modulusLength to be 2048 bits or larger`);
  input = { key: native.keyObject, ...entry.options };
  native.inputs.set(alg, input);
  return input;
}

/**
 * jose parses the protected header again, strictly: base64url that decodes (no single dangling
 * character) to UTF-8 (a fatal decoder). The verifier's own decoding already required base64url
 * characters and a JSON object; the header it decoded is then the one jose would read.
 */
function checkProtectedHeader(segment: string): void {
  if (!isUtf8(decodeBase64url(segment, 'protected header'))) throw new joseErrors.JWSInvalid('JWS Protected Header is invalid');
}

/**
 * RFC 7515 §4.1.11 `crit`, as jose checks it with no extension of ours recognized: only `b64`
 * (RFC 7797) is understood, and it must then be present and a boolean. Returns whether the payload
 * is base64url-encoded.
 */
function payloadEncoding(header: Readonly<Record<string, unknown>>): boolean {
  const { crit } = header;
  if (crit === undefined) return true;
  if (!Array.isArray(crit) || crit.length === 0 || crit.some((name) => typeof name !== 'string' || name.length === 0)) {
    throw new joseErrors.JWSInvalid('"crit" (Critical) Header Parameter MUST be an array of non-empty strings when present');
  }
  for (const name of crit as string[]) {
    if (name !== 'b64') throw new joseErrors.JOSENotSupported('An extension header parameter is not recognized');
    if (!Object.hasOwn(header, name) || header[name] === undefined) throw new joseErrors.JWSInvalid('An extension header parameter is missing');
  }
  // jose reads `b64` only when `crit` names it (RFC 7797 §6 requires that it be named).
  if (!crit.includes('b64')) return true;
  if (typeof header.b64 !== 'boolean') throw new joseErrors.JWSInvalid('The "b64" (base64url-encode payload) Header Parameter must be a boolean');
  return header.b64;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const fromBase64 = (Uint8Array as { fromBase64?: (text: string, options: { alphabet: 'base64url' }) => Uint8Array }).fromBase64;

/**
 * Base64url exactly as jose decodes it: `Uint8Array.fromBase64` where the runtime has it, else the
 * forgiving base64 of `atob` (padding, whitespace and non-zero trailing bits accepted; `+` and `/`
 * refused). Plain base64url without a dangling character decodes the same through Buffer, faster.
 */
function decodeBase64url(text: string, label: string): Uint8Array {
  try {
    if (fromBase64 !== undefined) return fromBase64(text, { alphabet: 'base64url' });
    if (text.length % 4 !== 1 && BASE64URL.test(text)) return Buffer.from(text, 'base64url');
    if (text.includes('+') || text.includes('/')) throw new TypeError('Invalid base64url');
    return Buffer.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), 'latin1');
  } catch (cause) {
    throw new joseErrors.JWSInvalid(`Failed to base64url decode the ${label}`, { cause });
  }
}
