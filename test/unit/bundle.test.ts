/**
 * OPA bundle reading (src/policy/bundle.ts) against real bundles from `opa build -t wasm`, and
 * every way a file can fail to be one: each a BundleError, never a crash or a half-loaded policy.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, test } from 'vitest';
import { readBundle, BundleError } from '../../src/policy/bundle.ts';
import { compileRego, opaBinary } from '../../src/policy/compile.ts';

const run = promisify(execFile);
const OPA = opaBinary(undefined);
const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

/** A tiny Rego folder with a data.json, in a fresh temp dir. */
function regoFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-rego-'));
  writeFileSync(join(dir, 'tiny.rego'), 'package tiny\nimport rego.v1\ndefault decision := false\ndecision if input.x == data.tiny.want\n');
  writeFileSync(join(dir, 'tiny_test.rego'), 'package tiny_test\nimport rego.v1\ntest_t if true\n');
  writeFileSync(join(dir, 'data.json'), JSON.stringify({ tiny: { want: 1 } }));
  return dir;
}

function expectBundleError(gz: Buffer, message: RegExp): void {
  let caught: unknown;
  try {
    readBundle(gz);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(BundleError);
  expect((caught as Error).message).toMatch(message);
}

/** A .tar.gz of `files`, made by the system tar (entries named ./name). */
async function systemTarGz(files: Record<string, string | Buffer>): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-tar-'));
  mkdirSync(join(dir, 'in'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, 'in', name), content);
  await run('tar', ['-czf', join(dir, 'out.tar.gz'), '-C', join(dir, 'in'), '.']);
  return readFileSync(join(dir, 'out.tar.gz'));
}

let compiled: Buffer;
beforeAll(async () => {
  compiled = await compileRego(regoFolder(), { opa: OPA, entrypoint: 'tiny/decision' });
});

describe('real bundles', () => {
  test('compileRego output: policy.wasm, data.json, no revision', () => {
    const bundle = readBundle(compiled);
    expect(bundle.wasm.subarray(0, 4)).toEqual(WASM_MAGIC);
    expect(bundle.wasm.length).toBeGreaterThan(1000);
    expect(bundle.data).toEqual({ tiny: { want: 1 } });
    expect(bundle.revision).toBeUndefined();
  });

  test('compileRego leaves *_test.rego out of the bundle', () => {
    const tar = gunzipSync(compiled).toString('latin1');
    expect(tar).toContain('tiny.rego');
    expect(tar).not.toContain('tiny_test.rego');
  });

  test('opa build --revision: the manifest revision is read', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'agentward-rev-')), 'bundle.tar.gz');
    await run(OPA, ['build', '-t', 'wasm', '-e', 'tiny/decision', '--revision', 'r-2026.01', '-o', out, regoFolder()]);
    const bundle = readBundle(readFileSync(out));
    expect(bundle.revision).toBe('r-2026.01');
    expect(bundle.wasm.subarray(0, 4)).toEqual(WASM_MAGIC);
  });

  test('entries named ./x by another tar are found too', async () => {
    const gz = await systemTarGz({ 'policy.wasm': Buffer.concat([WASM_MAGIC, Buffer.alloc(4)]), 'data.json': '{"a":1}', '.manifest': '{"revision":"v9"}' });
    expect(readBundle(gz)).toEqual({ wasm: Buffer.concat([WASM_MAGIC, Buffer.alloc(4)]), data: { a: 1 }, revision: 'v9' });
  });
});

describe('not a bundle → BundleError', () => {
  test('not gzip', () => {
    expectBundleError(Buffer.from('policy.wasm is in here, honest'), /not a gzip file/);
  });

  test('a truncated gzip stream', () => {
    expectBundleError(compiled.subarray(0, Math.floor(compiled.length / 2)), /not a gzip file/);
  });

  test('gzip of garbage', () => {
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251;
    expectBundleError(gzipSync(garbage), /the bundle tar has a corrupt header/);
  });

  test('gzip of a tar cut in the middle of policy.wasm', () => {
    const tar = gunzipSync(compiled);
    const at = tar.indexOf(WASM_MAGIC);
    expect(at).toBeGreaterThan(0);
    expectBundleError(gzipSync(tar.subarray(0, at + 1000)), /truncated/);
  });

  test('gzip of a tar without policy.wasm', async () => {
    expectBundleError(await systemTarGz({ 'data.json': '{}', '.manifest': '{"revision":"x"}' }), /no \/policy\.wasm/);
  });

  test('an empty gzip', () => {
    expectBundleError(gzipSync(Buffer.alloc(0)), /no \/policy\.wasm/);
  });

  test('data.json that is not JSON, or not an object', async () => {
    expectBundleError(await systemTarGz({ 'policy.wasm': WASM_MAGIC, 'data.json': '{nope' }), /data\.json in the bundle is not JSON/);
    expectBundleError(await systemTarGz({ 'policy.wasm': WASM_MAGIC, 'data.json': '[1]' }), /data\.json in the bundle is not a JSON object/);
  });

  test('a .manifest that is not a JSON object', async () => {
    expectBundleError(await systemTarGz({ 'policy.wasm': WASM_MAGIC, '.manifest': '"r1"' }), /\.manifest in the bundle is not a JSON object/);
  });
});
