/**
 * WebSocket handshakes (RFC 6455 §4), proxied with http-proxy-3 (undici does not proxy upgrades).
 *
 * A handshake runs the same pipeline as any request (src/proxy/pipeline.ts `handleRequest`):
 * admission, credentials, policy, the upstream header rewrite (credentials stripped, identity
 * headers added) and the audit record. For that the listener gives it an HTTP response bound to
 * the upgraded socket (`upgradeResponse`), so a refusal is the same problem response, written on
 * the socket, with `Connection: close`. An allowed handshake reaches the forwarder, which hands it
 * here (`handles`); the request is recorded once its outcome is known (101, the upstream's
 * other answer, or our 502/504), not when the WebSocket closes hours later.
 */
import { ServerResponse, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxyServer } from 'http-proxy-3';
import { AgentwardError } from '../errors.ts';
import { upstreamError, type ForwarderOptions, type ForwardResult, type RejectForward, type UpgradeForwarder } from './forward.ts';
import { stripHopByHop } from './headers.ts';

/** RFC 6455 §4.1: a GET whose Upgrade field names `websocket` (case-insensitive). */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return req.method === 'GET' && upgrade !== undefined && /(?:^|,)[\t ]*websocket[\t ]*(?:,|$)/i.test(upgrade);
}

/**
 * Takes over a socket Node has upgraded and returns the response the pipeline answers on.
 * `refusal` is set for a request that cannot be served (see below); the caller runs it through
 * the pipeline already refused.
 *
 * The listener asks Node for WebSocket upgrades only (`shouldUpgradeCallback`, Node 24.9): any
 * other `Upgrade` (h2c) stays an ordinary request, its Upgrade field dropped like any hop-by-hop
 * field (RFC 9110 §7.8 lets a server ignore it). Older Node hands over every upgrade; one that is
 * no WebSocket is then served as an ordinary request on this response, and refused (400) when it
 * has a body, which Node has left unread on the socket.
 */
export function upgradeResponse(req: IncomingMessage, socket: Duplex, head: Buffer): { res: ServerResponse; refusal: AgentwardError | undefined } {
  // Node has taken its listeners off the socket: a reset now must close it, not crash the process.
  socket.on('error', () => socket.destroy());
  holding.set(socket, new EarlyBytes(socket, head));
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  // No HTTP parser reads this socket any more: one answer, then the connection ends.
  res.once('finish', () => socket.end(() => socket.destroy()));
  let refusal: AgentwardError | undefined;
  if (isWebSocketUpgrade(req)) {
    handshakes.add(req);
  } else {
    const length = req.headers['content-length'];
    if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) refusal = new AgentwardError('ERR_BAD_REQUEST', 'A request body with an Upgrade other than websocket is not supported.');
  }
  return { res, refusal };
}

/** Requests the listener took over as WebSocket handshakes (the others are ordinary requests). */
const handshakes = new WeakSet<IncomingMessage>();

/** More than this before the 101 (RFC 6455 §4.1: the client waits for the answer) ends the connection. */
const MAX_EARLY_BYTES = 64 * 1024;

/**
 * Reads a taken-over socket until the WebSocket is open. Reading is how a client that leaves is
 * noticed (its end of input; the server allows half-open connections, so nothing else would
 * close the socket), and what it sent early goes upstream first, once the upgrade is done.
 */
class EarlyBytes {
  private readonly socket: Duplex;
  private readonly chunks: Buffer[];
  private size: number;
  private readonly onData = (chunk: Buffer) => {
    this.size += chunk.length;
    if (this.size > MAX_EARLY_BYTES) this.socket.destroy();
    else this.chunks.push(chunk);
  };
  private readonly onEnd = () => this.socket.destroy();

  constructor(socket: Duplex, head: Buffer) {
    this.socket = socket;
    this.chunks = head.length > 0 ? [head] : [];
    this.size = head.length;
    socket.on('data', this.onData);
    socket.once('end', this.onEnd);
  }

  /** Stops reading and puts back what was read, for http-proxy-3 to pipe upstream. */
  handOver(): void {
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.pause();
    if (this.chunks.length > 0) socket.unshift(Buffer.concat(this.chunks));
  }
}
const holding = new WeakMap<Duplex, EarlyBytes>();

const kHandshake = Symbol('agentward.handshake');

interface Handshake {
  /** The pipeline's response, bound to the client socket: its fields (request id, DPoP-Nonce) go on the upstream's answer. */
  res: ServerResponse;
  /** The request to the upstream, once http-proxy-3 has made it. */
  upstream: ClientRequest | undefined;
  timedOut: boolean;
  settled: boolean;
  settle(result: ForwardResult): void;
}

type HandshakeRequest = IncomingMessage & { [kHandshake]?: Handshake };

const NO_HEAD = Buffer.alloc(0);

/**
 * The upgrade forwarder: one http-proxy-3 instance, a new upstream connection per WebSocket.
 *
 * http-proxy-3 is loaded, and its instance made, at the first handshake a policy allows
 * (`ensureProxy`, the one place): about 1 MiB of RSS that a deployment never serving WebSockets
 * does not pay (bench/README.md, issue 12). No setting says whether upgrades will come (the policy
 * decides per request), so the first one waits for a one-time synchronous load, 6-8 ms with
 * agentward's other modules loaded (docs/operations.md "Memory"). A load that fails (a broken
 * install) throws out of `forward`: the pipeline answers that handshake 500 ERR_INTERNAL with the
 * cause in the log, the next handshake tries again, and ordinary requests are not affected.
 */
export class WebSocketProxy implements UpgradeForwarder {
  private server: ProxyServer | undefined;
  private readonly options: Pick<ForwarderOptions, 'url' | 'timeoutMs' | 'connectTimeoutMs'>;

  constructor(options: Pick<ForwarderOptions, 'url' | 'timeoutMs' | 'connectTimeoutMs'>) {
    this.options = options;
  }

  private ensureProxy(): ProxyServer {
    if (this.server) return this.server;
    const { createProxyServer } = createRequire(import.meta.url)('http-proxy-3') as typeof import('http-proxy-3');
    const server = createProxyServer({
      target: this.options.url,
      xfwd: false, // set by us from trusted facts only (headers.ts)
      changeOrigin: false,
      connectTimeout: this.options.connectTimeoutMs,
    });
    server.on('proxyReqWs', (proxyReq: ClientRequest, req: HandshakeRequest) => {
      const handshake = req[kHandshake];
      if (handshake) this.watch(proxyReq, handshake);
    });
    // http-proxy-3 reports client socket errors here too, and throws without a listener. Before
    // the handshake's outcome the forward callback answers; after it the sockets are just closed.
    server.on('error', () => undefined);
    this.server = server;
    return server;
  }

  handles(req: IncomingMessage): boolean {
    return handshakes.has(req);
  }

  /** Proxies an allowed handshake; resolves once the client has the upstream's answer or ours. */
  forward(req: IncomingMessage, res: ServerResponse, reject: RejectForward): Promise<ForwardResult> {
    // First, before anything is set up for this handshake: a failed load throws from here.
    const proxy = this.ensureProxy();
    const socket = res.socket!;
    // RFC 9110 §7.8, RFC 6455 §4.1: the hop to the upstream asks for the same upgrade (the
    // pipeline removed the client's Connection and Upgrade with the other hop-by-hop fields).
    req.headers.connection = 'upgrade';
    req.headers.upgrade = 'websocket';
    return new Promise((resolve) => {
      const handshake: Handshake = {
        res,
        upstream: undefined,
        timedOut: false,
        settled: false,
        settle(result) {
          if (this.settled) return;
          this.settled = true;
          resolve(result);
        },
      };
      (req as HandshakeRequest)[kHandshake] = handshake;
      // The client left during the handshake: recorded like any request whose client left, and
      // the upstream request, if made, is dropped (http-proxy-3 only closes upgraded sockets).
      socket.once('close', () => {
        if (handshake.settled) return;
        handshake.settle({ status: res.statusCode, error: undefined });
        handshake.upstream?.destroy();
      });
      proxy.ws(req, socket, NO_HEAD, {}, (err: Error) => {
        if (handshake.settled) return;
        const error = upstreamError(err, handshake.timedOut);
        reject(error);
        handshake.settle({ status: error.status, error });
      });
    });
  }

  /** The handshake's outcome: `upstream.timeout` for the answer, the answer's head tidied. */
  private watch(proxyReq: ClientRequest, handshake: Handshake): void {
    handshake.upstream = proxyReq;
    // The socket timeout ends with the handshake: http-proxy-3 sets 0 on the upgraded socket.
    proxyReq.setTimeout(this.options.timeoutMs, () => {
      handshake.timedOut = true;
      proxyReq.destroy();
    });
    proxyReq.once('upgrade', (answer: IncomingMessage) => {
      // From now on http-proxy-3 pipes both ways, a half-close included.
      holding.get(handshake.res.socket!)?.handOver();
      tidyHead(answer.headers, handshake.res, true);
      handshake.settle({ status: 101, error: undefined });
    });
    // Not a WebSocket endpoint: http-proxy-3 relays the answer and closes the connection.
    proxyReq.once('response', (answer: IncomingMessage) => {
      tidyHead(answer.headers, handshake.res, false);
      handshake.settle({ status: answer.statusCode ?? 502, error: undefined });
    });
  }

  close(): void {
    this.server?.close();
  }
}

/**
 * The head http-proxy-3 writes to the client, fixed in place before it does: no hop-by-hop field
 * of the upstream's connection (RFC 9110 §7.6.1) but the upgrade itself (RFC 6455 §4.2.2), and
 * the fields the pipeline set on its response (request id) unless the upstream set its own.
 */
function tidyHead(headers: IncomingHttpHeaders, res: ServerResponse, upgraded: boolean): void {
  const upgrade = headers.upgrade;
  stripHopByHop(headers);
  for (const [name, value] of Object.entries(res.getHeaders())) {
    if (name !== 'connection' && headers[name] === undefined && value !== undefined) headers[name] = typeof value === 'number' ? String(value) : value;
  }
  if (upgraded) {
    headers.connection = 'Upgrade';
    if (upgrade !== undefined) headers.upgrade = upgrade;
  } else {
    headers.connection = 'close';
  }
}
