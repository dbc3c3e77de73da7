/**
 * Drift check: the committed compiled policy (bundles/default-policy.tar.gz, what the demo and a
 * fresh machine without opa run) must be exactly what the Rego in policies/ compiles to. The
 * real opa CLI ($AGENTWARD_OPA, else `opa` on PATH) builds policies/ and policy.wasm and
 * data.json must equal the committed bundle's, byte for byte.
 *
 * opa embeds the source file names it was given in policy.wasm (for error locations); compileRego
 * runs opa inside the folder, so those names are relative and the bundle does not depend on where
 * the repository is checked out.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPolicyBundle, compileRego, opaBinary } from '../../src/policy/compile.ts';
import { readBundle, type PolicyBundle } from '../../src/policy/bundle.ts';

const REPO = resolve(import.meta.dirname, '../..');
const COMMITTED = join(REPO, 'bundles', 'default-policy.tar.gz');
const ENTRYPOINT = 'agentward/decision';
const REBUILD = 'run `npm run policy:build` (it needs the opa CLI, e.g. from `. scripts/toolchain.sh`) and commit bundles/default-policy.tar.gz';

/** The source file names opa recorded in a policy.wasm, e.g. "agentward/decision.rego". */
function sourceNames(wasm: Buffer): string[] {
  return [...new Set(wasm.toString('latin1').match(/[\x21-\x7e]*?\.rego/g) ?? [])].sort();
}

describe('bundles/default-policy.tar.gz', () => {
  const opa = opaBinary(undefined);
  const policies = join(REPO, 'policies');
  let fresh: Buffer;

  beforeAll(async () => {
    fresh = await compileRego(policies, { opa, entrypoint: ENTRYPOINT });
  }, 120_000);

  it('is what policies/ compiles to (policy.wasm and data.json)', () => {
    let committed: PolicyBundle;
    try {
      committed = readBundle(readFileSync(COMMITTED));
    } catch (err) {
      throw new Error(`${COMMITTED} cannot be read as a bundle (${(err as Error).message}); ${REBUILD}`);
    }
    const built = readBundle(fresh);

    expect(JSON.stringify(committed.data), `data.json in the committed bundle differs from policies/data.json: ${REBUILD}`).toBe(JSON.stringify(built.data));
    expect(
      sourceNames(committed.wasm),
      'the committed policy.wasm was built from other files, or from an absolute path (opa records the paths it is given, so the bundle ' +
        `would depend on where the repository is): ${REBUILD}`,
    ).toEqual(sourceNames(built.wasm));
    // Not toEqual on the buffers: a failure would print two 150 KB dumps.
    expect(committed.wasm.equals(built.wasm), `policy.wasm in the committed bundle is not what policies/ compiles to (the Rego changed since the bundle was built): ${REBUILD}`).toBe(true);
  });

  it('is byte for byte what `agentward policy build` writes, embedded plan included', async () => {
    const { bundle, planned } = await buildPolicyBundle(policies, { opa, entrypoint: ENTRYPOINT });
    expect(planned).toBe(true);
    expect(bundle.equals(readFileSync(COMMITTED)), `the committed bundle is not what \`agentward policy build\` writes (its plan or packing differ): ${REBUILD}`).toBe(true);
  }, 120_000);

  it('is reproducible: opa build output is byte-for-byte deterministic', async () => {
    const again = await compileRego(policies, { opa, entrypoint: ENTRYPOINT });
    // The whole .tar.gz: opa writes fixed tar timestamps and no gzip time, so equal input gives equal bytes.
    expect(again.equals(fresh), 'two builds of the same Rego differ; the drift check above can only compare policy.wasm and data.json').toBe(true);
  }, 120_000);
});
