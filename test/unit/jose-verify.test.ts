/**
 * The one compact-JWS verifier (src/jose/verify.ts), through a test profile: the order of its
 * steps, the resolver-failure rule (an outage stays 5xx), several matching keys, the form and
 * `typ` rules and the time rule's boundaries. Each credential's own cases are in its test file.
 */
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, test } from 'vitest';
import { AgentwardError } from '../../src/errors.ts';
import { checkTimeClaims, explicitTyp, notNumericDate, verifyCompactJws, type JwsProfile, type TimeRule } from '../../src/jose/verify.ts';
import { expectCode } from '../helpers/expect-code.ts';

const NOW_S = Date.UTC(2026, 0, 15, 12, 0, 0) / 1000;
const now = () => NOW_S * 1000;

let key: CryptoKey;
let other: CryptoKey;
let jwk: JWK;
let otherJwk: JWK;

beforeAll(async () => {
  ({ privateKey: key, publicKey: jwk } = await generateKeyPair('ES256').then(async (k) => ({ privateKey: k.privateKey, publicKey: await exportJWK(k.publicKey) })));
  ({ privateKey: other, publicKey: otherJwk } = await generateKeyPair('ES256').then(async (k) => ({ privateKey: k.privateKey, publicKey: await exportJWK(k.publicKey) })));
});

function sign(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, signer: CryptoKey = key): Promise<string> {
  return new SignJWT({ exp: NOW_S + 60, ...claims }).setProtectedHeader({ alg: 'ES256', typ: 'txntoken+jwt', kid: 'k1', ...header }).sign(signer);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Signs with WebCrypto directly: jose refuses to sign headers it would refuse to verify. */
async function signRaw(header: Record<string, unknown>, claims: Record<string, unknown> = { exp: NOW_S + 60 }): Promise<string> {
  const input = `${b64(header)}.${b64(claims)}`;
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, Buffer.from(input));
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}

function profile(overrides: Partial<JwsProfile<string[]>> = {}): JwsProfile<string[]> {
  return {
    noun: 'The Txn-Token',
    form: 'segments',
    claimsFirst: true,
    typ: explicitTyp({ accepted: ['txntoken+jwt'], wrong: 'ERR_TXN_TOKEN_TYPE' }),
    algorithms: ['ES256'],
    keys: createLocalJWKSet({ keys: [{ ...jwk, kid: 'k1' }] }),
    failures: {
      malformed: 'ERR_TXN_TOKEN_MALFORMED',
      algorithm: 'ERR_TXN_TOKEN_ALGORITHM',
      keyUnknown: 'ERR_TXN_TOKEN_KEY_UNKNOWN',
      signature: 'ERR_TXN_TOKEN_SIGNATURE',
      unverifiable: { code: 'ERR_TXN_TOKEN_MALFORMED', detail: 'unverifiable' },
    },
    time: { skew: 0, now, invalid: (name) => notNumericDate('ERR_TXN_TOKEN_CLAIM_INVALID', name), exp: { missing: 'ERR_TXN_TOKEN_CLAIM_MISSING', expired: 'ERR_TXN_TOKEN_EXPIRED' } },
    ...overrides,
  };
}

describe('order of the steps', () => {
  test('typ, route, algorithm, locateKey, signature, afterSignature, time', async () => {
    const calls: string[] = [];
    const p = profile({
      typ: (jws) => void calls.push(`typ ${String(jws.header.typ)}`),
      route: () => (calls.push('route'), {}),
      locateKey: () => (calls.push('locateKey'), {}),
      afterSignature: (claims) => void calls.push(`afterSignature ${String(claims.sub)}`),
    });
    const verified = await verifyCompactJws(await sign({ sub: 'alice' }), p, calls);
    expect(calls).toEqual(['typ txntoken+jwt', 'route', 'locateKey', 'afterSignature alice']);
    expect(verified).toMatchObject({ header: { kid: 'k1' }, claims: { sub: 'alice' }, exp: NOW_S + 60, nbf: undefined, iat: undefined });
  });

  test('typ before the algorithm, the algorithm before any key is looked at', async () => {
    const noKeys = () => Promise.reject(new Error('must not be asked'));
    await expectCode(verifyCompactJws(await sign({}, { typ: 'at+jwt', alg: 'ES256' }), profile({ keys: noKeys }), []), 'ERR_TXN_TOKEN_TYPE');
    await expectCode(verifyCompactJws(await sign(), profile({ algorithms: ['RS256'], keys: noKeys }), []), 'ERR_TXN_TOKEN_ALGORITHM');
  });

  test("the route's algorithms and keys replace the profile's", async () => {
    const p = profile({ algorithms: [], keys: undefined, route: () => ({ algorithms: ['ES256'], keys: createLocalJWKSet({ keys: [{ ...jwk, kid: 'k1' }] }) }) });
    await expect(verifyCompactJws(await sign(), p, [])).resolves.toBeDefined();
  });

  test('claims come from the verified bytes when the profile does not read them first', async () => {
    const p = profile({ claimsFirst: false, route: (jws) => ({ algorithms: [String(jws.unverifiedClaims().sub) === 'bob' ? 'ES256' : 'none'] }) });
    expect((await verifyCompactJws(await sign({ sub: 'bob' }), p, [])).claims.sub).toBe('bob');
  });
});

describe('form and segments (RFC 7515 §7.1)', () => {
  test('segments: an empty signature is refused for its algorithm, not its shape', async () => {
    const [h, c] = [b64({ alg: 'none', typ: 'txntoken+jwt' }), b64({ exp: NOW_S + 60 })];
    await expectCode(verifyCompactJws(`${h}.${c}.`, profile(), []), 'ERR_TXN_TOKEN_ALGORITHM');
    await expectCode(verifyCompactJws(`${h}.${c}.`, profile({ form: 'signed' }), []), 'ERR_TXN_TOKEN_MALFORMED');
  });

  test('parts: five parts are a JWE where the profile says so', async () => {
    await expectCode(verifyCompactJws('a.b.c.d.e', profile({ form: 'parts', failures: { ...profile().failures, encrypted: 'ERR_TOKEN_ENCRYPTED' } }), []), 'ERR_TOKEN_ENCRYPTED');
    await expectCode(verifyCompactJws('a.b.c.d.e', profile({ form: 'parts' }), []), 'ERR_TXN_TOKEN_MALFORMED');
  });

  test('a segment that is not JSON is named with the profile noun, never its content', async () => {
    const [, c, s] = (await sign()).split('.');
    const err = await expectCode(verifyCompactJws(`bm90LWpzb24.${c}.${s}`, profile(), []), 'ERR_TXN_TOKEN_MALFORMED');
    expect(err.detail).toBe('The Txn-Token header is not base64url-encoded JSON.');
  });
});

describe('typ (RFC 8725 §3.11, RFC 7515 §4.1.9)', () => {
  test('compared as a media type; missing and wrong can differ; optional lets none through', async () => {
    const rule = explicitTyp({ accepted: ['txntoken+jwt'], missing: { code: 'ERR_TXN_TOKEN_TYPE', detail: 'none' }, wrong: { code: 'ERR_TXN_TOKEN_TYPE', detail: 'wrong' } });
    await expect(verifyCompactJws(await sign({}, { typ: 'application/TxnToken+JWT' }), profile({ typ: rule }), [])).resolves.toBeDefined();
    expect((await expectCode(verifyCompactJws(await sign({}, { typ: undefined }), profile({ typ: rule }), []), 'ERR_TXN_TOKEN_TYPE')).detail).toBe('none');
    expect((await expectCode(verifyCompactJws(await sign({}, { typ: 'JWT' }), profile({ typ: rule }), []), 'ERR_TXN_TOKEN_TYPE')).detail).toBe('wrong');
    const optional = explicitTyp({ accepted: ['JWT'], optional: true, wrong: 'ERR_TXN_TOKEN_TYPE' });
    await expect(verifyCompactJws(await sign({}, { typ: undefined }), profile({ typ: optional }), [])).resolves.toBeDefined();
  });
});

describe('key resolution and signature', () => {
  const rejecting = (err: unknown) => () => Promise.reject(err);

  test("a resolver's 5xx passes unchanged (an outage is not an invalid token)", async () => {
    await expectCode(verifyCompactJws(await sign(), profile({ keys: rejecting(new AgentwardError('ERR_KEYS_UNAVAILABLE')) }), []), 'ERR_KEYS_UNAVAILABLE');
  });

  test("a resolver's own key-unknown error passes with its detail; any other failure is the profile's", async () => {
    const own = new AgentwardError('ERR_TXN_TOKEN_KEY_UNKNOWN', 'the token must name its key');
    expect((await expectCode(verifyCompactJws(await sign(), profile({ keys: rejecting(own) }), []), 'ERR_TXN_TOKEN_KEY_UNKNOWN')).detail).toBe('the token must name its key');
    await expectCode(verifyCompactJws(await sign(), profile({ keys: rejecting(new AgentwardError('ERR_TOKEN_KEY_UNKNOWN')) }), []), 'ERR_TXN_TOKEN_KEY_UNKNOWN');
    await expectCode(verifyCompactJws(await sign({}, { kid: 'k2' }), profile(), []), 'ERR_TXN_TOKEN_KEY_UNKNOWN');
    await expectCode(verifyCompactJws(await sign(), profile({ keys: rejecting(new TypeError('bad key')) }), []), 'ERR_TXN_TOKEN_KEY_UNKNOWN');
    const unusable = profile({ keys: rejecting(new TypeError('bad key')), failures: { ...profile().failures, keyUnusable: 'ERR_TXN_TOKEN_MALFORMED' } });
    await expectCode(verifyCompactJws(await sign(), unusable, []), 'ERR_TXN_TOKEN_MALFORMED');
  });

  test('a signature by another key', async () => {
    await expectCode(verifyCompactJws(await sign({}, {}, other), profile(), []), 'ERR_TXN_TOKEN_SIGNATURE');
  });

  test('several keys match a token without kid: each is tried only where the profile says so', async () => {
    const both = createLocalJWKSet({ keys: [otherJwk, jwk] });
    const token = await sign({}, { kid: undefined });
    await expectCode(verifyCompactJws(token, profile({ keys: both }), []), 'ERR_TXN_TOKEN_KEY_UNKNOWN');
    await expect(verifyCompactJws(token, profile({ keys: both, everyMatchingKey: true }), [])).resolves.toBeDefined();
    const failures = { ...profile().failures, signatureEveryKey: { code: 'ERR_TXN_TOKEN_SIGNATURE', detail: 'every key' } } as const;
    const strangers = profile({ keys: createLocalJWKSet({ keys: [jwk, { ...jwk }] }), everyMatchingKey: true, failures });
    expect((await expectCode(verifyCompactJws(await sign({}, { kid: undefined }, other), strangers, []), 'ERR_TXN_TOKEN_SIGNATURE')).detail).toBe('every key');
  });

  test('an unknown crit extension is unverifiable (RFC 7515 §4.1.11)', async () => {
    const header = { alg: 'ES256', typ: 'txntoken+jwt', kid: 'k1' };
    await expect(verifyCompactJws(await signRaw(header), profile(), [])).resolves.toBeDefined();
    const err = await expectCode(verifyCompactJws(await signRaw({ ...header, crit: ['urn:example:ext'], 'urn:example:ext': true }), profile(), []), 'ERR_TXN_TOKEN_MALFORMED');
    expect(err.detail).toBe('unverifiable');
  });
});

describe('time (RFC 7519 §4.1.4-6)', () => {
  const rule = (over: Partial<TimeRule> = {}): TimeRule => ({ skew: 30, now, invalid: (name) => notNumericDate('ERR_TOKEN_CLAIM_INVALID', name), ...over });

  test('exp: expired after exp + skew, or on it with onOrAfter', () => {
    const expired = { expired: 'ERR_TOKEN_EXPIRED' } as const;
    expect(checkTimeClaims({ exp: NOW_S - 30 }, rule({ exp: expired })).exp).toBe(NOW_S - 30);
    expect(() => checkTimeClaims({ exp: NOW_S - 31 }, rule({ exp: expired }))).toThrow(AgentwardError);
    expect(() => checkTimeClaims({ exp: NOW_S - 30 }, rule({ exp: { ...expired, onOrAfter: true } }))).toThrow(AgentwardError);
    expect(checkTimeClaims({}, rule({ exp: expired })).exp).toBeUndefined();
    expect(() => checkTimeClaims({}, rule({ exp: { ...expired, missing: 'ERR_TOKEN_CLAIM_MISSING' } }))).toThrow('The access token lacks a required claim.');
  });

  test('nbf and iat ahead of now + skew; a value that is not a NumericDate names the claim', () => {
    const r = rule({ nbf: { future: 'ERR_TOKEN_NOT_YET_VALID' }, iat: { future: 'ERR_TOKEN_ISSUED_IN_FUTURE' } });
    expect(checkTimeClaims({ nbf: NOW_S + 30, iat: NOW_S + 30 }, r)).toEqual({ exp: undefined, nbf: NOW_S + 30, iat: NOW_S + 30 });
    expect(() => checkTimeClaims({ nbf: NOW_S + 31 }, r)).toThrow('The access token is not valid yet.');
    expect(() => checkTimeClaims({ iat: NOW_S + 31 }, r)).toThrow('The access token was issued in the future.');
    expect(() => checkTimeClaims({ iat: '1' }, r)).toThrow('The iat claim must be a NumericDate (RFC 7519 section 2).');
    expect(checkTimeClaims({ nbf: NOW_S + 999 }, rule({ nbf: {} })).nbf).toBe(NOW_S + 999);
  });
});
