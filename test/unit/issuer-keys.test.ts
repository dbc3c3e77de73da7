/**
 * Issuer key sets (src/keys/issuer-keys.ts) and the outbound JSON fetch under them
 * (src/outbound/http.ts), against real loopback servers: discovery (RFC 8414 §3, OIDC
 * Discovery §4), single-flight refetch on an unknown kid with a cooldown, fail-fast during an
 * outage and recovery by the retry timer; fetch deadlines, size caps and same-origin redirects.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { IssuerKeys, metadataUrls, type IssuerKeysOptions } from '../../src/keys/issuer-keys.ts';
import { fetchJson, FetchJsonError } from '../../src/outbound/http.ts';
import type { IssuerConfig } from '../../src/config/schema.ts';
import { RFC9068_REQUIRED_CLAIMS } from '../../src/identity/issuer-profiles.ts';
import { AgentwardError, type ErrorCode } from '../../src/errors.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { newWorkloadKey } from '../helpers/workload-tokens.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RESOURCE = 'https://tools.example.com/mcp';

// ---------------------------------------------------------------- helpers

interface TestServer {
  url: string;
  /** Requests served, by path. */
  hits: (path: string) => number;
  close(): Promise<void>;
}

/** A loopback server whose handler sees every request; counts hits per path. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse, base: string) => void): Promise<TestServer> {
  const counts = new Map<string, number>();
  let base = '';
  const server = createServer((req, res) => {
    counts.set(req.url ?? '', (counts.get(req.url ?? '') ?? 0) + 1);
    handler(req, res, base);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  cleanups.push(close);
  return { url: base, hits: (path) => counts.get(path) ?? 0, close };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function issuerConfig(issuer: string, extra: Partial<IssuerConfig> = {}): IssuerConfig {
  return { issuer, discovery: 'auto', algorithms: ['ES256', 'RS256'], requiredClaims: [...RFC9068_REQUIRED_CLAIMS], ...extra };
}

function keysFor(config: IssuerConfig, options: Partial<IssuerKeysOptions> = {}): IssuerKeys {
  const keys = new IssuerKeys(config, { maxAgeMs: 3_600_000, cooldownMs: 30_000, timeoutMs: 2000, logger: createLogger('silent'), ...options });
  cleanups.push(() => keys.close());
  return keys;
}

async function testIssuer(options: { path?: string } = {}): Promise<TestIssuer> {
  const issuer = await startIssuer({ audience: RESOURCE, ...options });
  cleanups.push(() => issuer.close());
  return issuer;
}

const header = (kid: string | undefined, alg = 'ES256') => ({ alg, ...(kid === undefined ? {} : { kid }) });
const NO_TOKEN = { payload: '', signature: '', protected: '' };

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<AgentwardError> {
  const err = await caught(promise);
  expect(err).toBeInstanceOf(AgentwardError);
  expect((err as AgentwardError).code).toBe(code);
  return err as AgentwardError;
}

async function expectFetchError(promise: Promise<unknown>, message: RegExp): Promise<FetchJsonError> {
  const err = await caught(promise);
  expect(err).toBeInstanceOf(FetchJsonError);
  expect((err as Error).message).toMatch(message);
  return err as FetchJsonError;
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await sleep(20)) if (check()) return true;
  return check();
}

// ---------------------------------------------------------------- metadataUrls

describe('metadataUrls', () => {
  test.each([
    ['https://as.example.com', ['https://as.example.com/.well-known/oauth-authorization-server', 'https://as.example.com/.well-known/openid-configuration']],
    ['https://as.example.com/', ['https://as.example.com/.well-known/oauth-authorization-server', 'https://as.example.com/.well-known/openid-configuration']],
    ['https://as.example.com/tenant/a', ['https://as.example.com/.well-known/oauth-authorization-server/tenant/a', 'https://as.example.com/tenant/a/.well-known/openid-configuration']],
    ['https://as.example.com/tenant/', ['https://as.example.com/.well-known/oauth-authorization-server/tenant', 'https://as.example.com/tenant/.well-known/openid-configuration']],
    ['http://127.0.0.1:8443/realms/x', ['http://127.0.0.1:8443/.well-known/oauth-authorization-server/realms/x', 'http://127.0.0.1:8443/realms/x/.well-known/openid-configuration']],
  ])('auto for %s: RFC 8414 path-inserted first, then OIDC appended', (issuer, urls) => {
    expect(metadataUrls(issuer, 'auto')).toEqual(urls);
  });

  test('a single discovery method yields only its URL', () => {
    expect(metadataUrls('https://as.example.com/t', 'oauth-authorization-server')).toEqual(['https://as.example.com/.well-known/oauth-authorization-server/t']);
    expect(metadataUrls('https://as.example.com/t', 'openid-configuration')).toEqual(['https://as.example.com/t/.well-known/openid-configuration']);
  });
});

// ---------------------------------------------------------------- discovery

describe('discovery', () => {
  test('RFC 8414: an issuer with a path is found at the path-inserted URL', async () => {
    const issuer = await testIssuer({ path: '/tenant-a' });
    const keys = keysFor(issuerConfig(issuer.issuer));
    await keys.start();
    expect(keys.status()).toEqual({ issuer: issuer.issuer, ready: true, jwksUri: issuer.jwksUri, lastError: null });
    await expect(keys.getKey(header(issuer.keys[0]!.kid), NO_TOKEN)).resolves.toBeDefined();
  });

  test('auto falls back to openid-configuration when RFC 8414 metadata is 404', async () => {
    const issuer = await testIssuer();
    const oidc = await serve((req, res, base) => {
      if (req.url === '/t/.well-known/openid-configuration') json(res, 200, { issuer: `${base}/t`, jwks_uri: issuer.jwksUri });
      else json(res, 404, { error: 'not_found' });
    });
    const keys = keysFor(issuerConfig(`${oidc.url}/t`));
    await keys.start();
    expect(keys.ready).toBe(true);
    expect(keys.status().jwksUri).toBe(issuer.jwksUri);
    expect(oidc.hits('/.well-known/oauth-authorization-server/t')).toBe(1);
    expect(oidc.hits('/t/.well-known/openid-configuration')).toBe(1);
  });

  test('discovery "oauth-authorization-server" does not fall back', async () => {
    const oidc = await serve((req, res, base) => {
      if (req.url === '/.well-known/openid-configuration') json(res, 200, { issuer: base, jwks_uri: `${base}/jwks` });
      else json(res, 404, {});
    });
    const keys = keysFor(issuerConfig(oidc.url, { discovery: 'oauth-authorization-server' }));
    await keys.start();
    expect(keys.ready).toBe(false);
    expect(oidc.hits('/.well-known/openid-configuration')).toBe(0);
    expect(keys.status().lastError).toContain('answered HTTP 404');
  });

  test('metadata naming another issuer is not used (RFC 8414 §3.3): not ready, ERR_KEYS_UNAVAILABLE', async () => {
    const issuer = await testIssuer();
    const liar = await serve((req, res) => {
      if (req.url === '/.well-known/oauth-authorization-server') json(res, 200, { issuer: 'https://as.evil.example', jwks_uri: issuer.jwksUri });
      else json(res, 404, {});
    });
    const keys = keysFor(issuerConfig(liar.url));
    await keys.start();
    expect(keys.ready).toBe(false);
    expect(keys.status().lastError).toContain('names issuer "https://as.evil.example"');
    expect(issuer.jwksHits()).toBe(0);
    await expectCode(keys.getKey(header(issuer.keys[0]!.kid), NO_TOKEN), 'ERR_KEYS_UNAVAILABLE');
  });

  test('metadata whose issuer differs only by a trailing slash is not used either', async () => {
    const server = await serve((req, res, base) => {
      if (req.url === '/.well-known/oauth-authorization-server') json(res, 200, { issuer: `${base}/`, jwks_uri: `${base}/jwks` });
      else json(res, 404, {});
    });
    const keys = keysFor(issuerConfig(server.url));
    await keys.start();
    expect(keys.ready).toBe(false);
    expect(server.hits('/jwks')).toBe(0);
  });

  test('metadata without jwks_uri, or a document that is not a JWK Set → not ready', async () => {
    const server = await serve((req, res, base) => {
      if (req.url === '/a/.well-known/openid-configuration') json(res, 200, { issuer: `${base}/a` });
      else if (req.url === '/jwks-not-a-set') json(res, 200, { kty: 'EC' });
      else json(res, 404, {});
    });
    const noJwksUri = keysFor(issuerConfig(`${server.url}/a`, { discovery: 'openid-configuration' }));
    await noJwksUri.start();
    expect(noJwksUri.status()).toMatchObject({ ready: false, lastError: expect.stringContaining('has no jwks_uri') });
    const notASet = keysFor(issuerConfig(server.url, { jwksUri: `${server.url}/jwks-not-a-set` }));
    await notASet.start();
    expect(notASet.status()).toMatchObject({ ready: false, lastError: expect.stringContaining('is not a JWK Set') });
  });
});

// ---------------------------------------------------------------- unknown kid

describe('a JWK Set file (workload.witIssuers[].jwksFile)', () => {
  test('is read at start and again on an unknown kid, with the same rotation handling; a broken file keeps the last good set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-jwks-file-'));
    const file = join(dir, 'jwks.json');
    const [first, second] = await Promise.all([newWorkloadKey('ES256', 'k1'), newWorkloadKey('ES256', 'k2')]);
    writeFileSync(file, JSON.stringify({ keys: [first.publicJwk] }));
    const clock = { ms: 1_000_000 };
    const keys = keysFor({ issuer: 'https://wit.example', jwksFile: file, discovery: 'auto' } as never, { cooldownMs: 1000, now: () => clock.ms });
    const rotated: (string | undefined)[][] = [];
    keys.onRotation((_issuer, stale) => rotated.push([...stale]));
    await keys.start();
    expect(keys.status()).toEqual({ issuer: 'https://wit.example', ready: true, jwksUri: file, lastError: null });
    await expect(keys.getKey(header('k1'), NO_TOKEN)).resolves.toBeDefined();
    writeFileSync(file, JSON.stringify({ keys: [second.publicJwk] }));
    clock.ms += 2000;
    await expect(keys.getKey(header('k2'), NO_TOKEN)).resolves.toBeDefined();
    expect(rotated).toEqual([['k1']]);
    writeFileSync(file, '{ not json');
    clock.ms += 2000;
    await expectCode(keys.getKey(header('k3'), NO_TOKEN), 'ERR_KEYS_UNAVAILABLE');
    expect(keys.status().lastError).toContain('is not JSON');
    await expect(keys.getKey(header('k2'), NO_TOKEN)).resolves.toBeDefined();
  });
});

describe('unknown kid', () => {
  /** Keys loaded at t=0 with a manual clock; the cooldown is 10 s. */
  async function loaded() {
    const issuer = await testIssuer();
    const clock = { ms: 1_000_000 };
    const keys = keysFor(issuerConfig(issuer.issuer, { jwksUri: issuer.jwksUri }), { cooldownMs: 10_000, now: () => clock.ms });
    await keys.start();
    expect(issuer.jwksHits()).toBe(1);
    return { issuer, keys, clock };
  }

  test('a known kid needs no fetch', async () => {
    const { issuer, keys } = await loaded();
    await keys.getKey(header(issuer.keys[0]!.kid), NO_TOKEN);
    expect(issuer.jwksHits()).toBe(1);
  });

  test('a rotated-in kid is found by one refetch shared by concurrent callers (single flight)', async () => {
    const { issuer, keys, clock } = await loaded();
    const next = await issuer.rotate({ keep: true });
    clock.ms += 60_000; // past the cooldown since the first load
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => keys.getKey(header(next.kid), NO_TOKEN)));
    expect(issuer.jwksHits()).toBe(2);
    // Every caller that arrived while the refetch was running must get the key it brought.
    expect(results.map((r) => (r.status === 'fulfilled' ? 'key' : (r.reason as AgentwardError).code))).toEqual(['key', 'key', 'key', 'key', 'key']);
  });

  test('an unknown kid after the refetch → ERR_TOKEN_KEY_UNKNOWN; a second one within the cooldown does not refetch', async () => {
    const { issuer, keys, clock } = await loaded();
    clock.ms += 60_000;
    await expectCode(keys.getKey(header('kid-a'), NO_TOKEN), 'ERR_TOKEN_KEY_UNKNOWN');
    expect(issuer.jwksHits()).toBe(2);
    clock.ms += 5_000; // within the 10 s cooldown
    await expectCode(keys.getKey(header('kid-b'), NO_TOKEN), 'ERR_TOKEN_KEY_UNKNOWN');
    expect(issuer.jwksHits()).toBe(2);
    clock.ms += 5_000; // cooldown over
    await expectCode(keys.getKey(header('kid-c'), NO_TOKEN), 'ERR_TOKEN_KEY_UNKNOWN');
    expect(issuer.jwksHits()).toBe(3);
  });

  test('within the cooldown of the first load, a rotated-in kid is not fetched yet', async () => {
    const { issuer, keys, clock } = await loaded();
    const next = await issuer.rotate({ keep: true });
    clock.ms += 1_000;
    await expectCode(keys.getKey(header(next.kid), NO_TOKEN), 'ERR_TOKEN_KEY_UNKNOWN');
    expect(issuer.jwksHits()).toBe(1);
  });

  test('rotation listeners get the removed or replaced kids when the set changes, nothing when it is the same', async () => {
    const { issuer, keys, clock } = await loaded();
    const calls: [string, string[]][] = [];
    keys.onRotation((iss, kids) => calls.push([iss, [...kids].map(String).sort()]));
    clock.ms += 60_000;
    await expectCode(keys.getKey(header('kid-a'), NO_TOKEN), 'ERR_TOKEN_KEY_UNKNOWN'); // refetch, same set
    expect(calls).toEqual([]);
    const old = issuer.keys[0]!.kid;
    const next = await issuer.rotate(); // old key removed
    clock.ms += 60_000;
    await keys.getKey(header(next.kid), NO_TOKEN);
    expect(calls).toEqual([[issuer.issuer, [old]]]);
  });
});

// ---------------------------------------------------------------- outages

describe('outages', () => {
  test('endpoint hanging at start: later calls fail fast with ERR_KEYS_UNAVAILABLE; the retry timer loads keys when it is back', async () => {
    const issuer = await testIssuer();
    await issuer.setMode('hang');
    const keys = keysFor(issuerConfig(issuer.issuer, { jwksUri: issuer.jwksUri }), { timeoutMs: 400, cooldownMs: 1000 });
    let started = performance.now();
    await keys.start();
    const startMs = performance.now() - started;
    expect(startMs).toBeGreaterThanOrEqual(350);
    expect(startMs).toBeLessThan(1500);
    expect(keys.status()).toMatchObject({ ready: false, lastError: expect.stringContaining('no answer within 400ms') });

    started = performance.now();
    const err = await expectCode(keys.getKey(header(issuer.keys[0]!.kid), NO_TOKEN), 'ERR_KEYS_UNAVAILABLE');
    expect(performance.now() - started).toBeLessThan(50); // well under the 400 ms fetch timeout
    expect(err.status).toBe(503);

    await issuer.setMode('up');
    // The retry timer (1 s after the first failure) loads the keys without any request.
    expect(await waitFor(() => keys.ready, 3000)).toBe(true);
    await expect(keys.getKey(header(issuer.keys[0]!.kid), NO_TOKEN)).resolves.toBeDefined();
  });

  test('endpoint refusing connections at start: not ready, then recovers', async () => {
    const issuer = await testIssuer();
    await issuer.setMode('down');
    const keys = keysFor(issuerConfig(issuer.issuer, { jwksUri: issuer.jwksUri }), { timeoutMs: 400, cooldownMs: 1000 });
    await keys.start();
    expect(keys.status()).toMatchObject({ ready: false, lastError: expect.stringContaining('request failed') });
    await expectCode(keys.getKey(header(issuer.keys[0]!.kid), NO_TOKEN), 'ERR_KEYS_UNAVAILABLE');
    await issuer.setMode('up');
    expect(await waitFor(() => keys.ready, 3000)).toBe(true);
  });

  test('a known key keeps working while a refresh fails', async () => {
    const issuer = await testIssuer();
    const clock = { ms: 0 };
    const keys = keysFor(issuerConfig(issuer.issuer, { jwksUri: issuer.jwksUri }), { cooldownMs: 10, now: () => clock.ms });
    await keys.start();
    await issuer.setMode('error');
    clock.ms += 1000;
    await expectCode(keys.getKey(header('kid-unknown'), NO_TOKEN), 'ERR_KEYS_UNAVAILABLE');
    await expect(keys.getKey(header(issuer.keys[0]!.kid), NO_TOKEN)).resolves.toBeDefined();
    expect(keys.ready).toBe(true);
  });
});

// ---------------------------------------------------------------- background refresh

describe('background refresh', () => {
  test('keys are refreshed every maxAge', async () => {
    const issuer = await testIssuer();
    const keys = keysFor(issuerConfig(issuer.issuer, { jwksUri: issuer.jwksUri }), { maxAgeMs: 100 });
    await keys.start();
    await sleep(450);
    expect(issuer.jwksHits()).toBeGreaterThanOrEqual(3);
    expect(issuer.jwksHits()).toBeLessThanOrEqual(6);
  });

  test('a maxAge beyond the 24.8-day timer limit does not turn into a refresh every millisecond', async () => {
    // oauth.keys.maxAge "720h" is a valid config value (2 592 000 000 ms > 2^31 - 1): Node's
    // setTimeout replaces an overflowing delay with 1 ms.
    const issuer = await testIssuer();
    const keys = keysFor(issuerConfig(issuer.issuer, { jwksUri: issuer.jwksUri }), { maxAgeMs: 720 * 3_600_000 });
    await keys.start();
    await sleep(200);
    keys.close();
    expect(issuer.jwksHits()).toBe(1);
  });

  test('close() stops the background refresh', async () => {
    const issuer = await testIssuer();
    const keys = keysFor(issuerConfig(issuer.issuer, { jwksUri: issuer.jwksUri }), { maxAgeMs: 50 });
    await keys.start();
    keys.close();
    const hits = issuer.jwksHits();
    await sleep(200);
    expect(issuer.jwksHits()).toBe(hits);
  });
});

// ---------------------------------------------------------------- fetchJson

describe('fetchJson', () => {
  test('returns the parsed JSON of a 200 answer', async () => {
    const server = await serve((_req, res) => json(res, 200, { keys: [] }));
    await expect(fetchJson(`${server.url}/jwks`, { timeoutMs: 1000 })).resolves.toEqual({ keys: [] });
  });

  test('a same-origin redirect is followed (absolute and relative Location)', async () => {
    const server = await serve((req, res, base) => {
      if (req.url === '/a') res.writeHead(302, { location: `${base}/b` }).end();
      else if (req.url === '/b') res.writeHead(307, { location: '/c' }).end();
      else json(res, 200, { at: req.url });
    });
    await expect(fetchJson(`${server.url}/a`, { timeoutMs: 1000 })).resolves.toEqual({ at: '/c' });
  });

  test('a redirect to another origin (same host, other port) is refused and never followed', async () => {
    const other = await serve((_req, res) => json(res, 200, { keys: [] }));
    const server = await serve((_req, res) => res.writeHead(301, { location: `${other.url}/jwks` }).end());
    await expectFetchError(fetchJson(`${server.url}/jwks`, { timeoutMs: 1000 }), /refused a redirect to another origin/);
    expect(other.hits('/jwks')).toBe(0);
  });

  test('too many redirects, or a redirect without Location, is refused', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/nowhere') res.writeHead(302).end();
      else res.writeHead(302, { location: '/loop' }).end();
    });
    await expectFetchError(fetchJson(`${server.url}/loop`, { timeoutMs: 1000, maxRedirects: 3 }), /too many redirects/);
    expect(server.hits('/loop')).toBe(4);
    await expectFetchError(fetchJson(`${server.url}/nowhere`, { timeoutMs: 1000 }), /redirect 302 without a Location/);
  });

  test('a status other than 200 is refused, and the body is not repeated in the error', async () => {
    const server = await serve((_req, res) => json(res, 500, { secret: 'internal-stack-trace' }));
    const err = await expectFetchError(fetchJson(`${server.url}/jwks`, { timeoutMs: 1000 }), /answered HTTP 500/);
    expect(err.message).not.toContain('internal-stack-trace');
    expect(err.url).toBe(`${server.url}/jwks`);
  });

  test('an oversized body is refused, declared or streamed', async () => {
    const big = JSON.stringify({ keys: [], pad: 'x'.repeat(5000) });
    const server = await serve((req, res) => {
      if (req.url === '/declared') res.writeHead(200, { 'content-length': Buffer.byteLength(big) }).end(big);
      else {
        res.writeHead(200); // chunked: no content-length to trust
        res.write(big.slice(0, 2500));
        res.end(big.slice(2500));
      }
    });
    await expectFetchError(fetchJson(`${server.url}/declared`, { timeoutMs: 1000, maxBytes: 1024 }), /answer larger than 1024 bytes/);
    await expectFetchError(fetchJson(`${server.url}/streamed`, { timeoutMs: 1000, maxBytes: 1024 }), /answer larger than 1024 bytes/);
    await expect(fetchJson(`${server.url}/declared`, { timeoutMs: 1000, maxBytes: 10_000 })).resolves.toMatchObject({ keys: [] });
  });

  test('a body that is not JSON is refused', async () => {
    const server = await serve((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'));
    await expectFetchError(fetchJson(`${server.url}/jwks`, { timeoutMs: 1000 }), /answer is not JSON/);
  });

  test('a server that never answers: rejected at the deadline', async () => {
    const server = await serve(() => undefined);
    const started = performance.now();
    await expectFetchError(fetchJson(`${server.url}/jwks`, { timeoutMs: 300 }), /no answer within 300ms/);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(1000);
  });

  test('a body that stalls after the head: rejected at the same deadline', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":');
    });
    const started = performance.now();
    await expectFetchError(fetchJson(`${server.url}/jwks`, { timeoutMs: 300 }), /no answer within 300ms/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test('a refused connection fails at once', async () => {
    const server = await serve(() => undefined);
    const url = `${server.url}/jwks`;
    await server.close();
    await expectFetchError(fetchJson(url, { timeoutMs: 1000 }), /request failed/);
  });
});
