/**
 * The agentward demo: `npm run demo` (or `scripts/run demo`, which first installs Node.js 24).
 *
 * Starts, all on 127.0.0.1:
 *   - a sample tool server (scripts/demo/tool-server.ts)            port 3000, $DEMO_TOOL_PORT
 *   - a token issuer with two clients (scripts/demo/issuer.ts)       port 9000, $DEMO_ISSUER_PORT
 *   - agentward in front of the tool, as a child process:
 *     `node src/main.ts serve --config <temp>/agentward.yaml`       port 8080, $DEMO_PROXY_PORT
 *                                                        admin port 9901, $DEMO_ADMIN_PORT
 * with the committed compiled default policy (bundles/default-policy.tar.gz, so no opa is
 * needed), waits for /readyz and prints curl commands to try, with tokens already fetched.
 * Ctrl-C or SIGTERM stops everything (agentward gets SIGTERM).
 *
 * `--check` (or DEMO_CHECK=1): start everything, make the calls itself, print the results, stop,
 * and exit 0 when every call answered as expected, 1 otherwise.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, watchFile, unwatchFile } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_BUNDLE, REPO, spawnAgentward, waitReady, writeDemoConfig, type AgentwardProcess } from './demo/agentward.ts';
import { DEMO_CLIENTS, TOKEN_LIFETIME_SECONDS, forgeToken, startIssuer, type DemoIssuer } from './demo/issuer.ts';
import { HOST, PortError, ensureFree, portFrom } from './demo/net.ts';
import { startToolServer, type ToolServer } from './demo/tool-server.ts';

const USAGE = `usage: node scripts/demo.ts [--check]
  --check   start everything, make the demo calls, print the results and exit 0 (all as expected) or 1
environment:
  DEMO_PROXY_PORT (8080)  DEMO_TOOL_PORT (3000)  DEMO_ISSUER_PORT (9000)  DEMO_ADMIN_PORT (9901)
  DEMO_CHECK=1            same as --check
  DEMO_KEEP_TMP=1         keep the temporary folder (config, audit, log) after stopping`;

interface Ports {
  proxy: number;
  tool: number;
  issuer: number;
  admin: number;
}

interface Tokens {
  read: string;
  write: string;
  delegated: string;
  forged: string;
}

/** One demo call: what it sends and what it must answer. */
interface Call {
  title: string;
  method: 'GET' | 'POST';
  path: string;
  token: string | undefined;
  body?: string;
  expectStatus: number;
  /** Checks beyond the status; returns problems (empty when fine). */
  verify(res: Response, body: string): string[];
  expectText: string;
  /** One of the three calls the demo is about (the rest are extras). */
  main: boolean;
}

const ISSUE_BODY = '{"title":"Disk almost full on db-1"}';

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const check = values.check === true || process.env.DEMO_CHECK === '1';

  let ports: Ports;
  try {
    ports = {
      proxy: portFrom(process.env, 'DEMO_PROXY_PORT', 8080),
      tool: portFrom(process.env, 'DEMO_TOOL_PORT', 3000),
      issuer: portFrom(process.env, 'DEMO_ISSUER_PORT', 9000),
      admin: portFrom(process.env, 'DEMO_ADMIN_PORT', 9901),
    };
  } catch (err) {
    return fail((err as Error).message);
  }
  if (new Set(Object.values(ports)).size !== 4) return fail(`the four demo ports must differ: ${JSON.stringify(ports)}`);
  if (!existsSync(DEFAULT_BUNDLE)) {
    return fail(`${relative(process.cwd(), DEFAULT_BUNDLE)} is missing; build it with \`npm run policy:build\` (needs the opa CLI)`);
  }

  const proxyUrl = `http://${HOST}:${ports.proxy}`;
  const adminUrl = `http://${HOST}:${ports.admin}`;
  const resourceId = proxyUrl;
  const cleanups: (() => Promise<unknown> | void)[] = [];
  let agentward: AgentwardProcess | undefined;
  let stopping: Promise<void> | undefined;
  /** Set before agentward is stopped on purpose, so its exit is not reported as a crash. */
  let shuttingDown = false;
  const stopAll = (): Promise<void> => {
    shuttingDown = true;
    stopping ??= (async () => {
      // Reverse start order: agentward first, then the servers it talks to.
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (err) {
          console.error(`demo: cleanup failed: ${(err as Error).message}`);
        }
      }
    })();
    return stopping;
  };
  // If the demo dies unexpectedly, do not leave agentward running in its own process group.
  process.on('exit', () => {
    if (agentward && agentward.child.exitCode === null && agentward.child.signalCode === null) agentward.child.kill('SIGKILL');
  });
  // From the start and in both modes, a signal stops everything: agentward gets SIGTERM, the
  // servers close. Exit status 0 when the interactive demo was running, else 1. A second signal
  // does not wait.
  let running = false;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      console.error(`demo: second signal (${signal}), killing agentward`);
      agentward?.child.kill('SIGKILL');
      process.exit(1);
    }
    console.log(`\n${signal}: stopping agentward (SIGTERM), the token issuer and the tool server...`);
    void stopAll().then(() => {
      console.log(process.env.DEMO_KEEP_TMP === '1' ? 'stopped; the temporary folder is kept' : 'stopped');
      process.exit(running ? 0 : 1);
    });
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

  try {
    await ensureFree(ports.proxy, 'agentward', 'DEMO_PROXY_PORT');
    await ensureFree(ports.admin, 'agentward admin', 'DEMO_ADMIN_PORT');
    const tool = await startToolServer(ports.tool);
    cleanups.push(() => tool.close());
    const issuer = await startIssuer({ port: ports.issuer, audience: resourceId });
    cleanups.push(() => issuer.close());

    const dir = mkdtempSync(join(tmpdir(), 'agentward-demo-'));
    const keep = process.env.DEMO_KEEP_TMP === '1';
    cleanups.push(() => {
      if (!keep) rmSync(dir, { recursive: true, force: true });
    });
    const files = writeDemoConfig({ dir, proxyPort: ports.proxy, adminPort: ports.admin, upstreamUrl: tool.url, issuer: issuer.issuer, resourceId, bundle: DEFAULT_BUNDLE });

    const aw = spawnAgentward(files, (line) => console.error(`  agentward ${line}`));
    agentward = aw;
    cleanups.push(() => aw.stop());
    const ready = await waitReady(adminUrl, aw, 30_000).catch((err: unknown) => {
      const logs = aw.recentLogs();
      throw new Error(`${(err as Error).message}${logs.length ? `\nagentward's last output:\n  ${logs.join('\n  ')}` : ''}`);
    });
    // A crash after start is reported and ends the demo.
    void aw.exited.then((code) => {
      if (shuttingDown) return;
      console.error(`\ndemo: agentward exited unexpectedly (${code}); its last output:\n  ${aw.recentLogs().join('\n  ')}`);
      void stopAll().then(() => process.exit(1));
    });

    const tokens = await fetchTokens(issuer, resourceId);
    const calls = demoCalls(tokens);
    printSetup({ tool, issuer, proxyUrl, adminUrl, files, ready, keep, check });

    if (check) {
      const ok = await runChecks(proxyUrl, calls);
      // Stopping agentward flushes its audit file, so the audit check reads every record.
      shuttingDown = true;
      await aw.stop();
      const auditOk = checkAudit(files.audit, calls);
      await stopAll();
      const passed = ok && auditOk;
      console.log(passed ? '\ndemo check passed' : '\ndemo check FAILED');
      return passed ? 0 : 1;
    }

    printCurls({ issuer, proxyUrl, calls, tokens });
    console.log('\nPress Ctrl-C to stop.');
    followAudit(files.audit);
    cleanups.push(() => unwatchFile(files.audit));
    running = true;
    // Runs until a signal (onSignal exits the process).
    return await new Promise<number>(() => undefined);
  } catch (err) {
    await stopAll();
    return fail(err instanceof PortError ? err.message : `${(err as Error).message}`);
  }
}

function fail(message: string): number {
  console.error(`demo: ${message}`);
  return 1;
}

/** Tokens for the calls, fetched from the issuer's token endpoint like an agent would. */
async function fetchTokens(issuer: DemoIssuer, audience: string): Promise<Tokens> {
  const get = async (clientId: string, params: Record<string, string>) => {
    const client = DEMO_CLIENTS.find((c) => c.id === clientId)!;
    const res = await fetch(issuer.tokenEndpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...params }),
    });
    const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
    if (res.status !== 200 || !body.access_token) throw new Error(`the token endpoint refused ${clientId}: ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`);
    return body.access_token;
  };
  return {
    read: await get('research-bot', { scope: 'tools.read' }),
    write: await get('ops-bot', { scope: 'tools.read tools.write' }),
    delegated: await get('research-bot', { scope: 'tools.read', on_behalf_of: 'alice' }),
    forged: await forgeToken(issuer, audience),
  };
}

function demoCalls(t: Tokens): Call[] {
  const header = (res: Response) => res.headers.get('www-authenticate') ?? '';
  const seen = (body: string): Record<string, string> => {
    try {
      return ((JSON.parse(body) as { seenByTool?: Record<string, string> }).seenByTool ?? {}) as Record<string, string>;
    } catch {
      return {};
    }
  };
  const identity = (body: string, agent: string, user: string) => {
    const s = seen(body);
    const problems: string[] = [];
    if (s['x-agent-id'] !== agent) problems.push(`the tool saw X-Agent-Id ${s['x-agent-id'] ?? '(none)'}, expected ${agent}`);
    if (s['x-user'] !== user) problems.push(`the tool saw X-User ${s['x-user'] ?? '(none)'}, expected ${user}`);
    if (s.authorization !== '(not received)') problems.push('the tool received the Authorization header');
    return problems;
  };
  const challenge = (res: Response, ...parts: string[]) =>
    parts.filter((p) => !header(res).includes(p)).map((p) => `WWW-Authenticate lacks ${p} (got: ${header(res) || 'none'})`);
  return [
    {
      title: 'Allowed: research-bot reads with its tools.read token',
      method: 'GET',
      path: '/tools/weather?city=Paris',
      token: t.read,
      expectStatus: 200,
      verify: (_res, body) => identity(body, 'research-bot', 'research-bot'),
      expectText: '200 with the forecast; "seenByTool" shows X-Agent-Id: research-bot and X-User: research-bot\n     added by agentward, and "authorization": "(not received)" (the token stops at the proxy)',
      main: true,
    },
    {
      title: 'Denied: the same read-only token tries to create an issue',
      method: 'POST',
      path: '/tools/issues',
      token: t.read,
      body: ISSUE_BODY,
      expectStatus: 403,
      verify: (res) => challenge(res, 'error="insufficient_scope"', 'scope="tools.write"'),
      expectText: '403, WWW-Authenticate: Bearer error="insufficient_scope", ..., scope="tools.write", resource_metadata=...\n     (the request never reaches the tool)',
      main: true,
    },
    {
      title: 'Refused: a forged token (ops-bot claims with tools.write, signed with a key the issuer never had)',
      method: 'GET',
      path: '/tools/weather?city=Paris',
      token: t.forged,
      expectStatus: 401,
      verify: (res) => challenge(res, 'error="invalid_token"'),
      expectText: '401, WWW-Authenticate: Bearer error="invalid_token", error_description="The access token signature is invalid.", ...',
      main: true,
    },
    {
      title: 'Allowed: ops-bot creates an issue with its tools.write token',
      method: 'POST',
      path: '/tools/issues',
      token: t.write,
      body: ISSUE_BODY,
      expectStatus: 201,
      verify: (_res, body) => identity(body, 'ops-bot', 'ops-bot'),
      expectText: '201 with the new issue, createdBy: ops-bot',
      main: false,
    },
    {
      title: 'Delegated: research-bot acting for the user alice (token sub=alice, act={"sub":"research-bot"})',
      method: 'GET',
      path: '/tools/weather?city=Oslo',
      token: t.delegated,
      expectStatus: 200,
      verify: (_res, body) => identity(body, 'research-bot', 'alice'),
      expectText: '200; the tool sees X-Agent-Id: research-bot and X-User: alice',
      main: false,
    },
    {
      title: 'No token at all',
      method: 'GET',
      path: '/tools/weather?city=Paris',
      token: undefined,
      expectStatus: 401,
      verify: (res) => [
        ...challenge(res, 'resource_metadata='),
        ...(header(res).includes('error=') ? ['WWW-Authenticate has an error code for a request without credentials (RFC 6750 §3.1)'] : []),
      ],
      expectText: '401, WWW-Authenticate: Bearer resource_metadata=".../.well-known/oauth-protected-resource"\n     (no error code: RFC 6750 §3.1; the metadata tells an agent where to get a token)',
      main: false,
    },
  ];
}

async function runChecks(proxyUrl: string, calls: Call[]): Promise<boolean> {
  let allOk = true;
  console.log('\nChecks:');
  for (const [i, call] of calls.entries()) {
    const headers: Record<string, string> = {};
    if (call.token) headers.authorization = `Bearer ${call.token}`;
    if (call.body) headers['content-type'] = 'application/json';
    let problems: string[];
    let got: string;
    try {
      const res = await fetch(proxyUrl + call.path, { method: call.method, headers, ...(call.body ? { body: call.body } : {}), signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      problems = res.status === call.expectStatus ? call.verify(res, body) : [`expected HTTP ${call.expectStatus}`];
      const code = /"code":"([A-Z_]+)"/.exec(body)?.[1];
      const challenge = res.headers.get('www-authenticate');
      got = `${res.status}${code ? ` ${code}` : ''}${challenge ? `  WWW-Authenticate: ${challenge}` : ''}`;
      if (res.status < 300) got += `  tool saw: ${summarizeSeen(body)}`;
    } catch (err) {
      problems = [`the request failed: ${(err as Error).message}`];
      got = 'no answer';
    }
    const ok = problems.length === 0;
    allOk &&= ok;
    console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${i + 1}. ${call.method} ${call.path} -> expected ${call.expectStatus}, got ${got}`);
    console.log(`       ${call.title}`);
    for (const p of problems) console.log(`       problem: ${p}`);
  }
  return allOk;
}

function summarizeSeen(body: string): string {
  try {
    const s = (JSON.parse(body) as { seenByTool?: Record<string, string> }).seenByTool ?? {};
    return `X-Agent-Id=${s['x-agent-id']} X-User=${s['x-user']} Authorization=${s.authorization}`;
  } catch {
    return '(not JSON)';
  }
}

interface AuditLine {
  decision?: string;
  status?: number;
  code?: string | null;
  reason?: string | null;
  action?: { method?: string; path?: string };
  subject?: { clientId?: string | null; sub?: string | null } | null;
  time?: string;
}

function readAudit(file: string): AuditLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditLine);
}

/** Every call left exactly one audit record, in order, with its status. */
function checkAudit(file: string, calls: Call[]): boolean {
  const records = readAudit(file);
  console.log(`\nAudit trail (${records.length} records in ${file}):`);
  for (const r of records) console.log(`  ${auditSummary(r)}`);
  const statuses = records.map((r) => r.status);
  const expected = calls.map((c) => c.expectStatus);
  const ok = JSON.stringify(statuses) === JSON.stringify(expected);
  if (!ok) console.log(`  FAIL audit statuses ${JSON.stringify(statuses)}, expected ${JSON.stringify(expected)}`);
  return ok;
}

function auditSummary(r: AuditLine): string {
  const who = r.subject ? `client=${r.subject.clientId ?? '-'} sub=${r.subject.sub ?? '-'}` : 'no verified subject';
  const why = r.code ? `  ${r.code}${r.reason ? ` (${r.reason})` : ''}` : '';
  return `${(r.decision ?? '?').padEnd(5)} ${r.status} ${r.action?.method} ${r.action?.path}  ${who}${why}`;
}

/** Prints a summary line for every audit record agentward appends while the demo runs. */
function followAudit(file: string): void {
  let offset = 0;
  let partial = '';
  console.log(`\nRequests, as agentward audits them (from ${file}):\n`);
  watchFile(file, { interval: 250 }, () => {
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return;
    }
    if (size <= offset) return;
    const buf = readFileSync(file).subarray(offset, size);
    offset = size;
    const text = partial + buf.toString('utf8');
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      try {
        const r = JSON.parse(line) as AuditLine;
        console.log(`  [audit ${r.time?.slice(11, 19) ?? ''}] ${auditSummary(r)}`);
      } catch {
        // A line that is not JSON is not ours to explain.
      }
    }
  });
}

function printSetup(o: {
  tool: ToolServer;
  issuer: DemoIssuer;
  proxyUrl: string;
  adminUrl: string;
  files: { config: string; audit: string; log: string };
  ready: Record<string, unknown>;
  keep: boolean;
  check: boolean;
}): void {
  const issuers = (o.ready.issuers as { jwksUri?: string | null }[] | undefined) ?? [];
  const policy = o.ready.policy as { revision?: string | null } | undefined;
  const clients = DEMO_CLIENTS.map((c) => `${c.id} (${c.scopes.join(' ')})`).join(', ');
  console.log(
    [
      `agentward demo${o.check ? ' (--check)' : ''}: everything listens on ${HOST}`,
      '',
      `  sample tool    ${o.tool.url}   GET /tools/weather?city=..., GET|POST /tools/issues; no auth of its own`,
      `  token issuer   ${o.issuer.issuer}   POST /token (client_credentials); clients ${clients}`,
      `  agentward      ${o.proxyUrl} -> ${o.tool.url}   (resource ${o.proxyUrl}, admin ${o.adminUrl}/readyz)`,
      `                 keys: discovered ${issuers[0]?.jwksUri ?? '?'} from ${o.issuer.issuer}/.well-known/oauth-authorization-server`,
      `                 policy: ${relative(REPO, DEFAULT_BUNDLE)} (revision ${policy?.revision ?? '?'}): GET/HEAD/OPTIONS need tools.read, other methods tools.write`,
      `  config         ${o.files.config}`,
      `  audit trail    ${o.files.audit}`,
      `  agentward log  ${o.files.log}   (JSON, level info; warnings and errors are also shown here)`,
      `                 ${o.keep ? 'the folder is kept after the demo stops (DEMO_KEEP_TMP=1)' : 'the folder is removed when the demo stops (DEMO_KEEP_TMP=1 keeps it)'}`,
    ].join('\n'),
  );
}

function curl(proxyUrl: string, call: Call): string {
  const parts = [`curl -i${call.method === 'GET' ? '' : ` -X ${call.method}`} '${proxyUrl}${call.path}'`];
  if (call.token) parts.push(`-H 'Authorization: Bearer ${call.token}'`);
  if (call.body) parts.push(`-H 'Content-Type: application/json' -d '${call.body}'`);
  return parts.join(' ');
}

function printCurls(o: { issuer: DemoIssuer; proxyUrl: string; calls: Call[]; tokens: Tokens }): void {
  const tokenCurl = `curl -s -u research-bot:research-bot-secret -d grant_type=client_credentials -d scope=tools.read ${o.issuer.tokenEndpoint}`;
  const lines: string[] = [
    '',
    'Try it. The tokens below were fetched from the issuer at start; they are valid for',
    `${TOKEN_LIFETIME_SECONDS / 60} minutes and only while this demo runs (the issuer makes a new key each start).`,
    '',
    '0. Get a token (client_credentials, client_secret_basic; research-bot may only read):',
    `   ${tokenCurl}`,
    '   -> 200 {"access_token":"eyJ...","token_type":"Bearer","expires_in":3600,"scope":"tools.read"}',
    '   (client_secret_post works too: -d client_id=research-bot -d client_secret=research-bot-secret;',
    '    asking research-bot for scope=tools.write answers 400 invalid_scope)',
    '   or keep it in a variable:',
    `   TOKEN=$(${tokenCurl} | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`,
    `   curl -i '${o.proxyUrl}/tools/weather?city=Paris' -H "Authorization: Bearer $TOKEN"`,
  ];
  let n = 0;
  for (const call of o.calls.filter((c) => c.main)) {
    n++;
    lines.push('', `${n}. ${call.title}:`, `   ${curl(o.proxyUrl, call)}`, `   -> ${call.expectText}`);
  }
  lines.push('', 'More:');
  for (const call of o.calls.filter((c) => !c.main)) {
    n++;
    lines.push('', `${n}. ${call.title}:`, `   ${curl(o.proxyUrl, call)}`, `   -> ${call.expectText}`);
  }
  lines.push(
    '',
    `${n + 1}. Discovery, as an agent would do it after a 401 (RFC 9728, RFC 8414):`,
    `   curl -s ${o.proxyUrl}/.well-known/oauth-protected-resource`,
    `   curl -s ${o.issuer.issuer}/.well-known/oauth-authorization-server`,
  );
  console.log(lines.join('\n'));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
