/**
 * Loads a configuration file in one pass: YAML syntax, the schema (types, unknown keys, defaults)
 * and the checks a schema cannot express (URLs, file paths, input fields), every problem reported
 * together with its YAML path, line and a fix (conventions §7). Checking touches no network.
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isIP } from 'node:net';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document } from 'yaml';
import { ConfigSchema, type Config, type IssuerConfig, type Secret, DURATION_PATTERN, POSITIVE_DURATION_PATTERN } from './schema.ts';
import { ISSUER_PROFILES, RFC9068_REQUIRED_CLAIMS, effectiveProfile, guardsAccessTokens, relaxesTyp } from '../identity/issuer-profiles.ts';
import { durationMs } from '../duration.ts';
import { CREDENTIAL_HEADERS } from '../identity/credential-headers.ts';
import { IDENTITY_HEADER_SOURCES } from '../policy/input.ts';
import { parseWorkloadId } from '../identity/workload-id.ts';
import { isUrlSource } from '../policy/bundle-source.ts';

export interface ConfigProblem {
  /** YAML path such as `oauth.issuers[0].audiences`; empty for the whole file. */
  path: string;
  line?: number;
  message: string;
  fix: string;
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID';
  readonly file: string;
  readonly problems: readonly ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    super(formatProblems(file, problems));
    this.name = 'ConfigError';
    this.file = file;
    this.problems = problems;
  }
}

export function formatProblems(file: string, problems: readonly ConfigProblem[]): string {
  const head = `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`;
  const lines = problems.map((p) => `  ${file}${p.line ? `:${p.line}` : ''}  ${p.path || '(file)'}: ${p.message}\n      fix: ${p.fix}`);
  return [head, ...lines].join('\n');
}

/** A loaded configuration: frozen, with defaults applied and secrets resolved. */
export interface LoadedConfig {
  readonly file: string;
  /** Folder of the file; relative paths in the config are resolved against it. */
  readonly baseDir: string;
  readonly config: Readonly<Config>;
  /** Secrets by their YAML path, resolved at load time. */
  readonly secrets: ReadonlyMap<string, string>;
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: false, allowUnionTypes: true });
const validateSchema = ajv.compile<Config>(ConfigSchema);

/** Default path when no --config is given: $AGENTWARD_CONFIG, then ./agentward.yaml. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.AGENTWARD_CONFIG || 'agentward.yaml';
}

/** Reads, validates and freezes a config file. Throws ConfigError listing every problem. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : `the file cannot be read (${(err as Error).message})`;
    throw new ConfigError(file, [{ path: '', message: reason, fix: 'pass an existing file with --config or $AGENTWARD_CONFIG' }]);
  }
  return parseConfig(text, file, env);
}

/** Validates config text; `file` names it in messages and anchors relative paths. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ path: '', line: lineOf(e.pos[0]), message: `YAML syntax: ${e.message.split('\n')[0]}`, fix: 'correct the YAML syntax at that line' })),
    );
  }
  // yaml reports an alias without its anchor, or too many aliases (its guard against a billion
  // laughs), only when converting: a ReferenceError, wrapped here so every bad file is a ConfigError.
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `YAML: ${(err as Error).message.split('\n')[0]}`, fix: 'define each anchor (&name) before its alias (*name), and use few aliases' }]);
  }
  const problems: ConfigProblem[] = [];
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError(file, [{ path: '', line: 1, message: 'the file is not a YAML mapping', fix: 'start from config/agentward.example.yaml' }]);
  }

  if (!validateSchema(data)) {
    const errors = validateSchema.errors ?? [];
    // `workers` is a number or "auto": one problem, not one per branch of its anyOf.
    if (errors.some((e) => e.instancePath === '/workers')) {
      problems.push({ path: 'workers', line: lineOf(nodeAt(doc, ['workers'])?.range?.[0]), message: `${JSON.stringify(getIn(doc, ['workers']))} is not a number of workers`, fix: 'write a whole number from 1 to 256, or auto (one per CPU)' });
    }
    for (const e of dedupe(errors.filter((e) => e.instancePath !== '/workers'))) problems.push(schemaProblem(e, doc, lineOf));
  }
  const config = data as Config;
  const baseDir = dirname(resolve(file));
  const secrets = new Map<string, string>();
  semanticChecks(data, baseDir, env, secrets, (path, message, fix) => {
    problems.push({ path: formatPath(path), line: lineOf(nearestNode(doc, path)?.range?.[0]), message, fix });
  });
  if (problems.length > 0) {
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(file, problems);
  }
  return Object.freeze({ file, baseDir, config: deepFreeze(config), secrets });
}

type Path = (string | number)[];

function formatPath(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function pointerToPath(pointer: string): Path {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function nodeAt(doc: Document, path: Path): { range?: [number, number, number] | null } | undefined {
  return doc.getIn(path, true) as { range?: [number, number, number] | null } | undefined;
}

/** The node at `path`, or at its nearest ancestor when the key is absent (so a missing key still has a line). */
function nearestNode(doc: Document, path: Path): { range?: [number, number, number] | null } | undefined {
  for (let n = path.length; n > 0; n--) {
    const node = nodeAt(doc, path.slice(0, n));
    if (node?.range) return node;
  }
  return undefined;
}

/** The key node of `key` in the mapping at `path`, so an unknown key's line is its own. */
function keyNodeAt(doc: Document, path: Path, key: string) {
  const map = path.length === 0 ? doc.contents : doc.getIn(path, true);
  if (!isMap(map)) return undefined;
  for (const item of map.items) {
    if (isPair(item) && isScalar(item.key) && item.key.value === key) return item.key;
  }
  return undefined;
}

/** ajv reports a failing `anyOf` and each failing branch; the branches are enough. */
function dedupe(errors: ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (e.keyword === 'anyOf' || e.keyword === 'if') return false;
    const key = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function schemaAt(path: Path): Record<string, unknown> | undefined {
  let node: Record<string, unknown> | undefined = ConfigSchema as unknown as Record<string, unknown>;
  for (const segment of path) {
    if (!node) return undefined;
    if (typeof segment === 'number') node = node.items as Record<string, unknown> | undefined;
    else node = (node.properties as Record<string, Record<string, unknown>> | undefined)?.[segment];
  }
  return node;
}

function schemaProblem(e: ErrorObject, doc: Document, lineOf: (o: number | undefined) => number | undefined): ConfigProblem {
  const path = pointerToPath(e.instancePath);
  const at = (p: Path, keyOffset?: number) => ({ path: formatPath(p), line: lineOf(keyOffset ?? nodeAt(doc, p)?.range?.[0]) });
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const known = Object.keys((schemaAt(path)?.properties as object | undefined) ?? {});
      const guess = closest(key, known);
      return {
        ...at([...path, key], keyNodeAt(doc, path, key)?.range?.[0]),
        message: `unknown key "${key}"`,
        fix: guess ? `did you mean "${guess}"? Known keys here: ${known.join(', ')}` : known.length ? `remove it; known keys here: ${known.join(', ')}` : 'remove it',
      };
    }
    case 'required': {
      const key = String(p.missingProperty);
      const description = (schemaAt([...path, key])?.description as string | undefined) ?? '';
      return { ...at(path), path: formatPath([...path, key]), message: 'is required', fix: `add "${key}"${description ? `: ${description}` : ''}` };
    }
    case 'type':
      return { ...at(path), message: `must be ${article(String(p.type))}`, fix: `write ${article(String(p.type))} here` };
    case 'enum':
      return { ...at(path), message: `"${String(getIn(doc, path))}" is not an allowed value`, fix: `use one of: ${(p.allowedValues as unknown[]).join(', ')}` };
    case 'pattern': {
      const pattern = String(p.pattern);
      if (pattern === DURATION_PATTERN) return { ...at(path), message: 'is not a duration', fix: 'write a number with a unit: "250ms", "30s", "5m" or "1h"' };
      if (pattern === POSITIVE_DURATION_PATTERN) return { ...at(path), message: 'is not a duration above zero', fix: 'write a number above zero with a unit: "250ms", "30s", "5m" or "1h"' };
      if (pattern.includes(':[0-9]{1,5}')) return { ...at(path), message: 'is not a host:port address', fix: 'write it as "127.0.0.1:8080" or "[::1]:8080"' };
      return { ...at(path), message: `does not match ${pattern}`, fix: 'use only the characters allowed there (header names are RFC 9110 tokens)' };
    }
    case 'minProperties':
    case 'maxProperties':
      return { ...at(path), message: 'must name exactly one source', fix: 'use exactly one of value, fromEnv or fromFile' };
    case 'minItems':
      return { ...at(path), message: `needs at least ${String(p.limit)} item(s)`, fix: 'add an entry or remove the key to take the default' };
    case 'uniqueItems':
      return { ...at(path), message: 'has duplicate items', fix: `remove the duplicate at positions ${String(p.i)} and ${String(p.j)}` };
    case 'minimum':
    case 'maximum':
      return { ...at(path), message: `must be ${e.keyword === 'minimum' ? 'at least' : 'at most'} ${String(p.limit)}`, fix: `use a number ${e.keyword === 'minimum' ? '>=' : '<='} ${String(p.limit)}` };
    case 'minLength':
      return { ...at(path), message: 'must not be empty', fix: 'write a value or remove the key' };
    default:
      return { ...at(path), message: e.message ?? 'is invalid', fix: 'see config/agentward.schema.json' };
  }
}

function getIn(doc: Document, path: Path): unknown {
  return doc.getIn(path);
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

type Report = (path: Path, message: string, fix: string) => void;

/**
 * Checks the schema cannot express. They run on the document even when the schema found
 * problems (so every problem is reported in one pass), and each check looks only at values of
 * the type it needs: a value of the wrong type already has its schema problem.
 */
function semanticChecks(doc: unknown, baseDir: string, env: NodeJS.ProcessEnv, secrets: Map<string, string>, report: Report): void {
  const upstreamUrl = str(doc, 'upstream', 'url');
  if (upstreamUrl !== undefined) checkHttpUrl(upstreamUrl, ['upstream', 'url'], report, { allowPath: false });
  const resourceId = str(doc, 'resource', 'id');
  if (resourceId !== undefined) checkResourceId(resourceId, report);
  list(doc, 'resource', 'authorizationServers').forEach((u, i) => {
    if (typeof u === 'string') checkHttpUrl(u, ['resource', 'authorizationServers', i], report, { allowPath: true });
  });

  const issuers = new Set<string>();
  list(doc, 'oauth', 'issuers').forEach((issuer, i) => {
    const path: Path = ['oauth', 'issuers', i];
    const id = str(issuer, 'issuer');
    if (id !== undefined) {
      if (issuers.has(id)) report([...path, 'issuer'], `issuer "${id}" is listed twice`, 'merge the two entries');
      issuers.add(id);
      checkHttpUrl(id, [...path, 'issuer'], report, { allowPath: true });
    }
    const jwksUri = str(issuer, 'jwksUri');
    if (jwksUri !== undefined) checkHttpUrl(jwksUri, [...path, 'jwksUri'], report, { allowPath: true });
    checkIntrospection(obj(issuer, 'introspection'), [...path, 'introspection'], baseDir, env, secrets, report);
    checkIssuerProfile(issuer as IssuerConfig, path, report);
  });
  const introspecting = list(doc, 'oauth', 'issuers').filter((i) => get(i, 'introspection') !== undefined);
  if (introspecting.length > 1) {
    report(['oauth', 'issuers'], `${introspecting.length} issuers have introspection`, 'keep it on one issuer: an opaque token names no issuer, and it is never sent to more than one');
  }

  const txnJwksUri = str(doc, 'txnTokens', 'jwksUri');
  if (txnJwksUri !== undefined) checkHttpUrl(txnJwksUri, ['txnTokens', 'jwksUri'], report, { allowPath: true });

  checkPolicy(obj(doc, 'policy'), baseDir, report);
  checkListenTls(obj(doc, 'listen', 'tls'), get(doc, 'workload') !== undefined, baseDir, report);
  checkTrustedProxies(doc, baseDir, report);
  checkWorkload(obj(doc, 'workload'), baseDir, report);
  checkRpcPaths(doc, report);

  checkTxnMint(doc, report);

  const seen = new Set<string>();
  for (const [name, field] of Object.entries(obj(doc, 'forward', 'identityHeaders'))) {
    const path: Path = ['forward', 'identityHeaders', name];
    const lower = name.toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) report(path, `"${name}" is not a valid header name`, 'use letters, digits and "-" only (an RFC 9110 token), such as X-Agent-Id');
    if (seen.has(lower)) report(path, `header "${name}" is listed twice (header names are case-insensitive)`, 'keep one entry');
    seen.add(lower);
    if (CREDENTIAL_HEADERS.includes(lower) || lower === 'host' || lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection') {
      report(path, `"${name}" cannot be an identity header`, 'choose a header name of your own, such as X-Agent-Id');
    }
    if (typeof field === 'string' && !IDENTITY_HEADER_SOURCES.includes(field)) {
      report(path, `"${field}" is not a policy input field that can be forwarded`, `use one of: ${IDENTITY_HEADER_SOURCES.join(', ')}`);
    }
  }

  if (str(doc, 'audit', 'sink') === 'file' && str(doc, 'audit', 'file') === undefined) {
    report(['audit', 'file'], 'is required when audit.sink is "file"', 'add audit.file: /var/log/agentward/audit.jsonl');
  }
  const audit = obj(doc, 'audit');
  if (audit.rotate !== undefined && str(doc, 'audit', 'sink') !== 'file') {
    report(['audit', 'rotate'], 'needs audit.sink "file"', 'remove audit.rotate, or write the audit to a file (audit.sink: file)');
  }
  if (audit.rotate !== undefined && Object.keys(obj(doc, 'audit', 'rotate')).length === 0) {
    report(['audit', 'rotate'], 'names no limit', 'add audit.rotate.maxBytes (e.g. 104857600) or audit.rotate.interval (e.g. "24h")');
  }
  if (audit.checkpoints !== undefined && audit.hashChain === false) {
    report(['audit', 'checkpoints'], 'needs audit.hashChain (a checkpoint names the chain head)', 'remove audit.checkpoints, or set audit.hashChain: true');
  }
  checkSignals(doc, baseDir, env, secrets, report);
  checkWorkers(doc, report);
  checkState(doc, baseDir, env, secrets, report);

  const hashKey = obj(doc, 'audit', 'hashKey');
  if (Object.keys(hashKey).length === 1) {
    const value = resolveSecret(hashKey as Secret, ['audit', 'hashKey'], baseDir, env, report);
    if (value !== undefined) secrets.set('audit.hashKey', value);
  }
  checkTracing(obj(doc, 'tracing'), baseDir, env, secrets, report);
}

/** The OTLP endpoint is an http(s) URL with a path; each export header is a secret, resolved here (`tracing.otlp.headers.<name>`). */
function checkTracing(tracing: Record<string, unknown>, baseDir: string, env: NodeJS.ProcessEnv, secrets: Map<string, string>, report: Report): void {
  const endpoint = str(tracing, 'otlp', 'endpoint');
  if (endpoint !== undefined) checkHttpUrl(endpoint, ['tracing', 'otlp', 'endpoint'], report, { allowPath: true });
  for (const [name, secret] of Object.entries(obj(tracing, 'otlp', 'headers'))) {
    const path = ['tracing', 'otlp', 'headers', name];
    if (secret === null || typeof secret !== 'object' || Object.keys(secret).length !== 1) continue;
    const value = resolveSecret(secret as Secret, path, baseDir, env, report);
    if (value !== undefined) secrets.set(formatPath(path), value);
  }
}

/**
 * `workers` above 1 (docs/operations.md "Workers"). Each worker is a process of its own, with its
 * own memory; what must be seen by every worker to stay safe cannot be kept per process:
 *
 * - the proof ids remembered against replay (DPoP `jti`, RFC 9449 §11.1; WPT `jti`, wpt-02
 *   §3.1.4; HTTP-signature nonces) and DPoP server nonces (RFC 9449 §9): a proof replayed to
 *   another worker would find an empty cache there;
 * - the revocation marks set by security events and by hand, and the SET `jti`s of SSF delivery
 *   (RFC 8935 §2, RFC 8936 §2.4): a mark set in one worker would leave the others accepting the
 *   token, and poll delivery acknowledges an event to the one worker that fetched it.
 *
 * These need `state.backend: redis`, the shared state of issue 16 item 1; read from the document
 * as it is, so that this check stands whether or not the schema knows the `state` section. `auto`
 * counts as more than one: the file must not be valid on a laptop and refused on a server.
 *
 * Audit and logs on a pipe: writes to a pipe are whole only up to PIPE_BUF (4096 bytes on Linux,
 * POSIX write(2)); a batch of audit records is longer, so records of two workers would be torn
 * into each other. Each worker therefore writes its own audit file.
 */
function checkWorkers(doc: unknown, report: Report): void {
  const workers = get(doc, 'workers');
  if (!(workers === 'auto' || (Number.isInteger(workers) && (workers as number) > 1))) return;
  const shared = str(doc, 'state', 'backend') === 'redis';
  const needs: string[] = [];
  if (str(doc, 'oauth', 'dpop', 'mode') !== 'disabled') needs.push(`DPoP (oauth.dpop.mode "${str(doc, 'oauth', 'dpop', 'mode') ?? 'allowed'}": proof ids and nonces)`);
  if (get(doc, 'workload') !== undefined) needs.push('workload proofs (workload: WPT ids and signature nonces)');
  if (get(doc, 'signals') !== undefined) needs.push('signals (revocation marks and SET ids)');
  if (needs.length > 0 && !shared) {
    report(
      ['workers'],
      `${String(workers)} workers would each keep their own replay and revocation memory, but ${needs.join(', ')} must be shared by every worker`,
      'set state.backend: redis (shared state, docs/operations.md "Workers"), or workers: 1' + (needs[0]!.startsWith('DPoP') ? ', or oauth.dpop.mode: disabled when no client uses DPoP' : ''),
    );
  }
  const sink = str(doc, 'audit', 'sink');
  if (sink === 'stdout' || sink === 'stderr') {
    report(['audit', 'sink'], `"${sink}" with ${String(workers)} workers: the workers' records would be torn into each other on one pipe`, 'use audit.sink: file (each worker writes its own file, audit.w1.jsonl, ...), or workers: 1');
  }
  // The admin listener is the primary's, which verifies nothing and holds no revocation list: an
  // endpoint there that must act on one (SSF push, revoke) would answer without effect.
  if (get(doc, 'admin', 'revoke') !== undefined) {
    report(['admin', 'revoke'], `is served by the admin listener, which with ${String(workers)} workers belongs to the primary (it holds no revocation list)`, 'revoke through a worker of each replica set is not offered yet: use workers: 1, or send the marks as security events pushed on the agent listener (signals.transmitters[].delivery.listener: main)');
  }
  list(doc, 'signals', 'transmitters').forEach((transmitter, i) => {
    const delivery = obj(transmitter, 'delivery');
    if (str(delivery, 'method') === 'push' && (str(delivery, 'listener') ?? 'admin') === 'admin') {
      report(['signals', 'transmitters', i, 'delivery', 'listener'], `push on the admin listener, which with ${String(workers)} workers belongs to the primary (it holds no revocation list)`, 'set delivery.listener: main (the workers serve it), or workers: 1');
    }
  });
}

/** `state` (docs/operations.md "Shared state"): the Redis section goes with the redis backend only, TLS with `rediss://`; the password is resolved. */
function checkState(doc: unknown, baseDir: string, env: NodeJS.ProcessEnv, secrets: Map<string, string>, report: Report): void {
  const backend = str(doc, 'state', 'backend') ?? 'memory';
  const redis = get(doc, 'state', 'redis');
  if (backend === 'redis' && redis === undefined) report(['state', 'redis'], 'is required with state.backend "redis"', 'add state.redis.url: redis://redis.internal:6379 (and password: { fromFile: /run/secrets/redis-password })');
  if (backend !== 'redis' && redis !== undefined) report(['state', 'redis'], 'is not used with state.backend "memory"', 'set state.backend: redis, or remove state.redis');
  if (redis === undefined) return;
  const url = str(redis, 'url');
  if (get(redis, 'tls') !== undefined && url !== undefined && !url.startsWith('rediss://')) report(['state', 'redis', 'tls'], 'needs a rediss:// url (TLS)', 'write the url as rediss://host:port, or remove state.redis.tls');
  const password = obj(redis, 'password');
  if (Object.keys(password).length === 1) {
    const value = resolveSecret(password as Secret, ['state', 'redis', 'password'], baseDir, env, report);
    if (value !== undefined) secrets.set('state.redis.password', value);
  }
}

/**
 * `signals` and `admin.revoke` (docs/signals.md): each transmitter's delivery has what its method
 * needs and nothing of the other's, push paths are unique per listener and clear of the admin
 * endpoints, and the secrets are resolved.
 */
function checkSignals(doc: unknown, baseDir: string, env: NodeJS.ProcessEnv, secrets: Map<string, string>, report: Report): void {
  const secret = (section: Record<string, unknown>, path: Path): void => {
    if (Object.keys(section).length !== 1) return;
    const value = resolveSecret(section as Secret, path, baseDir, env, report);
    if (value !== undefined) secrets.set(formatPath(path), value);
  };
  const adminPaths = new Map<string, string>([['/healthz', 'the health endpoint'], ['/readyz', 'the readiness endpoint'], ['/jwks.json', 'the key set of minted Txn-Tokens'], ['/metrics', 'the metrics endpoint']]);
  const revoke = get(doc, 'admin', 'revoke');
  if (revoke !== undefined) {
    if (get(doc, 'signals') === undefined) report(['admin', 'revoke'], 'needs a signals section (its marks are the ones security events set)', 'add signals: {} (defaults apply), or remove admin.revoke');
    const revokePath = str(revoke, 'path') ?? '/revoke';
    adminPaths.set(revokePath, 'admin.revoke.path');
    if (get(revoke, 'token') === undefined) report(['admin', 'revoke', 'token'], 'is required: the revocation endpoint is never open', 'add token: { fromEnv: AGENTWARD_ADMIN_TOKEN }');
    secret(obj(revoke, 'token'), ['admin', 'revoke', 'token']);
  }
  const mainPaths = new Map<string, string>();
  const issuers = new Set<string>();
  list(doc, 'signals', 'transmitters').forEach((transmitter, i) => {
    const path: Path = ['signals', 'transmitters', i];
    const id = str(transmitter, 'issuer');
    if (id !== undefined) {
      if (issuers.has(id)) report([...path, 'issuer'], `transmitter "${id}" is listed twice`, 'merge the two entries');
      issuers.add(id);
      checkHttpUrl(id, [...path, 'issuer'], report, { allowPath: true });
    }
    const jwksUri = str(transmitter, 'jwksUri');
    if (jwksUri !== undefined) checkHttpUrl(jwksUri, [...path, 'jwksUri'], report, { allowPath: true });
    secret(obj(transmitter, 'transmitterAuthorization'), [...path, 'transmitterAuthorization']);
    const delivery = obj(transmitter, 'delivery');
    const method = str(delivery, 'method');
    const at: Path = [...path, 'delivery'];
    if (method === 'push') {
      const pushPath = str(delivery, 'path');
      if (pushPath === undefined) report([...at, 'path'], 'is required with push delivery', 'add path: /ssf/events (the URL you give the transmitter)');
      if (get(delivery, 'authorization') === undefined) report([...at, 'authorization'], 'is required with push delivery (RFC 8935 §2: the receiver authenticates the transmitter)', 'add authorization: { fromEnv: SSF_PUSH_AUTHORIZATION } and give the same value to the transmitter as authorization_header');
      secret(obj(delivery, 'authorization'), [...at, 'authorization']);
      for (const unused of ['endpoint'] as const) if (get(delivery, unused) !== undefined) report([...at, unused], 'is only used with poll delivery', `remove it, or set method: poll`);
      const paths = str(delivery, 'listener') === 'main' ? mainPaths : adminPaths;
      if (pushPath !== undefined) {
        const taken = paths.get(pushPath);
        if (taken !== undefined) report([...at, 'path'], `"${pushPath}" is already ${taken}`, 'give each transmitter its own path');
        paths.set(pushPath, `the push path of signals.transmitters[${i}]`);
      }
    } else if (method === 'poll') {
      if (get(transmitter, 'transmitterAuthorization') === undefined) report([...path, 'transmitterAuthorization'], 'is required with poll delivery (RFC 8936 §2: the transmitter authenticates the receiver)', 'add transmitterAuthorization: { fromEnv: SSF_POLL_AUTHORIZATION }');
      for (const unused of ['path', 'authorization'] as const) if (get(delivery, unused) !== undefined) report([...at, unused], 'is only used with push delivery', 'remove it, or set method: push');
      const endpoint = str(delivery, 'endpoint');
      if (endpoint !== undefined) checkHttpUrl(endpoint, [...at, 'endpoint'], report, { allowPath: true });
    }
  });
}

/**
 * `forward.txnToken`: a lifetime of whole seconds (`iat` and `exp` are NumericDates) and minutes at
 * most (draft-ietf-oauth-transaction-tokens §6); an overlap that outlasts the tokens of a replaced
 * key; and passing a caller's Txn-Token on only when agentward verifies them for the same trust
 * domain the upstream expects, so the upstream never receives two audiences.
 */
function checkTxnMint(doc: unknown, report: Report): void {
  const section = obj(doc, 'forward', 'txnToken');
  if (Object.keys(section).length === 0) return;
  const path: Path = ['forward', 'txnToken'];
  const lifetime = str(section, 'lifetime');
  const overlap = str(section, 'rotationOverlap');
  const valid = (v: string | undefined): v is string => v !== undefined && new RegExp(DURATION_PATTERN).test(v);
  if (valid(lifetime)) {
    const ms = durationMs(lifetime);
    if (ms % 1000 !== 0) report([...path, 'lifetime'], `"${lifetime}" is not a whole number of seconds`, 'use seconds or minutes, such as "60s"');
    else if (ms > 600_000) report([...path, 'lifetime'], `"${lifetime}" is longer than 10 minutes`, 'Txn-Tokens live minutes or less (draft-ietf-oauth-transaction-tokens section 6); use "60s"');
    if (valid(overlap) && durationMs(overlap) < ms) report([...path, 'rotationOverlap'], `"${overlap}" is shorter than the lifetime "${lifetime}"`, 'make it at least the lifetime, or tokens signed by a replaced key stop verifying before they expire');
  }
  if (str(section, 'mode') === 'pass-through-or-mint') {
    const trustDomain = str(doc, 'txnTokens', 'trustDomain');
    if (get(doc, 'txnTokens') === undefined) report([...path, 'mode'], 'pass-through-or-mint needs a txnTokens section (incoming Txn-Tokens must be verified to be passed on)', 'add txnTokens, or use mode: mint');
    else if (trustDomain !== undefined && str(section, 'audience') !== undefined && trustDomain !== str(section, 'audience')) {
      report([...path, 'audience'], `"${str(section, 'audience')}" differs from txnTokens.trustDomain "${trustDomain}"`, 'use the same trust domain: a passed-on Txn-Token carries txnTokens.trustDomain as its aud');
    }
  }
}

/**
 * An issuer profile that relaxes RFC 9068 §4's `typ` check must keep a check that sets access
 * tokens apart (RFC 8725 §3.11), and an audience read from another claim than `aud` (Cognito's
 * `client_id`) has no sensible default: the resource id is never a client id.
 */
function checkIssuerProfile(issuer: IssuerConfig, path: Path, report: Report): void {
  if (typeof issuer !== 'object' || issuer === null || Array.isArray(issuer)) return;
  // An unknown profile name is already a schema problem.
  if (issuer.profile !== undefined && !(ISSUER_PROFILES as readonly string[]).includes(issuer.profile)) return;
  const profile = effectiveProfile(issuer);
  if (relaxesTyp(profile) && !guardsAccessTokens(profile.confusionGuard)) {
    report(
      [...path, 'confusionGuard'],
      `accepts tokens without typ at+jwt (profile ${profile.name}), but its confusion guard checks nothing that sets access tokens apart, so an ID token of this issuer would pass as an access token`,
      'set confusionGuard.claims (e.g. token_use: access), requireClientId: true or requireScope: true, or keep typ: [at+jwt] with typRequired: true (see docs/issuers.md)',
    );
  }
  if (profile.audienceClaims.some((c) => c !== 'aud') && issuer.audiences === undefined) {
    report(
      [...path, 'audiences'],
      `is required with audienceClaims ${profile.audienceClaims.join(', ')} (profile ${profile.name}): tokens without aud are matched by ${profile.audienceClaims.filter((c) => c !== 'aud').join(', ')}, which the resource id never equals`,
      'list the accepted values, e.g. the app client ids allowed to call this resource (docs/issuers.md)',
    );
  }
}

/**
 * `policy`: a path source exists and is a folder, a bundle or a .wasm file; a URL source is https
 * (http only on loopback: the bundle is the policy); the data file exists; a verification key is
 * used with a bundle source (signatures are a bundle's).
 */
function checkPolicy(section: Record<string, unknown>, baseDir: string, report: Report): void {
  const sourceFix = 'point it at a folder of .rego files, an OPA bundle (.tar.gz), a .wasm file, or the https URL of a bundle';
  const source = str(section, 'source');
  let kind: 'bundle' | 'other' | undefined;
  if (source !== undefined && isUrlSource(source)) {
    kind = 'bundle';
    checkHttpUrl(source, ['policy', 'source'], report, { allowPath: true });
    if (URL.canParse(source) && new URL(source).protocol === 'http:' && !isLoopback(source)) {
      report(['policy', 'source'], 'uses plain http to a non-loopback host', 'use https: whoever can change the bundle in transit decides every request');
    }
  } else if (source !== undefined) {
    const resolved = resolve(baseDir, source);
    if (!existsSync(resolved)) {
      report(['policy', 'source'], `"${source}" does not exist (resolved to ${resolved})`, sourceFix);
    } else if (!statSync(resolved).isDirectory() && !/\.(tar\.gz|tgz|wasm)$/.test(resolved)) {
      report(['policy', 'source'], `"${source}" is neither a folder nor a .tar.gz bundle nor a .wasm file`, sourceFix);
    } else {
      kind = /\.(tar\.gz|tgz)$/.test(resolved) ? 'bundle' : 'other';
    }
  }
  const data = str(section, 'data');
  if (data !== undefined && !existsSync(resolve(baseDir, data))) {
    report(['policy', 'data'], `"${data}" does not exist`, 'point it at a JSON file or remove the key');
  }
  const verification = obj(section, 'verification');
  if (Object.keys(verification).length === 0) return;
  if (kind === 'other') report(['policy', 'verification'], 'needs a bundle source: signatures are part of OPA bundles', 'set policy.source to a .tar.gz bundle or a bundle URL, or remove policy.verification');
  // The key file itself is read with the verifier's parser before anything is built (src/app/file-checks.ts).
}

/** RFC 7662 settings of one issuer: the endpoint and the client credentials its method needs. */
function checkIntrospection(section: Record<string, unknown>, path: Path, baseDir: string, env: NodeJS.ProcessEnv, secrets: Map<string, string>, report: Report): void {
  if (Object.keys(section).length === 0) return;
  const endpoint = str(section, 'endpoint');
  if (endpoint !== undefined) {
    checkHttpUrl(endpoint, [...path, 'endpoint'], report, { allowPath: true });
    // The client secret or assertion travels in the request: never over plain HTTP off the host.
    if (endpoint.startsWith('http:') && URL.canParse(endpoint) && !isLoopback(endpoint)) {
      report([...path, 'endpoint'], 'uses plain http to a non-loopback host', 'use https: the request carries the client credentials and the token');
    }
  }
  const method = str(section, 'auth') ?? 'client_secret_basic';
  const needed = method === 'private_key_jwt' ? 'privateKey' : 'clientSecret';
  const unused = method === 'private_key_jwt' ? 'clientSecret' : 'privateKey';
  const secret = obj(section, needed);
  if (Object.keys(secret).length === 0) {
    report([...path, needed], `is required with auth ${method}`, needed === 'privateKey' ? 'add privateKey: { fromFile: rs-key.jwk.json } (a private JWK)' : 'add clientSecret: { fromEnv: INTROSPECTION_SECRET }');
  } else if (Object.keys(secret).length === 1) {
    const value = resolveSecret(secret as Secret, [...path, needed], baseDir, env, report);
    if (value !== undefined) secrets.set(formatPath([...path, needed]), value);
    if (value !== undefined && needed === 'privateKey') {
      let jwk: unknown;
      try {
        jwk = JSON.parse(value);
      } catch {
        jwk = undefined;
      }
      if (!(jwk !== null && typeof jwk === 'object' && typeof (jwk as { d?: unknown }).d === 'string')) {
        report([...path, 'privateKey'], 'is not a private JWK', 'give the private key as a JSON Web Key with its "d" member');
      } else if (typeof (jwk as { alg?: unknown }).alg !== 'string' && str(section, 'algorithm') === undefined) {
        report([...path, 'algorithm'], 'is required when the private JWK has no "alg"', 'add algorithm: ES256 (or the key\'s algorithm)');
      }
    }
  }
  if (get(section, unused) !== undefined) report([...path, unused], `is not used with auth ${method}`, `remove it, or set auth to ${unused === 'privateKey' ? 'private_key_jwt' : 'client_secret_basic'}`);
}

/**
 * `workload`: trust domain names are SPIFFE trust domain names, each listed once, bundle files
 * exist, bundle endpoints are https (http only on loopback); binding table values are workload
 * identifiers of configured trust domains.
 */
function checkWorkload(section: Record<string, unknown>, baseDir: string, report: Report): void {
  if (Object.keys(section).length === 0) return;
  const names = new Set<string>();
  const badName = (name: string) => !/^[a-z0-9._-]+$/.test(name) || name.length > 255;
  const nameFix = 'use the lower-case host-like name only, e.g. agents.example.com (no scheme, port or path)';
  if (list(section, 'trustDomains').length === 0 && list(section, 'witIssuers').length === 0) {
    report(['workload', 'trustDomains'], 'is empty, and so is witIssuers', 'add a trust domain with its SPIFFE bundle, or a WIT issuer in workload.witIssuers');
  }
  list(section, 'trustDomains').forEach((domain, i) => {
    const path: Path = ['workload', 'trustDomains', i];
    const name = str(domain, 'name');
    if (name !== undefined) {
      if (badName(name)) report([...path, 'name'], `"${name}" is not a trust domain name`, nameFix);
      if (names.has(name)) report([...path, 'name'], `trust domain "${name}" is listed twice`, 'keep one entry: bundles of one trust domain are never merged (SPIFFE Federation §4.2)');
      names.add(name);
    }
    const file = str(domain, 'bundle', 'file');
    const url = str(domain, 'bundle', 'url');
    if ((file === undefined) === (url === undefined)) {
      report([...path, 'bundle'], file === undefined ? 'has neither file nor url' : 'has both file and url', 'give exactly one: bundle: { file: ./bundle.json } or bundle: { url: https://spire.example.com/bundle }');
    }
    if (file !== undefined) {
      const resolved = resolve(baseDir, file);
      if (!statSync(resolved, { throwIfNoEntry: false })?.isFile()) report([...path, 'bundle', 'file'], `"${file}" is not a file (resolved to ${resolved})`, 'point it at the SPIFFE bundle (JWK Set) of this trust domain; relative paths start at this file\'s folder');
    }
    if (url !== undefined) {
      checkHttpUrl(url, [...path, 'bundle', 'url'], report, { allowPath: true });
      if (url.startsWith('http:') && URL.canParse(url) && !isLoopback(url)) report([...path, 'bundle', 'url'], 'uses plain http to a non-loopback host', 'use https: the https_web profile trusts the bundle only as far as its transport (SPIFFE Federation §5.2.1)');
    }
  });
  const issuers = new Set<string>();
  list(section, 'witIssuers').forEach((issuer, i) => {
    const path: Path = ['workload', 'witIssuers', i];
    const id = str(issuer, 'issuer');
    if (id !== undefined) {
      if (issuers.has(id)) report([...path, 'issuer'], `WIT issuer "${id}" is listed twice`, 'merge the two entries');
      issuers.add(id);
    }
    const file = str(issuer, 'jwksFile');
    const url = str(issuer, 'jwksUri');
    if ((file === undefined) === (url === undefined)) {
      report(path, file === undefined ? 'has neither jwksUri nor jwksFile' : 'has both jwksUri and jwksFile', 'give exactly one: jwksUri: https://issuer.example.com/jwks.json or jwksFile: ./wit-issuer.jwks.json');
    }
    if (file !== undefined) {
      const resolved = resolve(baseDir, file);
      if (!statSync(resolved, { throwIfNoEntry: false })?.isFile()) report([...path, 'jwksFile'], `"${file}" is not a file (resolved to ${resolved})`, "point it at the issuer's JWK Set; relative paths start at this file's folder");
    }
    if (url !== undefined) {
      checkHttpUrl(url, [...path, 'jwksUri'], report, { allowPath: true });
      if (url.startsWith('http:') && URL.canParse(url) && !isLoopback(url)) report([...path, 'jwksUri'], 'uses plain http to a non-loopback host', 'use https: whoever can change the key set can mint any WIT of its trust domains');
    }
    list(issuer, 'trustDomains').forEach((name, j) => {
      if (typeof name !== 'string') return;
      if (badName(name)) report([...path, 'trustDomains', j], `"${name}" is not a trust domain name`, nameFix);
      names.add(name);
    });
  });
  for (const [client, id] of Object.entries(obj(section, 'binding', 'clients'))) {
    if (typeof id !== 'string') continue;
    const path: Path = ['workload', 'binding', 'clients', client];
    try {
      parseWorkloadId(id, { trustDomains: names });
    } catch (err) {
      report(path, `"${id}" is not a workload identifier of a configured trust domain (${err instanceof Error ? err.message : String(err)})`, 'write the full identifier, e.g. spiffe://agents.example.com/research-bot, of a trust domain listed in workload.trustDomains');
    }
  }
}

/**
 * A path is listed once, and under MCP or A2A, not both: the body of one request is read by one
 * protocol's rules.
 */
function checkRpcPaths(doc: unknown, report: Report): void {
  const seen = new Map<string, string>();
  for (const section of ['mcp', 'a2a']) {
    list(doc, section, 'paths').forEach((entry, i) => {
      const path = typeof entry === 'string' ? entry : str(entry, 'path');
      if (path === undefined) return;
      const where = seen.get(path);
      if (where !== undefined) report([section, 'paths', i], `"${path}" is also in ${where}`, 'list each path once, under one protocol');
      seen.set(path, `${section}.paths`);
    });
  }
}

/**
 * `listen.tls`: the files exist, and a CA is given when client certificates are asked for (with a
 * `workload` section the trust domains' X.509 authorities can be the only CAs).
 */
function checkListenTls(section: Record<string, unknown>, workload: boolean, baseDir: string, report: Report): void {
  if (Object.keys(section).length === 0) return;
  const path: Path = ['listen', 'tls'];
  for (const key of ['certFile', 'keyFile', 'clientCaFile']) {
    const file = str(section, key);
    if (file === undefined) continue;
    const resolved = resolve(baseDir, file);
    if (!statSync(resolved, { throwIfNoEntry: false })?.isFile()) report([...path, key], `"${file}" is not a file (resolved to ${resolved})`, 'point it at a PEM file; relative paths start at this file\'s folder');
  }
  const mode = str(section, 'clientCert') ?? 'none';
  const ca = str(section, 'clientCaFile');
  if ((mode === 'optional' || mode === 'required') && ca === undefined && !workload) report([...path, 'clientCaFile'], `is required with clientCert ${mode}`, 'add clientCaFile: the PEM CA certificates your agents\' client certificates chain to');
  if (mode === 'none' && ca !== undefined) report([...path, 'clientCaFile'], 'is not used with clientCert none', 'set clientCert to optional or required, or remove clientCaFile');
}

/**
 * `listen.trustedProxies`: at least one peer, addresses that parse, a purpose, a way to verify
 * the forwarded chains (own CA file, or the trust bundles when X.509-SVIDs are accepted), and a
 * handshake that verifies the certificates `peerNames` are matched against.
 */
function checkTrustedProxies(doc: unknown, baseDir: string, report: Report): void {
  if (get(doc, 'listen', 'trustedProxies') === undefined) return;
  const section = obj(doc, 'listen', 'trustedProxies');
  const path: Path = ['listen', 'trustedProxies'];
  list(section, 'addresses').forEach((entry, i) => {
    if (typeof entry === 'string' && !isCidr(entry)) report([...path, 'addresses', i], `"${entry}" is not an IP address or CIDR`, 'write an address (10.0.0.7, fd00::7) or a CIDR (10.0.0.0/8, fd00::/8)');
  });
  const peerNames = list(section, 'peerNames');
  if (list(section, 'addresses').length === 0 && peerNames.length === 0) report(path, 'trusts no peer', 'list the ingress under addresses (CIDRs) or peerNames (its TLS client certificate names)');
  if (get(section, 'clientCertHeaders') !== true) report([...path, 'clientCertHeaders'], 'is not true, so these peers are trusted for nothing', 'set clientCertHeaders: true to take Client-Cert from them, or remove trustedProxies');
  const mode = str(doc, 'listen', 'tls', 'clientCert') ?? 'none';
  if (peerNames.length > 0 && mode === 'none') report([...path, 'peerNames'], 'needs the ingress\'s TLS client certificate, and listen.tls asks for none', 'set listen.tls.clientCert to optional or required (with a clientCaFile that verifies the ingress), or trust the ingress by addresses');
  const ca = str(section, 'clientCaFile');
  if (ca !== undefined) {
    const resolved = resolve(baseDir, ca);
    if (!statSync(resolved, { throwIfNoEntry: false })?.isFile()) report([...path, 'clientCaFile'], `"${ca}" is not a file (resolved to ${resolved})`, 'point it at a PEM file; relative paths start at this file\'s folder');
  } else if (get(doc, 'workload') === undefined || get(doc, 'workload', 'x509Svid', 'enabled') === false) {
    report([...path, 'clientCaFile'], 'is required: nothing else can verify a forwarded certificate', 'add clientCaFile: the PEM CA certificates your agents\' client certificates chain to');
  }
}

/** An IPv4 or IPv6 address, optionally with a prefix length in range. */
function isCidr(entry: string): boolean {
  const [address, prefix, extra] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^(?:0|[1-9][0-9]{0,2})$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32);
}

function get(value: unknown, ...keys: string[]): unknown {
  for (const key of keys) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function str(value: unknown, ...keys: string[]): string | undefined {
  const v = get(value, ...keys);
  return typeof v === 'string' ? v : undefined;
}

function list(value: unknown, ...keys: string[]): unknown[] {
  const v = get(value, ...keys);
  return Array.isArray(v) ? v : [];
}

function obj(value: unknown, ...keys: string[]): Record<string, unknown> {
  const v = get(value, ...keys);
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function resolveSecret(secret: Secret, path: Path, baseDir: string, env: NodeJS.ProcessEnv, report: Report): string | undefined {
  if (secret.value !== undefined) return secret.value;
  if (secret.fromEnv !== undefined) {
    const value = env[secret.fromEnv];
    if (value === undefined || value === '') report([...path, 'fromEnv'], `environment variable ${secret.fromEnv} is not set`, `set ${secret.fromEnv} or use fromFile`);
    return value;
  }
  const file = resolve(baseDir, secret.fromFile!);
  try {
    const value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    if (value === '') report([...path, 'fromFile'], `${file} is empty`, 'write the secret into the file');
    return value;
  } catch {
    report([...path, 'fromFile'], `${file} cannot be read`, 'check the path and its permissions');
    return undefined;
  }
}

function checkHttpUrl(value: string, path: Path, report: Report, options: { allowPath: boolean }): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    report(path, `"${value}" is not an absolute URL`, 'write it as https://host[:port]/path');
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') report(path, `"${value}" is not an http(s) URL`, 'use https:// (or http:// on loopback)');
  if (url.hash || url.username || url.password) report(path, `"${value}" has a fragment or user info`, 'remove the #fragment and user:password@ parts');
  if (!options.allowPath && url.pathname !== '/') report(path, `"${value}" has a path`, 'give only scheme, host and port; the request path is kept as sent');
}

/** RFC 8707 §2 / RFC 9728 §2: an absolute URI without fragment; https outside tests. */
function checkResourceId(value: string, report: Report): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    report(['resource', 'id'], `"${value}" is not an absolute URI`, 'use the URL agents call, e.g. https://tools.example.com/mcp');
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') report(['resource', 'id'], 'must be an http(s) URL (RFC 9728 §2)', 'use the https URL agents call');
  if (url.hash) report(['resource', 'id'], 'must not have a fragment (RFC 8707 §2)', 'remove the #fragment');
  if (url.search) report(['resource', 'id'], 'should not have a query (RFC 8707 §2)', 'remove the ?query');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Settings that loosen a default (conventions §8). They are allowed, but named at startup and by
 * `agentward check`, so nobody runs relaxed by accident.
 */
export function relaxations(config: Readonly<Config>): string[] {
  const out: string[] = [];
  if (!config.forward.stripCredentials) out.push('forward.stripCredentials is off: the upstream receives the callers\' credentials');
  if (config.forward.methodOverride === 'pass')
    out.push('forward.methodOverride is pass: method override fields (X-HTTP-Method-Override, _method, ...) reach the upstream, which may act on a method the policy did not decide on (the policy sees them in input.request.methodOverride)');
  if (config.policy.exposeReason) out.push('policy.exposeReason is on: deny reasons written by the policy are sent to callers');
  if (durationSeconds(config.oauth.clockSkew) > 300) out.push(`oauth.clockSkew is ${config.oauth.clockSkew}: RFC 9068 §4 asks for a few minutes at most`);
  config.oauth.issuers.forEach((issuer, i) => {
    const profile = effectiveProfile(issuer);
    if (relaxesTyp(profile)) {
      const typ = [...profile.typ, ...(profile.typRequired ? [] : ['none'])].join(', ');
      out.push(`oauth.issuers[${i}] (profile ${profile.name}) accepts JWT access tokens with typ ${typ}, not only at+jwt (a deviation from RFC 9068 §4; the confusion guard tells access tokens apart)`);
    } else {
      const missing = RFC9068_REQUIRED_CLAIMS.filter((c) => !profile.requiredClaims.includes(c));
      if (missing.length > 0) out.push(`oauth.issuers[${i}].requiredClaims leaves out ${missing.join(', ')} (RFC 9068 §2.2 requires them)`);
    }
    for (const [key, url] of [['issuer', issuer.issuer], ['jwksUri', issuer.jwksUri]] as const) {
      if (url !== undefined && url.startsWith('http:') && !isLoopback(url)) out.push(`oauth.issuers[${i}].${key} uses plain http to a non-loopback host: keys can be tampered with in transit`);
    }
  });
  const byAddress = config.listen.trustedProxies?.addresses ?? [];
  if (byAddress.length > 0) out.push(`listen.trustedProxies trusts whoever connects from ${byAddress.join(', ')} to forward client certificates (Client-Cert): make sure only the ingress can`);
  if (config.policy.mode === 'shadow') out.push('policy.mode is shadow: requests the policy denies are forwarded anyway (logged as would-deny); only authentication failures are refused');
  if (config.oauth.anonymous === 'policy')
    out.push(
      'oauth.anonymous is policy: requests that present no credential reach the policy (subject and agent null) instead of a 401, and oauth.requireToken, workload.require and txnTokens.mode: required do not apply to them; the policy must deny them except on public paths',
    );
  const redisUrl = config.state.backend === 'redis' ? config.state.redis?.url : undefined;
  if (redisUrl?.startsWith('redis://') && !isLoopback(redisUrl.replace(/^redis:/, 'http:')))
    out.push('state.redis.url uses plain redis:// to a non-loopback host: the password, proof hashes and revocation marks travel unencrypted and can be altered in transit (use rediss://)');
  if (!config.oauth.requireToken) out.push('oauth.requireToken is off: a proven workload identity alone authenticates a request (the policy sees subject: null)');
  config.workload?.trustDomains.forEach((domain, i) => {
    if (domain.bundle.url?.startsWith('http:') && isLoopback(domain.bundle.url)) out.push(`workload.trustDomains[${i}].bundle.url uses plain http (loopback only)`);
  });
  config.workload?.witIssuers.forEach((issuer, i) => {
    if (issuer.jwksUri?.startsWith('http:') && isLoopback(issuer.jwksUri)) out.push(`workload.witIssuers[${i}].jwksUri uses plain http (loopback only)`);
  });
  config.signals?.transmitters.forEach((transmitter, i) => {
    for (const [key, url] of [['issuer', transmitter.issuer], ['jwksUri', transmitter.jwksUri]] as const) {
      if (url !== undefined && url.startsWith('http:') && !isLoopback(url)) out.push(`signals.transmitters[${i}].${key} uses plain http to a non-loopback host: its keys (and so its security events) can be forged in transit`);
    }
  });
  const txnJwks = config.txnTokens?.jwksUri;
  if (txnJwks !== undefined && txnJwks.startsWith('http:') && !isLoopback(txnJwks)) out.push('txnTokens.jwksUri uses plain http to a non-loopback host: keys can be tampered with in transit');
  return out;
}

function durationSeconds(value: string): number {
  return durationMs(value) / 1000;
}

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}
