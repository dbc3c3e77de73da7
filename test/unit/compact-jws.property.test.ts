/**
 * Property-based tests of the compact-JWS readers (issue 13 item 5a): the segment decoder
 * (src/jose/segments.ts) and, through the one verifier (src/jose/verify.ts), DPoP proofs
 * (src/credentials/dpop.ts) and WIMSE WITs with WPTs (src/credentials/wimse.ts). The strict
 * reference is jose (decodeProtectedHeader, compactVerify, jwtVerify) plus the claim rules of
 * RFC 9449 §4.3 and wpt-02 §2 written out here.
 *
 * Tokens are generated whole: headers and claims drawn from pools that reach each check (`typ`
 * cases, `alg` confusion, `jwk` and `cnf.jwk` that are private, partial, of another type, or whose
 * `kty` is a member of Object.prototype, `crit`, subjects of every scheme, `oth` with odd names),
 * signed with a real key, then edited as text. Properties:
 *
 * - a segment decodes to what was encoded (round trip), and to what jose decodes;
 * - every token is accepted or refused with AgentwardError, never another throw;
 * - an accepted token is one jose verifies with the same key, with the claims the reference requires.
 *
 * The signature math itself is held to jose by test/unit/jose-differential.test.ts. Seed and runs
 * are fixed (test/helpers/property.ts); scripts/property-long-run.sh runs them long.
 */
import { generateKeyPairSync, hash, sign as nodeSign } from 'node:crypto';
import fc from 'fast-check';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { describe, expect, test } from 'vitest';
import { AgentwardError } from '../../src/errors.ts';
import { decodeJsonSegment } from '../../src/jose/segments.ts';
import { DpopVerifier, normalizeHtu } from '../../src/credentials/dpop.ts';
import { WimseVerifier } from '../../src/credentials/wimse.ts';
import { PROTOTYPE_NAMES, edits, outcome, outcomeAsync, runs } from '../helpers/property.ts';

const NOW = 1_800_000_000;
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An ES256 key with its public JWK; tokens are signed synchronously (RFC 7518 §3.4: r || s). */
function es256(kid?: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), alg: 'ES256', ...(kid === undefined ? {} : { kid }) };
  return { privateKey, jwk, privateJwk: privateKey.export({ format: 'jwk' }) as JWK };
}
type Key = ReturnType<typeof es256>;

function signJws(header: unknown, claims: unknown, key: Key): string {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${nodeSign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

/** A member left out (undefined), or a value of another type, beside the valid ones. */
const odd = fc.constantFrom<unknown>(undefined, undefined, null, 0, '', [], {}, 'x', -1, 1e400, true);
const maybe = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 30, arbitrary: valid }, { weight: 1, arbitrary: odd });
/** Mostly `valid`, so that most tokens get far; sometimes one of `others`. */
const mostly = (valid: unknown, ...others: unknown[]) => fc.oneof({ weight: 30, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: fc.constantFrom(...others) });
const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** A public JWK as a token carries it: the real one, or one that must be refused. */
const jwkArb = (key: Key): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 60, arbitrary: fc.constant(key.jwk) },
    { weight: 1, arbitrary: fc.constant(key.privateJwk) },
    { weight: 1, arbitrary: fc.constantFrom('EC', 'RSA', 'OKP', 'oct', '', ...PROTOTYPE_NAMES).map((kty) => ({ ...key.jwk, kty })) },
    { weight: 1, arbitrary: fc.constantFrom('crv', 'x', 'y', 'alg').map((m) => defined({ ...key.jwk, [m]: undefined })) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>({ ...key.jwk, crv: 'P-384' }, { ...key.jwk, alg: 'EdDSA' }, { ...key.jwk, use: 'enc' }, { ...key.jwk, key_ops: ['sign'] }, { kty: 'oct', k: 'AAAA', alg: 'HS256' }) },
    { weight: 1, arbitrary: odd },
  );

const headerCommon = fc.record({
  alg: mostly('ES256', 'ES384', 'RS256', 'HS256', 'none', 'es256', undefined, 1),
  crit: mostly(undefined, ['b64'], ['exp'], [], 'b64'),
  extra: fc.dictionary(fc.constantFrom('kid', 'x5u', 'jku', ...PROTOTYPE_NAMES), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 1 }),
});

/** A token, or the token after text edits (a flipped character, a truncation, a segment repeated, …). */
const edited = (token: fc.Arbitrary<string>) => fc.oneof({ weight: 12, arbitrary: token }, { weight: 1, arbitrary: fc.tuple(token, edits).map(([t, edit]) => edit(t)) });

/** jose's verification with `key`, as the reference for a signature and its header. */
async function joseAccepts(token: string, jwk: unknown): Promise<boolean> {
  try {
    await compactVerify(token, await importJWK(jwk as JWK, 'ES256'), { algorithms: ['ES256'] });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- segments

describe('decodeJsonSegment', () => {
  test('round trip: base64url of a JSON object decodes to the object', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 })), (object) => {
        expect(decodeJsonSegment(b64(object), 'ERR_TOKEN_MALFORMED', 'The token header')).toStrictEqual(JSON.parse(JSON.stringify(object)));
      }),
      runs(),
    );
  });

  test('any segment: refused only with the given code; what is accepted jose decodes alike, but for a dangling character', () => {
    const segment = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 24 }),
      fc.tuple(fc.jsonValue({ maxDepth: 2 }), edits).map(([v, edit]) => edit(b64(v))),
      fc.jsonValue({ maxDepth: 2 }).map(b64),
      fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b).toString('base64url')),
    );
    fc.assert(
      fc.property(segment, (s) => {
        const result = outcome(AgentwardError, () => decodeJsonSegment(s, 'ERR_TOKEN_MALFORMED', 'The token header'));
        if (!result.ok) return void expect(result.error.code).toBe('ERR_TOKEN_MALFORMED');
        // A dangling sixth bit (length 4n+1) is dropped here and refused by jose; the signature
        // step refuses such a token (jose-differential.test.ts, "danglingBefore").
        if (s.length % 4 === 1) return;
        expect(decodeProtectedHeader(`${s}.e30.`)).toStrictEqual(result.value);
      }),
      runs(),
    );
  });
});

// ---------------------------------------------------------------- DPoP

describe('DpopVerifier', () => {
  const key = es256();
  const URI = 'https://tools.example.com/mcp';
  const ACCESS_TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';
  const ATH = hash('sha256', ACCESS_TOKEN, 'base64url');

  const proofArb = edited(
    fc
      .record({
        common: headerCommon,
        typ: mostly('dpop+jwt', 'application/dpop+jwt', 'DPoP+JWT', 'jwt', undefined),
        jwk: jwkArb(key),
        jti: maybe(mostly('id-1', 'x'.repeat(257))),
        htm: maybe(mostly('POST', 'post', 'GET')),
        htu: maybe(fc.constantFrom(URI, `${URI}?q=1#f`, 'HTTPS://TOOLS.example.com:443/mcp', 'https://tools.example.com/%6dcp', 'https://tools.example.com/mcp/../mcp', 'https://other.example/mcp', 'not a url')),
        iat: maybe(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: NOW - 60, max: NOW }) }, { weight: 1, arbitrary: fc.integer({ min: NOW - 120, max: NOW + 30 }) })),
        ath: maybe(mostly(ATH, `${ATH}=`, 'AAAA')),
      })
      .map(({ common, typ, jwk, ...claims }) => signJws(defined({ ...common.extra, alg: common.alg, crit: common.crit, typ, jwk }), defined(claims), key)),
  );

  test('any proof: accepted, or refused with AgentwardError; accepted only where jose verifies it and RFC 9449 §4.3 holds', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(proofArb, async (proof) => {
        const verifier = new DpopVerifier({ algorithms: ['ES256'], maxAgeSeconds: 60, clockSkewSeconds: 5, replayCacheSize: 100, now: () => NOW * 1000 });
        const result = await outcomeAsync(AgentwardError, () => verifier.verify(proof, { method: 'POST', uri: URI, accessToken: ACCESS_TOKEN }));
        if (!result.ok) return void expect(result.error.code).toMatch(/^ERR_DPOP_/);
        const header = decodeProtectedHeader(proof);
        const [, payload] = proof.split('.');
        const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
        expect(await joseAccepts(proof, header.jwk)).toBe(true);
        expect(String(header.typ).toLowerCase().replace(/^application\//, '')).toBe('dpop+jwt');
        expect(claims).toMatchObject({ htm: 'POST', ath: ATH });
        expect(normalizeHtu(claims.htu as string)).toBe(normalizeHtu(URI));
        expect(typeof claims.jti === 'string' && claims.jti.length > 0 && claims.jti.length <= 256).toBe(true);
        expect(Math.abs((claims.iat as number) - NOW) <= 65).toBe(true);
        accepted++;
      }),
      runs(),
    );
    // The generators reach acceptance, so the property is not vacuous.
    expect(accepted).toBeGreaterThan(0);
  });

  test('regression: a proof key whose kty names an Object.prototype member is ERR_DPOP_PROOF_KEY', async () => {
    for (const kty of PROTOTYPE_NAMES) {
      const verifier = new DpopVerifier({ algorithms: ['ES256'], maxAgeSeconds: 60, clockSkewSeconds: 5, replayCacheSize: 100, now: () => NOW * 1000 });
      const proof = signJws({ alg: 'ES256', typ: 'dpop+jwt', jwk: { ...key.jwk, kty } }, { jti: 'a', htm: 'POST', htu: URI, iat: NOW, ath: ATH }, key);
      await expect(verifier.verify(proof, { method: 'POST', uri: URI, accessToken: ACCESS_TOKEN })).rejects.toMatchObject({ code: 'ERR_DPOP_PROOF_KEY' });
    }
  });
});

// ---------------------------------------------------------------- WIT and WPT

describe('WimseVerifier', () => {
  const issuer = es256('wit-1');
  const workload = es256();
  const AUD = 'https://tools.example.com/mcp';
  const keys = createLocalJWKSet({ keys: [issuer.jwk] });
  const trustDomains = new Map([
    ['example.org', { witKeys: () => keys, algorithms: ['ES256'] }],
    ['example.com', { witKeys: () => keys, algorithms: ['ES256'], maxLifetimeSeconds: 3600 }],
  ]);

  const witArb = fc
    .record({
      common: headerCommon,
      typ: mostly('wit+jwt', 'application/wit+jwt', 'wpt+jwt', undefined),
      kid: mostly('wit-1', undefined, 'other'),
      sub: maybe(fc.oneof({ weight: 30, arbitrary: fc.constantFrom('spiffe://example.org/agent', 'wimse://example.com/agent') }, { weight: 1, arbitrary: fc.constantFrom('spiffe://example.net/agent', 'spiffe://Example.org/agent', 'spiffe://example.org/a/../b', 'https://example.org/agent', ...PROTOTYPE_NAMES) })),
      exp: maybe(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: NOW + 1, max: NOW + 3600 }) }, { weight: 1, arbitrary: fc.integer({ min: NOW - 10, max: NOW + 7200 }) })),
      nbf: fc.option(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: NOW - 10, max: NOW }) }, { weight: 1, arbitrary: fc.integer({ min: NOW, max: NOW + 60 }) }), { nil: undefined, freq: 3 }),
      aud: mostly(undefined, AUD, [AUD], 'https://other.example', [1]),
      cnf: fc.oneof({ weight: 30, arbitrary: jwkArb(workload).map((jwk) => ({ jwk })) }, { weight: 1, arbitrary: odd }),
    })
    .map(({ common, typ, kid, ...claims }) => signJws(defined({ ...common.extra, alg: common.alg, crit: common.crit, typ, kid }), defined({ ...claims, iat: NOW }), issuer));

  const wptArb = (wit: string) =>
    fc
      .record({
        common: headerCommon,
        typ: mostly('wpt+jwt', 'wit+jwt', 'application/wpt+jwt', undefined),
        aud: maybe(fc.oneof(fc.constantFrom<unknown>(AUD, [AUD], 'HTTPS://tools.example.com/mcp'), fc.constantFrom<unknown>(`${AUD}/`, [AUD, 1], []))),
        exp: maybe(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: NOW + 1, max: NOW + 60 }) }, { weight: 1, arbitrary: fc.integer({ min: NOW - 10, max: NOW + 120 }) })),
        jti: maybe(mostly('p-1', 'x'.repeat(257))),
        wth: maybe(mostly(hash('sha256', wit, 'base64url'), 'AAAA')),
        tth: mostly(undefined, 'AAAA'),
        oth: mostly(undefined, {}, { 'x-ctx': hash('sha256', 'ctx', 'base64url') }, { 'X-Ctx': 'AAAA' }, Object.fromEntries(PROTOTYPE_NAMES.slice(0, 2).map((n) => [n, 'AAAA'])), []),
        ath: mostly(undefined, 'AAAA'),
      })
      .map(({ common, typ, ...claims }) => signJws(defined({ ...common.extra, alg: common.alg, crit: common.crit, typ }), defined(claims), workload));

  const caseArb = edited(witArb).chain((wit) => fc.tuple(fc.constant(wit), edited(wptArb(wit))));

  test('any WIT and WPT: accepted, or refused with AgentwardError; accepted only where jose verifies both and wpt-02 §2 holds', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, fc.boolean(), async ([wit, wpt], withContext) => {
        const verifier = new WimseVerifier({ trustDomains, audiences: new Set([AUD]), clockSkewSeconds: 5, maxWptLifetimeSeconds: 60, replayCacheSize: 100, now: () => NOW * 1000 });
        const result = await outcomeAsync(AgentwardError, () => verifier.verify({ wit, wpt, targetUri: AUD, otherTokens: withContext ? { 'X-Ctx': 'ctx' } : undefined }));
        if (!result.ok) return void expect(result.error.code).toMatch(/^ERR_(WIT|WPT)_/);
        const witClaims = JSON.parse(Buffer.from(wit.split('.')[1]!, 'base64url').toString()) as { sub: string; cnf: { jwk: JWK } };
        const wptClaims = JSON.parse(Buffer.from(wpt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
        expect(await joseAccepts(wit, issuer.jwk)).toBe(true);
        expect(await joseAccepts(wpt, witClaims.cnf.jwk)).toBe(true);
        expect(decodeProtectedHeader(wit).typ).toMatch(/^(application\/)?wit\+jwt$/);
        expect(decodeProtectedHeader(wpt).typ).toMatch(/^(application\/)?wpt\+jwt$/);
        expect(wptClaims.wth).toBe(hash('sha256', wit, 'base64url'));
        expect(wptClaims.ath).toBeUndefined();
        expect(wptClaims.tth).toBeUndefined();
        // Any URI scheme names a workload (identifier-03 §4.1), in a trust domain configured here.
        expect(result.value.id).toBe(witClaims.sub);
        expect(trustDomains.has(result.value.trustDomain)).toBe(true);
        accepted++;
      }),
      runs(0.5),
    );
    expect(accepted).toBeGreaterThan(0);
  });
});
