/**
 * Server-side failures (5xx: the upstream down, slow or resetting, an internal error), logged
 * without a flood. The first failure of a code is logged in full (request id, cause with its
 * stack); the others of that code in the next `periodMs` are counted, and one line sums them up
 * when the period ends. The next failure after that is logged in full again.
 *
 * Why: with the upstream down every request fails the same way, and a line with a stack per
 * request costs the process about as much as the request (the same finding as for shed requests,
 * bench/README.md "Overload"), floods the log collector, and tells the operator nothing the first
 * line and a count do not. Every request still has its audit record, with its code and status.
 */
import type { AgentwardError } from '../errors.ts';
import type { Logger } from './logger.ts';

const PERIOD_MS = 1000;

export class ServerErrorLog {
  private readonly logger: Logger;
  private readonly periodMs: number;
  /** Failures not logged in full, by code, in the period that code's last full line began. */
  private readonly counted = new Map<string, number>();
  /** The end of each open period. */
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(logger: Logger, periodMs = PERIOD_MS) {
    this.logger = logger;
    this.periodMs = periodMs;
  }

  report(requestId: string, err: AgentwardError, latencyMs: number): void {
    if (!this.logger.isLevelEnabled('error')) return;
    const counted = this.counted.get(err.code);
    if (counted !== undefined) {
      this.counted.set(err.code, counted + 1);
      return;
    }
    this.counted.set(err.code, 0);
    this.logger.error({ requestId, code: err.code, status: err.status, err: err.cause ?? err, latencyMs }, err.detail);
    const timer = setTimeout(() => this.endPeriod(err.code), this.periodMs);
    timer.unref();
    this.timers.set(err.code, timer);
  }

  /** Ends the open periods now (shutdown), so that no failure goes unlogged and uncounted. */
  close(): void {
    for (const [code, timer] of this.timers) {
      clearTimeout(timer);
      this.endPeriod(code);
    }
  }

  private endPeriod(code: string): void {
    const more = this.counted.get(code) ?? 0;
    this.counted.delete(code);
    this.timers.delete(code);
    if (more > 0) this.logger.error({ code, count: more, periodMs: this.periodMs }, `${more} more requests failed with ${code} in the last ${this.periodMs} ms; each has its audit record`);
  }
}
