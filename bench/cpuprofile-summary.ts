/**
 * Where agentward's CPU goes, from a V8 CPU profile (`node --cpu-prof`). Each sample is charged
 * to the innermost stack frame that belongs to a part of agentward or to a package it uses, so
 * Node internals count towards whoever called them (a socket write made by http-proxy-3 counts
 * as forwarding); samples with no such frame are Node's own HTTP server and socket work.
 *
 *   node bench/cpuprofile-summary.ts FILE.cpuprofile [REQUESTS]
 *
 * With REQUESTS (served while profiling) it also prints microseconds per request. The profiler
 * samples wall time of the main thread: pin the profiled process alone on a core (see
 * bench/README.md) so that wall time is CPU time.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
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

const [file, requestsArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/cpuprofile-summary.ts FILE.cpuprofile [REQUESTS]');
  process.exit(2);
}
const requests = Number(requestsArg ?? 0);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);

const memo = new Map<number, string>();
function category(id: number): string {
  const known = memo.get(id);
  if (known !== undefined) return known;
  const { functionName, url } = byId.get(id)!.callFrame;
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
