/**
 * The house rules of src/ (docs/architecture.md "What may import what"), checked over the
 * TypeScript imports: every import stays inside its folder or points at a folder the rules allow,
 * and no files import each other in a circle. Run by `scripts/run test`; exits 1 with every
 * broken rule listed.
 *
 *   node scripts/check-imports.ts [SRC_DIR]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * Each part of src/ and the parts it may import, from the ground up. A part is a folder, or a
 * file at the root of src/ (named without `.ts`). Imports inside one part are always allowed.
 */
export const RULES: Readonly<Record<string, readonly string[]>> = {
  errors: [],
  duration: [],
  services: [],
  'file-watch': [],
  identity: ['errors'],
  jose: ['errors'],
  outbound: ['errors'],
  state: ['errors', 'services', 'duration'],
  keys: ['errors', 'services', 'duration', 'file-watch', 'identity', 'jose', 'outbound'],
  credentials: ['errors', 'services', 'duration', 'file-watch', 'identity', 'jose', 'keys', 'outbound', 'state'],
  policy: ['errors', 'services', 'duration', 'identity', 'jose', 'outbound'],
  rpc: ['errors', 'services', 'identity', 'policy'],
  observability: ['errors', 'services', 'identity'],
  config: ['errors', 'services', 'duration', 'identity', 'jose', 'policy'],
  signals: ['errors', 'services', 'duration', 'identity', 'jose', 'outbound', 'keys', 'credentials'],
  proxy: ['errors', 'services', 'duration', 'file-watch', 'identity', 'jose', 'outbound', 'keys', 'state', 'credentials', 'policy', 'rpc', 'observability', 'config'],
  app: ['errors', 'services', 'duration', 'file-watch', 'identity', 'jose', 'outbound', 'keys', 'state', 'credentials', 'policy', 'rpc', 'observability', 'config', 'signals', 'proxy'],
  // The library entry points (package.json `exports`, docs/library.md): re-exports of the floors
  // below the composition root; nothing in src/ imports them.
  lib: ['errors', 'services', 'duration', 'file-watch', 'identity', 'jose', 'outbound', 'keys', 'state', 'credentials', 'policy', 'rpc', 'observability', 'config', 'signals', 'proxy'],
  main: ['errors', 'services', 'duration', 'file-watch', 'identity', 'jose', 'outbound', 'keys', 'state', 'credentials', 'policy', 'rpc', 'observability', 'config', 'signals', 'proxy', 'app'],
};

const IMPORT = /^\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

/** The part a file belongs to: its top folder under src/, or its own name at the root. */
function partOf(src: string, file: string): string {
  const rel = relative(src, file);
  const top = rel.split('/')[0]!;
  return rel.includes('/') ? top : top.replace(/\.ts$/, '');
}

export function check(src: string): string[] {
  const problems: string[] = [];
  const files = sourceFiles(src);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const from = partOf(src, file);
    const allowed = RULES[from];
    if (allowed === undefined) problems.push(`${relative(src, file)}: part "${from}" has no rule in scripts/check-imports.ts (add it where it belongs in the floors)`);
    const targets: string[] = [];
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = resolve(dirname(file), match[1]!);
      targets.push(target);
      const to = partOf(src, target);
      if (to !== from && allowed !== undefined && !allowed.includes(to)) {
        problems.push(`${relative(src, file)} imports ${relative(src, target)}: "${from}" may not import "${to}" (allowed: ${allowed.join(', ') || 'nothing'})`);
      }
    }
    graph.set(file, targets);
  }
  for (const cycle of circles(graph)) problems.push(`import circle: ${cycle.map((f) => relative(src, f)).join(' -> ')}`);
  return problems;
}

/** Every circle of files, each once (a depth-first search over the import graph). */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (state.get(file) === undefined) visit(file);
  return found;
}

if (import.meta.main) {
  const src = resolve(process.argv[2] ?? join(import.meta.dirname, '..', 'src'));
  const problems = check(src);
  if (problems.length > 0) {
    console.error(`src/ breaks ${problems.length} house rule${problems.length === 1 ? '' : 's'} (docs/architecture.md):\n${problems.map((p) => `  ${p}`).join('\n')}`);
    process.exit(1);
  }
  console.log('imports: every arrow points down, no circle');
}
