/**
 * Opaque access tokens through the real proxy (RFC 7662): a token that is not a JWT goes to the
 * configured issuer's introspection endpoint; the answer reaches the policy as the same subject a
 * JWT would give; AT-N25..AT-N27 and DP-N23 hold; the upstream never sees a refused request.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../helpers/introspection-server.ts';
import { rawRequest, challengeParams } from '../helpers/http.ts';
import { proof, proofKey } from '../helpers/dpop.ts';

const RESOURCE = 'https://tools.example.com/mcp';
let issuer: TestIssuer;
let upstream: TestUpstream;
let endpoint: IntrospectionServer;
let aw: RunningAgentward;

const now = () => Math.floor(Date.now() / 1000);
const active = (extra: Record<string, unknown> = {}) => ({ active: true, iss: issuer.issuer, aud: RESOURCE, sub: 'user-7', client_id: 'ops-bot', scope: 'tools.read', exp: now() + 300, ...extra });

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
  endpoint = await startIntrospectionServer({ issuer: issuer.issuer, auth: { method: 'client_secret_basic', clientId: 'agentward-rs', clientSecret: 's3cret' } });
  process.env.TEST_INTROSPECTION_SECRET = 's3cret';
  aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: {
      issuers: [
        {
          issuer: issuer.issuer,
          jwksUri: issuer.jwksUri,
          introspection: { endpoint: endpoint.endpoint, clientId: 'agentward-rs', clientSecret: { fromEnv: 'TEST_INTROSPECTION_SECRET' }, cacheTtl: '1s', negativeCacheTtl: '1s' },
        },
      ],
      keys: { timeout: '500ms' },
    },
    policy: { source: DEFAULT_POLICY },
    forward: { identityHeaders: { 'X-User': 'subject.sub', 'X-Agent-Id': 'subject.clientId' } },
  });
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([upstream?.close(), issuer?.close(), endpoint?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
  endpoint.mode = 'up';
});

const get = (token: string, headers: Record<string, string> = {}) => rawRequest(`${aw.url}/mcp/tools`, { headers: { authorization: `Bearer ${token}`, ...headers } });

describe('opaque tokens', () => {
  test('an active token is forwarded with the identity from the introspection answer; a JWT is still verified locally', async () => {
    endpoint.tokens.set('opaque-1', active());
    const res = await get('opaque-1');
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen[0]!.headers).toMatchObject({ 'x-user': 'user-7', 'x-agent-id': 'ops-bot' });
    expect(upstream.seen[0]!.headers.authorization).toBeUndefined();
    const calls = endpoint.calls();
    expect((await get(await issuer.mint())).status).toBe(200);
    expect(endpoint.calls()).toBe(calls); // the JWT never left the proxy
  });

  test('the answer is cached (by token hash) and the policy scope check applies', async () => {
    endpoint.tokens.set('opaque-2', active({ scope: 'tools.read' }));
    await get('opaque-2');
    const calls = endpoint.calls();
    expect((await get('opaque-2')).status).toBe(200);
    expect(endpoint.calls()).toBe(calls);
    const post = await rawRequest(`${aw.url}/mcp/tools`, { method: 'POST', headers: { authorization: 'Bearer opaque-2' } });
    expect(post.status).toBe(403);
    expect(challengeParams(post.headers['www-authenticate'])).toMatchObject({ error: 'insufficient_scope', scope: 'tools.write' });
  });

  test('AT-N25 an inactive token is 401 ERR_TOKEN_INACTIVE', async () => {
    const res = await get('unknown-token');
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_TOKEN_INACTIVE');
    expect(challengeParams(res.headers['www-authenticate']).error).toBe('invalid_token');
    expect(upstream.seen).toHaveLength(0);
  });

  test('an active token for another audience is refused', async () => {
    endpoint.tokens.set('opaque-other', active({ aud: 'https://other.example.com' }));
    const res = await get('opaque-other');
    expect(res.json().code).toBe('ERR_TOKEN_AUDIENCE');
    expect(upstream.seen).toHaveLength(0);
  });

  test.each(['error', 'hang', 'not-json'] as const)('AT-N26 an endpoint that answers %s fails closed with 503, quickly', async (mode) => {
    endpoint.mode = mode;
    const started = Date.now();
    const res = await get(`opaque-${mode}`);
    expect(res.status).toBe(503);
    expect(res.json().code).toBe('ERR_INTROSPECTION_UNAVAILABLE');
    expect(res.headers['retry-after']).toBeDefined();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(upstream.seen).toHaveLength(0);
  });

  test('AT-N27 an answer is never reused past the token exp', async () => {
    endpoint.tokens.set('opaque-short', active({ exp: now() + 1 }));
    expect((await get('opaque-short')).status).toBe(200);
    endpoint.tokens.set('opaque-short', { active: false });
    await new Promise((r) => setTimeout(r, 2100));
    const res = await get('opaque-short');
    expect(res.status).toBe(401);
  });

  test('DP-N23 token_type Bearer with cnf.jkt is DPoP-bound: refused as Bearer, accepted with a proof', async () => {
    const key = await proofKey();
    endpoint.tokens.set('opaque-bound', active({ token_type: 'Bearer', cnf: { jkt: key.jkt } }));
    const asBearer = await get('opaque-bound');
    expect(asBearer.json().code).toBe('ERR_DPOP_BOUND_TOKEN_AS_BEARER');
    const withProof = await rawRequest(`${aw.url}/mcp/tools`, {
      headers: { authorization: 'DPoP opaque-bound', dpop: await proof(key, { htm: 'GET', htu: 'https://tools.example.com/mcp/tools', accessToken: 'opaque-bound' }) },
    });
    expect(withProof.status, withProof.body).toBe(200);
  });

  test('the client secret authenticates the resource server; the token is never in a log line', async () => {
    const request = endpoint.requests.at(-1)!;
    expect(request.headers.authorization).toMatch(/^Basic /);
    expect(endpoint.authFailures()).toBe(0);
    expect(aw.logs()).not.toContain('opaque-1');
    expect(aw.logs()).not.toContain('s3cret');
  });
});

describe('metrics', () => {
  /** A family's value from /metrics on the admin listener (summed over its series matching `labels`). */
  async function metric(name: string, labels = ''): Promise<number> {
    const text = await (await fetch(`${aw.adminUrl}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      .filter((line) => line.includes(labels))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  }

  test('introspection calls are timed by outcome and cache hits counted (agentward_introspection_*)', async () => {
    const [ok, failed, hits] = await Promise.all([metric('agentward_introspection_duration_seconds_count', 'outcome="ok"'), metric('agentward_introspection_duration_seconds_count', 'outcome="error"'), metric('agentward_introspection_cache_hits_total')]);
    endpoint.tokens.set('opaque-metrics', active());
    expect((await get('opaque-metrics')).status).toBe(200);
    expect((await get('opaque-metrics')).status).toBe(200);
    endpoint.mode = 'error';
    expect((await get('opaque-metrics-error')).status).toBe(503);
    expect(await metric('agentward_introspection_duration_seconds_count', 'outcome="ok"')).toBe(ok + 1);
    expect(await metric('agentward_introspection_duration_seconds_count', 'outcome="error"')).toBe(failed + 1);
    expect(await metric('agentward_introspection_cache_hits_total')).toBe(hits + 1);
  });
});
