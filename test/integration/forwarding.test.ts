/**
 * What the upstream sees and what the client gets back: credentials stripped, identity headers
 * from the verified token (caller copies removed), Server-Sent Events streamed event by event,
 * upstream failures as 502/504 with codes, ambiguous paths refused, oversized heads refused.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createHash } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';
import { startSilentServer, startStreamingUpstream, type StreamingUpstream } from '../helpers/streaming-upstream.ts';

const RESOURCE = 'https://tools.example.com/';
let issuer: TestIssuer;
let upstream: TestUpstream;
let aw: RunningAgentward;
let token: string;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
  aw = await startAgentward({
    upstream: { url: upstream.url, timeout: '500ms' },
    resource: { id: RESOURCE, authorizationServers: [issuer.issuer], scopesSupported: ['tools.read', 'tools.write'] },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: DEFAULT_POLICY },
    forward: { identityHeaders: { 'X-Agent-Id': 'subject.clientId', 'X-User': 'subject.sub', 'X-Scopes': 'subject.scopes', 'X-Actor': 'delegation.chain.0.sub' } },
  });
  token = await issuer.mint({ scope: 'tools.read tools.write', act: { sub: 'spiffe://agents.example.com/planner', act: { sub: 'spiffe://agents.example.com/root' } } });
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([upstream?.close(), issuer?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

const auth = () => ({ authorization: `Bearer ${token}` });

describe('the forwarded request', () => {
  test('credentials are stripped, identity headers come from the verified token, caller copies are removed', async () => {
    const res = await rawRequest(`${aw.url}/tools/weather?city=Paris&city=Lyon`, {
      headers: {
        ...auth(),
        'x-agent-id': 'forged-agent',
        'X-User': 'forged-user',
        'x-actor': 'forged-actor',
        'client-cert': ':Zm9yZ2Vk:',
        'x-custom': 'kept',
      },
    });
    expect(res.status).toBe(200);
    const seen = upstream.seen[0]!;
    expect(seen.url).toBe('/tools/weather?city=Paris&city=Lyon');
    expect(seen.headers).toMatchObject({
      'x-agent-id': 'research-bot',
      'x-user': 'user-42',
      'x-scopes': 'tools.read tools.write',
      'x-actor': 'spiffe://agents.example.com/planner',
      'x-custom': 'kept',
    });
    // A Txn-Token or a WIT without its section configured is refused, not stripped
    // (test/integration/txn-token.test.ts, workload.test.ts).
    for (const h of ['authorization', 'client-cert']) expect(seen.headers[h]).toBeUndefined();
  });

  test('an identity header whose field is absent is removed, not passed through from the caller', async () => {
    const noActor = await issuer.mint();
    const res = await rawRequest(`${aw.url}/x`, { headers: { authorization: `Bearer ${noActor}`, 'x-actor': 'forged-actor' } });
    expect(res.status).toBe(200);
    expect(upstream.seen[0]!.headers['x-actor']).toBeUndefined();
  });

  test('the request and response bodies pass through unchanged', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: { s: 'é✓' } } });
    const res = await rawRequest(`${aw.url}/mcp`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body });
    expect(res.status).toBe(200);
    expect(upstream.seen[0]!.body).toBe(body);
    expect(JSON.parse(res.body).method).toBe('POST');
  });

  test('a Server-Sent Events response reaches the client event by event', async () => {
    const arrivals: { at: number; text: string }[] = [];
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      const u = new URL(`${aw.url}/sse`);
      request({ host: u.hostname, port: u.port, path: u.pathname, headers: auth() }, (res) => {
        expect(res.headers['content-type']).toBe('text/event-stream');
        res.on('data', (c: Buffer) => arrivals.push({ at: Date.now() - started, text: c.toString() }));
        res.on('end', resolve);
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    const text = arrivals.map((a) => a.text).join('');
    expect(text).toBe('id: 1\ndata: {"n":1}\n\nid: 2\ndata: {"n":2}\n\nid: 3\ndata: {"n":3}\n\n');
    // The upstream writes an event every 100 ms: the first must arrive long before the last.
    expect(arrivals.length).toBeGreaterThanOrEqual(3);
    expect(arrivals.at(-1)!.at - arrivals[0]!.at).toBeGreaterThanOrEqual(150);
  });
});

describe('the response', () => {
  test("the client's hop-by-hop fields do not reach the upstream (RFC 9110 §7.6.1)", async () => {
    const res = await rawRequest(`${aw.url}/x`, { headers: { ...auth(), connection: 'close, x-client-hop', 'x-client-hop': '1', 'keep-alive': 'timeout=5', te: 'trailers' } });
    expect(res.status).toBe(200);
    const seen = upstream.seen.at(-1)!.headers;
    expect(seen['x-client-hop']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen.connection).toBe('keep-alive'); // the proxy's own pooled connection
  });

  test("the upstream's hop-by-hop fields do not reach the client (RFC 9110 §7.6.1)", async () => {
    const res = await rawRequest(`${aw.url}/hop`, { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.body).toBe('ok');
    expect(res.headers['x-end-to-end']).toBe('kept');
    expect(res.headers['keep-alive']).toBeUndefined();
    expect(res.headers['x-hop']).toBeUndefined();
  });
});

describe('upstream failures', () => {
  test('an upstream that never answers is 504 after upstream.timeout', async () => {
    const started = Date.now();
    const res = await rawRequest(`${aw.url}/slow`, { headers: auth() });
    expect(res.status, res.body).toBe(504);
    expect(res.json()).toMatchObject({ code: 'ERR_UPSTREAM_TIMEOUT', status: 504 });
    expect(res.json().detail).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(3000);
  });

  test('an upstream that resets the connection is 502', async () => {
    const res = await rawRequest(`${aw.url}/reset`, { headers: auth() });
    expect(res.status).toBe(502);
    expect(res.json().code).toBe('ERR_UPSTREAM_RESET');
  });

  test('an upstream that refuses connections is 502 ERR_UPSTREAM_UNAVAILABLE', async () => {
    // A port that was free a moment ago and nobody listens on.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = await startAgentward({
      upstream: { url: `http://127.0.0.1:${port}` },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
      policy: { source: DEFAULT_POLICY },
    });
    try {
      const res = await rawRequest(`${dead.url}/x`, { headers: auth() });
      expect(res.status).toBe(502);
      expect(res.json().code).toBe('ERR_UPSTREAM_UNAVAILABLE');
      await new Promise((r) => setTimeout(r, 100));
      expect(dead.audit().at(-1)).toMatchObject({ decision: 'allow', status: 502, code: 'ERR_UPSTREAM_UNAVAILABLE' });
    } finally {
      await dead.stop();
    }
  });
});

describe('admission', () => {
  test.each(['/a/../admin', '/a/./b', '/a/%2e%2e/admin', '/a%2Fb', '/a\\b', '/..'])('path %s is refused before authentication', async (path) => {
    const res = await rawRequest(aw.url, { path, headers: auth() });
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('ERR_PATH_NOT_NORMALIZED');
    expect(upstream.seen).toHaveLength(0);
  });

  test('a request head over listen.maxHeaderBytes is 431 with a problem body', async () => {
    const res = await rawRequest(`${aw.url}/x`, { headers: { ...auth(), 'x-big': 'a'.repeat(20000) } });
    expect(res.status).toBe(431);
    expect(res.json().code).toBe('ERR_HEADERS_TOO_LARGE');
    expect(upstream.seen).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(aw.audit().at(-1)).toMatchObject({ decision: 'deny', status: 431, code: 'ERR_HEADERS_TOO_LARGE', requestId: res.headers['x-request-id'] });
  });

  test('a client that does not finish its request within listen.requestTimeout gets 408, and it is audited', async () => {
    const slow = await startAgentward({
      listen: { requestTimeout: '1s' },
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
      policy: { source: DEFAULT_POLICY },
    });
    try {
      const { port } = new URL(slow.url);
      const started = Date.now();
      const answer = await new Promise<string>((resolve, reject) => {
        let text = '';
        const socket = connect(Number(port), '127.0.0.1', () => socket.write('GET /x HTTP/1.1\r\nHost: a\r\n')); // never finishes the head
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
      expect(answer).toContain('"code":"ERR_REQUEST_TIMEOUT"');
      expect(Date.now() - started).toBeLessThan(3500);
      await new Promise((r) => setTimeout(r, 100));
      expect(slow.audit().at(-1)).toMatchObject({ status: 408, code: 'ERR_REQUEST_TIMEOUT' });
    } finally {
      await slow.stop();
    }
  });

  test('the metadata lists authorization servers and scopes (RFC 9728 §2)', async () => {
    const res = await rawRequest(`${aw.url}/.well-known/oauth-protected-resource`);
    expect(res.json()).toEqual({
      resource: RESOURCE,
      authorization_servers: [issuer.issuer],
      scopes_supported: ['tools.read', 'tools.write'],
      bearer_methods_supported: ['header'],
      dpop_signing_alg_values_supported: ['ES256', 'EdDSA', 'PS256', 'RS256'],
      dpop_bound_access_tokens_required: false,
    });
  });
});

describe('health', () => {
  test('/healthz and /readyz answer on the admin listener with detail', async () => {
    expect((await rawRequest(`${aw.adminUrl}/healthz`)).status).toBe(200);
    const ready = await rawRequest(`${aw.adminUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({ ready: true, policy: { loaded: true, lastError: null }, issuers: [{ issuer: issuer.issuer, ready: true }] });
  });
});

describe('what policy and upstream agree on', () => {
  test('a target starting with "//" stays a path: the policy and the upstream see the same bytes', async () => {
    const res = await rawRequest(aw.url, { path: '//evil.example/x', headers: auth() });
    expect(res.status).toBe(200);
    expect(upstream.seen[0]!.url).toBe('//evil.example/x');
    await new Promise((r) => setTimeout(r, 100));
    expect(aw.audit().at(-1)).toMatchObject({ action: { path: '//evil.example/x' } });
  });

  test('Expect: 100-continue is met by the proxy and not forwarded, so upstream.timeout still applies', async () => {
    const started = Date.now();
    const res = await rawRequest(`${aw.url}/slow`, { method: 'POST', headers: { ...auth(), expect: '100-continue', 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(upstream.seen.at(-1)!.headers.expect).toBeUndefined();
  });
});

test('an expectation other than 100-continue is 417 with a problem body, and audited', async () => {
  const res = await rawRequest(`${aw.url}/x`, { headers: { ...auth(), expect: 'something-else' } });
  expect(res.status).toBe(417);
  expect(res.json().code).toBe('ERR_EXPECTATION_FAILED');
  expect(upstream.seen).toHaveLength(0);
  await new Promise((r) => setTimeout(r, 100));
  expect(aw.audit().at(-1)).toMatchObject({ status: 417, code: 'ERR_EXPECTATION_FAILED' });
});

/** A response as a client saw it, including whether it ended properly (complete) or was cut. */
interface Received {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  complete: boolean;
  trailers: Record<string, string | undefined>;
  /** Milliseconds from the request to each chunk. */
  arrivals: number[];
}

function receive(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Received> {
  const u = new URL(url);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      const arrivals: number[] = [];
      res.on('data', (c: Buffer) => {
        body += c.toString();
        arrivals.push(Date.now() - started);
      });
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, complete: res.complete, trailers: res.trailers, arrivals });
      res.on('end', done);
      res.on('error', done); // a cut response: 'aborted'
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('forwarding with undici: streaming, framing and failures mid-response', () => {
  let streaming: StreamingUpstream;
  let proxy: RunningAgentward;
  beforeAll(async () => {
    streaming = await startStreamingUpstream();
    proxy = await startAgentward({
      upstream: { url: streaming.url, timeout: '400ms', maxSockets: 1 },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
      policy: { source: DEFAULT_POLICY },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await streaming?.close();
  });
  const recordOf = async (requestId: unknown) => {
    await new Promise((r) => setTimeout(r, 100));
    return proxy.audit().find((a) => a.requestId === requestId);
  };

  test('an upstream that resets after part of a Content-Length body: the client connection is cut, never a complete response', async () => {
    const res = await receive(`${proxy.url}/cut-length`, { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.complete).toBe(false);
    expect(res.body.length).toBeLessThan(100);
    expect(await recordOf(res.headers['x-request-id'])).toMatchObject({ decision: 'allow', status: 200, code: 'ERR_UPSTREAM_RESET' });
  });

  test('an upstream that resets after a chunk of a chunked body: the client never gets the last chunk', async () => {
    const res = await receive(`${proxy.url}/cut-chunked`, { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.body).toBe('first chunk');
    expect(res.complete).toBe(false);
    expect(await recordOf(res.headers['x-request-id'])).toMatchObject({ code: 'ERR_UPSTREAM_RESET' });
  });

  test('an upstream silent for upstream.timeout in the middle of a body: the client connection is cut (ERR_UPSTREAM_TIMEOUT)', async () => {
    const res = await receive(`${proxy.url}/stall`, { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.body).toBe('one chunk, then silence');
    expect(res.complete).toBe(false);
    expect(res.arrivals.length).toBeGreaterThan(0);
    expect(await recordOf(res.headers['x-request-id'])).toMatchObject({ status: 200, code: 'ERR_UPSTREAM_TIMEOUT' });
  });

  test('a chunked body arrives chunk by chunk, and its trailer fields follow it (RFC 9110 §6.5)', async () => {
    const ticks = await receive(`${proxy.url}/ticks`, { headers: auth() });
    expect(ticks.body).toBe('tick 1;tick 2;tick 3;');
    expect(ticks.arrivals.at(-1)! - ticks.arrivals[0]!).toBeGreaterThanOrEqual(200);
    const res = await receive(`${proxy.url}/trailers`, { headers: auth() });
    expect(res.complete).toBe(true);
    expect(res.body).toBe('body');
    expect(res.trailers['x-checksum']).toBe('sha256=abc');
  });

  test('103 Early Hints are not passed on; the final answer is', async () => {
    const res = await receive(`${proxy.url}/hints`, { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.body).toBe('after hints');
  });

  test('repeated response fields reach the client as Node reads them: joined, the first kept, cookies apart', async () => {
    const res = await receive(`${proxy.url}/repeated`, { headers: auth() });
    expect(res.headers['x-multi']).toBe('a, b');
    expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(res.headers['content-type']).toBe('text/plain');
  });

  test('a client that does not read holds the upstream back (backpressure), and then gets every byte', async () => {
    const u = new URL(`${proxy.url}/flood`);
    streaming.flood.written = 0;
    streaming.flood.done = false;
    const total = await new Promise<number>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, headers: auth(), agent: false }, (res) => {
        res.pause();
        setTimeout(() => {
          // 64 MiB offered; what socket buffers on loopback hold is far less.
          expect(streaming.flood.written).toBeLessThan(40 * 1024 * 1024);
          expect(streaming.flood.done).toBe(false);
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.resume();
        }, 500);
      });
      req.on('error', reject);
      req.end();
    });
    expect(total).toBe(64 * 1024 * 1024);
  });

  test('a client that leaves mid-response: the upstream answer is abandoned too', async () => {
    const u = new URL(`${proxy.url}/flood`);
    streaming.flood.written = 0;
    streaming.flood.closedEarly = false;
    await new Promise<void>((resolve) => {
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, headers: auth(), agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.end();
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(streaming.flood.closedEarly).toBe(true);
  });

  test('a client that leaves before a short answer: the answer is read and dropped, the upstream connection kept', async () => {
    const u = new URL(`${proxy.url}/hold`);
    const before = streaming.seen.length;
    await new Promise<void>((resolve) => {
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, headers: auth(), agent: false });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.end();
      // /hold answers after 100 ms: the client is gone by then.
      setTimeout(() => req.destroy(), 40);
    });
    await new Promise((r) => setTimeout(r, 200));
    const next = await receive(`${proxy.url}/after-hold`, { headers: auth() });
    expect(next.status).toBe(200);
    const [held, after] = streaming.seen.slice(before);
    expect(held!.url).toBe('/hold');
    expect(after!.url).toBe('/after-hold');
    // The same upstream connection (maxSockets 1): the abandoned request did not cost it.
    expect(after!.port).toBe(held!.port);
  });

  test('a client that leaves an open stream: the upstream connection is cut within a second', async () => {
    const u = new URL(`${proxy.url}/events`);
    const before = streaming.seen.length;
    await new Promise<void>((resolve) => {
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, headers: auth(), agent: false }, (res) => {
        res.once('data', () => req.destroy());
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.end();
    });
    await new Promise((r) => setTimeout(r, 1300));
    const next = await receive(`${proxy.url}/after-events`, { headers: auth() });
    expect(next.status).toBe(200);
    const [events, after] = streaming.seen.slice(before);
    expect(events!.url).toBe('/events');
    expect(after!.port).not.toBe(events!.port);
  });

  test('a request body streams to the upstream as it is sent (chunked), byte for byte', async () => {
    const u = new URL(`${proxy.url}/upload`);
    streaming.uploaded.bytes = 0;
    const part = Buffer.alloc(1024 * 1024, 0x62);
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PUT', headers: { ...auth(), 'content-type': 'application/octet-stream' }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.write(part);
      // The first MiB reaches the upstream while the client has not finished its body.
      const wait = setInterval(() => {
        if (streaming.uploaded.bytes < part.length) return;
        clearInterval(wait);
        for (let i = 0; i < 7; i++) req.write(part);
        req.end();
      }, 10);
    });
    const all = createHash('sha256');
    for (let i = 0; i < 8; i++) all.update(part);
    expect(JSON.parse(answer)).toEqual({ bytes: 8 * part.length, sha256: all.digest('hex') });
    expect(streaming.seen.at(-1)!.headers['transfer-encoding']).toBe('chunked');
  });

  test('upstream.maxSockets bounds the connections: the others wait for a free one', async () => {
    streaming.hold.max = 0;
    const answers = await Promise.all([1, 2, 3].map(() => receive(`${proxy.url}/hold`, { headers: auth() })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(streaming.hold.max).toBe(1);
  });

  test('HEAD keeps the upstream connection alive, like any other request', async () => {
    await receive(`${proxy.url}/x`, { method: 'HEAD', headers: auth() });
    await receive(`${proxy.url}/x`, { headers: auth() });
    const [head, next] = streaming.seen.slice(-2);
    expect(head!.method).toBe('HEAD');
    expect(head!.headers.connection).toBe('keep-alive');
    expect(next!.port).toBe(head!.port);
  });

  test('a transfer coding other than chunked is refused (400), nothing upstream', async () => {
    const before = streaming.seen.length;
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      const socket = connect(Number(new URL(proxy.url).port), '127.0.0.1', () =>
        socket.write(`POST /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`),
      );
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":"ERR_BAD_REQUEST"');
    expect(streaming.seen.length).toBe(before);
  });
});

test('an https upstream whose TLS handshake never completes is 502 ERR_UPSTREAM_UNAVAILABLE after upstream.connectTimeout', async () => {
  const silent = await startSilentServer(); // accepts TCP, never speaks TLS
  const proxy = await startAgentward({
    upstream: { url: `https://127.0.0.1:${silent.port}`, connectTimeout: '300ms', timeout: '20s' },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: DEFAULT_POLICY },
  });
  try {
    const started = Date.now();
    const res = await rawRequest(`${proxy.url}/x`, { headers: auth() });
    expect(res.status).toBe(502);
    expect(res.json().code).toBe('ERR_UPSTREAM_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(5000);
  } finally {
    await proxy.stop();
    await silent.close();
  }
});
