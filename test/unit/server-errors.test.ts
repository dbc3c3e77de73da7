import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { Writable } from 'node:stream';
import { AgentwardError } from '../../src/errors.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ServerErrorLog } from '../../src/observability/server-errors.ts';

type Line = { level: string; msg: string; code: string; requestId?: string; count?: number; periodMs?: number; err?: { message: string; stack: string } };

function capture(level: 'error' | 'fatal' = 'error'): { log: ServerErrorLog; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { log: new ServerErrorLog(createLogger(level, sink), 1000), lines };
}

const unavailable = () => new AgentwardError('ERR_UPSTREAM_UNAVAILABLE', undefined, { cause: new Error('connect ECONNREFUSED 127.0.0.1:9') });
const timedOut = () => new AgentwardError('ERR_UPSTREAM_TIMEOUT');
/** Each line as [code, request id of a full line, count of a summary line]. */
const shapes = (lines: Line[]) => lines.map((l) => [l.code, l.requestId ?? null, l.count ?? null]);
const flush = () => new Promise((r) => setImmediate(r));

describe('ServerErrorLog', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }));
  afterEach(() => vi.useRealTimers());

  test('the first failure of a code is logged in full; the others of its period are summed up in one line when it ends', async () => {
    const { log, lines } = capture();
    log.report('r1', unavailable(), 1.5);
    for (let i = 2; i <= 5; i++) log.report(`r${i}`, unavailable(), 1);
    await flush();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', requestId: 'r1', code: 'ERR_UPSTREAM_UNAVAILABLE', status: 502, latencyMs: 1.5 });
    expect(lines[0]!.err!.stack).toContain('ECONNREFUSED'); // the cause, with its stack

    vi.advanceTimersByTime(1000);
    await flush();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 'error', code: 'ERR_UPSTREAM_UNAVAILABLE', count: 4, periodMs: 1000 });
    expect(lines[1]!.requestId).toBeUndefined();
    expect(lines[1]!.msg).toBe('4 more requests failed with ERR_UPSTREAM_UNAVAILABLE in the last 1000 ms; each has its audit record');

    // A new period: the next failure is logged in full again.
    log.report('r6', unavailable(), 1);
    await flush();
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ requestId: 'r6' });
  });

  test('a period with one failure ends without a count line; codes are counted apart', async () => {
    const { log, lines } = capture();
    log.report('a', unavailable(), 1);
    log.report('b', timedOut(), 500);
    log.report('c', timedOut(), 500);
    vi.advanceTimersByTime(1000);
    await flush();
    expect(shapes(lines)).toEqual([
      ['ERR_UPSTREAM_UNAVAILABLE', 'a', null],
      ['ERR_UPSTREAM_TIMEOUT', 'b', null],
      ['ERR_UPSTREAM_TIMEOUT', null, 1],
    ]);
  });

  test('close ends the open periods at once: the counted failures are written, nothing waits for a timer', async () => {
    const { log, lines } = capture();
    log.report('a', unavailable(), 1);
    log.report('b', unavailable(), 1);
    log.report('c', timedOut(), 500);
    log.close();
    expect(vi.getTimerCount()).toBe(0);
    await flush();
    expect(shapes(lines)).toEqual([
      ['ERR_UPSTREAM_UNAVAILABLE', 'a', null],
      ['ERR_UPSTREAM_TIMEOUT', 'c', null],
      ['ERR_UPSTREAM_UNAVAILABLE', null, 1],
    ]);
  });

  test('with error lines off (log.level fatal or silent) nothing is logged or counted', async () => {
    const { log, lines } = capture('fatal');
    log.report('a', unavailable(), 1);
    log.report('b', unavailable(), 1);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1000);
    await flush();
    expect(lines).toEqual([]);
  });
});
