/**
 * OPA bundle signatures, checked the way OPA checks them (OPA docs, management-bundles "Signing":
 * "Signature Format" and "Signature Verification"; OPA v1/bundle/verify.go and hash.go):
 *
 * - `/.signatures.json` holds `{"signatures": ["<JWS compact>"]}`, exactly one JWS, and an
 *   optional `plugin` that must be OPA's default verifier;
 * - the JWS verifies with the configured public key and algorithm;
 * - its payload `scope` equals the configured scope (both may be absent);
 * - its payload `files` lists every file of the bundle but `/.signatures.json`, each with a
 *   matching digest, and nothing the bundle lacks.
 *
 * Digests are over the raw bytes, except for structured files (`data.json`, `.manifest`), whose
 * digest is over canonical JSON (object keys sorted, no whitespace, numbers as written), so a
 * signature survives re-serialisation. `canonicalJson` reproduces OPA's encoder byte for byte.
 *
 * Where this is stricter than OPA, it says so: MD5 and SHA-1 digests are refused, a file listed
 * twice is refused, and a configured `keyId` must match the key id the signature names.
 */
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { compactVerify, errors as joseErrors } from 'jose';
import { BundleError, SIGNATURES_FILE } from './bundle-format.ts';

/** The JWS algorithms a key can verify, the first being the default (OPA's default is RS256). */
function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const alg = curve === 'prime256v1' ? 'ES256' : curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : undefined;
      return alg ? [alg] : [];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    case 'ed448':
      return ['EdDSA'];
    default:
      return [];
  }
}

/** A verification key that cannot be used; `key` names the setting at fault. */
export class VerificationKeyError extends BundleError {
  readonly key: 'keyFile' | 'algorithm';
  constructor(key: 'keyFile' | 'algorithm', message: string, cause?: unknown) {
    super(message, cause);
    this.name = 'VerificationKeyError';
    this.key = key;
  }
}

export interface VerificationKey {
  key: KeyObject;
  /** The JWS algorithm signatures must use. */
  algorithm: string;
}

/**
 * Reads the public key bundle signatures are verified with: PEM (SPKI `PUBLIC KEY`, PKCS#1
 * `RSA PUBLIC KEY` or a `CERTIFICATE`) or a JWK. A private key is refused: it does not belong on
 * the machines that verify. `algorithm` defaults to the JWK's `alg`, then to the key type's
 * usual one (RS256, PS256, ES256/384/512, EdDSA). Throws VerificationKeyError.
 */
export function readVerificationKey(file: string, algorithm?: string): VerificationKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new VerificationKeyError('keyFile', `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
  }
  let key: KeyObject;
  let jwkAlg: string | undefined;
  if (text.startsWith('{')) {
    let jwk: JsonWebKey;
    try {
      jwk = JSON.parse(text) as JsonWebKey;
    } catch (err) {
      throw new VerificationKeyError('keyFile', `${file} is neither PEM nor a JSON Web Key`, err);
    }
    if (typeof jwk.d === 'string') throw new VerificationKeyError('keyFile', `${file} holds a private key`);
    try {
      key = createPublicKey({ key: jwk, format: 'jwk' });
    } catch (err) {
      throw new VerificationKeyError('keyFile', `${file} is not a usable public JWK`, err);
    }
    jwkAlg = typeof jwk.alg === 'string' ? jwk.alg : undefined;
  } else {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new VerificationKeyError('keyFile', `${file} holds a private key`);
    if (!text.includes('-----BEGIN ')) throw new VerificationKeyError('keyFile', `${file} is neither PEM nor a JSON Web Key`);
    try {
      key = createPublicKey(text);
    } catch (err) {
      throw new VerificationKeyError('keyFile', `${file} is not a PEM public key or certificate`, err);
    }
  }
  // RFC 7518 §3.3 (and jose): RSA keys of 2048 bits at least.
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits !== undefined && bits < 2048) throw new VerificationKeyError('keyFile', `${file} holds a ${bits}-bit RSA key; RSA signing keys need 2048 bits at least`);
  const usable = algorithmsFor(key);
  if (usable.length === 0) throw new VerificationKeyError('keyFile', `${file} holds a ${key.asymmetricKeyType ?? 'symmetric'} key, which cannot verify a bundle signature`);
  const chosen = algorithm ?? jwkAlg ?? usable[0]!;
  if (!usable.includes(chosen)) throw new VerificationKeyError('algorithm', `algorithm ${chosen} does not fit the ${describeKey(key)} in ${file} (it fits ${usable.join(', ')})`);
  return { key, algorithm: chosen };
}

function describeKey(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return `${key.asymmetricKeyType?.toUpperCase() ?? 'unknown'}${curve ? ` ${curve}` : ''} key`;
}

export interface BundleVerifierOptions extends VerificationKey {
  /** When set, a signature naming another key id (JWS `kid`, or the payload's `keyid`) is refused. */
  keyId?: string | undefined;
  /** The scope the signature must carry; absent means a signature with a scope is refused (OPA). */
  scope?: string | undefined;
}

/** Hash algorithms of OPA's list that are still collision resistant, by their OPA names. */
const HASHES: Record<string, string> = {
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  'SHA-512-224': 'sha512-224',
  'SHA-512-256': 'sha512-256',
};

interface SignedFile {
  name: string;
  hash: string;
  algorithm: string;
}

/** Checks bundles against one public key. Built once at startup; `verify` is called per bundle. */
export class BundleVerifier {
  private readonly options: BundleVerifierOptions;

  constructor(options: BundleVerifierOptions) {
    this.options = options;
  }

  /** A verifier from a key file (see readVerificationKey). */
  static fromFile(file: string, options: { algorithm?: string | undefined; keyId?: string | undefined; scope?: string | undefined } = {}): BundleVerifier {
    return new BundleVerifier({ ...readVerificationKey(file, options.algorithm), keyId: options.keyId, scope: options.scope });
  }

  /** Resolves when the bundle's files are exactly those signed; otherwise throws BundleError. */
  async verify(files: ReadonlyMap<string, Buffer>): Promise<void> {
    const signatures = files.get(SIGNATURES_FILE);
    if (!signatures) throw fail(`the bundle has no /${SIGNATURES_FILE}; sign it (opa build --signing-key, or opa sign) or remove policy.verification`);
    const signed = await this.verifySignature(readToken(signatures));
    const remaining = new Map(signed.map((f) => [f.name, f]));
    for (const [name, content] of files) {
      if (name === SIGNATURES_FILE) continue;
      const entry = remaining.get(name);
      if (!entry) throw fail(`/${name} is not listed in the signature (a file was added after signing); rebuild and sign the bundle`);
      remaining.delete(name);
      const digest = fileDigest(name, content, entry.algorithm);
      if (digest !== entry.hash.toLowerCase()) throw fail(`/${name} does not match its signed ${entry.algorithm} digest (the file was changed after signing)`);
    }
    if (remaining.size > 0) throw fail(`the signature lists ${[...remaining.keys()].map((n) => `/${n}`).join(', ')}, which the bundle does not contain`);
  }

  /** The JWS and its claims (OPA "Signature Verification": the signature, `kid`, `scope`, `files`). */
  private async verifySignature(token: string): Promise<SignedFile[]> {
    const { key, algorithm, keyId, scope } = this.options;
    let header: Record<string, unknown>;
    let payloadBytes: Uint8Array;
    try {
      ({ protectedHeader: header, payload: payloadBytes } = await compactVerify(token, key, { algorithms: [algorithm] }));
    } catch (err) {
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw fail(`the signature does not use ${algorithm}, the algorithm policy.verification expects`, err);
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw fail('the signature does not verify with policy.verification.keyFile (signed with another key?)', err);
      if (err instanceof joseErrors.JOSEError) throw fail('the signature is not a valid JWS', err);
      throw fail(`the signature could not be checked with policy.verification.keyFile (${err instanceof Error ? err.message : String(err)})`, err);
    }
    // OPA signs with typ JWT; any other type is a JWS made for something else.
    if (header.typ !== undefined && String(header.typ).toUpperCase() !== 'JWT') throw fail(`the signature has typ "${String(header.typ)}", not JWT`);
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder().decode(payloadBytes));
    } catch (err) {
      throw fail('the signature payload is not JSON', err);
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw fail('the signature payload is not a JSON object');
    const claims = payload as { files?: unknown; keyid?: unknown; scope?: unknown };
    // OPA takes the key id from the JWS header, then from the deprecated `keyid` claim.
    const named = typeof header.kid === 'string' ? header.kid : typeof claims.keyid === 'string' ? claims.keyid : undefined;
    if (keyId !== undefined && named !== undefined && named !== keyId) throw fail(`the signature names key "${named}", not policy.verification.keyId "${keyId}"`);
    if (claims.scope !== undefined && typeof claims.scope !== 'string') throw fail('the signature scope is not a string');
    if ((claims.scope ?? '') !== (scope ?? '')) {
      throw fail(claims.scope === undefined ? `the signature has no scope; policy.verification.scope is "${scope}"` : `the signature scope "${claims.scope}" is not ${scope === undefined ? 'expected (policy.verification.scope is not set)' : `policy.verification.scope "${scope}"`}`);
    }
    if (!Array.isArray(claims.files)) throw fail('the signature payload has no files list');
    const files: SignedFile[] = [];
    const seen = new Set<string>();
    for (const entry of claims.files as unknown[]) {
      const f = entry as Partial<Record<keyof SignedFile, unknown>> | null;
      if (f === null || typeof f !== 'object' || typeof f.name !== 'string' || typeof f.hash !== 'string' || typeof f.algorithm !== 'string') {
        throw fail('an entry of the signature files list is not {name, hash, algorithm}');
      }
      const name = f.name.replace(/^(?:\.?\/+)+/, '');
      if (seen.has(name)) throw fail(`the signature lists /${name} twice`);
      seen.add(name);
      if (!(f.algorithm in HASHES)) throw fail(`the signature uses digest ${f.algorithm} for /${name}; use one of ${Object.keys(HASHES).join(', ')}`);
      files.push({ name, hash: f.hash, algorithm: f.algorithm });
    }
    return files;
  }
}

function fail(message: string, cause?: unknown): BundleError {
  return new BundleError(`bundle signature: ${message}`, cause);
}

/** The one JWS of `/.signatures.json` (OPA supports exactly one, with its default verifier). */
function readToken(content: Buffer): string {
  let doc: unknown;
  try {
    doc = JSON.parse(content.toString('utf8'));
  } catch (err) {
    throw fail(`/${SIGNATURES_FILE} is not JSON`, err);
  }
  const { signatures, plugin } = (doc ?? {}) as { signatures?: unknown; plugin?: unknown };
  if (plugin !== undefined && plugin !== '' && plugin !== '_default') throw fail(`/${SIGNATURES_FILE} needs the signing plugin "${String(plugin)}", which agentward does not have`);
  if (!Array.isArray(signatures) || signatures.length !== 1 || typeof signatures[0] !== 'string') {
    throw fail(`/${SIGNATURES_FILE} must hold exactly one signature (a JWS string in "signatures")`);
  }
  return signatures[0];
}

/**
 * The hex digest OPA computes for a bundle file: over canonical JSON for structured files (OPA
 * `IsStructuredDoc`: base name `data.json`, `data.yaml`, `.manifest`), over the bytes otherwise.
 */
export function fileDigest(name: string, content: Buffer, algorithm: string): string {
  const hashName = HASHES[algorithm];
  if (!hashName) throw fail(`digest ${algorithm} is not supported`);
  const hash = createHash(hashName);
  const base = name.slice(name.lastIndexOf('/') + 1);
  if (base === 'data.yaml') throw new BundleError(`${name}: YAML data files are not supported; convert it to data.json`);
  if (base === 'data.json' || base === '.manifest') {
    try {
      hash.update(canonicalJson(content.toString('utf8')));
    } catch (err) {
      throw new BundleError(`${name} in the bundle is not JSON`, err);
    }
  } else {
    hash.update(content);
  }
  return hash.digest('hex');
}

/** A JSON number kept as written: OPA decodes with UseNumber and re-encodes the literal. */
class JsonNumber {
  readonly source: string;
  constructor(source: string) {
    this.source = source;
  }
}

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

/**
 * Canonical JSON as OPA hashes it (v1/bundle/hash.go `walk`): objects with keys in byte order of
 * their UTF-8, no whitespace, numbers as written, strings as Go's encoding/json writes them with
 * HTML escaping off. Throws SyntaxError when `text` is not JSON.
 */
export function canonicalJson(text: string): string {
  const keepNumbers: Reviver = (_key, value, context) => (typeof value === 'number' ? new JsonNumber(context?.source ?? String(value)) : value);
  const parsed: unknown = JSON.parse(text, keepNumbers as (this: unknown, key: string, value: unknown) => unknown);
  const out: string[] = [];
  encode(parsed, out);
  return out.join('');
}

function encode(value: unknown, out: string[]): void {
  if (value instanceof JsonNumber) out.push(value.source);
  else if (typeof value === 'string') out.push(goString(value));
  else if (value === null || typeof value === 'boolean') out.push(String(value));
  else if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, i) => {
      if (i > 0) out.push(',');
      encode(item, out);
    });
    out.push(']');
  } else {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object).sort((a, b) => Buffer.compare(Buffer.from(a.toWellFormed()), Buffer.from(b.toWellFormed())));
    out.push('{');
    keys.forEach((key, i) => {
      if (i > 0) out.push(',');
      out.push(goString(key), ':');
      encode(object[key], out);
    });
    out.push('}');
  }
}

const GO_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/**
 * A string as Go's encoding/json writes it with SetEscapeHTML(false): `"` and `\` escaped, the
 * short escapes for \b \f \n \r \t, other control characters as \u00xx, U+2028 and U+2029
 * escaped, and anything that is not valid Unicode (a lone surrogate) as U+FFFD.
 */
function goString(value: string): string {
  const escaped = value.toWellFormed().replace(/["\\\u0000-\u001f\u2028\u2029]/g, (c) => GO_ESCAPES[c] ?? `\\u00${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return `"${escaped}"`;
}
