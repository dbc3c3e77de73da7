/**
 * The library as a user gets it (docs/library.md): `npm pack` builds the package (prepack runs
 * `npm run build:lib` and `npm run build:bundle`), the tarball is unpacked into a fresh project's
 * node_modules/agentward with the runtime dependencies beside it, and that project imports
 * `agentward/verify` and `agentward/policy` by package name, with plain `node` (no type stripping:
 * Node refuses it under node_modules) and with `tsc` against the shipped declarations. The test
 * vectors are made here with real keys for one frozen instant, which the consumer hands the
 * verifiers as their clock.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newKey } from '../helpers/issuer.ts';
import { proof, proofKey } from '../helpers/dpop.ts';
import { bundleDocument, mintWit, mintWpt, newWorkloadKey } from '../helpers/workload-tokens.ts';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
/** The repository's installed packages (a symlink in a worktree): where the runtime dependencies come from. */
const MODULES = realpathSync(join(REPO, 'node_modules'));
const FIXTURES = join(REPO, 'test/fixtures/library');

/** The frozen instant of every vector: far from the real clock, so a verifier reading Date.now would fail them. */
const NOW = Date.UTC(2031, 4, 17, 12, 0, 0);
const NOW_S = NOW / 1000;
const ISSUER = 'https://as.example.com';
const RESOURCE = 'https://api.example.com';
const TARGET = 'https://api.example.com/tools';

let work: string;
let project: string;
let packageDir: string;

/** An RFC 9068 access token signed by `key`, for the frozen instant. */
async function accessToken(key: Awaited<ReturnType<typeof newKey>>, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ iss: ISSUER, sub: 'user-42', aud: RESOURCE, client_id: 'research-bot', scope: 'tools.read', iat: NOW_S, exp: NOW_S + 300, jti: `j-${Math.random()}`, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .sign(key.privateKey);
}

/** Links a package of the repository's node_modules into the project's, scope folder included. */
function linkModule(name: string): void {
  const target = join(project, 'node_modules', name);
  mkdirSync(dirname(target), { recursive: true });
  symlinkSync(join(MODULES, name), target, 'dir');
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'agentward-library-'));
  project = join(work, 'project');
  packageDir = join(project, 'node_modules', 'agentward');
  mkdirSync(packageDir, { recursive: true });

  // The package as npm builds it: prepack compiles dist/, `files` decides what ships.
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: REPO, maxBuffer: 16 << 20 });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await run('tar', ['-xzf', join(work, filename), '-C', packageDir, '--strip-components=1']);

  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const name of Object.keys(manifest.dependencies)) linkModule(name);
  // For the TypeScript consumer only: the Node.js types the declarations refer to.
  linkModule('@types/node');
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'library-consumer', private: true, type: 'module' }));
  for (const file of readdirSync(FIXTURES)) cpSync(join(FIXTURES, file), join(project, file));

  // The vectors: an issuer's key set file, a SPIFFE bundle file, and credentials for NOW.
  const signer = await newKey('ES256', 'as-1');
  const jwksFile = join(work, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [signer.publicJwk] }));
  const holder = await proofKey('ES256');
  const bound = await accessToken(signer, { cnf: { jkt: holder.jkt } });
  const witIssuer = await newWorkloadKey('ES256', 'wit-1');
  const workload = await newWorkloadKey('ES256');
  const bundleFile = join(work, 'bundle.json');
  writeFileSync(bundleFile, JSON.stringify(bundleDocument({ witSvid: [witIssuer.publicJwk] })));
  const wit = await mintWit({ key: witIssuer, sub: 'spiffe://example.org/agent/research', cnfJwk: workload.publicJwk, iat: NOW_S, exp: NOW_S + 3600 });
  const vectors = {
    now: NOW,
    issuer: ISSUER,
    resourceId: RESOURCE,
    jwksFile,
    accessToken: {
      valid: await accessToken(signer),
      // Expired an hour before NOW: still years ahead of the real clock.
      expired: await accessToken(signer, { iat: NOW_S - 7200, exp: NOW_S - 3600 }),
      otherAudience: await accessToken(signer, { aud: 'https://other.example.com' }),
    },
    dpop: {
      method: 'POST',
      uri: TARGET,
      accessToken: bound,
      proof: await proof(holder, { htm: 'POST', htu: TARGET, accessToken: bound, claims: { iat: NOW_S } }),
    },
    wimse: {
      trustDomain: 'example.org',
      bundleFile,
      targetUri: TARGET,
      wit,
      wpt: await mintWpt({ wit, privateKey: workload.privateKey, alg: workload.alg, aud: TARGET, exp: NOW_S + 60 }),
    },
  };
  writeFileSync(join(project, 'vectors.json'), JSON.stringify(vectors));
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed package', () => {
  test('ships the compiled library, its declarations, the CLI and the default policy, and no TypeScript sources', () => {
    const files = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: 'utf8' });
    expect(files(join(packageDir, 'dist', 'lib')).sort()).toEqual(['policy.d.ts', 'policy.js', 'verify.d.ts', 'verify.js']);
    expect(files(packageDir)).toContain('bundles/default-policy.tar.gz');
    expect(files(packageDir)).toContain('dist/agentward.mjs');
    expect(files(packageDir)).toContain('dist/agentward.mjs.map');
    expect(files(packageDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });
});

describe('agentward/verify and agentward/policy imported by package name with plain node', () => {
  let results: Record<string, { ok?: unknown; code?: string; status?: number; known?: boolean }>;

  beforeAll(async () => {
    const { stdout } = await run(process.execPath, ['consumer.mjs', join(project, 'vectors.json')], { cwd: project });
    results = JSON.parse(stdout) as typeof results;
  }, 60_000);

  test('an access token verifies against a JWK Set file at the injected instant', () => {
    expect(results.accessToken).toEqual({ ok: { subject: 'user-42', clientId: 'research-bot', scopes: ['tools.read'], expiresAt: NOW_S + 300 } });
  });

  test('a token expired at the injected instant is refused with ERR_TOKEN_EXPIRED (though the real clock has not reached its exp)', () => {
    expect(results.accessTokenExpired).toEqual({ code: 'ERR_TOKEN_EXPIRED', status: 401, known: true });
  });

  test('a token for another audience is refused with ERR_TOKEN_AUDIENCE', () => {
    expect(results.accessTokenOtherAudience).toEqual({ code: 'ERR_TOKEN_AUDIENCE', status: 401, known: true });
  });

  test('a DPoP proof verifies and binds to the token cnf.jkt', () => {
    expect(results.dpop).toEqual({ ok: { jkt: expect.any(String) } });
  });

  test('the same DPoP proof again is refused with ERR_DPOP_REPLAYED', () => {
    expect(results.dpopReplayed).toEqual({ code: 'ERR_DPOP_REPLAYED', status: 401, known: true });
  });

  test('a WIT with its WPT verifies against a SPIFFE bundle file', () => {
    expect(results.wimse).toEqual({ ok: { id: 'spiffe://example.org/agent/research', trustDomain: 'example.org' } });
  });

  test('the same WPT again is refused with ERR_WPT_REPLAYED', () => {
    expect(results.wimseReplayed).toEqual({ code: 'ERR_WPT_REPLAYED', status: 401, known: true });
  });

  test('the default policy shipped in the package allows a read with tools.read', () => {
    expect(results.policyRead).toMatchObject({ ok: { allow: true } });
  });

  test('the default policy denies a write without tools.write and names the scope it needs', () => {
    expect(results.policyWrite).toMatchObject({ ok: { allow: false, requiredScopes: ['tools.write'] } });
  });
});

describe('the shipped declarations', () => {
  test('type-check a TypeScript consumer (nodenext resolution, by package name), and are not any', async () => {
    const tsc = join(MODULES, 'typescript', 'bin', 'tsc');
    const outcome = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project }).then(
      () => 'clean',
      (err: { stdout?: string; stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}`,
    );
    expect(outcome).toBe('clean');
  }, 60_000);
});

describe('the CLI installed from the package', () => {
  test('runs the bundle (no sources shipped) and prints its usage', async () => {
    const { stdout } = await run(process.execPath, [join(packageDir, 'bin', 'agentward.js'), '--help'], { cwd: project });
    expect(stdout).toContain('agentward serve');
  });
});
