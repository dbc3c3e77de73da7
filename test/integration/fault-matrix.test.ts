/**
 * The fault matrix (docs/operations.md "Fault matrix"): every dependency of agentward broken on
 * purpose while the real proxy runs. Each row proves three things:
 *   1. the fault really happened: the fault proxy in front of the dependency (test/helpers/
 *      fault-proxy.ts) saw the request it broke, cut the answer, or refuses connections;
 *   2. agentward fails closed with its status and stable code, forwards nothing it should not,
 *      and keeps answering (the next request is served);
 *   3. it recovers by itself once the fault is removed, without a restart.
 * The key set faults strike mid-life (keys loaded, the issuer rotates during the outage);
 * keys.test.ts covers a key set down or hanging at start. The last row is the real
 * `agentward serve` process drained by SIGTERM under load.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../helpers/introspection-server.ts';
import { buildBundle, startBundleServer, writeFolder, type TestBundleServer } from '../helpers/bundle-server.ts';
import { startFaultProxy, type FaultMode, type FaultProxy } from '../helpers/fault-proxy.ts';
import { rawRequest } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://tools.example.com/api';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let issuer: TestIssuer;
let upstream: TestUpstream;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
});
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  await Promise.all([upstream?.close(), issuer?.close()]);
});

async function start(config: Record<string, unknown>): Promise<RunningAgentward> {
  const aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: DEFAULT_POLICY },
    ...config,
  });
  cleanup.push(() => aw.stop());
  return aw;
}

async function fault(target: string, options?: Parameters<typeof startFaultProxy>[1]): Promise<FaultProxy> {
  const proxy = await startFaultProxy(target, options);
  cleanup.push(() => proxy.close());
  return proxy;
}

const call = (aw: RunningAgentward, token: string, method = 'GET', path = '/tools') => rawRequest(`${aw.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });

async function readyz(aw: RunningAgentward): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await rawRequest(`${aw.adminUrl}/readyz`);
  return { status: res.status, body: res.json() };
}

/** The audit record of a request, once written (it is written after the response). */
async function auditOf(aw: RunningAgentward, requestId: unknown): Promise<Record<string, unknown>> {
  await waitFor(async () => aw.audit().some((r) => r.requestId === requestId), `the audit record of ${String(requestId)}`);
  return aw.audit().find((r) => r.requestId === requestId)!;
}

/** Proves the fault of `mode` happened at `proxy` since `before` (its `seen` counts then). */
async function expectFaultSeen(proxy: FaultProxy, mode: FaultMode, before: Record<FaultMode, number>): Promise<void> {
  if (mode === 'down') {
    expect(await proxy.refuses()).toBe(true);
    expect(proxy.seen).toEqual(before); // nothing got through a closed port
    return;
  }
  expect(proxy.seen[mode]).toBeGreaterThan(before[mode]);
}

describe('issuer key set (oauth.keys)', () => {
  /** Deadline and refetch cooldown shortened so each row takes about a second. */
  const KEYS = { timeout: '500ms', cooldown: '200ms', maxAge: '5m' };
  let jwks: FaultProxy;
  let aw: RunningAgentward;
  let known: string;

  beforeAll(async () => {
    jwks = await fault(new URL(issuer.jwksUri).origin);
    aw = await start({ oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: `${jwks.url}/jwks` }], keys: KEYS } });
    known = await issuer.mint({}, { key: issuer.keys[0]! });
    expect((await call(aw, known)).status).toBe(200);
  });

  const issuerStatus = async () => ((await readyz(aw)).body.issuers as { lastError: string | null }[])[0]!;

  test.each([
    ['down', /request failed/],
    ['hang', /no answer within 500ms/],
    ['garbage', /answer is not JSON/],
    ['oversized', /answer larger than 1048576 bytes/],
  ] as const)('key set %s: a token of a key published during the outage is 503 ERR_KEYS_UNAVAILABLE; recovers when the key set is back', async (mode, lastError) => {
    // The issuer rotates during the outage: agentward must fetch the key set to know the new key.
    const fresh = await issuer.rotate({ keep: true });
    const token = await issuer.mint({}, { key: fresh });
    await sleep(300); // past the refetch cooldown since the last fetch
    await jwks.setMode(mode);
    const before = { ...jwks.seen };
    const forwarded = upstream.seen.length;

    const res = await call(aw, token);
    expect(res.status).toBe(503);
    expect(res.json().code).toBe('ERR_KEYS_UNAVAILABLE');
    expect(res.headers['retry-after']).toBeDefined();
    expect(upstream.seen.length).toBe(forwarded);
    await expectFaultSeen(jwks, mode, before);
    // A hanging fetch is given up at oauth.keys.timeout; an oversized one at the 1 MiB cap.
    if (mode === 'hang' || mode === 'oversized') await waitFor(async () => jwks.abandoned[mode] > 0, `agentward to give up the ${mode} fetch`);
    expect((await issuerStatus()).lastError).toMatch(lastError);
    expect(aw.logs()).toContain('issuer keys could not be fetched');

    // Still serving: a token of a key fetched before the outage is accepted.
    expect((await call(aw, known)).status).toBe(200);

    await jwks.setMode('up');
    const seenUp = jwks.seen.up;
    await waitFor(async () => (await call(aw, token)).status === 200, 'the new key to be fetched');
    expect(jwks.seen.up).toBeGreaterThan(seenUp);
    expect((await issuerStatus()).lastError).toBeNull();
  });
});

describe('token introspection (oauth.issuers[].introspection)', () => {
  let endpoint: IntrospectionServer;
  let introspection: FaultProxy;
  let aw: RunningAgentward;

  beforeAll(async () => {
    endpoint = await startIntrospectionServer({ issuer: issuer.issuer, auth: { method: 'client_secret_basic', clientId: 'agentward-rs', clientSecret: 's3cret' } });
    cleanup.push(() => endpoint.close());
    introspection = await fault(endpoint.origin);
    process.env.FAULT_MATRIX_INTROSPECTION_SECRET = 's3cret';
    aw = await start({
      oauth: {
        issuers: [
          {
            issuer: issuer.issuer,
            jwksUri: issuer.jwksUri,
            introspection: { endpoint: `${introspection.url}${new URL(endpoint.endpoint).pathname}`, clientId: 'agentward-rs', clientSecret: { fromEnv: 'FAULT_MATRIX_INTROSPECTION_SECRET' } },
          },
        ],
        keys: { timeout: '500ms' },
      },
    });
  });

  test.each(['down', 'reset'] as const)('introspection endpoint %s: 503 ERR_INTROSPECTION_UNAVAILABLE; the same token is accepted once it is back', async (mode) => {
    const opaque = `opaque-${mode}`;
    endpoint.tokens.set(opaque, { active: true, iss: issuer.issuer, aud: RESOURCE, sub: 'user-7', client_id: 'ops-bot', scope: 'tools.read', exp: Math.floor(Date.now() / 1000) + 300 });
    await introspection.setMode(mode);
    const before = { ...introspection.seen };
    const calls = endpoint.calls();
    const forwarded = upstream.seen.length;

    const res = await call(aw, opaque);
    expect(res.status).toBe(503);
    expect(res.json().code).toBe('ERR_INTROSPECTION_UNAVAILABLE');
    expect(res.headers['retry-after']).toBeDefined();
    await expectFaultSeen(introspection, mode, before);
    if (mode === 'reset') expect(introspection.resets).toBeGreaterThan(0);
    expect(endpoint.calls()).toBe(calls); // the real endpoint never saw it
    expect(upstream.seen.length).toBe(forwarded);
    // Still serving: a JWT is verified locally, without the endpoint.
    expect((await call(aw, await issuer.mint())).status).toBe(200);

    // No failure is cached: the first request after the endpoint is back is introspected.
    await introspection.setMode('up');
    const back = await call(aw, opaque);
    expect(back.status, back.body).toBe(200);
    expect(endpoint.calls()).toBe(calls + 1);
  });
});

describe('policy bundle server (policy.source URL)', () => {
  /** Its behaviour is its data: r1 allows GET, r2 allows GET and POST. */
  const POLICY = 'package agentward\nimport rego.v1\ndefault decision := {"allow": false}\ndecision := {"allow": true} if input.request.method in data.methods\n';
  const revisions: Record<string, Buffer> = {};
  let bundles: TestBundleServer;
  let proxy: FaultProxy;
  let aw: RunningAgentward;

  beforeAll(async () => {
    const folder = (methods: string[]) => writeFolder({ 'agentward/decision.rego': POLICY, 'data.json': JSON.stringify({ methods }) });
    [revisions.r1, revisions.r2] = await Promise.all([buildBundle(folder(['GET']), { revision: 'r1' }), buildBundle(folder(['GET', 'POST']), { revision: 'r2' })]);
    bundles = await startBundleServer();
    cleanup.push(() => bundles.close());
    bundles.serve(revisions.r1!);
    proxy = await fault(new URL(bundles.url).origin);
    aw = await start({ policy: { source: `${proxy.url}${new URL(bundles.url).pathname}`, poll: { interval: '200ms', timeout: '500ms', maxBytes: 1048576 } } });
  });

  test.each([
    ['down', /could not be downloaded: request failed/],
    ['hang', /could not be downloaded: no answer within 500ms/],
    ['garbage', /not a gzip file/],
    ['oversized', /could not be downloaded: answer larger than 1048576 bytes/],
  ] as const)('bundle server %s: the last good policy keeps deciding, /readyz says why; the next revision loads once it is back', async (mode, lastError) => {
    const token = await issuer.mint();
    const good = aw.app.policy.revision!;
    const next = good === 'r1' ? 'r2' : 'r1';
    const postStatus = (revision: string) => (revision === 'r2' ? 200 : 403);
    await proxy.setMode(mode);
    const before = { ...proxy.seen };
    await waitFor(async () => lastError.test(String(aw.app.policy.status().lastError)), `a poll to meet the ${mode} server`);
    await expectFaultSeen(proxy, mode, before);

    // The last good revision still decides; agentward is ready, with the failure shown.
    expect(aw.app.policy.revision).toBe(good);
    expect((await call(aw, token)).status).toBe(200);
    const post = await call(aw, token, 'POST');
    expect(post.status).toBe(postStatus(good));
    const ready = await readyz(aw);
    expect(ready.status).toBe(200);
    expect(ready.body.policy).toMatchObject({ loaded: true, revision: good, lastError: expect.stringMatching(lastError) });
    expect(aw.logs()).toContain('policy reload failed; keeping the last good policy');

    // A new revision is published during the outage; it loads once the server is back.
    bundles.serve(revisions[next]!);
    const served = bundles.requests.length;
    await proxy.setMode('up');
    await waitFor(async () => aw.app.policy.revision === next, `revision ${next} to load`);
    expect(bundles.requests.length).toBeGreaterThan(served);
    expect(aw.app.policy.status().lastError).toBeNull();
    expect((await call(aw, token, 'POST')).status).toBe(postStatus(next));
  });
});

describe('upstream', () => {
  let proxy: FaultProxy;
  let aw: RunningAgentward;
  let token: string;

  beforeAll(async () => {
    // upstream.timeout 500 ms < slowMs: a slow upstream is given up.
    proxy = await fault(upstream.url, { slowMs: 1500 });
    aw = await start({ upstream: { url: proxy.url, timeout: '500ms', connectTimeout: '500ms' } });
    token = await issuer.mint();
  });
  beforeEach(async () => {
    await proxy.setMode('up');
  });

  test.each([
    ['down', 502, 'ERR_UPSTREAM_UNAVAILABLE'],
    ['reset', 502, 'ERR_UPSTREAM_RESET'],
    ['slow', 504, 'ERR_UPSTREAM_TIMEOUT'],
  ] as const)('upstream %s before its answer: %i %s; the next request after it recovers is served', async (mode, status, code) => {
    await proxy.setMode(mode);
    const before = { ...proxy.seen };
    const reached = upstream.seen.length;

    const res = await call(aw, token);
    expect(res.status, res.body).toBe(status);
    expect(res.json()).toMatchObject({ code, status });
    expect(res.json().detail).toBeUndefined(); // a 5xx says nothing internal
    await expectFaultSeen(proxy, mode, before);
    if (mode === 'reset') expect(proxy.resets).toBeGreaterThan(0);
    if (mode === 'slow') await waitFor(async () => proxy.abandoned.slow > 0, 'agentward to give up the slow request');
    expect(upstream.seen.length).toBe(reached); // the real upstream never got it
    expect(await auditOf(aw, res.headers['x-request-id'])).toMatchObject({ decision: 'allow', status, code });

    await proxy.setMode('up');
    const back = await call(aw, token);
    expect(back.status).toBe(200);
    expect(upstream.seen.length).toBe(reached + 1);
  });

  test('an upstream that is down fails every request alike: the first failure is logged in full, the others counted once a second, every one audited', async () => {
    await proxy.setMode('down');
    const responses = await Promise.all(Array.from({ length: 40 }, () => call(aw, token)));
    expect(responses.map((r) => r.status)).toEqual(Array(40).fill(502));
    const ids = new Set(responses.map((r) => r.headers['x-request-id']));
    await waitFor(async () => aw.audit().filter((r) => ids.has(r.requestId as string)).length === 40, 'the 40 audit records');

    type Line = { msg: string; code?: string; requestId?: string; count?: number; err?: { stack?: string } };
    const lines = () => aw.logs().trim().split('\n').map((l) => JSON.parse(l) as Line).filter((l) => l.code === 'ERR_UPSTREAM_UNAVAILABLE');
    const failures = () => aw.audit().filter((r) => r.code === 'ERR_UPSTREAM_UNAVAILABLE').length;
    // Once the periods have ended, every failure of the code so far is one full line or in a count.
    const accounted = () => lines().reduce((n, l) => n + (l.requestId ? 1 : (l.count ?? 0)), 0);
    await waitFor(async () => accounted() === failures(), 'every failure logged in full or counted', 5000);
    const full = lines().filter((l) => l.requestId !== undefined && ids.has(l.requestId));
    expect(full.length).toBeLessThanOrEqual(1); // not a line with a stack per request
    for (const l of full) expect(l.err?.stack).toContain('ECONNREFUSED');
    expect(lines().some((l) => l.count !== undefined && l.msg.includes('more requests failed with ERR_UPSTREAM_UNAVAILABLE'))).toBe(true);

    await proxy.setMode('up');
    expect((await call(aw, token)).status).toBe(200);
  });

  test('upstream reset mid-body: the client gets the head, then a cut connection, never a complete answer; the next request is served', async () => {
    await proxy.setMode('reset-mid-body');
    const resets = proxy.resets;
    const res = await receive(`${aw.url}/tools`, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(200); // the head had been sent when the upstream reset
    expect(res.complete).toBe(false);
    expect(res.body.length).toBeLessThan(1000);
    expect(proxy.resets).toBe(resets + 1);
    expect(await auditOf(aw, res.headers['x-request-id'])).toMatchObject({ decision: 'allow', status: 200, code: 'ERR_UPSTREAM_RESET' });

    await proxy.setMode('up');
    expect((await call(aw, token)).status).toBe(200);
  });
});

describe('policy folder (hot reload)', () => {
  test('a broken edit keeps the last good policy deciding and shows in /readyz; fixing it loads the fix', async () => {
    const rego = (methods: string) => `package agentward\nimport rego.v1\ndefault decision := {"allow": false}\ndecision := {"allow": true} if input.request.method in {${methods}}\n`;
    const dir = writeFolder({ 'agentward/decision.rego': rego('"GET"') });
    const aw = await start({ policy: { source: dir } });
    const token = await issuer.mint();
    const good = aw.app.policy.revision;
    expect((await call(aw, token, 'POST')).status).toBe(403);

    writeFileSync(join(dir, 'agentward/decision.rego'), 'package agentward\n\ndecision := {\n');
    await waitFor(async () => aw.app.policy.status().lastError !== null, 'the broken edit to be compiled and refused');
    // The fault happened: opa read the broken file and refused it.
    expect(aw.app.policy.status().lastError).toMatch(/rego_parse_error/);
    expect(aw.app.policy.revision).toBe(good);
    expect((await call(aw, token)).status).toBe(200);
    const denied = await call(aw, token, 'POST');
    expect(denied.status).toBe(403);
    expect(denied.json().code).toBe('ERR_POLICY_DENIED');
    const ready = await readyz(aw);
    expect(ready.status).toBe(200);
    expect(ready.body.policy).toMatchObject({ loaded: true, revision: good, lastError: expect.stringMatching(/rego_parse_error/) });
    expect(aw.logs()).toContain('policy reload failed; keeping the last good policy');

    writeFileSync(join(dir, 'agentward/decision.rego'), rego('"GET", "POST"'));
    await waitFor(async () => aw.app.policy.status().lastError === null && aw.app.policy.revision !== good, 'the fixed policy to load');
    expect((await call(aw, token, 'POST')).status).toBe(200);
  });
});

describe('SIGTERM under load (the real agentward serve process)', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  test('every request accepted before SIGTERM, in flight or queued, gets its whole answer and an audit record; the process exits 0', async () => {
    const N = 12;
    const IN_FLIGHT = 4;
    // The upstream holds each request for 1.5 s; with listen.maxInFlight 4, four are at the
    // upstream and eight wait in the admission queue when the signal comes.
    const slow = await fault(upstream.url, { slowMs: 1500 });
    await slow.setMode('slow');
    const dir = mkdtempSync(join(tmpdir(), 'agentward-fault-'));
    const config = join(dir, 'agentward.yaml');
    writeFileSync(
      config,
      stringify({
        listen: { address: '127.0.0.1:0', shutdownTimeout: '10s', maxInFlight: IN_FLIGHT, maxQueued: N, queueTimeout: '10s' },
        admin: { address: '127.0.0.1:0' },
        upstream: { url: slow.url },
        resource: { id: RESOURCE },
        oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
        policy: { source: DEFAULT_POLICY },
        audit: { sink: 'file', file: 'audit.jsonl' },
      }),
    );
    let stderr = '';
    child = spawn(process.execPath, [join(REPO, 'src/main.ts'), 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
    await waitFor(async () => stderr.includes('"agentward listening"'), `agentward to listen:\n${stderr}`, 20000);
    const listening = JSON.parse(stderr.split('\n').find((l) => l.includes('"agentward listening"'))!) as { address: string; admin: string };
    const url = `http://${listening.address}`;
    const admission = async () => (await rawRequest(`http://${listening.admin}/readyz`)).json().admission as { inFlight: number; queued: number };

    const token = await issuer.mint();
    const answers = Array.from({ length: N }, (_, i) => receive(`${url}/tools/${i}`, { authorization: `Bearer ${token}` }));
    // The load is real: four requests held by the upstream, the others accepted and queued.
    await waitFor(async () => slow.seen.slow === IN_FLIGHT && (await admission()).queued === N - IN_FLIGHT, 'four requests at the upstream and eight queued');
    child.kill('SIGTERM');

    const results = await Promise.all(answers);
    for (const [i, res] of results.entries()) {
      expect(res.status, res.body).toBe(200);
      expect(res.complete).toBe(true);
      expect(JSON.parse(res.body)).toMatchObject({ method: 'GET', url: `/tools/${i}` });
    }
    expect(slow.seen.slow).toBe(N);
    expect(slow.abandoned.slow).toBe(0); // agentward gave up none of them
    expect(await exited).toBe(0);
    expect(stderr).toContain('"shutting down"');
    expect(stderr).toContain('"agentward stopped"');

    const records = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const ids = new Set(results.map((r) => r.headers['x-request-id']));
    expect(ids.size).toBe(N);
    expect(records.filter((r) => ids.has(r.requestId as string) && r.status === 200 && r.decision === 'allow')).toHaveLength(N);
  });
});

interface Received {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** False when the connection was cut before the whole answer arrived. */
  complete: boolean;
}

/** A GET on a connection of its own that resolves even when the answer is cut. */
function receive(url: string, headers: Record<string, string>): Promise<Received> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    request({ host: u.hostname, port: u.port, path: u.pathname, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete: res.complete });
      res.on('end', done);
      res.on('error', done); // a cut answer: 'aborted'
    })
      .on('error', reject)
      .end();
  });
}
