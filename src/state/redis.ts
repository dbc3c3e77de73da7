/**
 * Shared state on Redis or Valkey (`state.backend: redis`, docs/operations.md "Shared state"): what
 * every agentward process and replica must agree on.
 *
 * - Replay (src/state/replay.ts): a proof id is claimed with `SET <prefix>replay:<space>:<hash> 1
 *   NX PX <ttl>`, atomic in Redis, so the same proof sent to two replicas is accepted by one.
 *   The claims of one request go in one pipeline: one round trip per request.
 * - Shared secrets (`sharedSecret`): `SET NX` of this process's candidate, then `GET`: the first
 *   writer wins and everyone reads its value (the DPoP nonce key).
 * - Shared logs (`sharedLog`): a message published to every replica (pub/sub, on a connection of
 *   its own) and kept in a sorted set by expiry, so a replica that starts or reconnects later
 *   reads what it missed (revocation marks, src/app/signals.ts).
 *
 * Failure: every command has a deadline (`commandTimeoutMs`), nothing queues while disconnected
 * (`enableOfflineQueue: false`, no retries per request), so a request waits at most one timeout
 * and then fails closed (ERR_STATE_UNAVAILABLE). The client reconnects by itself with back-off
 * (100 ms doubling, at most 1 s), and on every (re)connection `onReady` handlers run again.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { AgentwardError } from '../errors.ts';
import type { ClaimResult, ReplayClaim, ReplaySpace, ReplayStore } from './replay.ts';

export interface RedisStateOptions {
  /** `redis://host:port[/db]` or `rediss://` (TLS), without credentials. */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  /** PEM CA certificates for a `rediss://` server; default: the system's. */
  ca?: Buffer | undefined;
  /** Put before every key and channel name (`state.redis.keyPrefix`). */
  keyPrefix: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  logger: Logger;
  now: () => number;
}

export interface SharedStateStatus {
  backend: 'redis';
  connected: boolean;
  /** The last connection or command failure, cleared on reconnection. */
  lastError: string | null;
  /** When the connection last came up or went down (ISO time). */
  since: string | null;
  keyPrefix: string;
}

/** Messages every replica receives, kept (sorted by expiry) for replicas that start or reconnect later. */
export interface SharedLog {
  /** Stores the message until `expiresAtMs` and publishes it, in one round trip. */
  publish(body: string, expiresAtMs: number): Promise<void>;
  /** The messages not yet expired, oldest expiry first (expired ones are removed). */
  load(): Promise<string[]>;
}

export class RedisState implements ReplayStore {
  readonly backend = 'redis';
  /** This process, in published messages: its own are not applied twice. */
  readonly instance = randomUUID();
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly now: () => number;
  private connected = false;
  private lastError: string | null = null;
  private since: number | null = null;
  private readonly readyHandlers: (() => Promise<void>)[] = [];
  private readonly channels = new Map<string, (body: string) => void>();
  private closing = false;
  /** The ready handlers' run after the latest connection (awaited by `start`). */
  private settled: Promise<void> = Promise.resolve();

  constructor(options: RedisStateOptions) {
    // ioredis is loaded here, the one place, and only with `state.backend: redis`: about 6 MiB of
    // RSS that a process keeping its state in memory does not pay (bench/README.md, issue 12).
    // `require` keeps the composition root synchronous; ioredis is CommonJS.
    const { Redis } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    this.prefix = options.keyPrefix;
    this.logger = options.logger;
    this.now = options.now;
    const common: RedisOptions = {
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.url.startsWith('rediss:') ? { tls: options.ca === undefined ? {} : { ca: options.ca } } : {}),
      connectTimeout: options.connectTimeoutMs,
      // Back-off between reconnection attempts: 100 ms, doubling, at most 1 s; never gives up.
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times - 1, 4), 1000),
      lazyConnect: true,
      enableReadyCheck: true,
    };
    this.client = new Redis(options.url, {
      ...common,
      commandTimeout: options.commandTimeoutMs,
      // A request never waits for a connection that is down: its command fails at once.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectionName: 'agentward',
    });
    // Subscriptions are made on every (re)connection of their own connection, then the ready
    // handlers run again: what was published while it was down is read from the stored log.
    this.subscriber = new Redis(options.url, { ...common, autoResubscribe: false, connectionName: 'agentward-sub' });
    this.client.on('ready', () => {
      this.up();
      this.settled = this.runReadyHandlers();
    });
    this.client.on('error', (err: Error) => this.failed(err));
    this.client.on('close', () => this.down());
    this.subscriber.on('ready', () => {
      if (this.channels.size === 0) return;
      this.subscriber.subscribe(...this.channels.keys()).then(
        () => void this.runReadyHandlers(),
        (err: unknown) => this.logger.error({ err: errorText(err) }, 'shared state: subscribing failed; retried on the next reconnection'),
      );
    });
    this.subscriber.on('error', (err: Error) => this.failed(err));
    this.subscriber.on('message', (channel: string, message: string) => this.deliver(channel, message));
  }

  // ------------------------------------------------------------ replay (src/state/replay.ts)

  space(name: string): ReplaySpace {
    // Redis forgets a key only at its ttl (with `maxmemory-policy noeviction`; a full Redis
    // refuses the SET, which fails closed): no proof is ever refused as possibly forgotten.
    return { name, store: this, forgotten: () => false, size: 0 };
  }

  async claim(claims: readonly ReplayClaim[]): Promise<readonly ClaimResult[]> {
    try {
      if (claims.length === 1) return [outcome(await this.client.set(this.replayKey(claims[0]!), '1', 'PX', ttl(claims[0]!), 'NX'))];
      // One round trip for the request's proofs: each SET NX is atomic on its own.
      const pipeline = this.client.pipeline();
      for (const claim of claims) pipeline.set(this.replayKey(claim), '1', 'PX', ttl(claim), 'NX');
      const results = await pipeline.exec();
      if (results === null) throw new Error('the pipeline was not executed');
      return results.map(([err, reply]) => {
        if (err) throw err;
        return outcome(reply);
      });
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  private replayKey(claim: ReplayClaim): string {
    return `${this.prefix}replay:${claim.space.name}:${claim.key}`;
  }

  // ------------------------------------------------------------ shared secrets and logs

  /**
   * The value every replica shares under `name`: this process's `candidate` if none is stored yet
   * (`SET NX`: the first writer wins), else the stored one. Kept without expiry.
   */
  async sharedSecret(name: string, candidate: Buffer): Promise<Buffer> {
    const key = `${this.prefix}${name}`;
    try {
      await this.client.set(key, candidate.toString('base64url'), 'NX');
      const stored = await this.client.get(key);
      if (stored === null || stored === '') throw new Error(`${key} vanished between SET NX and GET`);
      return Buffer.from(stored, 'base64url');
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** The shared log `name`; `onMessage` gets the messages other replicas publish. */
  sharedLog(name: string, onMessage: (body: string) => void): SharedLog {
    const key = `${this.prefix}${name}`;
    const channel = `${this.prefix}${name}`;
    this.channels.set(channel, onMessage);
    return {
      publish: async (body, expiresAtMs) => {
        try {
          const results = await this.client
            .multi()
            .zadd(key, expiresAtMs, body)
            .publish(channel, JSON.stringify({ from: this.instance, body }))
            .exec();
          const failed = results?.find(([err]) => err);
          if (results === null || failed) throw failed?.[0] ?? new Error('the transaction was discarded');
        } catch (err) {
          throw this.unavailable(err);
        }
      },
      load: async () => {
        try {
          const now = this.now();
          const results = await this.client.multi().zremrangebyscore(key, '-inf', now).zrangebyscore(key, now, '+inf').exec();
          const failed = results?.find(([err]) => err);
          if (results === null || failed) throw failed?.[0] ?? new Error('the transaction was discarded');
          return results[1]![1] as string[];
        } catch (err) {
          throw this.unavailable(err);
        }
      },
    };
  }

  /** Runs `handler` after every (re)connection of either connection (register before `start`). Its failures are logged. */
  onReady(handler: () => Promise<void>): void {
    this.readyHandlers.push(handler);
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * Connects both connections (subscribing once the subscriber is up), waiting at most one connect
   * timeout: a Redis that is down at start does not stop agentward (bearer traffic works, proofs
   * get 503 until it is reached; the client keeps retrying with back-off).
   */
  async start(connectTimeoutMs: number): Promise<void> {
    this.subscriber.connect().catch((err: Error) => this.failed(err));
    // Connected, and the ready handlers done (the shared nonce key adopted, marks loaded), so the
    // first requests see the shared state.
    const connected = this.client.connect().then(
      () => this.settled.then(() => true),
      (err: Error) => {
        // The 'error' event has the cause (ECONNREFUSED ...); this rejection only says "closed".
        this.lastError ??= errorText(err);
        return false;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((done) => (timer = setTimeout(() => done(false), connectTimeoutMs)));
    const ok = await Promise.race([connected, deadline]);
    clearTimeout(timer);
    if (!ok) this.logger.error({ err: this.lastError }, 'shared state (Redis) unreachable at start: proof-bearing requests get 503 ERR_STATE_UNAVAILABLE until it is reached (retried with back-off)');
  }

  status(): SharedStateStatus {
    return { backend: 'redis', connected: this.connected, lastError: this.lastError, since: this.since === null ? null : new Date(this.since).toISOString(), keyPrefix: this.prefix };
  }

  /** Closes both connections at once (requests have drained by then; nothing is waiting on them). */
  close(): Promise<void> {
    this.closing = true;
    this.client.disconnect();
    this.subscriber.disconnect();
    return Promise.resolve();
  }

  private up(): void {
    this.connected = true;
    this.lastError = null;
    this.since = this.now();
    this.logger.info({ keyPrefix: this.prefix }, 'shared state (Redis) connected');
  }

  private async runReadyHandlers(): Promise<void> {
    await Promise.all(
      this.readyHandlers.map((handler) => handler().catch((err: unknown) => this.logger.error({ err: errorText(err) }, 'shared state: loading after (re)connection failed; retried on the next reconnection'))),
    );
  }

  private down(): void {
    if (!this.connected) return;
    this.connected = false;
    this.since = this.now();
    // The reconnection attempts' errors (ECONNREFUSED ...) replace this when they come.
    this.lastError ??= 'the connection to Redis was closed';
    if (!this.closing) this.logger.error({ err: this.lastError }, 'shared state (Redis) disconnected: proof-bearing requests get 503 ERR_STATE_UNAVAILABLE until it is back; bearer requests go on');
  }

  private failed(err: Error): void {
    this.lastError = errorText(err);
  }

  private unavailable(err: unknown): AgentwardError {
    if (err instanceof AgentwardError) return err;
    // While disconnected, the connection's own error says more than "stream isn't writeable".
    if (this.connected || this.lastError === null) this.lastError = errorText(err);
    return new AgentwardError('ERR_STATE_UNAVAILABLE', undefined, { cause: err });
  }

  private deliver(channel: string, message: string): void {
    const handler = this.channels.get(channel);
    if (!handler) return;
    let parsed: { from?: unknown; body?: unknown };
    try {
      parsed = JSON.parse(message) as { from?: unknown; body?: unknown };
    } catch {
      this.logger.error({ channel }, 'shared state: unreadable message ignored');
      return;
    }
    // Our own message: already applied where it was made.
    if (parsed.from === this.instance || typeof parsed.body !== 'string') return;
    try {
      handler(parsed.body);
    } catch (err) {
      this.logger.error({ channel, err: errorText(err) }, 'shared state: a message could not be applied');
    }
  }
}

function ttl(claim: ReplayClaim): number {
  return Math.max(1, Math.ceil(claim.ttlMs));
}

function outcome(reply: unknown): ClaimResult {
  return reply === 'OK' ? 'new' : 'seen';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
