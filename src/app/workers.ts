/**
 * More than one process (`workers` above 1, docs/operations.md "Workers"): a primary process
 * forks the workers with node:cluster and serves the admin listener; each worker is the whole of
 * today's single process (createApp) minus the admin listener, with its own audit chain.
 *
 * Why node:cluster, round-robin: the primary holds the one listening socket, accepts each new
 * connection and passes it to the next free worker over IPC (Node's default scheduling on Linux).
 * That costs the primary one accept and one descriptor passed per connection, and nothing per
 * request: a client that keeps its connection alive (an agent, a benchmark) never touches the
 * primary again. The alternatives:
 * - the shared socket (SCHED_NONE): every worker accepts on it, and the kernel's wake-ups favour
 *   whichever worker is already busy, so load piles up on one;
 * - SO_REUSEPORT (`listen({ reusePort: true })`, Node 22.12+, which makes the listen exclusive
 *   to the worker): a socket per worker and the kernel hashing each connection's addresses over
 *   them, with the primary out of the way even for new connections. But a hash balances only
 *   many connections (a few long-lived ones, which is what agents and benchmarks open, may all
 *   land on one worker), and a worker that closes its socket (a drain, a reload, a crash) resets
 *   the connections already queued on it unless net.ipv4.tcp_migrate_req is set: a replaced
 *   worker would drop accepted connections, which round-robin never does (the primary keeps the
 *   socket and hands a connection a worker refused to another). Port 0 (tests) would need the
 *   first worker to bind before the others too.
 *
 * Lifecycle:
 *   start:    fork every worker; "agentward listening" once each has reported its listener.
 *             A worker that exits before then fails the start (exit 1), as one process would.
 *   crash:    a worker that exits unexpectedly is forked again in its place (same number, same
 *             audit file, whose chain it continues), at once the first time and then after a
 *             growing delay while it keeps dying young.
 *   SIGTERM:  /readyz turns 503, every worker gets SIGTERM and drains as one process does
 *             (App.stop, up to listen.shutdownTimeout); the primary closes the listening socket
 *             when the last worker has stopped listening, and exits 0 once every worker exited 0.
 *   SIGHUP:   the configuration file is checked again; when it is good, the workers are replaced
 *             one at a time (the old one drains and exits, its successor starts in its place and
 *             reports its listener), so the others serve meanwhile and no accepted request is lost.
 */
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { ConfigError, loadConfig, relaxations, type LoadedConfig } from '../config/load.ts';
import { durationMs } from '../duration.ts';
import { createAdminServer, type Readiness } from '../observability/health.ts';
import { clusterScrape } from '../observability/metrics.ts';
import type { Logger } from '../observability/logger.ts';
import { checkFiles } from './file-checks.ts';
import { listen } from './listeners.ts';
import { createServices, txnMinter, type App } from './index.ts';

/** The environment variable that gives a forked worker its number (from 1). */
const WORKER_ENV = 'AGENTWARD_WORKER';

/** How long the primary waits for a worker's readiness answer before counting it not ready. */
const READINESS_TIMEOUT_MS = 2000;

/** A worker that lived less than this when it died counts as dying young (the delay grows). */
const YOUNG_MS = 10_000;

/** Delay before a worker that died young is forked again: 0, then 0.5 s doubling to 30 s. */
export function restartDelayMs(diedYoung: number): number {
  return diedYoung === 0 ? 0 : Math.min(30_000, 500 * 2 ** (diedYoung - 1));
}

/** `workers` as a number: `auto` is one per CPU this process may run on. */
export function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

/** This process's worker number, or undefined when it is the primary or the only process. */
export function workerNumber(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const n = Number(process.env[WORKER_ENV]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Messages between the primary and a worker (IPC, JSON). */
type ToWorker = { agentward: 'readiness'; seq: number };
type ToPrimary = { agentward: 'listening'; address: string } | { agentward: 'readiness'; seq: number; readiness: Readiness };

function isToPrimary(message: unknown): message is ToPrimary {
  return typeof message === 'object' && message !== null && typeof (message as { agentward?: unknown }).agentward === 'string';
}

/** In a worker, after App.start: report the listener, and answer the primary's readiness questions. */
export function reportToPrimary(app: App, address: AddressInfo): void {
  process.on('message', (message: ToWorker) => {
    if (message?.agentward !== 'readiness') return;
    process.send?.({ agentward: 'readiness', seq: message.seq, readiness: app.readiness() } satisfies ToPrimary);
  });
  process.send?.({ agentward: 'listening', address: `${address.address}:${address.port}` } satisfies ToPrimary);
}

interface Slot {
  readonly n: number;
  worker: Worker | undefined;
  /** Set when this worker reported its listener. */
  listening: boolean;
  startedAt: number;
  /** Consecutive deaths soon after starting. */
  diedYoung: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** Called once when the current worker reports its listener or exits. */
  settle: ((ok: boolean) => void) | undefined;
}

/**
 * Runs the primary until SIGTERM or SIGINT; resolves with the exit code (the caller exits).
 * `count` is above 1.
 */
export async function runPrimary(loaded: LoadedConfig, count: number, logger: Logger): Promise<number> {
  const { config } = loaded;
  for (const warning of relaxations(config)) logger.warn({ config: loaded.file }, warning);
  // /jwks.json is the primary's: it reads the same key file as the workers and watches it too.
  const minter = txnMinter(loaded, createServices(loaded, { logger }));
  minter?.watch();
  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({ n: i + 1, worker: undefined, listening: false, startedAt: 0, diedYoung: 0, restartTimer: undefined, settle: undefined }));
  let draining = false;
  let started = false;
  /** Workers a reload has told to drain, not yet exited: a shutdown waits for them too. */
  const leaving = new Set<Worker>();
  let address = '';
  let seq = 0;
  const answers = new Map<number, (readiness: Readiness) => void>();
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));

  const fork = (slot: Slot): Promise<boolean> => {
    slot.restartTimer = undefined;
    slot.listening = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ [WORKER_ENV]: String(slot.n) });
    slot.worker = worker;
    const settled = new Promise<boolean>((resolve) => (slot.settle = resolve));
    worker.on('message', (message: unknown) => {
      if (!isToPrimary(message)) return;
      if (message.agentward === 'listening') {
        slot.listening = true;
        address = message.address;
        logger.info({ worker: slot.n, pid: worker.process.pid }, 'worker started');
        slot.settle?.(true);
        slot.settle = undefined;
      } else if (message.agentward === 'readiness') {
        answers.get(message.seq)?.(message.readiness);
      }
    });
    worker.on('exit', (code, signal) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      slot.listening = false;
      slot.settle?.(false);
      slot.settle = undefined;
      if (draining) return;
      const lived = Date.now() - slot.startedAt;
      if (!started) {
        logger.error({ worker: slot.n, pid: worker.process.pid, code, signal }, 'a worker failed to start; stopping');
        void shutdown('worker failed to start', 1);
        return;
      }
      slot.diedYoung = lived < YOUNG_MS ? slot.diedYoung + 1 : 0;
      const delayMs = restartDelayMs(slot.diedYoung);
      logger.error({ worker: slot.n, pid: worker.process.pid, code, signal, livedMs: lived, restartInMs: delayMs }, 'worker exited unexpectedly; starting another in its place');
      slot.restartTimer = setTimeout(() => void fork(slot), delayMs);
    });
    return settled;
  };

  /** One worker's answer, or why there is none. */
  const ask = (slot: Slot): Promise<Record<string, unknown> & { ready: boolean }> => {
    const { worker } = slot;
    if (!worker || !slot.listening) return Promise.resolve({ worker: slot.n, ready: false, state: worker ? 'starting' : 'restarting' });
    const id = ++seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        answers.delete(id);
        resolve({ worker: slot.n, pid: worker.process.pid, ready: false, state: `no answer within ${READINESS_TIMEOUT_MS} ms` });
      }, READINESS_TIMEOUT_MS);
      answers.set(id, ({ ready, detail }) => {
        clearTimeout(timer);
        answers.delete(id);
        resolve({ worker: slot.n, pid: worker.process.pid, ready, ...detail });
      });
      worker.send({ agentward: 'readiness', seq: id } satisfies ToWorker);
    });
  };
  const readiness = async (): Promise<Readiness> => {
    const workers = await Promise.all(slots.map(ask));
    return { ready: !draining && workers.every((w) => w.ready), detail: { draining, workers } };
  };
  // Every worker's metrics, gathered over IPC at each scrape (src/observability/metrics.ts).
  const admin = createAdminServer({ readiness, jwks: minter && (() => minter.jwks()), ...(loaded.config.metrics.enabled ? { metrics: clusterScrape() } : {}) });

  /** SIGTERM: every worker drains at once; the primary follows the last one out. */
  const shutdown = async (reason: string, code = 0): Promise<void> => {
    if (draining) return;
    draining = true;
    logger.info({ reason }, 'shutting down');
    for (const slot of slots) clearTimeout(slot.restartTimer);
    const running = [...slots.flatMap((slot) => (slot.worker ? [slot.worker] : [])), ...leaving];
    const exits = running.map((worker) => {
      if (worker.isDead()) return Promise.resolve(worker.process.exitCode ?? 1);
      return new Promise<number>((resolve) => {
        worker.once('exit', (exitCode: number | null) => resolve(exitCode ?? 1));
        worker.process.kill('SIGTERM');
      });
    });
    // The workers stop themselves within listen.shutdownTimeout; past it (and a margin), kill.
    const grace = setTimeout(
      () => {
        logger.error('workers still running after listen.shutdownTimeout; killing them');
        for (const worker of running) worker.process.kill('SIGKILL');
      },
      durationMs(config.listen.shutdownTimeout) + 5000,
    );
    const codes = await Promise.all(exits);
    clearTimeout(grace);
    if (admin.listening) await new Promise<void>((done) => admin.close(() => done()));
    admin.closeAllConnections();
    minter?.close();
    const failed = codes.filter((c) => c !== 0).length;
    logger.info({ workers: count, failed }, 'agentward stopped');
    finish(code !== 0 || failed > 0 ? 1 : 0);
  };

  /** SIGHUP: check the file again, then replace the workers one at a time. */
  let reloading = false;
  const reload = async (): Promise<void> => {
    if (reloading || draining || !started) return;
    reloading = true;
    try {
      let next: LoadedConfig;
      try {
        next = loadConfig(loaded.file);
        const problems = checkFiles(next);
        if (problems.length > 0) throw new ConfigError(next.file, problems);
      } catch (err) {
        logger.error({ problems: err instanceof ConfigError ? err.message : String(err) }, 'reload refused: the configuration does not load; the workers keep running as they are');
        return;
      }
      // What the primary itself holds is not replaced by a reload.
      if (workerCount(next.config.workers) !== count || next.config.admin.address !== config.admin.address || next.config.listen.address !== config.listen.address) {
        logger.warn('workers, admin.address and listen.address take effect when agentward is restarted, not on SIGHUP');
      }
      logger.info({ workers: count }, 'reloading: replacing the workers one at a time');
      for (const slot of slots) {
        if (draining) return;
        const old = slot.worker;
        if (old) {
          // Its successor starts only once it has exited: one writer per audit file.
          const exited = new Promise<void>((done) => old.once('exit', () => done()));
          slot.worker = undefined;
          leaving.add(old);
          old.process.kill('SIGTERM');
          await exited;
          leaving.delete(old);
        }
        clearTimeout(slot.restartTimer);
        if (draining) return;
        if (!(await fork(slot))) {
          logger.error({ worker: slot.n }, 'reload stopped: a new worker did not start (the others keep running; it is restarted as after a crash)');
          return;
        }
      }
      logger.info({ workers: count }, 'reloaded');
    } finally {
      reloading = false;
    }
  };

  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGHUP', () => void reload());

  const adminAddress = await listen(admin, config.admin.address);
  const ok = await Promise.all(slots.map(fork));
  if (ok.every(Boolean) && !draining) {
    started = true;
    logger.info({ address, admin: `${adminAddress.address}:${adminAddress.port}`, workers: count, upstream: config.upstream.url, resource: config.resource.id }, 'agentward listening');
  }
  return finished;
}
