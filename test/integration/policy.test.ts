/**
 * The policy step with policies compiled by the real opa CLI: what the policy sees, how each
 * decision reaches the client, every failure denying with its own code, bounded memory, and hot
 * reload (an edit is picked up, a broken edit keeps the last good policy).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { waitFor } from '../helpers/wait.ts';
import { rawRequest, challengeParams } from '../helpers/http.ts';
import { readBundle } from '../../src/policy/bundle.ts';

const RESOURCE = 'https://tools.example.com/api';
const FIXTURES = join(REPO, 'test/fixtures/policies');
let issuer: TestIssuer;
let upstream: TestUpstream;
const running: RunningAgentward[] = [];

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
});
afterAll(async () => {
  await Promise.all(running.map((a) => a.stop()));
  await Promise.all([upstream?.close(), issuer?.close()]);
});

async function withPolicy(source: string, policy: Record<string, unknown> = {}): Promise<RunningAgentward> {
  const aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source, ...policy },
  });
  running.push(aw);
  return aw;
}

async function get(aw: RunningAgentward, path: string, claims: Record<string, unknown> = {}) {
  const before = upstream.seen.length;
  const res = await rawRequest(`${aw.url}${path}`, { headers: { authorization: `Bearer ${await issuer.mint(claims)}` } });
  return { res, forwarded: upstream.seen.length - before };
}

describe('decisions', () => {
  let aw: RunningAgentward;
  beforeAll(async () => {
    aw = await withPolicy(join(FIXTURES, 'echo'), { exposeReason: true });
  });

  test('the policy sees the verified subject and delegation; decision headers reach the upstream', async () => {
    const { res } = await get(aw, '/x', { client_id: 'ops-bot', act: { sub: 'planner', act: { sub: 'root' } } });
    expect(res.status).toBe(200);
    expect(upstream.seen.at(-1)!.headers).toMatchObject({ 'x-policy-client': 'ops-bot', 'x-policy-depth': '2' });
  });

  test('a plain deny is 403 ERR_POLICY_DENIED, with the reason when policy.exposeReason is on', async () => {
    const { res, forwarded } = await get(aw, '/deny');
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ code: 'ERR_POLICY_DENIED', reason: 'path /deny is closed' });
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(forwarded).toBe(0);
  });

  test('a deny with status 404 hides the resource: 404 ERR_POLICY_NOT_FOUND, no challenge', async () => {
    const { res, forwarded } = await get(aw, '/hidden');
    expect(res.status).toBe(404);
    expect(res.json().code).toBe('ERR_POLICY_NOT_FOUND');
    expect(res.headers['www-authenticate']).toBeUndefined();
    expect(forwarded).toBe(0);
  });

  test('a step-up decision is 401 insufficient_user_authentication with acr_values and max_age (RFC 9470 §3)', async () => {
    const { res, forwarded } = await get(aw, '/step-up');
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_POLICY_STEP_UP');
    expect(challengeParams(res.headers['www-authenticate'])).toMatchObject({ error: 'insufficient_user_authentication', acr_values: 'mfa', max_age: '300' });
    expect(forwarded).toBe(0);
  });

  test('the audit record carries the decision, reason and policy revision', async () => {
    await get(aw, '/deny');
    await new Promise((r) => setTimeout(r, 100));
    const last = aw.audit().at(-1)!;
    expect(last).toMatchObject({ decision: 'deny', status: 403, code: 'ERR_POLICY_DENIED', reason: 'path /deny is closed', action: { method: 'GET', path: '/deny' } });
    expect(String(last.policyRevision)).toMatch(/^sha256:[0-9a-f]{16}$/);
  });
});

describe('fail closed', () => {
  test('a policy that throws denies with 500 ERR_POLICY_EVALUATION, saying nothing internal', async () => {
    const aw = await withPolicy(join(FIXTURES, 'conflict'));
    const { res, forwarded } = await get(aw, '/x');
    expect(res.status).toBe(500);
    expect(res.json()).toMatchObject({ code: 'ERR_POLICY_EVALUATION' });
    expect(res.body).not.toMatch(/conflict|rego/);
    expect(forwarded).toBe(0);
    expect(aw.logs()).toContain('var assignment conflict');
  });

  test('an undefined decision denies with 403 ERR_POLICY_UNDEFINED', async () => {
    const aw = await withPolicy(join(FIXTURES, 'undefined'));
    const { res, forwarded } = await get(aw, '/x');
    expect(res.status).toBe(403);
    expect(res.json().code).toBe('ERR_POLICY_UNDEFINED');
    expect(forwarded).toBe(0);
  });

  test('a malformed decision denies with 500 ERR_POLICY_DECISION_INVALID', async () => {
    const aw = await withPolicy(join(FIXTURES, 'malformed'));
    const { res, forwarded } = await get(aw, '/x');
    expect(res.status).toBe(500);
    expect(res.json().code).toBe('ERR_POLICY_DECISION_INVALID');
    expect(forwarded).toBe(0);
    expect(aw.logs()).toContain('unknown key \\"alow\\"');
  });

  test('a policy that exhausts its memory cap denies; the next request is served', async () => {
    const aw = await withPolicy(join(FIXTURES, 'oom'), { maxMemoryBytes: 4194304 });
    const { res, forwarded } = await get(aw, '/oom');
    expect(res.status).toBe(500);
    expect(res.json().code).toBe('ERR_POLICY_EVALUATION');
    expect(forwarded).toBe(0);
    expect((await get(aw, '/fine')).res.status).toBe(200);
  });

  test('a policy that does not compile at start: 503 ERR_POLICY_NOT_LOADED and /readyz says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-policy-'));
    writeFileSync(join(dir, 'broken.rego'), 'package agentward\n\ndecision := {"allow": true\n');
    const aw = await withPolicy(dir);
    const { res, forwarded } = await get(aw, '/x');
    expect(res.status).toBe(503);
    expect(res.json().code).toBe('ERR_POLICY_NOT_LOADED');
    expect(res.headers['retry-after']).toBe('5');
    expect(forwarded).toBe(0);
    const ready = await rawRequest(`${aw.adminUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect((ready.json().policy as { lastError: string }).lastError).toMatch(/rego_parse_error/);
  });
});

describe('hot reload', () => {
  test('an edit is picked up without restart; a broken edit keeps the last good policy and shows in /readyz', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-policy-'));
    cpSync(DEFAULT_POLICY, dir, { recursive: true });
    const aw = await withPolicy(dir);
    // Default policy: POST needs tools.write.
    const post = async () => (await rawRequest(`${aw.url}/x`, { method: 'POST', headers: { authorization: `Bearer ${await issuer.mint({ scope: 'tools.read' })}` } })).status;
    expect(await post()).toBe(403);
    const revision = aw.app.policy.revision;

    // Make writes need only tools.read.
    const dataFile = join(dir, 'data.json');
    const data = JSON.parse(readFileSync(dataFile, 'utf8')) as { agentward: { settings: { writeScopes: string[] } } };
    data.agentward.settings.writeScopes = ['tools.read'];
    writeFileSync(dataFile, JSON.stringify(data));
    await waitFor(async () => (await post()) === 200, 'the edited policy to allow');
    const edited = aw.app.policy.revision;
    expect(edited).not.toBe(revision);

    // A syntax error: the last good policy stays, the error is logged and shown in /readyz.
    writeFileSync(join(dir, 'agentward', 'decision.rego'), 'package agentward\n\ndecision := {\n');
    await waitFor(async () => aw.app.policy.status().lastError !== null, 'the broken edit to be rejected');
    expect(aw.app.policy.revision).toBe(edited);
    expect(await post()).toBe(200);
    const ready = await rawRequest(`${aw.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect((ready.json().policy as { lastError: string }).lastError).toMatch(/rego_parse_error/);
    expect(aw.logs()).toContain('policy reload failed; keeping the last good policy');
  });
});

describe('sources', () => {
  test('a prebuilt OPA bundle (.tar.gz) is accepted, with its .manifest revision', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-bundle-'));
    const bundle = join(dir, 'policy.tar.gz');
    execFileSync(process.env.AGENTWARD_OPA ?? 'opa', ['build', '-t', 'wasm', '-e', 'agentward/decision', '--revision', 'rev-42', '--ignore', '*_test.rego', '-o', bundle, DEFAULT_POLICY]);
    const aw = await withPolicy(bundle);
    expect(aw.app.policy.revision).toBe('rev-42');
    expect((await get(aw, '/x')).res.status).toBe(200);
  });

  test('a bare .wasm file with a separate data file is accepted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-wasm-'));
    const bundle = join(dir, 'b.tar.gz');
    execFileSync(process.env.AGENTWARD_OPA ?? 'opa', ['build', '-t', 'wasm', '-e', 'agentward/decision', '--ignore', '*_test.rego', '-o', bundle, DEFAULT_POLICY]);
    writeFileSync(join(dir, 'policy.wasm'), readBundle(readFileSync(bundle)).wasm);
    writeFileSync(join(dir, 'data.json'), JSON.stringify({ agentward: { settings: { readScopes: ['special.read'] } } }));
    const aw = await withPolicy(join(dir, 'policy.wasm'), { data: join(dir, 'data.json') });
    expect((await get(aw, '/x', { scope: 'tools.read' })).res.status).toBe(403);
    expect((await get(aw, '/x', { scope: 'special.read' })).res.status).toBe(200);
  });
});
