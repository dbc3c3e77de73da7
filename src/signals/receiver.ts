/**
 * The receiving end of one OpenID Shared Signals stream (SSF 1.0): the transmitter's key set, found
 * through its `/.well-known/ssf-configuration` unless configured; SETs taken by push (RFC 8935, a
 * POST on a path of ours, authenticated by the Authorization value the transmitter was given) or
 * by poll (RFC 8936, a POST of ours to the transmitter, acknowledging what the previous poll
 * brought and reporting `setErrs` for what was refused); and, as far as a receiver needs stream
 * management (SSF 1.0 §8.1): reading the stream configuration and asking for a verification event.
 *
 * A verified SET becomes a `Signal` handed to `remediate` (the composition root marks, purges,
 * closes and audits, src/app/signals.ts). A refused SET has no effect; its reason is logged and
 * answered (push: RFC 8935 §2.3 `err`; poll: `setErrs` of the next poll). Nothing a transmitter
 * sends can throw out of here: every handler answers, every poll failure is logged and retried.
 */
import { randomUUID, hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { AgentwardError, asAgentwardError } from '../errors.ts';
import type { RevocationMark, RevocationMatch } from '../credentials/revocation.ts';
import { IssuerKeys, keySetOptions, metadataUrls } from '../keys/issuer-keys.ts';
import { readBounded } from '../outbound/bounded-body.ts';
import { fetchJson, postForm } from '../outbound/http.ts';
import type { Services } from '../services.ts';
import { actionOf, eventTime } from './events.ts';
import { SetVerifier, ssfError, type VerifiedSet } from './set.ts';
import { subjectMatches } from './subject.ts';

/** One accepted event (or an operator's purge), as the composition root acts on it. */
export interface Signal {
  source: 'ssf-push' | 'ssf-poll' | 'admin';
  /** The event type URI, or `purge`. */
  event: string;
  transmitter: string | null;
  setId: string | null;
  /** The subject as received. */
  subject: Record<string, unknown>;
  /** What to mark; empty when the event names nothing a token carries (it is still audited). */
  matches: RevocationMatch[];
  /** Why part or all of the subject marks nothing. */
  notes: string[];
  /** Tokens issued at or before this time (epoch seconds) are refused. */
  before: number;
}

/** What a remediation did: the marks set, entries purged per cache, streams closed. */
export interface RemediationOutcome {
  marks: RevocationMark[];
  purged: Record<string, number>;
  streamsClosed: number;
}

export type Remediate = (signal: Signal) => RemediationOutcome;

/** One `signals.transmitters[]` entry, with its secrets resolved and durations in ms. */
export interface TransmitterSettings {
  issuer: string;
  jwksUri?: string | undefined;
  audience: string;
  algorithms: readonly string[];
  streamId?: string | undefined;
  /** Sent to the transmitter (poll, stream configuration, verification). */
  transmitterAuthorization?: string | undefined;
  delivery:
    | { method: 'push'; path: string; listener: 'admin' | 'main'; authorization: string }
    | { method: 'poll'; endpoint?: string | undefined; intervalMs: number; maxEvents: number; timeoutMs: number };
}

export interface ReceiverContext {
  maxSetAgeSeconds: number;
  replayCacheSize: number;
  remediate: Remediate;
}

/** RFC 8935 §2: SETs are pushed as application/secevent+jwt. */
const SET_MEDIA_TYPE = 'application/secevent+jwt';
/** Largest pushed SET read; SETs are small (one event, one subject). */
const MAX_SET_BYTES = 64 * 1024;
/** Largest poll answer read (up to maxEvents SETs). */
const MAX_POLL_BYTES = 8 * 1024 * 1024;
const MANAGEMENT_TIMEOUT_MS = 10_000;

interface StreamConfiguration {
  streamId: string | null;
  deliveryMethod: string | null;
  endpoint: string | null;
  eventsDelivered: string[];
}

export class Transmitter {
  readonly issuer: string;
  readonly keys: IssuerKeys;
  readonly settings: TransmitterSettings;
  private readonly verifier: SetVerifier;
  private readonly context: ReceiverContext;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly dispatcher: Dispatcher | undefined;
  /** SHA-256 of the Authorization value a push must carry (compared in constant time). */
  private readonly pushAuthorization: Buffer | undefined;
  private readonly counts = { accepted: 0, refused: 0, unknown: 0 };
  private lastError: string | null = null;
  private lastEventAt: string | null = null;
  private stream: StreamConfiguration | undefined;
  /** The state of the verification event asked for, until it arrives (SSF 1.0 §8.1.4.2). */
  private verification: { state: string; verified: boolean } | undefined;
  // Poll delivery: what the next poll acknowledges and reports (RFC 8936 §2.4).
  private acks: string[] = [];
  /** A Map: the keys are the transmitter's (`__proto__` must stay a key). */
  private setErrs = new Map<string, { err: string; description: string }>();
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastPollAt: string | null = null;
  private closed = false;

  constructor(settings: TransmitterSettings, context: ReceiverContext, services: Services) {
    this.issuer = settings.issuer;
    this.settings = settings;
    this.context = context;
    this.logger = services.logger.child({ transmitter: settings.issuer });
    this.now = services.now;
    this.dispatcher = services.dispatcher;
    this.keys = new IssuerKeys({ issuer: settings.issuer, jwksUri: settings.jwksUri, discovery: 'ssf-configuration' }, keySetOptions(services));
    this.verifier = new SetVerifier({
      issuer: settings.issuer,
      audience: settings.audience,
      algorithms: settings.algorithms,
      keys: (header, jws) => this.keys.getKey(header, jws),
      maxAgeSeconds: context.maxSetAgeSeconds,
      clockSkewSeconds: services.clockSkewSeconds,
      replayCacheSize: context.replayCacheSize,
      now: services.now,
    });
    this.pushAuthorization = settings.delivery.method === 'push' ? hash('sha256', settings.delivery.authorization, 'buffer') : undefined;
  }

  /** Loads the key set, reads the stream (when it may), asks for verification, starts polling. */
  async start(): Promise<void> {
    await this.keys.start();
    if (this.settings.transmitterAuthorization !== undefined) {
      await this.readStreamConfiguration().catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'SSF stream configuration could not be read'));
      await this.requestVerification().catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'SSF verification could not be requested'));
    }
    if (this.settings.delivery.method === 'poll') this.schedule(0);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.keys.close();
  }

  status(): Record<string, unknown> {
    const delivery = this.settings.delivery;
    return {
      issuer: this.issuer,
      delivery: delivery.method === 'push' ? { method: 'push', listener: delivery.listener, path: delivery.path } : { method: 'poll', lastPollAt: this.lastPollAt, failures: this.failures },
      keys: this.keys.status(),
      ...this.counts,
      lastEventAt: this.lastEventAt,
      lastError: this.lastError,
      setIdsRemembered: this.verifier.remembered,
      stream: this.stream ?? null,
      verified: this.verification?.verified ?? null,
    };
  }

  // ------------------------------------------------------------ push (RFC 8935)

  /** Answers one push: 202 when the SET is accepted (unknown events too), else §2.3's error. */
  readonly handlePush = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST', 'content-length': 0, connection: 'close' }).end();
        return;
      }
      if (!this.authorized(req.headers.authorization)) throw new AgentwardError('ERR_SET_UNAUTHORIZED');
      const type = req.headers['content-type']?.split(';', 1)[0]?.trim().toLowerCase();
      if (type !== SET_MEDIA_TYPE) throw new AgentwardError('ERR_SET_UNSUPPORTED_MEDIA');
      const body = await readBounded(req, {
        maxBytes: MAX_SET_BYTES,
        contentLength: req.headers['content-length'],
        tooLarge: () => new AgentwardError('ERR_SET_MALFORMED', `The SET is larger than ${MAX_SET_BYTES} bytes.`),
        readFailed: (cause) => new AgentwardError('ERR_SET_MALFORMED', 'The request body could not be read.', { cause }),
      });
      const set = await this.verifier.verify(body.toString('utf8').trim());
      this.accept(set, 'ssf-push');
      res.writeHead(202, { 'content-length': 0 }).end();
    } catch (err) {
      const error = asAgentwardError(err);
      this.refused(error, 'ssf-push');
      if (error.status >= 500) {
        // The key set cannot be loaded: not the SET's fault; the transmitter retries (RFC 8935 §2.2).
        res.writeHead(503, { 'retry-after': '5', 'content-length': 0, connection: 'close' }).end();
        return;
      }
      const answer = JSON.stringify({ err: ssfError(error.code), description: error.detail });
      // An unauthenticated request's body is not read: the connection is closed after the answer.
      const close = error.code === 'ERR_SET_UNAUTHORIZED' ? { connection: 'close' } : {};
      res.writeHead(error.status === 401 ? 401 : 400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer), 'cache-control': 'no-store', ...close }).end(answer);
    }
  };

  /** RFC 8935 §2: the Authorization value this transmitter was given, compared in constant time. */
  private authorized(value: string | undefined): boolean {
    if (value === undefined || this.pushAuthorization === undefined) return false;
    return timingSafeEqual(hash('sha256', value, 'buffer'), this.pushAuthorization);
  }

  // ------------------------------------------------------------ poll (RFC 8936)

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.poll(), delayMs);
    this.timer.unref();
  }

  /** One poll, then the next: at once when more are available, after the interval otherwise, backing off on failures. */
  private async poll(): Promise<void> {
    const delivery = this.settings.delivery;
    if (delivery.method !== 'poll') return;
    let more = false;
    try {
      more = await this.pollOnce(delivery);
      this.failures = 0;
    } catch (err) {
      this.failures++;
      this.lastError = (err as Error).message;
      this.logger.warn({ err: this.lastError, failures: this.failures }, 'SSF poll failed');
    }
    const backoff = Math.min(delivery.intervalMs * 2 ** this.failures, delivery.intervalMs * 8);
    this.schedule(this.failures > 0 ? backoff : more ? 0 : delivery.intervalMs);
  }

  /** RFC 8936 §2.4: acknowledge and report, take up to maxEvents; returns `moreAvailable`. */
  async pollOnce(delivery: Extract<TransmitterSettings['delivery'], { method: 'poll' }>): Promise<boolean> {
    const endpoint = delivery.endpoint ?? (await this.streamEndpoint());
    const acks = this.acks;
    const setErrs = this.setErrs;
    const request = { ack: acks, ...(setErrs.size > 0 ? { setErrs: Object.fromEntries(setErrs) } : {}), maxEvents: delivery.maxEvents, returnImmediately: true };
    const answer = await postForm(new URL(endpoint), JSON.stringify(request), {
      timeoutMs: delivery.timeoutMs,
      maxBytes: MAX_POLL_BYTES,
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: this.settings.transmitterAuthorization! },
      dispatcher: this.dispatcher,
      fail: (failure, url) => new Error(`poll of ${url} failed (${failure.kind})`),
    });
    this.lastPollAt = new Date(this.now()).toISOString();
    if (answer.status !== 200) throw new Error(`poll of ${endpoint} answered HTTP ${answer.status}`);
    // The transmitter has them: acknowledged SETs are not delivered again (RFC 8936 §2.4).
    this.acks = this.acks.slice(acks.length);
    this.setErrs = new Map();
    let body: { sets?: unknown; moreAvailable?: unknown };
    try {
      body = JSON.parse(answer.body.toString('utf8')) as typeof body;
    } catch {
      throw new Error(`poll of ${endpoint} answered something that is not JSON`);
    }
    const sets = body.sets;
    if (typeof sets !== 'object' || sets === null || Array.isArray(sets)) throw new Error(`poll of ${endpoint} answered without a sets object (RFC 8936 section 2.5)`);
    for (const [jti, token] of Object.entries(sets as Record<string, unknown>)) {
      try {
        if (typeof token !== 'string') throw new AgentwardError('ERR_SET_MALFORMED', 'The SET is not a string.');
        const set = await this.verifier.verify(token);
        if (set.jti !== jti) throw new AgentwardError('ERR_SET_CLAIMS', 'The SET jti is not the key it was delivered under (RFC 8936 section 2.5).');
        this.accept(set, 'ssf-poll');
        this.acks.push(jti);
      } catch (err) {
        const error = asAgentwardError(err);
        this.refused(error, 'ssf-poll', jti);
        // A key set we cannot load is our outage: neither acknowledged nor refused, so it comes again.
        if (error.status < 500) this.setErrs.set(jti, { err: ssfError(error.code), description: error.detail });
      }
    }
    return body.moreAvailable === true;
  }

  // ------------------------------------------------------------ stream management (SSF 1.0 §8.1)

  /** The transmitter's SSF configuration (SSF 1.0 §7.2): its `issuer` must be this one exactly. */
  private async metadata(): Promise<Record<string, unknown>> {
    const url = metadataUrls(this.issuer, 'ssf-configuration')[0]!;
    const meta = (await fetchJson(url, this.getOptions())) as Record<string, unknown>;
    if (typeof meta !== 'object' || meta === null || meta.issuer !== this.issuer) throw new Error(`${url} names another issuer than ${this.issuer}`);
    return meta;
  }

  private getOptions() {
    return { timeoutMs: MANAGEMENT_TIMEOUT_MS, headers: { authorization: this.settings.transmitterAuthorization ?? '' }, ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}) };
  }

  /** SSF 1.0 §8.1.1.2: reads this receiver's stream (or the one `streamId` names). */
  private async readStreamConfiguration(): Promise<StreamConfiguration> {
    const meta = await this.metadata();
    if (typeof meta.configuration_endpoint !== 'string') throw new Error('the SSF configuration has no configuration_endpoint');
    const url = new URL(meta.configuration_endpoint);
    if (this.settings.streamId !== undefined) url.searchParams.set('stream_id', this.settings.streamId);
    const answer = await fetchJson(url.href, this.getOptions());
    // Without stream_id the transmitter may list every stream of this receiver: the one for our audience.
    const streams = (Array.isArray(answer) ? answer : [answer]) as Record<string, unknown>[];
    const mine = streams.find((s) => s.aud === this.settings.audience || (Array.isArray(s.aud) && s.aud.includes(this.settings.audience))) ?? streams[0];
    if (typeof mine !== 'object' || mine === null) throw new Error('the stream configuration is empty');
    const delivery = (mine.delivery ?? {}) as Record<string, unknown>;
    this.stream = {
      streamId: typeof mine.stream_id === 'string' ? mine.stream_id : null,
      deliveryMethod: typeof delivery.method === 'string' ? delivery.method : null,
      endpoint: typeof delivery.endpoint_url === 'string' ? delivery.endpoint_url : null,
      eventsDelivered: Array.isArray(mine.events_delivered) ? mine.events_delivered.filter((e): e is string => typeof e === 'string') : [],
    };
    this.logger.info({ stream: this.stream }, 'SSF stream configuration read');
    return this.stream;
  }

  /** Poll delivery without a configured endpoint: the stream's `delivery.endpoint_url`. */
  private async streamEndpoint(): Promise<string> {
    const endpoint = this.stream?.endpoint ?? (await this.readStreamConfiguration()).endpoint;
    if (endpoint === null) throw new Error('the stream configuration names no delivery endpoint_url; set delivery.endpoint');
    return endpoint;
  }

  /** SSF 1.0 §8.1.4.2: asks the transmitter to send a verification event with a fresh state. */
  private async requestVerification(): Promise<void> {
    const meta = await this.metadata();
    if (typeof meta.verification_endpoint !== 'string') return;
    const state = randomUUID();
    const answer = await postForm(new URL(meta.verification_endpoint), JSON.stringify({ stream_id: this.stream?.streamId ?? this.settings.streamId, state }), {
      timeoutMs: MANAGEMENT_TIMEOUT_MS,
      maxBytes: 64 * 1024,
      headers: { 'content-type': 'application/json', authorization: this.settings.transmitterAuthorization! },
      dispatcher: this.dispatcher,
      fail: (failure, url) => new Error(`verification request to ${url} failed (${failure.kind})`),
    });
    if (answer.status !== 204 && answer.status !== 200) throw new Error(`verification request answered HTTP ${answer.status}`);
    this.verification = { state, verified: false };
  }

  // ------------------------------------------------------------ acting on a SET

  /** Acts on a verified SET: its subject is read first, so a malformed one is refused without effect. */
  private accept(set: VerifiedSet, source: 'ssf-push' | 'ssf-poll'): void {
    const action = actionOf(set.type, set.payload);
    const log = { jti: set.jti, event: set.type, source };
    if (action.kind === 'remediate' || action.kind === 'note') {
      if (set.subject === undefined) throw new AgentwardError('ERR_SET_CLAIMS', 'The SET has no sub_id (SSF 1.0).');
      const { matches, notes } = action.kind === 'note' ? { matches: [], notes: [action.why] } : subjectMatches(set.subject);
      set.commit();
      this.counted();
      this.context.remediate({
        source,
        event: set.type,
        transmitter: this.issuer,
        setId: set.jti,
        subject: set.subject as Record<string, unknown>,
        matches,
        notes,
        before: eventTime(set.payload, set.iat, Math.floor(this.now() / 1000)),
      });
      return;
    }
    set.commit();
    this.counted();
    if (action.kind === 'verification') {
      const expected = this.verification && action.state === this.verification.state;
      if (expected) this.verification!.verified = true;
      this.logger.info({ ...log, expected: expected ?? false }, 'SSF verification event received');
    } else if (action.kind === 'stream-updated') {
      this.logger.warn({ ...log, status: action.status }, 'SSF stream status changed');
    } else {
      this.counts.unknown++;
      this.logger.info(log, 'SSF event of an unknown type acknowledged; it has no effect');
    }
  }

  private counted(): void {
    this.counts.accepted++;
    this.lastEventAt = new Date(this.now()).toISOString();
  }

  private refused(error: AgentwardError, source: 'ssf-push' | 'ssf-poll', jti?: string): void {
    this.counts.refused++;
    this.lastError = `${error.code}: ${error.detail}`;
    const level = error.status >= 500 ? 'error' : 'warn';
    this.logger[level]({ code: error.code, err: error.status >= 500 ? (error.cause ?? error) : undefined, source, jti, ssfError: error.status < 500 ? ssfError(error.code) : undefined }, `SSF security event refused: ${error.detail}`);
  }
}
