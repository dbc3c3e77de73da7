/**
 * A real upstream service for tests. It records every request it receives (so tests can assert
 * that a rejected request never arrived) and offers routes that misbehave on purpose:
 *   /sse       three Server-Sent Events, 100 ms apart
 *   /slow      never answers
 *   /reset     destroys the connection
 *   /hop       answers with hop-by-hop fields (Keep-Alive, a field named in Connection)
 *   anything   200 with a JSON echo of method, url and headers
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface TestUpstream {
  url: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startUpstream(): Promise<TestUpstream> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (req.url === '/slow') return;
      if (req.url === '/reset') {
        req.socket.destroy();
        return;
      }
      if (req.url === '/hop') {
        res.writeHead(200, { 'keep-alive': 'timeout=120', connection: 'keep-alive, x-hop', 'x-hop': 'upstream-only', 'x-end-to-end': 'kept', 'content-length': '2' }).end('ok');
        return;
      }
      if (req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        let n = 0;
        const timer = setInterval(() => {
          n++;
          res.write(`id: ${n}\ndata: {"n":${n}}\n\n`);
          if (n === 3) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
        return;
      }
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
