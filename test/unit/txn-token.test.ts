/**
 * Transaction Tokens (draft-ietf-oauth-transaction-tokens-11; negative cases in docs/negative-cases.md,
 * TXN-N01..N09) against real ES256/RS256 signatures and a real jose key set. Time is frozen
 * through the `now` option; every failure asserts its own code and that the token is not echoed.
 * TXN-N10..N14 are policy and binding checks, outside this verifier.
 */
import { createHash, type webcrypto } from 'node:crypto';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, type JWK } from 'jose';
import { beforeAll, describe, expect, test } from 'vitest';
import { AccessTokenVerifier } from '../../src/credentials/access-token.ts';
import { normalizeTyp } from '../../src/jose/segments.ts';
import { TxnTokenVerifier, txnTokenHash, type TxnKeyResolver, type TxnTokenVerifierOptions } from '../../src/credentials/txn-token.ts';
import { AgentwardError } from '../../src/errors.ts';
import type { IssuerKeys } from '../../src/keys/issuer-keys.ts';
import { expectCode } from '../helpers/expect-code.ts';

const TRUST_DOMAIN = 'trust-domain.example';
const NOW_S = Date.UTC(2026, 0, 15, 12, 0, 0) / 1000;
const SKEW_S = 30;
const MAX_LIFETIME_S = 600;

// IssuerKeys.getKey is a valid resolver (checked by the compiler).
const issuerKeysFit: TxnKeyResolver = null as unknown as IssuerKeys['getKey'];
void issuerKeysFit;

/**
 * draft-ietf-oauth-transaction-tokens-11 §9.2.4 example body, times shifted to the frozen clock
 * (the draft's iat 1686536226, exp 1686536586: a 360-second lifetime, kept).
 */
function exampleBody(): Record<string, unknown> {
  return {
    iat: NOW_S,
    aud: 'trust-domain.example',
    exp: NOW_S + 360,
    txn: '97053963-771d-49cc-a4e3-20aad399c312',
    sub: 'd084sdrt234fsaw34tr23t',
    req_wl: 'apigateway.trust-domain.example',
    rctx: { req_ip: '69.151.72.123', authn: 'urn:ietf:rfc:6749' },
    scope: 'trade.stocks',
    tctx: { action: 'BUY', ticker: 'MSFT', quantity: '100', customer_type: { geo: 'US', level: 'VIP' } },
  };
}

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: webcrypto.CryptoKey;
  publicJwk: JWK;
}

async function newKey(alg: 'ES256' | 'RS256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

let es256: SigningKey;
let rs256: SigningKey;
/** Not in the trust domain's key set. */
let foreign: SigningKey;
let resolver: TxnKeyResolver;

beforeAll(async () => {
  es256 = await newKey('ES256', 'tts-es');
  rs256 = await newKey('RS256', 'tts-rs');
  foreign = await newKey('ES256', 'attacker');
  resolver = createLocalJWKSet({ keys: [es256.publicJwk, rs256.publicJwk] });
});

function verifier(options: Partial<TxnTokenVerifierOptions> = {}): TxnTokenVerifier {
  return new TxnTokenVerifier({
    trustDomain: TRUST_DOMAIN,
    keys: resolver,
    algorithms: ['ES256', 'RS256'],
    clockSkewSeconds: SKEW_S,
    maxLifetimeSeconds: MAX_LIFETIME_S,
    now: () => NOW_S * 1000,
    ...options,
  });
}

/** The example body with `extra` on top (undefined removes a claim), signed with a real key. */
async function txnToken(extra: Record<string, unknown> = {}, options: { key?: SigningKey; header?: Record<string, unknown> } = {}): Promise<string> {
  const key = options.key ?? es256;
  const body: Record<string, unknown> = { ...exampleBody(), ...extra };
  for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
  const header: Record<string, unknown> = { alg: key.alg, kid: key.kid, typ: 'txntoken+jwt', ...options.header };
  for (const [k, v] of Object.entries(header)) if (v === undefined) delete header[k];
  return new SignJWT(body).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');


describe('positive', () => {
  test('the §9.2.4 example, re-signed with ES256', async () => {
    const token = await txnToken();
    const result = await verifier().verify([token]);
    expect(result).toEqual({
      txn: '97053963-771d-49cc-a4e3-20aad399c312',
      sub: 'd084sdrt234fsaw34tr23t',
      scopes: ['trade.stocks'],
      tctx: { action: 'BUY', ticker: 'MSFT', quantity: '100', customer_type: { geo: 'US', level: 'VIP' } },
      rctx: { req_ip: '69.151.72.123', authn: 'urn:ietf:rfc:6749' },
      reqWl: 'apigateway.trust-domain.example',
      iss: null,
      issuedAt: NOW_S,
      expiresAt: NOW_S + 360,
      claims: {},
      hashPrefix: createHash('sha256').update(token).digest('base64url').slice(0, 16),
    });
    expect(Object.isFrozen(result)).toBe(true);
    expect(Object.isFrozen(result.tctx)).toBe(true);
    expect(Object.isFrozen((result.tctx as { customer_type: object }).customer_type)).toBe(true);
    expect(JSON.stringify(result)).not.toContain(token.split('.')[2]);
  });

  test('RS256, iss, extra claims, several scopes, aud as an array containing the trust domain', async () => {
    const token = await txnToken(
      { iss: 'https://tts.trust-domain.example', aud: ['other.example', TRUST_DOMAIN], scope: 'trade.stocks  trade.read', purp: 'x', tctx: undefined, rctx: undefined },
      { key: rs256 },
    );
    const result = await verifier().verify([token]);
    expect(result.iss).toBe('https://tts.trust-domain.example');
    expect(result.scopes).toEqual(['trade.stocks', 'trade.read']);
    expect(result.tctx).toBeNull();
    expect(result.rctx).toBeNull();
    expect(result.claims).toEqual({ purp: 'x' });
  });

  test.each(['txntoken+jwt', 'TXNTOKEN+JWT', 'application/txntoken+jwt', 'Application/TxnToken+JWT'])('typ %s is accepted (media-type compare)', async (typ) => {
    await expect(verifier().verify([await txnToken({}, { header: { typ } })])).resolves.toMatchObject({ sub: 'd084sdrt234fsaw34tr23t' });
  });

  test('whitespace around the field value is not part of the token', async () => {
    const token = await txnToken();
    const result = await verifier().verify([` ${token}\t`]);
    expect(result.hashPrefix).toBe(txnTokenHash(token).slice(0, 16));
  });

  test('expired, but within the clock skew', async () => {
    await expect(verifier().verify([await txnToken({ iat: NOW_S - 400, exp: NOW_S - SKEW_S + 1 })])).resolves.toBeDefined();
  });

  test('iat slightly ahead, within the clock skew', async () => {
    await expect(verifier().verify([await txnToken({ iat: NOW_S + SKEW_S, exp: NOW_S + 300 })])).resolves.toBeDefined();
  });

  test('lifetime exactly at the bound', async () => {
    await expect(verifier().verify([await txnToken({ iat: NOW_S, exp: NOW_S + MAX_LIFETIME_S })])).resolves.toBeDefined();
  });
});

describe('txnTokenHash', () => {
  test('is base64url(SHA-256) of the exact string (the WPT tth value)', async () => {
    const token = await txnToken();
    expect(txnTokenHash(token)).toBe(createHash('sha256').update(token, 'ascii').digest('base64url'));
    expect(txnTokenHash(token)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('TXN-N01/N02: placement and cardinality (§12.1)', () => {
  test('N01: no Txn-Token header', async () => {
    await expectCode(verifier().verify([]), 'ERR_TXN_TOKEN_MISSING');
  });

  test('N02: two Txn-Token header fields', async () => {
    const token = await txnToken();
    await expectCode(verifier().verify([token, token]), 'ERR_TXN_TOKEN_MULTIPLE', token);
  });

  test.each([', ', ',', ' ,  '])('N02: two tokens in one field, joined by %j', async (sep) => {
    const token = await txnToken();
    const other = await txnToken({ txn: 'other' });
    await expectCode(verifier().verify([`${token}${sep}${other}`]), 'ERR_TXN_TOKEN_MULTIPLE', token);
  });

  test('an empty field value', async () => {
    await expectCode(verifier().verify(['  ']), 'ERR_TXN_TOKEN_MALFORMED');
  });
});

describe('TXN-N03: a Txn-Token sent as Authorization: Bearer', () => {
  test('is not an access token: typ is not at+jwt', async () => {
    const token = await txnToken();
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { typ: string };
    expect(normalizeTyp(header.typ)).toBe('txntoken+jwt');
    expect(normalizeTyp(header.typ)).not.toBe('at+jwt');
    // The access-token verifier refuses it on typ, before issuer, audience or keys.
    const accessTokens = new AccessTokenVerifier({ issuers: [], resourceId: 'https://rs.example', clockSkewSeconds: SKEW_S, maxDelegationDepth: 4, cacheSize: 0, dpopBinding: false, now: () => NOW_S * 1000 });
    const err = await accessTokens.verify(token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentwardError);
    expect((err as AgentwardError).code).toBe('ERR_TOKEN_TYPE');
  });

  test('and the converse: an access token (typ at+jwt) in Txn-Token is refused', async () => {
    const token = await txnToken({}, { header: { typ: 'at+jwt' } });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_TYPE', token);
  });
});

describe('TXN-N04: typ (§9.1)', () => {
  test.each(['JWT', 'jwt', 'txn_token', 'N_A', 'application/jwt', 'txntoken', 'wit+jwt'])('typ %s', async (typ) => {
    const token = await txnToken({}, { header: { typ } });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_TYPE', token);
  });

  test('typ absent', async () => {
    const token = await txnToken({}, { header: { typ: undefined } });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_TYPE', token);
  });

  test('typ not a string', async () => {
    const token = await txnToken({}, { header: { typ: ['txntoken+jwt'] } });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_TYPE', token);
  });
});

describe('TXN-N05: algorithm (RFC 8725 §3.1)', () => {
  test('alg none (unsecured JWS, empty signature)', async () => {
    const token = `${b64({ alg: 'none', typ: 'txntoken+jwt' })}.${b64(exampleBody())}.`;
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_ALGORITHM', token);
  });

  test('HS256 with a shared secret', async () => {
    const secret = new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!!');
    const token = await new SignJWT(exampleBody()).setProtectedHeader({ alg: 'HS256', typ: 'txntoken+jwt', kid: 'tts-es' }).sign(secret);
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_ALGORITHM', token);
  });

  test('an asymmetric algorithm outside the allow-list', async () => {
    const token = await txnToken({}, { key: rs256 });
    await expectCode(verifier({ algorithms: ['ES256'] }).verify([token]), 'ERR_TXN_TOKEN_ALGORITHM', token);
  });

  test('alg missing', async () => {
    const token = `${b64({ typ: 'txntoken+jwt' })}.${b64(exampleBody())}.c2ln`;
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_ALGORITHM', token);
  });

  test.each([['HS256'], ['none'], ['ES256', 'HS512'], []])('the verifier refuses the allow-list %j', (...algorithms) => {
    expect(() => verifier({ algorithms })).toThrow(TypeError);
  });
});

describe('TXN-N06: signature by a key of the TTS (§12.2 step 1)', () => {
  test('signed by a key outside the trust domain (unknown kid)', async () => {
    const token = await txnToken({}, { key: foreign });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_KEY_UNKNOWN', token);
  });

  test("signed by a foreign key that claims the TTS key's kid", async () => {
    const token = await txnToken({}, { key: { ...foreign, kid: 'tts-es' } });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_SIGNATURE', token);
  });

  test('a header jwk is never used for verification (RFC 8725 §3.10)', async () => {
    const token = await txnToken({}, { key: { ...foreign, kid: 'tts-es' }, header: { jwk: foreign.publicJwk } });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_SIGNATURE', token);
  });

  test('payload altered after signing', async () => {
    const [h, , s] = (await txnToken()).split('.');
    const token = `${h}.${b64({ ...exampleBody(), scope: 'trade.stocks admin' })}.${s}`;
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_SIGNATURE', token);
  });

  test('empty signature with an allowed algorithm', async () => {
    const [h, p] = (await txnToken()).split('.');
    const token = `${h}.${p}.`;
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_SIGNATURE', token);
  });

  test('a key-set outage stays the resolver error (fail closed, 503)', async () => {
    const unavailable: TxnKeyResolver = () => Promise.reject(new AgentwardError('ERR_KEYS_UNAVAILABLE'));
    const err = await verifier({ keys: unavailable }).verify([await txnToken()]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentwardError);
    expect((err as AgentwardError).code).toBe('ERR_KEYS_UNAVAILABLE');
  });

  test('unknown crit extension (RFC 7515 §4.1.11)', async () => {
    // jose refuses to sign with an unknown crit, so sign with WebCrypto directly.
    const input = `${b64({ alg: 'ES256', kid: 'tts-es', typ: 'txntoken+jwt', crit: ['urn:example:ext'], 'urn:example:ext': true })}.${b64(exampleBody())}`;
    const signature = Buffer.from(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, es256.privateKey, Buffer.from(input)));
    const token = `${input}.${signature.toString('base64url')}`;
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_MALFORMED', token);
  });
});

describe('TXN-N07: aud names this trust domain (§12.2 step 2)', () => {
  test.each([['other-domain.example'], [['other-domain.example', 'a.example']], ['Trust-Domain.example'], [`https://${TRUST_DOMAIN}`]])('aud %j', async (aud) => {
    const token = await txnToken({ aud });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_AUDIENCE', token);
  });

  test.each([[42], [[TRUST_DOMAIN, 7]], [{ td: TRUST_DOMAIN }]])('aud of the wrong type %j', async (aud) => {
    const token = await txnToken({ aud });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_CLAIM_INVALID', token);
  });
});

describe('TXN-N08: expiry (§12.2 step 3)', () => {
  test('expired beyond the clock skew', async () => {
    const token = await txnToken({ iat: NOW_S - 400, exp: NOW_S - SKEW_S - 1 });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_EXPIRED', token);
  });

  test('exp not a NumericDate', async () => {
    const token = await txnToken({ exp: String(NOW_S + 60) });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_CLAIM_INVALID', token);
  });

  test('nbf in the future', async () => {
    const token = await txnToken({ nbf: NOW_S + SKEW_S + 10 });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_NOT_YET_VALID', token);
  });
});

describe('TXN-N09: required claims (§9.2)', () => {
  test.each(['iat', 'aud', 'exp', 'txn', 'sub', 'scope', 'req_wl'])('%s missing', async (name) => {
    const token = await txnToken({ [name]: undefined });
    const err = await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_CLAIM_MISSING', token);
    expect(err.message).toContain(name);
  });

  test('a required claim set to null counts as missing', async () => {
    const token = await txnToken({ txn: null });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_CLAIM_MISSING', token);
  });
});

describe('claim types', () => {
  test.each([
    ['txn', 42],
    ['sub', { id: 'x' }],
    ['scope', ['trade.stocks']],
    ['scope', '  '],
    ['req_wl', ['apigateway.trust-domain.example']],
    ['iss', 1],
    ['tctx', 'BUY MSFT'],
    ['tctx', [{ action: 'BUY' }]],
    ['rctx', 'ip'],
    ['iat', '1686536226'],
  ])('%s = %j', async (name, value) => {
    const token = await txnToken({ [name]: value });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_CLAIM_INVALID', token);
  });
});

describe('short lifetime (§6, §13.1)', () => {
  test('iat in the future beyond the skew', async () => {
    const token = await txnToken({ iat: NOW_S + SKEW_S + 1, exp: NOW_S + 300 });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_ISSUED_IN_FUTURE', token);
  });

  test('exp - iat above maxLifetimeSeconds', async () => {
    const token = await txnToken({ iat: NOW_S - 10, exp: NOW_S + MAX_LIFETIME_S });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_LIFETIME', token);
  });

  test('a day-long token', async () => {
    const token = await txnToken({ iat: NOW_S, exp: NOW_S + 86_400 });
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_LIFETIME', token);
  });
});

describe('malformed', () => {
  test.each([
    ['one part', 'abc'],
    ['two parts', 'abc.def'],
    ['five parts (JWE)', 'a.b.c.d.e'],
    ['a space inside', 'ab c.def.ghi'],
    ['standard base64 characters', 'ab+c.de/f.ghi'],
  ])('%s', async (_name, token) => {
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_MALFORMED');
  });

  test('header not JSON', async () => {
    const token = `${Buffer.from('not json').toString('base64url')}.${b64(exampleBody())}.c2ln`;
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_MALFORMED', token);
  });

  test('payload a JSON array', async () => {
    const token = `${b64({ alg: 'ES256', typ: 'txntoken+jwt' })}.${b64([1, 2])}.c2ln`;
    await expectCode(verifier().verify([token]), 'ERR_TXN_TOKEN_MALFORMED', token);
  });
});
