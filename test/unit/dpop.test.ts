/**
 * The DPoP verifier on its own, with a frozen clock: the RFC 9449 published values, the replay
 * cache's memory bound under a flood of unique proofs, nonce rotation, and htu normalization.
 */
import { describe, expect, test } from 'vitest';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { DpopNonces, DpopVerifier, jwkThumbprint, normalizeHtu } from '../../src/credentials/dpop.ts';
import { AgentwardError } from '../../src/errors.ts';
import { ath, proof, proofKey } from '../helpers/dpop.ts';

const URI = 'https://resource.example.org/protectedresource';
const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln';

function clock(startSeconds = 1_800_000_000) {
  const c = { ms: startSeconds * 1000, now: () => c.ms };
  return c;
}

function verifier(now: () => number, options: Partial<ConstructorParameters<typeof DpopVerifier>[0]> = {}) {
  return new DpopVerifier({ algorithms: ['ES256'], maxAgeSeconds: 60, clockSkewSeconds: 5, replayCacheSize: 1000, now, ...options });
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AgentwardError) return err.code;
    throw err;
  }
  return 'OK';
}

describe('RFC 9449 published values', () => {
  test('§6.1: the example key thumbprint', async () => {
    const jwk: JWK = { kty: 'EC', x: 'l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs', y: '9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA', crv: 'P-256' };
    expect(await calculateJwkThumbprint(jwk, 'sha256')).toBe('0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I');
  });
  test('§7.1: ath of the example access token', () => {
    expect(ath('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe('fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo');
  });
  test('Fig. 13: the published resource proof verifies at its own time, and is refused as stale today', async () => {
    const published =
      'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA';
    const request = { method: 'GET', uri: URI, accessToken: 'Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU' };
    const atItsTime = await verifier(clock(1562262618).now).verify(published, request);
    expect(atItsTime.jkt).toBe('0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I');
    expect(await code(verifier(Date.now).verify(published, request))).toBe('ERR_DPOP_PROOF_EXPIRED');
  });
  test('Fig. 2: the token-endpoint proof is refused at a resource (other htm/htu, no ath)', async () => {
    const tokenEndpointProof =
      'eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg';
    const v = verifier(clock(1562262616).now);
    expect(await code(v.verify(tokenEndpointProof, { method: 'GET', uri: URI, accessToken: TOKEN }))).toBe('ERR_DPOP_PROOF_METHOD');
    expect(await code(v.verify(tokenEndpointProof, { method: 'POST', uri: URI, accessToken: TOKEN }))).toBe('ERR_DPOP_PROOF_URI');
    expect(await code(v.verify(tokenEndpointProof, { method: 'POST', uri: 'https://server.example.com/token', accessToken: TOKEN }))).toBe('ERR_DPOP_PROOF_ATH');
  });
});

describe('replay cache', () => {
  test('a proof id is remembered only after commit, then refused', async () => {
    const c = clock();
    const v = verifier(c.now);
    const key = await proofKey();
    const p = await proof(key, { htm: 'GET', htu: URI, accessToken: TOKEN, claims: { iat: c.ms / 1000 } });
    await v.verify(p, { method: 'GET', uri: URI, accessToken: TOKEN }); // not committed (say the binding failed)
    const ok = await v.verify(p, { method: 'GET', uri: URI, accessToken: TOKEN });
    await ok.commit();
    // The proof still verifies (the replay check is the claim, made once every credential holds);
    // its claim is refused.
    const again = await v.verify(p, { method: 'GET', uri: URI, accessToken: TOKEN });
    expect(await code(again.commit())).toBe('ERR_DPOP_REPLAYED');
  });

  test('two requests racing with the same proof: exactly one claim wins', async () => {
    const c = clock();
    const v = verifier(c.now);
    const p = await proof(await proofKey(), { htm: 'GET', htu: URI, accessToken: TOKEN, claims: { iat: c.ms / 1000 } });
    const [x, y] = await Promise.all([v.verify(p, { method: 'GET', uri: URI, accessToken: TOKEN }), v.verify(p, { method: 'GET', uri: URI, accessToken: TOKEN })]);
    expect((await Promise.all([code(x.commit()), code(y.commit())])).sort()).toEqual(['ERR_DPOP_REPLAYED', 'OK']);
  });

  test('memory stays bounded under a flood of unique proofs, and no forgotten proof can be replayed', async () => {
    const c = clock();
    const v = verifier(c.now, { replayCacheSize: 50 });
    const key = await proofKey();
    const request = { method: 'GET', uri: URI, accessToken: TOKEN };
    const early = await proof(key, { htm: 'GET', htu: URI, accessToken: TOKEN, claims: { iat: c.ms / 1000 } });
    await (await v.verify(early, request)).commit();
    // 500 unique proofs over 50 s, all inside the 70 s window: ten times the capacity. (Proofs
    // created in the same second as a forgotten one are refused too, so the flood advances the
    // clock every 10 proofs, below the capacity per second.)
    for (let i = 0; i < 500; i++) {
      if (i % 10 === 0) c.ms += 1000;
      const p = await proof(key, { htm: 'GET', htu: URI, accessToken: TOKEN, claims: { iat: c.ms / 1000 } });
      await (await v.verify(p, request)).commit();
      expect(v.replayCacheEntries).toBeLessThanOrEqual(50);
    }
    // The early proof's id was forgotten; it is still inside the time window, but refused.
    expect(await code(v.verify(early, request))).toBe('ERR_DPOP_PROOF_EXPIRED');
    // A proof created after the forgotten ones is still accepted.
    c.ms += 1000;
    const fresh = await proof(key, { htm: 'GET', htu: URI, accessToken: TOKEN, claims: { iat: c.ms / 1000 } });
    expect(await code(v.verify(fresh, request))).toBe('OK');
  });

  test('entries expire with the window: the cache does not grow over time', async () => {
    const c = clock();
    const v = verifier(c.now, { replayCacheSize: 1000 });
    const key = await proofKey();
    for (let i = 0; i < 30; i++) {
      const p = await proof(key, { htm: 'GET', htu: URI, accessToken: TOKEN, claims: { iat: c.ms / 1000 } });
      await (await v.verify(p, { method: 'GET', uri: URI, accessToken: TOKEN })).commit();
      c.ms += 10_000;
    }
    // Window: maxAge 60 s + 2 × skew 5 s = 70 s and one proof every 10 s: only the last 7 are live.
    expect(v.replayCacheEntries).toBe(7);
  });
});

describe('nonces (RFC 9449 §9)', () => {
  test('the current and the previous nonce are accepted, older ones and forgeries are not', async () => {
    const c = clock();
    const nonces = new DpopNonces({ lifetimeMs: 300_000, now: c.now });
    const first = nonces.current();
    expect(nonces.check(first)).toBe('current');
    c.ms += 300_000;
    expect(nonces.check(first)).toBe('previous');
    expect(nonces.current()).not.toBe(first);
    c.ms += 300_000;
    expect(nonces.check(first)).toBe('invalid');
    expect(nonces.check(`${first.split('.')[0]}.${'A'.repeat(22)}`)).toBe('invalid');
    expect(nonces.check(undefined)).toBe('invalid');
    // Another instance with another key does not accept ours.
    expect(new DpopNonces({ lifetimeMs: 300_000, now: c.now }).check(nonces.current())).toBe('invalid');
  });

  test('a proof with the previous nonce passes across the rotation and the response carries the new one', async () => {
    const c = clock();
    const nonces = new DpopNonces({ lifetimeMs: 300_000, now: c.now });
    const v = verifier(c.now, { nonces });
    const key = await proofKey();
    const old = nonces.current();
    c.ms += 300_000;
    const p = await proof(key, { htm: 'GET', htu: URI, accessToken: TOKEN, claims: { iat: c.ms / 1000, nonce: old } });
    const result = await v.verify(p, { method: 'GET', uri: URI, accessToken: TOKEN });
    expect(result.freshNonce).toBe(nonces.current());
    const missing = await proof(key, { htm: 'GET', htu: URI, accessToken: TOKEN, claims: { iat: c.ms / 1000 } });
    expect(await code(v.verify(missing, { method: 'GET', uri: URI, accessToken: TOKEN }))).toBe('ERR_DPOP_NONCE');
  });
});

describe('htu normalization (RFC 3986 §6.2.2, §6.2.3)', () => {
  test.each([
    ['HTTPS://Example.COM/a', 'https://example.com/a'],
    ['https://example.com:443/a', 'https://example.com/a'],
    ['https://example.com', 'https://example.com/'],
    ['https://example.com/%7euser', 'https://example.com/~user'],
    ['https://example.com/a%2fb', 'https://example.com/a%2Fb'],
    ['https://example.com/a/../b', 'https://example.com/b'],
    ['https://example.com/a?q=1#f', 'https://example.com/a'],
  ])('%s → %s', (input, expected) => {
    expect(normalizeHtu(input)).toBe(expected);
  });
  test('an unparsable value never equals anything parsable', () => {
    expect(normalizeHtu('not a uri')).not.toBe(normalizeHtu('https://example.com/'));
  });
});

describe('RFC 7638 thumbprints, computed synchronously', () => {
  test.each(['ES256', 'ES384', 'EdDSA', 'RS256'])('%s keys: the same value as jose', async (alg) => {
    const key = await proofKey(alg);
    expect(jwkThumbprint(key.publicJwk as Record<string, unknown>)).toBe(await calculateJwkThumbprint(key.publicJwk, 'sha256'));
  });
  test('a key without its required members is not a usable proof key', () => {
    expect(() => jwkThumbprint({ kty: 'EC', crv: 'P-256', x: 'abc' })).toThrow(AgentwardError);
    expect(() => jwkThumbprint({ kty: 'oct', k: 'abc' })).toThrow(AgentwardError);
  });
});
