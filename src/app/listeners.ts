/**
 * The agent listener (HTTP, or HTTPS with `listen.tls`) and how it hands requests to the pipeline;
 * the admin listener is built by src/observability/health.ts. Draining is one flag the listener
 * reads: while it is set, keep-alive connections are closed as their responses end, so shutdown
 * waits for requests, not for clients' idle sockets.
 */
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { durationMs } from '../duration.ts';
import { AgentwardError } from '../errors.ts';
import { Admission } from '../proxy/admission.ts';
import { handleClientError, handleRequest, type PipelineDeps } from '../proxy/pipeline.ts';
import type { ListenerTls } from '../proxy/tls.ts';
import { isWebSocketUpgrade, upgradeResponse } from '../proxy/upgrade.ts';

export interface AgentListener {
  server: Server;
  /** The same server when it speaks TLS (its certificate files are watched). */
  https: HttpsServer | undefined;
  /** From now on, close keep-alive connections as their responses end. */
  drain(): void;
  readonly draining: boolean;
  /** Requests in flight, waiting, and refused for overload (shown in /readyz). */
  admission: Admission;
}

/**
 * `routes`: endpoints by exact path that are not the protected resource (an SSF push path with
 * `listener: main`, docs/signals.md). They authenticate their own callers and answer before
 * admission control and the pipeline; every other path goes to the pipeline.
 */
export function createAgentListener(
  listen: Config['listen'],
  deps: PipelineDeps,
  tls: ListenerTls | undefined,
  logger: Logger,
  routes: ReadonlyMap<string, (req: IncomingMessage, res: ServerResponse) => Promise<void>> = new Map(),
): AgentListener {
  let draining = false;
  /** The pipeline answers every error itself; anything escaping it is a bug, never a crash. */
  const onPipelineBug = (err: unknown, res: ServerResponse) => {
    logger.error({ err }, 'request handling failed unexpectedly');
    res.destroy();
  };
  const httpOptions = {
    maxHeaderSize: listen.maxHeaderBytes,
    requestTimeout: durationMs(listen.requestTimeout),
    // How often Node checks requestTimeout (default 30 s, which would let a 1 s limit fire 30 s late).
    connectionsCheckingInterval: Math.min(1000, durationMs(listen.requestTimeout)),
    keepAliveTimeout: 65_000,
    // Only WebSocket handshakes become 'upgrade' events (Node 24.9); any other Upgrade (h2c) is an
    // ordinary request whose Upgrade field is dropped (RFC 9110 §7.8). See src/proxy/upgrade.ts.
    shouldUpgradeCallback: isWebSocketUpgrade,
  };
  const admission = new Admission(
    {
      maxInFlight: listen.maxInFlight,
      maxQueued: listen.maxQueued,
      queueTimeoutMs: durationMs(listen.queueTimeout),
      onShedding: (refused, periodMs) =>
        logger.warn({ code: 'ERR_OVERLOADED', refused, periodMs, maxInFlight: listen.maxInFlight, maxQueued: listen.maxQueued }, `overloaded: ${refused} requests refused with 503 in the last ${periodMs} ms (each has its audit record)`),
    },
    (req, res) => handleRequest(req, res, deps).catch((err: unknown) => onPipelineBug(err, res)),
    (req, res, refusal) => void handleRequest(req, res, deps, refusal).catch((err: unknown) => onPipelineBug(err, res)),
  );
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      if (draining) setImmediate(() => server.closeIdleConnections());
    });
    if (routes.size > 0) {
      const route = routes.get((req.url ?? '').split('?', 1)[0]!);
      if (route && !isWebSocketUpgrade(req)) {
        route(req, res).catch((err: unknown) => onPipelineBug(err, res));
        return;
      }
    }
    admission.offer(req, res);
  };
  const https: HttpsServer | undefined = tls && createHttpsServer({ ...httpOptions, ...tls.serverOptions() }, onRequest);
  const server: Server = https ?? createServer(httpOptions, onRequest);
  if (https) onTlsEvents(https, logger);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // A TLS 1.2 renegotiation attempt (refused on every connection) is no HTTP request to answer: the connection is cut.
    if (err.code === 'ERR_TLS_RENEGOTIATION_DISABLED') {
      logger.info({ remoteAddress: socket.remoteAddress }, 'TLS renegotiation refused; connection closed');
      socket.destroy();
      return;
    }
    handleClientError(err, socket, deps);
  });
  // RFC 9110 §10.1.1: an expectation other than 100-continue cannot be met; 417, in our format.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) =>
    handleRequest(req, res, deps, new AgentwardError('ERR_EXPECTATION_FAILED')).catch((err: unknown) => onPipelineBug(err, res)),
  );
  // A WebSocket handshake runs the same pipeline, answered on the socket (src/proxy/upgrade.ts).
  const upgraded = new Set<Duplex>();
  upgradedSockets.set(server, upgraded);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    const { res, refusal } = upgradeResponse(req, socket, head);
    if (refusal) handleRequest(req, res, deps, refusal).catch((err: unknown) => onPipelineBug(err, res));
    else onRequest(req, res);
  });
  return {
    server,
    https,
    admission,
    drain: () => {
      draining = true;
    },
    get draining() {
      return draining;
    },
  };
}

function onTlsEvents(https: HttpsServer, logger: Logger): void {
  // The client certificate is read once per connection (src/credentials/client-certificate.ts);
  // TLS 1.2 renegotiation could swap it mid-connection, so it is refused.
  https.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
  // A failed handshake (no or unverifiable certificate with clientCert required, a client that
  // distrusts our certificate, a TCP probe) never becomes a request, so it has no audit record.
  https.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const level = err.code === 'ECONNRESET' ? 'debug' : 'info';
    logger[level]({ err: err.message, code: err.code, remoteAddress: socket.remoteAddress }, 'TLS handshake failed');
  });
}

/** Listens on `host:port` (IPv6 in brackets); resolves with the bound address. */
export function listen(server: Server, address: string): Promise<AddressInfo> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      done(server.address() as AddressInfo);
    });
  });
}

/**
 * Sockets of a listener taken over by an upgrade (WebSockets): Node's closeAllConnections does not
 * close them, so closeGracefully does.
 */
const upgradedSockets = new WeakMap<Server, ReadonlySet<Duplex>>();

/** Closes `server` gracefully: idle connections now, busy ones when their response ends, all (WebSockets too) after `timeoutMs`. */
export async function closeGracefully(server: Server, timeoutMs: number, logger: Logger): Promise<void> {
  const closed = new Promise<void>((done) => server.close(() => done()));
  server.closeIdleConnections();
  const timer = setTimeout(() => {
    logger.warn({ timeoutMs }, 'shutdown timeout reached; closing remaining connections');
    server.closeAllConnections();
    for (const socket of upgradedSockets.get(server) ?? []) socket.destroy();
  }, timeoutMs);
  await closed;
  clearTimeout(timer);
}
