/**
 * A preload for the agentward process of bench/soak.sh and bench/open-loop.sh: it records what
 * /proc cannot show (the V8 heap) without an endpoint in src/.
 *
 *   AW_MEMORY_PROBE=FILE [AW_MEMORY_PROBE_MS=10000] node --import ./bench/memory-probe.ts src/main.ts serve ...
 *
 * Appends JSON lines to FILE: first {"event":"start","pid","timeOrigin"} (performance.timeOrigin,
 * which bench/gc-trace.ts adds to --trace-gc's "ms since start" to place each pause on the wall
 * clock), then every AW_MEMORY_PROBE_MS {"t", "rss", "heapTotal", "heapUsed", "external",
 * "arrayBuffers"} in bytes, t in Unix ms: process.memoryUsage(), taken on the event loop. The
 * timer is unref'd (it never keeps the process alive) and the writes are synchronous and tiny.
 * Without AW_MEMORY_PROBE it does nothing.
 */
import { appendFileSync } from 'node:fs';

const file = process.env.AW_MEMORY_PROBE;
if (file) {
  const every = Number(process.env.AW_MEMORY_PROBE_MS ?? 10_000);
  appendFileSync(file, `${JSON.stringify({ event: 'start', pid: process.pid, timeOrigin: performance.timeOrigin })}\n`);
  const sample = (): void => {
    const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
    appendFileSync(file, `${JSON.stringify({ t: Date.now(), rss, heapTotal, heapUsed, external, arrayBuffers })}\n`);
  };
  setInterval(sample, every).unref();
}
