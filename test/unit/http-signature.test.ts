/**
 * The WIMSE HTTP Message Signature verifier on its own, with a frozen clock: the signature base
 * against the RFC 9421 / RFC 9530 published values, the http-signature-06 example of
 * http-signature-06 §3.6 (refused in -07/-08 mode), and one test per negative case HSIG-N01..N30 of
 * docs/negative-cases.md that this module decides (N27, the WIT, is the pipeline's).
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { generateKeyPair, importJWK, importSPKI, type CryptoKey } from 'jose';
import { parseDictionary, type InnerList } from 'structured-headers';
import {
  HttpSignatureVerifier,
  WIMSE_TAG,
  contentDigest,
  findWimseSignature,
  signatureBase,
  verifySignatureValue,
  type HttpSignatureVerifierOptions,
  type SignedRequest,
  type WorkloadKey,
} from '../../src/credentials/http-signature.ts';
import { AgentwardError } from '../../src/errors.ts';
import { expectCode } from '../helpers/expect-code.ts';
import { signRequest, toSignedRequest, type SignRequestOptions } from '../helpers/http-signature.ts';

const TARGET = 'https://tools.example.com/mcp';
const NOW = 1_800_000_000;
/** The WIT is verified before this module runs; here it is only a covered header value. */
const WIT = 'eyJhbGciOiJFUzI1NiIsInR5cCI6IndpdCtqd3QifQ.eyJzdWIiOiJ3aW1zZTovL2V4YW1wbGUuY29tL2FnZW50In0.c2ln';
const ACCESS_TOKEN = 'eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ1c2VyIn0.dG9rZW4';

function clock(startSeconds = NOW + 1) {
  const c = { ms: startSeconds * 1000, now: () => c.ms };
  return c;
}

function verifier(now: () => number = clock().now, options: Partial<HttpSignatureVerifierOptions> = {}) {
  return new HttpSignatureVerifier({ audiences: new Set(['urn:example:tools']), clockSkewSeconds: 5, maxLifetimeSeconds: 300, replayCacheSize: 1000, now, ...options });
}

interface Pair {
  alg: string;
  privateKey: CryptoKey;
  key: WorkloadKey;
}

async function pair(alg: string): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { alg, privateKey, key: { key: publicKey, alg } };
}

let es256: Pair;
let eddsa: Pair;
beforeAll(async () => {
  es256 = await pair('ES256');
  eddsa = await pair('EdDSA');
});

interface Case {
  method?: string;
  url?: string;
  /** Headers of the request besides the WIT (which is always sent). */
  headers?: Record<string, string | string[]>;
  body?: string;
  signer?: Pair;
  /** Overrides for the signer (components, params, created, …). */
  sign?: Partial<SignRequestOptions>;
}

/** A request signed by `signer` (ES256 by default) with the helper's defaults, as the proxy sees it. */
async function signed(c: Case = {}): Promise<SignedRequest> {
  const method = c.method ?? 'POST';
  const url = c.url ?? '/mcp';
  const headers = { 'workload-identity-token': WIT, ...c.headers };
  const signer = c.signer ?? es256;
  const added = await signRequest({ method, url, headers, body: c.body, key: signer.privateKey, alg: signer.alg, aud: TARGET, created: NOW, ...c.sign });
  return toSignedRequest({ method, url, headers: { ...headers, ...added }, body: c.body });
}

function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof AgentwardError) return err.code;
    throw err;
  }
  return undefined;
}

function withHeaders(request: SignedRequest, headers: Record<string, string[] | undefined>): SignedRequest {
  const merged: Record<string, string[]> = { ...request.headers };
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) delete merged[name];
    else merged[name] = value;
  }
  return { ...request, headers: merged };
}

describe('RFC 9421 and RFC 9530 published values', () => {
  // RFC 9421 Appendix B.2 test-request and Appendix B.1.4 test-key-ed25519.
  const B2_REQUEST: SignedRequest = {
    method: 'POST',
    path: '/foo',
    query: '?param=Value&Pet=dog',
    authority: 'example.com',
    headers: {
      host: ['example.com'],
      date: ['Tue, 20 Apr 2021 02:07:55 GMT'],
      'content-type': ['application/json'],
      'content-digest': ['sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:'],
      'content-length': ['18'],
    },
    body: Buffer.from('{"hello": "world"}'),
  };
  const ED25519_PUBLIC = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----';

  function member(field: string, label: string): InnerList {
    return parseDictionary(field).get(label) as InnerList;
  }

  test('B.2.6: the signature base is reproduced exactly and the published ed25519 signature verifies', async () => {
    const input = member('sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"', 'sig-b26');
    const base = signatureBase(B2_REQUEST, input);
    expect(base.toString('latin1')).toBe(
      [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@authority": example.com',
        '"content-type": application/json',
        '"content-length": 18',
        '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
      ].join('\n'),
    );
    const key: WorkloadKey = { key: await importSPKI(ED25519_PUBLIC, 'EdDSA'), alg: 'EdDSA' };
    const signature = Buffer.from('wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==', 'base64');
    expect(await verifySignatureValue(key, base, signature)).toBe(true);
    expect(await verifySignatureValue(key, signatureBase({ ...B2_REQUEST, method: 'PUT' }, input), signature)).toBe(false);
  });

  test('§2.1: field lines are trimmed and combined with ", "', () => {
    const request: SignedRequest = { ...B2_REQUEST, headers: { 'cache-control': ['max-age=60', '   must-revalidate'], 'x-ows-header': ['   Leading and trailing whitespace.   '] } };
    const base = signatureBase(request, member('s=("cache-control" "x-ows-header");created=1', 's'));
    expect(base.toString('latin1')).toBe('"cache-control": max-age=60, must-revalidate\n"x-ows-header": Leading and trailing whitespace.\n"@signature-params": ("cache-control" "x-ows-header");created=1');
  });

  test('§2.2.6, §2.2.7: @path and @query are raw; an absent query is "?" and an empty path "/"', () => {
    const input = member('s=("@path" "@query")', 's');
    const line = (path: string, query: string) => signatureBase({ ...B2_REQUEST, path, query }, input).toString('latin1').split('\n').slice(0, 2);
    expect(line('/path', '?param=value&foo=bar&baz=bat%2Dman')).toEqual(['"@path": /path', '"@query": ?param=value&foo=bar&baz=bat%2Dman']);
    expect(line('/path', '?')).toEqual(['"@path": /path', '"@query": ?']);
    expect(line('', '?')).toEqual(['"@path": /', '"@query": ?']);
  });

  test('RFC 9530 §2: Content-Digest of {"hello": "world"}', () => {
    const body = Buffer.from('{"hello": "world"}');
    expect(contentDigest(body)).toBe('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
    expect(contentDigest(body, 'sha-512')).toBe('sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:');
  });
});

describe('http-signature-06 §3.6: the published example (@request-target era)', () => {
  const request: SignedRequest = {
    method: 'GET',
    path: '/gimme-ice-cream',
    query: '?flavor=vanilla',
    headers: {
      host: ['svcb.example.com'],
      'signature-input': [
        'wimse=("@method" "@request-target" "workload-identity-token");created=1785155797;expires=1785156097;nonce="abcd1111";tag="wimse-workload-to-workload";wimse-aud="https://svcb.example.com/gimme-ice-cream";wimse-sign-response',
      ],
      signature: ['wimse=:zSK+kx5EnoZct9FZ6LMYzfx0mk32oI/hHpB7y4rgHxkRDcAA72yBW5xgzA03nKviXLjL7nphq840Uwznp6IKAw==:'],
      // The example's WIT is not reproduced in the digest; refusal happens before the base is built.
      'workload-identity-token': [WIT],
    },
    body: undefined,
  };

  test('HSIG-N05: it is found by its tag, then refused in -07/-08 mode because @path and @query are not covered', async () => {
    expect(findWimseSignature(request.headers)).toEqual({ label: 'wimse' });
    const key: WorkloadKey = { key: (await importJWK({ kty: 'OKP', crv: 'Ed25519', x: 'ZjlVT4COsCkQO9HIo6tDWAXayQ0MymoFUKJRIQ7S8R8' }, 'EdDSA')) as CryptoKey, alg: 'EdDSA' };
    const error = await expectCode(verifier(clock(1785155800).now).verify(request, key, 'https://svcb.example.com/gimme-ice-cream'), 'ERR_HSIG_COMPONENTS');
    expect(error.detail).toContain('"@path"');
  });
});

describe('accepted requests', () => {
  test('ES256, POST with body and query, Authorization and Txn-Token covered', async () => {
    const request = await signed({
      url: '/mcp?session=abc&x=%2F',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ACCESS_TOKEN}`, 'txn-token': 'txn.token.value' },
      body: '{"jsonrpc":"2.0","method":"tools/list","id":1}',
      sign: { nonce: 'n-es256' },
    });
    const result = await verifier().verify(request, es256.key, TARGET);
    expect(result).toEqual({
      label: 'wimse',
      nonce: 'n-es256',
      created: NOW,
      expires: NOW + 60,
      covered: ['"@method"', '"@path"', '"@query"', '"workload-identity-token"', '"content-type"', '"content-digest"', '"authorization"', '"txn-token"'],
      audience: TARGET,
      signResponseRequested: false,
    });
  });

  test('EdDSA, GET without body or query', async () => {
    const request = await signed({ method: 'GET', signer: eddsa });
    expect(request.query).toBe('?');
    const result = await verifier().verify(request, eddsa.key, TARGET);
    expect(result.covered).toEqual(['"@method"', '"@path"', '"@query"', '"workload-identity-token"']);
  });

  test.each(['Ed25519', 'ES384', 'ES512', 'RS256', 'PS256', 'PS512'])('%s', async (alg) => {
    const p = await pair(alg);
    const request = await signed({ signer: p, body: '{}', headers: { 'content-type': 'application/json' } });
    expect((await verifier().verify(request, p.key, TARGET)).label).toBe('wimse');
  });

  test('wimse-sign-response is accepted and reported (response signing is not implemented)', async () => {
    const asked = await signed({ sign: { params: { 'wimse-sign-response': true } } });
    expect((await verifier().verify(asked, es256.key, TARGET)).signResponseRequested).toBe(true);
    const declined = await signed({ sign: { params: { 'wimse-sign-response': false } } });
    expect((await verifier().verify(declined, es256.key, TARGET)).signResponseRequested).toBe(false);
  });

  test('Signature-Input and Signature sent as several field lines are combined (RFC 9110 §5.3)', async () => {
    const wimse = await signed();
    const other = await signed({ sign: { label: 'other', tag: 'another-protocol' } });
    const request = withHeaders(wimse, {
      'signature-input': [...other.headers['signature-input']!, ...wimse.headers['signature-input']!],
      signature: [...other.headers.signature!, ...wimse.headers.signature!],
    });
    expect((await verifier().verify(request, es256.key, TARGET)).label).toBe('wimse');
  });

  test('a covered @authority is derived from the request, lower-cased (RFC 9421 §2.2.3); without one it is malformed', async () => {
    const components = ['@method', '@path', '@query', '@authority', 'workload-identity-token'];
    const request = await signed({ sign: { components, authority: 'Tools.Example.com' } });
    expect((await verifier().verify({ ...request, authority: 'tools.example.com' }, es256.key, TARGET)).covered).toContain('"@authority"');
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_MALFORMED');
  });

  test('a covered @scheme is the given scheme, lower-cased (RFC 9421 §2.2.4); another scheme fails the signature', async () => {
    const components = ['@method', '@scheme', '@authority', '@path', '@query', 'workload-identity-token'];
    const request = await signed({ sign: { components, authority: 'tools.example.com', scheme: 'https' } });
    expect((await verifier().verify({ ...request, authority: 'tools.example.com', scheme: 'HTTPS' }, es256.key, TARGET)).covered).toContain('"@scheme"');
    const again = await signed({ sign: { components, authority: 'tools.example.com', scheme: 'https' } });
    await expectCode(verifier().verify({ ...again, authority: 'tools.example.com', scheme: 'http' }, es256.key, TARGET), 'ERR_HSIG_SIGNATURE');
    await expectCode(verifier().verify({ ...again, authority: 'tools.example.com' }, es256.key, TARGET), 'ERR_HSIG_MALFORMED');
  });
});

describe('selection (HSIG-N01..N04)', () => {
  test('HSIG-N01: no Signature-Input → no WIMSE signature', async () => {
    expect(findWimseSignature({ 'workload-identity-token': [WIT] })).toBeUndefined();
    await expectCode(verifier().verify(toSignedRequest({ method: 'GET', url: '/mcp', headers: { 'workload-identity-token': WIT } }), es256.key, TARGET), 'ERR_HSIG_PARAMETERS');
  });

  test('HSIG-N02 / HSIG-N16: a signature with another tag is not a WIMSE signature, even labelled wimse', async () => {
    const request = await signed({ sign: { tag: 'some-other-protocol' } });
    expect(findWimseSignature(request.headers)).toBeUndefined();
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_PARAMETERS');
  });

  test('HSIG-N03: two signatures tagged wimse-workload-to-workload → refused', async () => {
    const a = await signed({ sign: { label: 'a' } });
    const b = await signed({ sign: { label: 'b' } });
    const request = withHeaders(a, {
      'signature-input': [...a.headers['signature-input']!, ...b.headers['signature-input']!],
      signature: [...a.headers.signature!, ...b.headers.signature!],
    });
    expect(thrownCode(() => findWimseSignature(request.headers))).toBe('ERR_HSIG_MULTIPLE');
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_MULTIPLE');
  });

  test('HSIG-N04: the tagged signature under another label is chosen over a decoy labelled wimse', async () => {
    const decoy = await signed({ signer: eddsa, sign: { label: 'wimse', tag: 'decoy' } });
    const real = await signed({ sign: { label: 'sig2' } });
    const request = withHeaders(real, {
      'signature-input': [...decoy.headers['signature-input']!, ...real.headers['signature-input']!],
      signature: [...decoy.headers.signature!, ...real.headers.signature!],
    });
    expect(findWimseSignature(request.headers)).toEqual({ label: 'sig2' });
    expect((await verifier().verify(request, es256.key, TARGET)).label).toBe('sig2');
  });

  test('RFC 9421 §7.2.8: with an accepted label, the tagged member of that label is chosen among several; none of it → ERR_HSIG_LABEL', async () => {
    const a = await signed({ signer: eddsa, sign: { label: 'a' } });
    const b = await signed({ sign: { label: 'b' } });
    const request = withHeaders(a, {
      'signature-input': [...a.headers['signature-input']!, ...b.headers['signature-input']!],
      signature: [...a.headers.signature!, ...b.headers.signature!],
    });
    expect(findWimseSignature(request.headers, 'b')).toEqual({ label: 'b' });
    expect((await verifier(clock().now, { label: 'b' }).verify(request, es256.key, TARGET)).label).toBe('b');
    expect(thrownCode(() => findWimseSignature(request.headers, 'c'))).toBe('ERR_HSIG_LABEL');
    await expectCode(verifier(clock().now, { label: 'c' }).verify(request, es256.key, TARGET), 'ERR_HSIG_LABEL');
    // A member of the accepted label without the WIMSE tag is not the WIMSE signature.
    const untagged = await signed({ sign: { label: 'wimse', tag: 'other' } });
    expect(findWimseSignature(untagged.headers, 'wimse')).toBeUndefined();
  });

  test('RFC 9421 §3.2.1: maxAgeSeconds bounds how old created may be (plus the skew), whatever expires says', async () => {
    const c = clock();
    const request = await signed({ sign: { created: NOW - 65, expires: NOW + 100 } });
    await expectCode(verifier(c.now, { maxAgeSeconds: 60 }).verify(request, es256.key, TARGET), 'ERR_HSIG_EXPIRED');
    const fresh = await signed({ sign: { created: NOW - 64, expires: NOW + 100 } });
    expect((await verifier(c.now, { maxAgeSeconds: 60 }).verify(fresh, es256.key, TARGET)).created).toBe(NOW - 64);
  });

  test('requiredComponents: every configured component must be covered, besides the profile ones', async () => {
    const request = await signed();
    await expectCode(verifier(clock().now, { requiredComponents: ['@authority'] }).verify(request, es256.key, TARGET), 'ERR_HSIG_COMPONENTS');
    const covering = await signed({ sign: { components: ['@method', '@authority', '@path', '@query', 'workload-identity-token'], authority: 'tools.example.com' } });
    const verified = await verifier(clock().now, { requiredComponents: ['@authority'] }).verify({ ...covering, authority: 'tools.example.com' }, es256.key, TARGET);
    expect(verified.covered).toContain('"@authority"');
  });

  test('an unparsable Signature-Input → malformed', async () => {
    const request = withHeaders(await signed(), { 'signature-input': ['wimse=("@method" ;created=1'] });
    expect(thrownCode(() => findWimseSignature(request.headers))).toBe('ERR_HSIG_MALFORMED');
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_MALFORMED');
  });

  test('a Signature-Input member that is not an inner list → malformed', () => {
    expect(thrownCode(() => findWimseSignature({ 'signature-input': [`wimse="@method";tag="${WIMSE_TAG}"`] }))).toBe('ERR_HSIG_MALFORMED');
  });

  test('a Signature field without the selected label, or not a byte sequence, or unparsable → malformed', async () => {
    const request = await signed();
    const value = request.headers.signature![0]!.slice('wimse='.length);
    await expectCode(verifier().verify(withHeaders(request, { signature: [`other=${value}`] }), es256.key, TARGET), 'ERR_HSIG_MALFORMED');
    await expectCode(verifier().verify(withHeaders(request, { signature: undefined }), es256.key, TARGET), 'ERR_HSIG_MALFORMED');
    await expectCode(verifier().verify(withHeaders(request, { signature: ['wimse="not bytes"'] }), es256.key, TARGET), 'ERR_HSIG_MALFORMED');
    await expectCode(verifier().verify(withHeaders(request, { signature: ['wimse=:not base64 $:'] }), es256.key, TARGET), 'ERR_HSIG_MALFORMED');
  });
});

describe('covered components (HSIG-N05..N09, N30)', () => {
  test.each(['@method', '@path', '@query'])('HSIG-N05: %s not covered → refused', async (missing) => {
    const components = ['@method', '@path', '@query', 'workload-identity-token'].filter((c) => c !== missing);
    const error = await expectCode(verifier().verify(await signed({ sign: { components } }), es256.key, TARGET), 'ERR_HSIG_COMPONENTS');
    expect(error.detail).toContain(`"${missing}"`);
  });

  test('HSIG-N06: Authorization present but not covered → refused, and the token is not echoed', async () => {
    const request = await signed({ headers: { authorization: `Bearer ${ACCESS_TOKEN}` }, sign: { components: ['@method', '@path', '@query', 'workload-identity-token'] } });
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_COMPONENTS', ACCESS_TOKEN);
  });

  test('HSIG-N07: Txn-Token present but not covered → refused', async () => {
    const request = await signed({ headers: { 'txn-token': 'a.b.c' }, sign: { components: ['@method', '@path', '@query', 'workload-identity-token'] } });
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_COMPONENTS');
  });

  test('HSIG-N08: Workload-Identity-Token not covered → refused', async () => {
    const request = await signed({ sign: { components: ['@method', '@path', '@query'] } });
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_COMPONENTS', WIT);
  });

  test('HSIG-N09: Content-Type present but not covered → refused', async () => {
    const request = await signed({ method: 'GET', headers: { 'content-type': 'text/plain' }, sign: { components: ['@method', '@path', '@query', 'workload-identity-token'] } });
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_COMPONENTS');
  });

  test('Content-Digest present but not covered → refused', async () => {
    const request = await signed({ body: 'x', sign: { components: ['@method', '@path', '@query', 'workload-identity-token'] } });
    expect(request.headers['content-digest']).toBeDefined();
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_COMPONENTS');
  });

  test('HSIG-N30: the same component listed twice → malformed (RFC 9421 §2)', async () => {
    // The helper builds bases with the verifier's own code, which refuses this too; edit the field.
    const request = await signed();
    const input = request.headers['signature-input']![0]!.replace('("@method" ', '("@method" "@method" ');
    expect(input).toContain('("@method" "@method" "@path"');
    await expectCode(verifier().verify(withHeaders(request, { 'signature-input': [input] }), es256.key, TARGET), 'ERR_HSIG_MALFORMED');
  });

  test('a covered header absent from the request → malformed (RFC 9421 §2.5)', async () => {
    const request = await signed({ headers: { 'x-trace': '1' }, sign: { components: ['@method', '@path', '@query', 'workload-identity-token', 'x-trace'] } });
    await expectCode(verifier().verify(withHeaders(request, { 'x-trace': undefined }), es256.key, TARGET), 'ERR_HSIG_MALFORMED');
  });

  test('component parameters, upper-case or non-string identifiers, unsupported derived components → malformed', async () => {
    const request = await signed();
    const params = `;created=${NOW};expires=${NOW + 60};nonce="n";tag="${WIMSE_TAG}";wimse-aud="${TARGET}"`;
    for (const list of [
      '("@method" "@path" "@query" "workload-identity-token";sf)',
      '("@method" "@path" "@query" "workload-identity-token" "content-type";bs)',
      '("@method" "@path" "@query" "Workload-Identity-Token")',
      '("@method" "@path" "@query" workload-identity-token)',
      '("@method" "@path" "@query" "@target-uri" "workload-identity-token")',
      '("@method" "@path" "@query" "@request-target" "workload-identity-token")',
    ]) {
      await expectCode(verifier().verify(withHeaders(request, { 'signature-input': [`wimse=${list}${params}`] }), es256.key, TARGET), 'ERR_HSIG_MALFORMED');
    }
  });
});

describe('signature parameters (HSIG-N12..N18)', () => {
  test.each([
    ['HSIG-N12: missing created', { created: undefined }],
    ['HSIG-N13: missing expires', { expires: undefined }],
    ['HSIG-N14: missing nonce', { nonce: undefined }],
    ['HSIG-N15: missing wimse-aud', { 'wimse-aud': undefined }],
    ['HSIG-N17: keyid present', { keyid: 'svc-a-key' }],
    ['HSIG-N18: alg present', { alg: 'ed25519' }],
    ['created not an integer', { created: String(NOW) }],
    ['expires a decimal', { expires: NOW + 60.5 }],
    ['empty nonce', { nonce: '' }],
    ['nonce too long', { nonce: 'n'.repeat(257) }],
    ['wimse-aud not a string', { 'wimse-aud': 1 }],
    ['wimse-sign-response not a boolean', { 'wimse-sign-response': 'yes' }],
  ])('%s → refused', async (_name, params) => {
    await expectCode(verifier().verify(await signed({ sign: { params } }), es256.key, TARGET), 'ERR_HSIG_PARAMETERS');
  });
});

describe('validity window (HSIG-N19..N22)', () => {
  test('HSIG-N19: expires passed → refused; within the skew → accepted', async () => {
    const request = await signed();
    await expectCode(verifier(clock(NOW + 60 + 5).now).verify(request, es256.key, TARGET), 'ERR_HSIG_EXPIRED');
    expect((await verifier(clock(NOW + 60 + 4).now).verify(request, es256.key, TARGET)).nonce).toBeTruthy();
  });

  test('HSIG-N20: expires before created → refused', async () => {
    await expectCode(verifier().verify(await signed({ sign: { expires: NOW - 1 } }), es256.key, TARGET), 'ERR_HSIG_EXPIRED');
  });

  test('HSIG-N21: created in the future beyond the skew → refused; within it → accepted', async () => {
    await expectCode(verifier(clock(NOW - 6).now).verify(await signed(), es256.key, TARGET), 'ERR_HSIG_EXPIRED');
    expect((await verifier(clock(NOW - 5).now).verify(await signed(), es256.key, TARGET)).created).toBe(NOW);
  });

  test('HSIG-N22: valid for longer than maxLifetimeSeconds → refused', async () => {
    await expectCode(verifier().verify(await signed({ sign: { expires: NOW + 301 } }), es256.key, TARGET), 'ERR_HSIG_EXPIRED');
    expect((await verifier().verify(await signed({ sign: { expires: NOW + 300 } }), es256.key, TARGET)).expires).toBe(NOW + 300);
  });
});

describe('audience (HSIG-N23, N24)', () => {
  test('HSIG-N23: wimse-aud of another service → refused', async () => {
    await expectCode(verifier().verify(await signed({ sign: { aud: 'https://other.example.com/mcp' } }), es256.key, TARGET), 'ERR_HSIG_AUDIENCE');
  });

  test('HSIG-N24: wimse-aud matching only a spoofed Host → refused (the target comes from configuration)', async () => {
    const request = await signed({ headers: { host: 'evil.example' }, sign: { aud: 'https://evil.example/mcp' } });
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_AUDIENCE');
  });

  test('a configured alias and an equivalent URI (case, default port) are accepted', async () => {
    expect((await verifier().verify(await signed({ sign: { aud: 'urn:example:tools' } }), es256.key, TARGET)).audience).toBe('urn:example:tools');
    expect((await verifier().verify(await signed({ sign: { aud: 'HTTPS://Tools.Example.com:443/mcp' } }), es256.key, TARGET)).nonce).toBeTruthy();
  });
});

describe('body and Content-Digest (HSIG-N10, N11; RFC 9530)', () => {
  test('HSIG-N10: a body without Content-Digest → refused', async () => {
    const request = { ...(await signed()), body: Buffer.from('{"a":1}') };
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_DIGEST');
  });

  test('HSIG-N11: body swapped after signing (signature still valid) → refused', async () => {
    const request = { ...(await signed({ body: '{"amount":100}' })), body: Buffer.from('{"amount":999}') };
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_DIGEST');
  });

  test('sha-512 alone, or several recognised members that all match, are accepted', async () => {
    const body = '{"hello": "world"}';
    const sha512 = contentDigest(Buffer.from(body), 'sha-512');
    expect((await verifier().verify(await signed({ body, headers: { 'content-digest': sha512 } }), es256.key, TARGET)).nonce).toBeTruthy();
    const both = `${contentDigest(Buffer.from(body))}, unixsum=:AAAA:, ${sha512}`;
    expect((await verifier().verify(await signed({ body, headers: { 'content-digest': both } }), es256.key, TARGET)).nonce).toBeTruthy();
  });

  test.each([
    ['one recognised member does not match', `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:${Buffer.alloc(64).toString('base64')}:`],
    ['no recognised algorithm', 'md5=:AAAA:, unixsum=:AAAA:'],
    ['a recognised member that is not a byte sequence', 'sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="'],
    ['not a Dictionary', 'sha-256=:X48E9q'],
  ])('Content-Digest with %s → refused', async (_name, digest) => {
    const request = await signed({ body: '{"hello": "world"}', headers: { 'content-digest': digest } });
    await expectCode(verifier().verify(request, es256.key, TARGET), 'ERR_HSIG_DIGEST');
  });

  test('without a body, a signed Content-Digest must match the empty content', async () => {
    const empty = contentDigest(Buffer.alloc(0));
    expect((await verifier().verify(await signed({ method: 'GET', headers: { 'content-digest': empty } }), es256.key, TARGET)).nonce).toBeTruthy();
    const other = contentDigest(Buffer.from('x'));
    await expectCode(verifier().verify(await signed({ method: 'GET', headers: { 'content-digest': other } }), es256.key, TARGET), 'ERR_HSIG_DIGEST');
  });
});

describe('the signature (HSIG-N26, N28, N29)', () => {
  test('HSIG-N26: signed with a key other than cnf.jwk → refused', async () => {
    const other = await pair('ES256');
    await expectCode(verifier().verify(await signed({ signer: other }), es256.key, TARGET), 'ERR_HSIG_SIGNATURE');
  });

  test('HSIG-N26: a key of another family than cnf.jwk.alg, or an unsupported algorithm → refused', async () => {
    const request = await signed({ signer: eddsa });
    await expectCode(verifier().verify(request, { key: eddsa.key.key, alg: 'ES256' }, TARGET), 'ERR_HSIG_SIGNATURE');
    await expectCode(verifier().verify(request, { key: eddsa.key.key, alg: 'HS256' }, TARGET), 'ERR_HSIG_SIGNATURE');
    const p384 = await pair('ES384');
    await expectCode(verifier().verify(await signed({ signer: p384 }), { key: p384.key.key, alg: 'ES256' }, TARGET), 'ERR_HSIG_SIGNATURE');
  });

  test('HSIG-N28: a covered header, the method, the path or the query modified after signing → refused', async () => {
    const request = await signed({ url: '/mcp?x=1', headers: { authorization: `Bearer ${ACCESS_TOKEN}` } });
    const tampered: SignedRequest[] = [
      withHeaders(request, { authorization: ['Bearer another.access.token'] }),
      withHeaders(request, { 'workload-identity-token': [`${WIT}x`] }),
      { ...request, method: 'PUT' },
      { ...request, path: '/admin' },
      { ...request, query: '?x=2' },
    ];
    for (const r of tampered) await expectCode(verifier().verify(r, es256.key, TARGET), 'ERR_HSIG_SIGNATURE', ACCESS_TOKEN);
  });

  test('HSIG-N29: an uncovered header modified after signing → accepted, and it is not in `covered`', async () => {
    const request = withHeaders(await signed({ headers: { 'x-tool-hint': 'read' } }), { 'x-tool-hint': ['write'] });
    const result = await verifier().verify(request, es256.key, TARGET);
    expect(result.covered).not.toContain('"x-tool-hint"');
  });

  test('the signature parameters are signed: changing one after signing → refused', async () => {
    const request = await signed({ sign: { expires: NOW + 60 } });
    const input = request.headers['signature-input']![0]!.replace(`expires=${NOW + 60}`, `expires=${NOW + 120}`);
    await expectCode(verifier().verify(withHeaders(request, { 'signature-input': [input] }), es256.key, TARGET), 'ERR_HSIG_SIGNATURE');
  });
});

describe('replay (HSIG-N25)', () => {
  test('HSIG-N25: the same signed request twice → the second is refused, also under another label', async () => {
    const v = verifier();
    const request = await signed();
    await v.verify(request, es256.key, TARGET);
    await expectCode(v.verify(request, es256.key, TARGET), 'ERR_HSIG_REPLAYED');
    const relabelled = withHeaders(request, {
      'signature-input': [request.headers['signature-input']![0]!.replace(/^wimse=/, 'again=')],
      signature: [request.headers.signature![0]!.replace(/^wimse=/, 'again=')],
    });
    await expectCode(v.verify(relabelled, es256.key, TARGET), 'ERR_HSIG_REPLAYED');
  });

  test('a nonce is remembered only once the signature verified', async () => {
    const v = verifier();
    const other = await pair('ES256');
    await expectCode(v.verify(await signed({ signer: other, sign: { nonce: 'shared' } }), es256.key, TARGET), 'ERR_HSIG_SIGNATURE');
    await v.verify(await signed({ sign: { nonce: 'shared' } }), es256.key, TARGET);
    expect(v.replayCacheEntries).toBe(1);
  });

  test('with key thumbprints, nonces are scoped per sender key', async () => {
    const v = verifier();
    await v.verify(await signed({ sign: { nonce: 'same' } }), { ...es256.key, thumbprint: 'jkt-a' }, TARGET);
    await v.verify(await signed({ signer: eddsa, sign: { nonce: 'same' } }), { ...eddsa.key, thumbprint: 'jkt-b' }, TARGET);
    await expectCode(v.verify(await signed({ sign: { nonce: 'same' } }), { ...es256.key, thumbprint: 'jkt-a' }, TARGET), 'ERR_HSIG_REPLAYED');
  });

  test('entries expire with their signature: the cache does not grow over time', async () => {
    const c = clock(NOW);
    const v = verifier(c.now);
    for (let i = 0; i < 20; i++) {
      const created = c.ms / 1000;
      await v.verify(await signed({ signer: eddsa, sign: { created, expires: created + 30 } }), eddsa.key, TARGET);
      c.ms += 10_000;
    }
    // Remembered until expires + skew (35 s), one signature every 10 s, the clock 10 s past the
    // last one: those 10, 20 and 30 s old are live.
    expect(v.replayCacheEntries).toBe(3);
  });

  test('memory stays bounded under a flood of unique nonces, and no forgotten nonce can be replayed', async () => {
    const c = clock(NOW);
    const v = verifier(c.now, { replayCacheSize: 50 });
    const early = await signed({ signer: eddsa, sign: { created: NOW, expires: NOW + 120 } });
    await v.verify(early, eddsa.key, TARGET);
    // 500 unique signatures over 50 s, ten times the capacity, each expiring 120 s after creation.
    for (let i = 0; i < 500; i++) {
      if (i % 10 === 0) c.ms += 1000;
      const created = Math.floor(c.ms / 1000);
      await v.verify(await signed({ signer: eddsa, sign: { created, expires: created + 120 } }), eddsa.key, TARGET);
      expect(v.replayCacheEntries).toBeLessThanOrEqual(50);
    }
    // The early nonce was forgotten; the signature is still inside its window, but refused.
    await expectCode(v.verify(early, eddsa.key, TARGET), 'ERR_HSIG_EXPIRED');
    c.ms += 1000;
    const created = Math.floor(c.ms / 1000);
    expect((await v.verify(await signed({ signer: eddsa, sign: { created, expires: created + 120 } }), eddsa.key, TARGET)).created).toBe(created);
  });
});
