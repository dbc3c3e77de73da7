/**
 * The forwarder's response-rewrite hook (src/rpc/list-filter.ts `ResponseRewrite`) and its
 * failures, on a real upstream and a real client connection: a rewrite that refuses the answer
 * is our 502 with its code, one that fails mid-body cuts the connection and drops the upstream
 * request, one that rewrites changes the body and drops Content-Length.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';
import { AgentwardError } from '../../src/errors.ts';
import { Forwarder, type ForwardResult } from '../../src/proxy/forward.ts';
import type { ResponseRewrite } from '../../src/rpc/list-filter.ts';

let upstream: Server;
let front: Server;
let forwarder: Forwarder;
let upstreamClosedEarly = 0;
/** The rewrite the next request is forwarded with, and what its forward resolved with. */
let rewrite: ResponseRewrite | undefined;
let result: Promise<ForwardResult> | undefined;

const listen = (server: Server) => new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));

beforeAll(async () => {
  upstream = createServer((_req, res) => {
    res.on('close', () => {
      if (!res.writableFinished) upstreamClosedEarly++;
    });
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10' });
    res.write('hello');
    setTimeout(() => res.end('world'), 50);
  });
  forwarder = new Forwarder({ url: `http://127.0.0.1:${await listen(upstream)}`, timeoutMs: 2000, connectTimeoutMs: 1000, maxSockets: 4 }, { handles: () => false, forward: () => Promise.reject(new Error('no upgrades here')), close: () => undefined });
  front = createServer((req: IncomingMessage, res: ServerResponse) => {
    result = forwarder.forward(req, res, req.url!, undefined, (err) => res.writeHead(err.status, { 'x-code': err.code }).end(), rewrite);
  });
  await listen(front);
});
afterAll(async () => {
  forwarder.close();
  front.closeAllConnections();
  upstream.closeAllConnections();
  await Promise.all([front, upstream].map((s) => new Promise<void>((r) => s.close(() => r()))));
});

function get(): Promise<{ status: number; headers: IncomingMessage['headers']; body: string; complete: boolean }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: (front.address() as AddressInfo).port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete: res.complete });
      res.on('end', done);
      res.on('error', done);
    });
    // Cut before any head: the client sees no response at all.
    req.on('error', () => resolve({ status: 0, headers: {}, body: '', complete: false }));
    req.end();
  });
}

test('a rewrite that changes the body: the new body, without the upstream Content-Length', async () => {
  rewrite = () => new Transform({ transform: (chunk: Buffer, _enc, done) => done(null, chunk.toString().toUpperCase()) });
  const res = await get();
  expect(res).toMatchObject({ status: 200, body: 'HELLOWORLD', complete: true });
  expect(res.headers['content-length']).toBeUndefined();
  expect(await result).toEqual({ status: 200, error: undefined });
});

test('a rewrite that refuses the answer: our problem with its code (502), nothing of the upstream answer', async () => {
  rewrite = () => {
    throw new AgentwardError('ERR_MCP_RESPONSE_UNFILTERABLE');
  };
  const res = await get();
  expect(res.status).toBe(502);
  expect(res.headers['x-code']).toBe('ERR_MCP_RESPONSE_UNFILTERABLE');
  expect(res.headers['content-type']).toBeUndefined();
  expect((await result)!.error?.code).toBe('ERR_MCP_RESPONSE_UNFILTERABLE');
});

test('a rewrite that throws anything else is a reset (502 ERR_UPSTREAM_RESET)', async () => {
  rewrite = () => {
    throw new TypeError('bug');
  };
  const res = await get();
  expect(res.headers['x-code']).toBe('ERR_UPSTREAM_RESET');
});

test('a rewrite that fails mid-body: the client connection is cut and the upstream answer abandoned', async () => {
  await new Promise((r) => setTimeout(r, 100)); // the upstream answers abandoned by the refusals above
  upstreamClosedEarly = 0;
  rewrite = () => new Transform({ transform: (_chunk, _enc, done) => done(new Error('list too large')) });
  const res = await get();
  expect(res.complete).toBe(false);
  expect(res.body).toBe('');
  expect((await result)!.error).toBeUndefined();
  await new Promise((r) => setTimeout(r, 100));
  expect(upstreamClosedEarly).toBe(1);
});
