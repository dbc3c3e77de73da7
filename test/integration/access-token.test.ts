/**
 * RFC 9068 access tokens through the real proxy: every AT-Nxx case of docs/negative-cases.md
 * that applies to JWTs gets the right status, challenge and code, and never reaches the
 * upstream. Tokens are signed by a real issuer whose JWK Set the proxy fetches over loopback.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { CompactSign, SignJWT, generateKeyPair, exportSPKI, base64url } from 'jose';
import { startIssuer, newKey, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, challengeParams, type RawResponse } from '../helpers/http.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const METADATA = 'https://tools.example.com/.well-known/oauth-protected-resource/mcp';
let issuer: TestIssuer;
let otherIssuer: TestIssuer;
let upstream: TestUpstream;
let aw: RunningAgentward;
/** Every response seen, to check at the end that no token was echoed. */
const responses: RawResponse[] = [];
const tokensSent: string[] = [];

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  otherIssuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
  aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: {
      issuers: [
        { issuer: issuer.issuer, jwksUri: issuer.jwksUri, algorithms: ['ES256', 'RS256'] },
        { issuer: otherIssuer.issuer, jwksUri: otherIssuer.jwksUri, algorithms: ['ES256'] },
      ],
      keys: { cooldown: '1s' },
    },
    policy: { source: DEFAULT_POLICY },
  });
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([upstream?.close(), issuer?.close(), otherIssuer?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

async function call(token: string | undefined, init: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: string } = {}) {
  if (token) tokensSent.push(token);
  const res = await rawRequest(`${aw.url}${init.path ?? '/mcp/tools'}`, {
    method: init.method ?? 'GET',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...init.headers },
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  responses.push(res);
  return res;
}

/** A 401 invalid_token with the given code, a Bearer challenge, and nothing forwarded. */
function expectInvalidToken(res: RawResponse, code: string) {
  expect(res.status, res.body).toBe(401);
  expect(res.json().code).toBe(code);
  expect(res.headers['content-type']).toBe('application/problem+json');
  const params = challengeParams(res.headers['www-authenticate']);
  expect(String(res.headers['www-authenticate'])).toMatch(/^Bearer /);
  expect(params.error).toBe('invalid_token');
  expect(params.resource_metadata).toBe(METADATA);
  expect(upstream.seen).toHaveLength(0);
}

function unsigned(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
  return `${enc(header)}.${enc(claims)}.`;
}

function nowClaims(extra: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: issuer.issuer, aud: RESOURCE, sub: 'user-42', client_id: 'research-bot', iat: now, exp: now + 300, jti: 'j1', scope: 'tools.read', ...extra };
}

describe('accepted', () => {
  test('a valid token is forwarded, the request id and forwarding headers are set', async () => {
    const res = await call(await issuer.mint(), { headers: { 'x-request-id': 'caller-id-1', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.example' } });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('caller-id-1');
    expect(upstream.seen).toHaveLength(1);
    const seen = upstream.seen[0]!.headers;
    expect(seen.authorization).toBeUndefined();
    expect(seen['x-request-id']).toBe('caller-id-1');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-host']).toBeUndefined();
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen.forwarded).toBe('for=127.0.0.1;proto=http');
  });

  test.each(['at+jwt', 'application/at+jwt', 'at+JWT', 'Application/AT+JWT'])('typ %s is an access token (RFC 7515 §4.1.9)', async (typ) => {
    const res = await call(await issuer.mint({}, { header: { typ } }));
    expect(res.status).toBe(200);
  });

  test('AT-N13 positive: an aud array that contains this resource', async () => {
    expect((await call(await issuer.mint({ aud: ['https://other.example.com', RESOURCE] }))).status).toBe(200);
  });

  test('a token from the second configured issuer is accepted', async () => {
    expect((await call(await otherIssuer.mint())).status).toBe(200);
  });
});

describe('AT-N01: no credentials', () => {
  test('401 with a Bearer challenge carrying resource_metadata and no error', async () => {
    const res = await call(undefined);
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_CREDENTIALS_MISSING');
    // RFC 9449 §7.2: both schemes are offered (oauth.dpop.mode allowed, the default), neither with an error.
    expect(res.headers['www-authenticate']).toBe(`Bearer resource_metadata="${METADATA}", DPoP algs="ES256 EdDSA PS256 RS256", resource_metadata="${METADATA}"`);
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('request syntax (RFC 6750 §2, §3.1): 400 invalid_request', () => {
  const cases: [string, () => Promise<RawResponse>, string][] = [
    ['AT-N22 two Authorization fields', async () => call(undefined, { headers: { authorization: [`Bearer ${await issuer.mint()}`, `Bearer ${await issuer.mint()}`] } }), 'ERR_AUTHORIZATION_MULTIPLE'],
    ['AT-N21 token in the query', async () => call(undefined, { path: `/mcp/tools?access_token=${await issuer.mint()}` }), 'ERR_TOKEN_IN_QUERY'],
    ['AT-N21 token in the query next to a header token', async () => call(await issuer.mint(), { path: '/mcp/tools?access_token=abc' }), 'ERR_TOKEN_IN_QUERY'],
    [
      'AT-N20 token in the header and in a form body',
      async () => call(await issuer.mint({ scope: 'tools.write' }), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&access_token=abc' }),
      'ERR_TOKEN_IN_BODY',
    ],
    ['Bearer with no token', async () => call(undefined, { headers: { authorization: 'Bearer' } }), 'ERR_AUTHORIZATION_MALFORMED'],
    ['Bearer with two tokens', async () => call(undefined, { headers: { authorization: 'Bearer a b' } }), 'ERR_AUTHORIZATION_MALFORMED'],
    ['Bearer with a character outside b64token', async () => call(undefined, { headers: { authorization: 'Bearer a"b' } }), 'ERR_AUTHORIZATION_MALFORMED'],
    ['Basic credentials', async () => call(undefined, { headers: { authorization: 'Basic dXNlcjpwYXNz' } }), 'ERR_AUTHORIZATION_SCHEME'],
    ['a DPoP proof next to a Bearer token', async () => call(await issuer.mint(), { headers: { dpop: 'eyJ.a.b' } }), 'ERR_DPOP_WITH_BEARER'],
  ];
  test.each(cases)('%s', async (_name, send, code) => {
    const res = await send();
    expect(res.status, res.body).toBe(400);
    expect(res.json().code).toBe(code);
    expect(challengeParams(res.headers['www-authenticate']).error).toBe('invalid_request');
    expect(upstream.seen).toHaveLength(0);
  });

  test('a form body without a token is forwarded byte for byte', async () => {
    const body = 'name=a%20b&x=%E2%9C%93';
    const res = await call(await issuer.mint({ scope: 'tools.write' }), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    expect(res.status).toBe(200);
    expect(upstream.seen[0]!.body).toBe(body);
  });

  test('a form body larger than listen.maxBodyBytes is 413', async () => {
    const res = await call(await issuer.mint({ scope: 'tools.write' }), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `a=${'x'.repeat(1048577)}` });
    expect(res.status).toBe(413);
    expect(res.json().code).toBe('ERR_BODY_TOO_LARGE');
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('token validation (RFC 9068 §4): 401 invalid_token', () => {
  test('AT-N02 typ missing', async () => expectInvalidToken(await call(await issuer.mint({}, { header: { typ: undefined } })), 'ERR_TOKEN_TYPE'));
  test('AT-N03 typ JWT (an ID token)', async () => expectInvalidToken(await call(await issuer.mint({}, { header: { typ: 'JWT' } })), 'ERR_TOKEN_TYPE'));
  test.each(['dpop+jwt', 'wit+jwt', 'txntoken+jwt', 'wpt+jwt'])('AT-N04 typ %s', async (typ) => expectInvalidToken(await call(await issuer.mint({}, { header: { typ } })), 'ERR_TOKEN_TYPE'));

  test('AT-N05 alg none', async () => expectInvalidToken(await call(unsigned({ alg: 'none', typ: 'at+jwt' }, nowClaims())), 'ERR_TOKEN_ALGORITHM'));
  test('AT-N06 HS256 signed with the public key bytes', async () => {
    const pem = await exportSPKI((await generateKeyPair('RS256', { extractable: true })).publicKey);
    const token = await new SignJWT(nowClaims()).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: issuer.keys[0]!.kid }).sign(new TextEncoder().encode(pem));
    expectInvalidToken(await call(token), 'ERR_TOKEN_ALGORITHM');
  });
  test('AT-N07 an algorithm outside the issuer allow-list', async () => {
    const ps = await newKey('PS256');
    const token = await new SignJWT(nowClaims()).setProtectedHeader({ alg: 'PS256', typ: 'at+jwt', kid: ps.kid }).sign(ps.privateKey);
    expectInvalidToken(await call(token), 'ERR_TOKEN_ALGORITHM');
  });

  test('AT-N08 unknown kid, after one refresh', async () => {
    const stranger = await newKey('ES256');
    await new Promise((r) => setTimeout(r, 1100)); // past oauth.keys.cooldown since the last fetch
    const hits = issuer.jwksHits();
    expectInvalidToken(await call(await issuer.mint({}, { key: stranger })), 'ERR_TOKEN_KEY_UNKNOWN');
    expect(issuer.jwksHits()).toBe(hits + 1);
  });
  test("AT-N09 a key from another issuer's JWK Set", async () => {
    expectInvalidToken(await call(await issuer.mint({}, { key: otherIssuer.keys[0]! })), 'ERR_TOKEN_KEY_UNKNOWN');
  });
  test('a forged signature (right kid, wrong key)', async () => {
    const forger = await newKey('ES256', issuer.keys[0]!.kid);
    expectInvalidToken(await call(await issuer.mint({}, { key: forger })), 'ERR_TOKEN_SIGNATURE');
  });

  test.each([
    ['another issuer', 'https://evil.example.com'],
    ['a trailing slash', `ISSUER/`],
    ['no iss', undefined],
  ])('AT-N10 iss: %s', async (_n, iss) => {
    expectInvalidToken(await call(await issuer.mint({ iss: iss === 'ISSUER/' ? `${issuer.issuer}/` : iss })), 'ERR_TOKEN_ISSUER');
  });

  test.each([
    ['AT-N11 missing', undefined],
    ['AT-N12 another resource', 'https://other.example.com/mcp'],
    ['AT-N13 an array without us', ['https://a.example.com', 'https://b.example.com']],
    ['AT-N14 equal only after case-folding', 'https://TOOLS.example.com/mcp'],
    ['AT-N14 equal only with a trailing slash', `${RESOURCE}/`],
    ['AT-N28 minted for another MCP server', 'https://tools.example.com/other-mcp'],
  ])('aud %s', async (_n, aud) => expectInvalidToken(await call(await issuer.mint({ aud })), 'ERR_TOKEN_AUDIENCE'));

  test('AT-N15 exp passed', async () => expectInvalidToken(await call(await issuer.mint({ exp: Math.floor(Date.now() / 1000) - 120 })), 'ERR_TOKEN_EXPIRED'));
  test('AT-N15 exp missing', async () => expectInvalidToken(await call(await issuer.mint({ exp: undefined })), 'ERR_TOKEN_CLAIM_MISSING'));
  test('AT-N16 nbf in the future', async () => expectInvalidToken(await call(await issuer.mint({ nbf: Math.floor(Date.now() / 1000) + 600 })), 'ERR_TOKEN_NOT_YET_VALID'));
  test('AT-N17 iat far in the future', async () => expectInvalidToken(await call(await issuer.mint({ iat: Math.floor(Date.now() / 1000) + 600 })), 'ERR_TOKEN_ISSUED_IN_FUTURE'));
  test('clock skew: exp 10 s ago is still accepted (oauth.clockSkew 30s)', async () => {
    expect((await call(await issuer.mint({ exp: Math.floor(Date.now() / 1000) - 10 }))).status).toBe(200);
  });
  test.each(['sub', 'client_id', 'iat', 'jti'])('AT-N18 missing %s (RFC 9068 §2.2)', async (claim) => {
    expectInvalidToken(await call(await issuer.mint({ [claim]: undefined })), 'ERR_TOKEN_CLAIM_MISSING');
  });

  test('AT-N23 an encrypted (JWE) token', async () => {
    expectInvalidToken(await call('eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d'), 'ERR_TOKEN_ENCRYPTED');
  });
  test.each([{ 'x5t#S256': 'abc' }, { unknown: 1 }])('AT-N24 cnf %j is never downgraded to bearer', async (cnf) => {
    expectInvalidToken(await call(await issuer.mint({ cnf })), 'ERR_TOKEN_BINDING_UNSUPPORTED');
  });
  test('DP-N19 a DPoP-bound token (cnf.jkt) sent as Bearer', async () => {
    expectInvalidToken(await call(await issuer.mint({ cnf: { jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' } })), 'ERR_DPOP_BOUND_TOKEN_AS_BEARER');
  });
  test('a cnf.jkt that is not a SHA-256 thumbprint', async () => expectInvalidToken(await call(await issuer.mint({ cnf: { jkt: 'abc' } })), 'ERR_TOKEN_CLAIM_INVALID'));
  test('a token that is not a JWT', async () => expectInvalidToken(await call('not-a-jwt'), 'ERR_TOKEN_MALFORMED'));
  test('a header that is not JSON', async () => expectInvalidToken(await call('bm90anNvbg.e30.c2ln'), 'ERR_TOKEN_MALFORMED'));
  test('an unknown crit header parameter (RFC 7515 §4.1.11)', async () => {
    const key = issuer.keys[0]!;
    const token = await new CompactSign(new TextEncoder().encode(JSON.stringify(nowClaims())))
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', crit: ['urn:example:ext'], 'urn:example:ext': true })
      .sign(key.privateKey, { crit: { 'urn:example:ext': true } });
    expectInvalidToken(await call(token), 'ERR_TOKEN_MALFORMED');
  });
  test('scope that is not a string', async () => expectInvalidToken(await call(await issuer.mint({ scope: ['tools.read'] })), 'ERR_TOKEN_CLAIM_INVALID'));
  test('RAR-N01 authorization_details that is not an array of typed objects', async () => {
    expectInvalidToken(await call(await issuer.mint({ authorization_details: [{ actions: ['read'] }] })), 'ERR_TOKEN_CLAIM_INVALID');
  });
});

describe('delegation (RFC 8693 §4.1)', () => {
  test('ACT-N02 an act claim that is a string rejects the token', async () => {
    expectInvalidToken(await call(await issuer.mint({ act: 'spiffe://agents.example.com/planner' })), 'ERR_TOKEN_CLAIM_INVALID');
  });
  test('a chain longer than oauth.maxDelegationDepth (4) is refused with its own code', async () => {
    let act: Record<string, unknown> | undefined;
    for (let i = 5; i >= 1; i--) act = { sub: `agent-${i}`, ...(act ? { act } : {}) };
    expectInvalidToken(await call(await issuer.mint({ act })), 'ERR_DELEGATION_TOO_DEEP');
  });
  test('ACT-N03 act.exp in the past does not affect the token', async () => {
    expect((await call(await issuer.mint({ act: { sub: 'planner', exp: 1 } }))).status).toBe(200);
  });
});

describe('policy deny (RFC 6750 §3.1)', () => {
  test('AT-N19 insufficient scope is 403 insufficient_scope with the scope needed', async () => {
    const res = await call(await issuer.mint({ scope: 'tools.read' }), { method: 'POST' });
    expect(res.status).toBe(403);
    expect(res.json().code).toBe('ERR_POLICY_INSUFFICIENT_SCOPE');
    const params = challengeParams(res.headers['www-authenticate']);
    expect(params).toMatchObject({ error: 'insufficient_scope', scope: 'tools.write', resource_metadata: METADATA });
    expect(res.json().reason).toBeUndefined(); // policy.exposeReason is off by default
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('protected resource metadata (RFC 9728)', () => {
  test.each(['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource'])('served at %s with the resource byte for byte', async (path) => {
    const res = await call(undefined, { path });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json()).toEqual({
      resource: RESOURCE,
      bearer_methods_supported: ['header'],
      dpop_signing_alg_values_supported: ['ES256', 'EdDSA', 'PS256', 'RS256'],
      dpop_bound_access_tokens_required: false,
    });
    expect(upstream.seen).toHaveLength(0);
  });
  test('POST to the metadata is 405', async () => {
    const res = await call(undefined, { method: 'POST', path: '/.well-known/oauth-protected-resource' });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });
});

describe('the audit trail and logs', () => {
  test('every request above has one audit record, and no token appears in any response, log line or audit record', async () => {
    // One more request so the audit file has been flushed past everything above.
    await call(await issuer.mint());
    await new Promise((r) => setTimeout(r, 200));
    const audit = aw.audit();
    expect(audit.length).toBe(responses.length);
    expect(new Set(audit.map((r) => r.requestId)).size).toBe(audit.length);
    const everything = [aw.logs(), JSON.stringify(audit), ...responses.map((r) => JSON.stringify(r.headers) + r.body)].join('\n');
    for (const token of tokensSent) {
      // The signature part alone is enough to identify a token.
      const signature = token.split('.')[2] ?? token;
      if (signature.length > 8) expect(everything.includes(signature), 'a token leaked').toBe(false);
    }
  });
});
