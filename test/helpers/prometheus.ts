/**
 * A real Prometheus (Debian's `prometheus` package; scripts/run test installs it when missing) as
 * a child process scraping the given targets every second, its HTTP API on a free loopback port,
 * its storage in a temporary folder. Nothing leaves the loopback interface.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startChild } from './child-process.ts';
import { waitFor } from './wait.ts';

/** $AGENTWARD_PROMETHEUS, else Debian's. */
export function prometheusBinary(): string {
  const binary = process.env.AGENTWARD_PROMETHEUS ?? '/usr/bin/prometheus';
  if (!existsSync(binary)) throw new Error(`no prometheus binary at ${binary}: apt-get install -y prometheus (scripts/run test does)`);
  return binary;
}

/** promtool, which comes with Debian's prometheus package. */
export function promtool(args: string[]): { status: number | null; output: string } {
  const binary = process.env.AGENTWARD_PROMTOOL ?? '/usr/bin/promtool';
  if (!existsSync(binary)) throw new Error(`no promtool at ${binary}: apt-get install -y prometheus (scripts/run test does)`);
  const run = spawnSync(binary, args, { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface TestPrometheus {
  url: string;
  /** An instant query through the HTTP API (/api/v1/query). */
  query(promql: string): Promise<PromSample[]>;
  /** Polls `query` until `check` holds on its result. */
  waitFor(promql: string, check: (samples: PromSample[]) => boolean, what: string): Promise<PromSample[]>;
  logs(): string;
  stop(): Promise<void>;
}

/** `targets` are host:port of /metrics endpoints. */
export async function startPrometheus(targets: string[]): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-prometheus-'));
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: agentward\n    static_configs:\n      - targets: [${targets.map((t) => `"${t}"`).join(', ')}]\n`);
  const server = startChild(prometheusBinary(), [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn']);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok === true, 'prometheus to be ready', 30000);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${server.output()}`);
  }
  const query = async (promql: string): Promise<PromSample[]> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; data?: { resultType: string; result: PromSample[] }; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus query ${promql}: ${body.error}`);
    return body.data!.result;
  };
  return {
    url,
    query,
    async waitFor(promql, check, what) {
      let last: PromSample[] = [];
      await waitFor(async () => check((last = await query(promql))), what, 30000);
      return last;
    },
    logs: () => server.output(),
    stop,
  };
}
