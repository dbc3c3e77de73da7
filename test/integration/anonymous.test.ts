/**
 * Public routes decided by the policy (issue 13 item 2), through the real proxy: with
 * `oauth.anonymous: policy` a request that presents no credential at all reaches the policy with
 * `subject` and `agent` null and `credentials.presented` empty. The policy here allows only
 * `GET /public` and the MCP `initialize` call that way. A denied anonymous request gets the same
 * 401 and challenge (RFC 6750 §3.1, RFC 9728 §5.1) as a missing credential without the setting;
 * a request that presents anything is verified and refused if that fails, never anonymous.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { join } from 'node:path';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { DEFAULT_POLICY, REPO, startAgentward, type RunningAgentward } from '../helpers/agentward.ts';
import { challengeParams, rawRequest, type RawResponse } from '../helpers/http.ts';

const RESOURCE = 'https://tools.example.com/';
const POLICY = join(REPO, 'test/fixtures/policies/hygiene');
let issuer: TestIssuer;
let upstream: TestUpstream;
/** Today's behaviour: oauth.anonymous refuse (the default). */
let off: RunningAgentward;
let on: RunningAgentward;
/** oauth.anonymous: policy with the repository's default policy, which stays closed. */
let onDefaultPolicy: RunningAgentward;
/** oauth.anonymous: policy in shadow mode. */
let onShadow: RunningAgentward;
let token: string;
/** The answer to a request without credentials when anonymous requests are refused. */
let missing: RawResponse;

function start(extra: { anonymous?: 'policy'; policy?: string; mode?: 'shadow' } = {}): Promise<RunningAgentward> {
  return startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE, authorizationServers: [issuer.issuer] },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }], ...(extra.anonymous ? { anonymous: extra.anonymous } : {}) },
    mcp: { paths: ['/mcp'] },
    policy: { source: extra.policy ?? POLICY, ...(extra.mode ? { mode: extra.mode } : {}) },
  });
}

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
  [off, on, onDefaultPolicy, onShadow] = await Promise.all([
    start(),
    start({ anonymous: 'policy' }),
    start({ anonymous: 'policy', policy: DEFAULT_POLICY }),
    start({ anonymous: 'policy', mode: 'shadow' }),
  ]);
  token = await issuer.mint({ scope: 'tools.read' });
  missing = await rawRequest(`${off.url}/public`);
});
afterAll(async () => {
  await Promise.all([off, on, onDefaultPolicy, onShadow].map((aw) => aw?.stop()));
  await Promise.all([upstream?.close(), issuer?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

/** The answer to a missing credential: 401, the plain challenges (no `error`), `resource_metadata`. */
function expectMissingCredential(res: RawResponse): void {
  expect(res.status).toBe(401);
  expect(res.json().code).toBe('ERR_CREDENTIALS_MISSING');
  expect(res.headers['www-authenticate']).toEqual(missing.headers['www-authenticate']);
  expect(res.headers['www-authenticate']).toMatch(/^Bearer resource_metadata="[^"]+"/);
  expect(challengeParams(res.headers['www-authenticate']).error).toBeUndefined();
}

describe('oauth.anonymous: refuse (the default)', () => {
  test('a request without credentials is 401 before the policy, even on a path the policy would allow', async () => {
    expect(missing.status).toBe(401);
    expect(missing.json().code).toBe('ERR_CREDENTIALS_MISSING');
    expect(challengeParams(missing.headers['www-authenticate']).resource_metadata).toBe('https://tools.example.com/.well-known/oauth-protected-resource');
    expect(upstream.seen).toHaveLength(0);
    const record = off.audit().at(-1)!;
    expect(record).toMatchObject({ decision: 'deny', reason: null, code: 'ERR_CREDENTIALS_MISSING' });
  });
});

describe('oauth.anonymous: policy', () => {
  test('the policy allows GET /public: forwarded (200), with subject and agent null and nothing presented', async () => {
    const res = await rawRequest(`${on.url}/public`);
    expect(res.status).toBe(200);
    expect(upstream.seen).toHaveLength(1);
    expect(JSON.parse(upstream.seen[0]!.headers['x-policy-anonymous'] as string)).toEqual({ subject: null, agent: null, presented: [] });
  });

  test('the audit record of an anonymous request: allow, subject, agent and token null', async () => {
    await rawRequest(`${on.url}/public?audited=1`);
    const record = on.audit().at(-1)!;
    expect(record).toMatchObject({ decision: 'allow', status: 200, code: null, subject: null, agent: null, token: null, delegation: [], action: { method: 'GET', path: '/public' } });
  });

  test('the policy denies another path: 401 with the same challenge as a missing credential, not 403; nothing forwarded', async () => {
    const res = await rawRequest(`${on.url}/private`);
    expectMissingCredential(res);
    expect(upstream.seen).toHaveLength(0);
    const record = on.audit().at(-1)!;
    // The audit record tells it from a refusal before the policy: the policy's reason is there.
    expect(record).toMatchObject({ decision: 'deny', status: 401, code: 'ERR_CREDENTIALS_MISSING', reason: 'no rule allowed the request', subject: null, agent: null });
  });

  test('a policy deny of another method on the public path is the same 401', async () => {
    expectMissingCredential(await rawRequest(`${on.url}/public`, { method: 'DELETE' }));
  });

  test('an invalid token is never downgraded to anonymous: 401 invalid_token, even on /public', async () => {
    const expired = await issuer.mint({ exp: Math.floor(Date.now() / 1000) - 3600 });
    const res = await rawRequest(`${on.url}/public`, { headers: { authorization: `Bearer ${expired}` } });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_TOKEN_EXPIRED');
    expect(challengeParams(res.headers['www-authenticate']).error).toBe('invalid_token');
    expect(upstream.seen).toHaveLength(0);
  });

  test('a malformed Authorization header is refused as today (400), not anonymous', async () => {
    const res = await rawRequest(`${on.url}/public`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('ERR_AUTHORIZATION_SCHEME');
  });

  test.each([
    ['Txn-Token', { 'txn-token': 'eyJhbGciOiJFUzI1NiJ9.e30.sig' }],
    ['Signature without a workload section', { 'signature-input': 'sig1=("@method");created=1', signature: 'sig1=:AAAA:' }],
    ['Client-Cert', { 'client-cert': ':Zm9yZ2Vk:' }],
    ['Proxy-Authorization', { 'proxy-authorization': 'Basic dXNlcjpwYXNz' }],
  ])('a request presenting a %s is not anonymous: refused as without the setting (401 missing credential)', async (_name, headers) => {
    const res = await rawRequest(`${on.url}/public`, { headers });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_CREDENTIALS_MISSING');
    expect(upstream.seen).toHaveLength(0);
    expect(on.audit().at(-1)!.reason).toBeNull(); // refused before the policy
  });

  test('a Workload-Identity-Token without a workload section is refused as today, not anonymous', async () => {
    const res = await rawRequest(`${on.url}/public`, { headers: { 'workload-identity-token': 'eyJhbGciOiJFUzI1NiJ9.e30.sig' } });
    expect(res.json().code).toBe('ERR_WORKLOAD_UNSUPPORTED');
    expect(upstream.seen).toHaveLength(0);
  });

  test('a DPoP proof without a token is refused as today (400), not anonymous', async () => {
    const res = await rawRequest(`${on.url}/public`, { headers: { dpop: 'eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.sig' } });
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('ERR_DPOP_WITH_BEARER');
  });

  test('a valid token still works as before on the same paths', async () => {
    const res = await rawRequest(`${on.url}/private`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(JSON.parse(upstream.seen[0]!.headers['x-policy-anonymous'] as string).presented).toEqual(['access_token']);
  });

  test('MCP: an anonymous initialize the policy allows is forwarded; a tools/call it denies is a plain HTTP 401 with the challenge', async () => {
    const post = (body: unknown) =>
      rawRequest(`${on.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(body) });
    const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    expect(init.status).toBe(200);
    expect(upstream.seen).toHaveLength(1);
    // Twice: the second decision may come from the memo (src/policy/memo.ts), with the same answer.
    for (let i = 0; i < 2; i++) {
      const call = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'delete_repo', arguments: {} } });
      expectMissingCredential(call);
    }
    expect(upstream.seen).toHaveLength(1);
  });

  test('the setting is a relaxation, named at startup', () => {
    expect(on.logs()).toContain('oauth.anonymous is policy');
    expect(off.logs()).not.toContain('oauth.anonymous is policy');
  });
});

describe('oauth.anonymous: policy with the default policy', () => {
  test('the default policy stays closed: an anonymous request is 401 with the challenge', async () => {
    for (const path of ['/public', '/healthz', '/']) {
      const res = await rawRequest(`${onDefaultPolicy.url}${path}`);
      expect(res.status).toBe(401);
      expect(res.json().code).toBe('ERR_CREDENTIALS_MISSING');
      expect(challengeParams(res.headers['www-authenticate']).resource_metadata).toBeDefined();
    }
    expect(upstream.seen).toHaveLength(0);
    expect(onDefaultPolicy.audit().at(-1)!.reason).toBe('no access token');
  });
});

describe('oauth.anonymous: policy in shadow mode', () => {
  test('an anonymous request the policy denies is still refused (an authentication failure), not forwarded', async () => {
    const res = await rawRequest(`${onShadow.url}/private`);
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_CREDENTIALS_MISSING');
    expect(upstream.seen).toHaveLength(0);
    expect((await rawRequest(`${onShadow.url}/public`)).status).toBe(200);
  });
});
