/**
 * The bounded memory of proof ids that stops replays: DPoP `jti` (RFC 9449 §11.1), WPT `jti`
 * (wpt-02 §3.1.4) and HTTP-signature `nonce` (http-signature §3). Ids are keyed by a hash (a token
 * is a secret, RFC 9700 §4.9) and kept until their proof can no longer be accepted anyway.
 *
 * Memory is bounded: when the cache is full the oldest ids are forgotten, and from then on every
 * proof whose mark (its `iat` or `exp`, seconds) is at or before a forgotten one is refused by the
 * caller (`forgotten(mark)`), so a forgotten id can never be replayed. Under a flood this refuses
 * some old-but-valid proofs; it never accepts a replay.
 */
import { LRUCache } from 'lru-cache';
import type { ClaimResult, ReplayClaim, ReplaySpace, ReplayStore } from '../state/replay.ts';

export interface ReplayCacheOptions {
  /** Ids remembered at most. */
  max: number;
  /** How long an id is kept when `add` gives no ttl, ms. */
  ttlMs?: number;
  /** Clock, ms since the epoch. Default `Date.now`. */
  now?: () => number;
}

export class ReplayCache {
  private readonly seen: LRUCache<string, number>;
  private forgottenUpTo = -Infinity;

  constructor(options: ReplayCacheOptions) {
    this.seen = new LRUCache<string, number>({
      // Bounded by count through maxSize (every id weighs 1) rather than `max`: with `max`
      // lru-cache allocates its arrays for every id at construction, ~8 MiB for the default
      // 200,000 DPoP ids, resident in every process whether or not a proof ever comes
      // (bench/README.md, "Memory"). These arrays grow with the ids actually held.
      maxSize: options.max,
      sizeCalculation: () => 1,
      ...(options.ttlMs === undefined ? {} : { ttl: options.ttlMs }),
      ttlAutopurge: false,
      perf: { now: options.now ?? Date.now },
      dispose: (mark, _key, reason) => {
        if (reason === 'evict') this.forgottenUpTo = Math.max(this.forgottenUpTo, mark);
      },
    });
  }

  /** Whether a proof with this mark (seconds) must be refused because ids as old were forgotten. */
  forgotten(mark: number): boolean {
    return mark <= this.forgottenUpTo;
  }

  has(key: string): boolean {
    return this.seen.has(key);
  }

  /**
   * Remembers `key`. Call it in the same synchronous step as `has` (no await between), so two
   * concurrent requests cannot both pass.
   */
  add(key: string, mark: number, ttlMs?: number): void {
    this.seen.set(key, mark, ttlMs === undefined ? undefined : { ttl: Math.max(1, Math.ceil(ttlMs)) });
  }

  /** Ids held now, expired ones dropped first (for tests and /readyz detail). */
  get size(): number {
    this.seen.purgeStale();
    return this.seen.size;
  }
}

/**
 * The replay store of one process (`state.backend: memory`, the default): one bounded
 * `ReplayCache` per namespace. A claim is checked and inserted in one synchronous step, so two
 * concurrent requests cannot both pass; ids forgotten to bound memory make older proofs refused
 * (`forgotten`), never accepted.
 */
export class MemoryReplayStore implements ReplayStore {
  readonly backend = 'memory';
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  space(name: string, options: { max: number }): ReplaySpace {
    const cache = new ReplayCache({ max: options.max, now: this.now });
    return {
      name,
      store: this,
      forgotten: (mark) => cache.forgotten(mark),
      get size() {
        return cache.size;
      },
      // The cache behind the space, for `claim` (claims only ever come from this store's spaces).
      [CACHE]: cache,
    } as ReplaySpace;
  }

  claim(claims: readonly ReplayClaim[]): Promise<readonly ClaimResult[]> {
    const results = claims.map((claim): ClaimResult => {
      const cache = (claim.space as MemorySpace)[CACHE];
      if (cache.has(claim.key)) return 'seen';
      cache.add(claim.key, claim.mark, claim.ttlMs);
      return 'new';
    });
    return Promise.resolve(results);
  }
}

const CACHE = Symbol('replay cache');
type MemorySpace = ReplaySpace & { [CACHE]: ReplayCache };
