/**
 * SPIFFE JWT-SVIDs (src/credentials/jwt-svid.ts; JWT-SVID §2–§5): JS-N01..N09, BND-N07,
 * U10 (`kid`), positive RS/ES/PS cases, the verified-token cache and `looksLikeJwtSvid` routing.
 * Keys come from real TrustBundle instances loaded from temp bundle files, the clock is frozen.
 * Tokens are minted with test/helpers/workload-tokens.ts, whose WIT/WPT helpers are also checked
 * here against the real WIMSE verifier.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlattenedSign, GeneralSign, importPKCS8, type CryptoKey, type JWK } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { JwtSvidVerifier, looksLikeJwtSvid, type JwtSvidTrustDomain, type JwtSvidVerifierOptions } from '../../src/credentials/jwt-svid.ts';
import { WimseVerifier } from '../../src/credentials/wimse.ts';
import { AgentwardError } from '../../src/errors.ts';
import { TrustBundle } from '../../src/keys/trust-bundle.ts';
import { expectCode } from '../helpers/expect-code.ts';
import { createCa } from '../helpers/pki.ts';
import { bundleDocument, mintJwtSvid, mintWit, mintWpt, newWorkloadKey, othFor, tokenHash, type BundleDocumentOptions, type WorkloadKey } from '../helpers/workload-tokens.ts';

const NOW = 1_800_000_000;
const AUD = 'https://api.example.com';
const DOMAIN = 'example.org';
const OTHER = 'other.example';
const SUB = `spiffe://${DOMAIN}/agents/planner`;
const ISSUER = 'https://as.example.com';
const logger = pino({ level: 'silent' });

const clock = { ms: NOW * 1000, now: () => clock.ms };
let dir: string;
const bundles: TrustBundle[] = [];
let es: WorkloadKey;
let rs: WorkloadKey;
let ps: WorkloadKey;
/** Published only as a `wit-svid` entry of example.org. */
let witKey: WorkloadKey;
/** The example.org X.509 authority key, published only as an `x509-svid` entry. */
let caKey: CryptoKey;
/** other.example's jwt-svid key. */
let otherKey: WorkloadKey;
let org: TrustBundle;
let other: TrustBundle;

/** A TrustBundle read once from a temp file holding `doc`. */
async function loadBundle(trustDomain: string, doc: BundleDocumentOptions, name = trustDomain): Promise<TrustBundle> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(bundleDocument(doc)));
  const bundle = new TrustBundle({ trustDomain, source: { file }, timeoutMs: 1000, logger });
  bundles.push(bundle);
  expect(await bundle.refresh()).toBe(true);
  return bundle;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentward-jwt-svid-'));
  [es, rs, ps, witKey, otherKey] = await Promise.all([
    newWorkloadKey('ES256', 'jwt-es'),
    newWorkloadKey('RS256', 'jwt-rs'),
    newWorkloadKey('PS256', 'jwt-ps'),
    newWorkloadKey('ES256', 'wit-1'),
    newWorkloadKey('ES256', 'other-1'),
  ]);
  const ca = createCa();
  caKey = await importPKCS8(ca.keyPem, 'ES256');
  const x509Entry = { ...(ca.x509.publicKey.export({ format: 'jwk' }) as JWK), x5c: [ca.der.toString('base64')] };
  org = await loadBundle(DOMAIN, { jwtSvid: [es.publicJwk, rs.publicJwk, ps.publicJwk], witSvid: [witKey.publicJwk], x509: [x509Entry] });
  other = await loadBundle(OTHER, { jwtSvid: [otherKey.publicJwk] });
  expect(org.status().keys).toEqual({ jwtSvid: 3, witSvid: 1, x509Svid: 1 });
});

afterAll(async () => {
  for (const b of bundles) b.close();
  await rm(dir, { recursive: true, force: true });
});

function domains(entries: Record<string, TrustBundle | JwtSvidTrustDomain> = { [DOMAIN]: org, [OTHER]: other }): Map<string, JwtSvidTrustDomain> {
  return new Map(Object.entries(entries).map(([name, b]) => [name, b instanceof TrustBundle ? { jwtKeys: () => b.jwtSvidKeys() } : b]));
}

function verifier(options: Partial<JwtSvidVerifierOptions> = {}): JwtSvidVerifier {
  return new JwtSvidVerifier({ trustDomains: domains(), audiences: new Set([AUD]), requireKid: true, clockSkewSeconds: 5, now: clock.now, ...options });
}

/** A valid example.org JWT-SVID on the frozen clock, unless overridden. */
function svid(options: Partial<Parameters<typeof mintJwtSvid>[0]> = {}): Promise<string> {
  return mintJwtSvid({ key: es, sub: SUB, aud: AUD, iat: NOW, exp: NOW + 300, ...options });
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('accepted JWT-SVIDs', () => {
  test('ES256 with kid and typ JWT: identity, expiry, remaining claims, kid', async () => {
    const token = await svid({ claims: { iss: 'https://spire.example.org', jti: 'j-1', 'https://example.org/extra': { a: 1 } } });
    const result = await verifier().verify(token);
    expect(result).toEqual({
      id: SUB,
      trustDomain: DOMAIN,
      path: '/agents/planner',
      expiresAt: NOW + 300,
      claims: { iat: NOW, iss: 'https://spire.example.org', jti: 'j-1', 'https://example.org/extra': { a: 1 } },
      kid: 'jwt-es',
    });
    expect(Object.isFrozen(result.claims['https://example.org/extra'])).toBe(true);
  });

  test.each([
    ['RS256', () => rs],
    ['PS256', () => ps],
  ])('%s', async (_alg, key) => {
    const result = await verifier().verify(await svid({ key: key() }));
    expect(result.id).toBe(SUB);
    expect(result.kid).toBe(key().kid);
  });

  test('aud as an array holding our value among others (JWT-SVID §3.2)', async () => {
    const result = await verifier().verify(await svid({ aud: ['https://elsewhere.example', AUD] }));
    expect(result.id).toBe(SUB);
    expect(result.claims).not.toHaveProperty('aud');
  });

  test('any configured audience is accepted', async () => {
    const v = verifier({ audiences: new Set(['spiffe://example.org/api', AUD]) });
    await expect(v.verify(await svid({ aud: 'spiffe://example.org/api' }))).resolves.toMatchObject({ id: SUB });
  });

  test('typ absent, JOSE, jwt or application/JWT: RFC 7515 §4.1.9 media types, case-insensitive', async () => {
    for (const typ of [undefined, 'JOSE', 'jwt', 'application/JWT']) {
      await expect(verifier().verify(await svid({ header: { typ } }))).resolves.toMatchObject({ id: SUB });
    }
  });

  test('ES384 and ES512 keys of the domain also verify (SPIFFE_ALGORITHMS)', async () => {
    const [k384, k512] = await Promise.all([newWorkloadKey('ES384', 'es384'), newWorkloadKey('ES512', 'es512')]);
    const bundle = await loadBundle(DOMAIN, { jwtSvid: [k384.publicJwk, k512.publicJwk] }, 'es-big');
    const v = verifier({ trustDomains: domains({ [DOMAIN]: bundle }) });
    for (const key of [k384, k512]) await expect(v.verify(await svid({ key }))).resolves.toMatchObject({ kid: key.kid });
  });
});

describe('JWT-SVID negative cases (JS-Nxx, docs/negative-cases.md)', () => {
  test('JS-N01: alg EdDSA, HS256 or none', async () => {
    const ed = await newWorkloadKey('EdDSA', 'ed-1');
    const edBundle = await loadBundle(DOMAIN, { jwtSvid: [ed.publicJwk] }, 'ed');
    const edToken = await svid({ key: ed });
    await expectCode(verifier({ trustDomains: domains({ [DOMAIN]: edBundle }) }).verify(edToken), 'ERR_JWT_SVID_ALGORITHM', edToken);

    // The classic confusion: the issuer's public key used as an HMAC secret.
    const secret = new TextEncoder().encode(JSON.stringify(es.publicJwk));
    const hs = await svid({ key: { privateKey: secret, alg: 'HS256', kid: 'jwt-es' } });
    await expectCode(verifier().verify(hs), 'ERR_JWT_SVID_ALGORITHM', hs);

    const none = `${b64({ alg: 'none', typ: 'JWT', kid: 'jwt-es' })}.${b64({ sub: SUB, aud: AUD, exp: NOW + 300 })}.`;
    await expectCode(verifier().verify(none), 'ERR_JWT_SVID_ALGORITHM', none);
    await expectCode(verifier().verify(`${b64({ typ: 'JWT', kid: 'jwt-es' })}.${b64({ sub: SUB, aud: AUD, exp: NOW + 300 })}.`), 'ERR_JWT_SVID_ALGORITHM');
  });

  test('JS-N02: typ at+jwt (and every other non-JWT type, incl. a WIT) is refused', async () => {
    for (const typ of ['at+jwt', 'application/at+jwt', 'wit+jwt', 'wpt+jwt', 'dpop+jwt', 'txntoken+jwt', 'JWS', 42]) {
      const token = await svid({ header: { typ } });
      await expectCode(verifier().verify(token), 'ERR_JWT_SVID_TYPE', token);
    }
    // A real WIT-SVID, signed with a jwt-svid key so only the type can stop it.
    const workload = await newWorkloadKey();
    const wit = await mintWit({ key: es, sub: SUB, cnfJwk: workload.publicJwk, iat: NOW, claims: { aud: AUD } });
    expect(looksLikeJwtSvid(wit, new Set([DOMAIN]), new Set())).toBe(true);
    await expectCode(verifier().verify(wit), 'ERR_JWT_SVID_TYPE', wit);
  });

  test('JS-N03: no aud', async () => {
    const token = await svid({ claims: { aud: undefined } });
    await expectCode(verifier().verify(token), 'ERR_JWT_SVID_CLAIM_MISSING', token);
  });

  test('JS-N04: aud lacks our value; aud of the wrong type', async () => {
    for (const aud of ['https://elsewhere.example', ['https://a.example', 'https://b.example'], [], `${AUD}/`]) {
      const token = await svid({ aud });
      await expectCode(verifier().verify(token), 'ERR_JWT_SVID_AUDIENCE', token);
    }
    await expectCode(verifier().verify(await svid({ claims: { aud: [AUD, 7] } })), 'ERR_JWT_SVID_MALFORMED');
    await expectCode(verifier().verify(await svid({ claims: { aud: { value: AUD } } })), 'ERR_JWT_SVID_MALFORMED');
  });

  test('JS-N05: no exp, exp passed beyond leeway, nbf or iat ahead beyond leeway', async () => {
    const v = verifier();
    const noExp = await svid({ claims: { exp: undefined } });
    await expectCode(v.verify(noExp), 'ERR_JWT_SVID_CLAIM_MISSING', noExp);
    const expired = await svid({ iat: NOW - 600, exp: NOW - 5 });
    await expectCode(v.verify(expired), 'ERR_JWT_SVID_EXPIRED', expired);
    await expect(v.verify(await svid({ iat: NOW - 600, exp: NOW - 4 }))).resolves.toMatchObject({ id: SUB }); // within 5 s leeway
    await expectCode(v.verify(await svid({ claims: { nbf: NOW + 6 } })), 'ERR_JWT_SVID_EXPIRED');
    await expect(v.verify(await svid({ claims: { nbf: NOW + 5 } }))).resolves.toMatchObject({ id: SUB });
    await expectCode(v.verify(await svid({ iat: NOW + 6, exp: NOW + 300 })), 'ERR_JWT_SVID_ISSUED_IN_FUTURE');
    await expectCode(v.verify(await svid({ claims: { exp: String(NOW + 300) } })), 'ERR_JWT_SVID_MALFORMED');
  });

  test('JS-N06: a key of the same domain that is only a wit-svid or x509-svid entry never verifies', async () => {
    const v = verifier();
    // Under its own kid: no jwt-svid entry carries it.
    const byWitKey = await svid({ key: witKey });
    await expectCode(v.verify(byWitKey), 'ERR_JWT_SVID_KEY_UNKNOWN', byWitKey);
    // x509-svid entries have no kid (X509-SVID §6.1); name a jwt-svid kid instead.
    const byCa = await svid({ key: { privateKey: caKey, alg: 'ES256', kid: 'jwt-es' } });
    await expectCode(v.verify(byCa), 'ERR_JWT_SVID_SIGNATURE', byCa);
    const byWitKeyRelabelled = await svid({ key: { ...witKey, kid: 'jwt-es' } });
    await expectCode(v.verify(byWitKeyRelabelled), 'ERR_JWT_SVID_SIGNATURE', byWitKeyRelabelled);
    // Without kid (requireKid off) every ES256 jwt-svid key is tried, still never the wit or x509 one.
    const loose = verifier({ requireKid: false });
    await expectCode(loose.verify(await svid({ key: { ...witKey, kid: undefined } })), 'ERR_JWT_SVID_SIGNATURE');
    await expectCode(loose.verify(await svid({ key: { privateKey: caKey, alg: 'ES256' } })), 'ERR_JWT_SVID_SIGNATURE');
  });

  test("JS-N07: signed with another trust domain's key, sub in example.org", async () => {
    const v = verifier();
    const foreign = await svid({ key: otherKey });
    await expectCode(v.verify(foreign), 'ERR_JWT_SVID_KEY_UNKNOWN', foreign);
    await expectCode(v.verify(await svid({ key: { ...otherKey, kid: 'jwt-es' } })), 'ERR_JWT_SVID_SIGNATURE');
    // The same key vouches for its own domain.
    await expect(v.verify(await svid({ key: otherKey, sub: `spiffe://${OTHER}/svc` }))).resolves.toMatchObject({ trustDomain: OTHER });
  });

  test('JS-N08: JWS JSON serialization, JWE and other non-compact forms', async () => {
    const payload = new TextEncoder().encode(JSON.stringify({ sub: SUB, aud: AUD, exp: NOW + 300 }));
    const flattened = await new FlattenedSign(payload).setProtectedHeader({ alg: 'ES256', kid: 'jwt-es' }).sign(es.privateKey);
    const general = new GeneralSign(payload);
    general.addSignature(es.privateKey).setProtectedHeader({ alg: 'ES256', kid: 'jwt-es' });
    const good = await svid();
    for (const token of [JSON.stringify(flattened), JSON.stringify(await general.sign()), `${good}.x.y`, good.split('.').slice(0, 2).join('.'), ` ${good}`, good.replace('.', '..'), '']) {
      await expectCode(verifier().verify(token), 'ERR_JWT_SVID_MALFORMED');
    }
    await expectCode(verifier().verify(`${b64({ alg: 'ES256', kid: 'jwt-es' }).slice(1)}.${good.split('.')[1]}.${good.split('.')[2]}`), 'ERR_JWT_SVID_MALFORMED');
    await expectCode(verifier().verify(`${b64(['ES256'])}.${good.split('.')[1]}.${good.split('.')[2]}`), 'ERR_JWT_SVID_MALFORMED');
    await expectCode(verifier().verify(undefined as unknown as string), 'ERR_JWT_SVID_MALFORMED');
  });

  test('JS-N09: sub not a SPIFFE ID (or naming no workload); sub missing', async () => {
    for (const sub of ['https://example.org/agents/planner', 'wimse://example.org/agents/planner', 'spiffe://example.org/agents/../root', 'spiffe://Example.org/a', 'spiffe://example.org', 'spiffe://example.org/', 'spiffe://example.org/a%20b', 'SPIFFE://example.org/a', 'planner']) {
      const token = await svid({ sub });
      await expectCode(verifier().verify(token), 'ERR_JWT_SVID_SUBJECT', token);
    }
    await expectCode(verifier().verify(await svid({ claims: { sub: 42 } })), 'ERR_JWT_SVID_SUBJECT');
    await expectCode(verifier().verify(await svid({ claims: { sub: undefined } })), 'ERR_JWT_SVID_CLAIM_MISSING');
  });
});

describe('other checks', () => {
  test('a trust domain that is not configured', async () => {
    const token = await svid({ sub: 'spiffe://unknown.example/svc' });
    await expectCode(verifier().verify(token), 'ERR_JWT_SVID_TRUST_DOMAIN', token);
  });

  test('U10: kid required by default; allowed when requireKid is false', async () => {
    const noKid = await svid({ key: { ...es, kid: undefined } });
    await expectCode(verifier().verify(noKid), 'ERR_JWT_SVID_KEY_UNKNOWN', noKid);
    await expectCode(verifier().verify(await svid({ header: { kid: '' } })), 'ERR_JWT_SVID_KEY_UNKNOWN');
    await expectCode(verifier().verify(await svid({ header: { kid: 7 } })), 'ERR_JWT_SVID_MALFORMED');
    const result = await verifier({ requireKid: false }).verify(noKid);
    expect(result).toMatchObject({ id: SUB, kid: undefined });
    // Several ES256 keys match a token without kid: each is tried.
    const second = await newWorkloadKey('ES256', 'jwt-es-2');
    const two = await loadBundle(DOMAIN, { jwtSvid: [es.publicJwk, second.publicJwk] }, 'two');
    const loose = verifier({ requireKid: false, trustDomains: domains({ [DOMAIN]: two }) });
    await expect(loose.verify(await svid({ key: { ...second, kid: undefined } }))).resolves.toMatchObject({ id: SUB });
    await expectCode(loose.verify(await svid({ key: { ...otherKey, kid: undefined } })), 'ERR_JWT_SVID_SIGNATURE');
  });

  test('unknown crit is refused (RFC 7515 §4.1.11)', async () => {
    const token = await mintJwtSvid({ key: es, sub: SUB, aud: AUD, iat: NOW, header: { crit: ['urn:example:ext'], 'urn:example:ext': true } });
    await expectCode(verifier().verify(token), 'ERR_JWT_SVID_MALFORMED', token);
  });

  test('tampered payload fails the signature', async () => {
    const [h, , s] = (await svid()).split('.');
    await expectCode(verifier().verify(`${h}.${b64({ sub: `${SUB}-admin`, aud: AUD, exp: NOW + 300 })}.${s}`), 'ERR_JWT_SVID_SIGNATURE');
  });

  test('maxLifetimeSeconds bounds exp - iat, or exp - now without iat', async () => {
    const v = verifier({ trustDomains: domains({ [DOMAIN]: { jwtKeys: () => org.jwtSvidKeys(), maxLifetimeSeconds: 600 } }) });
    await expect(v.verify(await svid({ iat: NOW - 100, exp: NOW + 500 }))).resolves.toMatchObject({ id: SUB });
    await expectCode(v.verify(await svid({ iat: NOW - 100, exp: NOW + 501 })), 'ERR_JWT_SVID_LIFETIME');
    await expectCode(v.verify(await svid({ claims: { iat: undefined, exp: NOW + 601 } })), 'ERR_JWT_SVID_LIFETIME');
    await expect(v.verify(await svid({ claims: { iat: undefined, exp: NOW + 600 } }))).resolves.toMatchObject({ id: SUB });
    expect(() => verifier({ trustDomains: domains({ [DOMAIN]: { jwtKeys: () => org.jwtSvidKeys(), maxLifetimeSeconds: 0 } }) })).toThrow(TypeError);
  });

  test('ERR_KEYS_UNAVAILABLE from the bundle propagates unchanged (fail closed)', async () => {
    const unloaded = new TrustBundle({ trustDomain: DOMAIN, source: { file: join(dir, 'missing.json') }, timeoutMs: 1000, logger });
    bundles.push(unloaded);
    const err = await expectCode(verifier({ trustDomains: domains({ [DOMAIN]: unloaded }) }).verify(await svid()), 'ERR_KEYS_UNAVAILABLE');
    expect(err.status).toBe(503);
  });

  test('constructor refuses an empty audience set and a negative skew', () => {
    expect(() => verifier({ audiences: new Set() })).toThrow(TypeError);
    expect(() => verifier({ clockSkewSeconds: -1 })).toThrow(TypeError);
  });
});

describe('verified-token cache', () => {
  test('a cached token is returned as is, and still expires', async () => {
    const start = clock.ms;
    try {
      const v = verifier();
      const token = await svid({ exp: NOW + 60 });
      const first = await v.verify(token);
      expect(await v.verify(token)).toBe(first); // from the cache
      clock.ms = (NOW + 60 + 4) * 1000; // within leeway
      expect(await v.verify(token)).toBe(first);
      clock.ms = (NOW + 60 + 5) * 1000;
      await expectCode(v.verify(token), 'ERR_JWT_SVID_EXPIRED', token);
    } finally {
      clock.ms = start;
    }
  });

  test('a cached token is checked again once the bundle changes, and refused when its key left', async () => {
    const file = join(dir, 'rotating.json');
    await writeFile(file, JSON.stringify(bundleDocument({ jwtSvid: [es.publicJwk] })));
    const bundle = new TrustBundle({ trustDomain: DOMAIN, source: { file }, timeoutMs: 1000, logger });
    bundles.push(bundle);
    await bundle.refresh();
    const v = verifier({ trustDomains: domains({ [DOMAIN]: bundle }) });
    const token = await svid();
    await v.verify(token);
    const next = await newWorkloadKey('ES256', 'jwt-next');
    await writeFile(file, JSON.stringify(bundleDocument({ jwtSvid: [next.publicJwk] })));
    expect(await bundle.refresh()).toBe(true);
    await expectCode(v.verify(token), 'ERR_JWT_SVID_KEY_UNKNOWN', token);
  });

  test('a cached token is refused while its keys are unavailable', async () => {
    let down = false;
    const v = verifier({
      trustDomains: domains({
        [DOMAIN]: {
          jwtKeys: () => {
            if (down) throw new AgentwardError('ERR_KEYS_UNAVAILABLE');
            return org.jwtSvidKeys();
          },
        },
      }),
    });
    const token = await svid();
    await v.verify(token);
    down = true;
    await expectCode(v.verify(token), 'ERR_KEYS_UNAVAILABLE');
    down = false;
    await expect(v.verify(token)).resolves.toMatchObject({ id: SUB });
  });

  test('cacheSize 0 turns the cache off', async () => {
    const v = verifier({ cacheSize: 0 });
    const token = await svid();
    const first = await v.verify(token);
    const second = await v.verify(token);
    expect(second).toEqual(first);
    expect(second).not.toBe(first);
  });
});

describe('looksLikeJwtSvid', () => {
  const domainsSet = new Set([DOMAIN, OTHER]);
  const issuers = new Set([ISSUER]);

  test('a JWT-SVID of a configured trust domain, with or without a foreign iss', async () => {
    expect(looksLikeJwtSvid(await svid(), domainsSet, issuers)).toBe(true);
    expect(looksLikeJwtSvid(await svid({ claims: { iss: 'https://spire.example.org' } }), domainsSet, issuers)).toBe(true);
    // Routing ignores the header: the verifier refuses wrong types and algorithms with their own codes.
    expect(looksLikeJwtSvid(`${b64({ alg: 'none' })}.${b64({ sub: SUB })}.`, domainsSet, issuers)).toBe(true);
  });

  test('a configured OAuth issuer wins: the token is an access token', async () => {
    expect(looksLikeJwtSvid(await svid({ claims: { iss: ISSUER }, header: { typ: 'at+jwt' } }), domainsSet, issuers)).toBe(false);
  });

  test('a sub that is not a SPIFFE ID, or of an unknown trust domain', async () => {
    expect(looksLikeJwtSvid(await svid({ sub: 'user@example.org' }), domainsSet, issuers)).toBe(false);
    expect(looksLikeJwtSvid(await svid({ sub: 'wimse://example.org/svc' }), domainsSet, issuers)).toBe(false);
    expect(looksLikeJwtSvid(await svid({ claims: { sub: undefined } }), domainsSet, issuers)).toBe(false);
    expect(looksLikeJwtSvid(await svid({ sub: 'spiffe://unknown.example/svc' }), domainsSet, issuers)).toBe(false);
  });

  test('garbage never throws', () => {
    for (const token of ['', 'abc', 'a.b.c', '...', `${b64({})}.!!.x`, `${b64({})}.${b64([SUB])}.x`, `${b64({})}.${b64(null)}.x`, `${b64({})}.${Buffer.from('{"sub":').toString('base64url')}.x`, '{"payload":"x"}']) {
      expect(looksLikeJwtSvid(token, domainsSet, issuers)).toBe(false);
    }
    expect(looksLikeJwtSvid(undefined as unknown as string, domainsSet, issuers)).toBe(false);
  });
});

describe('BND-N07 the other way, and the WIT/WPT helpers against the WIMSE verifier', () => {
  const TARGET = 'https://api.example.com/tools';

  function wimse(): WimseVerifier {
    return new WimseVerifier({
      trustDomains: new Map([[DOMAIN, { witKeys: () => org.witSvidKeys(), algorithms: ['ES256'] }]]),
      audiences: new Set([TARGET]),
      clockSkewSeconds: 5,
      maxWptLifetimeSeconds: 60,
      replayCacheSize: 100,
      now: clock.now,
    });
  }

  test('mintWit + mintWpt (with tth and oth) verify; a WIT signed by a jwt-svid key does not (BND-N07)', async () => {
    const workload = await newWorkloadKey('ES256');
    expect(workload.publicJwk.alg).toBe('ES256');
    expect(workload.jkt).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const wit = await mintWit({ key: witKey, sub: SUB, cnfJwk: workload.publicJwk, iat: NOW });
    const txnToken = 'txn.token.value';
    const otherTokens = { 'X-User-Token': ' user-token ' };
    const wpt = await mintWpt({ wit, privateKey: workload.privateKey, alg: workload.alg, aud: TARGET, exp: NOW + 30, tth: tokenHash(txnToken), oth: othFor(otherTokens) });
    const result = await wimse().verify({ wit, wpt, txnToken, otherTokens });
    expect(result).toMatchObject({ id: SUB, trustDomain: DOMAIN, jkt: workload.jkt, witHash: tokenHash(wit), boundContextTokens: ['x-user-token'] });

    const witByJwtKey = await mintWit({ key: es, sub: SUB, cnfJwk: workload.publicJwk, iat: NOW });
    const wpt2 = await mintWpt({ wit: witByJwtKey, privateKey: workload.privateKey, alg: workload.alg, aud: TARGET, exp: NOW + 30 });
    await expectCode(wimse().verify({ wit: witByJwtKey, wpt: wpt2 }), 'ERR_WIT_KEY_UNKNOWN');
    const relabelled = await mintWit({ key: { ...es, kid: 'wit-1' }, sub: SUB, cnfJwk: workload.publicJwk, iat: NOW });
    await expectCode(wimse().verify({ wit: relabelled, wpt: await mintWpt({ wit: relabelled, privateKey: workload.privateKey, alg: workload.alg, aud: TARGET, exp: NOW + 30 }) }), 'ERR_WIT_SIGNATURE');
  });

  test('bundleDocument sets use per entry and the optional SPIFFE members', () => {
    const doc = bundleDocument({ jwtSvid: [es.publicJwk], witSvid: [witKey.publicJwk], sequence: 3, refreshHint: 300 });
    expect(doc.keys.map((k) => [k.kid, k.use])).toEqual([
      ['jwt-es', 'jwt-svid'],
      ['wit-1', 'wit-svid'],
    ]);
    expect(doc).toMatchObject({ spiffe_sequence: 3, spiffe_refresh_hint: 300 });
    expect(bundleDocument()).toEqual({ keys: [] });
  });
});
