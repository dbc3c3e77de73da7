/**
 * OPA bundles for tests, and a real bundle server (OPA "Bundle Service API") on loopback.
 *
 * - `buildBundle` runs the real `opa build -b -t wasm` (signing with `--signing-key` when asked),
 *   like a CI pipeline publishing a policy;
 * - `unpack`/`pack` take a bundle apart and put it back together, to tamper with one file;
 * - `startBundleServer` serves one bundle with an ETag, answers 304 to a matching If-None-Match,
 *   can fail on purpose, and records every request.
 */
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { packBundle, unpackBundle } from '../../src/policy/bundle.ts';
import { opaBinary } from '../../src/policy/compile.ts';

const run = promisify(execFile);

export interface BuildOptions {
  entrypoint?: string;
  revision?: string;
  /** PEM private key file: the bundle is signed (`.signatures.json`). */
  signingKey?: string;
  signingAlg?: string;
  /** `kid` of the signature (opa's default is "default"). */
  keyId?: string;
  /** Extra signature claims such as `{ scope: "write" }`. */
  claims?: Record<string, unknown>;
}

/** A folder with `files` (relative names) in a fresh temp dir. */
export function writeFolder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-rego-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

/** `opa build -b -t wasm` of `dir` (run inside it, like compileRego), returning the .tar.gz bytes. */
export async function buildBundle(dir: string, options: BuildOptions = {}): Promise<Buffer> {
  const out = join(mkdtempSync(join(tmpdir(), 'agentward-bundle-')), 'bundle.tar.gz');
  const args = ['build', '-b', '-t', 'wasm', '-e', options.entrypoint ?? 'agentward/decision', '--ignore', '*_test.rego', '-o', out];
  if (options.revision) args.push('--revision', options.revision);
  if (options.signingKey) {
    args.push('--signing-key', options.signingKey, '--signing-alg', options.signingAlg ?? 'RS256');
    if (options.keyId) args.push('--verification-key-id', options.keyId);
    if (options.claims) {
      const claimsFile = join(dirname(out), 'claims.json');
      writeFileSync(claimsFile, JSON.stringify(options.claims));
      args.push('--claims-file', claimsFile);
    }
  }
  args.push('.');
  await run(opaBinary(undefined), args, { cwd: dir, timeout: 120_000 });
  return readFileSync(out);
}

/** A signing key pair in PEM files: `private` for opa build, `public` for policy.verification. */
export function keyPairFiles(type: 'rsa' | 'ec' = 'rsa'): { private: string; public: string } {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-keys-'));
  const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const files = { private: join(dir, 'private.pem'), public: join(dir, 'public.pem') };
  writeFileSync(files.private, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(files.public, pair.publicKey.export({ type: 'spki', format: 'pem' }));
  return files;
}

/** The files of a bundle, by name. */
export function unpack(gz: Buffer): Map<string, Buffer> {
  return unpackBundle(gz);
}

/** A .tar.gz (ustar, entries named "/name" as opa writes them) of `files`. */
export function pack(files: ReadonlyMap<string, Buffer | string> | Record<string, Buffer | string>): Buffer {
  const entries = files instanceof Map ? [...files] : Object.entries(files);
  return packBundle(entries.map(([name, content]) => [name, Buffer.isBuffer(content) ? content : Buffer.from(content)] as const));
}

/** `gz` with one file replaced (or removed, with `undefined`), everything else as it was. */
export function withFile(gz: Buffer, name: string, content: Buffer | string | undefined): Buffer {
  const files = new Map<string, Buffer | string>(unpack(gz));
  if (content === undefined) files.delete(name);
  else files.set(name, content);
  return pack(files);
}

export interface BundleRequest {
  ifNoneMatch: string | undefined;
  status: number;
}

export interface TestBundleServer {
  /** The bundle URL. */
  url: string;
  /** Serves `body` from now on, with a strong ETag of its digest (none with `etag: false`). */
  serve(body: Buffer, options?: { etag?: boolean }): void;
  /** Answers every request with this status (and no bundle) until `serve` is called again. */
  fail(status: number): void;
  requests: BundleRequest[];
  close(): Promise<void>;
}

export async function startBundleServer(path = '/bundles/agentward.tar.gz'): Promise<TestBundleServer> {
  let current: { body: Buffer; etag: string | undefined } | undefined;
  let failing: number | undefined;
  const requests: BundleRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const ifNoneMatch = req.headers['if-none-match'];
    const answer = (status: number, headers: Record<string, string> = {}, body?: Buffer) => {
      requests.push({ ifNoneMatch, status });
      res.writeHead(status, headers).end(body);
    };
    if (req.url !== path) return answer(404);
    if (failing !== undefined || !current) return answer(failing ?? 404);
    const etag = current.etag;
    if (etag !== undefined && ifNoneMatch === etag) return answer(304, { etag });
    answer(200, { 'content-type': 'application/gzip', ...(etag ? { etag } : {}) }, current.body);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    serve(body, options = {}) {
      failing = undefined;
      current = { body, etag: options.etag === false ? undefined : `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` };
    },
    fail(status) {
      failing = status;
    },
    requests,
    close: () =>
      new Promise<void>((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
  };
}
