/**
 * `workers: 2` through real processes (docs/operations.md "Workers"): the primary's /readyz
 * answers for every worker, a killed worker is replaced in its place, SIGTERM drains every worker
 * with no accepted request lost (event streams to the upstream complete) and exits 0, each worker
 * leaves its own verifiable audit chain, and the check refuses workers with DPoP and no shared state.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { REPO } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const MAIN = join(REPO, 'src/main.ts');
// The compiled policy: no opa compile in each worker.
const BUNDLE = join(REPO, 'bundles', 'default-policy.tar.gz');
let issuer: TestIssuer;
let upstream: TestUpstream;
let child: ChildProcess | undefined;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await Promise.all([upstream?.close(), issuer?.close()]);
});

function writeConfig(extra: Record<string, unknown> = {}): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-workers-'));
  const config = join(dir, 'agentward.yaml');
  writeFileSync(
    config,
    stringify({
      workers: 2,
      listen: { address: '127.0.0.1:0', shutdownTimeout: '10s' },
      admin: { address: '127.0.0.1:0' },
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }], dpop: { mode: 'disabled' } },
      policy: { source: BUNDLE },
      audit: { sink: 'file', file: 'audit.jsonl' },
      ...extra,
    }),
  );
  return { dir, config };
}

interface WorkerDetail {
  worker: number;
  pid: number;
  ready: boolean;
}

test('two workers: /readyz for each, a killed worker replaced, SIGTERM drains both, one audit chain each', async () => {
  const { dir, config } = writeConfig();
  let stderr = '';
  child = spawn(process.execPath, [MAIN, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
  await waitFor(async () => stderr.includes('"agentward listening"'), `the primary's listening line:\n${stderr}`, 20_000);
  const listening = JSON.parse(stderr.split('\n').find((l) => l.includes('"agentward listening"'))!) as { address: string; admin: string; workers: number };
  expect(listening.workers).toBe(2);
  const url = `http://${listening.address}`;
  // A request that fails outright (seen once in CI under the full suite: "socket hang up", with no
  // frame of this file) says which step it was and what the processes logged.
  const step = async <T>(what: string | (() => string), run: Promise<T>): Promise<T> => {
    try {
      return await run;
    } catch (err) {
      throw new Error(`${typeof what === 'string' ? what : what()}: ${(err as Error).message}\nagentward's log:\n${stderr}`, { cause: err });
    }
  };
  const readyz = async () => {
    const res = await step('GET /readyz', rawRequest(`http://${listening.admin}/readyz`));
    return { status: res.status, body: res.json() as { ready: boolean; workers: WorkerDetail[] } };
  };

  // The primary's /readyz: ready when every worker is, with each worker's own detail.
  const first = await readyz();
  expect(first.status).toBe(200);
  expect(first.body.workers.map((w) => [w.worker, w.ready])).toEqual([
    [1, true],
    [2, true],
  ]);
  expect(first.body.workers[0]).toHaveProperty('policy.loaded', true);
  expect(new Set(first.body.workers.map((w) => w.pid)).size).toBe(2);

  // The primary's /metrics gathers both workers' registries: new connections go to the workers in
  // turn, so requests on fresh connections reach both, and the sum is what was sent.
  const metric = async (line: RegExp) => {
    const text = (await step('GET /metrics', rawRequest(`http://${listening.admin}/metrics`))).body;
    return text.split('\n').filter((l) => line.test(l)).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
  };
  const before = await metric(/^agentward_requests_total\{/);
  for (let i = 0; i < 6; i++) await step(`request ${i + 1} of 6`, rawRequest(`http://${listening.address}/healthz-of-the-tool`, { headers: { connection: 'close' } }));
  expect((await metric(/^agentward_requests_total\{/)) - before).toBe(6);
  expect(await metric(/^agentward_key_set_loaded\{/)).toBeGreaterThan(0);

  // A worker killed outright is replaced in its place (same number, a new process).
  const killed = first.body.workers[0]!.pid;
  process.kill(killed, 'SIGKILL');
  await waitFor(
    async () => {
      const { status, body } = await readyz();
      return status === 200 && body.workers[0]!.pid !== killed;
    },
    'worker 1 replaced and ready',
    20_000,
  );
  expect(stderr).toContain('"worker exited unexpectedly; starting another in its place"');

  // Four event streams in flight (the primary hands connections to the workers in turn) when
  // SIGTERM arrives: every one completes; then new connections are refused and the primary exits 0.
  const token = await issuer.mint();
  let started = 0;
  const streams = Array.from(
    { length: 4 },
    () =>
      new Promise<string>((resolve, reject) => {
        const u = new URL(`${url}/sse`);
        request({ host: u.hostname, port: u.port, path: u.pathname, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
          let text = '';
          let counted = false;
          res.on('data', (c: Buffer) => {
            text += c.toString();
            if (!counted && text.includes('"n":1')) {
              counted = true;
              if (++started === 4) child!.kill('SIGTERM');
            }
          });
          res.on('end', () => resolve(text));
          res.on('error', reject);
        })
          .on('error', reject)
          .end();
      }),
  );
  for (const text of await step(() => `the event streams (${started} of 4 had their first event)`, Promise.all(streams))) expect(text).toContain('data: {"n":3}');
  expect(await exited).toBe(0);
  await expect(rawRequest(`${url}/mcp`, { headers: { authorization: `Bearer ${token}` } })).rejects.toThrow(/ECONNREFUSED/);
  expect(stderr).toContain('"shutting down"');
  expect(stderr).not.toContain(token.split('.')[2]);

  // Each worker wrote its own chain, and both served streams; each file verifies on its own.
  for (const n of [1, 2]) {
    const file = join(dir, `audit.w${n}.jsonl`);
    const records = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { action: { path: string }; status: number });
    expect(records.some((r) => r.action.path === '/sse' && r.status === 200), `worker ${n} served a stream`).toBe(true);
    const verified = spawnSync(process.execPath, [MAIN, 'audit', 'verify', file], { encoding: 'utf8' });
    expect(verified.status, verified.stderr).toBe(0);
  }
}, 60_000);

test('serve refuses two workers with DPoP and no shared state, naming workers and the fix', () => {
  const { config } = writeConfig({ oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] } });
  const result = spawnSync(process.execPath, [MAIN, 'serve', '--config', config], { encoding: 'utf8', timeout: 20_000 });
  expect(result.status).toBe(1);
  expect(result.stderr).toContain('workers: 2 workers would each keep their own replay and revocation memory');
  expect(result.stderr).toContain('fix: set state.backend: redis');
});
