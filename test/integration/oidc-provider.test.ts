/**
 * agentward against a real, separate authorization server: panva's oidc-provider (npm) in its
 * own process on loopback (test/helpers/oidc-provider.ts). Tokens come from its /token endpoint
 * through the client credentials grant with RFC 8707 resource indicators, so the JWT access
 * tokens, DPoP-bound tokens, opaque tokens, discovery documents and key rotation are the
 * server's own, not fixtures shaped after our reading of the RFCs.
 *
 * agentward is configured with the issuer only (no jwksUri), so it finds the key set through
 * discovery, and with the default policy (GET needs tools.read, anything else tools.write).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT, base64url } from 'jose';
import { createHash, randomUUID } from 'node:crypto';
import { startAuthorizationServer, type AuthorizationServer, type DpopKey } from '../helpers/oidc-provider.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, challengeParams, type RawResponse } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RESOURCE = 'https://tools.example.com/mcp';
/** A second resource server at the same authorization server; its tokens are opaque. */
const OPAQUE_RESOURCE = 'https://reports.example.com/api';
const METADATA = 'https://tools.example.com/.well-known/oauth-protected-resource/mcp';
/** oauth.keys.cooldown: short, so a rotation test need not wait 30 s for the unknown-kid refetch. */
const COOLDOWN_MS = 200;
const READ = { scope: 'tools.read', resource: RESOURCE };
const WRITE = { scope: 'tools.write', resource: RESOURCE };

let as: AuthorizationServer;
let upstream: TestUpstream;
let aw: RunningAgentward;

beforeAll(async () => {
  [as, upstream] = await Promise.all([startAuthorizationServer({ resource: RESOURCE, opaqueResource: OPAQUE_RESOURCE }), startUpstream()]);
  aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE, authorizationServers: [as.issuer], scopesSupported: ['tools.read', 'tools.write'] },
    oauth: {
      // No jwksUri: discovery (`auto`: RFC 8414 first, then OpenID Connect Discovery). The
      // default requiredClaims (RFC 9068 §2.2: iss exp aud sub client_id iat jti) hold, because
      // oidc-provider puts the client id in `sub` for client-credentials tokens.
      issuers: [{ issuer: as.issuer, algorithms: ['ES256', 'RS256'] }],
      keys: { cooldown: `${COOLDOWN_MS}ms` },
    },
    policy: { source: DEFAULT_POLICY },
    forward: { identityHeaders: { 'x-agent-client': 'subject.clientId', 'x-agent-sub': 'subject.sub' } },
  });
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([upstream?.close(), as?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

function call(authorization: string | undefined, init: { method?: string; path?: string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  return rawRequest(`${aw.url}${init.path ?? '/mcp/tools'}`, {
    method: init.method ?? 'GET',
    headers: { ...(authorization ? { authorization } : {}), ...init.headers },
  });
}
const bearer = (token: string, init: Parameters<typeof call>[1] = {}) => call(`Bearer ${token}`, init);

/** A refusal with the given status, code and OAuth error, and nothing forwarded. */
function expectRefused(res: RawResponse, status: number, code: string, oauthError?: string) {
  expect(res.status, res.body).toBe(status);
  expect(res.json().code).toBe(code);
  if (oauthError) expect(challengeParams(res.headers['www-authenticate']).error).toBe(oauthError);
  expect(challengeParams(res.headers['www-authenticate']).resource_metadata).toBe(METADATA);
  expect(upstream.seen).toHaveLength(0);
}

async function newDpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), alg: 'ES256' } };
}

const jwksFetches = () => as.requests().filter((r) => r.method === 'GET' && r.path === '/jwks').length;

describe('what the authorization server emits (the shape agentward is configured for)', () => {
  test('client credentials with a resource indicator: an RFC 9068 JWT, typ at+jwt, ES256, signed with the first key', async () => {
    const token = await as.token('research-bot', READ);
    const header = decodeProtectedHeader(token);
    expect(header).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: as.kids()[0] });
    const claims = decodeJwt(token);
    expect(Object.keys(claims).sort()).toEqual(['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub']);
    // No user: `sub` is the client id (RFC 9068 §2.2 allows it for client credentials).
    expect(claims).toMatchObject({ iss: as.issuer, aud: RESOURCE, sub: 'research-bot', client_id: 'research-bot', scope: 'tools.read' });
  });

  test('scope is limited to what the client is registered for', async () => {
    await expect(as.token('research-bot', WRITE)).rejects.toThrow(/invalid_scope/);
  });

  test('a DPoP proof at the token endpoint gives token_type DPoP and cnf.jkt, the RFC 7638 thumbprint of the proof key', async () => {
    const key = await newDpopKey();
    const response = await as.tokenResponse('ops-bot', { ...READ, dpop: key });
    expect(response.token_type).toBe('DPoP');
    expect(decodeJwt(response.access_token).cnf).toEqual({ jkt: await calculateJwkThumbprint(key.publicJwk, 'sha256') });
  });

  test('opaque tokens for the second resource, described by introspection (RFC 7662) to the resource server client', async () => {
    const opaque = await as.token('research-bot', { scope: 'tools.read', resource: OPAQUE_RESOURCE });
    expect(opaque.split('.')).toHaveLength(1);
    const introspection = await as.introspect(opaque);
    expect(introspection).toEqual({
      active: true,
      client_id: 'research-bot',
      iss: as.issuer,
      aud: OPAQUE_RESOURCE,
      scope: 'tools.read',
      token_type: 'Bearer',
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    // A DPoP-bound opaque token: cnf.jkt at the top level and token_type DPoP (RFC 9449 §6.2).
    const key = await newDpopKey();
    const bound = await as.token('research-bot', { scope: 'tools.read', resource: OPAQUE_RESOURCE, dpop: key });
    expect(await as.introspect(bound)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: await calculateJwkThumbprint(key.publicJwk, 'sha256') } });
    expect(await as.introspect('not-a-token-it-issued')).toEqual({ active: false });
  });
});

describe('discovery', () => {
  test('agentward found the key set through the RFC 8414 metadata (oauth-authorization-server, tried first)', async () => {
    const ready = await rawRequest(`${aw.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.json().issuers).toEqual([{ issuer: as.issuer, ready: true, jwksUri: as.metadata.jwks_uri, lastError: null }]);
    const paths = as.requests().map((r) => r.path);
    expect(paths).toContain('/.well-known/oauth-authorization-server');
    expect(paths).not.toContain('/.well-known/openid-configuration');
    expect(paths).toContain('/jwks');
  });

  test('discovery: openid-configuration uses the OpenID Connect document the server also publishes', async () => {
    const oidc = await startAgentward({
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: as.issuer, algorithms: ['ES256'], discovery: 'openid-configuration' }] },
      policy: { source: DEFAULT_POLICY, watch: false },
    });
    try {
      await waitFor(async () => as.requests().some((r) => r.path === '/.well-known/openid-configuration'), 'the OpenID Connect discovery request', 2000);
      const res = await rawRequest(`${oidc.url}/mcp/tools`, { headers: { authorization: `Bearer ${await as.token('research-bot', READ)}` } });
      expect(res.status, res.body).toBe(200);
    } finally {
      await oidc.stop();
    }
  });
});

describe('client credentials tokens through agentward', () => {
  test("research-bot's token (tools.read) is forwarded on GET, without the token, with its identity", async () => {
    const res = await bearer(await as.token('research-bot', READ));
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen).toHaveLength(1);
    const seen = upstream.seen[0]!.headers;
    expect(seen.authorization).toBeUndefined();
    expect(seen['x-agent-client']).toBe('research-bot');
    expect(seen['x-agent-sub']).toBe('research-bot');
  });

  test("research-bot's token is refused on POST: 403 insufficient_scope naming tools.write", async () => {
    const res = await bearer(await as.token('research-bot', READ), { method: 'POST' });
    expectRefused(res, 403, 'ERR_POLICY_INSUFFICIENT_SCOPE', 'insufficient_scope');
    expect(challengeParams(res.headers['www-authenticate']).scope).toBe('tools.write');
  });

  test("ops-bot's token (tools.write) is allowed on POST", async () => {
    const res = await bearer(await as.token('ops-bot', WRITE), { method: 'POST' });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.map((r) => r.method)).toEqual(['POST']);
  });

  test("ops-bot's token without a scope parameter carries no scope and is refused on GET", async () => {
    const token = await as.token('ops-bot', { resource: RESOURCE });
    expect(decodeJwt(token).scope).toBeUndefined();
    expectRefused(await bearer(token), 403, 'ERR_POLICY_INSUFFICIENT_SCOPE', 'insufficient_scope');
  });

  test('an opaque token (issued for the second resource) is refused: this agentward has no introspection', async () => {
    const opaque = await as.token('ops-bot', { scope: 'tools.read', resource: OPAQUE_RESOURCE });
    expect((await as.introspect(opaque)).active).toBe(true);
    expectRefused(await bearer(opaque), 401, 'ERR_TOKEN_MALFORMED', 'invalid_token');
  });
});

describe('step-up (RFC 9470) with tokens from the authorization server', () => {
  let strict: RunningAgentward;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-oidc-stepup-'));
    cpSync(join(REPO, 'policies', 'lib'), join(dir, 'lib'), { recursive: true });
    writeFileSync(
      join(dir, 'policy.rego'),
      `package agentward

import data.agentward.lib.stepup

default decision := {"allow": false, "reason": "needs a recent MFA login", "stepUp": {"acrValues": "mfa", "maxAge": 300}}

decision := {"allow": true} if {
	stepup.acr_in({"mfa"})
	stepup.authenticated_within(300)
}
`,
    );
    strict = await startAgentward({
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: as.issuer, algorithms: ['ES256', 'RS256'] }] },
      policy: { source: dir },
    });
  });
  afterAll(async () => {
    await strict?.stop();
  });

  test('a token without acr gets 401 insufficient_user_authentication with acr_values and max_age', async () => {
    const token = await as.token('research-bot', READ);
    const res = await rawRequest(`${strict.url}/mcp/tools`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
    expect(challengeParams(res.headers['www-authenticate'])).toMatchObject({ error: 'insufficient_user_authentication', acr_values: 'mfa', max_age: '300' });
    expect(upstream.seen).toHaveLength(0);
  });

  test('a token with acr mfa and a recent auth_time passes', async () => {
    const token = await as.token('mfa-bot', READ);
    expect(decodeJwt(token)).toMatchObject({ acr: 'mfa' });
    const res = await rawRequest(`${strict.url}/mcp/tools`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status, res.body).toBe(200);
  });
});

describe('opaque tokens through the authorization server\'s introspection endpoint (RFC 7662)', () => {
  let reports: RunningAgentward;
  beforeAll(async () => {
    process.env.OIDC_TEST_INTROSPECTION_SECRET = as.introspectionClient.secret;
    reports = await startAgentward({
      upstream: { url: upstream.url },
      resource: { id: OPAQUE_RESOURCE },
      oauth: {
        issuers: [
          {
            issuer: as.issuer,
            algorithms: ['ES256', 'RS256'],
            introspection: {
              endpoint: String(as.metadata.introspection_endpoint),
              clientId: as.introspectionClient.clientId,
              clientSecret: { fromEnv: 'OIDC_TEST_INTROSPECTION_SECRET' },
            },
          },
        ],
      },
      policy: { source: DEFAULT_POLICY },
    });
  });
  afterAll(async () => {
    await reports?.stop();
  });
  const reportsCall = (authorization: string, headers: Record<string, string> = {}) =>
    rawRequest(`${reports.url}/api/daily`, { headers: { authorization, ...headers } });

  test('an opaque client-credentials token is introspected and forwarded', async () => {
    const opaque = await as.token('research-bot', { scope: 'tools.read', resource: OPAQUE_RESOURCE });
    const res = await reportsCall(`Bearer ${opaque}`);
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen).toHaveLength(1);
  });

  test('an opaque token for the other resource is refused for its audience', async () => {
    // A JWT for RESOURCE is verified locally and refused (wrong aud); nothing goes to the AS.
    const jwt = await as.token('research-bot', READ);
    const res = await reportsCall(`Bearer ${jwt}`);
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_TOKEN_AUDIENCE');
    expect(upstream.seen).toHaveLength(0);
  });

  test('AT-N25 a token the AS does not know is inactive', async () => {
    const res = await reportsCall('Bearer not-a-token-the-as-issued');
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_TOKEN_INACTIVE');
    expect(upstream.seen).toHaveLength(0);
  });

  test('a DPoP-bound opaque token: refused as Bearer, forwarded with a proof by its key', async () => {
    const key = await newDpopKey();
    const bound = await as.token('research-bot', { scope: 'tools.read', resource: OPAQUE_RESOURCE, dpop: key });
    expect((await reportsCall(`Bearer ${bound}`)).json().code).toBe('ERR_DPOP_BOUND_TOKEN_AS_BEARER');
    const proofJwt = await new SignJWT({ jti: randomUUID(), htm: 'GET', htu: `${OPAQUE_RESOURCE.replace(/\/api$/, '')}/api/daily`, ath: base64url.encode(createHash('sha256').update(bound).digest()) })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk })
      .setIssuedAt()
      .sign(key.privateKey);
    const res = await reportsCall(`DPoP ${bound}`, { dpop: proofJwt });
    expect(res.status, res.body).toBe(200);
  });
});

describe('DPoP-bound tokens from the authorization server', () => {
  /** A proof for a request to agentward (RFC 9449 §4.2): htu is the resource's origin and the path. */
  async function resourceProof(key: DpopKey, method: string, path: string, token: string): Promise<string> {
    return new SignJWT({ jti: randomUUID(), htm: method, htu: `${new URL(RESOURCE).origin}${path}`, ath: base64url.encode(createHash('sha256').update(token).digest()) })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk })
      .setIssuedAt()
      .sign(key.privateKey);
  }

  test('RFC 9449 §7.2: a DPoP-bound token sent as Bearer is 401 ERR_DPOP_BOUND_TOKEN_AS_BEARER', async () => {
    const token = await as.token('ops-bot', { ...READ, dpop: await newDpopKey() });
    expectRefused(await bearer(token), 401, 'ERR_DPOP_BOUND_TOKEN_AS_BEARER', 'invalid_token');
  });
  test('with the DPoP scheme and a proof by the bound key it is forwarded, without the proof', async () => {
    const key = await newDpopKey();
    const token = await as.token('ops-bot', { scope: 'tools.read tools.write', resource: RESOURCE, dpop: key });
    const res = await call(`DPoP ${token}`, { method: 'POST', headers: { dpop: await resourceProof(key, 'POST', '/mcp/tools', token) } });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen).toHaveLength(1);
    expect(upstream.seen[0]!.headers.dpop).toBeUndefined();
    expect(upstream.seen[0]!.headers.authorization).toBeUndefined();
  });
  test('a proof by another key is 401 ERR_DPOP_BINDING_MISMATCH', async () => {
    const token = await as.token('ops-bot', { ...READ, dpop: await newDpopKey() });
    const res = await call(`DPoP ${token}`, { headers: { dpop: await resourceProof(await newDpopKey(), 'GET', '/mcp/tools', token) } });
    expect(res.status, res.body).toBe(401);
    expect(res.json().code).toBe('ERR_DPOP_BINDING_MISMATCH');
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('key rotation at the authorization server (agentward keeps running)', () => {
  test('a token signed with a new key, first in the set, is accepted after one key set refetch; tokens of the old key still are', async () => {
    const before = await as.token('research-bot', READ);
    const oldKid = decodeProtectedHeader(before).kid;
    expect((await bearer(before)).status).toBe(200);
    const fetches = jwksFetches();

    const kids = await as.rotateKeys();
    expect(kids[0]).not.toBe(oldKid);
    expect(kids).toContain(oldKid);
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 50)); // past the unknown-kid cooldown
    const after = await as.token('research-bot', READ);
    expect(decodeProtectedHeader(after).kid).toBe(kids[0]);

    const res = await bearer(after);
    expect(res.status, res.body).toBe(200);
    await waitFor(async () => jwksFetches() === fetches + 1, 'one key set refetch', 2000);
    expect((await bearer(before)).status).toBe(200);
    expect(upstream.seen).toHaveLength(3);
  });

  test('after a rotation that retires the old key, its tokens are refused (401 ERR_TOKEN_KEY_UNKNOWN) once agentward has the new set', async () => {
    const old = await as.token('research-bot', READ);
    expect((await bearer(old)).status).toBe(200); // verified and cached

    const kids = await as.rotateKeys({ keepOld: false });
    expect(kids).not.toContain(decodeProtectedHeader(old).kid);
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 50));
    expect((await bearer(await as.token('research-bot', READ))).status).toBe(200); // fetches the new set
    upstream.seen.length = 0;

    // The cache entry of the retired key was dropped with it.
    expectRefused(await bearer(old), 401, 'ERR_TOKEN_KEY_UNKNOWN', 'invalid_token');
  });
});

describe('the authorization server process', () => {
  test('wrote nothing to stderr (no provider warnings, no crashes)', () => {
    expect(as.stderr()).toBe('');
  });
});
