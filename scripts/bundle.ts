/**
 * Builds what the container and the installed CLI (bin/agentward.js) run: src/main.ts and every
 * package it imports statically, as one ES module (`dist/agentward.mjs`, with its source map
 * beside it). Measured side by side with the compiled per-file `dist/main.js` (bench/README.md,
 * "one module instead of seven hundred"): about 10 % more requests per second on the same core
 * and ~40 MiB less resident after load. Each of the ~720 modules Node would otherwise load (about
 * 90 of agentward's, the rest its packages', ES and CommonJS) keeps its own source text, module
 * record or wrapper, and scope in the V8 heap, and their exports are reached through module
 * bindings.
 *
 *   node scripts/bundle.ts [--entry src/main.ts] [--outfile dist/agentward.mjs]
 *
 * Kept out, and loaded at run time from node_modules beside the bundle: what agentward loads only
 * when configured (ioredis, the OpenTelemetry SDK, http-proxy-3, the X.509 parser), which it
 * requires through `createRequire` (docs/operations.md, "Memory"); esbuild does not follow those.
 * So the bundle needs the production node_modules next to it, as the Dockerfile arranges.
 *
 * Whitespace and syntax are minified, names are not: stack traces in the logs and CPU profiles
 * name agentward's own functions. `node --enable-source-maps` maps them back to src/ files and
 * lines through the source map (bench/cpuprofile-summary.ts reads it the same way).
 */
import { build } from 'esbuild';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const REPO = resolve(import.meta.dirname, '..');

export interface BundleOptions {
  /** The CLI entry module (default src/main.ts). */
  entry?: string;
  /** The bundle's path (default dist/agentward.mjs); the source map is written beside it. */
  outfile?: string;
}

export async function bundle(options: BundleOptions = {}): Promise<string> {
  const outfile = resolve(options.outfile ?? resolve(REPO, 'dist/agentward.mjs'));
  await build({
    entryPoints: [resolve(options.entry ?? resolve(REPO, 'src/main.ts'))],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // package.json `engines`: Node >= 22.18, so nothing is lowered.
    target: 'node22.18',
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    sourcesContent: false,
    // The CommonJS packages inside the bundle call `require` (for Node's built-ins, and for their
    // optional packages); an ES module has none, so the bundle makes one for its own location.
    banner: { js: "import { createRequire as __agentwardRequire } from 'node:module'; const require = __agentwardRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  return outfile;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { entry: { type: 'string' }, outfile: { type: 'string' } } });
  const outfile = await bundle({ entry: values.entry, outfile: values.outfile });
  // stderr: `npm pack --json` runs this in prepack, and its standard output must stay JSON.
  console.error(`wrote ${outfile}`);
}
