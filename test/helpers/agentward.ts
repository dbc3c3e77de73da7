/**
 * Starts the real agentward (the same createApp that `agentward serve` runs) on port 0 with a
 * config written to a temporary folder, auditing to a file there, logging to memory.
 */
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { createApp, type App } from '../../src/app/index.ts';
import { createLogger } from '../../src/observability/logger.ts';

export const REPO = resolve(import.meta.dirname, '../..');
export const DEFAULT_POLICY = join(REPO, 'policies');

export interface RunningAgentward {
  url: string;
  adminUrl: string;
  app: App;
  dir: string;
  auditFile: string;
  logs: () => string;
  audit: () => Record<string, unknown>[];
  stop(): Promise<void>;
}

/** `config` is the YAML document as an object; listen/admin/audit are filled in. */
export async function startAgentward(config: Record<string, unknown>): Promise<RunningAgentward> {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-test-'));
  const auditFile = join(dir, 'audit.jsonl');
  const full = {
    listen: { address: '127.0.0.1:0', ...(config.listen as object) },
    admin: { address: '127.0.0.1:0' },
    audit: { sink: 'file', file: auditFile },
    log: { level: 'debug' },
    ...Object.fromEntries(Object.entries(config).filter(([k]) => k !== 'listen')),
  };
  const file = join(dir, 'agentward.yaml');
  writeFileSync(file, stringify(full));
  const loaded = parseConfig(readFileSync(file, 'utf8'), file);
  let logText = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      logText += chunk.toString();
      done();
    },
  });
  const app = createApp(loaded, { logger: createLogger('debug', sink) });
  const { address, admin } = await app.start();
  if (!admin) throw new Error('the admin listener did not start');
  return {
    // With listen.tls the listener speaks HTTPS (test certificates name 127.0.0.1).
    url: `${(config.listen as { tls?: unknown } | undefined)?.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`,
    adminUrl: `http://127.0.0.1:${admin.port}`,
    app,
    dir,
    auditFile,
    logs: () => logText,
    audit: () => (existsSync(auditFile) ? readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : []),
    stop: () => app.stop(),
  };
}
