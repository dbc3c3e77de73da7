/**
 * Compiles a folder of Rego to an OPA WebAssembly bundle with the `opa` CLI
 * (`opa build -t wasm`). Test files (`*_test.rego`) are left out of the bundle.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packBundle, unpackBundle } from './bundle.ts';
import { PLAN_FILE } from './bundle-format.ts';

const run = promisify(execFile);

export class PolicyCompileError extends Error {
  /** The compiler's own message, for logs and /readyz. */
  readonly compilerOutput: string;
  constructor(message: string, compilerOutput: string, cause?: unknown) {
    super(compilerOutput ? `${message}: ${compilerOutput}` : message, cause === undefined ? undefined : { cause });
    this.name = 'PolicyCompileError';
    this.compilerOutput = compilerOutput;
  }
}

/** Which opa binary to use: the configured one, then $AGENTWARD_OPA, then `opa` on PATH. */
export function opaBinary(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return configured ?? env.AGENTWARD_OPA ?? 'opa';
}

export interface CompileOptions {
  opa: string;
  entrypoint: string;
  timeoutMs?: number;
}

/** Builds `dir` and returns the bundle (.tar.gz) bytes. */
export async function compileRego(dir: string, options: CompileOptions): Promise<Buffer> {
  const out = await mkdtemp(join(tmpdir(), 'agentward-build-'));
  try {
    return await build(dir, dir, 'wasm', join(out, 'bundle.tar.gz'), options);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** A compiled policy folder with its IR plan. */
export interface CompiledWithPlan {
  /** The .tar.gz bundle bytes, the same compileRego gives. */
  bundle: Buffer;
  /**
   * The plan bundle (`opa build -t plan`, with /plan.json) of the same files; undefined when the
   * folder could not be copied or planned (the policy then runs without memoized decisions).
   */
  plan: Buffer | undefined;
}

/**
 * Builds `dir` to WebAssembly and to its IR plan, both from one private copy of the folder: a
 * file saved between the two builds must not give a plan of other code than the module's (the
 * memo's soundness rests on the plan describing the module, src/policy/input-reads.ts). When the
 * copy fails, the folder is built as compileRego does, without a plan.
 */
export async function compileRegoWithPlan(dir: string, options: CompileOptions): Promise<CompiledWithPlan> {
  const out = await mkdtemp(join(tmpdir(), 'agentward-build-'));
  try {
    const snapshot = join(out, 'src');
    try {
      await cp(dir, snapshot, { recursive: true, dereference: true });
    } catch {
      return { bundle: await build(dir, dir, 'wasm', join(out, 'bundle.tar.gz'), options), plan: undefined };
    }
    const bundle = await build(snapshot, dir, 'wasm', join(out, 'bundle.tar.gz'), options);
    const plan = await build(snapshot, dir, 'plan', join(out, 'plan.tar.gz'), options).catch(() => undefined);
    return { bundle, plan };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/**
 * What `agentward policy build` writes: the folder's wasm bundle with its IR plan embedded
 * (PLAN_FILE, bound to the module by its SHA-256), so a proxy loading the bundle can memoize
 * decisions as it does for a folder. Without a plan (the folder could not be planned) it is the
 * plain bundle, and `planned` says so.
 */
export async function buildPolicyBundle(dir: string, options: CompileOptions): Promise<{ bundle: Buffer; planned: boolean }> {
  const compiled = await compileRegoWithPlan(dir, options);
  const plan = compiled.plan && unpackBundle(compiled.plan).get('plan.json');
  if (!plan) return { bundle: compiled.bundle, planned: false };
  const files = unpackBundle(compiled.bundle);
  const wasm = files.get('policy.wasm');
  if (!wasm) throw new PolicyCompileError(`opa build wrote no policy.wasm for ${dir}`, '');
  const embedded = `{"format":1,"entrypoint":${JSON.stringify(options.entrypoint)},"wasmSha256":"${createHash('sha256').update(wasm).digest('hex')}","plan":${plan.toString('utf8')}}`;
  // opa's files in opa's order, then the plan (a signature made later covers it like any file).
  return { bundle: packBundle([...files, [PLAN_FILE, Buffer.from(embedded)]]), planned: true };
}

/** One `opa build` of the folder `cwd` (named `dir` in errors) to `target`, written to `output`. */
async function build(cwd: string, dir: string, target: 'wasm' | 'plan', output: string, options: CompileOptions): Promise<Buffer> {
  try {
    // Run inside the folder on ".": opa records source paths in the bundle and the wasm, and
    // relative ones make the output the same wherever the folder lives (the committed bundle
    // must not depend on the checkout path).
    await run(options.opa, ['build', '-t', target, '-e', options.entrypoint, '--ignore', '*_test.rego', '-o', output, '.'], {
      cwd,
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 4 << 20,
    });
    return await readFile(output);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') {
      throw new PolicyCompileError(`the opa CLI was not found (${options.opa})`, '', err);
    }
    const output = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim();
    throw new PolicyCompileError(`opa build failed for ${dir}`, output || e.message, err);
  }
}
