/**
 * A bundle on an OPA bundle server, so many sidecars share one policy (OPA docs,
 * management-bundles "Bundle Service API"): a GET of the bundle URL answered with a gzipped
 * tarball. Polls are conditional (management-bundles "Caching"): the ETag of the bundle that was
 * last activated goes in `If-None-Match`, and 304 Not Modified means nothing changed. The
 * download uses the one outbound client (src/outbound/http.ts): a deadline, a size cap,
 * same-origin redirects only. Loading and swapping are the engine's (src/policy/engine.ts).
 */
import type { Dispatcher } from 'undici';
import { fetchBytes, type FetchedBytes } from '../outbound/http.ts';

export interface BundlePollOptions {
  /** Time between two polls; after failures the wait grows (pollDelayMs). */
  intervalMs: number;
  /** Deadline of one download. */
  timeoutMs: number;
  /** Largest download accepted (the compressed bundle). */
  maxBytes: number;
  /** Connection pool; tests and the composition root may pass their own. */
  dispatcher?: Dispatcher | undefined;
}

/** A policy source with a scheme (`https://…`) names a bundle server; anything else is a path. */
export function isUrlSource(source: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(source);
}

/** Failures in a row after which the wait stops growing: 2^3 = 8 intervals at most. */
const MAX_BACKOFF_DOUBLINGS = 3;

/**
 * How long to wait before the next poll: the interval, doubled for each failure in a row up to 8
 * intervals (a failing server is not hammered, a fixed one is back within minutes), and up to
 * 10% shorter at random so sidecars started together do not poll together.
 */
export function pollDelayMs(intervalMs: number, failures: number, random: () => number = Math.random): number {
  const delay = intervalMs * 2 ** Math.min(Math.max(failures, 0), MAX_BACKOFF_DOUBLINGS);
  return Math.round(delay * (1 - 0.1 * random()));
}

/** Downloads one bundle URL, conditionally. One per engine; `close` aborts a download in flight. */
export class HttpBundleSource {
  readonly url: string;
  private readonly options: BundlePollOptions;
  private readonly closing = new AbortController();
  private readonly now: () => number;
  private checkedAt: Date | undefined;

  constructor(url: string, options: BundlePollOptions, now: () => number = Date.now) {
    this.url = url;
    this.options = options;
    this.now = now;
  }

  /** When the server was last asked (the exchange ended, whatever its outcome). */
  get lastCheckedAt(): Date | undefined {
    return this.checkedAt;
  }

  /**
   * GETs the bundle. With `etag` (the active bundle's), a 304 answer means it is still current.
   * Throws FetchJsonError on a network failure, a status other than 200/304, an oversized body.
   */
  async fetch(etag: string | undefined): Promise<FetchedBytes> {
    const { timeoutMs, maxBytes, dispatcher } = this.options;
    try {
      return await fetchBytes(this.url, {
        timeoutMs,
        maxBytes,
        signal: this.closing.signal,
        accept: 'application/gzip, application/octet-stream;q=0.5',
        ifNoneMatch: etag,
        ...(dispatcher ? { dispatcher } : {}),
      });
    } finally {
      this.checkedAt = new Date(this.now());
    }
  }

  close(): void {
    this.closing.abort();
  }
}
