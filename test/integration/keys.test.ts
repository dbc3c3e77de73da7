/**
 * Issuer keys over real HTTP: discovery, rotation without restart, and outages. A JWK Set
 * endpoint that is down or hangs fails closed quickly (503 ERR_KEYS_UNAVAILABLE, never a hang),
 * and the proxy recovers by itself when the endpoint is back.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { waitFor } from '../helpers/wait.ts';
import { rawRequest } from '../helpers/http.ts';

const RESOURCE = 'https://tools.example.com/mcp';
let upstream: TestUpstream;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await upstream?.close();
});

async function setup(options: { discovery?: boolean; path?: string; keys?: Record<string, string> } = {}) {
  const issuer = await startIssuer({ audience: RESOURCE, ...(options.path ? { path: options.path } : {}) });
  const aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: {
      issuers: [options.discovery ? { issuer: issuer.issuer } : { issuer: issuer.issuer, jwksUri: issuer.jwksUri }],
      keys: { timeout: '500ms', cooldown: '1s', maxAge: '5m', ...options.keys },
    },
    policy: { source: DEFAULT_POLICY },
  });
  cleanup.push(() => issuer.close(), () => aw.stop());
  return { issuer, aw };
}

async function get(aw: RunningAgentward, token: string) {
  const started = Date.now();
  const res = await rawRequest(`${aw.url}/mcp`, { headers: { authorization: `Bearer ${token}` } });
  return { res, ms: Date.now() - started };
}

describe('discovery', () => {
  test('keys are found through RFC 8414 metadata at the path-inserted URL', async () => {
    const { issuer, aw } = await setup({ discovery: true, path: '/tenant-a' });
    expect(issuer.issuer).toMatch(/\/tenant-a$/);
    expect((await get(aw, await issuer.mint())).res.status).toBe(200);
    const ready = (await rawRequest(`${aw.adminUrl}/readyz`)).json();
    expect(ready.issuers).toEqual([{ issuer: issuer.issuer, ready: true, jwksUri: issuer.jwksUri, lastError: null }]);
  });
});

describe('rotation', () => {
  test('a token signed with a newly published key is accepted without restart; tokens of a removed key stop working', async () => {
    const { issuer, aw } = await setup();
    const oldToken = await issuer.mint();
    expect((await get(aw, oldToken)).res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100)); // past the refetch cooldown
    await issuer.rotate(); // the old key is no longer published
    const { res } = await get(aw, await issuer.mint());
    expect(res.status).toBe(200);
    // The refetch that found the new key also dropped the cached verification of the old token.
    const again = await get(aw, oldToken);
    expect(again.res.status).toBe(401);
    expect(again.res.json().code).toBe('ERR_TOKEN_KEY_UNKNOWN');
  });
});

describe('outages fail closed, quickly, and recover', () => {
  test.each(['down', 'hang'] as const)('a JWK Set endpoint that is %s at start', async (mode) => {
    const issuer = await startIssuer({ audience: RESOURCE });
    await issuer.setMode(mode);
    const aw = await startAgentward({
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }], keys: { timeout: '500ms', cooldown: '1s' } },
      policy: { source: DEFAULT_POLICY },
    });
    cleanup.push(() => issuer.close(), () => aw.stop());
    const token = await issuer.mint();
    const seenBefore = upstream.seen.length;

    expect((await rawRequest(`${aw.adminUrl}/readyz`)).status).toBe(503);
    // In /metrics: not loaded, no age yet, the failed fetch counted (docs/operations.md, "Metrics").
    const metrics = await (await fetch(`${aw.adminUrl}/metrics`)).text();
    const series = `{kind="issuer",name="${issuer.issuer}"}`;
    expect(metrics).toContain(`agentward_key_set_loaded${series} 0`);
    expect(metrics).not.toContain(`agentward_key_set_age_seconds${series}`);
    expect(Number(new RegExp(`^agentward_key_set_refresh_failures_total\\{kind="issuer",name="[^"]+"\\} (\\d+)$`, 'm').exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    const first = await get(aw, token);
    expect(first.res.status).toBe(503);
    expect(first.res.json().code).toBe('ERR_KEYS_UNAVAILABLE');
    expect(first.res.headers['retry-after']).toBeDefined();
    expect(first.ms).toBeLessThan(1500); // at most one fetch deadline (500 ms), never a hang
    expect(upstream.seen.length).toBe(seenBefore);

    await issuer.setMode('up');
    await waitFor(async () => (await rawRequest(`${aw.adminUrl}/readyz`)).status === 200, 'readiness after the endpoint is back');
    expect((await get(aw, token)).res.status).toBe(200);
    expect(aw.logs()).toContain('issuer keys could not be fetched');
    expect(await (await fetch(`${aw.adminUrl}/metrics`)).text()).toContain(`agentward_key_set_loaded${series} 1`);
  });

  test('an outage after keys were loaded keeps serving tokens of known keys; unknown kids fail fast', async () => {
    const { issuer, aw } = await setup();
    const token = await issuer.mint();
    expect((await get(aw, token)).res.status).toBe(200);
    await issuer.setMode('hang');
    expect((await get(aw, await issuer.mint())).res.status).toBe(200); // known kid, cached keys
    await new Promise((r) => setTimeout(r, 1100));
    const stranger = await issuer.rotate({ keep: true });
    const unknown = await get(aw, await issuer.mint({}, { key: stranger }));
    expect(unknown.res.status).toBe(503);
    expect(unknown.res.json().code).toBe('ERR_KEYS_UNAVAILABLE');
    expect(unknown.ms).toBeLessThan(1500);
    // Right after that failure, further unknown-kid requests do not wait at all.
    const fast = await get(aw, await issuer.mint({}, { key: stranger }));
    expect(fast.ms).toBeLessThan(200);
    await issuer.setMode('up');
  });
});
