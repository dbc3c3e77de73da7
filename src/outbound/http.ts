/**
 * The one outbound HTTP client (undici), for every call agentward makes: key sets and metadata
 * (RFC 7517 §5, RFC 8414 §3, OpenID Connect Discovery §4), SPIFFE bundle endpoints (SPIFFE
 * Federation §5), OPA bundle servers (OPA docs, management-bundles) and token introspection
 * (RFC 7662 §2). Each exchange has one deadline for connect, head and body together, a size cap
 * on the answer (the one bounded reader, ./bounded-body.ts), and takes the caller's dispatcher
 * (conventions §10).
 *
 * A GET follows redirects only within the same origin, so a compromised or misconfigured endpoint
 * cannot send us to another host; `fetchBytes` also does a conditional GET (`If-None-Match`,
 * RFC 9110 §13.1.2) for sources that are polled, and `fetchJson` is its JSON flavour. A POST
 * follows no redirect at all: its body carries a token and client credentials.
 *
 * Failures to get or read an answer are named (`TransportFailure`) and turned into an error by the
 * caller's factory, so each caller keeps its own code and words: GETs throw FetchJsonError, the
 * introspection client its ERR_INTROSPECTION_UNAVAILABLE.
 */
import { request, type Dispatcher } from 'undici';
import { readBounded } from './bounded-body.ts';

/** What went wrong in getting or reading an answer, for the caller to word. */
export type TransportFailure =
  /** The request could not be sent or no answer head came (refused, reset, DNS). */
  | { kind: 'unreachable' }
  /** The deadline passed, before the head or while the body was read. */
  | { kind: 'timeout'; timeoutMs: number }
  /** The body is larger than the cap, as declared or as counted. */
  | { kind: 'too-large'; maxBytes: number }
  /** The body stream failed while being read. */
  | { kind: 'read-failed' };

/** Builds the caller's error for a failure at `url` (the target after redirects). */
export type TransportError = (failure: TransportFailure, url: string, cause?: unknown) => Error;

export interface FetchJsonOptions {
  /** Deadline for connect, headers and body together. */
  timeoutMs: number;
  /** A deadline shared with other fetches (e.g. discovery then the key set); wins when earlier. */
  signal?: AbortSignal;
  /** Connection pool to use; tests and the composition root pass their own. */
  dispatcher?: Dispatcher;
  /** Largest body accepted. Default 1 MiB. */
  maxBytes?: number;
  /** Same-origin redirects followed at most. Default 3. */
  maxRedirects?: number;
  /** Request fields besides Accept, e.g. the Authorization an SSF transmitter gave (sent on same-origin redirects only). */
  headers?: Record<string, string>;
}

export interface FetchBytesOptions extends FetchJsonOptions {
  /** The Accept header sent. */
  accept: string;
  /** An entity tag from an earlier answer, sent as If-None-Match; a 304 answer is then a result. */
  ifNoneMatch?: string | undefined;
}

/** A 200 answer's body (with its ETag), or a 304 answer to If-None-Match. */
export type FetchedBytes = { notModified: true } | { notModified: false; body: Buffer; etag: string | undefined; /** After redirects. */ url: string };

/** Why a GET failed, without the body of the answer (which could be anything). */
export class FetchJsonError extends Error {
  readonly url: string;
  constructor(url: string, message: string, cause?: unknown) {
    super(`${message} (${url})`, cause === undefined ? undefined : { cause });
    this.name = 'FetchJsonError';
    this.url = url;
  }
}

export interface PostOptions {
  /** Deadline for connect, headers and body together. */
  timeoutMs: number;
  /** Largest body of a 200 answer accepted. */
  maxBytes: number;
  /** Sent as they are: the caller precomputes them once, with the body's content type. */
  headers: Record<string, string>;
  /** Connection pool to use; tests and the composition root pass their own. */
  dispatcher?: Dispatcher | undefined;
  /** The caller's error for each failure; thrown as it is returned. */
  fail: TransportError;
}

/** A POST's answer. `body` is empty unless the status is 200. */
export interface PostAnswer {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Buffer;
}

const DEFAULT_MAX_BYTES = 1 << 20;
const DEFAULT_MAX_REDIRECTS = 3;
/** The statuses that redirect to their Location (RFC 9110 §15.4.2-4, §15.4.8-9). */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GETs `url` and parses its body as JSON; throws FetchJsonError for anything but a 200 with JSON. */
export async function fetchJson(url: string, options: FetchJsonOptions): Promise<unknown> {
  const answer = await fetchBytes(url, { ...options, accept: 'application/json, application/jwk-set+json' });
  // No If-None-Match was sent, so fetchBytes refuses a 304 like any other status.
  if (answer.notModified) throw new FetchJsonError(url, 'answered HTTP 304');
  try {
    return JSON.parse(answer.body.toString('utf8')) as unknown;
  } catch (err) {
    throw new FetchJsonError(answer.url, 'answer is not JSON', err);
  }
}

/** GETs `url` and returns its body; throws FetchJsonError for anything but 200 (or 304 to If-None-Match). */
export async function fetchBytes(url: string, options: FetchBytesOptions): Promise<FetchedBytes> {
  const { timeoutMs, dispatcher, maxBytes = DEFAULT_MAX_BYTES, maxRedirects = DEFAULT_MAX_REDIRECTS, accept, ifNoneMatch } = options;
  const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
  const exchange: Exchange = { timeoutMs, signal, dispatcher, fail: fetchError };
  const headers: Record<string, string> = { ...options.headers, accept };
  if (ifNoneMatch !== undefined) headers['if-none-match'] = ifNoneMatch;
  let target = new URL(url);
  for (let hop = 0; ; hop++) {
    const response = await send(target, { method: 'GET', headers }, exchange);
    const { statusCode, body } = response;
    if (REDIRECTS.has(statusCode)) {
      await discard(body);
      target = redirectTarget(target, statusCode, response.headers.location, hop, maxRedirects);
      continue;
    }
    if (statusCode === 304 && ifNoneMatch !== undefined) {
      await discard(body);
      return { notModified: true };
    }
    if (statusCode !== 200) {
      await discard(body);
      throw new FetchJsonError(target.href, `answered HTTP ${statusCode}`);
    }
    const bytes = await readAnswer(response, target.href, maxBytes, exchange);
    const etag = response.headers.etag;
    return { notModified: false, body: bytes, etag: typeof etag === 'string' && etag !== '' ? etag : undefined, url: target.href };
  }
}

/**
 * POSTs `body` to `url` with the caller's headers, within one deadline. The body of a 200 answer
 * is read (bounded by `maxBytes`); any other answer is returned with its status and an empty
 * body, its bytes discarded unread. No redirect is followed: a 3xx comes back as its status, so
 * what the body carries (a token, client credentials) never goes to a host the caller did not
 * name. Throws only what `options.fail` builds.
 */
export async function postForm(url: URL, body: string, options: PostOptions): Promise<PostAnswer> {
  const { timeoutMs, maxBytes, headers, dispatcher, fail } = options;
  const exchange: Exchange = { timeoutMs, signal: AbortSignal.timeout(timeoutMs), dispatcher, fail };
  const response = await send(url, { method: 'POST', headers, body }, exchange);
  if (response.statusCode !== 200) {
    await discard(response.body);
    return { status: response.statusCode, headers: response.headers, body: Buffer.alloc(0) };
  }
  return { status: 200, headers: response.headers, body: await readAnswer(response, url.href, maxBytes, exchange) };
}

// ---------------------------------------------------------------- one exchange

/** What every step of one exchange shares: its deadline and the caller's error factory. */
interface Exchange {
  timeoutMs: number;
  signal: AbortSignal;
  dispatcher: Dispatcher | undefined;
  fail: TransportError;
}

/** Sends one request and waits for the answer head; a failure is the caller's error. */
async function send(target: URL, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }, exchange: Exchange): Promise<Dispatcher.ResponseData> {
  const { signal, dispatcher, timeoutMs, fail } = exchange;
  try {
    return await request(target, { ...init, signal, ...(dispatcher ? { dispatcher } : {}) });
  } catch (err) {
    throw fail(signal.aborted ? { kind: 'timeout', timeoutMs } : { kind: 'unreachable' }, target.href, err);
  }
}

/** The answer body through the one bounded reader, with the caller's errors. */
function readAnswer(response: Dispatcher.ResponseData, url: string, maxBytes: number, exchange: Exchange): Promise<Buffer> {
  const { signal, timeoutMs, fail } = exchange;
  return readBounded(response.body, {
    maxBytes,
    contentLength: response.headers['content-length'],
    tooLarge: () => fail({ kind: 'too-large', maxBytes }, url),
    readFailed: (cause) => fail(signal.aborted ? { kind: 'timeout', timeoutMs } : { kind: 'read-failed' }, url, cause),
    discard: () => discard(response.body),
  });
}

/**
 * Drops an answer body we do not read. undici holds the connection until the body is consumed
 * (undici README, "Garbage Collection"); `dump` reads a small one so the connection is reused,
 * and destroys a large one.
 */
function discard(body: Dispatcher.ResponseData['body']): Promise<unknown> {
  return body.dump().catch(() => undefined);
}

/** Where a redirect leads: same origin only (no Location, another origin or too many hops refused). */
function redirectTarget(from: URL, status: number, location: string | string[] | undefined, hop: number, maxRedirects: number): URL {
  if (typeof location !== 'string') throw new FetchJsonError(from.href, `redirect ${status} without a Location`);
  const next = new URL(location, from);
  if (next.origin !== from.origin) throw new FetchJsonError(from.href, `refused a redirect to another origin (${next.origin})`);
  if (hop >= maxRedirects) throw new FetchJsonError(from.href, 'too many redirects');
  return next;
}

/** The GETs' errors: FetchJsonError with the words the key, bundle and trust-bundle logs show. */
function fetchError(failure: TransportFailure, url: string, cause?: unknown): FetchJsonError {
  return new FetchJsonError(url, describeFailure(failure), cause);
}

function describeFailure(failure: TransportFailure): string {
  switch (failure.kind) {
    case 'unreachable':
      return 'request failed';
    case 'timeout':
      return `no answer within ${failure.timeoutMs}ms`;
    case 'too-large':
      return `answer larger than ${failure.maxBytes} bytes`;
    case 'read-failed':
      return 'reading the answer failed';
  }
}
