/**
 * The tamper-evident audit trail (docs/operations.md "Audit records"): each line carries `prev` and `hash`; editing,
 * removing or reordering a line breaks verification at that line; with a key the hash is an HMAC;
 * a restarted process continues the chain of the file it appends to.
 */
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { AuditLog, chainHash, rotatedName, verifyAuditFile, verifyAuditFiles, type AuditRecord } from '../../src/observability/audit.ts';

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'agentward-audit-')), 'audit', 'audit.jsonl');
}

function record(i: number): AuditRecord {
  return {
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    requestId: `req-${i}`,
    traceId: null,
    agent: null,
    subject: { iss: 'https://as.example.com', sub: `user-${i}`, clientId: 'research-bot' },
    delegation: [],
    resource: 'https://tools.example.com/mcp',
    action: { method: 'POST', path: `/tools/${i}`, mcpTool: null, rpcMethod: null },
    decision: i % 2 === 0 ? 'allow' : 'deny',
    shadow: false,
    status: i % 2 === 0 ? 200 : 403,
    code: i % 2 === 0 ? null : 'ERR_POLICY_DENIED',
    reason: null,
    policyRevision: 'rev-1',
    token: { jti: `jti-${i}`, hash: 'AAAAAAAAAAAAAAAA' },
    txn: null,
    posture: null,
    latencyMs: 1.5,
  };
}

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : [];
}

/** Writes records `from`..`to-1`, then waits until the file holds `expectLines` lines. */
async function writeRecords(log: AuditLog, file: string, from: number, to: number, expectLines = to): Promise<void> {
  for (let i = from; i < to; i++) log.write(record(i));
  await log.flush();
  // flush() is not (yet) a guarantee the bytes are on disk (see the dedicated test); poll.
  for (let waited = 0; lines(file).length < expectLines && waited < 2000; waited += 10) await sleep(10);
  expect(lines(file)).toHaveLength(expectLines);
}

function rewrite(file: string, edit: (lines: string[]) => string[]): void {
  writeFileSync(file, `${edit(lines(file)).join('\n')}\n`);
}

async function chainedFile(n: number, hashKey?: string): Promise<string> {
  const file = tempFile();
  await writeRecords(new AuditLog({ dest: file, hashChain: true, hashKey }), file, 0, n);
  return file;
}

describe('hash chain', () => {
  test('N records verify; each line is the record plus prev and hash', async () => {
    const file = await chainedFile(6);
    expect(verifyAuditFile(file, undefined)).toEqual({ records: 6, segments: 1, failure: null });
    const parsed = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]!.prev).toBeNull();
    for (let i = 0; i < 6; i++) {
      const { prev, hash, ...rest } = parsed[i]!;
      expect(rest).toEqual(record(i));
      if (i > 0) expect(prev).toBe(parsed[i - 1]!.hash);
      expect(hash).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  test('the hash covers the exact bytes before ,"hash"', async () => {
    const file = await chainedFile(1);
    const line = lines(file)[0]!;
    const [, body, hash] = /^(.*),"hash":"([0-9a-f]{64})"\}$/.exec(line)!;
    expect(chainHash(`${body}}`, undefined)).toBe(hash);
  });

  test('each line is byte for byte JSON.stringify({ ...record, prev }) with the hash appended', async () => {
    const file = await chainedFile(3);
    const written = lines(file);
    let prev: string | null = null;
    for (let i = 0; i < 3; i++) {
      const body = JSON.stringify({ ...record(i), prev });
      const hash = chainHash(body, undefined);
      expect(written[i]).toBe(`${body.slice(0, -1)},"hash":"${hash}"}`);
      prev = hash;
    }
  });

  test('records of one event-loop turn are written together at its end, in order, and chained', async () => {
    const file = tempFile();
    const log = new AuditLog({ dest: file, hashChain: true });
    for (let i = 0; i < 50; i++) log.write(record(i));
    expect(lines(file)).toHaveLength(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines(file).map((l) => (JSON.parse(l) as { requestId: string }).requestId)).toEqual(Array.from({ length: 50 }, (_, i) => `req-${i}`));
    for (let i = 50; i < 60; i++) {
      log.write(record(i));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(verifyAuditFile(file, undefined)).toEqual({ records: 60, segments: 1, failure: null });
  });

  test('a file larger than the read chunk verifies, with multi-byte characters across chunk edges', async () => {
    // ~3 MiB of records whose paths hold 2-, 3- and 4-byte UTF-8 characters: some straddle the
    // 1 MiB chunks verify reads, and a line cut there must be decoded whole.
    const file = tempFile();
    const log = new AuditLog({ dest: file, hashChain: true });
    const n = 4000;
    for (let i = 0; i < n; i++) log.write({ ...record(i), action: { method: 'GET', path: `/é/€/𝄞/${'ü'.repeat(i % 97)}/${i}`, mcpTool: null, rpcMethod: null } });
    await log.flush();
    expect(verifyAuditFile(file, undefined)).toEqual({ records: n, segments: 1, failure: null });
    // An edit far into the file is found at its line.
    rewrite(file, (all) => all.map((l, i) => (i === 3000 ? l.replace('/é/', '/e/') : l)));
    expect(verifyAuditFile(file, undefined).failure).toEqual({ line: 3001, reason: expect.stringContaining('hash does not match') });
  });

  test('editing one byte of a record fails at that line', async () => {
    const file = await chainedFile(6);
    rewrite(file, (ls) => ls.map((l, i) => (i === 3 ? l.replace('"/tools/3"', '"/tools/X"') : l)));
    expect(lines(file)[3]).toContain('/tools/X');
    const report = verifyAuditFile(file, undefined);
    expect(report.failure).toEqual({ line: 4, reason: expect.stringContaining('hash does not match') });
    expect(report.records).toBe(3);
  });

  test('editing the decision of a record (allow ↔ deny) fails at that line', async () => {
    const file = await chainedFile(4);
    rewrite(file, (ls) => ls.map((l, i) => (i === 1 ? l.replace('"decision":"deny"', '"decision":"allow"') : l)));
    expect(verifyAuditFile(file, undefined).failure?.line).toBe(2);
  });

  test('deleting a line fails at the line after the gap', async () => {
    const file = await chainedFile(6);
    rewrite(file, (ls) => ls.filter((_, i) => i !== 2));
    expect(verifyAuditFile(file, undefined).failure).toEqual({ line: 3, reason: expect.stringContaining('prev does not match') });
  });

  test('deleting the first line fails at line 1', async () => {
    const file = await chainedFile(3);
    rewrite(file, (ls) => ls.slice(1));
    expect(verifyAuditFile(file, undefined).failure).toEqual({ line: 1, reason: expect.stringContaining('prev does not match') });
  });

  test('swapping two lines fails at the first swapped line', async () => {
    const file = await chainedFile(6);
    rewrite(file, (ls) => [ls[0]!, ls[1]!, ls[3]!, ls[2]!, ls[4]!, ls[5]!]);
    expect(verifyAuditFile(file, undefined).failure).toEqual({ line: 3, reason: expect.stringContaining('prev does not match') });
  });

  test('a line without a hash fails with its line number', async () => {
    const file = await chainedFile(2);
    rewrite(file, (ls) => [...ls, JSON.stringify(record(9))]);
    expect(verifyAuditFile(file, undefined).failure).toEqual({ line: 3, reason: 'no hash field at the end of the line' });
  });
});

describe('HMAC key', () => {
  test('verifies with the key, fails without it or with another key', async () => {
    const file = await chainedFile(4, 'k3y-0f-the-audit');
    expect(verifyAuditFile(file, 'k3y-0f-the-audit')).toEqual({ records: 4, segments: 1, failure: null });
    expect(verifyAuditFile(file, undefined).failure).toEqual({ line: 1, reason: expect.stringContaining('hash does not match') });
    expect(verifyAuditFile(file, 'another-key').failure).toEqual({ line: 1, reason: expect.stringContaining('hash does not match') });
  });

  test('a plain SHA-256 chain does not verify as keyed', async () => {
    const file = await chainedFile(2);
    expect(verifyAuditFile(file, 'some-key').failure?.line).toBe(1);
  });

  test('someone without the key cannot re-chain an edited line', async () => {
    const file = await chainedFile(3, 'secret');
    // Edit line 2 and recompute its hash with plain SHA-256 (all a key-less attacker can do).
    rewrite(file, (ls) =>
      ls.map((l, i) => {
        if (i !== 1) return l;
        const body = `${l.replace(/,"hash":"[0-9a-f]{64}"\}$/, '').replace('"/tools/1"', '"/tools/X"')}}`;
        return `${body.slice(0, -1)},"hash":"${chainHash(body, undefined)}"}`;
      }),
    );
    expect(verifyAuditFile(file, 'secret').failure?.line).toBe(2);
  });
});

describe('appending', () => {
  test('a second AuditLog on the same file continues the chain (no new segment)', async () => {
    const file = tempFile();
    await writeRecords(new AuditLog({ dest: file, hashChain: true }), file, 0, 3);
    await writeRecords(new AuditLog({ dest: file, hashChain: true }), file, 3, 6);
    const parsed = lines(file).map((l) => JSON.parse(l) as { prev: string | null; hash: string });
    expect(parsed[3]!.prev).toBe(parsed[2]!.hash);
    expect(verifyAuditFile(file, undefined)).toEqual({ records: 6, segments: 1, failure: null });
  });

  test('a chain appended to a file of plain lines starts a new segment there', async () => {
    const file = tempFile();
    await writeRecords(new AuditLog({ dest: file, hashChain: false }), file, 0, 1);
    await writeRecords(new AuditLog({ dest: file, hashChain: true }), file, 1, 3);
    expect((JSON.parse(lines(file)[1]!) as { prev: unknown }).prev).toBeNull();
  });

  test('hashChain false writes the plain record, one JSON line each', async () => {
    const file = tempFile();
    await writeRecords(new AuditLog({ dest: file, hashChain: false }), file, 0, 3);
    expect(lines(file).map((l) => JSON.parse(l) as unknown)).toEqual([record(0), record(1), record(2)]);
    expect(lines(file)[0]).toBe(JSON.stringify(record(0)));
    expect(verifyAuditFile(file, undefined).failure).toEqual({ line: 1, reason: 'no hash field at the end of the line' });
  });
});

describe('flush', () => {
  test('flush() resolves only once every written record is in the file', async () => {
    // app.stop() awaits flush() and `agentward serve` then calls process.exit(): records still
    // in flight at that moment are lost.
    const file = tempFile();
    const log = new AuditLog({ dest: file, hashChain: true });
    for (let i = 0; i < 5; i++) log.write(record(i));
    await log.flush();
    expect(lines(file)).toHaveLength(5);
  });
});

describe('refusals are written before their answer (writeNow)', () => {
  test('writeNow writes the queued records first, then its own, in chain order, at once', async () => {
    const file = tempFile();
    const log = new AuditLog({ dest: file, hashChain: true, fsync: 'deny' });
    log.write(record(0));
    log.write(record(1));
    const durable = log.writeNow(record(2));
    // Written synchronously: the file holds all three before the fsync has even finished.
    expect(lines(file).map((l) => (JSON.parse(l) as { requestId: string }).requestId)).toEqual(['req-0', 'req-1', 'req-2']);
    await durable;
    // Refusals that come while an fsync runs share the next one; each resolves.
    await Promise.all([log.writeNow(record(3)), log.writeNow(record(4)), log.writeNow(record(5))]);
    log.close();
    expect(verifyAuditFile(file, undefined)).toEqual({ records: 6, segments: 1, failure: null });
  });
});

describe('refusals batched with their turn (writeBeforeAnswer)', () => {
  test("the turn's records go out in one write, in order; each promise settles once its record is in the file", async () => {
    const file = tempFile();
    const log = new AuditLog({ dest: file, hashChain: true, fsync: 'deny' });
    log.write(record(0));
    const first = log.writeBeforeAnswer(record(1));
    log.write(record(2));
    const second = log.writeBeforeAnswer(record(3));
    // Nothing is written within the turn...
    expect(existsSync(file) ? lines(file) : []).toEqual([]);
    const seen: string[][] = [];
    await Promise.all([first, second].map((p) => p.then(() => seen.push(lines(file).map((l) => (JSON.parse(l) as { requestId: string }).requestId)))));
    // ...and both promises settle with all four records in the file (and synced: fsync deny).
    expect(seen).toEqual([
      ['req-0', 'req-1', 'req-2', 'req-3'],
      ['req-0', 'req-1', 'req-2', 'req-3'],
    ]);
    log.close();
    expect(verifyAuditFile(file, undefined)).toEqual({ records: 4, segments: 1, failure: null });
  });

  test('a batch that cannot be written fails its waiting refusals and is counted', async () => {
    const broken = new AuditLog({ dest: tempFile(), hashChain: false });
    (broken as unknown as { stream: { write: () => never } }).stream.write = () => {
      throw Object.assign(new Error('EBADF: bad file descriptor, write'), { code: 'EBADF' });
    };
    const waiting = broken.writeBeforeAnswer(record(0));
    // The batch is written on demand here, as the end of the turn would; the refusal waiting for it learns of the failure.
    expect(() => (broken as unknown as { writeBatch: () => void }).writeBatch()).toThrow(/EBADF/);
    await expect(waiting).rejects.toThrow(/EBADF/);
    expect(broken.counts()).toEqual({ written: 0, failed: 1 });
  });
});

describe('rotation', () => {
  test('by size: the chain runs on across files; the set verifies oldest first, and each file from a rotation record', async () => {
    const file = tempFile();
    let now = Date.UTC(2026, 11, 6, 9, 0, 0);
    const log = new AuditLog({ dest: file, hashChain: true, rotate: { maxBytes: 2000 }, now: () => (now += 1000) });
    for (let i = 0; i < 30; i++) {
      log.write(record(i));
      await log.flush();
    }
    log.close();
    const dir = dirname(file);
    const rotated = readdirSync(dir).filter((f) => f !== 'audit.jsonl').sort().map((f) => join(dir, f));
    expect(rotated.length).toBeGreaterThanOrEqual(3);
    for (const f of rotated) expect(statSync(f).size).toBeLessThan(2000 + 1000);
    const set = [...rotated, file];
    const all = verifyAuditFiles(set, undefined);
    expect(all.failure).toBeNull();
    // 30 records plus one rotation record at the start of every file but the first.
    expect(all.records).toBe(30 + rotated.length);
    expect(all.segments).toBe(1);
    // The second file alone continues the first: it verifies, naming the file it continues.
    const second = verifyAuditFiles([set[1]!], undefined);
    expect(second.failure).toBeNull();
    expect(second.continues).toBe(basename(set[0]!));
    // A file missing from the middle of the set, or the set out of order, is found.
    expect(verifyAuditFiles([set[0]!, set[2]!], undefined).failure).toEqual({ file: set[2], line: 1, reason: expect.stringContaining('a file of the set is missing') });
    expect(verifyAuditFiles([set[1]!, set[0]!], undefined).failure?.file).toBe(set[0]);
  });

  test('rotatedName sorts by time and keeps the extension', () => {
    expect(rotatedName('/var/log/audit.jsonl', Date.UTC(2026, 11, 6, 9, 30, 0, 123))).toBe('/var/log/audit.2026-12-06T09-30-00-123Z.jsonl');
  });
});

describe('checkpoints', () => {
  async function withCheckpoints(n: number, key?: string): Promise<{ file: string; checkpoints: string[] }> {
    const file = tempFile();
    const checkpoints: string[] = [];
    // A long interval: checkpoints are taken by hand (close) and through the test's own calls.
    const log = new AuditLog({ dest: file, hashChain: true, hashKey: key, checkpoint: { intervalMs: 3_600_000, write: (line) => checkpoints.push(line) } });
    for (let i = 0; i < n; i++) {
      log.write(record(i));
      await log.flush();
      if (i % 5 === 4) (log as unknown as { writeCheckpoint(): void }).writeCheckpoint();
    }
    log.close();
    return { file, checkpoints };
  }

  test('every checkpoint is found in order; a cut-off end is found', async () => {
    const { file, checkpoints } = await withCheckpoints(12, 'k3y');
    expect(checkpoints).toHaveLength(3); // after records 5 and 10, and at close (12)
    expect(verifyAuditFiles([file], 'k3y', checkpoints)).toMatchObject({ records: 12, checkpoints: 3, failure: null });
    // The last two records cut off: the chain still verifies alone, the checkpoint shows the cut.
    rewrite(file, (all) => all.slice(0, 10));
    expect(verifyAuditFile(file, 'k3y').failure).toBeNull();
    expect(verifyAuditFiles([file], 'k3y', checkpoints).failure).toMatchObject({ reason: expect.stringContaining('records were cut off the end') });
  });

  test('a chain computed anew over edited records (a spliced segment) is found without the key too', async () => {
    const { file, checkpoints } = await withCheckpoints(10);
    // Rewrite records 3..9 as a foreign segment starting at prev null, hashes recomputed: the
    // chain verifies (two segments), but the checkpoints' heads are gone.
    const kept = lines(file).slice(0, 3);
    let prev: string | null = null;
    const forged = Array.from({ length: 7 }, (_, k) => {
      const body = JSON.stringify({ ...record(100 + k), prev });
      const hash = chainHash(body, undefined);
      prev = hash;
      return `${body.slice(0, -1)},"hash":"${hash}"}`;
    });
    writeFileSync(file, `${[...kept, ...forged].join('\n')}\n`);
    expect(verifyAuditFile(file, undefined)).toMatchObject({ segments: 2, failure: null });
    expect(verifyAuditFiles([file], undefined, checkpoints).failure).toMatchObject({ reason: expect.stringContaining('replaced by a chain computed anew') });
  });

  test('a checkpoint made up without the key, or edited, is refused', async () => {
    const { file, checkpoints } = await withCheckpoints(5, 'k3y');
    const edited = checkpoints.map((l) => l.replace(/"head":"[0-9a-f]{4}/, '"head":"0000'));
    expect(verifyAuditFiles([file], 'k3y', edited).failure).toMatchObject({ file: '(checkpoints)', line: 1, reason: expect.stringContaining('MAC does not match') });
    // Log lines around checkpoints are skipped: a whole log file can be given.
    const log = ['{"level":"info","msg":"agentward started"}', ...checkpoints.map((l) => `{"level":"info",${l.slice(1, -1)},"msg":"audit checkpoint"}`)];
    expect(verifyAuditFiles([file], 'k3y', log)).toMatchObject({ checkpoints: 1, failure: null });
  });
});

describe('counts (metrics)', () => {
  test('records written are counted once they reach the destination; a failed write is counted as failed', async () => {
    const file = tempFile();
    const log = new AuditLog({ dest: file, hashChain: true });
    log.write(record(1));
    log.write(record(2));
    expect(log.counts()).toEqual({ written: 0, failed: 0 });
    await log.writeNow(record(3));
    expect(log.counts()).toEqual({ written: 3, failed: 0 });
    log.close();
    // A destination that refuses the write (its descriptor closed under it): the batch is failed, not lost silently.
    const broken = new AuditLog({ dest: tempFile(), hashChain: false });
    (broken as unknown as { stream: { write: () => never } }).stream.write = () => {
      throw Object.assign(new Error('EBADF: bad file descriptor, write'), { code: 'EBADF' });
    };
    expect(() => broken.writeNow(record(4))).toThrow(/EBADF/);
    expect(broken.counts()).toEqual({ written: 0, failed: 1 });
  });
});
