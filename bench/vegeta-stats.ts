/**
 * Summarises one vegeta attack (bench/open-loop.sh, bench/soak.sh): reads vegeta's results as
 * JSON lines on stdin (`vegeta encode --to json < results.bin`) and prints one machine-readable
 * line for the shell scripts, like bench/report.lua does for wrk:
 *
 *   RESULT sent=N ok=N success_pct=X goodput=X sent_rate=X p50_ms=X p90_ms=X p99_ms=X p999_ms=X
 *          max_ms=X ok_p50_ms=X ok_p99_ms=X port_errors=N
 *   CODES 200:N 0:N ...        (0: no response: timeout, refused or reset connection)
 *   ERROR N message            (the three most frequent transport errors)
 *
 *   vegeta encode --to json < r.bin | node bench/vegeta-stats.ts --duration 30 [--ids FILE]
 *       [--windows FILE] [--stall-p99-ms 1000]
 *
 * ok is a 2xx answer (a refusal, a 503 or a timeout is not); goodput is ok / --duration (the
 * seconds the attack sent for), so an overloaded server's goodput falls below the offered rate.
 * Latency percentiles are over every request sent, a timed-out one counting at the time it gave
 * up (what the caller felt); ok_* over the 2xx answers only. Nearest-rank percentiles. sent_rate
 * is sent / --duration: below the offered rate, vegeta could not keep up (its pacer stops at the
 * duration whatever it managed to send).
 *
 * port_errors counts requests that never left because the load generator found no free local
 * port ("bind: address already in use", "cannot assign requested address"): every request that
 * times out on the wire closes its connection, each leaves a port in TIME_WAIT for a minute, and
 * at a few hundred timeouts per second the ~28,000 ephemeral ports run out. Past that point a
 * step measures the client, not the server; the scripts flag it.
 *
 * --ids FILE: the x-request-id of every answer, one per line (bench/soak.sh finds each in the
 * audit file). --windows FILE: one line per second of the attack, "second sent completed ok
 * p99_ms max_ms", where sent and the latencies belong to the second a request was sent in and
 * completed to the second its answer (or its error) came. With --stall-p99-ms, STALL lines name
 * the runs of seconds whose p99 exceeded it or that completed nothing while requests were out
 * (start_s/end_s counted from the first request's second; start_unix_ms/end_unix_ms on the clock).
 */
import { createInterface } from 'node:readline';
import { createWriteStream, type WriteStream } from 'node:fs';
import { parseArgs } from 'node:util';

interface VegetaResult {
  code: number;
  timestamp: string;
  /** Nanoseconds. */
  latency: number;
  error: string;
  headers: Record<string, string[]> | null;
}

interface Second {
  sent: number;
  completed: number;
  ok: number;
  latenciesMs: number[];
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string' },
    ids: { type: 'string' },
    windows: { type: 'string' },
    'stall-p99-ms': { type: 'string' },
  },
  strict: true,
});
const duration = Number(values.duration);
if (!(duration > 0)) {
  console.error('usage: vegeta encode --to json < r.bin | node bench/vegeta-stats.ts --duration SECONDS [--ids FILE] [--windows FILE] [--stall-p99-ms MS]');
  process.exit(2);
}

/** Nearest-rank percentile of an ascending array; 0 when empty. */
function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const all: number[] = [];
const okLatencies: number[] = [];
const codes = new Map<number, number>();
const errors = new Map<string, number>();
const seconds = new Map<number, Second>();
let first = Infinity;
let portErrors = 0;
let last = -Infinity;
const ids: WriteStream | undefined = values.ids ? createWriteStream(values.ids) : undefined;

const second = (s: number): Second => {
  let w = seconds.get(s);
  if (!w) seconds.set(s, (w = { sent: 0, completed: 0, ok: 0, latenciesMs: [] }));
  return w;
};

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line === '') continue;
  const r = JSON.parse(line) as VegetaResult;
  const sentMs = Date.parse(r.timestamp);
  const ms = r.latency / 1e6;
  first = Math.min(first, sentMs);
  last = Math.max(last, sentMs);
  all.push(ms);
  codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
  const ok = r.code >= 200 && r.code < 300;
  if (ok) okLatencies.push(ms);
  if (r.error !== '' && r.code === 0) {
    if (/bind: address already in use|cannot assign requested address/.test(r.error)) portErrors++;
    // The same failure differs only in ports and addresses: keep the message's shape.
    const shape = r.error.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'ADDR').replace(/"http[^"]*"/g, 'URL');
    errors.set(shape, (errors.get(shape) ?? 0) + 1);
  }
  const id = r.headers?.['X-Request-Id']?.[0];
  if (ids && id) ids.write(`${id}\n`);
  if (values.windows || values['stall-p99-ms']) {
    const sentWindow = second(Math.floor(sentMs / 1000));
    sentWindow.sent++;
    sentWindow.latenciesMs.push(ms);
    const doneWindow = second(Math.floor((sentMs + ms) / 1000));
    doneWindow.completed++;
    if (ok) doneWindow.ok++;
  }
}
if (ids) await new Promise((resolve) => ids.end(resolve));

const sorted = Float64Array.from(all).sort();
const okSorted = Float64Array.from(okLatencies).sort();
const okCount = okLatencies.length;
const f2 = (n: number): string => n.toFixed(2);
console.log(
  `RESULT sent=${all.length} ok=${okCount} success_pct=${f2(all.length ? (100 * okCount) / all.length : 0)} goodput=${f2(okCount / duration)} ` +
    `sent_rate=${f2(all.length / duration)} ` +
    `p50_ms=${f2(percentile(sorted, 50))} p90_ms=${f2(percentile(sorted, 90))} p99_ms=${f2(percentile(sorted, 99))} ` +
    `p999_ms=${f2(percentile(sorted, 99.9))} max_ms=${f2(sorted.at(-1) ?? 0)} ok_p50_ms=${f2(percentile(okSorted, 50))} ok_p99_ms=${f2(percentile(okSorted, 99))} port_errors=${portErrors}`,
);
console.log(`CODES ${[...codes].sort((a, b) => a[0] - b[0]).map(([c, n]) => `${c}:${n}`).join(' ')}`);
for (const [message, n] of [...errors].sort((a, b) => b[1] - a[1]).slice(0, 3)) console.log(`ERROR ${n} ${message}`);

if (seconds.size > 0) {
  const from = Math.floor(first / 1000);
  const to = Math.max(...seconds.keys());
  const rows: string[] = [];
  const stallMs = Number(values['stall-p99-ms'] ?? Infinity);
  let stall: { start: number; end: number; worstMs: number; completed: number } | undefined;
  const stalls: NonNullable<typeof stall>[] = [];
  for (let s = from; s <= to; s++) {
    const w = seconds.get(s) ?? { sent: 0, completed: 0, ok: 0, latenciesMs: [] };
    const lat = Float64Array.from(w.latenciesMs).sort();
    const p99 = percentile(lat, 99);
    const max = lat.at(-1) ?? 0;
    rows.push(`${s - from} ${w.sent} ${w.completed} ${w.ok} ${f2(p99)} ${f2(max)}`);
    // A second that completed nothing while the attack was still sending is a stall; so is one
    // whose requests waited past the threshold (at the 99th percentile).
    const stalled = p99 > stallMs || (w.completed === 0 && s * 1000 <= last);
    if (stalled) {
      stall ??= { start: s - from, end: s - from, worstMs: 0, completed: 0 };
      stall.end = s - from;
      stall.worstMs = Math.max(stall.worstMs, max);
      stall.completed += w.completed;
    } else if (stall) {
      stalls.push(stall);
      stall = undefined;
    }
  }
  if (stall) stalls.push(stall);
  if (values.windows) createWriteStream(values.windows).end(`${rows.join('\n')}\n`);
  if (values['stall-p99-ms']) {
    for (const s of stalls) console.log(`STALL start_s=${s.start} end_s=${s.end} start_unix_ms=${(from + s.start) * 1000} end_unix_ms=${(from + s.end + 1) * 1000} worst_ms=${f2(s.worstMs)} completed=${s.completed}`);
  }
}
