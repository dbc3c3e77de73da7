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
import { existsSync, openSync, readSync, fstatSync, closeSync, readFileSync, appendFileSync } from 'node:fs';
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

export interface AuditSink {
  write(record: AuditRecord): void;
  flush(): Promise<void>;
}

const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

export class AuditLog implements AuditSink {
  private readonly stream: pino.DestinationStream & { flushSync?: () => void; end?: () => void };
  private readonly chain: boolean;
  private readonly key: string | undefined;
  private prev: string | null;

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
    // minLength 1: sonic-boom's flush() is a no-op with the default 0, and stop() relies on it
    // to write every record before the process exits.
    this.stream = pino.destination({ dest: options.dest, sync: false, mkdir: true, append: true, minLength: 1 });
  }

  write(record: AuditRecord): void {
    if (!this.chain) {
      this.stream.write(`${JSON.stringify(record)}\n`);
      return;
    }
    const body = JSON.stringify({ ...record, prev: this.prev });
    const hash = chainHash(body, this.key);
    this.prev = hash;
    this.stream.write(`${body.slice(0, -1)},"hash":"${hash}"}\n`);
  }

  flush(): Promise<void> {
    return new Promise((resolve) => {
      const s = this.stream as unknown as { flush?: (cb: () => void) => void };
      if (typeof s.flush === 'function') s.flush(() => resolve());
      else resolve();
    });
  }
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

/** Recomputes every hash of an audit file. */
export function verifyAuditFile(file: string, key: string | undefined): VerifyReport {
  const lines = readFileSync(file, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  let prev: string | null = null;
  let segments = 0;
  for (const [i, line] of lines.entries()) {
    const fail = (reason: string): VerifyReport => ({ records: i, segments, failure: { line: i + 1, reason } });
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
    else if (parsed.prev !== prev) return fail(`prev does not match the hash of line ${i} (a record was removed, reordered or edited)`);
    if (chainHash(body, key) !== match[1]) return fail('hash does not match the record (the record was edited, or the key is wrong)');
    prev = match[1]!;
  }
  return { records: lines.length, segments, failure: null };
}
