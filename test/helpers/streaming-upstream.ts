/**
 * An upstream for the forwarder's streaming and failure cases (test/integration/forwarding.test.ts):
 *   /cut-length    a Content-Length response cut after 10 of 100 bytes
 *   /cut-chunked   a chunked response cut after its first chunk
 *   /stall         the head and one chunk, then nothing
 *   /events        a Server-Sent Events stream: one event, then open until the client goes
 *   /trailers      a chunked body followed by trailer fields
 *   /ticks         three chunks, 150 ms apart (no event stream)
 *   /hints         103 Early Hints, then the answer
 *   /repeated      repeated fields (joined, kept first, or kept apart as Node does)
 *   /flood         writes `floodBytes` as fast as the connection takes them, counting
 *   /upload        reads the body, answers its length and SHA-256
 *   /hold          answers after 100 ms, counting requests in progress at once
 *   anything else  200 "ok"
 * It records, per request, the peer port (to see connection reuse) and whether the answer was
 * abandoned by the proxy before it ended.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';

export interface StreamingUpstream {
  url: string;
  seen: { url: string; method: string; headers: IncomingHttpHeaders; port: number }[];
  /** Bytes of /flood written so far, and whether its answer was abandoned. */
  flood: { written: number; closedEarly: boolean; done: boolean };
  /** Body bytes of /upload received so far. */
  uploaded: { bytes: number };
  /** Most /hold requests in progress at once. */
  hold: { now: number; max: number };
  close(): Promise<void>;
}

export async function startStreamingUpstream(floodBytes = 64 * 1024 * 1024): Promise<StreamingUpstream> {
  const seen: StreamingUpstream['seen'] = [];
  const flood = { written: 0, closedEarly: false, done: false };
  const uploaded = { bytes: 0 };
  const hold = { now: 0, max: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', method: req.method ?? '', headers: req.headers, port: req.socket.remotePort ?? 0 });
    if (req.url === '/upload') {
      const hash = createHash('sha256');
      req.on('data', (c: Buffer) => {
        uploaded.bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes: uploaded.bytes, sha256: hash.digest('hex') })));
      return;
    }
    req.resume();
    switch (req.url) {
      case '/cut-length':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
        res.write('x'.repeat(10));
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      case '/cut-chunked':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first chunk');
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      case '/events':
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
        res.write('event: ready\ndata: {}\n\n');
        return;
      case '/stall':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('one chunk, then silence');
        return;
      case '/trailers':
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('body');
        res.addTrailers({ 'x-checksum': 'sha256=abc' });
        res.end();
        return;
      case '/ticks': {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`tick ${++n};`);
          if (n === 3) {
            clearInterval(timer);
            res.end();
          }
        }, 150);
        return;
      }
      case '/hints':
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('after hints');
        return;
      case '/repeated':
        // Written raw: Node's own response would merge the repeated fields itself.
        res.socket!.end('HTTP/1.1 200 OK\r\nX-Multi: a\r\nX-Multi: b\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
        return;
      case '/flood':
        floodUntil(res, floodBytes, flood);
        return;
      case '/hold':
        hold.max = Math.max(hold.max, ++hold.now);
        setTimeout(() => {
          hold.now--;
          res.end('held');
        }, 100);
        return;
      default:
        res.end('ok');
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    flood,
    uploaded,
    hold,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Writes `total` bytes, each chunk when the connection has taken the last (write() → 'drain'). */
function floodUntil(res: ServerResponse, total: number, flood: StreamingUpstream['flood']): void {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  res.on('close', () => {
    if (!res.writableFinished) flood.closedEarly = true;
  });
  const pump = () => {
    while (flood.written < total) {
      flood.written += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    flood.done = true;
    res.end();
  };
  pump();
}

/** A TCP server that accepts connections and never says a word (no HTTP answer, no TLS handshake). */
export async function startSilentServer(): Promise<{ port: number; open(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.resume(); // read (and drop) what comes, so that the peer's close is noticed
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    /** Connections open now. */
    open: () => sockets.size,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A loopback port that was free a moment ago and nobody listens on. */
export function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createTcpServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
