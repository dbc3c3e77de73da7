/**
 * Forwarding to the upstream: one undici keep-alive `Pool` built at startup, and per request one
 * `dispatch` whose handler writes the upstream's answer straight into the client response, with
 * backpressure both ways (the request body is the client's stream, the response pauses the
 * upstream socket while the client is slow). Responses stream as they arrive: Server-Sent Events,
 * chunked bodies and their trailers. Upstream failures become 502/504 with codes while nothing has
 * been sent; after that the client connection is cut, so a truncated response is never mistaken
 * for a complete one.
 *
 * `dispatch` rather than `request` or `stream`: no Readable per response, no AbortController per
 * request. Measured on loopback (node:http in, a 42-byte upstream answer, 32 connections, proxy
 * alone on one core): about 50 µs of proxy CPU per request, against 50-60 for `stream` and
 * `request` and about 115 for http-proxy-3 over a node:http Agent.
 *
 * WebSocket handshakes (taken over by the agent listener) go to the upgrade forwarder given
 * at construction (./upgrade.ts, http-proxy-3) instead.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, type Transform } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { AgentwardError } from '../errors.ts';
import type { ResponseRewrite } from '../rpc/list-filter.ts';
import { connectionOptions, isHopByHop } from './headers.ts';

export interface ForwarderOptions {
  url: string;
  /** Idle time allowed between bytes from the upstream (the response head, then each body chunk). */
  timeoutMs: number;
  /** Longest wait for a connection to the upstream (TCP, and TLS for an https upstream). */
  connectTimeoutMs: number;
  /** Connections to the upstream at most; more requests wait for a free one. */
  maxSockets: number;
}

export interface ForwardResult {
  /** Status sent to the client (the upstream's, or ours on failure). */
  status: number;
  /** Set when the upstream failed; the response was our problem or a cut connection. */
  error: AgentwardError | undefined;
}

/** Answers an upstream failure through the pipeline's error mapping (a problem, or a cut connection once the head is out). */
export type RejectForward = (err: AgentwardError) => void;

/** Proxies WebSocket handshakes (src/proxy/upgrade.ts); resolves once the handshake's outcome is known. */
export interface UpgradeForwarder {
  /** Whether `req` is a WebSocket handshake the listener took over. */
  handles(req: IncomingMessage): boolean;
  forward(req: IncomingMessage, res: ServerResponse, reject: RejectForward): Promise<ForwardResult>;
  close(): void;
}

/** Transport errors that mean no connection to the upstream was made. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNECT_TIMEOUT']);
/** undici's idle timers: no response head, or no next body chunk, within `upstream.timeout`. */
const TIMED_OUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * The one mapping from a transport failure (undici's, or node:http's for upgrades) to a code:
 * not reached 502, too slow 504, anything else (reset, closed, malformed answer) 502.
 */
export function upstreamError(err: unknown, timedOut = false): AgentwardError {
  const code = (err as { code?: unknown } | null)?.code;
  const name = timedOut || TIMED_OUT.has(code as string) ? 'ERR_UPSTREAM_TIMEOUT' : UNREACHABLE.has(code as string) ? 'ERR_UPSTREAM_UNAVAILABLE' : 'ERR_UPSTREAM_RESET';
  return new AgentwardError(name, undefined, { cause: err });
}

export class Forwarder {
  private readonly pool: Pool;
  private readonly upgrades: UpgradeForwarder;

  constructor(options: ForwarderOptions, upgrades: UpgradeForwarder) {
    this.pool = new Pool(new URL(options.url).origin, {
      connections: options.maxSockets,
      // undici's connect timeout covers the TLS handshake too: a handshake that never completes is
      // an upstream that could not be reached (502), not a slow answer (504).
      connect: { timeout: options.connectTimeoutMs },
      // Both are idle timers: the head timer is refreshed while the request body is written, the
      // body timer on every chunk, and neither runs while the client makes us pause.
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    this.upgrades = upgrades;
  }

  /**
   * Forwards `req` to `path` (the target as the policy saw it, origin-form) and resolves when the
   * client response has closed (for a WebSocket handshake: when its outcome is known). `body`,
   * when a pipeline step read it, is sent instead of the client's stream, byte for byte.
   */
  forward(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer | undefined, reject: RejectForward, rewrite?: ResponseRewrite): Promise<ForwardResult> {
    // A client already gone would never see 'close' again: nothing to send, nothing to wait for.
    if (res.destroyed || res.socket?.destroyed === true) return Promise.resolve({ status: res.statusCode, error: undefined });
    if (this.upgrades.handles(req)) {
      // http-proxy-3 sends `req.url`: the target the policy saw, as for any request (a stripped
      // `_method` stays stripped, src/proxy/method-override.ts).
      req.url = path;
      return this.upgrades.forward(req, res, reject);
    }
    return new Promise((resolve) => {
      const exchange = new Exchange(res, reject, rewrite, resolve);
      try {
        this.pool.dispatch(
          {
            path,
            method: req.method!,
            headers: req.headers,
            body: requestBody(req, body),
            // undici closes the connection after a HEAD by default; it is kept, as for any request.
            reset: req.method === 'HEAD' ? false : undefined,
          },
          exchange,
        );
      } catch (err) {
        // A body undici cannot frame, or what undici checks synchronously (a closed pool).
        exchange.onResponseError(undefined, err as Error);
      }
    });
  }

  close(): void {
    void this.pool.destroy();
    this.upgrades.close();
  }
}

/**
 * What undici sends as the request body. undici frames the body itself (RFC 9112 §6): it refuses
 * a `Transfer-Encoding` field, sends a stream chunked unless its length is known (from
 * `Content-Length`, or because the whole body has already arrived), and a buffer with its length.
 */
function requestBody(req: IncomingMessage, read: Buffer | undefined): Buffer | IncomingMessage | null {
  const headers = req.headers;
  const te = headers['transfer-encoding'];
  if (te !== undefined) {
    // RFC 9112 §6.1: Node has removed the chunked coding and applies no other; a body under
    // another transfer coding would reach the upstream mislabelled, so it is refused.
    if (te.trim().toLowerCase() !== 'chunked') throw new AgentwardError('ERR_BAD_REQUEST', 'Only the chunked transfer coding is supported.');
    delete headers['transfer-encoding'];
    return read ?? req;
  }
  if (read !== undefined) return read;
  const length = headers['content-length'];
  return length !== undefined && length !== '0' ? req : null;
}

function hasFields(headers: IncomingHttpHeaders): boolean {
  for (const _name in headers) return true;
  return false;
}

/** Node's rules for repeated fields (`message.headers`): these keep their first value. */
const SINGLE_VALUE = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

/**
 * The upstream's end-to-end fields for the client, in a new object: no hop-by-hop field (RFC 9110
 * §7.6.1) and no Transfer-Encoding (the client connection is framed by Node, RFC 9112 §6.1).
 * undici gives a repeated field as an array; the client gets it as Node's own client gave it
 * before (joined, or the first of a single-value field), and the rewrite hook sees the
 * IncomingHttpHeaders shape it is typed for. Copying costs less than deleting: a `delete` turns
 * undici's object into a slow dictionary (V8) for everything that reads it after, and upstreams
 * send `Connection` and `Keep-Alive` on nearly every answer.
 */
function asNodeHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = connectionOptions(headers);
  const kept: IncomingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name === 'transfer-encoding' || isHopByHop(name, named)) continue;
    kept[name] = typeof value === 'string' || name === 'set-cookie' ? value : SINGLE_VALUE.has(name) ? value[0] : value.join(name === 'cookie' ? '; ' : ', ');
  }
  return kept;
}

/** How much of an abandoned answer is read to keep its connection (Exchange.abandon). */
const LINGER_BYTES = 64 * 1024;
const LINGER_MS = 1000;

/**
 * One request's exchange with the upstream, as an undici dispatch handler: the response head,
 * body and trailers go to the client as they come; a failure becomes the pipeline's problem while
 * nothing was sent, and a cut connection after.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private readonly res: ServerResponse;
  private readonly reject: RejectForward;
  private readonly rewrite: ResponseRewrite | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  /** The rewrite's transform, when the body goes through one. */
  private sink: Transform | undefined;
  /** The upstream's fields while writeHead runs: if it throws, some may already be set. */
  private head: IncomingHttpHeaders | undefined;
  private error: AgentwardError | undefined;
  /** The client response closed before it was complete (the client left, or we cut it). */
  private closedEarly = false;
  private resumeUpstream: (() => void) | undefined;
  /** While the answer of a client that left is read to its end: bytes read since, and the time limit. */
  private lingering: { bytes: number; timer: NodeJS.Timeout } | undefined;

  constructor(res: ServerResponse, reject: RejectForward, rewrite: ResponseRewrite | undefined, resolve: (result: ForwardResult) => void) {
    this.res = res;
    this.reject = reject;
    this.rewrite = rewrite;
    res.once('close', () => {
      if (!res.writableFinished) {
        this.closedEarly = true;
        if (this.controller) this.abandon(this.controller);
      }
      const error = this.error;
      resolve({ status: error && !res.headersSent ? error.status : res.statusCode, error });
    });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Not sent yet: dropping it costs the upstream connection nothing.
    if (this.closedEarly) controller.abort(new AgentwardError('ERR_UPSTREAM_RESET'));
  }

  /**
   * The client left while its request was with the upstream. An HTTP/1.1 request cannot be
   * cancelled on its connection: cutting it costs the upstream connection, and under overload,
   * when callers give up in numbers, new connections for each of them cost both sides more than
   * the answers (bench/README.md, "Overload"). So a short answer is read to its end and dropped,
   * and the connection goes back to the pool (RFC 9112 §9.3, as HAProxy without
   * `abortonclose`); an answer longer than LINGER_BYTES or slower than LINGER_MS (a stream, a
   * download, a hung upstream) is cut as before. The upstream does no more work than it would
   * have: the request had already reached it.
   */
  private abandon(controller: Dispatcher.DispatchController): void {
    if (this.sink) {
      controller.abort(new AgentwardError('ERR_UPSTREAM_RESET'));
      return;
    }
    const timer = setTimeout(() => controller.abort(new AgentwardError('ERR_UPSTREAM_RESET')), LINGER_MS);
    timer.unref();
    this.lingering = { bytes: 0, timer };
    // A body paused for the slow client is read on, now to be dropped.
    if (this.resumeUpstream) controller.resume();
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, upstreamHeaders: IncomingHttpHeaders, statusText?: string): void {
    // 1xx interim answers (103 Early Hints) are not passed on; the final answer follows.
    if (status < 200 || this.lingering) return;
    const res = this.res;
    const headers = asNodeHeaders(upstreamHeaders);
    let transform: Transform | undefined;
    if (this.rewrite) {
      try {
        transform = this.rewrite(status, headers);
      } catch (err) {
        controller.abort(err instanceof AgentwardError ? err : new AgentwardError('ERR_UPSTREAM_RESET', undefined, { cause: err }));
        return;
      }
      // The body changes length: Node frames it (chunked, or close-delimited for HTTP/1.0).
      if (transform && headers['content-length'] !== undefined) delete headers['content-length'];
    }
    this.head = headers;
    res.writeHead(status, statusText || undefined, headers);
    this.head = undefined;
    if (transform) {
      this.sink = transform;
      // A rewrite that fails mid-body (a list too large to filter) cuts the response, as a
      // truncated upstream answer would; the upstream request goes with it.
      pipeline(transform, res, (err) => {
        if (!err) return;
        this.closedEarly = true;
        res.destroy();
        controller.abort(new AgentwardError('ERR_UPSTREAM_RESET', undefined, { cause: err }));
      });
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.lingering) {
      this.lingering.bytes += chunk.length;
      if (this.lingering.bytes > LINGER_BYTES) controller.abort(new AgentwardError('ERR_UPSTREAM_RESET'));
      return;
    }
    const sink = this.sink ?? this.res;
    if (sink.write(chunk)) return;
    // Backpressure: the upstream socket stops being read until the client has taken this chunk.
    controller.pause();
    if (this.resumeUpstream === undefined) {
      this.resumeUpstream = () => controller.resume();
      sink.on('drain', this.resumeUpstream);
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.lingering) {
      clearTimeout(this.lingering.timer);
      return;
    }
    // RFC 9110 §6.5: trailer fields go on with the body; Node sends them when it frames the
    // response chunked (an HTTP/1.0 client gets none, RFC 9112 §7.1.2).
    if (hasFields(trailers)) this.res.addTrailers(asNodeHeaders(trailers) as Record<string, string | string[]>);
    (this.sink ?? this.res).end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.lingering) clearTimeout(this.lingering.timer);
    const res = this.res;
    this.sink?.destroy();
    // The client is gone (its request body failed, or its connection closed): nothing to answer,
    // and no upstream failure to record.
    if (this.closedEarly || res.destroyed || res.socket?.destroyed === true) return;
    this.error = err instanceof AgentwardError ? err : upstreamError(err);
    // writeHead failed halfway: the problem must not carry the upstream's fields.
    if (this.head && !res.headersSent) for (const name in this.head) res.removeHeader(name);
    this.reject(this.error);
  }
}
