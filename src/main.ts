/**
 * Command line (design §3.1):
 *   agentward serve  [--config FILE]
 *   agentward check  [--config FILE]
 *   agentward explain [--config FILE] --request FILE [--jwks URL=FILE ...] [--offline]
 *   agentward policy build [DIR] [--output FILE] [--entrypoint E] [--opa BIN]
 *   agentward audit verify FILE [FILE ...] [--key-env VAR] [--checkpoints FILE]
 * --config defaults to $AGENTWARD_CONFIG, then ./agentward.yaml.
 */
import { mkdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { MockAgent } from 'undici';
import { parse as parseYaml } from 'yaml';
import { describedRequest, type DescribedRequest } from './proxy/explain.ts';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, defaultConfigPath, relaxations, ConfigError, type LoadedConfig } from './config/load.ts';
import { createApp, createPolicyEngine } from './app/index.ts';
import { checkFiles } from './app/file-checks.ts';
import { createLogger } from './observability/logger.ts';
import { buildPolicyBundle, opaBinary, PolicyCompileError } from './policy/compile.ts';
import { verifyAuditFiles } from './observability/audit.ts';
import { readTlsFiles } from './proxy/tls.ts';
import { distinguishedName } from './credentials/client-certificate.ts';
import { readSigningKey } from './credentials/txn-mint.ts';

const USAGE = `usage:
  agentward serve  [--config FILE]        run the proxy
  agentward check  [--config FILE]        validate config and policy, print every problem
  agentward explain [--config FILE] --request FILE [--jwks URL=FILE ...] [--offline]
                                          print the policy input, decision and answer for a
                                          described request; forwards nothing (exit 0 forward, 1 refuse)
  agentward policy build [DIR] [--output FILE] [--entrypoint agentward/decision] [--opa BIN]
                                          compile Rego to an OPA WebAssembly bundle
  agentward audit verify FILE [FILE ...] [--key-env VAR] [--checkpoints FILE]
                                          verify the hash chain of an audit file (or of a file
                                          and those rotated from it, oldest first)
--config defaults to $AGENTWARD_CONFIG, then ./agentward.yaml`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'check':
      return check(rest);
    case 'explain':
      return explain(rest);
    case 'policy':
      if (rest[0] === 'build') return policyBuild(rest.slice(1));
      break;
    case 'audit':
      if (rest[0] === 'verify') return auditVerify(rest.slice(1));
      break;
    case '--help':
    case '-h':
    case 'help':
      console.log(USAGE);
      return 0;
  }
  console.error(USAGE);
  return 2;
}

function configArg(args: string[]): string {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } }, strict: true });
  return values.config ?? defaultConfigPath();
}

/** Loads the config and checks the files it names (TLS, bundle signer key); prints every problem. */
function loadOrReport(file: string): LoadedConfig | undefined {
  try {
    const loaded = loadConfig(file);
    const problems = checkFiles(loaded);
    if (problems.length > 0) throw new ConfigError(loaded.file, problems);
    return loaded;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return undefined;
    }
    throw err;
  }
}

async function serve(args: string[]): Promise<number> {
  const loaded = loadOrReport(configArg(args));
  if (!loaded) return 1;
  const app = createApp(loaded);
  await app.start();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'shutting down');
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        app.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return new Promise(() => undefined); // runs until a signal
}

/**
 * `explain`: the request file (JSON or YAML: method, url, headers, body) goes through the real
 * pipeline up to the decision. Key sets and metadata are fetched as configured; `--jwks URL=FILE`
 * answers a fetch of URL with FILE instead, and `--offline` refuses every other fetch, so a
 * request can be explained with keys from files and no network.
 */
async function explain(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, request: { type: 'string', short: 'r' }, jwks: { type: 'string', multiple: true }, offline: { type: 'boolean', default: false } },
    strict: true,
  });
  if (!values.request) {
    console.error(`explain needs --request FILE\n${USAGE}`);
    return 2;
  }
  const loaded = loadOrReport(values.config ?? defaultConfigPath());
  if (!loaded) return 1;
  let described: DescribedRequest;
  try {
    described = describedRequest(parseYaml(readFileSync(values.request, 'utf8')));
  } catch (err) {
    console.error(`${values.request}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const dispatcher = values.offline || values.jwks ? new MockAgent() : undefined;
  if (dispatcher) {
    if (values.offline) dispatcher.disableNetConnect();
    else dispatcher.enableNetConnect();
    for (const pair of values.jwks ?? []) {
      const at = pair.indexOf('=');
      if (at < 1) {
        console.error(`--jwks takes URL=FILE, got ${pair}`);
        return 2;
      }
      const url = new URL(pair.slice(0, at));
      const body = readFileSync(pair.slice(at + 1), 'utf8');
      dispatcher.get(url.origin).intercept({ path: `${url.pathname}${url.search}`, method: 'GET' }).reply(200, body, { headers: { 'content-type': 'application/json' } }).persist();
    }
  }
  const app = createApp(loaded, { logger: createLogger('error'), noAudit: true, ...(dispatcher ? { dispatcher } : {}) });
  await app.prepare();
  const result = await app.explain(described);
  console.log(JSON.stringify(result, null, 2));
  await app.stop();
  return result.answer.action === 'forward' ? 0 : 1;
}

async function check(args: string[]): Promise<number> {
  const file = configArg(args);
  const loaded = loadOrReport(file);
  if (!loaded) return 1;
  const { config } = loaded;
  // The TLS files passed checkFiles (in loadOrReport); read again for the summary line.
  const tls = config.listen.tls;
  let tlsSummary: string | undefined;
  if (tls) {
    const files = readTlsFiles({
      certFile: resolve(loaded.baseDir, tls.certFile),
      keyFile: resolve(loaded.baseDir, tls.keyFile),
      clientCaFile: tls.clientCaFile === undefined ? undefined : resolve(loaded.baseDir, tls.clientCaFile),
    });
    tlsSummary = `${distinguishedName(files.certificate.subject)} until ${files.certificate.validToDate.toISOString()}, client certificates ${tls.clientCert}${tls.clientCaFile ? ` (${files.clientCas} CA certificate${files.clientCas === 1 ? '' : 's'})` : ''}`;
  }
  // The Txn-Token signing key passed checkFiles too: its kid for the summary line.
  const mint = config.forward.txnToken;
  const mintSummary =
    mint && mint.mode !== 'off'
      ? `${mint.mode} ${mint.algorithm} kid ${readSigningKey(resolve(loaded.baseDir, mint.keyFile), mint.algorithm).kid}, aud ${mint.audience}, lifetime ${mint.lifetime}`
      : undefined;
  // Load the policy the way serve would (compiling a Rego folder), without serving.
  const policy = createPolicyEngine(loaded, { logger: createLogger('silent'), dispatcher: undefined });
  try {
    await policy.load();
  } catch (err) {
    console.error(`${file}: 1 problem\n  ${file}  policy.source: the policy does not load: ${err instanceof Error ? err.message : String(err)}\n      fix: run \`agentward policy build\` on the folder to see the compiler's messages`);
    return 1;
  }
  const s = policy.status();
  console.log(
    [
      `${file}: OK`,
      `  listen     ${config.listen.address} (admin ${config.admin.address})`,
      ...(tlsSummary ? [`  tls        ${tlsSummary}`] : []),
      `  upstream   ${config.upstream.url}`,
      `  resource   ${config.resource.id}`,
      `  issuers    ${config.oauth.issuers.map((i) => i.issuer).join(', ') || '(none)'}`,
      `  policy     ${s.source} revision ${s.revision} entrypoint ${config.policy.entrypoint} (${config.policy.mode})`,
      `  audit      ${config.audit.sink}${config.audit.hashChain ? ', hash-chained' : ''}`,
      ...(mintSummary ? [`  txnToken   ${mintSummary}`] : []),
      ...relaxations(config).map((w) => `  warning    ${w}`),
    ].join('\n'),
  );
  return 0;
}

async function policyBuild(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { output: { type: 'string', short: 'o' }, entrypoint: { type: 'string', short: 'e' }, opa: { type: 'string' } },
  });
  const dir = resolve(positionals[0] ?? 'policies');
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    console.error(`${dir} is not a folder of Rego files`);
    return 1;
  }
  const output = resolve(values.output ?? 'bundle.tar.gz');
  try {
    const { bundle, planned } = await buildPolicyBundle(dir, { opa: opaBinary(values.opa), entrypoint: values.entrypoint ?? 'agentward/decision' });
    mkdirSync(dirname(output), { recursive: true });
    writeFileSync(output, bundle);
    if (!planned) console.error(`the policy could not be planned (opa build -t plan): the bundle carries no plan, so its decisions will not be memoized`);
  } catch (err) {
    console.error(err instanceof PolicyCompileError ? err.message : String(err));
    return 1;
  }
  console.log(`wrote ${output}`);
  return 0;
}

function auditVerify(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'key-env': { type: 'string' }, checkpoints: { type: 'string' } } });
  if (positionals.length === 0) {
    console.error('usage: agentward audit verify FILE [FILE ...] [--key-env VAR] [--checkpoints FILE]');
    return 2;
  }
  const keyEnv = values['key-env'];
  const key = keyEnv === undefined ? undefined : process.env[keyEnv];
  if (keyEnv !== undefined && !key) {
    console.error(`environment variable ${keyEnv} is not set`);
    return 2;
  }
  const checkpoints = values.checkpoints === undefined ? undefined : readFileSync(values.checkpoints, 'utf8').split('\n');
  const report = verifyAuditFiles(positionals, key, checkpoints);
  if (report.failure) {
    console.error(`${report.failure.file}:${report.failure.line}: ${report.failure.reason}`);
    return 1;
  }
  const what = positionals.length === 1 ? positionals[0] : `${positionals.length} files`;
  const extras = [report.continues ? `continuing ${report.continues}` : '', checkpoints ? `${report.checkpoints} checkpoint(s) found` : ''].filter(Boolean);
  console.log(`${what}: ${report.records} records verified in ${report.segments} chain segment(s)${extras.length ? ` (${extras.join('; ')})` : ''}`);
  return 0;
}

/** Wrong options: the usage, exit 2, no stack trace. */
function isUsageError(err: unknown): boolean {
  return (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_') ?? false;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (isUsageError(err)) {
      console.error(`${(err as Error).message}\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    console.error(err);
    process.exitCode = 1;
  },
);
