/**
 * The trust bundle of one SPIFFE trust domain (SPIFFE Trust Domain and Bundle §4; spec
 * cases BND-Nxx in docs/negative-cases.md): a JWK Set whose entries carry `use` = `x509-svid`, `jwt-svid` or
 * `wit-svid`, read from a file (watched and hot-reloaded) or polled from a bundle endpoint
 * (SPIFFE Federation §5, `https_web` profile) every `spiffe_refresh_hint` seconds.
 *
 * One instance serves exactly one trust domain, so bundles of different domains are never merged
 * (Federation §4.2) and an SVID can only be checked against the bundle of its own domain
 * (Bundle §3). The key resolvers and certificate list are built once per installed bundle; the
 * hot path only calls the accessors.
 *
 * Failures: a bad file or a failed, malformed or older (`spiffe_sequence` going backwards) answer
 * keeps the last good bundle and records `lastError`. For an endpoint the last good bundle is
 * used for at most `maxStaleMs` after the last successful fetch; after that the accessors throw
 * ERR_KEYS_UNAVAILABLE (fail closed, conventions §9) until a fetch works again.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { createLocalJWKSet, errors as joseErrors, type CryptoKey, type FlattenedJWSInput, type JWK, type JWSHeaderParameters } from 'jose';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { AgentwardError } from '../errors.ts';
import { fetchJson } from '../outbound/http.ts';
import { readJsonFile } from './json-file.ts';
import { durationMs } from '../duration.ts';
import { watchFiles, type FileWatch } from '../file-watch.ts';
import type { Services } from '../services.ts';
import type { KeySetRefreshStats } from './issuer-keys.ts';

export type TrustBundleSource = { file: string } | { url: string };

export interface TrustBundleOptions {
  /** The trust domain name, e.g. `example.org` (SPIFFE ID §2.1: lowercase letters, digits, `.`, `-`, `_`). */
  trustDomain: string;
  /** A bundle file, or a bundle endpoint URL (https, or http on a loopback host). */
  source: TrustBundleSource;
  /** How long a failing endpoint's last good bundle is still used after the last success. Default 1 h. */
  maxStaleMs?: number;
  /** Deadline of one endpoint fetch (connect, headers and body). */
  timeoutMs: number;
  dispatcher?: Dispatcher;
  logger: Logger;
  now?: () => number;
  /** Poll interval when the bundle has no `spiffe_refresh_hint` (Federation §4.1: "~5 minutes"). Default 5 min. */
  defaultRefreshMs?: number;
  /** Quiet time after the last file event before a file is read again. Default 100 ms. */
  debounceMs?: number;
  /**
   * Least time between two endpoint fetches caused by a `kid` the bundle lacks (docs/architecture.md "The request pipeline": an
   * unknown key is refetched once, single flight, with a cooldown). Default 5 s.
   */
  unknownKeyCooldownMs?: number;
}

export type SvidUse = 'x509-svid' | 'jwt-svid' | 'wit-svid';
const USES: ReadonlySet<string> = new Set<SvidUse>(['x509-svid', 'jwt-svid', 'wit-svid']);
/** Key types jose can import as public keys. `oct` (a shared secret) has no place in a bundle. */
const KEY_TYPES: ReadonlySet<string> = new Set(['EC', 'RSA', 'OKP']);
/** Members that only a private key has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** Bounds on `spiffe_refresh_hint`: a bundle cannot make us poll in a tight loop, nor stop polling. */
export const MIN_REFRESH_MS = 10_000;
export const MAX_REFRESH_MS = 86_400_000;
const DEFAULT_REFRESH_MS = 300_000;
const DEFAULT_MAX_STALE_MS = 3_600_000;
/** setTimeout takes at most 2^31-1 ms; longer delays fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Selects the verification key of a JWS among a bundle's keys of one use (jose's key-function shape). */
export type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/**
 * Called when a new bundle removes or replaces keys: the `kid`s per JWT use (`undefined` for a
 * WIT-SVID key without `kid`) and the SHA-256 fingerprints of X.509 authorities. SVIDs verified
 * with those keys must be verified again.
 */
export type BundleRotationListener = (trustDomain: string, removed: { jwtSvid: ReadonlySet<string | undefined>; witSvid: ReadonlySet<string | undefined>; x509Svid: ReadonlySet<string> }) => void;

export interface TrustBundleStatus {
  trustDomain: string;
  source: 'file' | 'url';
  location: string;
  ready: boolean;
  /** True when an endpoint's last good bundle is older than maxStaleMs: the accessors fail closed. */
  stale: boolean;
  sequence: number | null;
  refreshMs: number | null;
  lastSuccessAt: string | null;
  lastError: string | null;
  keys: { jwtSvid: number; witSvid: number; x509Svid: number };
}

/** A checked bundle, with everything the accessors need built. */
export interface ParsedBundle {
  sequence: number | undefined;
  refreshHintMs: number | undefined;
  jwtSvid: JWK[];
  witSvid: JWK[];
  x509: X509Certificate[];
  digest: string;
}

interface InstalledBundle extends ParsedBundle {
  jwtResolver: KeyResolver;
  witResolver: KeyResolver;
}

export class TrustBundle {
  readonly trustDomain: string;
  private readonly options: TrustBundleOptions;
  private readonly now: () => number;
  private readonly maxStaleMs: number;
  private readonly defaultRefreshMs: number;
  private current: InstalledBundle | undefined;
  private lastSuccessAt: number | undefined;
  private lastError: string | undefined;
  private failures = 0;
  /** Cumulative loads and failed loads since start: for metrics. */
  private readonly counts = { refreshes: 0, failures: 0 };
  private inflight: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FileWatch | undefined;
  private closed = false;
  private staleLogged = false;
  private lastUnknownKeyFetchAt = -Infinity;
  private readonly listeners: BundleRotationListener[] = [];
  private readonly installListeners: ((trustDomain: string) => void)[] = [];

  /** Throws a TypeError for a malformed trust domain or a plain-http endpoint off loopback (config check reports these first). */
  constructor(options: TrustBundleOptions) {
    if (!/^[a-z0-9._-]+$/.test(options.trustDomain)) {
      throw new TypeError(`trust domain "${options.trustDomain}" is not a SPIFFE trust domain name (lowercase letters, digits, ".", "-", "_")`);
    }
    if ('url' in options.source) {
      const url = new URL(options.source.url);
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
        // https_web profile (Federation §5.2.1): the bundle is only as trustworthy as its transport.
        throw new TypeError(`bundle endpoint ${url.href} must use https (plain http only on loopback)`);
      }
    }
    this.trustDomain = options.trustDomain;
    this.options = options;
    this.now = options.now ?? Date.now;
    this.maxStaleMs = options.maxStaleMs ?? DEFAULT_MAX_STALE_MS;
    this.defaultRefreshMs = options.defaultRefreshMs ?? DEFAULT_REFRESH_MS;
  }

  /** True once a bundle has been loaded (it may since have gone stale; see status().stale). */
  get ready(): boolean {
    return this.current !== undefined;
  }

  status(): TrustBundleStatus {
    const isUrl = 'url' in this.options.source;
    return {
      trustDomain: this.trustDomain,
      source: isUrl ? 'url' : 'file',
      location: 'url' in this.options.source ? this.options.source.url : this.options.source.file,
      ready: this.ready,
      stale: this.isStale(),
      sequence: this.current?.sequence ?? null,
      refreshMs: isUrl ? this.refreshMs() : null,
      lastSuccessAt: this.lastSuccessAt === undefined ? null : new Date(this.lastSuccessAt).toISOString(),
      lastError: this.lastError ?? null,
      keys: { jwtSvid: this.current?.jwtSvid.length ?? 0, witSvid: this.current?.witSvid.length ?? 0, x509Svid: this.current?.x509.length ?? 0 },
    };
  }

  /** Loads that worked and that failed since start, and when the bundle in use was loaded (ms since the epoch). */
  refreshStats(): KeySetRefreshStats {
    return { refreshes: this.counts.refreshes, failures: this.counts.failures, loadedAt: this.lastSuccessAt };
  }

  onRotation(listener: BundleRotationListener): void {
    this.listeners.push(listener);
  }

  /** Called after every bundle that differs from the previous one is installed (the first included). */
  onInstall(listener: (trustDomain: string) => void): void {
    this.installListeners.push(listener);
  }

  /**
   * First load, then file watching or endpoint polling. Resolves whether or not the first load
   * worked: until one does, the accessors throw ERR_KEYS_UNAVAILABLE.
   */
  async start(): Promise<void> {
    await this.refresh();
    if (this.closed) return;
    if ('file' in this.options.source) this.watch(this.options.source.file);
    else this.schedule();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Keys of `use: jwt-svid` entries, for verifying JWT-SVIDs of this trust domain only. */
  jwtSvidKeys(): KeyResolver {
    return this.installed().jwtResolver;
  }

  /** Keys of `use: wit-svid` entries, for verifying WITs of this trust domain only (never jwt-svid keys: BND-N07). */
  witSvidKeys(): KeyResolver {
    return this.installed().witResolver;
  }

  /** The X.509 authorities (`use: x509-svid`, each `x5c[0]`) that anchor X509-SVID chains of this domain. */
  x509Authorities(): readonly X509Certificate[] {
    return this.installed().x509;
  }

  /** The public JWKs of one use, as installed (for diagnostics and for callers that need a list). */
  keys(use: 'jwt-svid' | 'wit-svid'): readonly JWK[] {
    const bundle = this.installed();
    return use === 'jwt-svid' ? bundle.jwtSvid : bundle.witSvid;
  }

  /**
   * Reads the file or fetches the endpoint once now (single flight: concurrent callers share one
   * load). Resolves true when a bundle was installed or confirmed unchanged. Never rejects.
   */
  refresh(): Promise<boolean> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private installed(): InstalledBundle {
    const bundle = this.current;
    if (bundle === undefined) throw this.unavailable('no bundle loaded');
    if (this.isStale()) {
      if (!this.staleLogged) {
        this.staleLogged = true;
        this.options.logger.error({ trustDomain: this.trustDomain, lastSuccessAt: this.status().lastSuccessAt, maxStaleMs: this.maxStaleMs, err: this.lastError }, 'trust bundle is older than maxStale; SVIDs of this trust domain are refused');
      }
      throw this.unavailable(`bundle not refreshed for more than ${this.maxStaleMs}ms`);
    }
    return bundle;
  }

  /**
   * An endpoint's bundle is stale when fetching it has failed since the last success, longer than
   * maxStale ago. A healthy endpoint polled less often than maxStale never makes it stale.
   */
  private isStale(): boolean {
    if (!('url' in this.options.source) || this.lastSuccessAt === undefined || this.failures === 0) return false;
    return this.now() - this.lastSuccessAt > this.maxStaleMs;
  }

  /**
   * The bundle's keys of one use, asking the endpoint once more when none matches the token's
   * `kid` (a key rotated in since the last poll), at most once per cooldown. Built once per
   * installed bundle, so callers may use its identity to tell bundles apart.
   */
  private refetchingResolver(use: 'jwt-svid' | 'wit-svid', local: KeyResolver): KeyResolver {
    const resolver: KeyResolver = async (header, token) => {
      try {
        return await local(header, token);
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey) || !('url' in this.options.source)) throw err;
        const now = this.now();
        if (now - this.lastUnknownKeyFetchAt < (this.options.unknownKeyCooldownMs ?? 5000)) throw err;
        this.lastUnknownKeyFetchAt = now;
        await this.refresh();
        const fresh = use === 'jwt-svid' ? this.installed().jwtResolver : this.installed().witResolver;
        if (fresh === resolver) throw err;
        return fresh(header, token);
      }
    };
    return resolver;
  }

  private unavailable(why: string): AgentwardError {
    const reason = this.lastError === undefined ? why : `${why}: ${this.lastError}`;
    return new AgentwardError('ERR_KEYS_UNAVAILABLE', `The trust bundle of ${this.trustDomain} is unavailable; retry later.`, { cause: new Error(reason) });
  }

  private refreshMs(): number {
    return this.current?.refreshHintMs ?? this.defaultRefreshMs;
  }

  private async load(): Promise<boolean> {
    const source = this.options.source;
    const location = 'url' in source ? source.url : source.file;
    try {
      const document = 'url' in source ? await fetchJson(source.url, this.fetchOptions()) : await readJsonFile(source.file);
      const parsed = parseBundle(document, this.options.logger.child({ trustDomain: this.trustDomain, source: location }));
      // Federation §4.1: spiffe_sequence only grows. An older answer (a stale replica or a replay)
      // must not roll back a rotation. Files are the operator's own and may be reset.
      const previous = this.current?.sequence;
      if ('url' in source && previous !== undefined && parsed.sequence !== undefined && parsed.sequence < previous) {
        throw new Error(`spiffe_sequence went backwards (${parsed.sequence} < ${previous}); keeping sequence ${previous}`);
      }
      this.install(parsed, location);
      this.lastSuccessAt = this.now();
      this.counts.refreshes++;
      this.lastError = undefined;
      this.failures = 0;
      this.staleLogged = false;
      return true;
    } catch (err) {
      this.failures++;
      this.counts.failures++;
      this.lastError = err instanceof Error ? err.message : String(err);
      this.options.logger.warn({ trustDomain: this.trustDomain, source: location, err: this.lastError, failures: this.failures, keptSequence: this.current?.sequence ?? null, ready: this.ready }, 'trust bundle could not be loaded; keeping the last good bundle');
      return false;
    }
  }

  private fetchOptions() {
    return { timeoutMs: this.options.timeoutMs, ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}) };
  }

  private install(parsed: ParsedBundle, location: string): void {
    const old = this.current;
    if (old !== undefined && old.digest === parsed.digest) return;
    this.current = {
      ...parsed,
      jwtResolver: this.refetchingResolver('jwt-svid', createLocalJWKSet({ keys: parsed.jwtSvid })),
      witResolver: this.refetchingResolver('wit-svid', createLocalJWKSet({ keys: parsed.witSvid })),
    };
    const removed = {
      jwtSvid: removedKids(old?.jwtSvid ?? [], parsed.jwtSvid),
      witSvid: removedKids(old?.witSvid ?? [], parsed.witSvid),
      x509Svid: removedAuthorities(old?.x509 ?? [], parsed.x509),
    };
    this.options.logger.info(
      {
        trustDomain: this.trustDomain,
        source: location,
        sequence: parsed.sequence ?? null,
        jwtSvidKids: parsed.jwtSvid.map((k) => k.kid),
        witSvidKids: parsed.witSvid.map((k) => k.kid ?? null),
        x509Authorities: parsed.x509.map((c) => c.subject),
        rotated: old !== undefined,
      },
      'trust bundle loaded',
    );
    if (old !== undefined && (removed.jwtSvid.size > 0 || removed.witSvid.size > 0 || removed.x509Svid.size > 0)) {
      for (const listener of this.listeners) listener(this.trustDomain, removed);
    }
    for (const listener of this.installListeners) listener(this.trustDomain);
  }

  /**
   * Next poll after the refresh hint on success; after a failure, retry sooner (1 s, 2 s, 4 s ...
   * capped at the refresh interval) so a short outage does not eat into maxStale.
   */
  private schedule(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    const interval = this.refreshMs();
    const delay = this.failures === 0 ? interval : Math.min(1000 * 2 ** (this.failures - 1), interval);
    this.timer = setTimeout(() => {
      void this.refresh().finally(() => this.schedule());
    }, Math.min(Math.max(delay, 0), MAX_TIMER_MS));
    this.timer.unref();
  }

  /** Watches the file (src/file-watch.ts: through its folder) and reloads it when it changes. */
  private watch(file: string): void {
    this.watcher = watchFiles([file], {
      debounceMs: this.options.debounceMs ?? 100,
      onChange: () => void this.refresh(),
      onError: (err, dir) => this.options.logger.error({ err, dir, trustDomain: this.trustDomain }, 'trust bundle file watcher failed; reload is off for this folder'),
    });
  }
}

/**
 * Checks a bundle document (SPIFFE Trust Domain and Bundle §4). The document itself must be a JWK
 * Set with a `keys` array and well-typed `spiffe_*` members, or it is refused whole. Single
 * entries that are not usable are ignored, each logged with why:
 * - `kty` missing or not EC/RSA/OKP, or `use` missing or unknown (§4.2: "ignore the element"; BND-N01, N02);
 * - private key members present (a bundle publishes public keys only);
 * - `jwt-svid` without `kid` (§4.2.2 requires it; JWT-SVID §3 says a JWT-SVID names its key). Decision:
 *   the entry is ignored, not the whole bundle, like every other unusable entry, so one bad entry
 *   cannot take the other keys of the domain down;
 * - `x509-svid` without a parseable `x5c[0]` (BND-N03), whose certificate is not a CA, or whose
 *   certificate key differs from the JWK's key.
 */
export function parseBundle(document: unknown, logger: Logger): ParsedBundle {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) throw new Error('bundle is not a JSON object');
  const doc = document as { keys?: unknown; spiffe_sequence?: unknown; spiffe_refresh_hint?: unknown };
  if (!Array.isArray(doc.keys)) throw new Error('bundle has no "keys" array (SPIFFE Trust Domain and Bundle §4.1)');
  const sequence = doc.spiffe_sequence;
  if (sequence !== undefined && !(typeof sequence === 'number' && Number.isSafeInteger(sequence) && sequence >= 0)) {
    throw new Error('bundle spiffe_sequence is not a non-negative integer');
  }
  const hint = doc.spiffe_refresh_hint;
  if (hint !== undefined && !(typeof hint === 'number' && Number.isFinite(hint) && hint > 0)) {
    throw new Error('bundle spiffe_refresh_hint is not a positive number of seconds');
  }
  const jwtSvid: JWK[] = [];
  const witSvid: JWK[] = [];
  const x509: X509Certificate[] = [];
  doc.keys.forEach((entry: unknown, index: number) => {
    const ignore = (why: string, level: 'debug' | 'warn' = 'warn') => logger[level]({ index }, `trust bundle entry ignored: ${why}`);
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return ignore('not a JSON object');
    const jwk = entry as JWK & { use?: unknown; kty?: unknown; x5c?: unknown };
    if (typeof jwk.use !== 'string' || !USES.has(jwk.use)) return ignore(`use ${JSON.stringify(jwk.use ?? null)} is not x509-svid, jwt-svid or wit-svid`, 'debug');
    if (typeof jwk.kty !== 'string' || !KEY_TYPES.has(jwk.kty)) return ignore(`kty ${JSON.stringify(jwk.kty ?? null)} is not EC, RSA or OKP`);
    if (PRIVATE_MEMBERS.some((m) => m in jwk)) return ignore('it holds private key material');
    if (jwk.use === 'jwt-svid') {
      if (typeof jwk.kid !== 'string' || jwk.kid === '') return ignore('jwt-svid entry without kid (SPIFFE Trust Domain and Bundle §4.2.2)');
      jwtSvid.push(publicJwk(jwk));
    } else if (jwk.use === 'wit-svid') {
      witSvid.push(publicJwk(jwk));
    } else {
      if (!Array.isArray(jwk.x5c) || typeof jwk.x5c[0] !== 'string') return ignore('x509-svid entry without x5c (BND-N03)');
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(Buffer.from(jwk.x5c[0], 'base64'));
      } catch {
        return ignore('x5c[0] is not a DER certificate');
      }
      if (!cert.ca) return ignore(`x5c[0] (${cert.subject}) is not a CA certificate`);
      if (!sameKey(cert, jwk)) return ignore('x5c[0] public key differs from the JWK');
      x509.push(cert);
    }
  });
  const digest = createHash('sha256')
    .update(JSON.stringify([jwtSvid, witSvid, x509.map((c) => c.fingerprint256), hint ?? null]))
    .digest('base64url');
  return {
    sequence: sequence as number | undefined,
    refreshHintMs: hint === undefined ? undefined : Math.min(Math.max((hint as number) * 1000, MIN_REFRESH_MS), MAX_REFRESH_MS),
    jwtSvid,
    witSvid,
    x509,
    digest,
  };
}

/** The JWK without `use` (ours, not jose's `sig`/`enc`), so jose's own `use` check never trips on it. */
function publicJwk(jwk: JWK): JWK {
  const { use: _use, ...rest } = jwk;
  return rest;
}

function sameKey(cert: X509Certificate, jwk: JWK): boolean {
  const key = cert.publicKey.export({ format: 'jwk' });
  if (key.kty !== jwk.kty) return false;
  if (key.kty === 'RSA') return key.n === jwk.n && key.e === jwk.e;
  return key.crv === jwk.crv && key.x === jwk.x && (key.y ?? undefined) === (jwk.y ?? undefined);
}

function removedKids(before: readonly JWK[], after: readonly JWK[]): Set<string | undefined> {
  const next = new Set(after.map((k) => JSON.stringify(k)));
  return new Set(before.filter((k) => !next.has(JSON.stringify(k))).map((k) => k.kid));
}

function removedAuthorities(before: readonly X509Certificate[], after: readonly X509Certificate[]): Set<string> {
  const next = new Set(after.map((c) => c.fingerprint256));
  return new Set(before.map((c) => c.fingerprint256).filter((f) => !next.has(f)));
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

/** One `workload.trustDomains[]` entry's bundle as this module reads it (config/schema.ts describes the file). */
export interface TrustBundleSettings {
  name: string;
  bundle: { file?: string | undefined; url?: string | undefined; maxStale: string; timeout: string };
}

/**
 * One bundle per trust domain, never merged (SPIFFE Federation §4.2). `cooldown` is
 * `oauth.keys.cooldown`: the least time between refetches caused by an unknown `kid`.
 */
export function buildTrustBundles(domains: readonly TrustBundleSettings[], cooldown: string, services: Services): Map<string, TrustBundle> {
  return new Map(
    domains.map((domain) => [
      domain.name,
      new TrustBundle({
        trustDomain: domain.name,
        // config/load.ts guarantees exactly one of file and url.
        source: domain.bundle.file !== undefined ? { file: resolve(services.baseDir, domain.bundle.file) } : { url: domain.bundle.url! },
        maxStaleMs: durationMs(domain.bundle.maxStale),
        timeoutMs: durationMs(domain.bundle.timeout),
        unknownKeyCooldownMs: durationMs(cooldown),
        logger: services.logger,
        now: services.now,
        ...(services.dispatcher ? { dispatcher: services.dispatcher } : {}),
      }),
    ]),
  );
}
