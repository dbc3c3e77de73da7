/**
 * Compiles a folder of Rego to an OPA WebAssembly bundle with the `opa` CLI
 * (`opa build -t wasm`). Test files (`*_test.rego`) are left out of the bundle.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

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
  const bundle = join(out, 'bundle.tar.gz');
  try {
    // Run inside the folder on ".": opa records source paths in the bundle and the wasm, and
    // relative ones make the output the same wherever the folder lives (the committed bundle
    // must not depend on the checkout path).
    await run(options.opa, ['build', '-t', 'wasm', '-e', options.entrypoint, '--ignore', '*_test.rego', '-o', bundle, '.'], {
      cwd: dir,
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 4 << 20,
    });
    return await readFile(bundle);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') {
      throw new PolicyCompileError(`the opa CLI was not found (${options.opa})`, '', err);
    }
    const output = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim();
    throw new PolicyCompileError(`opa build failed for ${dir}`, output || e.message, err);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
