/**
 * WebSocket test parts (the `ws` package): an echo upstream that records each handshake, and a
 * client that opens a WebSocket or reports the refusal it got.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/** A WebSocket echo service that records each handshake's headers; `/plain` is no WebSocket endpoint. */
export interface EchoUpstream {
  url: string;
  handshakes: IncomingHttpHeaders[];
  close(): Promise<void>;
}

export async function startEcho(): Promise<EchoUpstream> {
  const handshakes: IncomingHttpHeaders[] = [];
  const http: Server = createServer((_req, res) => res.writeHead(404, { 'content-type': 'text/plain', 'keep-alive': 'timeout=99' }).end('no websocket here'));
  const wss = new WebSocketServer({ noServer: true });
  http.on('upgrade', (req, socket, head) => {
    if (req.url === '/plain') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 17\r\nKeep-Alive: timeout=99\r\n\r\nno websocket here');
      return;
    }
    handshakes.push(req.headers);
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    handshakes,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

/** Opens a WebSocket; resolves when it is open, or with the refusal's status, headers and body. */
export function open(url: string, headers: Record<string, string>): Promise<{ ws: WebSocket } | { status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once('error', reject);
  });
}

export function echo(ws: WebSocket, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data: Buffer) => resolve(data.toString()));
    ws.once('error', reject);
    ws.send(message);
  });
}
