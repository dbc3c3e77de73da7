/**
 * agentward as the demo runs it: a child process (`node src/main.ts serve --config FILE`),
 * exactly as an operator would start it, with a config written to a temporary folder.
 *
 * Its logs (JSON, stderr) go to agentward.log in that folder; warnings and errors are also shown
 * on the demo's stderr. The audit trail goes to audit.jsonl in the same folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { HOST } from './net.ts';

export const REPO = join(import.meta.dirname, '..', '..');
export const DEFAULT_BUNDLE = join(REPO, 'bundles', 'default-policy.tar.gz');

export interface DemoConfigOptions {
  dir: string;
  proxyPort: number;
  adminPort: number;
  upstreamUrl: string;
  issuer: string;
  resourceId: string;
  bundle: string;
}

export interface DemoConfigFiles {
  config: string;
  audit: string;
  log: string;
}

/** Writes agentward.yaml; returns its path and those of the audit and log files. */
export function writeDemoConfig(o: DemoConfigOptions): DemoConfigFiles {
  const files = { config: join(o.dir, 'agentward.yaml'), audit: join(o.dir, 'audit.jsonl'), log: join(o.dir, 'agentward.log') };
  const config = {
    listen: { address: `${HOST}:${o.proxyPort}`, shutdownTimeout: '5s' },
    admin: { address: `${HOST}:${o.adminPort}` },
    upstream: { url: o.upstreamUrl },
    resource: {
      id: o.resourceId,
      name: 'agentward demo tools',
      authorizationServers: [o.issuer],
      scopesSupported: ['tools.read', 'tools.write'],
    },
    oauth: {
      // No jwksUri: agentward finds it in the issuer's RFC 8414 metadata.
      issuers: [{ issuer: o.issuer, discovery: 'oauth-authorization-server', algorithms: ['ES256'] }],
    },
    // The compiled default policy committed in the repository, so the demo needs no opa.
    policy: { source: o.bundle },
    forward: { identityHeaders: { 'X-Agent-Id': 'subject.clientId', 'X-User': 'subject.sub' } },
    audit: { sink: 'file', file: files.audit },
    log: { level: 'info' },
  };
  writeFileSync(files.config, `# Written by scripts/demo.ts for this run.\n${stringify(config)}`);
  return files;
}

export interface AgentwardProcess {
  child: ChildProcess;
  /** Resolves with the exit code (or the signal name) when the child has exited. */
  exited: Promise<number | string>;
  /** The last log lines, for error reports. */
  recentLogs(): string[];
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
}

interface LogLine {
  level?: string;
  msg?: string;
  [key: string]: unknown;
}

/** Starts `node src/main.ts serve --config FILE`. `onLog` receives warn/error/fatal lines. */
export function spawnAgentward(files: DemoConfigFiles, onLog: (line: string) => void): AgentwardProcess {
  const child = spawn(process.execPath, [join(REPO, 'src', 'main.ts'), 'serve', '--config', files.config], {
    cwd: REPO,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: Ctrl-C in the terminal reaches only the demo, which then sends the
    // child one SIGTERM (as an orchestrator would).
    detached: true,
  });
  const log = createWriteStream(files.log, { flags: 'a' });
  const recent: string[] = [];
  const keep = (line: string) => {
    recent.push(line);
    if (recent.length > 40) recent.shift();
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      log.write(`${line}\n`);
      keep(line);
      const parsed = parseLog(line);
      if (parsed === undefined) onLog(line);
      else if (parsed.level === 'warn' || parsed.level === 'error' || parsed.level === 'fatal') onLog(formatLog(parsed));
    });
  }
  const exited = new Promise<number | string>((done) => {
    child.once('exit', (code, signal) => {
      // Let the last lines reach the log file.
      setTimeout(() => log.end(() => done(code ?? signal ?? 'unknown')), 50);
    });
  });
  let stopping: Promise<number | string> | undefined;
  return {
    child,
    exited,
    recentLogs: () => [...recent],
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          const result = await exited;
          clearTimeout(timer);
          return result;
        }
        return exited;
      })();
      return stopping;
    },
  };
}

function parseLog(line: string): LogLine | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' ? (value as LogLine) : undefined;
  } catch {
    return undefined;
  }
}

/** One readable line from a pino JSON line. */
export function formatLog(l: LogLine): string {
  const skip = new Set(['level', 'msg', 'time', 'service', 'pid', 'hostname']);
  const extra = Object.entries(l)
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${l.level ?? '?'}: ${l.msg ?? ''}${extra ? ` (${extra})` : ''}`;
}

/** Polls /readyz until it answers 200. Fails early when the child exits. */
export async function waitReady(adminUrl: string, agentward: AgentwardProcess, timeoutMs: number): Promise<Record<string, unknown>> {
  let exitedWith: number | string | undefined;
  void agentward.exited.then((c) => {
    exitedWith = c;
  });
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (exitedWith !== undefined) throw new Error(`agentward exited (${exitedWith}) before it was ready`);
    try {
      const res = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as Record<string, unknown>;
      if (res.status === 200) return body;
      last = `HTTP ${res.status} ${JSON.stringify(body)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`agentward was not ready within ${timeoutMs / 1000}s (last /readyz answer: ${last})`);
}
