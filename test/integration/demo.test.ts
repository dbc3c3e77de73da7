/**
 * The demo, end to end: `node scripts/demo.ts --check` as a real child process, on free ports.
 * It starts the sample tool, the token issuer and agentward (itself a child process running the
 * committed bundle), makes the demo calls, and exits 0 only when each answered as expected.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../..');

/** Ports that are free right now (all held at once, so they are distinct). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((done, fail) => {
      const s = createServer();
      s.once('error', fail);
      s.listen(0, '127.0.0.1', () => done(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((done) => s.close(() => done()))));
  return ports;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runDemo(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [join(REPO, 'scripts', 'demo.ts'), ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // On a hang, SIGTERM lets the demo stop agentward (its own process group) before exiting.
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', fail);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
  });
}

/** The demo's environment with its four ports set. */
function demoEnv(proxy: number, tool: number, issuer: number, admin: number): NodeJS.ProcessEnv {
  return { ...process.env, DEMO_PROXY_PORT: String(proxy), DEMO_TOOL_PORT: String(tool), DEMO_ISSUER_PORT: String(issuer), DEMO_ADMIN_PORT: String(admin) };
}

describe('npm run demo -- --check', () => {
  it('starts the tool, the issuer and agentward, and the calls answer 200, 403 insufficient_scope and 401 invalid_token', { timeout: 60_000 }, async () => {
    const [proxy, tool, issuer, admin] = await freePorts(4);
    const env = { ...demoEnv(proxy, tool, issuer, admin), DEMO_CHECK: '', DEMO_KEEP_TMP: '' };
    const run = await runDemo(['--check'], env, 50_000);
    const report = `exit ${run.code} ${run.signal ?? ''}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;

    expect(run.code, report).toBe(0);
    expect(run.stdout).toContain('demo check passed');
    expect(run.stdout).not.toContain('FAIL');
    // The three calls the demo is about, as printed.
    expect(run.stdout).toMatch(/ok {3}1\. GET \/tools\/weather\?city=Paris -> expected 200, got 200 .*X-Agent-Id=research-bot X-User=research-bot Authorization=\(not received\)/);
    expect(run.stdout).toMatch(/ok {3}2\. POST \/tools\/issues -> expected 403, got 403 ERR_POLICY_INSUFFICIENT_SCOPE .*error="insufficient_scope".*scope="tools\.write"/);
    expect(run.stdout).toMatch(/ok {3}3\. GET \/tools\/weather\?city=Paris -> expected 401, got 401 ERR_TOKEN_SIGNATURE .*error="invalid_token"/);
    // It ran on the ports it was given, found the keys by discovery and used the committed bundle.
    expect(run.stdout).toContain(`agentward      http://127.0.0.1:${proxy} -> http://127.0.0.1:${tool}`);
    expect(run.stdout).toContain(`keys: discovered http://127.0.0.1:${issuer}/jwks from http://127.0.0.1:${issuer}/.well-known/oauth-authorization-server`);
    expect(run.stdout).toContain('policy: bundles/default-policy.tar.gz');
    // One audit record per call.
    expect(run.stdout).toMatch(/Audit trail \(6 records/);
    // agentward logged no warning or error.
    expect(run.stderr).toBe('');
  });

  it('names the variable to change when a port is taken', { timeout: 30_000 }, async () => {
    const [proxy, tool, issuer, admin] = await freePorts(4);
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(issuer, '127.0.0.1', done));
    try {
      const env = demoEnv(proxy, tool, issuer, admin);
      const run = await runDemo(['--check'], env, 20_000);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`port ${issuer} on 127.0.0.1 (token issuer) is already in use`);
      expect(run.stderr).toContain('DEMO_ISSUER_PORT=<port>');
    } finally {
      await new Promise<void>((done) => holder.close(() => done()));
    }
  });
});
