/**
 * Packages only some deployments use load only when they are used (docs/operations.md "Memory"):
 * ioredis with `state.backend: redis`, OpenTelemetry with `tracing`, http-proxy-3 at the first
 * WebSocket handshake a policy allows, the X.509 parser at the first client certificate. The real `agentward serve` process runs with a preload that
 * records every module it resolves (test/helpers/module-log.ts); what it loaded is read from that
 * file. A default configuration, after readiness and a proxied request, has loaded none of them.
 * Each case runs twice: from src/main.ts, and from the one-module bundle the container runs
 * (scripts/bundle.ts), which must leave these packages out and still find them in node_modules
 * beside it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startChild, type TestChild } from '../helpers/child-process.ts';
import { REPO } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { echo, open, startEcho, type EchoUpstream } from '../helpers/websocket.ts';
import { bundle } from '../../scripts/bundle.ts';

const RESOURCE = 'https://tools.example.com/';
/**
 * Where each package's files resolve to. OpenTelemetry is its SDK (sdk-trace, the OTLP exporter,
 * core, resources, semantic conventions): `@opentelemetry/api` alone is always loaded, by
 * prom-client (the metrics), for its exemplars, and costs nothing measurable once prom-client is.
 */
const OPTIONAL = {
  ioredis: /\/node_modules\/ioredis\//,
  opentelemetry: /\/node_modules\/@opentelemetry\/(?!api\/)/,
  'http-proxy-3': /\/node_modules\/http-proxy-3\//,
  // The X.509 parser (src/credentials/x509-svid.ts): loaded at the first client certificate read,
  // which none of these requests present.
  asn1: /\/node_modules\/(@peculiar\/asn1-|asn1js\/)/,
};
type Optional = keyof typeof OPTIONAL;

interface Served {
  url: string;
  /** The optional packages the process has loaded so far. */
  loaded(): Optional[];
  /** The audit records written so far. */
  audit(): Record<string, unknown>[];
  output(): string;
}

let issuer: TestIssuer;
let upstream: EchoUpstream;
let token: string;
const children: TestChild[] = [];

beforeAll(async () => {
  [issuer, upstream] = await Promise.all([startIssuer({ audience: RESOURCE }), startEcho()]);
  token = await issuer.mint({ scope: 'tools.read tools.write' });
});
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()));
});
afterAll(async () => {
  await Promise.all([upstream?.close(), issuer?.close()]);
});

/** The entry module each case runs, as `node ENTRY serve`. */
interface Entry {
  name: string;
  main(): Promise<string>;
}

/**
 * The bundle, laid out as in the container image: the file in dist/ with the production
 * node_modules beside it (here a link to the checkout's), built once for this file.
 */
let bundled: Promise<string> | undefined;
function builtBundle(): Promise<string> {
  bundled ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-bundle-'));
    symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
    return bundle({ outfile: join(dir, 'dist/agentward.mjs') });
  })();
  return bundled;
}

const ENTRIES: Entry[] = [
  { name: 'src/main.ts', main: async () => join(REPO, 'src/main.ts') },
  { name: 'the bundle (scripts/bundle.ts)', main: builtBundle },
];

/** `agentward serve` (`main`) with the bench-like minimal config plus `extra`; resolves once it listens. */
async function serve(main: string, extra: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-lazy-'));
  const config = join(dir, 'agentward.yaml');
  const modules = join(dir, 'modules.txt');
  const auditFile = join(dir, 'audit.jsonl');
  writeFileSync(modules, '');
  writeFileSync(
    config,
    stringify({
      listen: { address: '127.0.0.1:0' },
      admin: { address: '127.0.0.1:0' },
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
      // The committed compiled default policy: no opa run.
      policy: { source: join(REPO, 'bundles/default-policy.tar.gz') },
      audit: { sink: 'file', file: auditFile },
      ...extra,
    }),
  );
  const child = startChild(process.execPath, ['--import', join(REPO, 'test/helpers/module-log.ts'), main, 'serve', '--config', config], {
    ...process.env,
    AGENTWARD_CONFIG: '',
    AGENTWARD_MODULE_LOG: modules,
    ...env,
  });
  children.push(child);
  let address = '';
  await waitFor(async () => {
    if (child.child.exitCode !== null) throw new Error(`agentward exited:\n${child.output()}`);
    const line = child.output().split('\n').find((l) => l.includes('"agentward listening"'));
    if (line) address = (JSON.parse(line) as { address: string }).address;
    return line !== undefined;
  }, 'agentward to listen', 30_000);
  return {
    url: `http://${address}`,
    loaded: () => {
      const urls = readFileSync(modules, 'utf8');
      return (Object.keys(OPTIONAL) as Optional[]).filter((name) => OPTIONAL[name].test(urls));
    },
    audit: () => readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>),
    output: child.output,
  };
}

describe.each(ENTRIES)('from $name', (entry) => {
  let main: string;
  beforeAll(async () => {
    main = await entry.main();
  }, 60_000);

  describe('a default configuration', { timeout: 60_000 }, () => {
    test('loads none of ioredis, OpenTelemetry, http-proxy-3 until a WebSocket handshake, then http-proxy-3 alone', async () => {
      const aw = await serve(main);
      // The module log is written as modules resolve: a package loaded at start would be in it.
      expect(aw.loaded()).toEqual([]);
      const proxied = await rawRequest(`${aw.url}/plain`, { headers: { authorization: `Bearer ${token}` } });
      // The echo upstream's own answer to a plain request: forwarded.
      expect(proxied.status).toBe(404);
      expect(proxied.body).toBe('no websocket here');
      expect(aw.loaded()).toEqual([]);

      // A refused handshake never reaches the forwarder: nothing loaded.
      const refused = await open(`${aw.url.replace(/^http/, 'ws')}/ws`, {});
      expect(refused).toMatchObject({ status: 401 });
      expect(aw.loaded()).toEqual([]);

      const opened = await open(`${aw.url.replace(/^http/, 'ws')}/ws`, { authorization: `Bearer ${token}` });
      if (!('ws' in opened)) throw new Error(`handshake refused: ${opened.status} ${opened.body}`);
      expect(await echo(opened.ws, 'hello')).toBe('hello');
      opened.ws.close();
      expect(aw.loaded()).toEqual(['http-proxy-3']);
    });
  });

  describe('a configuration that uses them', { timeout: 60_000 }, () => {
    let redis: TestRedis;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.close();
    });

    test('`tracing` loads OpenTelemetry at start, and nothing else', async () => {
      // Exports get the echo upstream's 404: refused at once, not retried (a closed port is retried until shutdown).
      const aw = await serve(main, { tracing: { otlp: { endpoint: `${upstream.url}/v1/traces` } } });
      expect(aw.loaded()).toEqual(['opentelemetry']);
      // The loaded SDK works: a request without a traceparent gets its trace id from a new span.
      expect((await rawRequest(`${aw.url}/plain`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
      await waitFor(async () => aw.audit().length === 1, 'the audit record');
      expect(aw.audit()[0]!.traceId).toMatch(/^[0-9a-f]{32}$/);
    });

    test('`state.backend: redis` loads ioredis at start, and nothing else', async () => {
      const aw = await serve(main, { state: { backend: 'redis', redis: { url: redis.url, keyPrefix: 'lazy:' } } });
      expect(aw.loaded()).toEqual(['ioredis']);
      expect((await rawRequest(`${aw.url}/plain`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    });
  });

  describe('http-proxy-3 missing (a broken install)', { timeout: 60_000 }, () => {
    test('agentward starts; a handshake is refused 500 ERR_INTERNAL with the cause logged, and ordinary requests go on', async () => {
      const aw = await serve(main, {}, { AGENTWARD_MODULE_FAIL: 'http-proxy-3' });
      const wsUrl = `${aw.url.replace(/^http/, 'ws')}/ws`;
      for (let i = 0; i < 2; i++) {
        // Tried again at every handshake, refused the same way each time.
        const refused = await open(wsUrl, { authorization: `Bearer ${token}` });
        if ('ws' in refused) throw new Error('the handshake was proxied');
        expect(refused.status).toBe(500);
        expect(JSON.parse(refused.body)).toMatchObject({ code: 'ERR_INTERNAL' });
      }
      expect((await rawRequest(`${aw.url}/plain`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
      const logged = aw.output().split('\n').find((l) => l.includes('"code":"ERR_INTERNAL"'));
      expect(logged).toContain("Cannot find module 'http-proxy-3'");
      expect(aw.loaded()).toEqual([]);
    });
  });
});
