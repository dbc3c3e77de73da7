/**
 * Bundles from a bundle server (src/policy/bundle-source.ts, and the engine's polling in
 * src/policy/engine.ts) against a real loopback server: conditional GETs (OPA management-bundles
 * "Caching"), the deadline and size cap, back-off, what /readyz shows; and the config checks of
 * `policy` (src/config/load.ts checkPolicy).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { parseConfig, ConfigError, type ConfigProblem } from '../../src/config/load.ts';
import { checkFiles } from '../../src/app/file-checks.ts';
import { HttpBundleSource, isUrlSource, pollDelayMs } from '../../src/policy/bundle-source.ts';
import { PolicyEngine } from '../../src/policy/engine.ts';
import { fetchJson, FetchJsonError } from '../../src/outbound/http.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { opaBinary } from '../../src/policy/compile.ts';
import { buildBundle, keyPairFiles, startBundleServer, writeFolder, type TestBundleServer } from '../helpers/bundle-server.ts';
import { waitFor } from '../helpers/wait.ts';
import type { PolicyInput } from '../../src/policy/input.ts';

const TINY = 'package tiny\nimport rego.v1\ndefault decision := false\ndecision if input.x == data.tiny.want\n';
const POLL = { intervalMs: 100, timeoutMs: 1000, maxBytes: 1 << 20 };

let server: TestBundleServer;
let v1: Buffer;
let v2: Buffer;
const engines: PolicyEngine[] = [];

beforeAll(async () => {
  server = await startBundleServer();
  v1 = await buildBundle(writeFolder({ 'tiny.rego': TINY, 'data.json': '{"tiny":{"want":1}}' }), { entrypoint: 'tiny/decision', revision: 'v1' });
  v2 = await buildBundle(writeFolder({ 'tiny.rego': TINY, 'data.json': '{"tiny":{"want":2}}' }), { entrypoint: 'tiny/decision', revision: 'v2' });
});
afterAll(() => server.close());
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
  server.requests.length = 0;
});

function engine(options: Partial<ConstructorParameters<typeof PolicyEngine>[0]> = {}): PolicyEngine {
  const e = new PolicyEngine({ source: server.url, entrypoint: 'tiny/decision', opa: opaBinary(undefined), maxMemoryBytes: 16 << 20, logger: createLogger('silent'), poll: POLL, ...options });
  engines.push(e);
  return e;
}

const allows = (e: PolicyEngine, x: number) => e.evaluate({ x } as unknown as PolicyInput).allow;

describe('pollDelayMs', () => {
  test('the interval, doubled per failure in a row up to 8 intervals, up to 10% shorter at random', () => {
    expect([0, 1, 2, 3, 4, 10].map((f) => pollDelayMs(1000, f, () => 0))).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    expect(pollDelayMs(1000, 0, () => 1)).toBe(900);
    expect(pollDelayMs(1000, 2, () => 0.5)).toBe(3800);
  });
});

describe('isUrlSource', () => {
  test('a scheme makes a URL; paths (relative, absolute, Windows-like) do not', () => {
    expect(['https://b.example.com/x.tar.gz', 'http://127.0.0.1:8181/b', 'ftp://x/y'].map(isUrlSource)).toEqual([true, true, true]);
    expect(['./policies', '/etc/agentward/policy.tar.gz', 'C:\\policies', 'https-bundle.tar.gz'].map(isUrlSource)).toEqual([false, false, false, false]);
  });
});

describe('HttpBundleSource', () => {
  test('200 with the ETag; with If-None-Match, 304 is "not modified"; lastCheckedAt moves', async () => {
    server.serve(v1);
    const source = new HttpBundleSource(server.url, POLL);
    expect(source.lastCheckedAt).toBeUndefined();
    const first = await source.fetch(undefined);
    expect(first.notModified).toBe(false);
    if (first.notModified) return;
    expect(first.body.equals(v1)).toBe(true);
    expect(first.etag).toMatch(/^"[0-9a-f]{16}"$/);
    const checked = source.lastCheckedAt!;
    expect(await source.fetch(first.etag)).toEqual({ notModified: true });
    expect(source.lastCheckedAt!.getTime()).toBeGreaterThanOrEqual(checked.getTime());
    expect(server.requests).toEqual([
      { ifNoneMatch: undefined, status: 200 },
      { ifNoneMatch: first.etag, status: 304 },
    ]);
  });

  test('a failing server, an oversized bundle and a server that never answers are errors', async () => {
    server.fail(503);
    await expect(new HttpBundleSource(server.url, POLL).fetch(undefined)).rejects.toThrow(/answered HTTP 503/);
    server.serve(v1);
    await expect(new HttpBundleSource(server.url, { ...POLL, maxBytes: 1024 }).fetch(undefined)).rejects.toThrow(/answer larger than 1024 bytes/);
    const silent = createServer(() => undefined);
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/b.tar.gz`;
      await expect(new HttpBundleSource(url, { ...POLL, timeoutMs: 200 }).fetch(undefined)).rejects.toThrow(/no answer within 200ms/);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  test('fetchJson is unchanged: it sends no If-None-Match, so a 304 is an error', async () => {
    const s = createServer((_req, res) => res.writeHead(304).end());
    await new Promise<void>((done) => s.listen(0, '127.0.0.1', done));
    try {
      const err = await fetchJson(`http://127.0.0.1:${(s.address() as AddressInfo).port}/jwks`, { timeoutMs: 1000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FetchJsonError);
      expect((err as Error).message).toMatch(/answered HTTP 304/);
    } finally {
      s.close();
    }
  });
});

describe('PolicyEngine with a URL source', () => {
  test('loads the served bundle; /readyz detail has the URL, revision, ETag and lastCheckedAt', async () => {
    server.serve(v1);
    const e = engine();
    await e.load();
    expect(e.status()).toMatchObject({ loaded: true, source: server.url, revision: 'v1', lastError: null, etag: expect.stringMatching(/^"/), lastCheckedAt: expect.any(String) });
    expect(allows(e, 1)).toBe(true);
    expect(allows(e, 2)).toBe(false);
  });

  test('loadedAt and lastCheckedAt come from the injected clock; no opa is needed for a bundle', async () => {
    server.serve(v1);
    const frozen = Date.UTC(2031, 4, 17, 12, 0, 0);
    const e = engine({ now: () => frozen, opa: undefined });
    await e.load();
    expect(e.status()).toMatchObject({ loadedAt: '2031-05-17T12:00:00.000Z', lastCheckedAt: '2031-05-17T12:00:00.000Z' });
  });

  test('an unchanged bundle: 304, nothing reloaded; a server without ETags sending the same bytes: nothing reloaded either', async () => {
    server.serve(v1);
    const e = engine();
    await e.load();
    const loadedAt = e.status().loadedAt;
    await e.reload();
    expect(server.requests.map((r) => r.status)).toEqual([200, 304]);
    expect(e.status().loadedAt).toBe(loadedAt);
    server.serve(v1, { etag: false });
    await e.reload();
    await e.reload();
    expect(server.requests.map((r) => r.status)).toEqual([200, 304, 200, 200]);
    expect(e.status()).toMatchObject({ loadedAt, revision: 'v1', etag: null });
  });

  test('a new bundle replaces the active one only once fully loaded; a bad one keeps it and says why', async () => {
    server.serve(v1);
    const e = engine();
    await e.load();
    server.serve(v2);
    await e.reload();
    expect(e.status()).toMatchObject({ revision: 'v2', lastError: null });
    expect(allows(e, 2)).toBe(true);
    server.serve(v1.subarray(0, 200));
    await e.reload();
    expect(e.status()).toMatchObject({ revision: 'v2', lastError: expect.stringMatching(/not a gzip file/) });
    expect(allows(e, 2)).toBe(true);
    server.fail(500);
    await e.reload();
    expect(e.status()).toMatchObject({ revision: 'v2', lastError: expect.stringMatching(/^the policy bundle could not be downloaded: answered HTTP 500/) });
    // The server is back with the active bundle: 304 to its ETag, and the error is cleared.
    server.serve(v2);
    await e.reload();
    expect(server.requests.at(-1)).toMatchObject({ status: 304 });
    expect(e.status()).toMatchObject({ revision: 'v2', lastError: null });
  });

  test('no bundle at start: evaluate fails closed; polling picks it up once served, backing off meanwhile', async () => {
    server.fail(404);
    const e = engine();
    await expect(e.load()).rejects.toThrow(/answered HTTP 404/);
    expect(() => allows(e, 1)).toThrow(expect.objectContaining({ code: 'ERR_POLICY_NOT_LOADED' }));
    e.watch();
    await new Promise((r) => setTimeout(r, 1000));
    // Failures in a row double the wait (100, 200, 400, 800 ms...): a handful of tries, not ten.
    const tries = server.requests.length;
    expect(tries).toBeGreaterThanOrEqual(2);
    expect(tries).toBeLessThanOrEqual(5);
    server.serve(v1);
    await waitFor(async () => e.status().loaded, 'the polled bundle to load');
    expect(e.status()).toMatchObject({ revision: 'v1', lastError: null });
  });

  test('close stops polling', async () => {
    server.serve(v1);
    const e = engine();
    await e.load();
    e.watch();
    await waitFor(async () => server.requests.length >= 3, 'a few polls');
    e.close();
    await new Promise((r) => setTimeout(r, 150));
    const count = server.requests.length;
    await new Promise((r) => setTimeout(r, 400));
    expect(server.requests.length).toBe(count);
  });

  test('policy.data is merged over the downloaded bundle and, when it changes, the cached bundle is rebuilt', async () => {
    server.serve(v1);
    const dataFile = join(mkdtempSync(join(tmpdir(), 'agentward-data-')), 'extra.json');
    writeFileSync(dataFile, '{"tiny":{"want":3}}');
    const e = engine({ dataFile });
    await e.load();
    expect(allows(e, 3)).toBe(true);
    writeFileSync(dataFile, '{"tiny":{"want":4}}');
    await e.reload();
    expect(server.requests.at(-1)).toMatchObject({ status: 304 });
    expect(allows(e, 4)).toBe(true);
    expect(e.status().revision).toMatch(/^v1\+data:[0-9a-f]{8}$/);
  });
});

// ---------------------------------------------------------------- config checks

const POLICIES = resolve(import.meta.dirname, '../../policies');

function problems(policy: string): ConfigProblem[] {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-config-'));
  const text = `upstream: { url: "http://127.0.0.1:3000" }\nresource: { id: "https://tools.example.com/mcp" }\npolicy:\n${policy}\n`;
  try {
    // Config validation, then the checks that read the files it names (src/app/file-checks.ts).
    return checkFiles(parseConfig(text, join(dir, 'agentward.yaml'), {}));
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}

describe('config: policy', () => {
  test('a bundle URL: https anywhere, http on loopback; poll defaults filled in', () => {
    expect(problems('  source: "https://bundles.example.com/agentward/bundle.tar.gz"')).toEqual([]);
    expect(problems('  source: "http://127.0.0.1:8181/bundles/b.tar.gz"\n  poll: { interval: 200ms, timeout: 1s, maxBytes: 4096 }')).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), 'agentward-config-'));
    const loaded = parseConfig(`upstream: { url: "http://127.0.0.1:3000" }\nresource: { id: "https://t.example.com" }\npolicy: { source: "https://b.example.com/b.tar.gz" }\n`, join(dir, 'a.yaml'), {});
    expect(loaded.config.policy.poll).toEqual({ interval: '30s', timeout: '10s', maxBytes: 33554432 });
  });

  test('refused: plain http off loopback, another scheme, a zero interval, an unknown poll key', () => {
    expect(problems('  source: "http://bundles.example.com/b.tar.gz"')).toEqual([
      expect.objectContaining({ path: 'policy.source', message: 'uses plain http to a non-loopback host', fix: expect.stringContaining('use https') }),
    ]);
    expect(problems('  source: "ftp://bundles.example.com/b.tar.gz"')).toEqual([expect.objectContaining({ path: 'policy.source', message: expect.stringContaining('is not an http(s) URL') })]);
    expect(problems('  source: "https://b.example.com/b.tar.gz"\n  poll: { interval: 0s }')).toEqual([expect.objectContaining({ path: 'policy.poll.interval', message: 'is not a duration above zero' })]);
    expect(problems('  source: "https://b.example.com/b.tar.gz"\n  poll: { intervall: 5s }')).toEqual([expect.objectContaining({ path: 'policy.poll.intervall', fix: expect.stringContaining('did you mean "interval"') })]);
  });

  test('verification: a public key file that fits its algorithm, with a bundle source', () => {
    const keys = keyPairFiles('ec');
    expect(problems(`  source: "https://b.example.com/b.tar.gz"\n  verification: { keyFile: "${keys.public}", keyId: k1, scope: write }`)).toEqual([]);
    expect(problems(`  source: "https://b.example.com/b.tar.gz"\n  verification: { keyFile: "${keys.private}" }`)).toEqual([
      expect.objectContaining({ path: 'policy.verification.keyFile', message: expect.stringContaining('holds a private key'), fix: expect.stringContaining("the bundle signer's public key") }),
    ]);
    expect(problems(`  source: "https://b.example.com/b.tar.gz"\n  verification: { keyFile: "${keys.public}", algorithm: RS256 }`)).toEqual([
      expect.objectContaining({ path: 'policy.verification.algorithm', message: expect.stringContaining('algorithm RS256 does not fit the EC prime256v1 key') }),
    ]);
    expect(problems('  source: "https://b.example.com/b.tar.gz"\n  verification: { keyFile: "./missing.pem" }')).toEqual([
      expect.objectContaining({ path: 'policy.verification.keyFile', message: expect.stringContaining('cannot be read (ENOENT)') }),
    ]);
    expect(problems(`  source: "${POLICIES}"\n  verification: { keyFile: "${keys.public}" }`)).toEqual([
      expect.objectContaining({ path: 'policy.verification', message: 'needs a bundle source: signatures are part of OPA bundles' }),
    ]);
    expect(problems('  source: "https://b.example.com/b.tar.gz"\n  verification: { keyId: k1 }')).toEqual([expect.objectContaining({ path: 'policy.verification.keyFile', message: 'is required' })]);
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const edFile = join(mkdtempSync(join(tmpdir(), 'agentward-key-')), 'ed.pem');
    writeFileSync(edFile, ed);
    expect(problems(`  source: "https://b.example.com/b.tar.gz"\n  verification: { keyFile: "${edFile}", algorithm: EdDSA }`)).toEqual([]);
  });
});
