/**
 * The replay memory every proof shares (DPoP `jti`, RFC 9449 §11.1; WPT `jti`, wpt-02 §3.1.4;
 * HTTP-signature `nonce`, http-signature §3), as one small interface with two implementations:
 * the bounded memory of one process (src/credentials/replay-cache.ts) and Redis, shared by every
 * process and replica (src/state/redis.ts, `SET key 1 NX PX ttl`, atomic).
 *
 * A verifier checks a proof fully, then hands back a `ReplayClaim` (a hash of the proof id, never
 * the proof). The pipeline collects the claims of one request (a DPoP proof, a WPT, an HTTP
 * signature) and makes them together with `claimAll`: one synchronous step in memory, one round
 * trip to Redis. A claim that finds its id already taken refuses the request with its verifier's
 * code; a claim that cannot be made at all (Redis unreachable or too slow) refuses it with 503
 * ERR_STATE_UNAVAILABLE: a proof is never accepted unchecked.
 */

export type ClaimResult = 'new' | 'seen';

/** One kind of proof id (its own namespace): `dpop`, `wpt`, `hsig`. */
export interface ReplaySpace {
  readonly name: string;
  readonly store: ReplayStore;
  /**
   * Whether a proof with this mark (its `iat` or `exp`, seconds) must be refused because ids as
   * old were forgotten to bound memory. Always false for Redis, which forgets nothing before its
   * ttl (docs/operations.md: `maxmemory-policy noeviction`).
   */
  forgotten(mark: number): boolean;
  /** Ids held in this process (memory); 0 for a shared store, whose size is not asked per request. */
  readonly size: number;
}

/** A proof id to record, made only once every other check of its proof has passed. */
export interface ReplayClaim {
  readonly space: ReplaySpace;
  /** A hash of the proof id (base64url); the store prefixes it with its namespace. */
  readonly key: string;
  /** The proof's `iat` or `exp` (seconds), for the forgotten rule of the memory store. */
  readonly mark: number;
  /** How long the id must be remembered: until its proof can no longer be accepted anyway. */
  readonly ttlMs: number;
  /** The refusal when the id was already taken (the verifier's own code). */
  readonly replayed: () => Error;
}

export interface ReplayStore {
  readonly backend: 'memory' | 'redis';
  /** A namespace of this store; `max` bounds the ids the memory store holds in it. */
  space(name: string, options: { max: number }): ReplaySpace;
  /**
   * Records every claim that is new and says which were seen, in the order given: atomically per
   * id, in one step (memory: no await between check and insert) or one round trip (Redis).
   * Rejects with ERR_STATE_UNAVAILABLE when the store cannot answer within its timeout.
   */
  claim(claims: readonly ReplayClaim[]): Promise<readonly ClaimResult[]>;
}

/**
 * Makes every claim of one request together and refuses the request when any id was seen (the
 * first one's code, in the order the proofs were verified). Claims of another store (none in
 * practice: the composition root builds one) are made in the same turn.
 */
export async function claimAll(claims: readonly ReplayClaim[]): Promise<void> {
  if (claims.length === 0) return;
  const store = claims[0]!.space.store;
  const results = claims.every((c) => c.space.store === store)
    ? await store.claim(claims)
    : (await Promise.all(claims.map((c) => c.space.store.claim([c])))).map((r) => r[0]!);
  const seen = results.indexOf('seen');
  if (seen !== -1) throw claims[seen]!.replayed();
}
