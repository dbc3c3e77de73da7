/**
 * A real token issuer for tests: an HTTP server on loopback publishing RFC 8414 metadata and a
 * JWK Set, with keys generated at start. It can rotate keys, go down (refuse connections) or
 * hang (accept and never answer), so tests exercise the proxy's real key fetching.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type CryptoKey } from 'jose';

/** up: serves; down: refuses connections; hang: accepts and never answers; error: HTTP 500. */
export type IssuerMode = 'up' | 'down' | 'hang' | 'error';

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface TestIssuer {
  issuer: string;
  jwksUri: string;
  /** Keys published in the JWK Set, newest last. */
  keys: TestKey[];
  /** Signs claims (iss, aud, exp... defaulted) with the newest key unless told otherwise. */
  mint(claims?: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** Adds a new key (published at once) and returns it. */
  rotate(options?: { alg?: string; keep?: boolean }): Promise<TestKey>;
  setMode(mode: IssuerMode): Promise<void>;
  /** Number of JWK Set requests served. */
  jwksHits(): number;
  close(): Promise<void>;
}

export interface MintOptions {
  key?: TestKey;
  header?: Record<string, unknown>;
  /** Remove these claims from the defaults. */
  omit?: string[];
}

export async function newKey(alg = 'ES256', kid = `k-${Math.random().toString(36).slice(2, 8)}`): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

export async function startIssuer(options: { audience: string; alg?: string; path?: string } ): Promise<TestIssuer> {
  const keys: TestKey[] = [await newKey(options.alg ?? 'ES256')];
  let mode: IssuerMode = 'up';
  let hits = 0;
  const sockets = new Set<Socket>();
  let base = '';
  const issuerPath = options.path ?? '';
  const server: Server = createServer((req, res) => {
    if (mode === 'hang') return; // never answers
    if (mode === 'error') {
      res.writeHead(500).end('boom');
      return;
    }
    if (req.url === `/.well-known/oauth-authorization-server${issuerPath}`) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: base + issuerPath, jwks_uri: `${base}/jwks` }));
      return;
    }
    if (req.url === '/jwks') {
      hits++;
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
      return;
    }
    res.writeHead(404).end();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  const issuer = base + issuerPath;

  return {
    issuer,
    jwksUri: `${base}/jwks`,
    keys,
    async mint(claims = {}, opts = {}) {
      const key = opts.key ?? keys.at(-1)!;
      const now = Math.floor(Date.now() / 1000);
      const defaults: Record<string, unknown> = {
        iss: issuer,
        aud: options.audience,
        sub: 'user-42',
        client_id: 'research-bot',
        iat: now,
        exp: now + 300,
        jti: `jti-${Math.random().toString(36).slice(2)}`,
        scope: 'tools.read',
      };
      for (const name of opts.omit ?? []) delete defaults[name];
      const payload = { ...defaults, ...claims };
      for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
      return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...opts.header } as never).sign(key.privateKey);
    },
    async rotate(opts = {}) {
      const key = await newKey(opts.alg ?? options.alg ?? 'ES256');
      if (!opts.keep) keys.splice(0, keys.length);
      keys.push(key);
      return key;
    },
    async setMode(m) {
      const wasDown = mode === 'down';
      mode = m;
      for (const s of sockets) s.destroy();
      if (m === 'down' && !wasDown) await new Promise<void>((r) => server.close(() => r()));
      if (m !== 'down' && wasDown) await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    jwksHits: () => hits,
    async close() {
      for (const s of sockets) s.destroy();
      if (mode !== 'down') await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
