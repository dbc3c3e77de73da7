/**
 * The WIMSE WIT + WPT verifier on its own, with a frozen clock: the published wpt-02 vector
 * (wpt-02 §2 Figs. 2–5) and the WIT-Nxx / WPT-Nxx negative cases of docs/negative-cases.md with locally minted keys.
 */
import { describe, expect, test } from 'vitest';
import { hash } from 'node:crypto';
import { base64url, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { AgentwardError } from '../../src/errors.ts';
import { WimseVerifier, type WimseTrustDomain, type WimseVerifierOptions } from '../../src/credentials/wimse.ts';
import { txnTokenHash } from '../../src/credentials/txn-token.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

// wpt-02 §2 Figs. 2–5
const G1_ISSUER_JWK = { kty: 'EC', kid: 'June 5', crv: 'P-256', x: 'kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks', y: 'n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo' };
const G1_WORKLOAD_JWK = { kty: 'OKP', crv: 'Ed25519', x: '1CXXvflN_LVVsIsYXsUvB03JmlGWeCHqQVuouCF92bg', d: 'sdLX8yCYKqo_XvGBLn-ZWeKT7llYeeQpgeCaXVxb5kY' };
const G1_WIT =
  'eyJhbGciOiJFUzI1NiIsImtpZCI6Ikp1bmUgNSIsInR5cCI6IndpdCtqd3QifQ.eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImt0eSI6Ik9LUCIsIngiOiIxQ1hYdmZsTl9MVlZzSXNZWHNVdkIwM0ptbEdXZUNIcVFWdW91Q0Y5MmJnIn19LCJleHAiOjE3NDU1MTI1MTAsImlhdCI6MTc0NTUwODkxMCwianRpIjoieC1fMUNUTDJjY2EzQ1NFNGN3Yl9sIiwic3ViIjoid2ltc2U6Ly9leGFtcGxlLmNvbS9zcGVjaWZpYy13b3JrbG9hZCJ9.ohKJ50QaW8ydALJwaA0Sz4ys3hcN_1S-aTZBytMGc3u8QWUmn5uxUDSonoZFAfZk1Ro1kR4vE_xa7mvoE37R-Q';
const G1_WPT =
  'eyJhbGciOiJFZERTQSIsInR5cCI6IndwdCtqd3QifQ.eyJhdWQiOiJodHRwczovL3dvcmtsb2FkLmV4YW1wbGUuY29tL3BhdGgiLCJleHAiOjE3NDU1MTAwMTYsImp0aSI6Il9fYndjNEVTQzNhY2MyTFRDMS1feCIsInd0aCI6Ilg5d2lQZ3EzamxTR3pBZWdIQ0doTk8xbEpnVWJEb0kxTWprYXQ1UUhKQjAifQ.sa5ZYHTeCx4AsurafaBJ2rrMnE7TBHBB47ZUT7yoiyz2lcGY5XAnpGPjPnzeRroJJiR7Nr_C5J7mexxrsHM3CQ';
const G1_WTH = 'X9wiPgq3jlSGzAegHCGhNO1lJgUbDoI1Mjkat5QHJB0';
const G1_NOW = 1_745_510_000;
const AUD = 'https://workload.example.com/path';
const SUB = 'wimse://example.com/specific-workload';

function clock(startSeconds = G1_NOW) {
  const c = { ms: startSeconds * 1000, now: () => c.ms };
  return c;
}

function domain(keys: JWK[], algorithms = ['ES256']): WimseTrustDomain {
  const resolver = createLocalJWKSet({ keys });
  return { witKeys: () => resolver, algorithms };
}

function verifier(domains: Record<string, WimseTrustDomain>, now: () => number, options: Partial<WimseVerifierOptions> = {}) {
  return new WimseVerifier({
    trustDomains: new Map(Object.entries(domains)),
    audiences: new Set([AUD]),
    clockSkewSeconds: 5,
    maxWptLifetimeSeconds: 60,
    replayCacheSize: 1000,
    now,
    ...options,
  });
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(AgentwardError);
  expect((err as AgentwardError).code).toBe(code);
}

const sha = (s: string) => hash('sha256', s, 'base64url');

describe('the published wpt-02 vector (§2 Figs. 2–5)', () => {
  test('WPT-P01: the published WIT and WPT verify at 1745510000', async () => {
    const c = clock();
    const v = verifier({ 'example.com': domain([G1_ISSUER_JWK]) }, c.now);
    const result = await v.verify({ wit: G1_WIT, wpt: G1_WPT });
    expect(result.id).toBe(SUB);
    expect(result.trustDomain).toBe('example.com');
    expect(result.path).toBe('/specific-workload');
    expect(result.expiresAt).toBe(1_745_512_510);
    expect(result.witHash).toBe(G1_WTH);
    expect(result.witClaims.jti).toBe('x-_1CTL2cca3CSE4cwb_l');
    const { d: _d, ...pub } = G1_WORKLOAD_JWK;
    const expectedJkt = sha(JSON.stringify({ crv: pub.crv, kty: pub.kty, x: pub.x }));
    expect(result.jkt).toBe(expectedJkt);
    expect(result.boundContextTokens).toEqual([]);
    // WPT-N21: the same WPT again is a replay.
    await expectCode(v.verify({ wit: G1_WIT, wpt: G1_WPT }), 'ERR_WPT_REPLAYED');
  });

  test('WPT-N18 / WIT-N16: after the WPT (1745510016) and WIT (1745512510) expiry, beyond leeway', async () => {
    const c = clock(1_745_510_016 + 6);
    await expectCode(verifier({ 'example.com': domain([G1_ISSUER_JWK]) }, c.now).verify({ wit: G1_WIT, wpt: G1_WPT }), 'ERR_WPT_EXPIRED');
    c.ms = (1_745_512_510 + 6) * 1000;
    await expectCode(verifier({ 'example.com': domain([G1_ISSUER_JWK]) }, c.now).verify({ wit: G1_WIT, wpt: G1_WPT }), 'ERR_WIT_EXPIRED');
  });

  test('WPT-N11: another audience; WIT-N13: example.com not configured; WIT-N11: unknown kid', async () => {
    const c = clock();
    await expectCode(verifier({ 'example.com': domain([G1_ISSUER_JWK]) }, c.now, { audiences: new Set(['https://other.example.com/path']) }).verify({ wit: G1_WIT, wpt: G1_WPT }), 'ERR_WPT_AUDIENCE');
    await expectCode(verifier({ 'example.org': domain([G1_ISSUER_JWK]) }, c.now).verify({ wit: G1_WIT, wpt: G1_WPT }), 'ERR_WIT_TRUST_DOMAIN');
    await expectCode(verifier({ 'example.com': domain([{ ...G1_ISSUER_JWK, kid: 'June 6' }]) }, c.now).verify({ wit: G1_WIT, wpt: G1_WPT }), 'ERR_WIT_KEY_UNKNOWN');
  });

  test('WIT-N12: example.com WIT checked against another key (a foreign domain key under the same name)', async () => {
    const other = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(other.publicKey)), kid: 'June 5' };
    await expectCode(verifier({ 'example.com': domain([jwk]) }, clock().now).verify({ wit: G1_WIT, wpt: G1_WPT }), 'ERR_WIT_SIGNATURE');
  });
});

interface Fixture {
  issuers: Record<string, { key: CryptoKey; jwk: JWK }>;
  workload: { key: CryptoKey; jwk: JWK };
}

let fixturePromise: Promise<Fixture> | undefined;
function fixture(): Promise<Fixture> {
  fixturePromise ??= (async () => {
    const issuers: Fixture['issuers'] = {};
    for (const td of ['example.com', 'evil.example']) {
      const pair = await generateKeyPair('ES256', { extractable: true });
      issuers[td] = { key: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid: `${td}-1`, alg: 'ES256' } };
    }
    // The published G.1 workload key (its private part is published).
    const { d: _d, ...pub } = G1_WORKLOAD_JWK;
    return { issuers, workload: { key: (await importJWK(G1_WORKLOAD_JWK, 'EdDSA')) as CryptoKey, jwk: pub } };
  })();
  return fixturePromise;
}

async function mintWit(f: Fixture, options: { signer?: string; header?: Record<string, unknown>; claims?: Record<string, unknown>; cnfJwk?: Record<string, unknown> } = {}): Promise<string> {
  const signer = f.issuers[options.signer ?? 'example.com']!;
  const claims = { sub: SUB, exp: G1_NOW + 3600, iat: G1_NOW - 10, jti: crypto.randomUUID(), cnf: { jwk: options.cnfJwk ?? { ...f.workload.jwk, alg: 'EdDSA' } }, ...options.claims };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete (claims as Record<string, unknown>)[k];
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: signer.jwk.kid, typ: 'wit+jwt', ...options.header } as never).sign(signer.key);
}

async function mintWpt(wit: string, options: { key?: CryptoKey; header?: Record<string, unknown>; claims?: Record<string, unknown> } = {}): Promise<string> {
  const key = options.key ?? (await fixture()).workload.key;
  const claims: Record<string, unknown> = { aud: AUD, exp: G1_NOW + 30, jti: crypto.randomUUID(), wth: sha(wit), ...options.claims };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'wpt+jwt', ...options.header } as never).sign(key);
}

async function minted(options: Partial<WimseVerifierOptions> = {}) {
  const f = await fixture();
  const c = clock();
  const v = verifier({ 'example.com': domain([f.issuers['example.com']!.jwk]), 'evil.example': domain([f.issuers['evil.example']!.jwk]) }, c.now, options);
  return { f, c, v };
}

describe('WIT checks (creds-02 §5.1)', () => {
  test('a minted WIT + WPT verifies (positive control, WIT-N31 unknown claims ignored)', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f, { claims: { 'https://example.com/extra': 1 } });
    const result = await v.verify({ wit, wpt: await mintWpt(wit) });
    expect(result.id).toBe(SUB);
    expect(v.replayCacheEntries).toBe(1);
  });

  test('WIT-N12, BND-N05: signed by another trust domain key but sub in example.com', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f, { signer: 'evil.example' });
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit) }), 'ERR_WIT_KEY_UNKNOWN');
    // Same, with the foreign kid dropped so no kid selection helps.
    const noKid = await mintWit(f, { signer: 'evil.example', header: { kid: 'example.com-1' } });
    await expectCode(v.verify({ wit: noKid, wpt: await mintWpt(noKid) }), 'ERR_WIT_SIGNATURE');
  });

  test('WIT-N13 / WIT-N14: untrusted or malformed sub trust domain, missing sub', async () => {
    const { f, v } = await minted();
    for (const [sub, code] of [
      ['wimse://untrusted.example/w', 'ERR_WIT_TRUST_DOMAIN'],
      ['wimse://Example.com/w', 'ERR_WIT_SUBJECT'],
      ['wimse://example.com:8443/w', 'ERR_WIT_SUBJECT'],
      ['wimse://u@example.com/w', 'ERR_WIT_SUBJECT'],
      ['example.com/w', 'ERR_WIT_SUBJECT'],
      [42, 'ERR_WIT_SUBJECT'],
      [undefined, 'ERR_WIT_CLAIM_MISSING'],
    ] as const) {
      const wit = await mintWit(f, { claims: { sub } });
      await expectCode(v.verify({ wit, wpt: await mintWpt(wit) }), code);
    }
  });

  test('WIT-N10: sub altered after signing', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    const [h, p, s] = wit.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    claims.sub = 'wimse://example.com/admin';
    const forged = `${h}.${base64url.encode(JSON.stringify(claims))}.${s}`;
    await expectCode(v.verify({ wit: forged, wpt: await mintWpt(forged) }), 'ERR_WIT_SIGNATURE');
  });

  test('WIT-N04, WIT-N05, WIT-N06: wrong typ; WIT-N03: not a compact JWS', async () => {
    const { f, v } = await minted();
    for (const typ of [undefined, 'JWT', 'wpt+jwt', 'at+jwt']) {
      const wit = await mintWit(f, { header: { typ } });
      await expectCode(v.verify({ wit, wpt: await mintWpt(wit) }), 'ERR_WIT_TYPE');
    }
    await expectCode(v.verify({ wit: 'a.b', wpt: 'a.b.c' }), 'ERR_WIT_MALFORMED');
    await expectCode(v.verify({ wit: 'a.b.c.d.e', wpt: 'a.b.c' }), 'ERR_WIT_MALFORMED');
  });

  test('WIT-N07, WIT-N09: alg none or not in the domain allow-list', async () => {
    const { f, v } = await minted();
    const good = await mintWit(f);
    const [, p] = good.split('.');
    const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'wit+jwt' }))}.${p}.`;
    await expectCode(v.verify({ wit: none, wpt: await mintWpt(none) }), 'ERR_WIT_MALFORMED');
    const noneSig = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'wit+jwt' }))}.${p}.AAAA`;
    await expectCode(v.verify({ wit: noneSig, wpt: await mintWpt(noneSig) }), 'ERR_WIT_ALGORITHM');
    const hs = `${base64url.encode(JSON.stringify({ alg: 'HS256', typ: 'wit+jwt', kid: 'example.com-1' }))}.${p}.AAAA`;
    await expectCode(v.verify({ wit: hs, wpt: await mintWpt(hs) }), 'ERR_WIT_ALGORITHM');
    const { v: esOnly384 } = await minted({ trustDomains: new Map([['example.com', domain([f.issuers['example.com']!.jwk], ['ES384'])]]) });
    await expectCode(esOnly384.verify({ wit: good, wpt: await mintWpt(good) }), 'ERR_WIT_ALGORITHM');
  });

  test('WIT-N15, WIT-N16, WIT-N17: exp missing, expired beyond leeway, nbf in the future', async () => {
    const { f, v } = await minted();
    const noExp = await mintWit(f, { claims: { exp: undefined } });
    await expectCode(v.verify({ wit: noExp, wpt: await mintWpt(noExp) }), 'ERR_WIT_CLAIM_MISSING');
    const expired = await mintWit(f, { claims: { exp: G1_NOW - 6 } });
    await expectCode(v.verify({ wit: expired, wpt: await mintWpt(expired) }), 'ERR_WIT_EXPIRED');
    const withinSkew = await mintWit(f, { claims: { exp: G1_NOW - 4 } });
    await expect(v.verify({ wit: withinSkew, wpt: await mintWpt(withinSkew) })).resolves.toBeDefined();
    const future = await mintWit(f, { claims: { nbf: G1_NOW + 60 } });
    await expectCode(v.verify({ wit: future, wpt: await mintWpt(future) }), 'ERR_WIT_EXPIRED');
  });

  test('WIT-N18, WIT-N19, WIT-N20, WIT-N21, WIT-N22, WIT-N23, WIT-N24, WIT-N25: cnf missing or not a public asymmetric signature key', async () => {
    const { f, v } = await minted();
    const pub = f.workload.jwk;
    const noCnf = await mintWit(f, { claims: { cnf: undefined } });
    await expectCode(v.verify({ wit: noCnf, wpt: await mintWpt(noCnf) }), 'ERR_WIT_CLAIM_MISSING');
    const jktOnly = await mintWit(f, { claims: { cnf: { jkt: 'abc' } } });
    await expectCode(v.verify({ wit: jktOnly, wpt: await mintWpt(jktOnly) }), 'ERR_WIT_CNF_INVALID');
    for (const cnfJwk of [
      { ...pub },
      { ...pub, alg: 'none' },
      { ...pub, alg: 'HS256' },
      { ...pub, alg: 'ECDH-ES' },
      { ...pub, alg: 'ES256' },
      { ...pub, alg: 'EdDSA', d: G1_WORKLOAD_JWK.d },
      { kty: 'oct', k: 'c2VjcmV0', alg: 'HS256' },
      { ...pub, alg: 'EdDSA', use: 'enc' },
    ]) {
      const wit = await mintWit(f, { cnfJwk });
      await expectCode(v.verify({ wit, wpt: await mintWpt(wit) }), 'ERR_WIT_CNF_INVALID');
    }
  });

  test('WIT-N26, WIT-N28: embedded jwk header is never used; unknown crit is refused', async () => {
    const { f, v } = await minted();
    const attacker = await generateKeyPair('ES256', { extractable: true });
    const claims = { sub: SUB, exp: G1_NOW + 3600, cnf: { jwk: { ...f.workload.jwk, alg: 'EdDSA' } } };
    const embedded = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'wit+jwt', jwk: await exportJWK(attacker.publicKey) }).sign(attacker.privateKey);
    await expectCode(v.verify({ wit: embedded, wpt: await mintWpt(embedded) }), 'ERR_WIT_SIGNATURE');
    const issuer = f.issuers['example.com']!;
    const crit = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'wit+jwt', kid: issuer.jwk.kid, crit: ['x-unknown'], 'x-unknown': 1 } as never)
      .sign(issuer.key, { crit: { 'x-unknown': true } });
    await expectCode(v.verify({ wit: crit, wpt: await mintWpt(crit) }), 'ERR_WIT_MALFORMED');
  });

  test('U5: a WIT aud must include this resource', async () => {
    const { f, v } = await minted();
    const other = await mintWit(f, { claims: { aud: 'https://other.example.com/' } });
    await expectCode(v.verify({ wit: other, wpt: await mintWpt(other) }), 'ERR_WIT_AUDIENCE');
    const ours = await mintWit(f, { claims: { aud: ['https://x.example/', AUD] } });
    await expect(v.verify({ wit: ours, wpt: await mintWpt(ours) })).resolves.toBeDefined();
  });

  test('WPT-N33: valid WPT, expired WIT', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f, { claims: { exp: G1_NOW - 60 } });
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit) }), 'ERR_WIT_EXPIRED');
  });
});

describe('WPT checks (wpt-02 §2)', () => {
  test('WPT-N23: a different valid WIT for the same key swapped under a valid WPT', async () => {
    const { f, v } = await minted();
    const wit1 = await mintWit(f);
    const wit2 = await mintWit(f);
    await expectCode(v.verify({ wit: wit2, wpt: await mintWpt(wit1) }), 'ERR_WPT_WTH');
    // G.1: the published WPT under a freshly minted WIT for the same key.
    await expectCode(v.verify({ wit: wit2, wpt: G1_WPT }), 'ERR_WPT_WTH');
  });

  test('WPT-N21: replay is refused; the cache is inserted only after all checks pass', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    const wpt = await mintWpt(wit, { claims: { tth: txnTokenHash('a.b.c') } });
    await expectCode(v.verify({ wit, wpt }), 'ERR_WPT_TTH');
    expect(v.replayCacheEntries).toBe(0);
    await v.verify({ wit, wpt, txnToken: 'a.b.c' });
    await expectCode(v.verify({ wit, wpt, txnToken: 'a.b.c' }), 'ERR_WPT_REPLAYED');
  });

  test('replay cache stays bounded and forgotten ids cannot be replayed', async () => {
    const { f, v } = await minted({ replayCacheSize: 3 });
    const wit = await mintWit(f);
    const first = await mintWpt(wit, { claims: { exp: G1_NOW + 10 } });
    await v.verify({ wit, wpt: first });
    for (let i = 0; i < 5; i++) await v.verify({ wit, wpt: await mintWpt(wit, { claims: { exp: G1_NOW + 20 + i } }) });
    expect(v.replayCacheEntries).toBeLessThanOrEqual(3);
    // The first id was forgotten: anything expiring no later than the newest forgotten one is refused.
    await expectCode(v.verify({ wit, wpt: first }), 'ERR_WPT_EXPIRED');
    await expect(v.verify({ wit, wpt: await mintWpt(wit, { claims: { exp: G1_NOW + 40 } }) })).resolves.toBeDefined();
  });

  test('WPT-N11, WPT-N12, WPT-N13, WPT-N16, U6: audience', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    for (const aud of ['https://other.example.com/path', 'https://workload.example.com/other', 'http://workload.example.com/path', ['https://other.example.com/path'], [], 7]) {
      await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { aud } }) }), 'ERR_WPT_AUDIENCE');
    }
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { aud: undefined } }) }), 'ERR_WPT_CLAIM_MISSING');
    await expect(v.verify({ wit, wpt: await mintWpt(wit, { claims: { aud: ['https://x.example/', AUD] } }) })).resolves.toBeDefined();
    const { v: strict } = await minted({ strictWptAudience: true });
    await expectCode(strict.verify({ wit, wpt: await mintWpt(wit, { claims: { aud: [AUD] } }) }), 'ERR_WPT_AUDIENCE');
  });

  test('WPT-N17, WPT-N18, WPT-N19, WPT-N34: exp missing, expired, too far ahead, nbf in the future', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { exp: undefined } }) }), 'ERR_WPT_CLAIM_MISSING');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { exp: G1_NOW - 6 } }) }), 'ERR_WPT_EXPIRED');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { exp: G1_NOW + 86_400 } }) }), 'ERR_WPT_LIFETIME');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { exp: G1_NOW + 66 } }) }), 'ERR_WPT_LIFETIME');
    await expect(v.verify({ wit, wpt: await mintWpt(wit, { claims: { exp: G1_NOW + 64 } }) })).resolves.toBeDefined();
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { nbf: G1_NOW + 30 } }) }), 'ERR_WPT_EXPIRED');
  });

  test('RFC 7519 §4.1.6: a WIT or WPT issued in the future beyond the skew is refused, like an access token', async () => {
    const { f, v } = await minted();
    const ahead = await mintWit(f, { claims: { iat: G1_NOW + 3600 } });
    await expectCode(v.verify({ wit: ahead, wpt: await mintWpt(ahead) }), 'ERR_WIT_ISSUED_IN_FUTURE');
    const notNumeric = await mintWit(f, { claims: { iat: String(G1_NOW) } });
    await expectCode(v.verify({ wit: notNumeric, wpt: await mintWpt(notNumeric) }), 'ERR_WIT_MALFORMED');
    const wit = await mintWit(f);
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { iat: G1_NOW + 3600 } }) }), 'ERR_WPT_ISSUED_IN_FUTURE');
    await expect(v.verify({ wit, wpt: await mintWpt(wit, { claims: { iat: G1_NOW } }) })).resolves.toBeDefined();
  });

  test('WPT-N20 / N22: jti or wth missing; ath present (wpt-01 legacy)', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { jti: undefined } }) }), 'ERR_WPT_CLAIM_MISSING');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { wth: undefined } }) }), 'ERR_WPT_CLAIM_MISSING');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { ath: sha('token') } }) }), 'ERR_WPT_ATH');
  });

  test('WPT-N06: wrong typ; WPT-N05: malformed', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    for (const typ of [undefined, 'jwt', 'dpop+jwt', 'wit+jwt']) {
      await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { header: { typ } }) }), 'ERR_WPT_TYPE');
    }
    const wpt = await mintWpt(wit);
    await expectCode(v.verify({ wit, wpt: `${wpt} x` }), 'ERR_WPT_MALFORMED');
    await expectCode(v.verify({ wit, wpt: wpt.split('.').slice(0, 2).join('.') }), 'ERR_WPT_MALFORMED');
  });

  test('WPT-N07, WPT-N08, WPT-N09, WPT-N10: alg mismatch with cnf.jwk.alg, none, other key, tampered payload', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    const es = await generateKeyPair('ES256');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { key: es.privateKey, header: { alg: 'ES256' } }) }), 'ERR_WPT_ALGORITHM');
    const valid = await mintWpt(wit);
    const [, p] = valid.split('.');
    await expectCode(v.verify({ wit, wpt: `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'wpt+jwt' }))}.${p}.AAAA` }), 'ERR_WPT_ALGORITHM');
    const otherEd = await generateKeyPair('EdDSA');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { key: otherEd.privateKey }) }), 'ERR_WPT_SIGNATURE');
    const [h, payload, s] = valid.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    claims.jti = 'changed';
    await expectCode(v.verify({ wit, wpt: `${h}.${base64url.encode(JSON.stringify(claims))}.${s}` }), 'ERR_WPT_SIGNATURE');
  });

  test('WPT-N24, WPT-N25, WPT-N26 (U4): tth', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    const txn = 'eyJhbGciOiJSUzI1NiJ9.eyJ0eG4iOiIxIn0.c2ln';
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit), txnToken: txn }), 'ERR_WPT_TTH');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { tth: txnTokenHash('other') } }), txnToken: txn }), 'ERR_WPT_TTH');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { tth: txnTokenHash(txn) } }) }), 'ERR_WPT_TTH');
    await expect(v.verify({ wit, wpt: await mintWpt(wit, { claims: { tth: txnTokenHash(txn) } }), txnToken: txn })).resolves.toBeDefined();
  });

  test('WPT-N27, WPT-N28, WPT-N29, WPT-N31 (U4): oth', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    const value = 'some-example-other-token';
    // G.2's published hash of this value.
    const oth = { 'x-custom-token': 'x-Uy6Ch_xn3AbUVKDjPMQQugtcn2erLWrkvVWAmKl1k' };
    expect(sha(value)).toBe(oth['x-custom-token']);
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { oth } }) }), 'ERR_WPT_OTH');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { oth } }), otherTokens: { 'x-custom-token': 'different' } }), 'ERR_WPT_OTH');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { oth: { 'X-Custom-Token': oth['x-custom-token'] } } }), otherTokens: { 'x-custom-token': value } }), 'ERR_WPT_OTH');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { oth: { 'x-custom-token': 5 } } }), otherTokens: { 'x-custom-token': value } }), 'ERR_WPT_OTH');
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { oth: 'x' } }), otherTokens: { 'x-custom-token': value } }), 'ERR_WPT_OTH');
    const ok = await v.verify({ wit, wpt: await mintWpt(wit, { claims: { oth } }), otherTokens: { 'x-custom-token': `  ${value} `, 'x-unbound': 'v' } });
    expect(ok.boundContextTokens).toEqual(['x-custom-token']);
    const none = await v.verify({ wit, wpt: await mintWpt(wit), otherTokens: { 'x-unbound': 'v' } });
    expect(none.boundContextTokens).toEqual([]);
  });
});

describe('named cases not covered above', () => {
  test('WIT-N08: HS256 with the issuer public key as the HMAC secret (the classic confusion attack)', async () => {
    const { f, v } = await minted();
    const secret = new TextEncoder().encode(JSON.stringify(f.issuers['example.com']!.jwk));
    const wit = await new SignJWT({ sub: SUB, exp: G1_NOW + 3600, cnf: { jwk: { ...f.workload.jwk, alg: 'EdDSA' } } })
      .setProtectedHeader({ alg: 'HS256', typ: 'wit+jwt', kid: 'example.com-1' })
      .sign(secret);
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit) }), 'ERR_WIT_ALGORITHM');
  });

  test('WIT-N32, WIT-N33, WIT-N34: a spiffe:// WIT is a WIT-SVID: kid required, no aud; RS/ES/PS only under the spiffe profile', async () => {
    const { f, v } = await minted();
    const spiffe = 'spiffe://example.com/agent';
    const es256 = await generateKeyPair('ES256', { extractable: true });
    const cnfJwk = { ...(await exportJWK(es256.publicKey)), alg: 'ES256' };
    const wptFor = (wit: string) => new SignJWT({ aud: AUD, exp: G1_NOW + 30, jti: crypto.randomUUID(), wth: sha(wit) }).setProtectedHeader({ alg: 'ES256', typ: 'wpt+jwt' }).sign(es256.privateKey);
    const ok = await mintWit(f, { claims: { sub: spiffe }, cnfJwk });
    await expect(v.verify({ wit: ok, wpt: await wptFor(ok) })).resolves.toMatchObject({ id: spiffe });
    const noKid = await mintWit(f, { claims: { sub: spiffe }, cnfJwk, header: { kid: undefined } });
    await expectCode(v.verify({ wit: noKid, wpt: await wptFor(noKid) }), 'ERR_WIT_KEY_UNKNOWN');
    const withAud = await mintWit(f, { claims: { sub: spiffe, aud: AUD }, cnfJwk });
    await expectCode(v.verify({ wit: withAud, wpt: await wptFor(withAud) }), 'ERR_WIT_AUDIENCE');
    // The WIMSE drafts (the default profile) allow an EdDSA workload key; the SPIFFE profile does not.
    const edCnf = await mintWit(f, { claims: { sub: spiffe } });
    await expect(v.verify({ wit: edCnf, wpt: await mintWpt(edCnf) })).resolves.toMatchObject({ id: spiffe });
    const spiffeDomain = { ...domain([f.issuers['example.com']!.jwk], ['ES256', 'EdDSA']), profile: 'spiffe' as const };
    const strict = verifier({ 'example.com': spiffeDomain }, clock().now);
    await expectCode(strict.verify({ wit: edCnf, wpt: await mintWpt(edCnf) }), 'ERR_WIT_CNF_INVALID');
    await expect(strict.verify({ wit: ok, wpt: await wptFor(ok) })).resolves.toMatchObject({ id: spiffe });
  });

  test('an EdDSA-signed spiffe:// WIT is accepted under the wimse profile, refused under spiffe (WIT-SVID §2.1)', async () => {
    const f = await fixture();
    const ed = await generateKeyPair('EdDSA', { extractable: true });
    const edJwk = { ...(await exportJWK(ed.publicKey)), kid: 'ed-1', alg: 'EdDSA' };
    const spiffe = 'spiffe://example.com/agent';
    const wit = await new SignJWT({ sub: spiffe, exp: G1_NOW + 3600, iat: G1_NOW, cnf: { jwk: { ...f.workload.jwk, alg: 'EdDSA' } } })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'ed-1', typ: 'wit+jwt' })
      .sign(ed.privateKey);
    const wimse = verifier({ 'example.com': domain([edJwk], ['ES256', 'EdDSA']) }, clock().now);
    await expect(wimse.verify({ wit, wpt: await mintWpt(wit) })).resolves.toMatchObject({ id: spiffe });
    const spiffeProfile = verifier({ 'example.com': { ...domain([edJwk], ['ES256', 'EdDSA']), profile: 'spiffe' } }, clock().now);
    await expectCode(spiffeProfile.verify({ wit, wpt: await mintWpt(wit) }), 'ERR_WIT_ALGORITHM');
    const narrowed = verifier({ 'example.com': domain([edJwk], ['ES256']) }, clock().now);
    await expectCode(narrowed.verify({ wit, wpt: await mintWpt(wit) }), 'ERR_WIT_ALGORITHM');
  });

  test('a WIT issuer by iss: its keys for its trust domains only; a new resolver (rotated keys) verifies a cached WIT again', async () => {
    const f = await fixture();
    const signer = f.issuers['evil.example']!;
    let resolver = createLocalJWKSet({ keys: [signer.jwk] });
    const issuer = { witKeys: () => resolver, algorithms: ['ES256'], trustDomains: new Set(['issued.example']) };
    const v = verifier({ 'example.com': domain([f.issuers['example.com']!.jwk]) }, clock().now, { issuers: new Map([['https://wit.example', issuer]]) });
    const wit = await mintWit(f, { signer: 'evil.example', claims: { sub: 'wimse://issued.example/bot', iss: 'https://wit.example' } });
    await expect(v.verify({ wit, wpt: await mintWpt(wit) })).resolves.toMatchObject({ id: 'wimse://issued.example/bot' });
    resolver = createLocalJWKSet({ keys: [f.issuers['example.com']!.jwk] });
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit) }), 'ERR_WIT_KEY_UNKNOWN');
    const elsewhere = await mintWit(f, { signer: 'evil.example', claims: { sub: 'wimse://nowhere.example/bot', iss: 'https://wit.example' } });
    await expectCode(v.verify({ wit: elsewhere, wpt: await mintWpt(elsewhere) }), 'ERR_WIT_ISSUER');
    const noIss = await mintWit(f, { signer: 'evil.example', claims: { sub: 'wimse://issued.example/bot' } });
    await expectCode(v.verify({ wit: noIss, wpt: await mintWpt(noIss) }), 'ERR_WIT_ISSUER');
  });

  test('WIT-N27: an iss naming an attacker-run issuer is never fetched; its keys never count', async () => {
    const { f, v } = await minted();
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.end('{}');
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    try {
      const attacker = await generateKeyPair('ES256', { extractable: true });
      const iss = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const wit = await new SignJWT({ sub: SUB, iss, exp: G1_NOW + 3600, cnf: { jwk: { ...f.workload.jwk, alg: 'EdDSA' } } })
        .setProtectedHeader({ alg: 'ES256', typ: 'wit+jwt', kid: 'attacker', jku: `${iss}/jwks` })
        .sign(attacker.privateKey);
      await expectCode(v.verify({ wit, wpt: await mintWpt(wit) }), 'ERR_WIT_KEY_UNKNOWN');
      expect(hits).toBe(0);
    } finally {
      server.close();
    }
  });

  test('WPT-N32: when the WIT fails, its failure is reported, before any WPT check', async () => {
    const { f, v } = await minted();
    const expired = await mintWit(f, { claims: { exp: G1_NOW - 60 } });
    await expectCode(v.verify({ wit: expired, wpt: 'not-a-jwt' }), 'ERR_WIT_EXPIRED');
  });

  test('WPT-N14: an aud that names this resource only after an unconfigured rewrite is refused; configured, it is accepted', async () => {
    const { f, v } = await minted();
    const wit = await mintWit(f);
    const internal = 'https://orders.internal.svc/path';
    await expectCode(v.verify({ wit, wpt: await mintWpt(wit, { claims: { aud: internal } }) }), 'ERR_WPT_AUDIENCE');
    const { v: aliased } = await minted({ audiences: new Set([AUD, internal]) });
    await expect(aliased.verify({ wit, wpt: await mintWpt(wit, { claims: { aud: internal } }) })).resolves.toBeDefined();
  });

  test('WPT-N15: the target URI comes from configuration; a WPT for the Host an attacker sends is refused', async () => {
    const { f, v } = await minted({ audiences: new Set() });
    const wit = await mintWit(f);
    await expect(v.verify({ wit, wpt: await mintWpt(wit), targetUri: AUD })).resolves.toBeDefined();
    const forged = await mintWit(f);
    await expectCode(v.verify({ wit: forged, wpt: await mintWpt(forged, { claims: { aud: 'https://attacker.example/path' } }), targetUri: AUD }), 'ERR_WPT_AUDIENCE');
  });
});

describe('verified WITs are cached, never beyond what a fresh check would allow', () => {
  test('the second use of a WIT skips its signature check but not its expiry', async () => {
    const { f, c, v } = await minted();
    const wit = await mintWit(f, { claims: { exp: G1_NOW + 60 } });
    await v.verify({ wit, wpt: await mintWpt(wit) });
    const first = await v.verifyIdentityToken(wit);
    expect(await v.verifyIdentityToken(wit)).toBe(first);
    c.ms = (G1_NOW + 66) * 1000;
    await expectCode(v.verifyIdentityToken(wit), 'ERR_WIT_EXPIRED');
  });

  test('new trust domain keys (a rotated bundle) verify a cached WIT again', async () => {
    const f = await fixture();
    const c = clock();
    let resolver = createLocalJWKSet({ keys: [f.issuers['example.com']!.jwk] });
    const v = verifier({ 'example.com': { witKeys: () => resolver, algorithms: ['ES256'] } }, c.now);
    const wit = await mintWit(f);
    await expect(v.verifyIdentityToken(wit)).resolves.toBeDefined();
    resolver = createLocalJWKSet({ keys: [f.issuers['evil.example']!.jwk] });
    await expectCode(v.verifyIdentityToken(wit), 'ERR_WIT_KEY_UNKNOWN');
  });

  test('a stale bundle refuses cached WITs too', async () => {
    const f = await fixture();
    let stale = false;
    const resolver = createLocalJWKSet({ keys: [f.issuers['example.com']!.jwk] });
    const witKeys = () => {
      if (stale) throw new AgentwardError('ERR_KEYS_UNAVAILABLE');
      return resolver;
    };
    const v = verifier({ 'example.com': { witKeys, algorithms: ['ES256'] } }, clock().now);
    const wit = await mintWit(f);
    await v.verifyIdentityToken(wit);
    stale = true;
    await expectCode(v.verifyIdentityToken(wit), 'ERR_KEYS_UNAVAILABLE');
  });

  test('the audience of a cached WIT is checked against each request target', async () => {
    const { f, v } = await minted({ audiences: new Set() });
    const wit = await mintWit(f, { claims: { aud: AUD } });
    await expect(v.verifyIdentityToken(wit, AUD)).resolves.toBeDefined();
    await expectCode(v.verifyIdentityToken(wit, 'https://workload.example.com/other'), 'ERR_WIT_AUDIENCE');
  });

  test('cacheSize 0 verifies every time', async () => {
    const { f, v } = await minted({ cacheSize: 0 });
    const wit = await mintWit(f);
    expect(await v.verifyIdentityToken(wit)).not.toBe(await v.verifyIdentityToken(wit));
  });
});
