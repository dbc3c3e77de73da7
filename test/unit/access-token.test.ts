/**
 * RFC 9068 JWT access tokens (RFC 9068 §4, negative cases AT-N02..N24 of docs/negative-cases.md) against real
 * signatures, a real IssuerKeys and a real JWKS endpoint on loopback. Time is frozen through the
 * `now` option; every failure asserts its own code.
 */
import { createHash, createHmac } from 'node:crypto';
import { CompactEncrypt, importJWK } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { AccessTokenVerifier } from '../../src/credentials/access-token.ts';
import { subjectInput } from '../../src/proxy/input.ts';
import { IssuerKeys } from '../../src/keys/issuer-keys.ts';
import type { IssuerConfig } from '../../src/config/schema.ts';
import { RFC9068_REQUIRED_CLAIMS } from '../../src/identity/issuer-profiles.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startIssuer, newKey, type TestIssuer, type TestKey } from '../helpers/issuer.ts';
import { expectCode } from '../helpers/expect-code.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const NOW_S = Date.UTC(2026, 0, 15, 12, 0, 0) / 1000;
const SKEW_S = 30;

// ---------------------------------------------------------------- helpers

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Signs header.payload with WebCrypto directly, so every header (crit, no typ, ...) can be sent. */
async function sign(header: Record<string, unknown>, payload: Record<string, unknown>, key: TestKey): Promise<string> {
  const input = `${b64(header)}.${b64(payload)}`;
  // ES256 keys sign with ECDSA/SHA-256 (IEEE P1363 output, as JWS wants); RS256 keys with RSASSA-PKCS1-v1_5.
  const algorithm = key.privateKey.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: key.privateKey.algorithm.name };
  const signature = Buffer.from(await crypto.subtle.sign(algorithm, key.privateKey, Buffer.from(input)));
  return `${input}.${signature.toString('base64url')}`;
}

/** Default RFC 9068 claims at the frozen time, minus `omit`, with `extra` on top (undefined removes). */
function claims(iss: string, extra: Record<string, unknown> = {}, omit: string[] = []): Record<string, unknown> {
  const c: Record<string, unknown> = {
    iss,
    aud: RESOURCE,
    sub: 'user-42',
    client_id: 'research-bot',
    iat: NOW_S,
    exp: NOW_S + 300,
    jti: 'jti-1',
    scope: 'tools.read tools.write',
    ...extra,
  };
  for (const name of omit) delete c[name];
  for (const [k, v] of Object.entries(c)) if (v === undefined) delete c[k];
  return c;
}


interface Harness {
  issuer: TestIssuer;
  keys: IssuerKeys;
  verifier: AccessTokenVerifier;
  clock: { s: number };
  /** A token from this harness's issuer, signed with its newest key. */
  token(extra?: Record<string, unknown>, options?: { header?: Record<string, unknown>; omit?: string[]; key?: TestKey }): Promise<string>;
  close(): Promise<void>;
}

async function harness(options: { algorithms?: IssuerConfig['algorithms']; alg?: string; cacheSize?: number; issuer?: TestIssuer } = {}): Promise<Harness> {
  const issuer = options.issuer ?? (await startIssuer({ audience: RESOURCE, alg: options.alg ?? 'ES256' }));
  const clock = { s: NOW_S };
  const now = () => clock.s * 1000;
  const config: IssuerConfig = {
    issuer: issuer.issuer,
    jwksUri: issuer.jwksUri,
    discovery: 'auto',
    algorithms: options.algorithms ?? ['RS256', 'PS256', 'ES256', 'EdDSA'],
    requiredClaims: [...RFC9068_REQUIRED_CLAIMS],
  };
  // cooldown 0: with the clock frozen, every unknown kid may refetch once.
  const keys = new IssuerKeys(config, { maxAgeMs: 3_600_000, cooldownMs: 0, timeoutMs: 2000, logger: createLogger('silent'), now });
  await keys.start();
  const verifier = new AccessTokenVerifier({ issuers: [{ config, keys }], resourceId: RESOURCE, clockSkewSeconds: SKEW_S, maxDelegationDepth: 4, cacheSize: options.cacheSize ?? 100, dpopBinding: false, now });
  return {
    issuer,
    keys,
    verifier,
    clock,
    token(extra = {}, o = {}) {
      const key = o.key ?? issuer.keys.at(-1)!;
      return sign({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...o.header }, claims(issuer.issuer, extra, o.omit), key);
    },
    async close() {
      keys.close();
      if (!options.issuer) await issuer.close();
    },
  };
}

// ---------------------------------------------------------------- suites

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(() => h.close());
beforeEach(() => {
  h.clock.s = NOW_S;
});

describe('a valid token', () => {
  test('verifies with its claims, scopes, audiences, kid and a hash prefix', async () => {
    const token = await h.token({ act: { sub: 'planner', act: { sub: 'router' } } });
    const v = await h.verifier.verify(token);
    expect(v.issuer).toBe(h.issuer.issuer);
    expect(v.claims).toMatchObject({ sub: 'user-42', client_id: 'research-bot', jti: 'jti-1' });
    expect(v.scopes).toEqual(['tools.read', 'tools.write']);
    expect(v.audiences).toEqual([RESOURCE]);
    expect(v.expiresAt).toBe(NOW_S + 300);
    expect(v.kid).toBe(h.issuer.keys.at(-1)!.kid);
    expect(v.delegation.chain.map((a) => a.sub)).toEqual(['planner', 'router']);
    expect(v.hashPrefix).toBe(createHash('sha256').update(token).digest('base64url').slice(0, 16));
    expect(Object.isFrozen(v)).toBe(true);
    expect(Object.isFrozen(v.claims)).toBe(true);
  });

  test('scope: extra spaces are ignored; no scope is an empty list', async () => {
    expect((await h.verifier.verify(await h.token({ scope: ' tools.read   tools.write ', jti: 'j-sp' }))).scopes).toEqual(['tools.read', 'tools.write']);
    expect((await h.verifier.verify(await h.token({ scope: undefined, jti: 'j-nosc' }))).scopes).toEqual([]);
  });

  test('a valid authorization_details array is accepted', async () => {
    const details = [{ type: 'tool_call', actions: ['create_issue'] }];
    expect((await h.verifier.verify(await h.token({ authorization_details: details }))).claims.authorization_details).toEqual(details);
  });

  test('authorization_details reach input.subject.authorizationDetails unchanged (RFC 9396 §9.1)', async () => {
    // Type-specific members, case and Unicode are kept as issued: RFC 9396 §12 matching is exact.
    const details = [
      {
        type: 'payment_initiation',
        actions: ['initiate', 'status'],
        locations: ['https://pay.example.com/payments'],
        instructedAmount: { currency: 'EUR', amount: '123.50' },
        creditorAccount: { iban: 'DE02100100109307118603' },
      },
      { type: 'Tool_Call', actions: ['create_issue'], identifier: 'acme/website', maxResults: 50 },
      { type: 'caf\u00e9_order', privileges: [] },
      { type: '' },
    ];
    const verified = await h.verifier.verify(await h.token({ authorization_details: details, jti: 'j-rar' }));
    const subject = subjectInput(verified);
    expect(subject.authorizationDetails).toEqual(details);
    expect(JSON.stringify(subject.authorizationDetails)).toBe(JSON.stringify(details));
    expect(subject.claims).not.toHaveProperty('authorization_details');
  });

  test('no authorization_details claim → input.subject.authorizationDetails is []', async () => {
    expect(subjectInput(await h.verifier.verify(await h.token({ jti: 'j-norar' }))).authorizationDetails).toEqual([]);
    expect(subjectInput(await h.verifier.verify(await h.token({ authorization_details: [], jti: 'j-emptyrar' }))).authorizationDetails).toEqual([]);
  });
});

describe('typ (AT-N02..N04)', () => {
  test('AT-N02: typ missing → ERR_TOKEN_TYPE', async () => {
    const key = h.issuer.keys.at(-1)!;
    const token = await sign({ alg: key.alg, kid: key.kid }, claims(h.issuer.issuer), key);
    await expectCode(h.verifier.verify(token), 'ERR_TOKEN_TYPE');
  });

  test.each(['JWT', 'jwt', 'dpop+jwt', 'wit+jwt', 'txntoken+jwt', 'application/dpop+jwt', 'at+jwt; charset=utf-8', 'application/jwt', 'at-jwt'])('AT-N03/N04: typ %s → ERR_TOKEN_TYPE', async (typ) => {
    await expectCode(h.verifier.verify(await h.token({}, { header: { typ } })), 'ERR_TOKEN_TYPE');
  });

  test.each(['at+jwt', 'application/at+jwt', 'at+JWT', 'Application/AT+JWT'])('positive control: typ %s is accepted', async (typ) => {
    await expect(h.verifier.verify(await h.token({ jti: `typ-${typ}` }, { header: { typ } }))).resolves.toMatchObject({ issuer: h.issuer.issuer });
  });

  test('typ that is not a string → ERR_TOKEN_TYPE', async () => {
    await expectCode(h.verifier.verify(await h.token({}, { header: { typ: ['at+jwt'] } })), 'ERR_TOKEN_TYPE');
  });
});

describe('algorithm (AT-N05..N07)', () => {
  test('AT-N05: alg none → ERR_TOKEN_ALGORITHM', async () => {
    const token = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims(h.issuer.issuer))}.`;
    await expectCode(h.verifier.verify(token), 'ERR_TOKEN_ALGORITHM');
  });

  test('AT-N06: HS256 keyed with the public key bytes → ERR_TOKEN_ALGORITHM', async () => {
    const key = h.issuer.keys.at(-1)!;
    const input = `${b64({ alg: 'HS256', kid: key.kid, typ: 'at+jwt' })}.${b64(claims(h.issuer.issuer))}`;
    for (const secret of [JSON.stringify(key.publicJwk), Buffer.from(key.publicJwk.x!, 'base64url')]) {
      const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      await expectCode(h.verifier.verify(token), 'ERR_TOKEN_ALGORITHM');
    }
  });

  test('AT-N07: RS256 from an issuer allowed ES256 only → ERR_TOKEN_ALGORITHM, even though the RSA key is published', async () => {
    const own = await harness({ algorithms: ['ES256'] });
    try {
      const rsa = await own.issuer.rotate({ alg: 'RS256', keep: true });
      await expectCode(own.verifier.verify(await own.token({}, { key: rsa })), 'ERR_TOKEN_ALGORITHM');
      // The ES256 key of the same issuer still works.
      await expect(own.verifier.verify(await own.token({}, { key: own.issuer.keys[0]! }))).resolves.toBeDefined();
    } finally {
      await own.close();
    }
  });

  test('alg that does not match the key (ES384 header, ES256 key) is refused', async () => {
    const own = await harness({ algorithms: ['ES256', 'ES384'] });
    try {
      await expectCode(own.verifier.verify(await own.token({}, { header: { alg: 'ES384' } })), 'ERR_TOKEN_KEY_UNKNOWN');
    } finally {
      await own.close();
    }
  });

  test('an unknown crit header parameter → ERR_TOKEN_MALFORMED (RFC 7515 §4.1.11)', async () => {
    await expectCode(h.verifier.verify(await h.token({}, { header: { crit: ['urn:example:must-understand'], 'urn:example:must-understand': true } })), 'ERR_TOKEN_MALFORMED');
  });
});

describe('keys (AT-N08, AT-N09)', () => {
  test('AT-N08: unknown kid → ERR_TOKEN_KEY_UNKNOWN after exactly one JWKS refresh', async () => {
    const stranger = await newKey('ES256', 'kid-nobody-published');
    const before = h.issuer.jwksHits();
    await expectCode(h.verifier.verify(await h.token({}, { key: stranger })), 'ERR_TOKEN_KEY_UNKNOWN');
    expect(h.issuer.jwksHits()).toBe(before + 1);
  });

  test('AT-N09: a key from another issuer’s JWKS → ERR_TOKEN_KEY_UNKNOWN', async () => {
    const other = await startIssuer({ audience: RESOURCE });
    try {
      await expectCode(h.verifier.verify(await h.token({}, { key: other.keys[0]! })), 'ERR_TOKEN_KEY_UNKNOWN');
    } finally {
      await other.close();
    }
  });

  test('AT-N09: another issuer’s key that reuses our kid → ERR_TOKEN_SIGNATURE', async () => {
    const impostor = await newKey('ES256', h.issuer.keys.at(-1)!.kid);
    await expectCode(h.verifier.verify(await h.token({}, { key: impostor })), 'ERR_TOKEN_SIGNATURE');
  });

  test('a token without kid while the set holds two keys of its alg → ERR_TOKEN_KEY_UNKNOWN', async () => {
    const issuer = await startIssuer({ audience: RESOURCE });
    await issuer.rotate({ keep: true });
    const own = await harness({ issuer });
    try {
      const token = await sign({ alg: 'ES256', typ: 'at+jwt' }, claims(issuer.issuer), issuer.keys.at(-1)!);
      const err = await expectCode(own.verifier.verify(token), 'ERR_TOKEN_KEY_UNKNOWN');
      expect(err.detail).toContain('must name its key');
    } finally {
      await own.close();
      await issuer.close();
    }
  });

  test('a tampered payload → ERR_TOKEN_SIGNATURE', async () => {
    const [header, , signature] = (await h.token()).split('.');
    await expectCode(h.verifier.verify(`${header}.${b64(claims(h.issuer.issuer, { sub: 'admin' }))}.${signature}`), 'ERR_TOKEN_SIGNATURE');
  });
});

describe('issuer (AT-N10)', () => {
  test.each([
    ['another issuer', 'https://as.evil.example'],
    ['a trailing slash', 'TRAILING'],
    ['a case variant', 'CASE'],
  ])('iss with %s → ERR_TOKEN_ISSUER', async (_name, iss) => {
    const value = iss === 'TRAILING' ? `${h.issuer.issuer}/` : iss === 'CASE' ? h.issuer.issuer.replace('http://', 'HTTP://') : iss;
    await expectCode(h.verifier.verify(await h.token({ iss: value })), 'ERR_TOKEN_ISSUER');
  });

  test('iss missing or not a string → ERR_TOKEN_ISSUER', async () => {
    await expectCode(h.verifier.verify(await h.token({}, { omit: ['iss'] })), 'ERR_TOKEN_ISSUER');
    await expectCode(h.verifier.verify(await h.token({ iss: [h.issuer.issuer] })), 'ERR_TOKEN_ISSUER');
  });
});

describe('audience (AT-N11..N14)', () => {
  test('AT-N11: aud missing → ERR_TOKEN_AUDIENCE', async () => {
    await expectCode(h.verifier.verify(await h.token({}, { omit: ['aud'] })), 'ERR_TOKEN_AUDIENCE');
  });

  test('AT-N12: aud is another resource → ERR_TOKEN_AUDIENCE', async () => {
    await expectCode(h.verifier.verify(await h.token({ aud: 'https://other-tool.example.com/mcp' })), 'ERR_TOKEN_AUDIENCE');
  });

  test('AT-N13: an array without us → ERR_TOKEN_AUDIENCE; with us → accepted', async () => {
    await expectCode(h.verifier.verify(await h.token({ aud: ['https://a.example', 'https://b.example'] })), 'ERR_TOKEN_AUDIENCE');
    await expectCode(h.verifier.verify(await h.token({ aud: [] })), 'ERR_TOKEN_AUDIENCE');
    const v = await h.verifier.verify(await h.token({ aud: ['https://a.example', RESOURCE] }));
    expect(v.audiences).toEqual(['https://a.example', RESOURCE]);
  });

  test.each([RESOURCE.toUpperCase(), 'https://TOOLS.example.com/mcp', `${RESOURCE}/`, 'https://tools.example.com:443/mcp', 'https://tools.example.com/MCP'])(
    'AT-N14: %s equals us only after normalization → ERR_TOKEN_AUDIENCE',
    async (aud) => {
      await expectCode(h.verifier.verify(await h.token({ aud })), 'ERR_TOKEN_AUDIENCE');
    },
  );

  test('aud that is neither a string nor an array of strings → ERR_TOKEN_CLAIM_INVALID', async () => {
    await expectCode(h.verifier.verify(await h.token({ aud: 42 })), 'ERR_TOKEN_CLAIM_INVALID');
    await expectCode(h.verifier.verify(await h.token({ aud: [RESOURCE, 7] })), 'ERR_TOKEN_CLAIM_INVALID');
  });
});

describe('time (AT-N15..N17)', () => {
  test('AT-N15: exp missing → ERR_TOKEN_CLAIM_MISSING', async () => {
    await expectCode(h.verifier.verify(await h.token({}, { omit: ['exp'] })), 'ERR_TOKEN_CLAIM_MISSING');
  });

  test('AT-N15: exp passed beyond the skew → ERR_TOKEN_EXPIRED; within the skew → accepted', async () => {
    await expectCode(h.verifier.verify(await h.token({ exp: NOW_S - SKEW_S - 1 })), 'ERR_TOKEN_EXPIRED');
    await expect(h.verifier.verify(await h.token({ exp: NOW_S - SKEW_S + 1, iat: NOW_S - 600 }))).resolves.toBeDefined();
  });

  test('exp that is not a NumericDate → ERR_TOKEN_CLAIM_INVALID', async () => {
    await expectCode(h.verifier.verify(await h.token({ exp: String(NOW_S + 300) })), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('AT-N16: nbf in the future beyond the skew → ERR_TOKEN_NOT_YET_VALID; within → accepted', async () => {
    await expectCode(h.verifier.verify(await h.token({ nbf: NOW_S + SKEW_S + 5 })), 'ERR_TOKEN_NOT_YET_VALID');
    await expect(h.verifier.verify(await h.token({ nbf: NOW_S + SKEW_S - 5, jti: 'nbf-ok' }))).resolves.toBeDefined();
  });

  test('AT-N17: iat far in the future → ERR_TOKEN_ISSUED_IN_FUTURE; a small skew is tolerated', async () => {
    await expectCode(h.verifier.verify(await h.token({ iat: NOW_S + 3600, exp: NOW_S + 7200 })), 'ERR_TOKEN_ISSUED_IN_FUTURE');
    await expect(h.verifier.verify(await h.token({ iat: NOW_S + 10, jti: 'iat-ok' }))).resolves.toBeDefined();
  });
});

describe('required claims and claim types (AT-N18)', () => {
  test.each(['sub', 'client_id', 'iat', 'jti'])('AT-N18: %s missing → ERR_TOKEN_CLAIM_MISSING', async (name) => {
    const err = await expectCode(h.verifier.verify(await h.token({}, { omit: [name] })), 'ERR_TOKEN_CLAIM_MISSING');
    expect(err.detail).toContain(name);
  });

  test('a required claim that is null counts as missing', async () => {
    await expectCode(h.verifier.verify(await h.token({ jti: null })), 'ERR_TOKEN_CLAIM_MISSING');
  });

  test.each([
    ['sub', 42],
    ['client_id', ['bot']],
    ['scope', ['tools.read']],
    ['acr', 2],
    ['auth_time', 'yesterday'],
    ['amr', 'pwd'],
    ['amr', ['pwd', 1]],
  ])('%s of the wrong type (%j) → ERR_TOKEN_CLAIM_INVALID', async (name, value) => {
    await expectCode(h.verifier.verify(await h.token({ [name]: value })), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test.each([
    ['an object', { type: 'tool_call' }],
    ['an array with an element without type', [{ actions: ['read'] }]],
    ['an array with a non-string type', [{ type: 7 }]],
    ['an array with null', [null]],
    ['an array of arrays', [['tool_call']]],
  ])('authorization_details as %s → ERR_TOKEN_CLAIM_INVALID (RAR-N01)', async (_name, details) => {
    await expectCode(h.verifier.verify(await h.token({ authorization_details: details })), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test.each([
    ['a string', 'payment_initiation'],
    ['null', null],
    ['an array with a string element', ['payment_initiation']],
    ['an array with a null type', [{ type: null, actions: ['read'] }]],
    ['an array with an array type', [{ type: ['tool_call'] }]],
  ])('authorization_details as %s → ERR_TOKEN_CLAIM_INVALID (RAR-N01)', async (_name, details) => {
    await expectCode(h.verifier.verify(await h.token({ authorization_details: details })), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('RAR-N01: 401 invalid_token; the detail names the element, never its content', async () => {
    const details = [{ type: 'payment_initiation', actions: ['initiate'] }, { creditorAccount: { iban: 'DE02100100109307118603' } }];
    const token = await h.token({ authorization_details: details });
    const err = await expectCode(h.verifier.verify(token), 'ERR_TOKEN_CLAIM_INVALID', token);
    expect(err).toMatchObject({ status: 401, oauthError: 'invalid_token', expose: true });
    expect(err.detail).toBe('Element 1 of the authorization_details claim must be an object with a string type (RFC 9396 section 2).');
    expect(err.detail).not.toContain('DE02');

    const notArray = await expectCode(h.verifier.verify(await h.token({ authorization_details: { type: 'payment_initiation' } })), 'ERR_TOKEN_CLAIM_INVALID');
    expect(notArray.detail).toBe('The authorization_details claim must be an array (RFC 9396 section 2).');
  });
});

describe('delegation (ACT-N02, ACT-N03)', () => {
  test('ACT-N02: act as a string or array → ERR_TOKEN_CLAIM_INVALID', async () => {
    await expectCode(h.verifier.verify(await h.token({ act: 'planner' })), 'ERR_TOKEN_CLAIM_INVALID');
    await expectCode(h.verifier.verify(await h.token({ act: [{ sub: 'planner' }] })), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('ACT-N03: an expired act.exp does not affect the token', async () => {
    const v = await h.verifier.verify(await h.token({ act: { sub: 'planner', exp: NOW_S - 86400, aud: 'https://elsewhere.example' } }));
    expect(v.delegation.chain).toEqual([{ sub: 'planner', iss: null, claims: {} }]);
  });

  test('a chain deeper than maxDelegationDepth → ERR_DELEGATION_TOO_DEEP', async () => {
    const act = { sub: 'a1', act: { sub: 'a2', act: { sub: 'a3', act: { sub: 'a4', act: { sub: 'a5' } } } } };
    await expectCode(h.verifier.verify(await h.token({ act })), 'ERR_DELEGATION_TOO_DEEP');
  });
});

describe('format (AT-N23, AT-N24, malformed)', () => {
  test('AT-N23: a JWE (five parts) → ERR_TOKEN_ENCRYPTED', async () => {
    const own = await harness();
    try {
      const ecdh = await importJWK({ ...own.issuer.keys[0]!.publicJwk, alg: 'ECDH-ES', use: 'enc' }, 'ECDH-ES');
      const jwe = await new CompactEncrypt(Buffer.from(JSON.stringify(claims(own.issuer.issuer)))).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', typ: 'at+jwt' }).encrypt(ecdh);
      expect(jwe.split('.')).toHaveLength(5);
      await expectCode(own.verifier.verify(jwe), 'ERR_TOKEN_ENCRYPTED');
    } finally {
      await own.close();
    }
  });

  test.each([
    ['cnf.jkt (DPoP)', { jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' }],
    ['cnf.x5t#S256 (mTLS)', { 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' }],
    ['an unknown confirmation method', { 'urn:example:cnf': 'x' }],
  ])('AT-N24: %s → ERR_TOKEN_BINDING_UNSUPPORTED', async (_name, cnf) => {
    await expectCode(h.verifier.verify(await h.token({ cnf })), 'ERR_TOKEN_BINDING_UNSUPPORTED');
  });

  test('cnf that is not an object → ERR_TOKEN_CLAIM_INVALID', async () => {
    await expectCode(h.verifier.verify(await h.token({ cnf: 'jkt' })), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('wrong number of parts → ERR_TOKEN_MALFORMED', async () => {
    const token = await h.token();
    const [a, b, c] = token.split('.');
    for (const bad of [`${a}.${b}`, `${a}.${b}.${c}.x`, 'opaque-token-value', `${a}.${b}.${c}.x.y.z`]) await expectCode(h.verifier.verify(bad), 'ERR_TOKEN_MALFORMED');
  });

  test.each([
    ['a header with non-base64url characters', (p: string[]) => [`${p[0]}+/=`, p[1], p[2]]],
    ['a header that is base64url of non-JSON', (p: string[]) => [b64('{"alg":"ES256",'), p[1], p[2]]],
    ['a header that is a JSON array', (p: string[]) => [b64(['at+jwt']), p[1], p[2]]],
    ['a payload that is not JSON', (p: string[]) => [p[0], b64('not json'), p[2]]],
    ['a payload that is JSON null', (p: string[]) => [p[0], b64('null'), p[2]]],
    ['an empty header', (p: string[]) => ['', p[1], p[2]]],
  ])('%s → ERR_TOKEN_MALFORMED', async (_name, edit) => {
    const parts = (await h.token()).split('.');
    await expectCode(h.verifier.verify(edit(parts).join('.')), 'ERR_TOKEN_MALFORMED');
  });

  test('a signature that is not base64url → ERR_TOKEN_MALFORMED', async () => {
    const [a, b] = (await h.token()).split('.');
    await expectCode(h.verifier.verify(`${a}.${b}.!!!`), 'ERR_TOKEN_MALFORMED');
  });
});

describe('cache', () => {
  test('a second verify of the same token returns the same object without touching the key set', async () => {
    const own = await harness();
    try {
      const token = await own.token();
      const first = await own.verifier.verify(token);
      const hits = own.issuer.jwksHits();
      await own.issuer.setMode('down'); // a cache miss would need the keys; the cache must not
      const second = await own.verifier.verify(token);
      expect(second).toBe(first);
      expect(own.issuer.jwksHits()).toBe(hits);
    } finally {
      await own.issuer.setMode('up');
      await own.close();
    }
  });

  test('without a cache every verify is a new check', async () => {
    const own = await harness({ cacheSize: 0 });
    try {
      const token = await own.token();
      const first = await own.verifier.verify(token);
      expect(await own.verifier.verify(token)).not.toBe(first);
    } finally {
      await own.close();
    }
  });

  test('a cached token past exp + skew → ERR_TOKEN_EXPIRED', async () => {
    const own = await harness();
    try {
      const token = await own.token({ exp: NOW_S + 60 });
      await own.verifier.verify(token);
      own.clock.s = NOW_S + 60 + SKEW_S - 1;
      await expect(own.verifier.verify(token)).resolves.toBeDefined();
      own.clock.s = NOW_S + 60 + SKEW_S + 1;
      await expectCode(own.verifier.verify(token), 'ERR_TOKEN_EXPIRED');
    } finally {
      await own.close();
    }
  });

  test('after key rotation the cached entry is dropped and the token fails with ERR_TOKEN_KEY_UNKNOWN', async () => {
    const own = await harness();
    try {
      const old = await own.token({ jti: 'before-rotation' });
      await own.verifier.verify(old);
      const next = await own.issuer.rotate(); // the old key leaves the JWKS
      // A token with the new kid makes IssuerKeys refetch; the new set no longer has the old kid.
      await own.verifier.verify(await own.token({ jti: 'after-rotation' }, { key: next }));
      await expectCode(own.verifier.verify(old), 'ERR_TOKEN_KEY_UNKNOWN');
    } finally {
      await own.close();
    }
  });

  test('a cached token whose kid now names a different key is dropped too', async () => {
    // The issuer replaces the key material behind an existing kid (and adds a second key).
    // "Entries are dropped when the key that verified them leaves the issuer's key set."
    const own = await harness();
    try {
      const original = own.issuer.keys[0]!;
      const token = await own.token({ jti: 'kid-reused' }, { key: original });
      await own.verifier.verify(token);
      const replacement = await newKey('ES256', original.kid);
      const second = await newKey('ES256', 'k-second');
      own.issuer.keys.splice(0, own.issuer.keys.length, replacement, second);
      await own.verifier.verify(await own.token({ jti: 'trigger-refresh' }, { key: second }));
      await expectCode(own.verifier.verify(token), 'ERR_TOKEN_SIGNATURE');
    } finally {
      await own.close();
    }
  });
});

describe('key availability', () => {
  test('an unknown kid while the JWKS endpoint fails → ERR_KEYS_UNAVAILABLE (503), not a token error', async () => {
    const own = await harness();
    try {
      const stranger = await newKey('ES256', 'k-new');
      await own.issuer.setMode('error');
      const err = await expectCode(own.verifier.verify(await own.token({}, { key: stranger })), 'ERR_KEYS_UNAVAILABLE');
      expect(err.status).toBe(503);
      // A token signed with a key already known still verifies during the outage.
      await expect(own.verifier.verify(await own.token({ jti: 'during-outage' }, { key: own.issuer.keys[0]! }))).resolves.toBeDefined();
    } finally {
      await own.issuer.setMode('up');
      await own.close();
    }
  });

  test('an issuer whose keys never loaded → ERR_KEYS_UNAVAILABLE with status 503', async () => {
    const issuer = await startIssuer({ audience: RESOURCE });
    await issuer.setMode('error');
    const own = await harness({ issuer });
    try {
      const err = await expectCode(own.verifier.verify(await own.token()), 'ERR_KEYS_UNAVAILABLE');
      expect(err.status).toBe(503);
    } finally {
      await own.close();
      await issuer.setMode('up');
      await issuer.close();
    }
  });
});

