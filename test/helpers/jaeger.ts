/**
 * A real Jaeger (v2 `jaeger` binary of Go module github.com/jaegertracing/jaeger v1.75.0, built
 * once by scripts/jaeger.sh) as a child process: an OTLP/HTTP receiver and the query API on free
 * loopback ports, traces kept in memory. Nothing leaves the loopback interface.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startChild } from './child-process.ts';
import { waitFor } from './wait.ts';

export const JAEGER_VERSION = 'v1.75.0';

/** The jaeger binary: $AGENTWARD_JAEGER (scripts/jaeger.sh sets it), else the cache folder's. */
export function jaegerBinary(): string {
  const cached = join(process.env.AGENTWARD_CACHE ?? join(homedir(), '.cache', 'agentward'), `jaeger-${JAEGER_VERSION}`, 'jaeger');
  const binary = process.env.AGENTWARD_JAEGER ?? cached;
  if (!existsSync(binary)) throw new Error(`no jaeger binary at ${binary}: run \`. scripts/jaeger.sh\` (scripts/run test does) to build Jaeger ${JAEGER_VERSION}`);
  return binary;
}

/** A span as the query API (/api/traces/{id}, Jaeger's JSON model) gives it. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; type: string; value: unknown }[];
  processID: string;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

export interface TestJaeger {
  /** The OTLP/HTTP traces endpoint. */
  otlpTracesUrl: string;
  queryUrl: string;
  /** The trace through the query API; undefined while it is not (yet) stored. */
  trace(traceId: string): Promise<JaegerTrace | undefined>;
  /** Polls until the trace holds `spans` spans at least. */
  waitForTrace(traceId: string, spans: number): Promise<JaegerTrace>;
  logs(): string;
  stop(): Promise<void>;
}

export async function startJaeger(): Promise<TestJaeger> {
  const binary = jaegerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'agentward-jaeger-'));
  const [otlpPort, queryPort, queryGrpcPort] = [await freePort(), await freePort(), await freePort()];
  // The all-in-one configuration cut down to what the test reads: OTLP/HTTP in, memory storage,
  // the query API; no fixed ports (no OTLP/gRPC, no other receivers, no self-metrics endpoint).
  const config = join(dir, 'jaeger.yaml');
  writeFileSync(
    config,
    `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${queryPort}
    grpc:
      endpoint: 127.0.0.1:${queryGrpcPort}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlpPort}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`,
  );
  const server = startChild(binary, ['--config', config]);
  const queryUrl = `http://127.0.0.1:${queryPort}`;
  const stop = async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => (await fetch(`${queryUrl}/api/services`).catch(() => undefined))?.ok === true, 'the jaeger query API', 30000);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${server.output()}`);
  }
  const trace = async (traceId: string): Promise<JaegerTrace | undefined> => {
    const res = await fetch(`${queryUrl}/api/traces/${traceId}`);
    if (res.status === 404) return undefined;
    const body = (await res.json()) as { data?: JaegerTrace[] | null };
    return body.data?.[0];
  };
  return {
    otlpTracesUrl: `http://127.0.0.1:${otlpPort}/v1/traces`,
    queryUrl,
    trace,
    async waitForTrace(traceId, spans) {
      let found: JaegerTrace | undefined;
      await waitFor(async () => ((found = await trace(traceId))?.spans.length ?? 0) >= spans, `${spans} spans of trace ${traceId} in jaeger`, 30000);
      return found!;
    },
    logs: () => server.output(),
    stop,
  };
}
