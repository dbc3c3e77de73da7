/**
 * The audit trail: one JSON line per request, whatever the outcome (design §3.6). With
 * `hashChain` each line carries `prev` (the previous line's hash) and `hash`, so removing,
 * reordering or editing a line is detectable (draft-ietf-wimse-aims §11); with `hashKey` the
 * hash is an HMAC, so someone who can rewrite the file cannot recompute the chain either.
 *
 * The hash covers the exact bytes of the line before `,"hash":"…"}`, so verification never
 * depends on re-serializing JSON. A process that appends to an existing file continues its chain;
 * a new stream starts with `"prev":null`.
 */
import { createHmac, hash } from 'node:crypto';
import { existsSync, openSync, readSync, fstatSync, closeSync, appendFileSync } from 'node:fs';
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
  posture: Record<string, unknown> | null;
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
  };
}

export interface AuditSink {
  write(record: AuditRecord | RemediationRecord): void;
  /** Writes every record handed to `write` so far; resolves once they are with the OS. */
  flush(): Promise<void>;
}

const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/**
 * Records are serialized once, when they are written (so the request's objects die young), then
 * chained, hashed and written as one batch per event-loop turn: one write(2) for all the records of
 * a turn instead of one thread-pool write per record. The destination is synchronous, so memory is
 * bounded by one turn's records and the order on disk is the order of the chain; a destination that
 * cannot keep up (a full pipe, a slow disk) slows the process down rather than losing records or
 * growing a buffer. A record is with the OS at the end of the turn that produced it.
 */
export class AuditLog implements AuditSink {
  private readonly stream: pino.DestinationStream & { flushSync?: () => void };
  private readonly chain: boolean;
  private readonly key: string | undefined;
  private prev: string | null;
  /** `JSON.stringify(record)` of the records of this turn, not yet chained or written. */
  private pending: string[] = [];
  private scheduled = false;

  constructor(options: { dest: number | string; hashChain: boolean; hashKey?: string | undefined }) {
    this.chain = options.hashChain;
    this.key = options.hashKey;
    if (typeof options.dest === 'string') {
      // A process that died mid-write leaves a partial last line: end it, so the next record
      // starts on its own line (it then starts a new chain segment, which verify reports).
      if (endsMidLine(options.dest)) appendFileSync(options.dest, '\n');
      this.prev = this.chain ? lastHash(options.dest) : null;
    } else {
      this.prev = null;
    }
    // sync: each batch is one write(2) on this thread; sonic-boom retries EAGAIN on a full pipe.
    this.stream = pino.destination({ dest: options.dest, sync: true, mkdir: true, append: true });
  }

  write(record: AuditRecord | RemediationRecord): void {
    this.pending.push(JSON.stringify(record));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.writeBatch);
    }
  }

  flush(): Promise<void> {
    this.writeBatch();
    return Promise.resolve();
  }

  /**
   * Chains the pending records in order and writes them at once. With the chain, `prev` is added
   * as the record's last member and `hash` covers the exact bytes of the line before
   * `,"hash":"…"}` (the same bytes as `JSON.stringify({ ...record, prev })`).
   */
  private readonly writeBatch = (): void => {
    this.scheduled = false;
    const records = this.pending;
    if (records.length === 0) return;
    this.pending = [];
    let out = '';
    for (const json of records) {
      if (!this.chain) {
        out += `${json}\n`;
        continue;
      }
      const body = `${json.slice(0, -1)},"prev":${this.prev === null ? 'null' : `"${this.prev}"`}}`;
      const hash = chainHash(body, this.key);
      this.prev = hash;
      out += `${body.slice(0, -1)},"hash":"${hash}"}\n`;
    }
    this.stream.write(out);
  };
}

/** Audit turned off: records are dropped. */
export const NO_AUDIT: AuditSink = { write: () => undefined, flush: () => Promise.resolve() };

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

/** Bytes read at a time by `verifyAuditFile`: memory stays constant whatever the file's size. */
const VERIFY_CHUNK_BYTES = 1 << 20;

/**
 * Recomputes every hash of an audit file, reading it a chunk at a time. Lines are split on the
 * newline byte, which never occurs inside a UTF-8 sequence, so a character cut by a chunk edge is
 * decoded whole.
 */
export function verifyAuditFile(file: string, key: string | undefined): VerifyReport {
  let prev: string | null = null;
  let segments = 0;
  let records = 0;
  const check = (line: string): VerifyReport['failure'] => {
    const fail = (reason: string): VerifyReport['failure'] => ({ line: records + 1, reason });
    const match = HASH_SUFFIX.exec(line);
    if (!match) return fail('no hash field at the end of the line');
    const body = `${line.slice(0, match.index)}}`;
    let parsed: { prev?: unknown };
    try {
      parsed = JSON.parse(body) as { prev?: unknown };
    } catch {
      return fail('the line is not JSON');
    }
    if (parsed.prev === null) segments++;
    else if (parsed.prev !== prev) return fail(`prev does not match the hash of line ${records} (a record was removed, reordered or edited)`);
    if (chainHash(body, key) !== match[1]) return fail('hash does not match the record (the record was edited, or the key is wrong)');
    prev = match[1]!;
    records++;
    return null;
  };
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
        const failure = check(data.toString('utf8', start, nl));
        if (failure) return { records, segments, failure };
        start = nl + 1;
      }
      // Copied: the next read reuses `chunk`.
      carry = Buffer.from(data.subarray(start));
    }
    // A last line without its newline (a process that died while writing it).
    if (carry.length > 0) {
      const failure = check(carry.toString('utf8'));
      if (failure) return { records, segments, failure };
    }
  } finally {
    closeSync(fd);
  }
  return { records, segments, failure: null };
}
