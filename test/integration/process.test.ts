/**
 * The real `agentward serve` process: it starts from the CLI, drains in-flight requests on
 * SIGTERM (an open event stream completes) while refusing new connections, exits 0, and leaves an
 * audit file that `agentward audit verify` accepts and whose tampering it detects.
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
import { DEFAULT_POLICY, REPO } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const MAIN = join(REPO, 'src/main.ts');
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

test('serve, drain on SIGTERM, exit 0, and a verifiable audit file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-process-'));
  const auditFile = join(dir, 'audit.jsonl');
  const config = join(dir, 'agentward.yaml');
  writeFileSync(
    config,
    stringify({
      listen: { address: '127.0.0.1:0', shutdownTimeout: '10s' },
      admin: { address: '127.0.0.1:0' },
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
      policy: { source: DEFAULT_POLICY },
      audit: { sink: 'file', file: 'audit.jsonl', hashKey: { fromEnv: 'AUDIT_KEY' } },
    }),
  );
  let stderr = '';
  child = spawn(process.execPath, [MAIN, 'serve', '--config', config], { env: { ...process.env, AUDIT_KEY: 'k3y' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));

  const listening = await new Promise<{ address: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line in time:\n${stderr}`)), 20000);
    child!.stderr!.on('data', () => {
      const line = stderr.split('\n').find((l) => l.includes('"agentward listening"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { address: string });
      }
    });
  });
  const url = `http://${listening.address}`;
  const token = await issuer.mint();
  for (let i = 0; i < 3; i++) expect((await rawRequest(`${url}/mcp`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  expect((await rawRequest(`${url}/mcp`)).status).toBe(401);

  // An event stream in flight when SIGTERM arrives completes; new connections are refused.
  const stream = new Promise<string>((resolve, reject) => {
    const u = new URL(`${url}/sse`);
    request({ host: u.hostname, port: u.port, path: u.pathname, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.includes('"n":1')) child!.kill('SIGTERM');
      });
      res.on('end', () => resolve(text));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  expect(await stream).toContain('data: {"n":3}');
  await expect(rawRequest(`${url}/mcp`, { headers: { authorization: `Bearer ${token}` } })).rejects.toThrow(/ECONNREFUSED/);
  expect(await exited).toBe(0);
  expect(stderr).toContain('"shutting down"');
  expect(stderr).not.toContain(token.split('.')[2]);

  // The audit file: one record per request, verifiable with the key, tampering detected.
  const lines = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n');
  expect(lines).toHaveLength(5);
  const verify = (file: string, env: Record<string, string> = { AUDIT_KEY: 'k3y' }) =>
    spawnSync(process.execPath, [MAIN, 'audit', 'verify', file, '--key-env', 'AUDIT_KEY'], { env: { ...process.env, ...env }, encoding: 'utf8' });
  const ok = verify(auditFile);
  expect(ok.status, ok.stderr).toBe(0);
  expect(ok.stdout).toContain('5 records verified in 1 chain segment(s)');
  expect(verify(auditFile, { AUDIT_KEY: 'wrong' }).status).toBe(1);

  const edited = join(dir, 'edited.jsonl');
  writeFileSync(edited, lines.map((l, i) => (i === 1 ? l.replace('"status":200', '"status":201') : l)).join('\n') + '\n');
  const editedResult = verify(edited);
  expect(editedResult.status).toBe(1);
  expect(editedResult.stderr).toContain(':2: hash does not match');

  const removed = join(dir, 'removed.jsonl');
  writeFileSync(removed, lines.filter((_, i) => i !== 2).join('\n') + '\n');
  const removedResult = verify(removed);
  expect(removedResult.status).toBe(1);
  expect(removedResult.stderr).toContain(':3: prev does not match');
  // Three processes (serve, then audit verify thrice) and a policy compiled with opa: on a busy
  // 2-core machine this takes well over the default 30 s.
}, 90_000);
