/**
 * Where agentward's CPU goes, from a V8 CPU profile (`node --cpu-prof`). Each sample is charged
 * to the innermost stack frame that belongs to a part of agentward or to a package it uses, so
 * Node internals count towards whoever called them (a socket write made by http-proxy-3 counts
 * as forwarding); samples with no such frame are Node's own HTTP server and socket work.
 *
 *   node bench/cpuprofile-summary.ts FILE.cpuprofile [REQUESTS] [--functions N]
 *
 * With REQUESTS (served while profiling) it also prints microseconds per request. With
 * `--functions N` it then lists the N functions with the most self time (the time in their own
 * code and in the natives they call directly, such as a socket write), each with its source file:
 * two profiles listed this way compare function by function. The profiler
 * samples wall time of the main thread: pin the profiled process alone on a core (see
 * bench/README.md) so that wall time is CPU time. A profile of the bundle the container runs
 * (scripts/bundle.ts) is read through the source map beside it, so each frame counts by the file
 * it was bundled from.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  /** 0-based position in the script. */
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const CATEGORIES: [RegExp, string][] = [
  [/opa-wasm|^wasm:|\/policy\//, 'policy evaluation (memo, opa-wasm, decision check)'],
  [/\/observability\/|sonic-boom|pino/, 'audit record and logger'],
  [/\/credentials\/(access-token|tokens|claims)\.[jt]s|\/jose\/|node_modules\/jose|lru-cache|\/keys\//, 'token verification'],
  [/undici|http-proxy-3|\/proxy\/(forward|upgrade)\.[jt]s/, 'forwarding (undici pool)'],
  [/\/proxy\/headers\.[jt]s/, 'upstream header rewrite'],
  [/\/proxy\/(pipeline|input|reject|admission)\.[jt]s|\/credentials\/|\/app\//, 'pipeline (admission, ids, target, extraction, input, record)'],
  [/node_modules|^file:/, 'other code (module loading, config)'],
];
const RUNTIME = "Node's HTTP server, sockets, streams";

const args = process.argv.slice(2);
const functionsAt = args.indexOf('--functions');
const topFunctions = functionsAt >= 0 ? Number(args.splice(functionsAt, 2)[1]) : 0;
const [file, requestsArg] = args;
if (!file || !Number.isInteger(topFunctions) || topFunctions < 0) {
  console.error('usage: node bench/cpuprofile-summary.ts FILE.cpuprofile [REQUESTS] [--functions N]');
  process.exit(2);
}
const requests = Number(requestsArg ?? 0);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);

/** Source maps by script URL (`<file>.map`, as scripts/bundle.ts writes it); null where none. */
const maps = new Map<string, SourceMap | null>();

/** Where a frame's code comes from: the bundled file through the source map, else the script's URL. */
function source(frame: CallFrame): string {
  const { url } = frame;
  if (!url.startsWith('file:')) return url;
  let map = maps.get(url);
  if (map === undefined) {
    const path = `${fileURLToPath(url)}.map`;
    map = existsSync(path) ? new SourceMap(JSON.parse(readFileSync(path, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]) : null;
    maps.set(url, map);
  }
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber);
  return entry !== undefined && 'originalSource' in entry ? entry.originalSource : url;
}

const memo = new Map<number, string>();
function category(id: number): string {
  const known = memo.get(id);
  if (known !== undefined) return known;
  const { functionName } = byId.get(id)!.callFrame;
  const url = source(byId.get(id)!.callFrame);
  let found: string | undefined;
  if (functionName === '(idle)') found = 'idle';
  else if (functionName === '(garbage collector)') found = 'garbage collector';
  else if (functionName === '(program)') found = 'native code outside JavaScript';
  else if (functionName === '(root)') found = RUNTIME;
  else found = CATEGORIES.find(([re]) => url !== '' && re.test(url))?.[1];
  if (found === undefined) {
    const parent = parentOf.get(id);
    found = parent === undefined ? RUNTIME : category(parent);
  }
  memo.set(id, found);
  return found;
}

const totals = new Map<string, number>();
let all = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  all += dt;
  const c = category(id);
  totals.set(c, (totals.get(c) ?? 0) + dt);
});
const busy = all - (totals.get('idle') ?? 0);
console.log(`sampled ${(all / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s${requests ? `, ${requests} requests` : ''}`);
for (const [name, us] of [...totals].sort((a, b) => b[1] - a[1])) {
  if (name === 'idle') continue;
  const perRequest = requests ? `${(us / requests).toFixed(0).padStart(5)} µs/req  ` : '';
  console.log(`${((100 * us) / busy).toFixed(1).padStart(5)}%  ${perRequest}${name}`);
}

if (topFunctions > 0) {
  /** Self time by function and the file it comes from (bundled frames by their source file). */
  const self = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') return;
    const where = source(frame).replace(/^.*\/(src|node_modules|bench)\//, '$1/');
    const key = `${frame.functionName || '(anonymous)'}${where ? `  ${where}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  console.log(`\nfunctions by self time${requests ? ' (µs per request)' : ''}:`);
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, topFunctions)) {
    const perRequest = requests ? `${(us / requests).toFixed(2).padStart(7)}  ` : '';
    console.log(`${((100 * us) / busy).toFixed(2).padStart(6)}%  ${perRequest}${name}`);
  }
}
