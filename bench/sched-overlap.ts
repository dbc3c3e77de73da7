/**
 * What ran on the server CPU while each request was in flight (bench/README.md, "Open loop: what
 * the tail is made of"): joins vegeta's results with the Linux scheduler's record of that CPU, and
 * prints, for the requests slower than a threshold and for the others, the mean milliseconds each
 * thread kind ran on the CPU during a request's lifetime. A slow request during which the CPU ran
 * V8's background threads (`V8Worker`: compilation, concurrent GC) is delayed by them; one during
 * which it ran the contender's main thread for long waited for other requests or a collection.
 *
 *   perf sched record -k CLOCK_MONOTONIC -C 0 -o sched.data -- sleep 10 &
 *   node -e 'console.log(JSON.stringify({ wall: Date.now(), mono: Number(process.hrtime.bigint()) / 1e6 }))' > clock.json
 *   (the attack, started at the same time, against a contender pinned to CPU 0)
 *   perf sched timehist -i sched.data > sched.txt
 *   vegeta encode --to json < results.bin > results.json
 *   node bench/sched-overlap.ts results.json sched.txt clock.json CONTENDER_PID UPSTREAM_PID [SLOW_MS=2]
 *
 * clock.json maps vegeta's wall-clock timestamps onto perf's CLOCK_MONOTONIC ones (taken within a
 * millisecond of each other). Only requests that ended inside the recorded window count.
 */
import { readFileSync } from 'node:fs';

const [resultsFile, schedFile, clockFile, contender, upstream, slowArg] = process.argv.slice(2);
if (!resultsFile || !schedFile || !clockFile || !contender || !upstream) {
  console.error('usage: node bench/sched-overlap.ts RESULTS_JSON SCHED_TIMEHIST CLOCK_JSON CONTENDER_PID UPSTREAM_PID [SLOW_MS]');
  process.exit(2);
}
const slowMs = Number(slowArg ?? 2);
const clock = JSON.parse(readFileSync(clockFile, 'utf8')) as { wall: number; mono: number };

/** vegeta's RFC 3339 timestamp with nanoseconds, in milliseconds (Date.parse keeps only three digits). */
function wallMs(timestamp: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(timestamp);
  if (!m) throw new Error(`unexpected vegeta timestamp ${timestamp}`);
  return Date.parse(`${m[1]}Z`) + Number(`0.${m[2] ?? '0'}`) * 1000;
}

/** A thread kind: the contender's main thread, its other threads by name, the upstream, idle, or another task by name. */
function kind(task: string): string {
  const name = task.replace(/\[.*/, '');
  if (task.includes(`[${contender}]`)) return 'contender main thread';
  if (task.includes(`/${contender}]`)) return `contender ${name}`;
  if (task.includes(`[${upstream}]`) || task.includes(`/${upstream}]`)) return 'upstream';
  if (name === '<idle>') return 'idle';
  return `other: ${name}`;
}

// perf sched timehist: "time cpu task wait-time sch-delay run-time", one line per switch-out;
// the task ran for run-time ms up to time (seconds).
const runs: { start: number; end: number; kind: string }[] = [];
for (const line of readFileSync(schedFile, 'utf8').split('\n').slice(3)) {
  const f = line.trim().split(/\s+/);
  if (f.length < 6 || !/^\d+\.\d+$/.test(f[0]!)) continue;
  const end = Number(f[0]) * 1000;
  runs.push({ start: end - Number(f.at(-1)), end, kind: kind(f[2]!) });
}
if (runs.length === 0) throw new Error(`no scheduler records in ${schedFile}`);
const [first, last] = [runs[0]!.start, runs.at(-1)!.end];

const requests = readFileSync(resultsFile, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => {
    const r = JSON.parse(line) as { timestamp: string; latency: number };
    const start = wallMs(r.timestamp) - clock.wall + clock.mono;
    return { start, end: start + r.latency / 1e6, ms: r.latency / 1e6 };
  })
  .filter((r) => r.start >= first && r.end <= last);

function meanOverlap(set: typeof requests): string {
  const total = new Map<string, number>();
  for (const r of set) {
    for (const run of runs) {
      if (run.end <= r.start || run.start >= r.end) continue;
      total.set(run.kind, (total.get(run.kind) ?? 0) + Math.min(run.end, r.end) - Math.max(run.start, r.start));
    }
  }
  return [...total]
    .sort((a, b) => b[1] - a[1])
    .filter(([, ms]) => ms / set.length >= 0.001)
    .map(([k, ms]) => `${k} ${(ms / set.length).toFixed(3)}`)
    .join(', ');
}

const slow = requests.filter((r) => r.ms > slowMs);
const rest = requests.filter((r) => r.ms <= slowMs);
console.log(`${requests.length} requests inside the record, ${slow.length} slower than ${slowMs} ms`);
console.log(`slower than ${slowMs} ms, mean ms on the CPU during one: ${meanOverlap(slow)}`);
console.log(`the others: ${meanOverlap(rest)}`);
