/**
 * The state side of the composition root (`state`, docs/operations.md "Shared state"): the replay
 * store every proof verifier records ids in, and, with `state.backend: redis`, the Redis
 * connections that also share the DPoP nonce key (below) and revocation marks (app/signals.ts).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import type { DpopNonces } from '../credentials/dpop.ts';
import { MemoryReplayStore } from '../credentials/replay-cache.ts';
import { durationMs } from '../duration.ts';
import type { Services } from '../services.ts';
import { RedisState } from '../state/redis.ts';
import type { ReplayStore } from '../state/replay.ts';

export interface StateParts {
  replay: ReplayStore;
  /** Undefined with `state.backend: memory`. */
  redis: RedisState | undefined;
  /** For /readyz: `{ backend, connected, lastError, ... }`. */
  status(): Record<string, unknown>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Builds the state store. `local` keeps everything in this process whatever `state` says
 * (`agentward explain`: a described request must not take a proof id in the shared store).
 */
export function buildState(loaded: LoadedConfig, services: Services, local = false): StateParts {
  const { config, baseDir } = loaded;
  const settings = config.state.redis;
  if (config.state.backend !== 'redis' || settings === undefined || local) {
    return { replay: new MemoryReplayStore(services.now), redis: undefined, status: () => ({ backend: 'memory' }), start: async () => undefined, close: async () => undefined };
  }
  const caFile = settings.tls?.caFile;
  const connectTimeoutMs = durationMs(settings.connectTimeout);
  const redis = new RedisState({
    url: settings.url,
    username: settings.username,
    password: loaded.secrets.get('state.redis.password'),
    // Checked readable by app/file-checks.ts before anything is built.
    ca: caFile === undefined ? undefined : readFileSync(resolve(baseDir, caFile)),
    keyPrefix: settings.keyPrefix,
    connectTimeoutMs,
    commandTimeoutMs: durationMs(settings.commandTimeout),
    logger: services.logger,
    now: services.now,
  });
  return { replay: redis, redis, status: () => ({ ...redis.status() }), start: () => redis.start(connectTimeoutMs), close: () => redis.close() };
}

/**
 * DPoP nonces (RFC 9449 §9) are HMACs of a time slot: with one key for every replica, a nonce one
 * replica issued is accepted by all. The first replica to connect stores its key (`SET NX`), the
 * others adopt it, on every reconnection too (a Redis restarted empty gets the key back from the
 * first replica that reconnects, so nonces already issued stay valid). Until Redis is reached a
 * replica uses its own key: a client may then get one extra `use_dpop_nonce` round.
 */
export function shareNonceKey(redis: RedisState, nonces: DpopNonces): void {
  redis.onReady(async () => nonces.useKey(await redis.sharedSecret('dpop-nonce-key', nonces.secret)));
}
