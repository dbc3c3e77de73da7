/**
 * The policy engine: Rego compiled to WebAssembly, evaluated in-process with opa-wasm.
 *
 * Fail closed (conventions §9): no policy, a throw, running out of its bounded memory, an
 * undefined result and a malformed result are each a deny with their own code. A reload builds
 * and loads the new policy completely, checks its entrypoint, and only then replaces one
 * reference; a failed reload keeps the last good policy and records why (shown by /readyz).
 *
 * Sources: a folder of Rego (compiled with opa), a .wasm file, or an OPA bundle, read from a file
 * or polled from a bundle server (src/policy/bundle-source.ts). Bundles from a file or a server
 * go through openBundle, which applies OPA's signature rules.
 *
 * Decisions are memoized (src/policy/memo.ts) when the policy is a folder compiled here and its
 * plan shows it a pure function of the input fields it reads (src/policy/input-reads.ts); each
 * loaded policy has its own memo, so a reload or a data change starts with an empty one. Prebuilt
 * bundles and .wasm files carry no plan and are evaluated every time.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import type { Logger } from 'pino';
import { AgentwardError } from '../errors.ts';
import { openBundle, readBundle, unpackBundle, type PolicyBundle } from './bundle.ts';
import { PLAN_FILE } from './bundle-format.ts';
import type { BundleVerifier } from './bundle-signature.ts';
import { HttpBundleSource, isUrlSource, pollDelayMs, type BundlePollOptions } from './bundle-source.ts';
import { compileRegoWithPlan, opaBinary, PolicyCompileError } from './compile.ts';
import { parseDecision, type Decision } from './decision.ts';
import type { PolicyInput } from './input.ts';
import { inputReads, type InputRead, type InputReads } from './input-reads.ts';
import { DecisionMemo, type MemoOptions, type PreparedKeys } from './memo.ts';
import { WasmEvaluator } from './wasm-eval.ts';

export interface PolicyEngineOptions {
  /** Absolute path (a folder of Rego, a .tar.gz bundle or a .wasm file), or a bundle's http(s) URL. */
  source: string;
  entrypoint: string;
  /** Absolute path of an extra data JSON file. */
  dataFile?: string | undefined;
  /** The opa binary that compiles a folder source. Default: `$AGENTWARD_OPA`, then `opa` on PATH; bundle and .wasm sources never run it. */
  opa?: string | undefined;
  /** Largest WebAssembly memory the policy may grow to, in bytes (rounded down to 64 KiB pages, at least 5). */
  maxMemoryBytes: number;
  logger: Logger;
  /** Clock in milliseconds since the epoch, for `loadedAt` and `lastCheckedAt`. Default `Date.now`. Decisions read the time from `input.now`, never from here. */
  now?: () => number;
  /** Checks bundle signatures. Without it a signed bundle is refused, as OPA does. */
  verifier?: BundleVerifier | undefined;
  /** Required with a URL source: how the bundle server is polled. */
  poll?: BundlePollOptions | undefined;
  /** Memoized decisions (on by default where the policy allows it); false turns them off. */
  memo?: MemoOptions | false | undefined;
}

/** Whether the loaded policy's decisions are memoized, on what, and how the memo fares. */
export type MemoStatus =
  | { memoized: true; reads: readonly InputRead[]; hits: number; misses: number; size: number }
  | { memoized: false; reason: string };

/** Cumulative decision counts of an engine (see PolicyEngine.counts). */
export interface DecisionCounts {
  evaluations: number;
  memoHits: number;
}

export interface PolicyStatus {
  loaded: boolean;
  source: string;
  revision: string | null;
  loadedAt: string | null;
  /** Why the last load or reload failed; null after a success. */
  lastError: string | null;
  /** URL sources only: the ETag of the active bundle (sent as If-None-Match). */
  etag?: string | null;
  /** URL sources only: when the bundle server was last asked. */
  lastCheckedAt?: string | null;
}

interface ActivePolicy {
  wasm: LoadedPolicy;
  evaluator: WasmEvaluator;
  /** Undefined when decisions of this policy are not memoized. */
  memo: DecisionMemo | undefined;
  /** What the plan analysis found (the reads, or why there are none). */
  reads: InputReads;
  revision: string;
  loadedAt: Date;
  /** URL sources: what was downloaded, its ETag, and a digest of it with the data file. */
  download?: { gz: Buffer; etag: string | undefined; digest: string };
}

const PAGE = 65536;

export class PolicyEngine {
  private readonly options: PolicyEngineOptions;
  private active: ActivePolicy | undefined;
  private lastError: string | undefined;
  private watchers: FSWatcher[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private reloadAgain = false;
  private readonly http: HttpBundleSource | undefined;
  /** Loads that failed in a row; the poll interval backs off with it. */
  private failures = 0;
  private watching = false;
  private closed = false;
  private pollTimer: NodeJS.Timeout | undefined;
  /**
   * Decisions asked for since start (`evaluations`) and those answered from the memo (`memoHits`),
   * across reloads: read by the metrics collector (src/observability/metrics.ts), never reset.
   */
  readonly counts: DecisionCounts = { evaluations: 0, memoHits: 0 };
  private readonly now: () => number;

  constructor(options: PolicyEngineOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    if (isUrlSource(options.source)) {
      if (!options.poll) throw new Error('a URL policy source needs poll options');
      this.http = new HttpBundleSource(options.source, options.poll, this.now);
    }
  }

  get revision(): string | undefined {
    return this.active?.revision;
  }

  status(): PolicyStatus {
    return {
      loaded: this.active !== undefined,
      source: this.options.source,
      revision: this.active?.revision ?? null,
      loadedAt: this.active?.loadedAt.toISOString() ?? null,
      lastError: this.lastError ?? null,
      ...(this.http
        ? { etag: this.active?.download?.etag ?? null, lastCheckedAt: this.http.lastCheckedAt?.toISOString() ?? null }
        : {}),
    };
  }

  /** The memo of the loaded policy; undefined before a policy is loaded. */
  memoStatus(): MemoStatus | undefined {
    const active = this.active;
    if (!active) return undefined;
    const { memo, reads } = active;
    if (!reads.memoizable) return { memoized: false, reason: reads.reason };
    return { memoized: true, reads: reads.reads, hits: memo?.hits ?? 0, misses: memo?.misses ?? 0, size: memo?.size ?? 0 };
  }

  /**
   * Forgets every memoized decision of the loaded policy; returns how many. A remediation
   * (docs/signals.md) calls it: memo keys are input values, not subjects, so the one sound purge
   * is all of it (the memo refills from the next requests).
   */
  forgetDecisions(): number {
    return this.active?.memo?.clear() ?? 0;
  }

  /**
   * Loads the policy; on failure keeps any previous one and throws. A bundle server's answer that
   * is the active bundle (304, or the same bytes) changes nothing.
   */
  async load(): Promise<void> {
    try {
      const candidate = await this.build();
      if (candidate) {
        this.active = candidate;
        this.options.logger.info({ revision: candidate.revision, source: this.options.source }, 'policy loaded');
      } else {
        this.options.logger.debug({ revision: this.active?.revision, source: this.options.source }, 'policy bundle unchanged');
      }
      this.lastError = undefined;
      this.failures = 0;
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      this.failures++;
      throw err;
    }
  }

  /**
   * Evaluates the decision for one request. Synchronous: opa-wasm runs to completion, and the
   * WebAssembly memory maximum bounds what a policy can allocate.
   */
  evaluate(input: PolicyInput): Decision {
    const active = this.active;
    if (!active) throw new AgentwardError('ERR_POLICY_NOT_LOADED');
    return decideOnce(active, active.memo ? memoKey(() => active.memo!.key(input)) : undefined, () => JSON.stringify(input), this.counts);
  }

  /**
   * Decides inputs that are `base` with one top-level field replaced, as evaluate would each
   * `{ ...base, [field]: value }`: MCP list filtering asks about every item of a list as the call
   * it stands for (src/rpc/list-filter.ts). The rest of the input is encoded to JSON once, and
   * its part of the memo key computed once per loaded policy. Each call uses the policy loaded
   * at that moment.
   */
  prepare<K extends keyof PolicyInput>(base: PolicyInput, field: K): (value: PolicyInput[K]) => Decision {
    let slot: JsonSlot | null | undefined;
    let keysOf: ActivePolicy | undefined;
    let keys: PreparedKeys | undefined;
    const json = (value: PolicyInput[K]) => {
      if (slot === undefined) slot = jsonSlot(base, field);
      const text = slot ? JSON.stringify(value) as string | undefined : undefined;
      return slot && text !== undefined ? slot.before + text + slot.after : JSON.stringify({ ...base, [field]: value });
    };
    return (value) => {
      const active = this.active;
      if (!active) throw new AgentwardError('ERR_POLICY_NOT_LOADED');
      if (keysOf !== active) {
        keysOf = active;
        keys = active.memo ? memoKey(() => active.memo!.prepare(base, field)) : undefined;
      }
      return decideOnce(active, keys ? memoKey(() => keys!.key(value)) : undefined, () => json(value), this.counts);
    };
  }

  /**
   * Watches the source and the data file and reloads on change, debounced; a URL source is
   * polled instead, every poll.intervalMs (longer after failures).
   */
  watch(): void {
    if (this.watching) return;
    this.watching = true;
    const { source, dataFile } = this.options;
    if (this.http) {
      this.schedulePoll();
      if (dataFile) this.watchPath(dirname(dataFile), false, basename(dataFile));
      return;
    }
    const isDir = statSync(source).isDirectory();
    if (isDir) this.watchPath(source, true, undefined);
    else this.watchPath(dirname(source), false, basename(source));
    if (dataFile && !(isDir && !relative(source, dataFile).startsWith('..'))) this.watchPath(dirname(dataFile), false, basename(dataFile));
  }

  /** Editors replace files by rename, so a single file is watched through its folder. */
  private watchPath(dir: string, recursive: boolean, onlyName: string | undefined): void {
    const watcher = watch(dir, { recursive, persistent: false }, (_event, filename) => {
      if (onlyName && filename && basename(filename.toString()) !== onlyName) return;
      this.scheduleReload();
    });
    watcher.on('error', (err) => this.options.logger.error({ err, dir }, 'policy watcher failed; hot reload is off'));
    this.watchers.push(watcher);
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers) w.close();
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.http?.close();
  }

  /** The next poll of the bundle server, after the current one has finished (never two at once). */
  private schedulePoll(): void {
    if (this.closed) return;
    this.pollTimer = setTimeout(() => void this.reload().then(() => this.schedulePoll()), pollDelayMs(this.options.poll!.intervalMs, this.failures));
    this.pollTimer.unref();
  }

  private scheduleReload(): void {
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => void this.reload(), 200);
    this.reloadTimer.unref();
  }

  /** Reloads once; a change during a reload triggers one more afterwards. Never throws. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.reloadAgain = false;
        const previous = this.active?.revision;
        try {
          await this.load();
        } catch (err) {
          this.options.logger.error({ err: this.lastError, keptRevision: previous ?? null }, 'policy reload failed; keeping the last good policy');
        }
      } while (this.reloadAgain);
    })().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  /** The candidate policy, fully loaded; undefined when a bundle server still serves the active one. */
  private async build(): Promise<ActivePolicy | undefined> {
    const { source, entrypoint, dataFile, maxMemoryBytes, verifier } = this.options;
    const rawData = dataFile === undefined ? undefined : readFileSync(dataFile);
    let bundle: PolicyBundle;
    let revision: string;
    let download: ActivePolicy['download'];
    let reads: InputReads = { memoizable: false, reason: 'a .wasm module carries no plan to analyse' };
    if (this.http) {
      const active = this.active?.download;
      let fetched;
      try {
        fetched = await this.http.fetch(active?.etag);
      } catch (err) {
        throw new Error(`the policy bundle could not be downloaded: ${describe(err)}`, { cause: err });
      }
      // 304 answers the If-None-Match sent with the active bundle's ETag, so `active` is set.
      const gz = fetched.notModified ? active!.gz : fetched.body;
      const etag = fetched.notModified ? active!.etag : fetched.etag;
      const digest = sha256(rawData ? Buffer.concat([gz, Buffer.from('\0'), rawData]) : gz);
      if (active && digest === active.digest) {
        active.etag = etag;
        return undefined;
      }
      bundle = await openBundle(gz, verifier);
      revision = bundle.revision ?? `sha256:${sha256(gz).slice(0, 16)}`;
      download = { gz, etag, digest };
      reads = embeddedPlanReads(bundle, entrypoint);
    } else if (statSync(source).isDirectory()) {
      if (verifier) throw new Error('policy.verification needs a bundle source (a .tar.gz file or a URL), not a folder');
      revision = `sha256:${hashTree(source).slice(0, 16)}`;
      const compiled = await compileRegoWithPlan(source, { opa: this.options.opa ?? opaBinary(undefined), entrypoint });
      bundle = readBundle(compiled.bundle);
      reads = compiled.plan ? planReads(compiled.plan, entrypoint) : { memoizable: false, reason: 'the policy could not be planned' };
    } else if (source.endsWith('.wasm')) {
      if (verifier) throw new Error('policy.verification needs a bundle source (a .tar.gz file or a URL), not a .wasm file');
      const wasm = readFileSync(source);
      bundle = { wasm, data: {}, revision: undefined, plan: undefined };
      revision = `sha256:${sha256(wasm).slice(0, 16)}`;
    } else {
      const gz = readFileSync(source);
      bundle = await openBundle(gz, verifier);
      revision = bundle.revision ?? `sha256:${sha256(gz).slice(0, 16)}`;
      reads = embeddedPlanReads(bundle, entrypoint);
    }
    let data = bundle.data;
    if (dataFile && rawData) {
      const extra = JSON.parse(rawData.toString('utf8')) as unknown;
      if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) throw new Error(`${dataFile} is not a JSON object`);
      data = { ...data, ...(extra as Record<string, unknown>) };
      revision = `${revision}+data:${sha256(rawData).slice(0, 8)}`;
    }

    let wasm: LoadedPolicy;
    try {
      wasm = await loadPolicy(bundle.wasm, { initial: 5, maximum: Math.max(5, Math.floor(maxMemoryBytes / PAGE)) });
      wasm.setData(data);
    } catch (err) {
      throw new Error(`the policy WebAssembly could not be loaded: ${describe(err)}`, { cause: err });
    }
    const entrypoints = wasm.entrypoints as Record<string, number>;
    if (!(entrypoint in entrypoints)) {
      throw new Error(`the policy has no entrypoint "${entrypoint}" (it has: ${Object.keys(entrypoints).join(', ') || 'none'})`);
    }
    return { wasm, evaluator: new WasmEvaluator(wasm, entrypoint), ...memoFor(reads, this.options.memo, revision, this.options.logger), revision, loadedAt: new Date(this.now()), ...(download ? { download } : {}) };
  }
}

/** The memo of a newly loaded policy, or none (with the reason, logged). */
function memoFor(found: InputReads, options: MemoOptions | false | undefined, revision: string, logger: Logger): { memo: DecisionMemo | undefined; reads: InputReads } {
  let reads = found;
  if (options === false) reads = { memoizable: false, reason: 'memoization is turned off' };
  else if (reads.memoizable && reads.reads.some((r) => r.kind === 'value' && ['request', 'request.id'].includes(r.path.join('.')))) {
    // Sound, but useless: every request would miss and take a memo entry.
    reads = { memoizable: false, reason: 'the policy reads input.request.id, which is new on every request' };
  }
  if (!reads.memoizable) {
    logger.info({ revision, memo: false, reason: reads.reason }, 'policy decisions are not memoized');
    return { memo: undefined, reads };
  }
  const paths = reads.reads.map((r) => `${r.path.join('.')}${r.kind === 'value' ? '' : ` (${r.kind})`}`);
  // input.now changes every second: a policy that reads it reuses a decision within that second only.
  logger.info({ revision, memo: true, reads: paths, readsNow: reads.reads.some((r) => r.path[0] === 'now') }, 'policy decisions are memoized by the input fields the policy reads');
  return { memo: new DecisionMemo(reads.reads, options || undefined), reads };
}

/**
 * The input reads of the plan `agentward policy build` embedded in a bundle (PLAN_FILE), if it
 * was made for this entrypoint and for exactly this module (its SHA-256): a plan of other code
 * would make the memo unsound, so any mismatch means no memo, with the reason.
 */
function embeddedPlanReads(bundle: PolicyBundle, entrypoint: string): InputReads {
  if (!bundle.plan) return { memoizable: false, reason: `the bundle carries no plan (/${PLAN_FILE}); build it with \`agentward policy build\` to memoize decisions` };
  let embedded: { format?: unknown; entrypoint?: unknown; wasmSha256?: unknown; plan?: unknown };
  try {
    embedded = JSON.parse(bundle.plan.toString('utf8')) as typeof embedded;
  } catch {
    return { memoizable: false, reason: `/${PLAN_FILE} is not JSON` };
  }
  if (embedded.format !== 1) return { memoizable: false, reason: `/${PLAN_FILE} has a format this version does not read` };
  if (embedded.entrypoint !== entrypoint) return { memoizable: false, reason: `the embedded plan is for the entrypoint ${JSON.stringify(embedded.entrypoint)}, not ${entrypoint}` };
  if (embedded.wasmSha256 !== sha256(bundle.wasm)) return { memoizable: false, reason: 'the embedded plan was made for another policy.wasm (the module was replaced after the build)' };
  try {
    return inputReads(embedded.plan, entrypoint);
  } catch (err) {
    return { memoizable: false, reason: `the embedded plan could not be read: ${describe(err)}` };
  }
}

/** The input reads in a plan bundle's /plan.json. */
function planReads(planBundle: Buffer, entrypoint: string): InputReads {
  try {
    const plan = unpackBundle(planBundle).get('plan.json');
    if (!plan) return { memoizable: false, reason: 'the plan bundle has no /plan.json' };
    return inputReads(JSON.parse(plan.toString('utf8')), entrypoint);
  } catch (err) {
    return { memoizable: false, reason: `the plan could not be read: ${describe(err)}` };
  }
}

/** A memo key, or undefined (evaluate without the memo) when the input cannot be keyed. */
function memoKey<T>(compute: () => T | undefined): T | undefined {
  try {
    return compute();
  } catch {
    return undefined;
  }
}

/** The memoized decision for `key`, or a fresh one (kept under `key` when there is one). */
function decideOnce(active: ActivePolicy, key: string | undefined, json: () => string, counts: DecisionCounts): Decision {
  counts.evaluations++;
  if (key !== undefined) {
    const hit = active.memo!.get(key);
    if (hit) {
      counts.memoHits++;
      return hit;
    }
  }
  const decision = evaluateJson(active, json);
  return key === undefined ? decision : active.memo!.set(key, decision);
}

/** One evaluation; only decisions come back, every failure is its own error (conventions §9). */
function evaluateJson(active: ActivePolicy, json: () => string): Decision {
  let resultSet: unknown;
  try {
    resultSet = active.evaluator.evaluate(json());
  } catch (err) {
    // opa-wasm throws strings, plain objects and RuntimeErrors (e.g. memory exhausted).
    throw new AgentwardError('ERR_POLICY_EVALUATION', undefined, { cause: err instanceof Error ? err : new Error(String(err)) });
  }
  if (!Array.isArray(resultSet) || resultSet.length === 0) throw new AgentwardError('ERR_POLICY_UNDEFINED');
  if (resultSet.length > 1) throw new AgentwardError('ERR_POLICY_DECISION_INVALID', undefined, { cause: new Error('the entrypoint produced more than one result') });
  return parseDecision((resultSet[0] as { result?: unknown }).result);
}

/** The JSON of an input around one field's value: before + JSON of the value + after. */
interface JsonSlot {
  before: string;
  after: string;
}

/** A string no input holds (unguessable, checked to occur once), marking where the field's value goes. */
const SLOT_MARK = `\u0000agentward-slot:${randomUUID()}`;

function jsonSlot(base: object, field: string): JsonSlot | null {
  let text: string;
  try {
    text = JSON.stringify({ ...base, [field]: SLOT_MARK });
  } catch {
    return null;
  }
  const mark = JSON.stringify(SLOT_MARK);
  const at = text.indexOf(mark);
  if (at < 0 || text.indexOf(mark, at + 1) >= 0) return null;
  return { before: text.slice(0, at), after: text.slice(at + mark.length) };
}

function describe(err: unknown): string {
  if (err instanceof PolicyCompileError) return err.compilerOutput;
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A revision for a folder of Rego: the hash of every .rego and .json file, by relative path. */
function hashTree(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.(rego|json)$/.test(entry.name) && !entry.name.endsWith('_test.rego')) hash.update(relative(dir, full)).update('\0').update(readFileSync(full)).update('\0');
    }
  };
  walk(dir);
  return hash.digest('hex');
}
