/**
 * A controllable fault in front of a real server, for the fault matrix
 * (test/integration/fault-matrix.test.ts). Put between agentward and a dependency (a JWK Set
 * endpoint, an introspection endpoint, a bundle server, the upstream), it passes requests through
 * to that server while `up`, and otherwise misbehaves on purpose:
 *   down            the port is closed: connections are refused
 *   hang            accepts the request and never answers
 *   garbage         200 application/json whose body is not JSON
 *   oversized       200 application/json, chunked, `oversizedBytes` long (no Content-Length, so
 *                   the reader has to count)
 *   reset           reads the request, then destroys the connection without a word
 *   reset-mid-body  sends the head (Content-Length 1000) and 100 bytes, then destroys the connection
 *   slow            passes the request through after `slowMs`
 *
 * It counts what it saw, so a test can prove that the fault really happened rather than trust
 * that it did: the requests that met each mode (`seen`), the answers cut on purpose (`resets`),
 * and the requests whose client gave up before the answer ended (`abandoned`: a deadline or a size
 * cap at work on the other side). `refuses()` proves `down` by connecting.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export type FaultMode = 'up' | 'down' | 'hang' | 'garbage' | 'oversized' | 'reset' | 'reset-mid-body' | 'slow';

const MODES: readonly FaultMode[] = ['up', 'down', 'hang', 'garbage', 'oversized', 'reset', 'reset-mid-body', 'slow'];

export interface FaultProxyOptions {
  /** Delay of `slow`. Default 1500 ms. */
  slowMs?: number;
  /** Body length of `oversized`. Default 4 MiB. */
  oversizedBytes?: number;
}

export interface FaultProxy {
  /** The origin to give agentward instead of the target's (paths pass through unchanged). */
  url: string;
  readonly mode: FaultMode;
  /** Switches mode; requests held by `hang` or `slow` are cut, and `down` closes every connection. */
  setMode(mode: FaultMode): Promise<void>;
  /** Requests received, by the mode they met. */
  seen: Record<FaultMode, number>;
  /** Requests whose client closed the connection before the answer ended, by mode. */
  abandoned: Record<FaultMode, number>;
  /** Connections destroyed on purpose by `reset` and `reset-mid-body`. */
  resets: number;
  /** Whether a TCP connection to the port is refused right now. */
  refuses(): Promise<boolean>;
  close(): Promise<void>;
}

const count = (): Record<FaultMode, number> => Object.fromEntries(MODES.map((m) => [m, 0])) as Record<FaultMode, number>;

export async function startFaultProxy(target: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const slowMs = options.slowMs ?? 1500;
  const oversizedBytes = options.oversizedBytes ?? 4 * 1024 * 1024;
  const targetUrl = new URL(target);
  const sockets = new Set<Socket>();
  /** Sockets this side destroyed: their close is not the client giving up. */
  const ours = new WeakSet<Socket>();
  /** Sockets with a request held by `hang` or `slow`, cut when the mode changes. */
  const held = new Set<Socket>();
  const destroy = (s: Socket) => {
    ours.add(s);
    s.destroy();
  };

  const state: FaultProxy = {
    url: '',
    mode: 'up',
    seen: count(),
    abandoned: count(),
    resets: 0,
    setMode: async (mode) => {
      const wasDown = state.mode === 'down';
      (state as { mode: FaultMode }).mode = mode;
      for (const s of held) destroy(s);
      held.clear();
      if (mode === 'down' && !wasDown) {
        const closed = new Promise<void>((r) => server.close(() => r()));
        for (const s of sockets) destroy(s);
        await closed;
      }
      if (mode !== 'down' && wasDown) await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
    refuses: () =>
      new Promise<boolean>((resolve) => {
        const probe = connect(port, '127.0.0.1');
        probe.once('connect', () => {
          probe.destroy();
          resolve(false);
        });
        probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
      }),
    close: async () => {
      for (const s of sockets) destroy(s);
      if (state.mode !== 'down') await new Promise<void>((r) => server.close(() => r()));
    },
  };

  /** Passes the request to the target and its answer back, byte for byte. */
  const pass = (req: IncomingMessage, res: ServerResponse) => {
    const out = request(
      { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    out.on('error', () => destroy(req.socket));
    req.pipe(out);
  };

  const server: Server = createServer((req, res) => {
    const mode = state.mode;
    const socket = req.socket;
    state.seen[mode]++;
    res.on('close', () => {
      held.delete(socket);
      if (!res.writableFinished && !ours.has(socket)) state.abandoned[mode]++;
    });
    switch (mode) {
      case 'up':
        return pass(req, res);
      case 'hang':
        held.add(socket);
        req.resume();
        return;
      case 'slow': {
        held.add(socket);
        const timer = setTimeout(() => {
          held.delete(socket);
          if (!res.destroyed) pass(req, res);
        }, slowMs);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case 'garbage':
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>this is not JSON</html>');
        return;
      case 'oversized':
        req.resume();
        return oversized(res, oversizedBytes);
      case 'reset':
        req.resume();
        req.on('end', () => {
          state.resets++;
          destroy(socket);
        });
        return;
      case 'reset-mid-body':
        req.resume();
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
          res.write('x'.repeat(100), () => {
            state.resets++;
            destroy(socket);
          });
        });
        return;
      case 'down':
        // Not listening: no request can arrive.
        return;
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${port}`;
  return state;
}

/** A JSON-looking body (`{"keys":[` and spaces) of `total` bytes, written as the peer takes it. */
function oversized(res: ServerResponse, total: number): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  let written = 0;
  res.write('{"keys":[');
  const pump = () => {
    while (written < total) {
      written += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end(']}');
  };
  pump();
}
