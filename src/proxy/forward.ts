/**
 * Forwarding to the upstream with http-proxy-3 over one keep-alive agent built at startup.
 * Responses stream back as they arrive (Server-Sent Events included). Upstream failures become
 * 502/504 with codes while nothing has been sent; after that the client connection is cut, so a
 * truncated response is never mistaken for a complete one.
 */
import { Agent, type IncomingMessage, type ServerResponse, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { pipeline, Readable, type Transform } from 'node:stream';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import { AgentwardError } from '../errors.ts';
import type { ResponseRewrite } from '../rpc/list-filter.ts';
import { stripHopByHop } from './headers.ts';

export interface ForwarderOptions {
  url: string;
  /** Idle time allowed between bytes from the upstream. */
  timeoutMs: number;
  connectTimeoutMs: number;
  maxSockets: number;
}

export interface ForwardResult {
  /** Status sent to the client (the upstream's, or ours on failure). */
  status: number;
  /** Set when the upstream failed; the response was our problem or a cut connection. */
  error: AgentwardError | undefined;
}

// The forwarder's callers name the rewrite they pass by this type; it is defined with the MCP
// response rewriting it describes (src/rpc/list-filter.ts).

const kState = Symbol('agentward.forward');

/** Errors meaning no connection was made (http-proxy-3 reports its connect timeout as ECONNECT_TIMEOUT). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNECT_TIMEOUT', 'EAI_AGAIN']);

interface ForwardState {
  timedOut: boolean;
  rewrite: ResponseRewrite | undefined;
  fail: ((err: AgentwardError) => void) | undefined;
}

type StatefulRequest = IncomingMessage & { [kState]?: ForwardState };

export class Forwarder {
  private readonly proxy: ProxyServer;
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(options: ForwarderOptions) {
    const target = new URL(options.url);
    this.timeoutMs = options.timeoutMs;
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: Math.min(options.maxSockets, 64), scheduling: 'lifo' as const };
    this.agent = target.protocol === 'https:' ? new HttpsAgent(agentOptions) : new Agent(agentOptions);
    this.proxy = createProxyServer({
      target: options.url,
      agent: this.agent,
      xfwd: false, // set by us from trusted facts only (headers.ts)
      changeOrigin: false,
      connectTimeout: options.connectTimeoutMs,
    });
    // The upstream's hop-by-hop fields describe its connection, not ours: a passed-on
    // `Keep-Alive: timeout=120` would promise clients more idle time than this server gives.
    this.proxy.on('proxyRes', (proxyRes: IncomingMessage) => stripHopByHop(proxyRes.headers));
    // Only requests forwarded with a rewrite handle their own response (selfHandleResponse).
    this.proxy.on('proxyRes', (proxyRes: IncomingMessage, req: StatefulRequest, res: ServerResponse) => {
      const state = req[kState];
      if (state?.rewrite) this.sendRewritten(proxyRes, res, state);
    });
    // Idle timeout per upstream request: our own flag distinguishes a timeout from a reset.
    this.proxy.on('proxyReq', (proxyReq: ClientRequest, req: StatefulRequest) => {
      const state = req[kState];
      proxyReq.setTimeout(this.timeoutMs, () => {
        if (state) state.timedOut = true;
        proxyReq.destroy();
      });
    });
  }

  /**
   * Forwards and resolves when the client response has ended or closed. `reject` answers an
   * upstream failure through the pipeline's error mapping.
   */
  forward(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined, reject: (err: AgentwardError) => void, rewrite?: ResponseRewrite): Promise<ForwardResult> {
    const state: ForwardState = { timedOut: false, rewrite, fail: undefined };
    (req as StatefulRequest)[kState] = state;
    return new Promise((resolve) => {
      let error: AgentwardError | undefined;
      res.once('close', () => resolve({ status: error && !res.headersSent ? error.status : res.statusCode, error }));
      state.fail = (err) => {
        error = err;
        reject(err);
      };
      const options = { ...(body ? { buffer: Readable.from([body]) } : {}), ...(rewrite ? { selfHandleResponse: true } : {}) };
      this.proxy.web(req, res, options, (err: Error & { code?: string }) => {
        error = state.timedOut
          ? new AgentwardError('ERR_UPSTREAM_TIMEOUT', undefined, { cause: err })
          : UNREACHABLE.has(err.code ?? '')
            ? new AgentwardError('ERR_UPSTREAM_UNAVAILABLE', undefined, { cause: err })
            : new AgentwardError('ERR_UPSTREAM_RESET', undefined, { cause: err });
        reject(error);
      });
    });
  }

  /**
   * Writes a response whose body goes through the request's rewrite: the upstream's status and
   * headers (hop-by-hop fields already gone), without Content-Length when the body changes. A
   * failure while streaming cuts the connection, like any truncated upstream response.
   */
  private sendRewritten(proxyRes: IncomingMessage, res: ServerResponse, state: ForwardState): void {
    let transform: Transform | undefined;
    try {
      transform = state.rewrite!(proxyRes.statusCode ?? 502, proxyRes.headers);
    } catch (err) {
      proxyRes.destroy();
      state.fail!(err instanceof AgentwardError ? err : new AgentwardError('ERR_UPSTREAM_RESET', undefined, { cause: err }));
      return;
    }
    const headers = { ...proxyRes.headers };
    if (transform) delete headers['content-length'];
    res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, headers);
    if (!transform) {
      proxyRes.pipe(res);
      return;
    }
    pipeline(proxyRes, transform, res, (err) => {
      if (err) res.destroy();
    });
  }

  close(): void {
    this.proxy.close();
    this.agent.destroy();
  }
}
