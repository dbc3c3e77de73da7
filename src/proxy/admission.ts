/**
 * Admission control: a bounded number of requests run the pipeline at once, a bounded number wait
 * for a slot, and the rest are refused at once with 503 and `Retry-After` (RFC 9110 §15.6.4,
 * §10.2.3). Offered more than it can serve, the proxy then spends its one core on the requests it
 * can finish in time instead of on all of them late: without a bound, every request waits behind
 * all the others, and most are answered after their callers have given up.
 *
 * A request whose caller has gone while it waits is dropped without any work (it never reaches
 * the pipeline); one that waited longer than `queueTimeoutMs` is refused, because its caller is
 * probably gone too. Each of these outcomes still reaches the pipeline's recording step through
 * `refuse`, so every request leaves an audit record.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgentwardError } from '../errors.ts';

export interface AdmissionOptions {
  /** Requests in the pipeline at once. */
  maxInFlight: number;
  /** Requests waiting for a slot; beyond this they are refused at once. 0: none wait. */
  maxQueued: number;
  /** Longest wait for a slot before a queued request is refused. */
  queueTimeoutMs: number;
  /**
   * Told, once per REPORT_MS while refusals go on, how many requests were refused for overload
   * in that time: one log line per second instead of one per refused request, which under
   * overload would be a flood costing as much as the requests (bench/README.md, "Overload").
   */
  onShedding?: (refused: number, periodMs: number) => void;
  now?: () => number;
}

const REPORT_MS = 1000;
/**
 * Every shed request gets this one error: its fields are read-only and its stack says nothing, and
 * capturing a stack per request was a tenth of the cost of a refusal under overload.
 */
const OVERLOADED = new AgentwardError('ERR_OVERLOADED');

/** Runs an admitted request; resolves when its pipeline run has finished. */
export type RunRequest = (req: IncomingMessage, res: ServerResponse) => Promise<void>;
/** Answers and records a request that is not run (ERR_OVERLOADED, ERR_CLIENT_CLOSED). */
export type RefuseRequest = (req: IncomingMessage, res: ServerResponse, error: AgentwardError) => void;

interface Waiting {
  req: IncomingMessage;
  res: ServerResponse;
  since: number;
}

export class Admission {
  private readonly options: AdmissionOptions;
  private readonly run: RunRequest;
  private readonly refuse: RefuseRequest;
  private readonly now: () => number;
  private inFlight = 0;
  private readonly queue: Waiting[] = [];
  /** Index of the queue's head: shifting a long array on every release would cost O(n). */
  private head = 0;
  private refused = 0;
  /** Refusals since the current report period began (0: no period running). */
  private refusedInPeriod = 0;

  constructor(options: AdmissionOptions, run: RunRequest, refuse: RefuseRequest) {
    this.options = options;
    this.run = run;
    this.refuse = refuse;
    this.now = options.now ?? (() => performance.now());
  }

  /** Admits, queues or refuses one request. */
  offer(req: IncomingMessage, res: ServerResponse): void {
    if (this.inFlight < this.options.maxInFlight) {
      this.start(req, res);
      return;
    }
    if (this.queue.length - this.head < this.options.maxQueued) {
      this.queue.push({ req, res, since: this.now() });
      return;
    }
    this.overloaded(req, res);
  }

  /** For /readyz: how busy the proxy is now, and how many requests it refused since start. */
  status(): { inFlight: number; queued: number; refused: number; maxInFlight: number; maxQueued: number } {
    return { inFlight: this.inFlight, queued: this.queue.length - this.head, refused: this.refused, maxInFlight: this.options.maxInFlight, maxQueued: this.options.maxQueued };
  }

  private start(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight++;
    // The run resolves when the response is done (or the pipeline gave up); only then is the slot free.
    void this.run(req, res).finally(() => this.release());
  }

  private release(): void {
    this.inFlight--;
    while (this.head < this.queue.length && this.inFlight < this.options.maxInFlight) {
      const next = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Waiting;
      if (next.req.destroyed || next.res.destroyed) {
        // The caller has gone while waiting: no work for it, only its record.
        this.refuse(next.req, next.res, new AgentwardError('ERR_CLIENT_CLOSED'));
      } else if (this.now() - next.since > this.options.queueTimeoutMs) {
        this.overloaded(next.req, next.res);
      } else {
        this.start(next.req, next.res);
      }
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
  }

  private overloaded(req: IncomingMessage, res: ServerResponse): void {
    this.refused++;
    if (this.refusedInPeriod++ === 0 && this.options.onShedding) {
      setTimeout(() => {
        const refused = this.refusedInPeriod;
        this.refusedInPeriod = 0;
        this.options.onShedding!(refused, REPORT_MS);
      }, REPORT_MS).unref();
    }
    this.refuse(req, res, OVERLOADED);
  }
}
