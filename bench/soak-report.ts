/**
 * The analysis of one bench/soak.sh run: memory over time, garbage collection, stalls and the
 * audit count. Writes the report's Markdown sections to --out and one summary line per topic on
 * stdout for the shell script:
 *
 *   AUDIT records=N answered=N matched=N missing=N unanswered=N
 *   RSS first_mib=X last_mib=X min_mib=X max_mib=X median_mib=X band_pct=X slope_mib_per_min=X within_10pct=yes|no
 *   HEAP first_mib=X last_mib=X max_mib=X
 *   GC count=N young=N mark_compacts=N total_ms=X median_ms=X p99_ms=X max_ms=X
 *
 *   node bench/soak-report.ts --samples F --probe F --gc-log F --from MS --to MS --warmup S
 *       --stats F --ids F --audit F --audit-skip N --clk-tck N --out F
 *
 * --samples: the shell sampler's lines "unix_ms rss_kib cpu_ticks audit_bytes" (from /proc, every
 * SOAK_SAMPLE s); --probe: bench/memory-probe.ts's file (heap); --gc-log: agentward's stdout with
 * --trace-gc; --from/--to: the attack's start and end (Unix ms); --warmup: seconds after --from
 * whose samples the RSS verdict ignores; --stats: bench/vegeta-stats.ts's output (STALL lines);
 * --ids: the x-request-id of every answer vegeta got; --audit: the audit file, whose first
 * --audit-skip records predate the soak.
 *
 * "No record lost": every answer vegeta received names its request id, and each must be in the
 * audit file. Records beyond the answers are requests agentward finished after their caller gave
 * up (reported as unanswered, not an error).
 */
import { createReadStream, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { probeOrigin, readGcTrace, summarise, type GcPause } from './gc-trace.ts';

const { values: a } = parseArgs({
  options: Object.fromEntries(
    ['samples', 'probe', 'gc-log', 'from', 'to', 'warmup', 'stats', 'ids', 'audit', 'audit-skip', 'clk-tck', 'out'].map((k) => [k, { type: 'string' as const }]),
  ),
  strict: true,
});
for (const k of ['samples', 'probe', 'gc-log', 'from', 'to', 'warmup', 'stats', 'ids', 'audit', 'audit-skip', 'clk-tck', 'out']) {
  if (a[k] === undefined) {
    console.error(`soak-report: --${k} is required (see the header of bench/soak-report.ts)`);
    process.exit(2);
  }
}
const from = Number(a.from);
const to = Number(a.to);
const warmupEnd = from + Number(a.warmup) * 1000;
const MiB = 1024 * 1024;
const f1 = (n: number): string => n.toFixed(1);

interface Sample {
  t: number;
  rssMib: number;
  cpuTicks: number;
  auditMib: number;
  heapUsedMib?: number;
  heapTotalMib?: number;
  externalMib?: number;
}

/** /proc samples, each joined with the probe's last heap sample taken before it. */
function readSamples(samplesFile: string, probeFile: string): Sample[] {
  const heap = readFileSync(probeFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"heapUsed"'))
    .map((l) => JSON.parse(l) as { t: number; heapUsed: number; heapTotal: number; external: number });
  return readFileSync(samplesFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [t, rssKib, cpu, auditBytes] = l.split(' ').map(Number) as [number, number, number, number];
      const h = heap.filter((x) => x.t <= t).at(-1);
      return {
        t,
        rssMib: rssKib / 1024,
        cpuTicks: cpu,
        auditMib: auditBytes / MiB,
        ...(h && { heapUsedMib: h.heapUsed / MiB, heapTotalMib: h.heapTotal / MiB, externalMib: h.external / MiB }),
      };
    });
}

/** Least-squares slope of RSS over time, MiB per minute. */
function slopePerMinute(s: Sample[]): number {
  if (s.length < 2) return 0;
  const xs = s.map((x) => (x.t - s[0]!.t) / 60_000);
  const mx = xs.reduce((p, x) => p + x, 0) / xs.length;
  const my = s.reduce((p, x) => p + x.rssMib, 0) / s.length;
  let num = 0;
  let den = 0;
  for (const [i, x] of xs.entries()) {
    num += (x - mx) * (s[i]!.rssMib - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The RSS verdict over the samples after warm-up: every one within ±10 % of their median. */
function rssSummary(samples: Sample[]): string {
  const after = samples.filter((s) => s.t >= warmupEnd && s.t <= to);
  const rss = after.map((s) => s.rssMib).sort((x, y) => x - y);
  if (rss.length === 0) return 'RSS first_mib=- last_mib=- min_mib=- max_mib=- median_mib=- band_pct=- slope_mib_per_min=- within_10pct=no';
  const median = rss[Math.floor((rss.length - 1) / 2)]!;
  const band = (100 * Math.max(rss.at(-1)! - median, median - rss[0]!)) / median;
  return (
    `RSS first_mib=${f1(after[0]!.rssMib)} last_mib=${f1(after.at(-1)!.rssMib)} min_mib=${f1(rss[0]!)} max_mib=${f1(rss.at(-1)!)} ` +
    `median_mib=${f1(median)} band_pct=${f1(band)} slope_mib_per_min=${slopePerMinute(after).toFixed(2)} within_10pct=${band <= 10 ? 'yes' : 'no'}`
  );
}

/** The samples as a Markdown table: one row per sample, CPU as a share of one core since the last. */
function samplesTable(samples: Sample[], clkTck: number): string[] {
  const rows = ['| t s | RSS MiB | heap used MiB | heap total MiB | external MiB | agentward CPU % | audit file MiB |', '|---:|---:|---:|---:|---:|---:|---:|'];
  for (const [i, s] of samples.entries()) {
    const prev = samples[i - 1];
    const cpu = prev ? f1((100 * (s.cpuTicks - prev.cpuTicks)) / clkTck / ((s.t - prev.t) / 1000)) : '-';
    const h = (v: number | undefined): string => (v === undefined ? '-' : f1(v));
    rows.push(`| ${Math.round((s.t - from) / 1000)} | ${f1(s.rssMib)} | ${h(s.heapUsedMib)} | ${h(s.heapTotalMib)} | ${h(s.externalMib)} | ${cpu} | ${f1(s.auditMib)} |`);
  }
  return rows;
}

/** Each stall with the collections that ended during it or within a second of it. */
function stallsSection(statsFile: string, pauses: GcPause[]): string[] {
  const stalls = readFileSync(statsFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('STALL '))
    .map((l) => Object.fromEntries(l.slice(6).split(' ').map((kv) => kv.split('=') as [string, string])));
  if (stalls.length === 0) return ['No stall: every second of the soak completed requests, and none had a p99 over the threshold.'];
  const rows = ['| from s | to s | worst latency ms | completed | GC pauses ending within ±1 s (ms, longest first) |', '|---:|---:|---:|---:|---|'];
  for (const s of stalls) {
    const start = Number(s.start_unix_ms);
    const end = Number(s.end_unix_ms);
    const near = pauses
      .filter((p) => p.at >= start - 1000 && p.at <= end + 1000)
      .sort((x, y) => y.pauseMs - x.pauseMs)
      .slice(0, 5)
      .map((p) => `${p.pauseMs.toFixed(1)} ${p.kind}`);
    rows.push(`| ${Math.round((start - from) / 1000)} | ${Math.round((end - from) / 1000)} | ${s.worst_ms} | ${s.completed} | ${near.length ? near.join(', ') : 'none'} |`);
  }
  return rows;
}

/** Finds every answered request id in the audit records written after the first `skip`. */
async function auditCount(idsFile: string, auditFile: string, skip: number): Promise<string> {
  const recorded = new Set<string>();
  let line = 0;
  const requestId = /"requestId":"([^"]*)"/;
  for await (const l of createInterface({ input: createReadStream(auditFile), crlfDelay: Infinity })) {
    if (l === '' || line++ < skip) continue;
    const m = requestId.exec(l);
    if (m) recorded.add(m[1]!);
  }
  let answered = 0;
  let matched = 0;
  for await (const id of createInterface({ input: createReadStream(idsFile), crlfDelay: Infinity })) {
    if (id === '') continue;
    answered++;
    if (recorded.has(id)) matched++;
  }
  return `AUDIT records=${recorded.size} answered=${answered} matched=${matched} missing=${answered - matched} unanswered=${recorded.size - matched}`;
}

const samples = readSamples(a.samples!, a.probe!);
const pauses = readGcTrace(a['gc-log']!, probeOrigin(a.probe!));
const gc = summarise(pauses, from, to + 1000);
const heap = samples.filter((s) => s.heapUsedMib !== undefined && s.t >= warmupEnd);
const longest = [...pauses].filter((p) => p.at >= from && p.at <= to + 1000).sort((x, y) => y.pauseMs - x.pauseMs).slice(0, 5);
writeFileSync(
  a.out!,
  [
    '### Stalls (1 s windows: p99 over the threshold, or nothing completed)',
    '',
    ...stallsSection(a.stats!, pauses),
    '',
    '### Garbage collection (`--trace-gc`, the main thread\'s pauses)',
    '',
    `${gc.count} collections (${gc.young} young, ${gc.markCompacts} mark-compact), ${f1(gc.count / ((to - from) / 1000))} per second, ` +
      `${f1(gc.totalMs)} ms of pauses in all; median ${gc.medianMs.toFixed(2)} ms, p99 ${gc.p99Ms.toFixed(2)} ms, max ${gc.maxMs.toFixed(2)} ms. ` +
      `Longest: ${longest.map((p) => `${p.pauseMs.toFixed(1)} ms ${p.kind} at ${Math.round((p.at - from) / 1000)} s`).join('; ') || 'none'}.`,
    '',
    `### Memory and CPU, every sample (t from the start of the load; RSS and CPU from /proc, heap from process.memoryUsage())`,
    '',
    ...samplesTable(samples, Number(a['clk-tck'])),
    '',
  ].join('\n'),
);
console.log(await auditCount(a.ids!, a.audit!, Number(a['audit-skip'])));
console.log(rssSummary(samples));
console.log(
  heap.length ? `HEAP first_mib=${f1(heap[0]!.heapUsedMib!)} last_mib=${f1(heap.at(-1)!.heapUsedMib!)} max_mib=${f1(Math.max(...heap.map((h) => h.heapUsedMib!)))}` : 'HEAP first_mib=- last_mib=- max_mib=-',
);
console.log(
  `GC count=${gc.count} young=${gc.young} mark_compacts=${gc.markCompacts} total_ms=${gc.totalMs.toFixed(1)} median_ms=${gc.medianMs.toFixed(2)} p99_ms=${gc.p99Ms.toFixed(2)} max_ms=${gc.maxMs.toFixed(2)}`,
);
