/**
 * SPIFFE trust bundles (src/keys/trust-bundle.ts; Trust Domain and Bundle §4): parsing per `use`
 * (BND-N01..N04, N07), X.509 authorities, file hot reload, endpoint polling at
 * `spiffe_refresh_hint`, `spiffe_sequence` monotonicity, and the bounded use of a failing
 * endpoint's last good bundle before failing closed. Real files in temp dirs, a real loopback
 * HTTP server, a frozen clock where time matters.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK, type CryptoKey } from 'jose';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { TrustBundle, MIN_REFRESH_MS, type TrustBundleOptions } from '../../src/keys/trust-bundle.ts';
import { AgentwardError } from '../../src/errors.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createCa } from '../helpers/pki.ts';

const DOMAIN = 'example.org';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface TestKey {
  privateKey: CryptoKey;
  jwk: JWK;
}

async function key(kid?: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk: kid === undefined ? jwk : { ...jwk, kid } };
}

function entry(k: TestKey, use: string | undefined): JWK {
  return use === undefined ? { ...k.jwk } : { ...k.jwk, use };
}

function x509Entry(ca: { der: Buffer; x509: { publicKey: { export(o: { format: 'jwk' }): JWK } } }): JWK {
  return { ...ca.x509.publicKey.export({ format: 'jwk' }), use: 'x509-svid', x5c: [ca.der.toString('base64')] };
}

const sign = (k: TestKey, sub = `spiffe://${DOMAIN}/svc`) =>
  new SignJWT({ sub, aud: 'x' }).setProtectedHeader({ alg: 'ES256', ...(k.jwk.kid === undefined ? {} : { kid: k.jwk.kid }) }).setIssuedAt().setExpirationTime('5m').sign(k.privateKey);

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agentward-bundle-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes atomically (write a temp file, rename onto the target), as editors and Kubernetes do. */
async function writeBundle(file: string, body: unknown): Promise<void> {
  const tmp = `${file}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, typeof body === 'string' ? body : JSON.stringify(body));
  await rename(tmp, file);
}

function bundleFor(options: Partial<TrustBundleOptions> & Pick<TrustBundleOptions, 'source'>): TrustBundle {
  const bundle = new TrustBundle({ trustDomain: DOMAIN, timeoutMs: 2000, logger: createLogger('silent'), debounceMs: 20, ...options });
  cleanups.push(() => bundle.close());
  return bundle;
}

/** Polls with real timers (node:timers/promises is not faked by vi.useFakeTimers). */
async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (check()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof AgentwardError ? err.code : `not AgentwardError: ${String(err)}`;
  }
  return undefined;
}

/** A loopback bundle endpoint whose answer the test sets. */
async function endpoint(): Promise<{ url: string; hits: () => number; answer: (status: number, body?: unknown) => void }> {
  let status = 200;
  let body: unknown = { keys: [] };
  let hits = 0;
  const server = createServer((_req, res: ServerResponse) => {
    hits++;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundle`,
    hits: () => hits,
    answer: (s, b) => {
      status = s;
      if (b !== undefined) body = b;
    },
  };
}

// ---------------------------------------------------------------- parsing

describe('bundle parsing (SPIFFE Trust Domain and Bundle §4)', () => {
  test('sorts entries by use; unknown or missing use, jwt-svid without kid, x509-svid without x5c are ignored', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bundle.json');
    const jwt = await key('jwt-1');
    const wit = await key(); // wit-svid keys may lack kid
    const jwtNoKid = await key();
    const other = await key('other');
    const ca = createCa('example.org root');
    await writeBundle(file, {
      spiffe_sequence: 1,
      keys: [
        entry(jwt, 'jwt-svid'),
        entry(wit, 'wit-svid'),
        x509Entry(ca),
        entry(other, 'sig'), // BND-N02: unknown use
        entry(other, undefined), // BND-N01: no use
        entry(jwtNoKid, 'jwt-svid'), // JWT-SVID key without kid: ignored
        { ...x509Entry(ca), x5c: undefined }, // BND-N03
        { kty: 'oct', k: 'c2VjcmV0', use: 'jwt-svid', kid: 'hmac' }, // not a public key type
        { ...jwt.jwk, kid: 'leaked', use: 'jwt-svid', d: 'AAAA' }, // private material
      ],
    });
    const bundle = bundleFor({ source: { file } });
    await bundle.start();
    expect(bundle.ready).toBe(true);
    expect(bundle.status()).toMatchObject({ trustDomain: DOMAIN, source: 'file', sequence: 1, lastError: null, stale: false, keys: { jwtSvid: 1, witSvid: 1, x509Svid: 1 } });
    expect(bundle.keys('jwt-svid').map((k) => k.kid)).toEqual(['jwt-1']);

    // JWT-SVID keys verify JWT-SVIDs; the WIT key does not (BND-N07), nor the reverse.
    await expect(jwtVerify(await sign(jwt), bundle.jwtSvidKeys())).resolves.toBeTruthy();
    await expect(jwtVerify(await sign(wit), bundle.witSvidKeys())).resolves.toBeTruthy();
    await expect(jwtVerify(await sign(wit), bundle.jwtSvidKeys())).rejects.toThrow();
    await expect(jwtVerify(await sign(jwt), bundle.witSvidKeys())).rejects.toThrow();
    await expect(jwtVerify(await sign(other), bundle.jwtSvidKeys())).rejects.toThrow();
    await expect(jwtVerify(await sign(jwtNoKid), bundle.jwtSvidKeys())).rejects.toThrow();
  });

  test('x509-svid authorities are decoded from x5c[0]; non-CA certificates and key mismatches are ignored', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bundle.json');
    const ca = createCa('root A');
    const ca2 = createCa('root B');
    const leaf = ca.issue({ cn: 'leaf', sans: { uri: [`spiffe://${DOMAIN}/svc`] } });
    await writeBundle(file, {
      keys: [
        x509Entry(ca),
        { ...x509Entry(leaf), x5c: [leaf.der.toString('base64')] }, // not a CA
        { ...x509Entry(ca), x5c: [ca2.der.toString('base64')] }, // JWK key differs from the certificate's
        { ...x509Entry(ca), x5c: ['bm90IGEgY2VydA=='] }, // not DER
      ],
    });
    const bundle = bundleFor({ source: { file } });
    await bundle.start();
    const authorities = bundle.x509Authorities();
    expect(authorities).toHaveLength(1);
    expect(authorities[0]!.fingerprint256).toBe(ca.x509.fingerprint256);
    expect(leaf.x509.checkIssued(authorities[0]!)).toBe(true);
  });

  test('an empty keys array is a valid bundle that trusts nothing (BND-N04)', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bundle.json');
    await writeBundle(file, { keys: [] });
    const bundle = bundleFor({ source: { file } });
    await bundle.start();
    expect(bundle.ready).toBe(true);
    expect(bundle.x509Authorities()).toEqual([]);
    await expect(jwtVerify(await sign(await key('k')), bundle.jwtSvidKeys())).rejects.toThrow();
  });

  test('documents that are not a JWK Set are refused whole', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bundle.json');
    for (const body of ['not json', { nokeys: [] }, { keys: [], spiffe_sequence: -1 }, { keys: [], spiffe_refresh_hint: 'soon' }, [1]]) {
      await writeBundle(file, body);
      const bundle = bundleFor({ source: { file } });
      await bundle.start();
      expect(bundle.ready, JSON.stringify(body)).toBe(false);
      expect(bundle.status().lastError).toBeTruthy();
      expect(codeOf(() => bundle.jwtSvidKeys())).toBe('ERR_KEYS_UNAVAILABLE');
      expect(codeOf(() => bundle.x509Authorities())).toBe('ERR_KEYS_UNAVAILABLE');
    }
  });

  test('a missing file: not ready, accessors fail closed', async () => {
    const bundle = bundleFor({ source: { file: join(await tempDir(), 'absent.json') } });
    await bundle.start();
    expect(bundle.ready).toBe(false);
    expect(codeOf(() => bundle.witSvidKeys())).toBe('ERR_KEYS_UNAVAILABLE');
  });

  test('construction refuses plain http off loopback and malformed trust domains', () => {
    const logger = createLogger('silent');
    expect(() => new TrustBundle({ trustDomain: DOMAIN, source: { url: 'http://bundles.example.org/b' }, timeoutMs: 1000, logger })).toThrow(/https/);
    expect(() => new TrustBundle({ trustDomain: 'Example.org', source: { file: '/x' }, timeoutMs: 1000, logger })).toThrow(/trust domain/);
    expect(() => new TrustBundle({ trustDomain: DOMAIN, source: { url: 'https://bundles.example.org/b' }, timeoutMs: 1000, logger })).not.toThrow();
  });
});

// ---------------------------------------------------------------- files

describe('bundle files', () => {
  test('hot reload: a changed file installs new keys; a broken file keeps the last good bundle', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bundle.json');
    const k1 = await key('k1');
    const k2 = await key('k2');
    await writeBundle(file, { keys: [entry(k1, 'jwt-svid')] });
    const bundle = bundleFor({ source: { file } });
    const rotations: unknown[] = [];
    bundle.onRotation((_td, removed) => rotations.push([...removed.jwtSvid]));
    await bundle.start();
    expect(bundle.keys('jwt-svid').map((k) => k.kid)).toEqual(['k1']);

    await writeBundle(file, { keys: [entry(k2, 'jwt-svid')] });
    await until(() => bundle.keys('jwt-svid')[0]?.kid === 'k2', 'reload to k2');
    await expect(jwtVerify(await sign(k2), bundle.jwtSvidKeys())).resolves.toBeTruthy();
    await expect(jwtVerify(await sign(k1), bundle.jwtSvidKeys())).rejects.toThrow();
    expect(rotations).toEqual([['k1']]);

    // Other files in the folder do not trigger reloads; a broken bundle keeps k2.
    await writeFile(join(dir, 'unrelated.log'), 'x');
    await writeBundle(file, '{ "keys": [ broken');
    await until(() => bundle.status().lastError !== null, 'the broken file to be seen');
    expect(bundle.keys('jwt-svid').map((k) => k.kid)).toEqual(['k2']);
    await expect(jwtVerify(await sign(k2), bundle.jwtSvidKeys())).resolves.toBeTruthy();

    // Fixed again.
    await writeBundle(file, { keys: [entry(k1, 'jwt-svid'), entry(k2, 'jwt-svid')] });
    await until(() => bundle.status().lastError === null && bundle.keys('jwt-svid').length === 2, 'the fixed file');
  });

  test('files never go stale: maxStale applies to endpoints only', async () => {
    let now = 1_000_000;
    const file = join(await tempDir(), 'bundle.json');
    await writeBundle(file, { keys: [] });
    const bundle = bundleFor({ source: { file }, now: () => now, maxStaleMs: 1000 });
    await bundle.start();
    now += 10_000_000;
    expect(bundle.status().stale).toBe(false);
    expect(bundle.x509Authorities()).toEqual([]);
  });
});

// ---------------------------------------------------------------- endpoint

describe('bundle endpoint (SPIFFE Federation §4.1, §5)', () => {
  test('polls at spiffe_refresh_hint (bounded below by 10 s) and picks up rotations', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const server = await endpoint();
    const k1 = await key('k1');
    const k2 = await key('k2');
    server.answer(200, { spiffe_sequence: 1, spiffe_refresh_hint: 30, keys: [entry(k1, 'jwt-svid')] });
    const bundle = bundleFor({ source: { url: server.url } });
    await bundle.start();
    expect(server.hits()).toBe(1);
    expect(bundle.status()).toMatchObject({ source: 'url', refreshMs: 30_000, sequence: 1 });

    server.answer(200, { spiffe_sequence: 2, spiffe_refresh_hint: 1, keys: [entry(k2, 'jwt-svid')] });
    await vi.advanceTimersByTimeAsync(29_000);
    expect(server.hits()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    await until(() => bundle.status().sequence === 2, 'the poll at the refresh hint');
    expect(server.hits()).toBe(2);
    expect(bundle.keys('jwt-svid').map((k) => k.kid)).toEqual(['k2']);
    // A hint of 1 s is raised to the 10 s floor.
    expect(bundle.status().refreshMs).toBe(MIN_REFRESH_MS);
    await vi.advanceTimersByTimeAsync(MIN_REFRESH_MS - 1);
    expect(server.hits()).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => server.hits() === 3, 'the next poll');
  });

  test('an unknown kid refetches the endpoint once (single flight, cooldown) and verifies with the rotated-in key', async () => {
    const server = await endpoint();
    const k1 = await key('k1');
    const k2 = await key('k2');
    server.answer(200, { spiffe_sequence: 1, keys: [entry(k1, 'jwt-svid')] });
    let clock = Date.now();
    const bundle = bundleFor({ source: { url: server.url }, now: () => clock, unknownKeyCooldownMs: 5000 });
    await bundle.start();
    expect(server.hits()).toBe(1);

    // The endpoint already serves k2; the installed bundle does not know it yet.
    server.answer(200, { spiffe_sequence: 2, keys: [entry(k1, 'jwt-svid'), entry(k2, 'jwt-svid')] });
    const token = await sign(k2);
    const first = bundle.jwtSvidKeys();
    await expect(jwtVerify(token, first)).resolves.toBeDefined();
    expect(server.hits()).toBe(2);
    expect(bundle.status().sequence).toBe(2);

    // A kid nobody has: one refetch per cooldown, never a fetch per request.
    const stranger = await sign(await key('k9'));
    await expect(jwtVerify(stranger, bundle.jwtSvidKeys())).rejects.toThrow();
    expect(server.hits()).toBe(2);
    clock += 5000;
    await expect(jwtVerify(stranger, bundle.jwtSvidKeys())).rejects.toThrow();
    await expect(jwtVerify(stranger, bundle.jwtSvidKeys())).rejects.toThrow();
    expect(server.hits()).toBe(3);
    clock += 5000;
    await expect(jwtVerify(stranger, bundle.jwtSvidKeys())).rejects.toThrow();
    expect(server.hits()).toBe(4);
    expect(first).not.toBe(bundle.jwtSvidKeys());
  });

  test('a healthy endpoint polled less often than maxStale never goes stale', async () => {
    const server = await endpoint();
    server.answer(200, { keys: [entry(await key('k1'), 'jwt-svid')] });
    let clock = Date.now();
    const bundle = bundleFor({ source: { url: server.url }, now: () => clock, maxStaleMs: 1000 });
    await bundle.start();
    clock += 60_000;
    expect(bundle.status().stale).toBe(false);
    expect(codeOf(() => bundle.jwtSvidKeys())).toBeUndefined();
  });

  test('without a hint, polls every defaultRefreshMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const server = await endpoint();
    server.answer(200, { keys: [] });
    const bundle = bundleFor({ source: { url: server.url } });
    await bundle.start();
    expect(bundle.status().refreshMs).toBe(300_000);
    await vi.advanceTimersByTimeAsync(299_999);
    expect(server.hits()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => server.hits() === 2, 'the 5-minute poll');
  });

  test('a lower spiffe_sequence is refused and the newer bundle kept', async () => {
    const server = await endpoint();
    const k1 = await key('k1');
    const old = await key('old');
    const k3 = await key('k3');
    server.answer(200, { spiffe_sequence: 5, keys: [entry(k1, 'jwt-svid')] });
    const bundle = bundleFor({ source: { url: server.url } });
    await bundle.start();

    server.answer(200, { spiffe_sequence: 4, keys: [entry(old, 'jwt-svid')] });
    expect(await bundle.refresh()).toBe(false);
    expect(bundle.status()).toMatchObject({ sequence: 5, lastError: expect.stringMatching(/spiffe_sequence went backwards/) });
    expect(bundle.keys('jwt-svid').map((k) => k.kid)).toEqual(['k1']);

    server.answer(200, { spiffe_sequence: 6, keys: [entry(k3, 'jwt-svid')] });
    expect(await bundle.refresh()).toBe(true);
    expect(bundle.status()).toMatchObject({ sequence: 6, lastError: null });
    expect(bundle.keys('jwt-svid').map((k) => k.kid)).toEqual(['k3']);
  });

  test('endpoint down: the last good bundle serves until maxStale, then ERR_KEYS_UNAVAILABLE; recovery restores it', async () => {
    let now = 1_000_000;
    const server = await endpoint();
    const k1 = await key('k1');
    server.answer(200, { spiffe_sequence: 1, keys: [entry(k1, 'jwt-svid')] });
    const bundle = bundleFor({ source: { url: server.url }, now: () => now, maxStaleMs: 3_600_000 });
    await bundle.start();
    const token = await sign(k1);

    server.answer(503);
    now += 1_800_000;
    expect(await bundle.refresh()).toBe(false);
    expect(bundle.status()).toMatchObject({ ready: true, stale: false, lastError: expect.stringMatching(/503/) });
    await expect(jwtVerify(token, bundle.jwtSvidKeys())).resolves.toBeTruthy();

    now += 1_800_001; // just past maxStale since the last success
    expect(await bundle.refresh()).toBe(false);
    expect(bundle.status().stale).toBe(true);
    for (const accessor of [() => bundle.jwtSvidKeys(), () => bundle.witSvidKeys(), () => bundle.x509Authorities()]) {
      expect(codeOf(accessor)).toBe('ERR_KEYS_UNAVAILABLE');
    }

    // What the metrics read: two failed loads since the one that worked, that one's time kept.
    expect(bundle.refreshStats()).toEqual({ refreshes: 1, failures: 2, loadedAt: 1_000_000 });

    server.answer(200);
    expect(await bundle.refresh()).toBe(true);
    expect(bundle.status()).toMatchObject({ stale: false, lastError: null });
    expect(bundle.refreshStats()).toEqual({ refreshes: 2, failures: 2, loadedAt: now });
    await expect(jwtVerify(token, bundle.jwtSvidKeys())).resolves.toBeTruthy();
  });

  test('after a failure the poll retries sooner than the refresh interval', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const server = await endpoint();
    server.answer(200, { spiffe_refresh_hint: 60, keys: [] });
    const bundle = bundleFor({ source: { url: server.url } });
    await bundle.start();
    server.answer(500);
    await vi.advanceTimersByTimeAsync(60_000);
    await until(() => bundle.status().lastError !== null, 'the failed poll');
    server.answer(200);
    await vi.advanceTimersByTimeAsync(1_000); // first retry after 1 s
    await until(() => bundle.status().lastError === null, 'the retry');
    expect(server.hits()).toBe(3);
  });

  test('concurrent refreshes share one fetch', async () => {
    const server = await endpoint();
    server.answer(200, { keys: [] });
    const bundle = bundleFor({ source: { url: server.url } });
    const results = await Promise.all([bundle.refresh(), bundle.refresh(), bundle.refresh()]);
    expect(results).toEqual([true, true, true]);
    expect(server.hits()).toBe(1);
  });
});
