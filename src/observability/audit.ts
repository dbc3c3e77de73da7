/**
 * The audit trail: one JSON line per request, whatever the outcome (docs/operations.md "Audit records"). With
 * `hashChain` each line carries `prev` (the previous line's hash) and `hash`, so removing,
 * reordering or editing a line is detectable (draft-ietf-wimse-aims §11); with `hashKey` the
 * hash is an HMAC, so someone who can rewrite the file cannot recompute the chain either.
 *
 * The hash covers the exact bytes of the line before `,"hash":"…"}`, so verification never
 * depends on re-serializing JSON. A process that appends to an existing file continues its chain;
 * a new stream starts with `"prev":null`.
 */
import { createHmac, hash } from 'node:crypto';
import { existsSync, openSync, readSync, fstatSync, closeSync, appendFileSync, statSync, renameSync, fsync, fsyncSync } from 'node:fs';
import { basename, extname } from 'node:path';
import pino from 'pino';

export interface AuditRecord {
  time: string;
  requestId: string;
  traceId: string | null;
  agent: { id: string; via: string } | null;
  subject: { iss: string; sub: string | null; clientId: string | null } | null;
  delegation: string[];
  resource: string;
  /** `mcpTool`: the name (or URI) of the MCP call decided; `rpcMethod`: its JSON-RPC method (MCP or A2A). */
  action: { method: string; path: string; mcpTool: string | null; rpcMethod: string | null };
  decision: 'allow' | 'deny' | 'error';
  /** policy.mode shadow: the decision was a deny, and the request was forwarded anyway. */
  shadow: boolean;
  status: number;
  code: string | null;
  reason: string | null;
  policyRevision: string | null;
  token: { jti: string | null; hash: string } | null;
  /** The verified Txn-Token: its transaction id and the first 16 characters of its hash. */
  txn: { id: string; hash: string } | null;
  /** What the decision knew of the caller's security state; null without a token or workload. */
  posture: { tokenBinding: 'dpop' | 'mtls' | null; workloadProof: string | null; acr: string | null; amr: string[] | null } | null;
  latencyMs: number;
}

/**
 * A remediation (draft-ietf-wimse-aims §11: "every remediation" is audited): a security event or
 * an operator's purge, what it named and what it stopped. Written in the same chained stream as
 * request records, told apart by its `remediation` member.
 */
export interface RemediationRecord {
  time: string;
  remediation: {
    /** Where it came from: SSF push (RFC 8935), SSF poll (RFC 8936) or the admin endpoint / CLI. */
    source: 'ssf-push' | 'ssf-poll' | 'admin';
    /** The SET's event type URI (e.g. CAEP session-revoked), or `purge` for the admin endpoint. */
    event: string;
    /** The transmitter's `iss` and the SET's `jti`; null for an admin purge. */
    transmitter: string | null;
    setId: string | null;
    /** The subject as received (RFC 9493 subject identifier), or the admin request's selector. */
    subject: Record<string, unknown>;
    /** What now stops being accepted: tokens issued before `before` (epoch seconds), for `match`. */
    mark: { match: Record<string, string>; before: number } | null;
    /** Entries removed, per cache, and open streams closed. */
    purged: Record<string, number>;
    streamsClosed: number;
    /**
     * Set when this replica applied a mark another replica made (`state.backend: redis`): the
     * other replica's record is the one of the event; this one says the mark reached here.
     */
    replicated?: true;
  };
}

export interface AuditSink {
  /** Queues a record; it is written at the end of the current event-loop turn. */
  write(record: AuditRecord | RemediationRecord): void;
  /**
   * Writes this record, and every record queued before it, now: called for a refusal before its
   * response is sent, so no caller is ever refused without a record. Resolves at once, or with
   * `fsync: deny` once the record is on disk (one fsync for every refusal waiting then).
   */
  writeNow(record: AuditRecord | RemediationRecord): Promise<void>;
  /**
   * The same promise for a refusal's record, written with the rest of the current event-loop turn's
   * records (one write(2) for all of them): under a flood of refusals (overload, forged tokens) a
   * write per refusal cost more than the rest of its answer. The response waits for the promise,
   * so a refusal still never reaches its caller before its record. `durable` false: with the OS
   * only, even with `fsync: deny` (load shedding, which decides nothing about the caller, is synced
   * within `fsyncInterval`: an fsync per batch of shed requests would cost the most when the
   * proxy has the least to spare).
   */
  writeBeforeAnswer(record: AuditRecord | RemediationRecord, durable?: boolean): Promise<void>;
  /** Writes every record handed over so far; resolves once they are with the OS. */
  flush(): Promise<void>;
  /** Flushes, stops timers (checkpoints, fsync) and writes a last checkpoint. */
  close(): void;
  /** Records written to the destination and records that failed to be written or put on disk, since start (for metrics). */
  counts?(): AuditCounts;
}

export interface AuditCounts {
  written: number;
  failed: number;
}

/**
 * When the OS is asked to put written records on disk (fsync): `never`; every `interval`;
 * before each refusal's response (`deny`, plus every interval for the rest); after every write.
 */
export type FsyncPolicy = 'never' | 'interval' | 'deny' | 'always';

export interface AuditLogOptions {
  /** A file path, or 1 / 2 for stdout / stderr. */
  dest: number | string;
  hashChain: boolean;
  hashKey?: string | undefined;
  /** Default `never`. Files only; a pipe or terminal is never fsynced. */
  fsync?: FsyncPolicy | undefined;
  /** Period of `fsync: interval` and `deny`. Default 1 s. */
  fsyncIntervalMs?: number | undefined;
  /** Files only: start a new file when the current one reaches this size or this age. */
  rotate?: { maxBytes?: number | undefined; intervalMs?: number | undefined } | undefined;
  /** Periodic checkpoints of the chain head (needs hashChain); `write` gets each one as a line. */
  checkpoint?: { intervalMs: number; write: (line: string) => void } | undefined;
  /** Injectable clock (ms), for rotation names and times. */
  now?: () => number;
}

const RESOLVED = Promise.resolve();

const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/**
 * Records are serialized once, when they are written (so the request's objects die young), then
 * chained, hashed and written as one batch per event-loop turn: one write(2) for all the records of
 * a turn instead of one thread-pool write per record. The destination is synchronous, so memory is
 * bounded by one turn's records and the order on disk is the order of the chain; a destination that
 * cannot keep up (a full pipe, a slow disk) slows the process down rather than losing records or
 * growing a buffer. A record is with the OS at the end of the turn that produced it; a refusal's
 * record before its response (`writeNow`).
 *
 * Rotation (files only) renames the current file to `<name>.<UTC time>.<ext>` and starts a new
 * one whose first line is a `rotation` record naming the previous file and chained to its last
 * hash, so the chain runs on across files and `verifyAuditFiles` checks the set in order.
 */
export class AuditLog implements AuditSink {
  private readonly stream: pino.DestinationStream & { fd: number; reopen(file?: string): void };
  private readonly file: string | undefined;
  private readonly chain: boolean;
  private readonly key: string | undefined;
  private readonly fsyncPolicy: FsyncPolicy;
  private readonly rotate: AuditLogOptions['rotate'];
  private readonly now: () => number;
  private prev: string | null;
  /** `JSON.stringify(record)` of the records of this turn, not yet chained or written. */
  private pending: string[] = [];
  private scheduled = false;
  /** Settled when this turn's batch has been written: what `writeBeforeAnswer` callers wait for. */
  private batchWritten: PromiseWithResolvers<void> | undefined;
  /** Bytes in the current file, and when it was started (for rotation). */
  private size = 0;
  private fileStartedAt: number;
  /** Whether anything was written since the last fsync / the last checkpoint. */
  private unsynced = false;
  private checkpointedHead: string | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly checkpoint: AuditLogOptions['checkpoint'];
  /** The fsync running for `deny`, and the one the refusals that came during it wait for. */
  private syncing: Promise<void> | undefined;
  private nextSync: Promise<void> | undefined;
  private written = 0;
  private failed = 0;

  constructor(options: AuditLogOptions) {
    this.chain = options.hashChain;
    this.key = options.hashKey;
    this.now = options.now ?? Date.now;
    this.fileStartedAt = this.now();
    this.rotate = typeof options.dest === 'string' ? options.rotate : undefined;
    this.fsyncPolicy = typeof options.dest === 'string' ? (options.fsync ?? 'never') : 'never';
    this.checkpoint = this.chain ? options.checkpoint : undefined;
    if (typeof options.dest === 'string') {
      this.file = options.dest;
      // A process that died mid-write leaves a partial last line: end it, so the next record
      // starts on its own line (it then starts a new chain segment, which verify reports).
      if (endsMidLine(options.dest)) appendFileSync(options.dest, '\n');
      this.prev = this.chain ? lastHash(options.dest) : null;
      this.size = existsSync(options.dest) ? statSync(options.dest).size : 0;
    } else {
      this.prev = null;
    }
    this.checkpointedHead = this.prev;
    // sync: each batch is one write(2) on this thread; sonic-boom retries EAGAIN on a full pipe.
    this.stream = pino.destination({ dest: options.dest, sync: true, mkdir: true, append: true, fsync: this.fsyncPolicy === 'always' }) as never;
    const every = (ms: number, run: () => void): void => {
      this.timers.push(setInterval(run, ms).unref());
    };
    if (this.fsyncPolicy === 'interval' || this.fsyncPolicy === 'deny') every(options.fsyncIntervalMs ?? 1000, () => this.sync());
    if (this.checkpoint) every(this.checkpoint.intervalMs, () => this.writeCheckpoint());
    if (this.rotate?.intervalMs) every(Math.min(this.rotate.intervalMs, 60_000), () => this.rotateIfDue());
  }

  write(record: AuditRecord | RemediationRecord): void {
    this.pending.push(JSON.stringify(record));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.writeBatch);
    }
  }

  writeNow(record: AuditRecord | RemediationRecord): Promise<void> {
    this.pending.push(JSON.stringify(record));
    this.writeBatch();
    if (this.fsyncPolicy !== 'deny') return RESOLVED;
    return this.durable().catch((err: unknown) => {
      this.failed++;
      throw err;
    });
  }

  writeBeforeAnswer(record: AuditRecord | RemediationRecord, durable = true): Promise<void> {
    this.write(record);
    this.batchWritten ??= Promise.withResolvers<void>();
    const written = this.batchWritten.promise;
    if (this.fsyncPolicy !== 'deny' || !durable) return written;
    return written.then(() =>
      this.durable().catch((err: unknown) => {
        this.failed++;
        throw err;
      }),
    );
  }

  counts(): AuditCounts {
    return { written: this.written, failed: this.failed };
  }

  /**
   * Group commit: resolves once everything written so far is on disk. One fsync runs at a time on
   * the thread pool; callers that come while it runs share the next one.
   */
  private durable(): Promise<void> {
    if (this.syncing) {
      this.nextSync ??= this.syncing.then(() => {
        this.nextSync = undefined;
        return this.startSync();
      });
      return this.nextSync;
    }
    return this.startSync();
  }

  private startSync(): Promise<void> {
    this.unsynced = false;
    const done = new Promise<void>((resolve, reject) => fsync(this.stream.fd, (err) => (err ? reject(err) : resolve())));
    this.syncing = done.finally(() => {
      if (this.syncing === tracked) this.syncing = undefined;
    });
    const tracked = this.syncing;
    return done;
  }

  flush(): Promise<void> {
    this.writeBatch();
    return Promise.resolve();
  }

  close(): void {
    this.writeBatch();
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    this.writeCheckpoint();
    if (this.fsyncPolicy !== 'never') this.syncNow();
  }

  /**
   * Chains the pending records in order and writes them at once. With the chain, `prev` is added
   * as the record's last member and `hash` covers the exact bytes of the line before
   * `,"hash":"…"}` (the same bytes as `JSON.stringify({ ...record, prev })`).
   */
  private readonly writeBatch = (): void => {
    this.scheduled = false;
    const records = this.pending;
    const waiting = this.batchWritten;
    this.batchWritten = undefined;
    if (records.length === 0) {
      waiting?.resolve();
      return;
    }
    this.pending = [];
    this.rotateIfDue();
    let out = '';
    for (const json of records) out += this.line(json);
    try {
      this.stream.write(out);
    } catch (err) {
      this.failed += records.length;
      waiting?.reject(err);
      throw err;
    }
    waiting?.resolve();
    this.written += records.length;
    this.size += Buffer.byteLength(out);
    this.unsynced = true;
  };

  private line(json: string): string {
    if (!this.chain) return `${json}\n`;
    const body = `${json.slice(0, -1)},"prev":${this.prev === null ? 'null' : `"${this.prev}"`}}`;
    const hash = chainHash(body, this.key);
    this.prev = hash;
    return `${body.slice(0, -1)},"hash":"${hash}"}\n`;
  }

  private rotateIfDue(): void {
    if (!this.rotate || !this.file || this.size === 0) return;
    const bySize = this.rotate.maxBytes !== undefined && this.size >= this.rotate.maxBytes;
    const byAge = this.rotate.intervalMs !== undefined && this.now() - this.fileStartedAt >= this.rotate.intervalMs;
    if (!bySize && !byAge) return;
    if (this.fsyncPolicy !== 'never') this.syncNow();
    const rotated = rotatedName(this.file, this.now());
    renameSync(this.file, rotated);
    this.stream.reopen();
    this.size = 0;
    this.fileStartedAt = this.now();
    const first = this.line(JSON.stringify({ time: new Date(this.now()).toISOString(), rotation: { previous: basename(rotated) } }));
    this.stream.write(first);
    this.size += Buffer.byteLength(first);
  }

  /**
   * A checkpoint names the chain head at a moment, in a sink apart from the file (a checkpoint
   * file, the log): `verifyAuditFiles` with the checkpoints then finds a cut-off tail or replaced
   * records, which the chain alone cannot show. With a key it carries an HMAC, so nobody without
   * the key can make one up.
   */
  private writeCheckpoint(): void {
    if (!this.checkpoint || this.prev === null || this.prev === this.checkpointedHead) return;
    this.checkpointedHead = this.prev;
    const body = { time: new Date(this.now()).toISOString(), head: this.prev, file: this.file ? basename(this.file) : null };
    this.checkpoint.write(JSON.stringify({ checkpoint: body, mac: checkpointMac(body, this.key) }));
  }

  private sync(): void {
    if (!this.unsynced) return;
    this.unsynced = false;
    fsync(this.stream.fd, () => undefined);
  }

  private syncNow(): void {
    this.unsynced = false;
    fsyncSync(this.stream.fd);
  }
}

/**
 * Worker N's own file (docs/operations.md "Workers"): `audit.jsonl` → `audit.w2.jsonl`. A hash
 * chain has one writer, so each worker keeps a chain of its own; a worker restarted in the same
 * place continues it. Unchanged without a worker number (one process).
 */
export function workerFile(file: string, worker: number | undefined): string {
  if (worker === undefined) return file;
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}.w${worker}${ext}`;
}

/** `audit.jsonl` rotated at 2026-12-06T09:30:00.123Z → `audit.2026-12-06T09-30-00-123Z.jsonl` (sorts by time). */
export function rotatedName(file: string, at: number): string {
  const stamp = new Date(at).toISOString().replace(/[:.]/g, '-');
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}.${stamp}${ext}`;
}

/** The checkpoint's MAC: HMAC-SHA-256 under the audit key, else SHA-256, of its JSON. */
function checkpointMac(body: { time: string; head: string; file: string | null }, key: string | undefined): string {
  return chainHash(JSON.stringify(body), key);
}

/** Audit turned off: records are dropped. */
export const NO_AUDIT: AuditSink = { write: () => undefined, writeNow: () => RESOLVED, writeBeforeAnswer: () => RESOLVED, flush: () => Promise.resolve(), close: () => undefined };

export function chainHash(body: string, key: string | undefined): string {
  return key === undefined ? hash('sha256', body, 'hex') : createHmac('sha256', key).update(body).digest('hex');
}

function endsMidLine(file: string): boolean {
  if (!existsSync(file)) return false;
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}

/** The hash of the last complete line of an audit file, to continue its chain. */
function lastHash(file: string): string | null {
  if (!existsSync(file)) return null;
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    const lines = buf.toString('utf8').split('\n').filter((l) => l !== '');
    const last = lines.at(-1);
    return last ? (HASH_SUFFIX.exec(last)?.[1] ?? null) : null;
  } finally {
    closeSync(fd);
  }
}

export interface VerifyReport {
  records: number;
  /** Chains in the file: 1 plus one for each restart that began with prev null. */
  segments: number;
  /** First broken line (1-based) and why, or null when the file verifies. */
  failure: { line: number; reason: string } | null;
}

export interface SetReport {
  /** Lines verified, rotation records included. */
  records: number;
  segments: number;
  /** Checkpoints found in the chain (those older than the set's first record are not expected). */
  checkpoints: number;
  /** The file the first one continues (its first line is a rotation record), when it does. */
  continues: string | null;
  failure: { file: string; line: number; reason: string } | null;
}

/** Bytes read at a time: memory stays constant whatever the size of the files. */
const VERIFY_CHUNK_BYTES = 1 << 20;

/** Recomputes every hash of one audit file (see verifyAuditFiles). */
export function verifyAuditFile(file: string, key: string | undefined): VerifyReport {
  const { records, segments, failure } = verifyAuditFiles([file], key);
  return { records, segments, failure: failure && { line: failure.line, reason: failure.reason } };
}

interface Checkpoint {
  time: string;
  head: string;
}

/**
 * Recomputes every hash of a set of audit files, oldest first (a file and the files rotated from
 * it), as one chain: the first line of each later file must chain to the last of the one before.
 * A first file that starts with a rotation record continues an older file that is not in the set;
 * its `prev` is then taken as given (and named in the report).
 *
 * With `checkpointLines` (lines of a checkpoint file or of the log; other lines are skipped), every
 * checkpoint not older than the set's first record must name a hash of the chain, in order: a
 * missing one means the end of the chain was cut off, or records were replaced by a chain
 * computed anew (a spliced segment). Each checkpoint's MAC is checked with the same key.
 *
 * Reads each file a chunk at a time; lines are split on the newline byte, which never occurs
 * inside a UTF-8 sequence, so a character cut by a chunk edge is decoded whole.
 */
export function verifyAuditFiles(files: readonly string[], key: string | undefined, checkpointLines?: Iterable<string>): SetReport {
  let prev: string | null = null;
  let segments = 0;
  let records = 0;
  let continues: string | null = null;
  let checkpoints: Checkpoint[] | undefined;
  let found = 0;
  let firstTime: string | undefined;
  const report = (failure: SetReport['failure']): SetReport => ({ records, segments, checkpoints: found, continues, failure });
  if (checkpointLines) {
    const parsed = parseCheckpoints(checkpointLines, key);
    if ('failure' in parsed) return report({ file: '(checkpoints)', line: parsed.line, reason: parsed.failure });
    checkpoints = parsed.checkpoints;
  }
  for (const [fileIndex, file] of files.entries()) {
    let lineNo = 0;
    const check = (line: string): string | null => {
      lineNo++;
      const match = HASH_SUFFIX.exec(line);
      if (!match) return 'no hash field at the end of the line';
      const body = `${line.slice(0, match.index)}}`;
      let parsed: { prev?: unknown; time?: unknown; rotation?: { previous?: unknown } };
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        return 'the line is not JSON';
      }
      const startsSet = records === 0;
      if (startsSet && typeof parsed.time === 'string') firstTime = parsed.time;
      if (parsed.prev === null && fileIndex > 0 && lineNo === 1) {
        // Our rotation always chains a new file to the one before; one that starts a chain of its
        // own is not the next file of this set.
        return `starts a new chain instead of continuing ${files[fileIndex - 1]} (the set is out of order, or a file of it is missing)`;
      }
      if (parsed.prev === null) segments++;
      else if (startsSet && fileIndex === 0 && lineNo === 1 && parsed.rotation && typeof parsed.prev === 'string') {
        // The set starts in the middle of a longer chain, at a rotation: take its prev as given.
        continues = typeof parsed.rotation.previous === 'string' ? parsed.rotation.previous : '(unnamed)';
        segments++;
      } else if (parsed.prev !== prev) {
        return lineNo === 1 && fileIndex > 0
          ? `prev does not match the hash of the last line of ${files[fileIndex - 1]} (a file of the set is missing, out of order, or was edited)`
          : `prev does not match the hash of line ${lineNo - 1} (a record was removed, reordered or edited)`;
      }
      if (chainHash(body, key) !== match[1]) return 'hash does not match the record (the record was edited, or the key is wrong)';
      prev = match[1]!;
      records++;
      if (checkpoints) {
        // Checkpoints taken before this set's first record belong to files not given.
        while (found < checkpoints.length && firstTime !== undefined && checkpoints[found]!.time < firstTime) checkpoints.splice(found, 1);
        if (found < checkpoints.length && checkpoints[found]!.head === prev) found++;
      }
      return null;
    };
    const failure = forEachLine(file, check);
    if (failure) return report({ file, line: failure.line, reason: failure.reason });
  }
  if (checkpoints && found < checkpoints.length) {
    const missing = checkpoints[found]!;
    return report({
      file: files.at(-1) ?? '',
      line: records,
      reason: `the chain does not hold the head ${missing.head.slice(0, 16)}… of the checkpoint of ${missing.time} (after ${found} checkpoint(s) found): records were cut off the end, or replaced by a chain computed anew`,
    });
  }
  return report(null);
}

/** Calls `check` on each line of `file`; stops at the first failure it returns. */
function forEachLine(file: string, check: (line: string) => string | null): { line: number; reason: string } | null {
  let line = 0;
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(VERIFY_CHUNK_BYTES);
    let carry: Buffer = Buffer.alloc(0);
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      const data = carry.length === 0 ? chunk.subarray(0, n) : Buffer.concat([carry, chunk.subarray(0, n)]);
      let start = 0;
      for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
        line++;
        const reason = check(data.toString('utf8', start, nl));
        if (reason) return { line, reason };
        start = nl + 1;
      }
      // Copied: the next read reuses `chunk`.
      carry = Buffer.from(data.subarray(start));
    }
    // A last line without its newline (a process that died while writing it).
    if (carry.length > 0) {
      line++;
      const reason = check(carry.toString('utf8'));
      if (reason) return { line, reason };
    }
  } finally {
    closeSync(fd);
  }
  return null;
}

/** The checkpoints among `lines` (a checkpoint file, or log lines carrying one), in time order. */
function parseCheckpoints(lines: Iterable<string>, key: string | undefined): { checkpoints: Checkpoint[] } | { line: number; failure: string } {
  const out: Checkpoint[] = [];
  let n = 0;
  for (const line of lines) {
    n++;
    if (!line.includes('"checkpoint"')) continue;
    let parsed: { checkpoint?: { time?: unknown; head?: unknown; file?: unknown }; mac?: unknown };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      continue;
    }
    const c = parsed.checkpoint;
    if (!c || typeof c.time !== 'string' || typeof c.head !== 'string' || typeof parsed.mac !== 'string') continue;
    const body = { time: c.time, head: c.head, file: typeof c.file === 'string' ? c.file : null };
    if (checkpointMac(body, key) !== parsed.mac) return { line: n, failure: 'the checkpoint MAC does not match (the checkpoint was made up or edited, or the key is wrong)' };
    out.push({ time: c.time, head: c.head });
  }
  out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  return { checkpoints: out };
}
