/**
 * OPA bundle reading (src/policy/bundle.ts) against real bundles from `opa build -t wasm`, and
 * every way a file can fail to be one: each a BundleError, never a crash or a half-loaded policy.
 * Signatures (src/policy/bundle-signature.ts) against bundles signed by `opa build --signing-key`:
 * OPA's canonical JSON digests, and one refusal per rule of OPA's "Signature Verification".
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, test } from 'vitest';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { CompactSign } from 'jose';
import { openBundle, readBundle } from '../../src/policy/bundle.ts';
import { BundleError } from '../../src/policy/bundle-format.ts';
import { BundleVerifier, canonicalJson, fileDigest, readVerificationKey, VerificationKeyError } from '../../src/policy/bundle-signature.ts';
import { compileRego, opaBinary } from '../../src/policy/compile.ts';
import { buildBundle, keyPairFiles, pack, unpack, withFile } from '../helpers/bundle-server.ts';

const run = promisify(execFile);
const OPA = opaBinary(undefined);
const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

/** A tiny Rego folder with a data.json, in a fresh temp dir. */
function regoFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-rego-'));
  writeFileSync(join(dir, 'tiny.rego'), 'package tiny\nimport rego.v1\ndefault decision := false\ndecision if input.x == data.tiny.want\n');
  writeFileSync(join(dir, 'tiny_test.rego'), 'package tiny_test\nimport rego.v1\ntest_t if true\n');
  writeFileSync(join(dir, 'data.json'), JSON.stringify({ tiny: { want: 1 } }));
  return dir;
}

function expectBundleError(gz: Buffer, message: RegExp): void {
  let caught: unknown;
  try {
    readBundle(gz);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(BundleError);
  expect((caught as Error).message).toMatch(message);
}

/** A .tar.gz of `files`, made by the system tar (entries named ./name). */
async function systemTarGz(files: Record<string, string | Buffer>): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-tar-'));
  mkdirSync(join(dir, 'in'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, 'in', name), content);
  await run('tar', ['-czf', join(dir, 'out.tar.gz'), '-C', join(dir, 'in'), '.']);
  return readFileSync(join(dir, 'out.tar.gz'));
}

let compiled: Buffer;
beforeAll(async () => {
  compiled = await compileRego(regoFolder(), { opa: OPA, entrypoint: 'tiny/decision' });
});

describe('real bundles', () => {
  test('compileRego output: policy.wasm, data.json, no revision', () => {
    const bundle = readBundle(compiled);
    expect(bundle.wasm.subarray(0, 4)).toEqual(WASM_MAGIC);
    expect(bundle.wasm.length).toBeGreaterThan(1000);
    expect(bundle.data).toEqual({ tiny: { want: 1 } });
    expect(bundle.revision).toBeUndefined();
  });

  test('compileRego leaves *_test.rego out of the bundle', () => {
    const tar = gunzipSync(compiled).toString('latin1');
    expect(tar).toContain('tiny.rego');
    expect(tar).not.toContain('tiny_test.rego');
  });

  test('opa build --revision: the manifest revision is read', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'agentward-rev-')), 'bundle.tar.gz');
    await run(OPA, ['build', '-t', 'wasm', '-e', 'tiny/decision', '--revision', 'r-2026.01', '-o', out, regoFolder()]);
    const bundle = readBundle(readFileSync(out));
    expect(bundle.revision).toBe('r-2026.01');
    expect(bundle.wasm.subarray(0, 4)).toEqual(WASM_MAGIC);
  });

  test('entries named ./x by another tar are found too', async () => {
    const gz = await systemTarGz({ 'policy.wasm': Buffer.concat([WASM_MAGIC, Buffer.alloc(4)]), 'data.json': '{"a":1}', '.manifest': '{"revision":"v9"}' });
    expect(readBundle(gz)).toEqual({ wasm: Buffer.concat([WASM_MAGIC, Buffer.alloc(4)]), data: { a: 1 }, revision: 'v9' });
  });
});

describe('not a bundle → BundleError', () => {
  test('not gzip', () => {
    expectBundleError(Buffer.from('policy.wasm is in here, honest'), /not a gzip file/);
  });

  test('a truncated gzip stream', () => {
    expectBundleError(compiled.subarray(0, Math.floor(compiled.length / 2)), /not a gzip file/);
  });

  test('gzip of garbage', () => {
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251;
    expectBundleError(gzipSync(garbage), /the bundle tar has a corrupt header/);
  });

  test('gzip of a tar cut in the middle of policy.wasm', () => {
    const tar = gunzipSync(compiled);
    const at = tar.indexOf(WASM_MAGIC);
    expect(at).toBeGreaterThan(0);
    expectBundleError(gzipSync(tar.subarray(0, at + 1000)), /truncated/);
  });

  test('gzip of a tar without policy.wasm', async () => {
    expectBundleError(await systemTarGz({ 'data.json': '{}', '.manifest': '{"revision":"x"}' }), /no \/policy\.wasm/);
  });

  test('an empty gzip', () => {
    expectBundleError(gzipSync(Buffer.alloc(0)), /no \/policy\.wasm/);
  });

  test('data.json that is not JSON, or not an object', async () => {
    expectBundleError(await systemTarGz({ 'policy.wasm': WASM_MAGIC, 'data.json': '{nope' }), /data\.json in the bundle is not JSON/);
    expectBundleError(await systemTarGz({ 'policy.wasm': WASM_MAGIC, 'data.json': '[1]' }), /data\.json in the bundle is not a JSON object/);
  });

  test('a .manifest that is not a JSON object', async () => {
    expectBundleError(await systemTarGz({ 'policy.wasm': WASM_MAGIC, '.manifest': '"r1"' }), /\.manifest in the bundle is not a JSON object/);
  });
});

// ------------------------------------------------------------------ signatures (OPA "Signing")

describe('canonical JSON, as OPA hashes structured files (v1/bundle/hash.go)', () => {
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

  test('data.json and .manifest vectors from opa 1.x: keys sorted, numbers as written, HTML characters unescaped, U+2028 escaped', () => {
    // What `opa build --revision r1 --signing-key` wrote and signed for these two files.
    const data = canonicalJson('{"tiny":{"z":"\\u2028\\u003c\\u0026\\u003e", "want": 1.0, "a":[1e2, 10]}}');
    expect(data).toBe('{"tiny":{"a":[1e2,10],"want":1.0,"z":"\\u2028<&>"}}');
    expect(sha256(data)).toBe('24fd41d0d4dc215e660a0c06c09c63418407ed2d0d1ed8349afb11e9f8d2525a');
    const manifest = canonicalJson('{"revision":"r1","roots":[""],"wasm":[{"entrypoint":"tiny/decision","module":"/policy.wasm"}],"rego_version":1}');
    expect(sha256(manifest)).toBe('feb41a34cb8011e32962d41a5218f486a70c456abf2191be2a339a174a9ae131');
  });

  test('strings as Go writes them: short escapes, \\u00xx for other controls, raw non-ASCII, U+FFFD for a lone surrogate', () => {
    expect(canonicalJson('["\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f", "é€😀", "\\ud800", "\\u2029"]')).toBe('["\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f","é€😀","\uFFFD","\\u2029"]');
  });

  test('object keys in the byte order of their UTF-8 (not UTF-16 order), whitespace and layout ignored', () => {
    expect(canonicalJson('{ "😀": 1, "\\uffff": 2, "z": 3, "é": 4, "a": 5 }')).toBe('{"a":5,"z":3,"é":4,"\uffff":2,"😀":1}');
    expect(canonicalJson('{\n  "b": [ true, false, null ],\n  "a": {"y": -0, "x": 1E+2}\n}\n')).toBe('{"a":{"x":1E+2,"y":-0},"b":[true,false,null]}');
  });

  test('not JSON: a SyntaxError', () => {
    expect(() => canonicalJson('{nope')).toThrow(SyntaxError);
  });
});

describe('signed bundles (built and signed by opa build --signing-key)', () => {
  let rsa: { private: string; public: string };
  let ec: { private: string; public: string };
  let signed: Buffer;
  let unsigned: Buffer;
  let verifier: BundleVerifier;

  beforeAll(async () => {
    rsa = keyPairFiles('rsa');
    ec = keyPairFiles('ec');
    signed = await buildBundle(regoFolder(), { entrypoint: 'tiny/decision', revision: 's1', signingKey: rsa.private });
    unsigned = await buildBundle(regoFolder(), { entrypoint: 'tiny/decision', revision: 'u1' });
    verifier = BundleVerifier.fromFile(rsa.public);
  });

  async function expectRefused(gz: Buffer, v: BundleVerifier | undefined, message: RegExp): Promise<void> {
    const err: unknown = await openBundle(gz, v).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BundleError);
    expect((err as Error).message).toMatch(message);
  }

  test('a bundle opa signed verifies: every file listed with its digest, the manifest revision is read', async () => {
    expect([...unpack(signed).keys()].sort()).toEqual(['.manifest', '.signatures.json', 'data.json', 'policy.wasm', 'tiny.rego']);
    const bundle = await openBundle(signed, verifier);
    expect(bundle.revision).toBe('s1');
    expect(bundle.data).toEqual({ tiny: { want: 1 } });
  });

  test('ES256, with the public key given as a JWK', async () => {
    const gz = await buildBundle(regoFolder(), { entrypoint: 'tiny/decision', signingKey: ec.private, signingAlg: 'ES256' });
    const jwkFile = join(mkdtempSync(join(tmpdir(), 'agentward-jwk-')), 'key.jwk.json');
    writeFileSync(jwkFile, JSON.stringify(createPublicKey(readFileSync(ec.public)).export({ format: 'jwk' })));
    await expect(openBundle(gz, BundleVerifier.fromFile(jwkFile))).resolves.toMatchObject({ data: { tiny: { want: 1 } } });
  });

  test('data.json and .manifest re-serialised (layout, key order) still verify: their digests are over canonical JSON', async () => {
    const files = unpack(signed);
    const data = JSON.parse(files.get('data.json')!.toString()) as { tiny: { want: number } };
    const manifest = JSON.parse(files.get('.manifest')!.toString()) as Record<string, unknown>;
    const reversed = Object.fromEntries(Object.entries(manifest).reverse());
    const gz = withFile(withFile(signed, 'data.json', `\n{ "tiny" : { "want" : ${data.tiny.want} } }\n`), '.manifest', JSON.stringify(reversed, null, 4));
    await expect(openBundle(gz, verifier)).resolves.toMatchObject({ revision: 's1' });
  });

  test('a changed data.json, policy.wasm, .manifest or .rego is refused', async () => {
    await expectRefused(withFile(signed, 'data.json', '{"tiny":{"want":2}}'), verifier, /bundle signature: \/data\.json does not match its signed SHA-256 digest/);
    const wasm = Buffer.from(unpack(signed).get('policy.wasm')!);
    wasm[wasm.length - 1] ^= 1;
    await expectRefused(withFile(signed, 'policy.wasm', wasm), verifier, /\/policy\.wasm does not match its signed SHA-256 digest/);
    await expectRefused(withFile(signed, '.manifest', '{"revision":"s2"}'), verifier, /\/\.manifest does not match/);
    await expectRefused(withFile(signed, 'tiny.rego', 'package tiny\n'), verifier, /\/tiny\.rego does not match/);
  });

  test('a file added after signing, or a signed file removed, is refused', async () => {
    await expectRefused(withFile(signed, 'extra/data.json', '{}'), verifier, /\/extra\/data\.json is not listed in the signature/);
    await expectRefused(withFile(signed, 'tiny.rego', undefined), verifier, /the signature lists \/tiny\.rego, which the bundle does not contain/);
  });

  test('an unsigned bundle is refused when verification is configured', async () => {
    await expectRefused(unsigned, verifier, /the bundle has no \/\.signatures\.json; sign it/);
  });

  test('a signed bundle is refused when verification is not configured (as OPA does)', async () => {
    await expectRefused(signed, undefined, /the bundle is signed \(\/\.signatures\.json\) but policy\.verification is not configured/);
    expect((await openBundle(unsigned, undefined)).revision).toBe('u1');
  });

  test('a signature by another key, or with another algorithm, is refused', async () => {
    await expectRefused(signed, BundleVerifier.fromFile(keyPairFiles('rsa').public), /the signature does not verify with policy\.verification\.keyFile/);
    await expectRefused(signed, BundleVerifier.fromFile(rsa.public, { algorithm: 'PS256' }), /the signature does not use PS256/);
  });

  test('scope: the signature scope must equal policy.verification.scope, both possibly absent', async () => {
    const scoped = await buildBundle(regoFolder(), { entrypoint: 'tiny/decision', signingKey: rsa.private, claims: { scope: 'write' } });
    await expect(openBundle(scoped, BundleVerifier.fromFile(rsa.public, { scope: 'write' }))).resolves.toBeDefined();
    await expectRefused(scoped, verifier, /the signature scope "write" is not expected/);
    await expectRefused(scoped, BundleVerifier.fromFile(rsa.public, { scope: 'read' }), /the signature scope "write" is not policy\.verification\.scope "read"/);
    await expectRefused(signed, BundleVerifier.fromFile(rsa.public, { scope: 'write' }), /the signature has no scope/);
  });

  test('keyId: a signature naming another key id is refused', async () => {
    const named = await buildBundle(regoFolder(), { entrypoint: 'tiny/decision', signingKey: rsa.private, keyId: 'prod' });
    await expect(openBundle(named, BundleVerifier.fromFile(rsa.public, { keyId: 'prod' }))).resolves.toBeDefined();
    await expect(openBundle(named, verifier)).resolves.toBeDefined();
    await expectRefused(named, BundleVerifier.fromFile(rsa.public, { keyId: 'staging' }), /the signature names key "prod", not policy\.verification\.keyId "staging"/);
  });

  test('.signatures.json must hold exactly one JWS for the default verifier', async () => {
    const token = (JSON.parse(unpack(signed).get('.signatures.json')!.toString()) as { signatures: string[] }).signatures[0]!;
    await expectRefused(withFile(signed, '.signatures.json', JSON.stringify({ signatures: [token, token] })), verifier, /must hold exactly one signature/);
    await expectRefused(withFile(signed, '.signatures.json', JSON.stringify({ signatures: [] })), verifier, /must hold exactly one signature/);
    await expectRefused(withFile(signed, '.signatures.json', JSON.stringify({ signatures: [token], plugin: 'kms' })), verifier, /needs the signing plugin "kms"/);
    await expectRefused(withFile(signed, '.signatures.json', '{nope'), verifier, /\.signatures\.json is not JSON/);
    await expectRefused(withFile(signed, '.signatures.json', JSON.stringify({ signatures: ['not.a.jws'] })), verifier, /the signature is not a valid JWS/);
  });

  test('weak digests (MD5) and files listed twice are refused, even when properly signed', async () => {
    const key = createPrivateKey(readFileSync(rsa.private));
    const sign = (files: unknown[]) => new CompactSign(Buffer.from(JSON.stringify({ files }))).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(key);
    const names = [...unpack(unsigned).keys()];
    const listed = names.map((name) => ({ name, hash: fileDigest(name, unpack(unsigned).get(name)!, 'SHA-256'), algorithm: 'SHA-256' }));
    const resign = async (files: unknown[]) => withFile(unsigned, '.signatures.json', JSON.stringify({ signatures: [await sign(files)] }));
    await expect(openBundle(await resign(listed), verifier)).resolves.toMatchObject({ revision: 'u1' });
    const md5 = listed.map((f) => (f.name === 'policy.wasm' ? { ...f, hash: createHash('md5').update(unpack(unsigned).get(f.name)!).digest('hex'), algorithm: 'MD5' } : f));
    await expectRefused(await resign(md5), verifier, /uses digest MD5 for \/policy\.wasm/);
    await expectRefused(await resign([...listed, listed[0]]), verifier, /lists \/[^ ]+ twice/);
    // Digests are hex, compared as bytes: upper-case hex is the same digest (Go hex.DecodeString).
    await expect(openBundle(await resign(listed.map((f) => ({ ...f, hash: f.hash.toUpperCase() }))), verifier)).resolves.toBeDefined();
  });

  test('the signature must be a JWT-typed JWS', async () => {
    const key = createPrivateKey(readFileSync(rsa.private));
    const token = await new CompactSign(Buffer.from(JSON.stringify({ files: [] }))).setProtectedHeader({ alg: 'RS256', typ: 'dpop+jwt' }).sign(key);
    await expectRefused(withFile(unsigned, '.signatures.json', JSON.stringify({ signatures: [token] })), verifier, /typ "dpop\+jwt", not JWT/);
  });
});

describe('verification keys', () => {
  function keyFile(content: string): string {
    const file = join(mkdtempSync(join(tmpdir(), 'agentward-key-')), 'key');
    writeFileSync(file, content);
    return file;
  }
  function keyError(file: string, algorithm?: string): VerificationKeyError {
    try {
      readVerificationKey(file, algorithm);
    } catch (err) {
      expect(err).toBeInstanceOf(VerificationKeyError);
      return err as VerificationKeyError;
    }
    throw new Error('expected a VerificationKeyError');
  }

  test('the algorithm defaults from the key: RS256 for RSA, ES256 for P-256, EdDSA for Ed25519, a JWK alg wins', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    expect(readVerificationKey(keyFile(rsa.export({ type: 'spki', format: 'pem' }).toString())).algorithm).toBe('RS256');
    expect(readVerificationKey(keyFile(rsa.export({ type: 'pkcs1', format: 'pem' }).toString())).algorithm).toBe('RS256');
    expect(readVerificationKey(keyFile(JSON.stringify({ ...rsa.export({ format: 'jwk' }), alg: 'PS384' }))).algorithm).toBe('PS384');
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(readVerificationKey(keyFile(p256.export({ type: 'spki', format: 'pem' }).toString())).algorithm).toBe('ES256');
    const ed = generateKeyPairSync('ed25519').publicKey;
    expect(readVerificationKey(keyFile(ed.export({ type: 'spki', format: 'pem' }).toString())).algorithm).toBe('EdDSA');
  });

  test('refused: a private key, something that is no key, an unreadable file, an algorithm that does not fit the key', () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(keyError(keyFile(pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()))).toMatchObject({ key: 'keyFile', message: expect.stringContaining('holds a private key') });
    expect(keyError(keyFile(JSON.stringify(pair.privateKey.export({ format: 'jwk' }))))).toMatchObject({ key: 'keyFile', message: expect.stringContaining('holds a private key') });
    expect(keyError(keyFile('hello'))).toMatchObject({ key: 'keyFile', message: expect.stringContaining('is neither PEM nor a JSON Web Key') });
    expect(keyError('/nonexistent/key.pem')).toMatchObject({ key: 'keyFile', message: expect.stringContaining('cannot be read (ENOENT)') });
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(keyError(keyFile(small))).toMatchObject({ key: 'keyFile', message: expect.stringContaining('holds a 1024-bit RSA key') });
    const pem = keyFile(pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    expect(keyError(pem, 'ES256')).toMatchObject({ key: 'algorithm', message: expect.stringContaining('algorithm ES256 does not fit the RSA key') });
  });
});

describe('bundle layout', () => {
  test('a name seen twice in the tar is refused', () => {
    const tar = gunzipSync(pack({ 'policy.wasm': WASM_MAGIC }));
    const entry = tar.subarray(0, 1024);
    expectBundleError(gzipSync(Buffer.concat([entry, entry, Buffer.alloc(1024)])), /two entries named \/policy\.wasm/);
  });

  test('nested data.json files are placed at their folder path, as OPA does', () => {
    expect(readBundle(pack({ 'policy.wasm': WASM_MAGIC, 'data.json': '{"a":1}', 'roles/bindings/data.json': '{"x":[1]}' })).data).toEqual({ a: 1, roles: { bindings: { x: [1] } } });
    expectBundleError(pack({ 'policy.wasm': WASM_MAGIC, 'data.json': '{"roles":{"bindings":1}}', 'roles/bindings/data.json': '{}' }), /sets data that another data file in the bundle sets too/);
  });

  test('YAML data, delta bundles and a non-string revision are refused rather than half-read', () => {
    expectBundleError(pack({ 'policy.wasm': WASM_MAGIC, 'data.yaml': 'a: 1' }), /data\.yaml: YAML data files are not supported/);
    expectBundleError(pack({ 'policy.wasm': WASM_MAGIC, 'patch.json': '{"data":[]}' }), /delta bundles/);
    expectBundleError(pack({ 'policy.wasm': WASM_MAGIC, '.manifest': '{"revision":7}' }), /revision is not a string/);
  });
});
