/**
 * The engine's own call of opa_eval (src/policy/wasm-eval.ts) gives what opa-wasm's
 * LoadedPolicy.evaluate gives: for small and large inputs (the memory grows), non-ASCII text,
 * one evaluation after another (the heap starts again each time), and through the fallback for
 * modules older than ABI 1.2. An input larger than the memory cap fails as opa-wasm does.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { beforeAll, expect, test } from 'vitest';
import { compileRego, opaBinary } from '../../src/policy/compile.ts';
import { readBundle } from '../../src/policy/bundle.ts';
import { WasmEvaluator } from '../../src/policy/wasm-eval.ts';

const ENTRYPOINT = 'agentward/decision';
let wasm: Buffer;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-wasm-eval-'));
  writeFileSync(join(dir, 'policy.rego'), 'package agentward\n\ndecision := {"allow": count(input.s) > 3, "reason": concat(":", [input.s, data.d])}\n');
  writeFileSync(join(dir, 'data.json'), JSON.stringify({ d: 'data' }));
  wasm = readBundle(await compileRego(dir, { opa: opaBinary(undefined), entrypoint: ENTRYPOINT })).wasm;
});

async function policy(maximumPages = 64): Promise<LoadedPolicy> {
  const p = await loadPolicy(wasm, { initial: 2, maximum: maximumPages });
  p.setData({ d: 'data' });
  return p;
}

test('the same result sets as LoadedPolicy.evaluate, input after input', async () => {
  const ours = new WasmEvaluator(await policy(), ENTRYPOINT);
  const theirs = await policy();
  for (const s of ['ab', 'abcdef', 'é€😀 "quoted" \\ \n', 'x'.repeat(300_000), 'short again']) {
    expect(ours.evaluate(JSON.stringify({ s }))).toEqual(theirs.evaluate({ s }, ENTRYPOINT));
  }
});

test('modules before ABI 1.2 go through LoadedPolicy.evaluate', async () => {
  const old = await policy();
  old.minorVersion = 1;
  expect(new WasmEvaluator(old, ENTRYPOINT).evaluate(JSON.stringify({ s: 'abcd' }))).toEqual([{ result: { allow: true, reason: 'abcd:data' } }]);
});

test('an input larger than the memory cap throws', async () => {
  const ours = new WasmEvaluator(await policy(4), ENTRYPOINT);
  expect(() => ours.evaluate(JSON.stringify({ s: 'x'.repeat(1 << 20) }))).toThrow(RangeError);
  expect(ours.evaluate(JSON.stringify({ s: 'abcd' }))).toEqual([{ result: { allow: true, reason: 'abcd:data' } }]);
});
