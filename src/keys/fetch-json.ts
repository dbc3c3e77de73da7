/**
 * Outbound fetches for key material, metadata and policy bundles (design §2 "Outbound calls"):
 * undici with an explicit deadline for the whole exchange, a size cap, and redirects followed only
 * within the same origin, so a compromised or misconfigured endpoint cannot send us to another
 * host. `fetchJson` is the JSON flavour; `fetchBytes` returns the raw body and supports a
 * conditional GET (`If-None-Match`, RFC 9110 §13.1.2) for sources that are polled.
 */
import { request, type Dispatcher } from 'undici';

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
}

export interface FetchBytesOptions extends FetchJsonOptions {
  /** The Accept header sent. */
  accept: string;
  /** An entity tag from an earlier answer, sent as If-None-Match; a 304 answer is then a result. */
  ifNoneMatch?: string | undefined;
}

/** A 200 answer's body (with its ETag), or a 304 answer to If-None-Match. */
export type FetchedBytes = { notModified: true } | { notModified: false; body: Buffer; etag: string | undefined; /** After redirects. */ url: string };

/** Why a fetch failed, without the body of the answer (which could be anything). */
export class FetchJsonError extends Error {
  readonly url: string;
  constructor(url: string, message: string, cause?: unknown) {
    super(`${message} (${url})`, cause === undefined ? undefined : { cause });
    this.name = 'FetchJsonError';
    this.url = url;
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

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
  const { timeoutMs, dispatcher, maxBytes = 1 << 20, maxRedirects = 3, accept, ifNoneMatch } = options;
  const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
  const requestHeaders: Record<string, string> = { accept };
  if (ifNoneMatch !== undefined) requestHeaders['if-none-match'] = ifNoneMatch;
  let target = new URL(url);
  for (let hop = 0; ; hop++) {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(target, {
        method: 'GET',
        headers: requestHeaders,
        signal,
        ...(dispatcher ? { dispatcher } : {}),
      });
    } catch (err) {
      throw new FetchJsonError(target.href, signal.aborted ? `no answer within ${timeoutMs}ms` : 'request failed', err);
    }
    const { statusCode, headers, body } = response;
    if (REDIRECTS.has(statusCode)) {
      await body.dump();
      const location = headers.location;
      if (typeof location !== 'string') throw new FetchJsonError(target.href, `redirect ${statusCode} without a Location`);
      const next = new URL(location, target);
      if (next.origin !== target.origin) throw new FetchJsonError(target.href, `refused a redirect to another origin (${next.origin})`);
      if (hop >= maxRedirects) throw new FetchJsonError(target.href, 'too many redirects');
      target = next;
      continue;
    }
    if (statusCode === 304 && ifNoneMatch !== undefined) {
      await body.dump();
      return { notModified: true };
    }
    if (statusCode !== 200) {
      await body.dump();
      throw new FetchJsonError(target.href, `answered HTTP ${statusCode}`);
    }
    const declared = Number(headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      await body.dump();
      throw new FetchJsonError(target.href, `answer larger than ${maxBytes} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of body) {
        size += (chunk as Buffer).length;
        if (size > maxBytes) {
          body.destroy();
          throw new FetchJsonError(target.href, `answer larger than ${maxBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof FetchJsonError) throw err;
      throw new FetchJsonError(target.href, signal.aborted ? `no answer within ${timeoutMs}ms` : 'reading the answer failed', err);
    }
    const etag = headers.etag;
    return { notModified: false, body: Buffer.concat(chunks), etag: typeof etag === 'string' && etag !== '' ? etag : undefined, url: target.href };
  }
}
