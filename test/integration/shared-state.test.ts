/**
 * Shared state on Redis (`state.backend: redis`, docs/operations.md "Shared state") with a real
 * redis-server and several agentward replicas on loopback: a proof (DPoP, WPT, HTTP signature)
 * accepted by one replica is refused as a replay by another; a DPoP nonce one issued is accepted
 * by another; a purge on one reaches the others, and a replica started later; with Redis killed,
 * proof-bearing requests fail closed with 503 ERR_STATE_UNAVAILABLE while bearer requests go on,
 * /readyz says so, and everything recovers by itself when Redis is back. The last test runs two
 * real `agentward serve` processes.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, type RawResponse } from '../helpers/http.ts';
import { proof, proofKey, type ProofKey } from '../helpers/dpop.ts';
import { signRequest } from '../helpers/http-signature.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { bundleDocument, mintWit, mintWpt, newWorkloadKey, type WorkloadKey } from '../helpers/workload-tokens.ts';

const RESOURCE = 'https://tools.example.com/api';
const TARGET = 'https://tools.example.com/orders';
const DOMAIN = 'agents.example.com';
const AGENT = `spiffe://${DOMAIN}/research-bot`;
const POLICY = join(REPO, 'test/fixtures/policies/workload');
const ADMIN_TOKEN = 'admin-secret';

let redis: TestRedis;
let issuer: TestIssuer;
let upstream: TestUpstream;
let witIssuer: WorkloadKey;
let workloadKey: WorkloadKey;
let dpopKey: ProofKey;
let config: Record<string, unknown>;
/** Two replicas sharing one Redis. */
let a: RunningAgentward;
let b: RunningAgentward;
/** Started in a test, after a purge. */
let late: RunningAgentward | undefined;

beforeAll(async () => {
  [redis, issuer, upstream] = await Promise.all([startRedis(), startIssuer({ audience: RESOURCE }), startUpstream()]);
  [witIssuer, workloadKey, dpopKey] = await Promise.all([newWorkloadKey('ES256', 'wit-1'), newWorkloadKey('ES256'), proofKey()]);
  const dir = mkdtempSync(join(tmpdir(), 'agentward-shared-'));
  writeFileSync(join(dir, 'agents.json'), JSON.stringify(bundleDocument({ witSvid: [witIssuer.publicJwk] })));
  config = {
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    // A WIT with its WPT authenticates on its own here; DPoP needs a server nonce (RFC 9449 §9).
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }], requireToken: false, dpop: { nonce: { enabled: true } } },
    policy: { source: POLICY },
    workload: { trustDomains: [{ name: DOMAIN, bundle: { file: join(dir, 'agents.json') } }], binding: { rule: 'client_id', clients: { 'research-bot': AGENT } } },
    signals: {},
    admin: { address: '127.0.0.1:0', revoke: { token: { value: ADMIN_TOKEN } } },
    state: { backend: 'redis', redis: { url: redis.url, keyPrefix: 'test:', commandTimeout: '300ms', connectTimeout: '500ms' } },
  };
  [a, b] = await Promise.all([startAgentward(config), startAgentward(config)]);
});
afterAll(async () => {
  await Promise.all([a, b, late].map((x) => x?.stop()));
  await Promise.all([upstream?.close(), issuer?.close(), redis?.close()]);
});

const now = () => Math.floor(Date.now() / 1000);

function send(aw: RunningAgentward, headers: Record<string, string>, init: { method?: string; body?: string } = {}): Promise<RawResponse> {
  return rawRequest(`${aw.url}/orders`, { method: init.method ?? 'GET', headers, ...(init.body === undefined ? {} : { body: init.body }) });
}

function expectCode(res: RawResponse, status: number, code: string): void {
  expect(res.json().code, res.body).toBe(code);
  expect(res.status).toBe(status);
}

/** A DPoP nonce issued by `aw` (RFC 9449 §9: the first proof without one is answered use_dpop_nonce). */
async function nonceFrom(aw: RunningAgentward, token: string): Promise<string> {
  const res = await send(aw, { authorization: `DPoP ${token}`, dpop: await proof(dpopKey, { htm: 'GET', htu: TARGET, accessToken: token }) });
  expectCode(res, 401, 'ERR_DPOP_NONCE');
  return res.headers['dpop-nonce'] as string;
}

async function dpopHeaders(token: string, nonce: string): Promise<Record<string, string>> {
  return { authorization: `DPoP ${token}`, dpop: await proof(dpopKey, { htm: 'GET', htu: TARGET, accessToken: token, claims: { nonce } }) };
}

async function wptHeaders(): Promise<Record<string, string>> {
  const wit = await mintWit({ key: witIssuer, sub: AGENT, cnfJwk: workloadKey.publicJwk });
  return { 'workload-identity-token': wit, authorization: `WPT ${await mintWpt({ wit, privateKey: workloadKey.privateKey, alg: workloadKey.alg, aud: TARGET })}` };
}

async function signedPost(token: string, extra: Record<string, string> = {}): Promise<{ headers: Record<string, string>; body: string }> {
  const body = '{"item":"book"}';
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'workload-identity-token': await mintWit({ key: witIssuer, sub: AGENT, cnfJwk: workloadKey.publicJwk }), 'content-type': 'application/json', ...extra };
  const added = await signRequest({ method: 'POST', url: '/orders', headers, body, key: workloadKey.privateKey, alg: workloadKey.alg, aud: TARGET });
  return { headers: { ...headers, ...added } as Record<string, string>, body };
}

async function readyz(aw: RunningAgentward): Promise<{ status: number; body: { ready: boolean; state: { backend: string; connected: boolean; lastError: string | null } } }> {
  const res = await rawRequest(`${aw.adminUrl}/readyz`);
  return { status: res.status, body: res.json() as never };
}

describe('replay across replicas', () => {
  test('a DPoP proof accepted by A is refused by B (ERR_DPOP_REPLAYED); a nonce issued by A is accepted by B', async () => {
    const token = await issuer.mint({ cnf: { jkt: dpopKey.jkt } });
    const nonce = await nonceFrom(a, token);
    const headers = await dpopHeaders(token, nonce);
    const first = await send(a, headers);
    expect(first.status, first.body).toBe(200);
    expectCode(await send(b, headers), 401, 'ERR_DPOP_REPLAYED');
    // A fresh proof with A's nonce: B holds the same nonce key.
    const fresh = await send(b, await dpopHeaders(token, nonce));
    expect(fresh.status, fresh.body).toBe(200);
  });

  test('a WIT and WPT accepted by A are refused by B (ERR_WPT_REPLAYED)', async () => {
    const headers = await wptHeaders();
    const first = await send(a, headers);
    expect(first.status, first.body).toBe(200);
    expectCode(await send(b, headers), 401, 'ERR_WPT_REPLAYED');
  });

  test('an HTTP message signature accepted by A is refused by B (ERR_HSIG_REPLAYED)', async () => {
    const { headers, body } = await signedPost(await issuer.mint());
    const first = await send(a, headers, { method: 'POST', body });
    expect(first.status, first.body).toBe(200);
    expectCode(await send(b, headers, { method: 'POST', body }), 400, 'ERR_HSIG_REPLAYED');
  });

  test('a request with two proofs (DPoP and an HTTP signature) has both claimed together; replayed on B, the first proof verified refuses it', async () => {
    const token = await issuer.mint({ cnf: { jkt: dpopKey.jkt } });
    const nonce = await nonceFrom(a, token);
    const { headers, body } = await signedPost(token, { authorization: `DPoP ${token}`, dpop: await proof(dpopKey, { htm: 'POST', htu: TARGET, accessToken: token, claims: { nonce } }) });
    const first = await send(a, headers, { method: 'POST', body });
    expect(first.status, first.body).toBe(200);
    // The workload's proof is verified before the token's (docs/architecture.md step 3).
    expectCode(await send(b, headers, { method: 'POST', body }), 400, 'ERR_HSIG_REPLAYED');
  });
});

describe('revocation across replicas', () => {
  test('a purge on A refuses the token on B, which records the replicated mark; a replica started later refuses it too', async () => {
    const sub = `user-${Math.random().toString(36).slice(2, 8)}`;
    const token = await issuer.mint({ sub, iat: now() - 10 });
    expect((await send(b, { authorization: `Bearer ${token}` })).status).toBe(200);
    const purge = await rawRequest(`${a.adminUrl}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ iss: issuer.issuer, sub }) });
    expect(purge.status, purge.body).toBe(200);
    expectCode(await send(a, { authorization: `Bearer ${token}` }), 401, 'ERR_TOKEN_REVOKED');
    // Pub/sub: B applies the mark within a bounded time (it also purged its verified-token cache).
    await waitFor(async () => (await send(b, { authorization: `Bearer ${token}` })).status === 401, 'the purge to reach replica B', 5000);
    expectCode(await send(b, { authorization: `Bearer ${token}` }), 401, 'ERR_TOKEN_REVOKED');
    const replicated = b.audit().find((r) => (r.remediation as { subject?: { sub?: string } } | undefined)?.subject?.sub === sub);
    expect(replicated?.remediation).toMatchObject({ source: 'admin', event: 'purge', replicated: true, mark: { match: { iss: issuer.issuer, sub } } });
    expect(a.audit().find((r) => (r.remediation as { subject?: { sub?: string } } | undefined)?.subject?.sub === sub)?.remediation).not.toHaveProperty('replicated');

    // A replica that starts after the purge loads the marks still in force (fail closed for old tokens).
    late = await startAgentward(config);
    expectCode(await send(late, { authorization: `Bearer ${token}` }), 401, 'ERR_TOKEN_REVOKED');
  });
});

describe('Redis unreachable', () => {
  test('proofs fail closed with 503 ERR_STATE_UNAVAILABLE and Retry-After, bearer requests go on, /readyz says so; all recovers when Redis is back', async () => {
    const bearer = await issuer.mint();
    const token = await issuer.mint({ cnf: { jkt: dpopKey.jkt } });
    const nonce = await nonceFrom(a, token);
    await redis.kill();
    await waitFor(async () => !(await readyz(a)).body.state.connected, 'A to see Redis gone', 5000);

    const refused = await send(a, await dpopHeaders(token, nonce));
    expectCode(refused, 503, 'ERR_STATE_UNAVAILABLE');
    expect(refused.headers['retry-after']).toBe('1');
    expectCode(await send(b, await wptHeaders()), 503, 'ERR_STATE_UNAVAILABLE');
    const signed = await signedPost(await issuer.mint());
    expectCode(await send(a, signed.headers, { method: 'POST', body: signed.body }), 503, 'ERR_STATE_UNAVAILABLE');
    expect((await send(a, { authorization: `Bearer ${bearer}` })).status).toBe(200);
    expect((await send(b, { authorization: `Bearer ${bearer}` })).status).toBe(200);
    const probe = await readyz(a);
    // Not a readiness failure: bearer traffic is served (docs/operations.md "Shared state").
    expect(probe.status).toBe(200);
    expect(probe.body.state).toMatchObject({ backend: 'redis', connected: false });
    expect(probe.body.state.lastError).toEqual(expect.any(String));

    // A new, empty Redis on the same port: the replicas reconnect by themselves.
    await redis.restart();
    await waitFor(async () => (await readyz(a)).body.state.connected && (await readyz(b)).body.state.connected, 'A and B to reconnect', 10000);
    expect((await readyz(a)).body.state).toMatchObject({ connected: true, lastError: null });
    // The nonce key came back with the first replica to reconnect: A's nonce still works on B.
    const headers = await dpopHeaders(token, nonce);
    const again = await send(b, headers);
    expect(again.status, again.body).toBe(200);
    expectCode(await send(a, headers), 401, 'ERR_DPOP_REPLAYED');
  });
});

describe('Redis not answering', () => {
  test('a hung Redis (connections open, no answers): proofs get 503 ERR_STATE_UNAVAILABLE after state.redis.commandTimeout, bearer requests go on; answers again once it resumes', async () => {
    const token = await issuer.mint({ cnf: { jkt: dpopKey.jkt } });
    const nonce = await nonceFrom(a, token);
    redis.pause();
    try {
      expectCode(await send(a, await dpopHeaders(token, nonce)), 503, 'ERR_STATE_UNAVAILABLE');
      expect((await send(a, { authorization: `Bearer ${await issuer.mint()}` })).status).toBe(200);
      expect((await readyz(a)).body.state.lastError).toEqual(expect.any(String));
    } finally {
      redis.resume();
    }
    await waitFor(async () => (await send(a, await dpopHeaders(token, nonce))).status === 200, 'proofs to be accepted again', 10000);
  });
});

describe('two agentward serve processes', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  /** Starts `agentward serve` with `config` and returns its listening and admin URLs. */
  async function serve(dir: string, name: string): Promise<{ url: string; admin: string }> {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, stringify({ ...config, listen: { address: '127.0.0.1:0' }, admin: { ...(config.admin as object), address: '127.0.0.1:0' }, audit: { sink: 'off' }, log: { level: 'info' } }));
    const child = spawn(process.execPath, [join(REPO, 'src/main.ts'), 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let stderr = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no listening line in time:\n${stderr}`)), 30000);
      child.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString();
        const line = stderr.split('\n').find((l) => l.includes('"agentward listening"'));
        if (line) {
          clearTimeout(timer);
          const { address, admin } = JSON.parse(line) as { address: string; admin: string };
          resolve({ url: `http://${address}`, admin: `http://${admin}` });
        }
      });
      child.once('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${stderr}`)));
    });
  }

  test('the same DPoP proof is accepted by one process and refused by the other; a purge on one reaches the other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-shared-proc-'));
    const [one, two] = await Promise.all([serve(dir, 'one'), serve(dir, 'two')]);
    const call = (base: string, headers: Record<string, string>) => rawRequest(`${base}/orders`, { headers });

    const token = await issuer.mint({ cnf: { jkt: dpopKey.jkt }, iat: now() - 10 });
    const noNonce = await call(one.url, { authorization: `DPoP ${token}`, dpop: await proof(dpopKey, { htm: 'GET', htu: TARGET, accessToken: token }) });
    expectCode(noNonce, 401, 'ERR_DPOP_NONCE');
    const headers = await dpopHeaders(token, noNonce.headers['dpop-nonce'] as string);
    const first = await call(one.url, headers);
    expect(first.status, first.body).toBe(200);
    expectCode(await call(two.url, headers), 401, 'ERR_DPOP_REPLAYED');

    const sub = `proc-${Math.random().toString(36).slice(2, 8)}`;
    const bearer = await issuer.mint({ sub, iat: now() - 10 });
    expect((await call(two.url, { authorization: `Bearer ${bearer}` })).status).toBe(200);
    const purge = await rawRequest(`${one.admin}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ iss: issuer.issuer, sub }) });
    expect(purge.status, purge.body).toBe(200);
    await waitFor(async () => (await call(two.url, { authorization: `Bearer ${bearer}` })).status === 401, 'the purge to reach the second process', 5000);
    expectCode(await call(two.url, { authorization: `Bearer ${bearer}` }), 401, 'ERR_TOKEN_REVOKED');
  }, 90_000);
});
