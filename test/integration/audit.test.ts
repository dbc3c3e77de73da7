/**
 * The audit trail through the real proxy (draft-ietf-wimse-aims §11): a refusal's record is in
 * the file before its answer reaches the caller; the posture a decision was made in is recorded;
 * a rotated, checkpointed trail verifies with `agentward audit verify`, and a cut-off end does not.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';
import { cli } from '../helpers/cli.ts';

const REPO_ROOT = join(import.meta.dirname, '../..');

const RESOURCE = 'https://tools.example.com/mcp';
let issuer: TestIssuer;
let upstream: TestUpstream;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
});
afterAll(async () => {
  await Promise.all([upstream?.close(), issuer?.close()]);
});

function config(audit: Record<string, unknown>): Record<string, unknown> {
  return {
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: DEFAULT_POLICY },
    ...(Object.keys(audit).length ? { audit } : {}),
  };
}

describe('records and answers', () => {
  let aw: RunningAgentward;
  beforeAll(async () => {
    aw = await startAgentward(config({}));
  });
  afterAll(() => aw?.stop());

  test.each([
    ['no token', {}, 'ERR_TOKEN_MISSING'],
    ['a forged token', { authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA' }, 'ERR_TOKEN_MALFORMED'],
  ])('a refusal (%s) is in the audit file when its answer arrives', async (_what, headers, code) => {
    for (let i = 0; i < 20; i++) {
      const id = `refused-${code}-${i}`;
      const res = await rawRequest(`${aw.url}/mcp/tools`, { headers: { 'x-request-id': id, ...headers } });
      expect(res.status).toBe(401);
      // Read at once, no waiting: the record was written before the answer was sent.
      const found = aw.audit().find((r) => r.requestId === id);
      expect(found, `the record of ${id}`).toMatchObject({ status: 401, decision: 'deny' });
    }
  });

  test('posture: how the token is bound, how the workload proved itself, the issuer-stated acr and amr', async () => {
    const token = await issuer.mint({ scope: 'tools.read', acr: 'urn:example:loa:2', amr: ['pwd', 'otp'] });
    const res = await rawRequest(`${aw.url}/mcp/tools`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'posture-1' } });
    expect(res.status).toBe(200);
    await aw.app.stop().catch(() => undefined);
    const rec = aw.audit().find((r) => r.requestId === 'posture-1');
    expect(rec?.posture).toEqual({ tokenBinding: null, workloadProof: null, acr: 'urn:example:loa:2', amr: ['pwd', 'otp'] });
    // Without a verified token or workload there is no posture to speak of.
    expect(aw.audit().find((r) => r.requestId === 'refused-ERR_TOKEN_MISSING-0')?.posture).toBeNull();
  });
});

describe('rotation and checkpoints', () => {
  test('a rotated, checkpointed trail verifies as a set; cutting records off its end is found', async () => {
    const aw = await startAgentward(config({}));
    const { dir } = aw;
    await aw.stop();
    const file = join(dir, 'trail', 'audit.jsonl');
    const checkpoints = join(dir, 'checkpoints', 'audit.checkpoints.jsonl');
    const rotated = await startAgentward({
      ...config({ sink: 'file', file, rotate: { maxBytes: 8192 }, checkpoints: { interval: '100ms', file: checkpoints } }),
    });
    const token = await issuer.mint({ scope: 'tools.read' });
    for (let i = 0; i < 60; i++) {
      const res = await rawRequest(`${rotated.url}/mcp/tools`, { headers: i % 3 === 0 ? {} : { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(i % 3 === 0 ? 401 : 200);
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 250)); // let a checkpoint be taken
    }
    await rotated.stop();
    const names = readdirSync(join(dir, 'trail')).sort();
    // audit.<time>.jsonl sort before audit.jsonl: the current file is the newest.
    const set = [...names.filter((n) => n !== 'audit.jsonl'), 'audit.jsonl'].map((n) => join(dir, 'trail', n));
    expect(set.length).toBeGreaterThanOrEqual(3);

    const ok = await cli(['audit', 'verify', ...set, '--checkpoints', checkpoints]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`${set.length} files: 6[0-9] records verified in 1 chain segment\\(s\\) \\([1-9][0-9]* checkpoint\\(s\\) found\\)`));

    // The newest records cut off: the chain alone still verifies, the checkpoints do not.
    const last = set.at(-1)!;
    const lines = readFileSync(last, 'utf8').trim().split('\n');
    writeFileSync(last, `${lines.slice(0, -2).join('\n')}\n`);
    expect((await cli(['audit', 'verify', ...set])).code).toBe(0);
    const cut = await cli(['audit', 'verify', ...set, '--checkpoints', checkpoints]);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toContain('records were cut off the end');
  });
});

test('audit verify: a file or checkpoint file that cannot be read is named, exit 2, no stack trace', async () => {
  const missing = await cli(['audit', 'verify', '/nonexistent/audit.jsonl']);
  expect(missing.code).toBe(2);
  expect(missing.stderr.trim()).toBe('/nonexistent/audit.jsonl: cannot be read (ENOENT)');
  const noCheckpoints = await cli(['audit', 'verify', join(REPO_ROOT, 'README.md'), '--checkpoints', '/nonexistent/checkpoints.jsonl']);
  expect(noCheckpoints.code).toBe(2);
  expect(noCheckpoints.stderr.trim()).toBe('/nonexistent/checkpoints.jsonl: cannot be read (ENOENT)');
});
