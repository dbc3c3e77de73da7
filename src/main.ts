/**
 * Command line (docs/operations.md "Command line"):
 *   agentward serve  [--config FILE]
 *   agentward check  [--config FILE]
 *   agentward explain [--config FILE] --request FILE [--jwks URL=FILE ...] [--offline]
 *   agentward policy build [DIR] [--output FILE] [--entrypoint E] [--opa BIN]
 *   agentward audit verify FILE [FILE ...] [--key-env VAR] [--checkpoints FILE]
 *   agentward COMMAND --help (or -h; also `agentward help COMMAND`): that command's usage, exit 0
 *   agentward revoke [--config FILE | --admin URL --token-env VAR] --subject SUB [--iss ISS] | --sid SID | --client ID | --jti JTI | --email EMAIL
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
import { createLogger, createWorkerLogger } from './observability/logger.ts';
import { reportToPrimary, runPrimary, workerCount, workerNumber } from './app/workers.ts';
import { buildPolicyBundle, opaBinary, PolicyCompileError } from './policy/compile.ts';
import { verifyAuditFiles } from './observability/audit.ts';
import { readTlsFiles } from './proxy/tls.ts';
import { distinguishedName } from './credentials/client-certificate.ts';
import { readSigningKey } from './credentials/txn-mint.ts';

/** Each command's own usage, printed by `agentward COMMAND --help` (exit 0, stdout). */
const COMMAND_USAGE = {
  serve: `usage: agentward serve [--config FILE]

Run the proxy until SIGTERM or SIGINT. With \`workers\` above 1, a primary process forks the
workers and serves the admin listener; SIGHUP then replaces the workers one at a time with the
configuration file read again (docs/operations.md "Workers").

options:
  -c, --config FILE   the configuration file (default: $AGENTWARD_CONFIG, then ./agentward.yaml)
  -h, --help          print this text`,
  check: `usage: agentward check [--config FILE]

Validate the configuration, the files it names and the policy; print every problem (exit 1), or a
summary with the relaxed settings as warnings (exit 0). Contacts no issuer.

options:
  -c, --config FILE   the configuration file (default: $AGENTWARD_CONFIG, then ./agentward.yaml)
  -h, --help          print this text`,
  explain: `usage: agentward explain [--config FILE] --request FILE [--jwks URL=FILE ...] [--offline]

Print the policy input, the decision and the answer for a described request (JSON or YAML:
method, url, headers, body). Forwards nothing. Exit 0 when it would be forwarded, 1 when refused.

options:
  -c, --config FILE   the configuration file (default: $AGENTWARD_CONFIG, then ./agentward.yaml)
  -r, --request FILE  the described request (required)
      --jwks URL=FILE answer a fetch of URL with the contents of FILE (repeatable)
      --offline       refuse every other outbound fetch
  -h, --help          print this text`,
  'policy build': `usage: agentward policy build [DIR] [--output FILE] [--entrypoint E] [--opa BIN]

Compile a folder of Rego (default: ./policies) to an OPA WebAssembly bundle.

options:
  -o, --output FILE      the bundle to write (default: bundle.tar.gz)
  -e, --entrypoint E     the decision rule (default: agentward/decision)
      --opa BIN          the opa binary (default: $AGENTWARD_OPA, then opa on PATH)
  -h, --help             print this text`,
  'audit verify': `usage: agentward audit verify FILE [FILE ...] [--key-env VAR] [--checkpoints FILE]

Verify the hash chain of an audit file, or of a file and those rotated from it (oldest first, the
current file last); exit 1 at the first broken line. Files are read a chunk at a time.

options:
      --key-env VAR        the environment variable holding audit.hashKey (keyed chains)
      --checkpoints FILE   the checkpoint file, or a log file with "audit checkpoint" lines: every
                           checkpoint not older than the first record must be in the chain
  -h, --help               print this text`,
  revoke: `usage: agentward revoke [--config FILE | --admin URL [--token-env VAR]]
                        (--subject SUB [--iss ISS] | --sid SID | --client ID | --jti JTI | --email EMAIL) [--before EPOCH]

Refuse the access tokens issued before now (or EPOCH) that name this subject, session, client,
token id or email: purge what agentward caches of them and close their open streams, through the
admin endpoint admin.revoke.path (docs/signals.md). Exit 0 when it answered 200.

options:
  -c, --config FILE      find the admin address, path and token in this configuration
      --admin URL        the revoke endpoint, instead of --config
      --token-env VAR    with --admin: the environment variable holding the admin bearer token
      --subject SUB      the token's subject (sub); with --iss, only from that issuer
      --iss ISS          the issuer of --subject
      --sid SID          the session id (sid claim)
      --client ID        the OAuth client (client_id)
      --jti JTI          one token's id
      --email EMAIL      the email claim
      --before EPOCH     tokens issued at or before this time (seconds), instead of now
  -h, --help             print this text`,
} as const;

type Command = keyof typeof COMMAND_USAGE;

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
  agentward COMMAND --help                that command's usage and options
  agentward revoke [--config FILE | --admin URL [--token-env VAR]]
                   (--subject SUB [--iss ISS] | --sid SID | --client ID | --jti JTI | --email EMAIL) [--before EPOCH]
                                          refuse the tokens issued before now (or EPOCH) that name
                                          this subject, session, client, token id or email; purge
                                          caches, close their streams (POST admin.revoke.path)
--config defaults to $AGENTWARD_CONFIG, then ./agentward.yaml`;

/** `-h` / `--help`, accepted by every command; the other options are the command's own. */
const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** Prints a command's usage to stdout: the answer to `--help`, exit 0. */
function help(command: Command): number {
  console.log(COMMAND_USAGE[command]);
  return 0;
}

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
      if (rest.length === 1 && isHelp(rest[0])) return help('policy build');
      break;
    case 'audit':
      if (rest[0] === 'verify') return auditVerify(rest.slice(1));
      if (rest.length === 1 && isHelp(rest[0])) return help('audit verify');
      break;
    case 'revoke':
      return revoke(rest);
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    case 'help': {
      // `agentward help explain` is `agentward explain --help`.
      const topic = rest.join(' ');
      if (topic === '') {
        console.log(USAGE);
        return 0;
      }
      if (topic in COMMAND_USAGE) return help(topic as Command);
      break;
    }
  }
  console.error(USAGE);
  return 2;
}

function isHelp(arg: string | undefined): boolean {
  return arg === '--help' || arg === '-h';
}

/** The `--config` of `serve` and `check`; undefined when `--help` was asked for. */
function configArg(args: string[]): string | undefined {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, ...HELP }, strict: true });
  if (values.help) return undefined;
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
  const file = configArg(args);
  if (file === undefined) return help('serve');
  const loaded = loadOrReport(file);
  if (!loaded) return 1;
  // workers above 1: this process is the primary, or one of the workers it forked
  // (src/app/workers.ts); a worker stays one even if the file changed under it since.
  const worker = workerNumber();
  const count = workerCount(loaded.config.workers);
  if (worker === undefined && count > 1) return runPrimary(loaded, count, createLogger(loaded.config.log.level));
  const app = createApp(loaded, worker === undefined ? {} : { worker, logger: createWorkerLogger(loaded.config.log.level, worker) });
  const { address } = await app.start();
  if (worker !== undefined) reportToPrimary(app, address);
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
    options: { config: { type: 'string', short: 'c' }, request: { type: 'string', short: 'r' }, jwks: { type: 'string', multiple: true }, offline: { type: 'boolean', default: false }, ...HELP },
    strict: true,
  });
  if (values.help) return help('explain');
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
  const app = createApp(loaded, { logger: createLogger('error'), noAudit: true, localState: true, ...(dispatcher ? { dispatcher } : {}) });
  await app.prepare();
  const result = await app.explain(described);
  console.log(JSON.stringify(result, null, 2));
  await app.stop();
  return result.answer.action === 'forward' ? 0 : 1;
}

async function check(args: string[]): Promise<number> {
  const file = configArg(args);
  if (file === undefined) return help('check');
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
      ...(config.workers === 1 ? [] : [`  workers    ${config.workers === 'auto' ? `auto (${workerCount('auto')} here)` : config.workers}, each with its own audit file (docs/operations.md "Workers")`]),
      ...(mintSummary ? [`  txnToken   ${mintSummary}`] : []),
      // Checking touches no network: the Redis server is named, not reached.
      ...(config.state.backend === 'redis' ? [`  state      redis ${config.state.redis!.url} (prefix ${config.state.redis!.keyPrefix})`] : []),
      ...relaxations(config).map((w) => `  warning    ${w}`),
    ].join('\n'),
  );
  return 0;
}

async function policyBuild(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { output: { type: 'string', short: 'o' }, entrypoint: { type: 'string', short: 'e' }, opa: { type: 'string' }, ...HELP },
  });
  if (values.help) return help('policy build');
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
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'key-env': { type: 'string' }, checkpoints: { type: 'string' }, ...HELP } });
  if (values.help) return help('audit verify');
  if (positionals.length === 0) {
    console.error(COMMAND_USAGE['audit verify']);
    return 2;
  }
  const keyEnv = values['key-env'];
  const key = keyEnv === undefined ? undefined : process.env[keyEnv];
  if (keyEnv !== undefined && !key) {
    console.error(`environment variable ${keyEnv} is not set`);
    return 2;
  }
  let checkpoints: string[] | undefined;
  let report: ReturnType<typeof verifyAuditFiles>;
  try {
    checkpoints = values.checkpoints === undefined ? undefined : readFileSync(values.checkpoints, 'utf8').split('\n');
    report = verifyAuditFiles(positionals, key, checkpoints);
  } catch (err) {
    // A file that cannot be read is not a broken chain: nothing was verified (exit 2, as for usage).
    const e = err as NodeJS.ErrnoException;
    if (typeof e.path !== 'string') throw err;
    console.error(`${e.path}: cannot be read (${e.code ?? e.message})`);
    return 2;
  }
  if (report.failure) {
    console.error(`${report.failure.file}:${report.failure.line}: ${report.failure.reason}`);
    return 1;
  }
  const what = positionals.length === 1 ? positionals[0] : `${positionals.length} files`;
  const extras = [report.continues ? `continuing ${report.continues}` : '', checkpoints ? `${report.checkpoints} checkpoint(s) found` : ''].filter(Boolean);
  console.log(`${what}: ${report.records} records verified in ${report.segments} chain segment(s)${extras.length ? ` (${extras.join('; ')})` : ''}`);
  return 0;
}

/**
 * `agentward revoke`: POSTs the selector to the admin revocation endpoint (docs/signals.md). The
 * endpoint and its token come from --admin and --token-env, or from the config file
 * (`admin.address`, `admin.revoke`).
 */
async function revoke(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      admin: { type: 'string' },
      'token-env': { type: 'string' },
      subject: { type: 'string' },
      iss: { type: 'string' },
      sid: { type: 'string' },
      client: { type: 'string' },
      jti: { type: 'string' },
      email: { type: 'string' },
      before: { type: 'string' },
      ...HELP,
    },
    strict: true,
  });
  if (values.help) return help('revoke');
  const body: Record<string, string | number> = {};
  for (const [option, member] of [['subject', 'sub'], ['iss', 'iss'], ['sid', 'sid'], ['client', 'clientId'], ['jti', 'jti'], ['email', 'email']] as const) {
    const value = values[option];
    if (value !== undefined) body[member] = value;
  }
  if (values.before !== undefined) body.before = Number(values.before);
  if (Object.keys(body).filter((k) => k !== 'iss' && k !== 'before').length === 0) {
    console.error('agentward revoke: name what to revoke: --subject (with --iss), --sid, --client, --jti or --email');
    return 2;
  }
  let url: string;
  let token: string | undefined;
  if (values.admin !== undefined) {
    url = values.admin;
    const env = values['token-env'] ?? 'AGENTWARD_ADMIN_TOKEN';
    token = process.env[env];
    if (!token) {
      console.error(`agentward revoke: environment variable ${env} (the admin token) is not set`);
      return 2;
    }
  } else {
    const loaded = loadOrReport(values.config ?? defaultConfigPath());
    if (!loaded) return 1;
    const revokeConfig = loaded.config.admin.revoke;
    if (!revokeConfig) {
      console.error(`agentward revoke: ${loaded.file} has no admin.revoke section`);
      return 1;
    }
    const address = loaded.config.admin.address.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
    url = `http://${address}${revokeConfig.path}`;
    token = loaded.secrets.get('admin.revoke.token');
  }
  const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  if (response.status !== 200) {
    console.error(`agentward revoke: ${url} answered ${response.status}: ${text}`);
    return 1;
  }
  console.log(text);
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
