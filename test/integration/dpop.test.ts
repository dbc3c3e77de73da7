/**
 * DPoP at the resource server (RFC 9449) through the real proxy: every DP-Nxx case of
 * docs/negative-cases.md (DP-Nxx) that concerns a JWT access token gets the right status, challenge and
 * code, and never reaches the upstream. Modes `allowed` (default), `required`, and server nonces.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { SignJWT, base64url } from 'jose';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, type RawResponse } from '../helpers/http.ts';
import { proof, proofKey, type ProofKey } from '../helpers/dpop.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const URI = 'https://tools.example.com/mcp/tools';
const METADATA = 'https://tools.example.com/.well-known/oauth-protected-resource/mcp';
let issuer: TestIssuer;
let upstream: TestUpstream;
let aw: RunningAgentward;
let key: ProofKey;
let token: string;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
  aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }], dpop: { algorithms: ['ES256', 'EdDSA'] } },
    policy: { source: DEFAULT_POLICY },
  });
  key = await proofKey();
  token = await issuer.mint({ cnf: { jkt: key.jkt } });
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([upstream?.close(), issuer?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

async function send(accessToken: string, dpop: string | string[] | undefined, init: { method?: string; path?: string; scheme?: string } = {}): Promise<RawResponse> {
  return rawRequest(`${aw.url}${init.path ?? '/mcp/tools'}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `${init.scheme ?? 'DPoP'} ${accessToken}`, ...(dpop !== undefined ? { dpop } : {}) },
  });
}

/** The DPoP challenge of a response, parsed (RFC 9449 §7.1). */
function dpopChallenge(res: RawResponse): Record<string, string> {
  const header = String(res.headers['www-authenticate']);
  const at = header.indexOf('DPoP ');
  expect(at, header).toBeGreaterThanOrEqual(0);
  const params: Record<string, string> = {};
  for (const m of header.slice(at + 5).matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) params[m[1]!] ??= m[2]!.replace(/\\(.)/g, '$1');
  return params;
}

function expectDpopError(res: RawResponse, code: string, error = 'invalid_dpop_proof') {
  expect(res.status, res.body).toBe(401);
  expect(res.json().code).toBe(code);
  expect(dpopChallenge(res)).toMatchObject({ algs: 'ES256 EdDSA', error, resource_metadata: METADATA });
  expect(upstream.seen).toHaveLength(0);
}

describe('accepted', () => {
  test('a DPoP-bound token with a valid proof is forwarded; the policy sees binding dpop; both credentials are stripped', async () => {
    const res = await send(token, await proof(key, { htm: 'GET', htu: URI, accessToken: token }));
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen[0]!.headers.authorization).toBeUndefined();
    expect(upstream.seen[0]!.headers.dpop).toBeUndefined();
  });

  test('DP-N11 positive: htu differing only by query and fragment, and by RFC 3986 normalization', async () => {
    for (const htu of [`${URI}?x=1`, `${URI}#frag`, 'HTTPS://TOOLS.example.com:443/mcp/%74ools']) {
      const res = await send(token, await proof(key, { htm: 'GET', htu, accessToken: token }), { path: '/mcp/tools?a=b' });
      expect(res.status, `${htu}: ${res.body}`).toBe(200);
    }
  });

  test('a POST proof for a POST with the write scope', async () => {
    const writer = await issuer.mint({ cnf: { jkt: key.jkt }, scope: 'tools.read tools.write' });
    expect((await send(writer, await proof(key, { htm: 'POST', htu: URI, accessToken: writer }), { method: 'POST' })).status).toBe(200);
  });

  test('an EdDSA proof key', async () => {
    const ed = await proofKey('EdDSA');
    const edToken = await issuer.mint({ cnf: { jkt: ed.jkt } });
    expect((await send(edToken, await proof(ed, { htm: 'GET', htu: URI, accessToken: edToken }))).status).toBe(200);
  });
});

describe('proof checks (RFC 9449 §4.3): 401 invalid_dpop_proof', () => {
  test('DP-N01 two DPoP headers', async () => {
    const p = await proof(key, { htm: 'GET', htu: URI, accessToken: token });
    expectDpopError(await send(token, [p, p]), 'ERR_DPOP_PROOF_MULTIPLE');
  });
  test('DP-N02 a proof that is not a JWT', async () => expectDpopError(await send(token, 'not-a-jwt'), 'ERR_DPOP_PROOF_MALFORMED'));
  test.each(['jti', 'htm', 'htu', 'iat'])('DP-N03 a proof without %s', async (claim) => {
    expectDpopError(await send(token, await proof(key, { htm: 'GET', htu: URI, accessToken: token, claims: { [claim]: undefined } })), 'ERR_DPOP_PROOF_MALFORMED');
  });
  test('DP-N04 typ jwt', async () => {
    expectDpopError(await send(token, await proof(key, { htm: 'GET', htu: URI, accessToken: token, header: { typ: 'jwt' } })), 'ERR_DPOP_PROOF_TYPE');
  });
  test('DP-N05 alg none', async () => {
    const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
    const unsigned = `${enc({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk })}.${enc({ jti: 'x', htm: 'GET', htu: URI, iat: Math.floor(Date.now() / 1000) })}.`;
    expectDpopError(await send(token, unsigned), 'ERR_DPOP_PROOF_ALGORITHM');
  });
  test('DP-N05 HS256', async () => {
    const hs = await new SignJWT({ jti: 'x', htm: 'GET', htu: URI, iat: Math.floor(Date.now() / 1000) })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.publicJwk } as never)
      .sign(new TextEncoder().encode('a-shared-secret-of-32-bytes-long!'));
    expectDpopError(await send(token, hs), 'ERR_DPOP_PROOF_ALGORITHM');
  });
  test('DP-N05 an asymmetric algorithm outside oauth.dpop.algorithms (PS256)', async () => {
    const ps = await proofKey('PS256');
    const psToken = await issuer.mint({ cnf: { jkt: ps.jkt } });
    expectDpopError(await send(psToken, await proof(ps, { htm: 'GET', htu: URI, accessToken: psToken })), 'ERR_DPOP_PROOF_ALGORITHM');
  });
  test('DP-N06 a bad signature (the jwk of another key)', async () => {
    const other = await proofKey();
    expectDpopError(await send(token, await proof(key, { htm: 'GET', htu: URI, accessToken: token, header: { jwk: other.publicJwk } })), 'ERR_DPOP_PROOF_SIGNATURE');
  });
  test('DP-N07 a jwk with the private key', async () => {
    const { exportJWK } = await import('jose');
    const privateJwk = await exportJWK(key.privateKey);
    expectDpopError(await send(token, await proof(key, { htm: 'GET', htu: URI, accessToken: token, header: { jwk: privateJwk } })), 'ERR_DPOP_PROOF_KEY');
  });
  test('DP-N08 no jwk', async () => {
    expectDpopError(await send(token, await proof(key, { htm: 'GET', htu: URI, accessToken: token, header: { jwk: undefined } })), 'ERR_DPOP_PROOF_KEY');
  });
  test('DP-N09 htm POST for a GET', async () => {
    expectDpopError(await send(token, await proof(key, { htm: 'POST', htu: URI, accessToken: token })), 'ERR_DPOP_PROOF_METHOD');
  });
  test.each([
    ['another path', 'https://tools.example.com/mcp/other'],
    ['another host', 'https://evil.example.com/mcp/tools'],
    ['another scheme', 'http://tools.example.com/mcp/tools'],
    ['another port', 'https://tools.example.com:8443/mcp/tools'],
    ['not a URI', 'mcp/tools'],
  ])('DP-N10 htu with %s', async (_n, htu) => {
    expectDpopError(await send(token, await proof(key, { htm: 'GET', htu, accessToken: token })), 'ERR_DPOP_PROOF_URI');
  });
  test('htu is built from configuration, not from the Host header', async () => {
    const res = await rawRequest(`${aw.url}/mcp/tools`, {
      headers: { host: 'evil.example.com', authorization: `DPoP ${token}`, dpop: await proof(key, { htm: 'GET', htu: 'http://evil.example.com/mcp/tools', accessToken: token }) },
    });
    expectDpopError(res, 'ERR_DPOP_PROOF_URI');
  });
  test.each([
    ['too old', -120],
    ['too far ahead', 120],
  ])('DP-N12 iat %s', async (_n, offset) => {
    expectDpopError(await send(token, await proof(key, { htm: 'GET', htu: URI, accessToken: token, claims: { iat: Math.floor(Date.now() / 1000) + offset } })), 'ERR_DPOP_PROOF_EXPIRED');
  });
  test('DP-N13 a proof replayed on a second request', async () => {
    const metric = async (pattern: RegExp) => Number(pattern.exec(await (await fetch(`${aw.adminUrl}/metrics`)).text())?.[1] ?? 0);
    const refusals = /^agentward_replay_refusals_total\{cache="dpop"\} (\d+)$/m;
    const before = await metric(refusals);
    const p = await proof(key, { htm: 'GET', htu: URI, accessToken: token });
    expect((await send(token, p)).status).toBe(200);
    upstream.seen.length = 0;
    expectDpopError(await send(token, p), 'ERR_DPOP_REPLAYED');
    // Counted as a replay refusal; the proof id is held by the replay cache (docs/operations.md, "Metrics").
    expect(await metric(refusals)).toBe(before + 1);
    expect(await metric(/^agentward_replay_cache_entries\{cache="dpop"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
  });
  test('DP-N16 no ath', async () => {
    expectDpopError(await send(token, await proof(key, { htm: 'GET', htu: URI, accessToken: token, claims: { ath: undefined } })), 'ERR_DPOP_PROOF_ATH');
  });
  test('DP-N17 ath of another token', async () => {
    const other = await issuer.mint({ cnf: { jkt: key.jkt } });
    expectDpopError(await send(token, await proof(key, { htm: 'GET', htu: URI, accessToken: other })), 'ERR_DPOP_PROOF_ATH');
  });
  test('DP-N21 the DPoP scheme without a DPoP header', async () => expectDpopError(await send(token, undefined), 'ERR_DPOP_PROOF_MISSING'));
});

describe('binding (RFC 9449 §6.1, §7.1, §7.2): 401 invalid_token', () => {
  test('DP-N18 a proof by a key other than cnf.jkt', async () => {
    const other = await proofKey();
    expectDpopError(await send(token, await proof(other, { htm: 'GET', htu: URI, accessToken: token })), 'ERR_DPOP_BINDING_MISMATCH', 'invalid_token');
    const res = await send(token, await proof(other, { htm: 'GET', htu: URI, accessToken: token }));
    expect(dpopChallenge(res).error_description).toBe('Invalid DPoP key binding.');
  });
  test('DP-N19 a DPoP-bound token sent as Bearer: the error is on the Bearer challenge', async () => {
    const res = await send(token, undefined, { scheme: 'Bearer' });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_DPOP_BOUND_TOKEN_AS_BEARER');
    expect(String(res.headers['www-authenticate'])).toMatch(/^Bearer error="invalid_token"/);
    expect(upstream.seen).toHaveLength(0);
  });
  test('DP-N20 the DPoP scheme with a token that has no cnf.jkt', async () => {
    const bearer = await issuer.mint();
    expectDpopError(await send(bearer, await proof(key, { htm: 'GET', htu: URI, accessToken: bearer })), 'ERR_DPOP_TOKEN_NOT_BOUND', 'invalid_token');
  });
  test('DP-N22 Authorization: Bearer and Authorization: DPoP together', async () => {
    const res = await rawRequest(`${aw.url}/mcp/tools`, { headers: { authorization: [`Bearer ${token}`, `DPoP ${token}`] } });
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('ERR_AUTHORIZATION_MULTIPLE');
  });
  test('a failed proof does not use up its jti: after a binding failure the same proof id is not remembered', async () => {
    const other = await proofKey();
    const p = await proof(other, { htm: 'GET', htu: URI, accessToken: token, claims: { jti: 'shared-jti' } });
    expect((await send(token, p)).json().code).toBe('ERR_DPOP_BINDING_MISMATCH');
    const good = await proof(key, { htm: 'GET', htu: URI, accessToken: token, claims: { jti: 'shared-jti' } });
    expect((await send(token, good)).status).toBe(200);
  });
});

describe('modes and nonces', () => {
  const extra: RunningAgentward[] = [];
  afterAll(async () => {
    await Promise.all(extra.map((a) => a.stop()));
  });
  async function start(dpop: Record<string, unknown>): Promise<RunningAgentward> {
    const a = await startAgentward({
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }], dpop },
      policy: { source: DEFAULT_POLICY },
    });
    extra.push(a);
    return a;
  }

  test('required: a Bearer token is refused with only a DPoP challenge; the metadata says DPoP is required', async () => {
    const a = await start({ mode: 'required' });
    const res = await rawRequest(`${a.url}/mcp/tools`, { headers: { authorization: `Bearer ${await issuer.mint()}` } });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_DPOP_REQUIRED');
    expect(String(res.headers['www-authenticate'])).toMatch(/^DPoP algs="[^"]+", error="invalid_token"/);
    expect(String(res.headers['www-authenticate'])).not.toContain('Bearer');
    const metadata = (await rawRequest(`${a.url}/.well-known/oauth-protected-resource`)).json();
    expect(metadata.dpop_bound_access_tokens_required).toBe(true);
    const ok = await rawRequest(`${a.url}/mcp/tools`, { headers: { authorization: `DPoP ${token}`, dpop: await proof(key, { htm: 'GET', htu: URI, accessToken: token }) } });
    expect(ok.status).toBe(200);
  });

  test('disabled: the DPoP scheme and bound tokens are refused, nothing is advertised', async () => {
    const a = await start({ mode: 'disabled' });
    const res = await rawRequest(`${a.url}/mcp/tools`, { headers: { authorization: `DPoP ${token}`, dpop: await proof(key, { htm: 'GET', htu: URI, accessToken: token }) } });
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('ERR_AUTHORIZATION_SCHEME');
    const bound = await rawRequest(`${a.url}/mcp/tools`, { headers: { authorization: `Bearer ${token}` } });
    expect(bound.json().code).toBe('ERR_TOKEN_BINDING_UNSUPPORTED');
    expect((await rawRequest(`${a.url}/.well-known/oauth-protected-resource`)).json().dpop_signing_alg_values_supported).toBeUndefined();
  });

  test('DP-N14/DP-N15 nonces: none or a wrong one → use_dpop_nonce with DPoP-Nonce; the given nonce is accepted', async () => {
    const a = await start({ nonce: { enabled: true } });
    const call = async (nonce: string | undefined) =>
      rawRequest(`${a.url}/mcp/tools`, { headers: { authorization: `DPoP ${token}`, dpop: await proof(key, { htm: 'GET', htu: URI, accessToken: token, claims: { nonce } }) } });
    const first = await call(undefined);
    expect(first.status).toBe(401);
    expect(first.json().code).toBe('ERR_DPOP_NONCE');
    expect(dpopChallenge(first)).toMatchObject({ error: 'use_dpop_nonce' });
    const nonce = first.headers['dpop-nonce'] as string;
    expect(nonce).toMatch(/^[a-z0-9]+\.[A-Za-z0-9_-]{22}$/);
    const wrong = await call(`${nonce.split('.')[0]}.AAAAAAAAAAAAAAAAAAAAAA`);
    expect(wrong.json().code).toBe('ERR_DPOP_NONCE');
    expect(wrong.headers['dpop-nonce']).toBe(nonce);
    expect((await call(nonce)).status).toBe(200);
  });
});
