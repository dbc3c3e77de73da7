/**
 * A real Ory Hydra 2.3.0 (its own process, `hydra serve all --dev`, in-memory SQLite; built once
 * by scripts/hydra.sh) in front of the real proxy, with the issuer profile `hydra` (issue 10).
 *
 * What Hydra 2.3.0 really issues (observed with this binary; the profile relies on it):
 * - JWT access tokens (STRATEGIES_ACCESS_TOKEN=jwt, or a client's `access_token_strategy: jwt`):
 *   header `{"alg":"RS256","kid":"<uuid>","typ":"JWT"}`: typ is always `JWT`, never `at+jwt`.
 *   Claims: `iss` exactly URLS_SELF_ISSUER as configured (no slash added or removed: with
 *   `http://host:port` it has none, with `http://host:port/` it keeps it), `aud` always an array
 *   (`[]` when the token request names no `audience`, even if the client has one registered),
 *   `client_id`, `sub` (the client id for client_credentials, the login subject for a code flow),
 *   `scp` an ARRAY of strings (no `scope` claim; a code flow's token also lists `openid` and
 *   `offline`), `iat`, `nbf`, `exp`, `jti` (a uuid), `ext: {}`. No `token_use`, no `typ` claim.
 * - ID tokens: header typ `JWT`, signed with another key set (`hydra.openid.id-token`) that the
 *   same /.well-known/jwks.json publishes; claims `iss`, `sub`, `aud: [<client id>]`, `at_hash`,
 *   `nonce` (when sent), `auth_time`, `rat`, `sid`, `jti`, `iat`, `exp`: no `client_id`, no `scp`.
 * - Refresh tokens are opaque (`ory_rt_<a>.<b>`, one dot) whatever the access-token strategy;
 *   opaque access tokens are `ory_at_<a>.<b>`.
 * - Introspection (admin API POST /admin/oauth2/introspect; it ignores any client
 *   authentication; the public API has no introspection endpoint):
 *   access token → `{"active":true,"scope":"tools.read","client_id":..,"sub":..,"exp","iat","nbf",
 *   "aud":[..],"iss":..,"token_type":"Bearer","token_use":"access_token"}` (scope a space-separated
 *   string here); refresh token → the same with `"token_use":"refresh_token"` and still
 *   `"token_type":"Bearer"` (so only token_use tells them apart); an ID token → `{"active":false}`.
 * - Key rotation: POST /admin/keys/hydra.jwt.access-token adds a key; JWKS lists it first and new
 *   client_credentials tokens carry its kid; the old key stays published.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startHydra, type Hydra, type HydraClient } from '../helpers/hydra.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, challengeParams } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://tools.example.com/mcp';
let hydra: Hydra;
let upstream: TestUpstream;
let aw: RunningAgentward; // the hydra profile, with introspection
let strict: RunningAgentward; // the same issuer with the default profile (rfc9068)
let ccBot: HydraClient;
let opaqueBot: HydraClient;
let codeApp: HydraClient;
let codeTokens: { access_token: string; refresh_token: string; id_token: string };

const header = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

beforeAll(async () => {
  [hydra, upstream] = await Promise.all([startHydra({ accessTokenStrategy: 'jwt' }), startUpstream()]);
  const rs = await hydra.createClientCredentialsClient('agentward-rs', { scope: '', audience: [] });
  ccBot = await hydra.createClientCredentialsClient('cc-bot', { scope: 'tools.read tools.write', audience: [RESOURCE] });
  opaqueBot = await hydra.createClientCredentialsClient('opaque-bot', { scope: 'tools.read tools.write', audience: [RESOURCE], accessTokenStrategy: 'opaque' });
  codeApp = await hydra.createAuthorizationCodeClient('code-app', { scope: 'openid offline tools.read tools.write', audience: [RESOURCE] });
  codeTokens = await hydra.authorizationCode(codeApp, { subject: 'user-7', scope: 'openid offline tools.read', audience: [RESOURCE] });
  process.env.TEST_HYDRA_INTROSPECTION_SECRET = rs.clientSecret;
  const common = {
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    policy: { source: DEFAULT_POLICY },
    forward: { identityHeaders: { 'X-User': 'subject.sub', 'X-Agent-Id': 'subject.clientId', 'X-Scopes': 'subject.scopes' } },
  };
  [aw, strict] = await Promise.all([
    startAgentward({
      ...common,
      oauth: {
        issuers: [
          {
            // Keys through discovery: Hydra serves /.well-known/openid-configuration.
            issuer: hydra.issuer,
            profile: 'hydra',
            introspection: {
              endpoint: hydra.introspectionEndpoint,
              clientId: rs.clientId,
              clientSecret: { fromEnv: 'TEST_HYDRA_INTROSPECTION_SECRET' },
              cacheTtl: '1s',
              negativeCacheTtl: '1s',
            },
          },
        ],
        keys: { cooldown: '1s' },
      },
    }),
    startAgentward({ ...common, oauth: { issuers: [{ issuer: hydra.issuer }] } }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([aw?.stop(), strict?.stop()]);
  await Promise.all([upstream?.close(), hydra?.stop()]);
});

beforeEach(() => {
  upstream.seen.length = 0;
});

const sent: string[] = [];
const call = (proxy: RunningAgentward, token: string, method = 'GET') => {
  sent.push(token);
  return rawRequest(`${proxy.url}/mcp/tools`, { method, headers: { authorization: `Bearer ${token}` } });
};

async function expectRefused(proxy: RunningAgentward, token: string, code: string) {
  const res = await call(proxy, token);
  expect(res.status, res.body).toBe(401);
  expect(res.json().code).toBe(code);
  expect(challengeParams(res.headers['www-authenticate']).error).toBe('invalid_token');
  expect(upstream.seen).toHaveLength(0);
  return res;
}

describe('Hydra JWT access tokens with the hydra profile', () => {
  test('a client_credentials token with scope tools.read is accepted: client_id and scp reach the policy', async () => {
    const { access_token: token } = await hydra.clientCredentials(ccBot, { scope: 'tools.read', audience: [RESOURCE] });
    expect(header(token).typ).toBe('JWT');
    expect(claims(token)).toMatchObject({ iss: hydra.issuer, client_id: 'cc-bot', scp: ['tools.read'], aud: [RESOURCE] });
    const res = await call(aw, token);
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen).toHaveLength(1);
    expect(upstream.seen[0]!.headers).toMatchObject({ 'x-agent-id': 'cc-bot', 'x-user': 'cc-bot', 'x-scopes': 'tools.read' });
    expect(upstream.seen[0]!.headers.authorization).toBeUndefined();
    const requestId = res.headers['x-request-id'];
    await waitFor(async () => aw.audit().some((r) => r.requestId === requestId), 'the audit record');
    expect(aw.audit().find((r) => r.requestId === requestId)).toMatchObject({ decision: 'allow', status: 200, subject: { iss: hydra.issuer, sub: 'cc-bot', clientId: 'cc-bot' } });
  });

  test('a write needs tools.write: 403 insufficient_scope', async () => {
    const { access_token: token } = await hydra.clientCredentials(ccBot, { scope: 'tools.read', audience: [RESOURCE] });
    const res = await call(aw, token, 'POST');
    expect(res.status, res.body).toBe(403);
    expect(challengeParams(res.headers['www-authenticate'])).toMatchObject({ error: 'insufficient_scope', scope: 'tools.write' });
    expect(upstream.seen).toHaveLength(0);
    const { access_token: writer } = await hydra.clientCredentials(ccBot, { scope: 'tools.read tools.write', audience: [RESOURCE] });
    expect((await call(aw, writer, 'POST')).status).toBe(200);
  });

  test('the access token of an authorization-code flow names the user and the client', async () => {
    const res = await call(aw, codeTokens.access_token);
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen[0]!.headers).toMatchObject({ 'x-agent-id': 'code-app', 'x-user': 'user-7' });
    expect(String(upstream.seen[0]!.headers['x-scopes']).split(' ')).toContain('tools.read');
  });

  test('a token without this resource in aud is refused', async () => {
    const { access_token: token } = await hydra.clientCredentials(ccBot, { scope: 'tools.read' });
    expect(claims(token).aud).toEqual([]);
    const res = await call(aw, token);
    expect(res.status, res.body).toBe(401);
    expect(res.json().code).toBe('ERR_TOKEN_AUDIENCE');
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('Hydra tokens that are not access tokens', () => {
  test('the refresh token sent as Bearer is refused (introspection says token_use refresh_token)', async () => {
    expect(await hydra.introspect(codeTokens.refresh_token)).toMatchObject({ active: true, token_use: 'refresh_token', aud: [RESOURCE] });
    await expectRefused(aw, codeTokens.refresh_token, 'ERR_TOKEN_NOT_ACCESS_TOKEN');
  });

  test('the ID token of the code flow sent as Bearer is refused by the confusion guard', async () => {
    expect(claims(codeTokens.id_token)).toMatchObject({ aud: ['code-app'], nonce: 'nonce-0123456789' });
    expect(claims(codeTokens.id_token).at_hash).toBeDefined();
    await expectRefused(aw, codeTokens.id_token, 'ERR_TOKEN_NOT_ACCESS_TOKEN');
  });
});

describe('Hydra opaque access tokens', () => {
  test('an opaque access token is accepted through the admin introspection endpoint', async () => {
    const { access_token: token } = await hydra.clientCredentials(opaqueBot, { scope: 'tools.read', audience: [RESOURCE] });
    expect(token.startsWith('ory_at_')).toBe(true);
    const res = await call(aw, token);
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen[0]!.headers).toMatchObject({ 'x-agent-id': 'opaque-bot', 'x-user': 'opaque-bot', 'x-scopes': 'tools.read' });
    expect((await call(aw, token, 'POST')).status).toBe(403);
  });
});

describe('Hydra key rotation', () => {
  test('after a new access-token signing key, a token with the new kid is accepted; the old key still works', async () => {
    const { access_token: before } = await hydra.clientCredentials(ccBot, { scope: 'tools.read', audience: [RESOURCE] });
    expect((await call(aw, before)).status).toBe(200);
    const kid = await hydra.rotateAccessTokenKey();
    const { access_token: after } = await hydra.clientCredentials(ccBot, { scope: 'tools.read', audience: [RESOURCE] });
    expect(header(after).kid).toBe(kid);
    expect(header(after).kid).not.toBe(header(before).kid);
    // An unknown kid triggers a refetch at most once per cooldown (1 s here): let it pass.
    await new Promise((r) => setTimeout(r, 1100));
    const res = await call(aw, after);
    expect(res.status, res.body).toBe(200);
    expect((await call(aw, before)).status).toBe(200);
  });
});

describe('the default profile (rfc9068) stays strict', () => {
  test('the same Hydra JWT access token is refused ERR_TOKEN_TYPE', async () => {
    const { access_token: token } = await hydra.clientCredentials(ccBot, { scope: 'tools.read', audience: [RESOURCE] });
    const res = await expectRefused(strict, token, 'ERR_TOKEN_TYPE');
    expect(res.json().detail).toContain('typ "JWT"');
    expect(res.json().detail).toContain('profile');
  });
});

describe('no token leaks', () => {
  test('no Hydra token sent above appears in a log line or audit record', async () => {
    const everything = [aw.logs(), strict.logs(), JSON.stringify(aw.audit()), JSON.stringify(strict.audit())].join('\n');
    expect(sent.length).toBeGreaterThan(0);
    // The last dot-separated part (a JWT's signature, an ory_at_/ory_rt_ token's HMAC) identifies a token.
    for (const token of sent) expect(everything.includes(token.split('.').at(-1)!), 'a token leaked').toBe(false);
    expect(everything).not.toContain(process.env.TEST_HYDRA_INTROSPECTION_SECRET);
  });
});
