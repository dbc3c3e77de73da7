/**
 * The sample tool server agentward protects: a tiny HTTP API standing in for an MCP server or
 * any REST tool. It has no authentication of its own; it trusts the identity headers agentward
 * adds, and every answer shows what it received under `seenByTool`, so the demo shows that the
 * caller's token never reaches it and that agentward vouches for who is calling.
 *
 *   GET  /tools/weather?city=Paris    a (fake, deterministic) forecast
 *   GET  /tools/issues                the issues created so far
 *   POST /tools/issues                {"title": "..."} creates an issue (201)
 *
 * In a real deployment the tool must be reachable only through agentward (loopback, a pod-local
 * port or a network policy); here everything listens on 127.0.0.1.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { listenOn } from './net.ts';

export interface ToolServer {
  url: string;
  close(): Promise<void>;
}

interface Issue {
  id: number;
  title: string;
  createdBy: string | null;
  onBehalfOf: string | null;
  createdAt: string;
}

const SKIES = ['sunny', 'partly cloudy', 'overcast', 'light rain', 'windy', 'foggy'];

/** What the tool was told about the caller. `authorization` should always read "(not received)". */
function seenByTool(req: IncomingMessage): Record<string, string> {
  const h = (name: string) => {
    const v = req.headers[name];
    return v === undefined ? '(not received)' : Array.isArray(v) ? v.join(', ') : v;
  };
  return {
    'x-agent-id': h('x-agent-id'),
    'x-user': h('x-user'),
    'x-request-id': h('x-request-id'),
    authorization: req.headers.authorization === undefined ? '(not received)' : '(received: the token leaked!)',
  };
}

export async function startToolServer(port: number): Promise<ToolServer> {
  const issues: Issue[] = [];

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://tool.invalid');
    const seen = seenByTool(req);
    if (url.pathname === '/tools/weather' && req.method === 'GET') {
      const city = url.searchParams.get('city') ?? 'Paris';
      const n = [...city].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7);
      send(res, 200, { tool: 'weather', city, forecast: SKIES[n % SKIES.length], temperatureC: (n % 30) - 5, seenByTool: seen });
      return;
    }
    if (url.pathname === '/tools/issues' && req.method === 'GET') {
      send(res, 200, { tool: 'issues', issues, seenByTool: seen });
      return;
    }
    if (url.pathname === '/tools/issues' && req.method === 'POST') {
      readJson(req).then(
        (body) => {
          const title = typeof body?.title === 'string' && body.title.trim() ? body.title.trim().slice(0, 200) : 'Untitled issue';
          const issue: Issue = {
            id: issues.length + 1,
            title,
            createdBy: req.headers['x-agent-id'] === undefined ? null : String(req.headers['x-agent-id']),
            onBehalfOf: req.headers['x-user'] === undefined ? null : String(req.headers['x-user']),
            createdAt: new Date().toISOString(),
          };
          issues.push(issue);
          send(res, 201, { tool: 'issues', created: issue, seenByTool: seen });
        },
        () => send(res, 400, { error: 'the body must be JSON, e.g. {"title":"..."}' }),
      );
      return;
    }
    send(res, 404, { error: 'no such tool', tools: ['GET /tools/weather?city=Paris', 'GET /tools/issues', 'POST /tools/issues'] });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await listenOn(server, port, 'sample tool server', 'DEMO_TOOL_PORT');
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        for (const s of sockets) s.destroy();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    req.on('error', fail);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (size > 64 * 1024) return fail(new Error('too large'));
      if (text === '') return done(undefined);
      try {
        const value: unknown = JSON.parse(text);
        done(value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined);
      } catch (err) {
        fail(err);
      }
    });
  });
}
