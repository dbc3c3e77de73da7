/**
 * What the upstream sees and what the client gets back: credentials stripped, identity headers
 * from the verified token (caller copies removed), Server-Sent Events streamed event by event,
 * upstream failures as 502/504 with codes, ambiguous paths refused, oversized heads refused.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';

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
