/**
 * Admission control's report of shedding (src/proxy/admission.ts): one call per second while
 * requests are refused for overload, with their count, instead of a log line per refused request.
 * The limits themselves are tested against the real proxy in test/integration/admission.test.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { Admission } from '../../src/proxy/admission.ts';
import type { AgentwardError } from '../../src/errors.ts';

const request = () => ({ req: {} as IncomingMessage, res: {} as ServerResponse });

describe('admission control reports shedding once a second', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  test('refusals within a second make one report with their count; the next second starts a new one', () => {
    const reports: [number, number][] = [];
    const refused: AgentwardError[] = [];
    const admission = new Admission(
      { maxInFlight: 1, maxQueued: 0, queueTimeoutMs: 1000, onShedding: (n, ms) => reports.push([n, ms]) },
      () => new Promise(() => undefined), // the one admitted request never ends
      (_req, _res, err) => refused.push(err),
    );
    const offer = () => {
      const { req, res } = request();
      admission.offer(req, res);
    };
    offer();
    for (let i = 0; i < 5; i++) offer();
    expect(refused.map((e) => e.code)).toEqual(Array(5).fill('ERR_OVERLOADED'));
    expect(reports).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(reports).toEqual([[5, 1000]]);
    // Quiet: no report without refusals.
    vi.advanceTimersByTime(5000);
    expect(reports).toEqual([[5, 1000]]);
    offer();
    offer();
    vi.advanceTimersByTime(1000);
    expect(reports).toEqual([
      [5, 1000],
      [2, 1000],
    ]);
    expect(admission.status()).toMatchObject({ inFlight: 1, queued: 0, refused: 7 });
  });
});
