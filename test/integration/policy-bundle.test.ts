/**
 * Policy bundles from a bundle server (OPA "Bundle Service API"), end to end: the real agentward
 * polls a real loopback bundle server serving bundles built and signed by the real `opa build`.
 * A served bundle is picked up; a newer revision replaces it (behaviour and audit change); a
 * corrupt one is refused while the old revision keeps serving; an unchanged one is answered 304
 * and not reloaded; with policy.verification, only bundles signed by the configured key load.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, type RunningAgentward } from '../helpers/agentward.ts';
import { buildBundle, keyPairFiles, startBundleServer, withFile, writeFolder, type TestBundleServer } from '../helpers/bundle-server.ts';
import { waitFor } from '../helpers/wait.ts';
import { rawRequest } from '../helpers/http.ts';

const RESOURCE = 'https://tools.example.com/api';
/** A policy whose behaviour is its data: the methods it allows. */
const POLICY = `package agentward
import rego.v1
default decision := {"allow": false, "reason": "method not allowed"}
decision := {"allow": true} if input.request.method in data.methods
`;
const folder = (methods: string[]) => writeFolder({ 'agentward/decision.rego': POLICY, 'data.json': JSON.stringify({ methods }) });

let issuer: TestIssuer;
let upstream: TestUpstream;
const servers: TestBundleServer[] = [];
const running: RunningAgentward[] = [];

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
});
afterAll(async () => {
  await Promise.all(running.map((a) => a.stop()));
  await Promise.all([...servers.map((s) => s.close()), upstream?.close(), issuer?.close()]);
});

/** A bundle server of its own, started failing or serving, recorded for afterAll. */
async function bundleServer(serve: Buffer | number): Promise<TestBundleServer> {
  const server = await startBundleServer();
  servers.push(server);
  if (typeof serve === 'number') server.fail(serve);
  else server.serve(serve);
  return server;
}

async function start(server: TestBundleServer, policy: Record<string, unknown> = {}): Promise<RunningAgentward> {
  const aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: server.url, poll: { interval: '200ms', timeout: '2s' }, ...policy },
  });
  running.push(aw);
  return aw;
}

async function call(aw: RunningAgentward, method: string) {
  return rawRequest(`${aw.url}/tools`, { method, headers: { authorization: `Bearer ${await issuer.mint({ scope: 'tools.read' })}` } });
}

async function readyz(aw: RunningAgentward) {
  const res = await rawRequest(`${aw.adminUrl}/readyz`);
  return { status: res.status, policy: res.json().policy as Record<string, unknown> };
}

const loadedLines = (aw: RunningAgentward) => aw.logs().split('\n').filter((l) => l.includes('"msg":"policy loaded"')).length;

describe('a bundle server shared by sidecars', () => {
  let server: TestBundleServer;
  let aw: RunningAgentward;
  let r1: Buffer;
  let r2: Buffer;

  beforeAll(async () => {
    [r1, r2] = await Promise.all([buildBundle(folder(['GET']), { revision: 'r1' }), buildBundle(folder(['GET', 'POST']), { revision: 'r2' })]);
    server = await bundleServer(r1);
    aw = await start(server);
  });

  test('the bundle served over HTTP is loaded at start: its policy decides, /readyz and the audit name its revision', async () => {
    expect((await call(aw, 'GET')).status).toBe(200);
    const denied = await call(aw, 'POST');
    expect(denied.status).toBe(403);
    expect(denied.json().code).toBe('ERR_POLICY_DENIED');
    const ready = await readyz(aw);
    expect(ready.status).toBe(200);
    expect(ready.policy).toMatchObject({ loaded: true, source: server.url, revision: 'r1', lastError: null, etag: expect.stringMatching(/^"[0-9a-f]+"$/), lastCheckedAt: expect.any(String) });
    await new Promise((r) => setTimeout(r, 100));
    expect(aw.audit().at(-1)).toMatchObject({ decision: 'deny', code: 'ERR_POLICY_DENIED', policyRevision: 'r1' });
  });

  test('an unchanged bundle: each poll sends the ETag, is answered 304, and nothing is reloaded', async () => {
    const { etag, loadedAt } = (await readyz(aw)).policy;
    const loaded = loadedLines(aw);
    const before = server.requests.length;
    await waitFor(async () => server.requests.length >= before + 2, 'two more polls');
    expect(server.requests.slice(before)).toEqual(expect.arrayContaining([{ ifNoneMatch: etag, status: 304 }]));
    expect(server.requests.slice(before).every((r) => r.status === 304 && r.ifNoneMatch === etag)).toBe(true);
    expect((await readyz(aw)).policy).toMatchObject({ revision: 'r1', loadedAt, lastError: null });
    expect(loadedLines(aw)).toBe(loaded);
  });

  test('a newer revision replaces it without a restart: behaviour and audit change', async () => {
    server.serve(r2);
    await waitFor(async () => aw.app.policy.revision === 'r2', 'revision r2 to be active');
    const res = await call(aw, 'POST');
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(aw.audit().at(-1)).toMatchObject({ decision: 'allow', status: 200, policyRevision: 'r2' });
    expect(aw.logs()).toMatch(/"revision":"r2".*"msg":"policy loaded"/);
  });

  test('a truncated bundle, then one without policy.wasm, are refused; r2 keeps serving and /readyz says why', async () => {
    server.serve(r1.subarray(0, Math.floor(r1.length / 2)));
    await waitFor(async () => /not a gzip file/.test(String(aw.app.policy.status().lastError)), 'the truncated bundle to be refused');
    expect(aw.app.policy.revision).toBe('r2');
    expect((await call(aw, 'POST')).status).toBe(200);

    server.serve(withFile(r1, 'policy.wasm', undefined));
    await waitFor(async () => /no \/policy\.wasm/.test(String(aw.app.policy.status().lastError)), 'the bundle without policy.wasm to be refused');
    expect(aw.app.policy.revision).toBe('r2');
    expect((await call(aw, 'POST')).status).toBe(200);
    const ready = await readyz(aw);
    expect(ready.status).toBe(200);
    expect(ready.policy).toMatchObject({ loaded: true, revision: 'r2', lastError: expect.stringMatching(/no \/policy\.wasm/) });
    expect(aw.logs()).toContain('policy reload failed; keeping the last good policy');
  });

  test('a failing server keeps the last good policy; the ETag sent is still the active bundle\'s', async () => {
    const { etag } = (await readyz(aw)).policy;
    server.fail(500);
    await waitFor(async () => /answered HTTP 500/.test(String(aw.app.policy.status().lastError)), 'the server error to be seen');
    expect(aw.app.policy.revision).toBe('r2');
    expect((await call(aw, 'POST')).status).toBe(200);
    expect(server.requests.at(-1)).toEqual({ ifNoneMatch: etag, status: 500 });
    server.serve(r2);
    await waitFor(async () => aw.app.policy.status().lastError === null, 'the server to be back');
    expect(server.requests.at(-1)).toEqual({ ifNoneMatch: etag, status: 304 });
  });
});

describe('startup without a good bundle', () => {
  test('requests get 503 ERR_POLICY_NOT_LOADED and /readyz is 503 until the server serves one', async () => {
    const server = await bundleServer(503);
    const aw = await start(server);
    const res = await call(aw, 'GET');
    expect(res.status).toBe(503);
    expect(res.json().code).toBe('ERR_POLICY_NOT_LOADED');
    const ready = await readyz(aw);
    expect(ready.status).toBe(503);
    expect(ready.policy).toMatchObject({ loaded: false, revision: null, etag: null, lastError: expect.stringMatching(/answered HTTP 503/) });
    server.serve(await buildBundle(folder(['GET']), { revision: 'late' }));
    await waitFor(async () => (await readyz(aw)).status === 200, 'agentward to become ready');
    expect((await call(aw, 'GET')).status).toBe(200);
    expect(aw.app.policy.revision).toBe('late');
  });
});

describe('signed bundles (policy.verification)', () => {
  let keys: { private: string; public: string };
  let server: TestBundleServer;
  let aw: RunningAgentward;

  beforeAll(async () => {
    keys = keyPairFiles('rsa');
    const signed = await buildBundle(folder(['GET']), { revision: 's1', signingKey: keys.private });
    server = await bundleServer(signed);
    aw = await start(server, { verification: { keyFile: keys.public } });
  });

  /** Serves `gz` and waits until agentward has refused it; s1 must still be active and serving. */
  async function expectRefused(gz: Buffer, message: RegExp): Promise<void> {
    server.serve(gz);
    await waitFor(async () => message.test(String(aw.app.policy.status().lastError)), `a refusal matching ${message}`);
    expect(aw.app.policy.revision).toBe('s1');
    expect((await call(aw, 'GET')).status).toBe(200);
    expect((await call(aw, 'POST')).status).toBe(403);
  }

  test('a bundle signed with the configured key is verified and loaded', async () => {
    expect(aw.app.policy.status()).toMatchObject({ loaded: true, revision: 's1', lastError: null });
    expect((await call(aw, 'GET')).status).toBe(200);
  });

  test('a bundle with a file changed after signing is refused', async () => {
    const next = await buildBundle(folder(['GET']), { revision: 's2', signingKey: keys.private });
    await expectRefused(withFile(next, 'data.json', JSON.stringify({ methods: ['GET', 'POST'] })), /bundle signature: \/data\.json does not match its signed SHA-256 digest/);
  });

  test('an unsigned bundle is refused', async () => {
    await expectRefused(await buildBundle(folder(['GET', 'POST']), { revision: 'u1' }), /bundle signature: the bundle has no \/\.signatures\.json/);
  });

  test('a bundle signed with another key is refused', async () => {
    const other = keyPairFiles('rsa');
    await expectRefused(await buildBundle(folder(['GET', 'POST']), { revision: 'x1', signingKey: other.private }), /bundle signature: the signature does not verify/);
  });

  test('a newer bundle signed with the configured key replaces s1', async () => {
    server.serve(await buildBundle(folder(['GET', 'POST']), { revision: 's3', signingKey: keys.private }));
    await waitFor(async () => aw.app.policy.revision === 's3', 'the signed s3 to load');
    expect((await call(aw, 'POST')).status).toBe(200);
    expect(aw.app.policy.status().lastError).toBeNull();
  });
});
