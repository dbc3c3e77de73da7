/**
 * Garbage-collection pauses of a Node process run with `--trace-gc` (bench/open-loop.sh,
 * bench/soak.sh). V8 prints one line per collection on stdout, e.g.
 *
 *   [pid:0x…]   2049 ms: Scavenge 4.4 (5.8) -> 4.1 (6.8) MB, pooled: 0 MB, 1.66 / 0.00 ms  (…) allocation failure;
 *
 * where "2049 ms" is the time since the isolate started and "1.66 / 0.00 ms" the pause of the
 * main thread / the time spent in the background. A Mark-Compact's incremental marking steps
 * ("+ 55.2 ms in 308 steps") ran earlier, interleaved with requests: they are not in its pause.
 * The pause is what a request waiting on the event loop feels, so that is what is summed here.
 *
 *   node bench/gc-trace.ts LOG PROBE FROM_MS TO_MS
 *
 * PROBE is bench/memory-probe.ts's file (its first line holds performance.timeOrigin, which
 * places "ms since start" on the wall clock within a few ms); FROM_MS and TO_MS are Unix ms.
 * Prints "GC count=N young=N mark_compacts=N total_ms=X median_ms=X p99_ms=X max_ms=X".
 */
import { readFileSync } from 'node:fs';

export interface GcPause {
  /** Unix ms at which the collection ended (when V8 printed it). */
  at: number;
  kind: string;
  pauseMs: number;
}

export interface GcSummary {
  count: number;
  /** Young-generation collections: Scavenge (or Minor Mark-Sweep under --minor-ms). */
  young: number;
  markCompacts: number;
  totalMs: number;
  medianMs: number;
  p99Ms: number;
  maxMs: number;
}

const LINE = /^\[\d+:0x[0-9a-f]+\]\s+(\d+(?:\.\d+)?) ms: (.+?) [\d.]+ \([\d.]+\) -> .*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/;

/** The time origin bench/memory-probe.ts recorded (its first line). */
export function probeOrigin(probeFile: string): number {
  const first = readFileSync(probeFile, 'utf8').split('\n', 1)[0] ?? '';
  const start = JSON.parse(first) as { event?: string; timeOrigin?: number };
  if (start.event !== 'start' || typeof start.timeOrigin !== 'number') throw new Error(`${probeFile}: no start line`);
  return start.timeOrigin;
}

/** Every collection of a --trace-gc log, on the wall clock. Other lines are skipped. */
export function readGcTrace(logFile: string, originMs: number): GcPause[] {
  const pauses: GcPause[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = LINE.exec(line);
    if (m) pauses.push({ at: originMs + Number(m[1]), kind: m[2]!, pauseMs: Number(m[3]) });
  }
  return pauses;
}

/** Count and pauses of the collections that ended in [fromMs, toMs). Nearest-rank percentiles. */
export function summarise(pauses: GcPause[], fromMs: number, toMs: number): GcSummary {
  const inside = pauses.filter((p) => p.at >= fromMs && p.at < toMs);
  const sorted = inside.map((p) => p.pauseMs).sort((a, b) => a - b);
  const rank = (q: number): number => (sorted.length === 0 ? 0 : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!);
  return {
    count: inside.length,
    young: inside.filter((p) => p.kind.startsWith('Scavenge') || p.kind.startsWith('Minor')).length,
    markCompacts: inside.filter((p) => p.kind.startsWith('Mark-Compact')).length,
    totalMs: sorted.reduce((a, b) => a + b, 0),
    medianMs: rank(0.5),
    p99Ms: rank(0.99),
    maxMs: sorted.at(-1) ?? 0,
  };
}

if (import.meta.main) {
  const [log, probe, from, to] = process.argv.slice(2);
  if (!log || !probe || !from || !to) {
    console.error('usage: node bench/gc-trace.ts LOG PROBE FROM_MS TO_MS');
    process.exit(2);
  }
  const s = summarise(readGcTrace(log, probeOrigin(probe)), Number(from), Number(to));
  console.log(
    `GC count=${s.count} young=${s.young} mark_compacts=${s.markCompacts} total_ms=${s.totalMs.toFixed(1)} ` +
      `median_ms=${s.medianMs.toFixed(2)} p99_ms=${s.p99Ms.toFixed(2)} max_ms=${s.maxMs.toFixed(2)}`,
  );
}
