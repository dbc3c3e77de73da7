/**
 * The signing keys of one issuer (an OAuth authorization server, a Txn-Token service, a WIT
 * issuer): found through configuration (a URL or a file) or metadata discovery
 * (RFC 8414 §3, OpenID Connect Discovery §4), cached, refreshed in the background, and refetched
 * once on an unknown `kid` (single flight, with a cooldown). A request never waits longer than
 * one fetch deadline, and during an outage it does not wait at all: after a failed fetch, calls
 * fail at once with ERR_KEYS_UNAVAILABLE until the retry timer has tried again.
 */
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { AgentwardError } from '../errors.ts';
import { fetchJson } from '../outbound/http.ts';
import { readJsonFile } from './json-file.ts';
import type { Services } from '../services.ts';

/** Where an issuer's key set comes from: the `oauth.issuers[]` (or `workload.witIssuers[]`) fields this module reads. */
export interface KeySetSource {
  /** The issuer identifier; discovery's metadata must name it exactly (RFC 8414 §3.3). */
  issuer: string;
  /** The JWK Set URL; when absent (and no `jwksFile`) it is discovered. */
  jwksUri?: string | undefined;
  /**
   * A JWK Set file (absolute path) instead of a URL: read like a fetch, at start, every `maxAgeMs`
   * and on an unknown `kid` (with the cooldown), with the same rotation and failure handling.
   */
  jwksFile?: string | undefined;
  /**
   * Which metadata document names `jwks_uri`: RFC 8414, OpenID Connect Discovery, or both in turn;
   * or an SSF transmitter's configuration (SSF 1.0 §7.2, path-inserted as RFC 8414 does).
   */
  discovery: 'auto' | 'oauth-authorization-server' | 'openid-configuration' | 'ssf-configuration';
}

export interface IssuerKeysOptions {
  maxAgeMs: number;
  cooldownMs: number;
  timeoutMs: number;
  dispatcher?: Dispatcher;
  logger: Logger;
  now?: () => number;
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;
export type VerificationKey = Awaited<ReturnType<KeyResolver>>;

/**
 * Called when the key set changes, with the `kid`s whose key was removed or replaced (a key
 * without `kid` counts as `undefined`). Tokens verified with those keys must be verified again.
 */
export type RotationListener = (issuer: string, staleKids: ReadonlySet<string | undefined>) => void;

/** setTimeout takes at most 2^31-1 ms; longer delays fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the metrics read of a key set or trust bundle (src/observability/metrics.ts). */
export interface KeySetRefreshStats {
  refreshes: number;
  failures: number;
  /** When the key set in use was loaded, ms since the epoch; undefined before the first load. */
  loadedAt: number | undefined;
}

export class IssuerKeys {
  readonly issuer: string;
  private readonly config: KeySetSource;
  private readonly options: IssuerKeysOptions;
  private readonly now: () => number;
  private resolver: KeyResolver | undefined;
  /** Each published key's JSON by `kid`, to tell which keys a refresh removed or replaced. */
  private keysByKid = new Map<string | undefined, string>();
  private jwksUri: string | undefined;
  private inflight: Promise<void> | undefined;
  private lastFetchAt = -Infinity;
  /** After a failed fetch, the time before which calls fail without trying. */
  private retryAt = -Infinity;
  private failures = 0;
  private lastError: string | undefined;
  /** Cumulative loads and failed loads, and when the current key set was loaded (ms): for metrics. */
  private readonly counts = { refreshes: 0, failures: 0, loadedAt: undefined as number | undefined };
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly listeners: RotationListener[] = [];

  constructor(config: KeySetSource, options: IssuerKeysOptions) {
    this.issuer = config.issuer;
    this.config = config;
    this.options = options;
    this.now = options.now ?? Date.now;
    this.jwksUri = config.jwksUri;
  }

  /** True once a key set has been loaded. */
  get ready(): boolean {
    return this.resolver !== undefined;
  }

  status(): { issuer: string; ready: boolean; jwksUri: string | null; lastError: string | null } {
    return { issuer: this.issuer, ready: this.ready, jwksUri: this.config.jwksFile ?? this.jwksUri ?? null, lastError: this.lastError ?? null };
  }

  /** Loads that worked and that failed since start, and when the current key set was loaded (ms since the epoch). */
  refreshStats(): KeySetRefreshStats {
    return { refreshes: this.counts.refreshes, failures: this.counts.failures, loadedAt: this.counts.loadedAt };
  }

  onRotation(listener: RotationListener): void {
    this.listeners.push(listener);
  }

  /** First load, then the background refresh. Resolves whether or not the first load worked. */
  async start(): Promise<void> {
    await this.refresh().catch(() => undefined);
    // On failure, load() has already scheduled the retry.
    if (this.resolver) this.schedule();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The key for a token header, or a coded error. */
  async getKey(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<VerificationKey> {
    if (!this.resolver) {
      await this.refreshIfAllowed();
      if (!this.resolver) throw this.unavailable();
    }
    try {
      return await this.resolver(header, token);
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw this.keyError(err);
    }
    // Unknown kid: the issuer may have rotated. Refetch once (or join the refetch already running
    // for another caller), unless we fetched very recently.
    if (this.inflight || this.now() - this.lastFetchAt >= this.options.cooldownMs) {
      await this.refreshIfAllowed();
      try {
        return await this.resolver(header, token);
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw this.keyError(err);
      }
    }
    // If the key set could not be refreshed, the key may exist: say "unavailable", not "invalid".
    if (this.failures > 0) throw this.unavailable();
    throw new AgentwardError('ERR_TOKEN_KEY_UNKNOWN', "No key of the issuer's key set matches the token's kid and alg.");
  }

  private keyError(err: unknown): AgentwardError {
    if (err instanceof joseErrors.JWKSMultipleMatchingKeys) {
      return new AgentwardError('ERR_TOKEN_KEY_UNKNOWN', 'Several keys match a token without kid; the token must name its key.', { cause: err });
    }
    return new AgentwardError('ERR_TOKEN_KEY_UNKNOWN', undefined, { cause: err });
  }

  private unavailable(): AgentwardError {
    return new AgentwardError('ERR_KEYS_UNAVAILABLE', undefined, { cause: new Error(this.lastError ?? 'keys not loaded') });
  }

  /** Joins a running fetch or starts one, unless a recent failure says to wait for the retry timer. */
  private async refreshIfAllowed(): Promise<void> {
    if (!this.inflight && this.now() < this.retryAt) return;
    await this.refresh().catch(() => undefined);
  }

  /** Single flight: concurrent callers share one fetch. */
  private refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(): Promise<void> {
    this.lastFetchAt = this.now();
    // One deadline for the whole refresh (discovery and key set), so no caller waits longer
    // than oauth.keys.timeout.
    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    try {
      const file = this.config.jwksFile;
      const uri = file ?? this.jwksUri ?? (await this.discover(deadline));
      const jwks = file !== undefined ? await readJsonFile(file) : await fetchJson(uri, this.fetchOptions(deadline));
      if (!isJwks(jwks)) throw new Error(`${uri} is not a JWK Set (RFC 7517 §5)`);
      if (file === undefined) this.jwksUri = uri;
      this.install(jwks);
      this.counts.refreshes++;
      this.counts.loadedAt = this.now();
      this.failures = 0;
      this.retryAt = -Infinity;
      this.lastError = undefined;
    } catch (err) {
      this.failures++;
      this.counts.failures++;
      this.lastError = (err as Error).message;
      // Back off 1s, 2s, 4s ... up to the cooldown; calls in between fail fast.
      this.retryAt = this.now() + Math.min(1000 * 2 ** (this.failures - 1), Math.max(this.options.cooldownMs, 1000));
      this.options.logger.warn({ issuer: this.issuer, err: this.lastError, failures: this.failures }, 'issuer keys could not be fetched');
      if (!this.closed && this.resolver === undefined) this.schedule(this.retryAt - this.now());
      throw err;
    }
  }

  private fetchOptions(signal: AbortSignal) {
    return { timeoutMs: this.options.timeoutMs, signal, ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}) };
  }

  /** RFC 8414 §3 (path-inserted) and OIDC Discovery §4 (appended); `issuer` must match exactly (RFC 8414 §3.3). */
  private async discover(deadline: AbortSignal): Promise<string> {
    const candidates = metadataUrls(this.issuer, this.config.discovery);
    let lastError: unknown;
    for (const url of candidates) {
      let metadata: unknown;
      try {
        metadata = await fetchJson(url, this.fetchOptions(deadline));
      } catch (err) {
        lastError = err;
        continue;
      }
      const m = metadata as { issuer?: unknown; jwks_uri?: unknown };
      if (m.issuer !== this.issuer) {
        throw new Error(`metadata at ${url} names issuer ${JSON.stringify(m.issuer)}, not ${this.issuer} (RFC 8414 §3.3)`);
      }
      if (typeof m.jwks_uri !== 'string') throw new Error(`metadata at ${url} has no jwks_uri`);
      const jwksUri = new URL(m.jwks_uri);
      if (jwksUri.protocol !== 'https:' && new URL(this.issuer).protocol === 'https:') throw new Error(`metadata at ${url} names a non-https jwks_uri`);
      return jwksUri.href;
    }
    throw lastError instanceof Error ? lastError : new Error('no metadata found');
  }

  private install(jwks: JSONWebKeySet): void {
    const next = new Map<string | undefined, string>();
    for (const key of jwks.keys) next.set(key.kid, `${next.get(key.kid) ?? ''}${JSON.stringify(key)}`);
    const stale = new Set<string | undefined>();
    for (const [kid, json] of this.keysByKid) if (next.get(kid) !== json) stale.add(kid);
    if (this.resolver !== undefined && stale.size === 0 && next.size === this.keysByKid.size) return;
    const rotated = this.resolver !== undefined;
    this.keysByKid = next;
    this.resolver = createLocalJWKSet(jwks);
    this.options.logger.info({ issuer: this.issuer, kids: [...next.keys()], rotated, removedOrReplaced: [...stale] }, 'issuer keys loaded');
    if (rotated && stale.size > 0) for (const listener of this.listeners) listener(this.issuer, stale);
  }

  private schedule(delayMs = this.options.maxAgeMs): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.refresh()
        .catch(() => undefined)
        .finally(() => {
          if (this.resolver !== undefined) this.schedule();
        });
    }, Math.min(Math.max(delayMs, 0), MAX_TIMER_MS));
    this.timer.unref();
  }
}

function isJwks(value: unknown): value is JSONWebKeySet {
  return typeof value === 'object' && value !== null && Array.isArray((value as { keys?: unknown }).keys);
}

/** The metadata URLs to try for an issuer, in order. */
export function metadataUrls(issuer: string, discovery: KeySetSource['discovery']): string[] {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  const oauth = `${url.origin}/.well-known/oauth-authorization-server${path}`;
  const oidc = `${url.origin}${path}/.well-known/openid-configuration`;
  if (discovery === 'ssf-configuration') return [`${url.origin}/.well-known/ssf-configuration${path}`];
  if (discovery === 'oauth-authorization-server') return [oauth];
  if (discovery === 'openid-configuration') return [oidc];
  return [oauth, oidc];
}

/** Every key set (issuers, the Txn-Token service) is fetched and refreshed the same way (`oauth.keys`). */
export function keySetOptions(services: Services): IssuerKeysOptions {
  return { ...services.keySets, logger: services.logger, now: services.now, ...(services.dispatcher ? { dispatcher: services.dispatcher } : {}) };
}
