/**
 * WebSocket handshakes (RFC 6455 §4) through the real proxy to a real WebSocket echo upstream
 * (the `ws` package): the handshake runs the same pipeline as any request (credentials, policy,
 * header rewrite, audit record) and is refused with the same problem responses; an allowed one is
 * proxied and echoes. Other Upgrade requests stay ordinary requests (src/proxy/upgrade.ts).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { connect } from 'node:net';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';
import { closedPort, startSilentServer } from '../helpers/streaming-upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { echo, open, startEcho, type EchoUpstream } from '../helpers/websocket.ts';

const RESOURCE = 'https://tools.example.com/';

const settle = () => new Promise((r) => setTimeout(r, 100));

/** agentward in front of `url` with the default policy; `upstream` and `listen` settings added. */
function proxyTo(url: string, extra: { upstream?: Record<string, unknown>; listen?: Record<string, unknown>; forward?: Record<string, unknown> } = {}): Promise<RunningAgentward> {
  return startAgentward({
    ...(extra.listen ? { listen: extra.listen } : {}),
    ...(extra.forward ? { forward: extra.forward } : {}),
    upstream: { url, ...extra.upstream },
    resource: { id: RESOURCE, authorizationServers: [issuer.issuer] },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: DEFAULT_POLICY },
  });
}

let issuer: TestIssuer;
let echoUpstream: EchoUpstream;
let aw: RunningAgentward;
let token: string;
let wsUrl: string;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  echoUpstream = await startEcho();
  aw = await proxyTo(echoUpstream.url, { upstream: { timeout: '2s' }, forward: { identityHeaders: { 'X-Agent-Id': 'subject.clientId', 'X-User': 'subject.sub' } } });
  token = await issuer.mint({ scope: 'tools.read tools.write' });
  wsUrl = aw.url.replace(/^http/, 'ws');
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([echoUpstream?.close(), issuer?.close()]);
});
beforeEach(() => {
  echoUpstream.handshakes.length = 0;
});

describe('an allowed handshake', () => {
  test('is proxied: messages echo both ways, the upstream sees identity headers and no credentials, the handshake is audited', async () => {
    const opened = await open(`${wsUrl}/ws/chat?room=1`, { authorization: `Bearer ${token}`, 'x-agent-id': 'forged', 'x-forwarded-for': '6.6.6.6' });
    if (!('ws' in opened)) throw new Error(`refused: ${opened.status} ${opened.body}`);
    const { ws } = opened;
    try {
      expect(await echo(ws, 'hello')).toBe('hello');
      expect(await echo(ws, 'é✓ twice')).toBe('é✓ twice');
    } finally {
      ws.close();
    }
    const seen = echoUpstream.handshakes[0]!;
    expect(seen.authorization).toBeUndefined();
    expect(seen).toMatchObject({ 'x-agent-id': 'research-bot', 'x-user': 'user-42', 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', upgrade: 'websocket', connection: 'upgrade' });
    expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    await settle();
    expect(aw.audit().at(-1)).toMatchObject({ requestId: seen['x-request-id'], decision: 'allow', status: 101, code: null, action: { method: 'GET', path: '/ws/chat' }, subject: { sub: 'user-42' } });
  });

  test('the 101 carries the request id and only the upgrade among hop-by-hop fields', async () => {
    const socket = connect(Number(new URL(aw.url).port), '127.0.0.1');
    const head = await new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('connect', () =>
        socket.write(`GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\nX-Request-Id: ws-test-1\r\n\r\n`),
      );
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
      socket.on('error', reject);
    });
    socket.destroy();
    expect(head).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(head).toMatch(/\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
    expect(head).toMatch(/\r\nx-request-id: ws-test-1\r\n/i);
    expect(head).toMatch(/\r\nconnection: upgrade\r\n/i);
    expect(head).toMatch(/\r\nupgrade: websocket\r\n/i);
  });
});

describe('a refused handshake', () => {
  test('without a token: 401 ERR_CREDENTIALS_MISSING with its challenge, nothing upstream, audited', async () => {
    const refused = await open(`${wsUrl}/ws`, {});
    if ('ws' in refused) throw new Error('opened');
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'ERR_CREDENTIALS_MISSING', status: 401 });
    expect(refused.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(refused.headers.connection).toBe('close');
    expect(refused.headers['x-request-id']).toBeDefined();
    expect(echoUpstream.handshakes).toHaveLength(0);
    await settle();
    expect(aw.audit().at(-1)).toMatchObject({ requestId: refused.headers['x-request-id'], decision: 'deny', status: 401, code: 'ERR_CREDENTIALS_MISSING' });
  });

  test.each([
    ['expired', async () => issuer.mint({ exp: Math.floor(Date.now() / 1000) - 600, iat: Math.floor(Date.now() / 1000) - 1200 }), 'ERR_TOKEN_EXPIRED'],
    ['malformed', async () => 'not-a-jwt', 'ERR_TOKEN_MALFORMED'],
  ])('with an %s token: 401 with its code, nothing upstream, audited', async (_kind, make, code) => {
    const refused = await open(`${wsUrl}/ws`, { authorization: `Bearer ${await make()}` });
    if ('ws' in refused) throw new Error('opened');
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ code });
    expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
    expect(echoUpstream.handshakes).toHaveLength(0);
    await settle();
    expect(aw.audit().at(-1)).toMatchObject({ decision: 'deny', status: 401, code });
  });

  test('denied by the policy: 403 with the policy code, audited as a deny', async () => {
    const noScope = await issuer.mint({ scope: 'other' });
    const refused = await open(`${wsUrl}/ws`, { authorization: `Bearer ${noScope}` });
    if ('ws' in refused) throw new Error('opened');
    expect(refused.status).toBe(403);
    const code = JSON.parse(refused.body).code as string;
    expect(code).toMatch(/^ERR_POLICY_/);
    expect(echoUpstream.handshakes).toHaveLength(0);
    await settle();
    expect(aw.audit().at(-1)).toMatchObject({ decision: 'deny', status: 403, code });
  });
});

describe('upstream answers', () => {
  test('an upstream path that is no WebSocket endpoint: its answer is relayed without its hop-by-hop fields, and the connection closed', async () => {
    const refused = await open(`${wsUrl}/plain`, { authorization: `Bearer ${token}` });
    if ('ws' in refused) throw new Error('opened');
    expect(refused.status).toBe(404);
    expect(refused.body).toBe('no websocket here');
    expect(refused.headers['keep-alive']).toBeUndefined();
    expect(refused.headers.connection).toBe('close');
    expect(refused.headers['x-request-id']).toBeDefined();
    await settle();
    expect(aw.audit().at(-1)).toMatchObject({ decision: 'allow', status: 404, code: null });
  });

  test('an upstream that refuses connections: 502 ERR_UPSTREAM_UNAVAILABLE on the socket, audited', async () => {
    const dead = await proxyTo(`http://127.0.0.1:${await closedPort()}`);
    try {
      const refused = await open(`${dead.url.replace(/^http/, 'ws')}/ws`, { authorization: `Bearer ${token}` });
      if ('ws' in refused) throw new Error('opened');
      expect(refused.status).toBe(502);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'ERR_UPSTREAM_UNAVAILABLE' });
      await settle();
      expect(dead.audit().at(-1)).toMatchObject({ decision: 'allow', status: 502, code: 'ERR_UPSTREAM_UNAVAILABLE' });
    } finally {
      await dead.stop();
    }
  });

  test('an upstream that never answers the handshake: 504 ERR_UPSTREAM_TIMEOUT after upstream.timeout', async () => {
    const silent = await startSilentServer();
    const slow = await proxyTo(`http://127.0.0.1:${silent.port}`, { upstream: { timeout: '300ms' } });
    try {
      const started = Date.now();
      const refused = await open(`${slow.url.replace(/^http/, 'ws')}/ws`, { authorization: `Bearer ${token}` });
      if ('ws' in refused) throw new Error('opened');
      expect(refused.status).toBe(504);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'ERR_UPSTREAM_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await slow.stop();
      await silent.close();
    }
  });

  test('a client that leaves during the handshake: the upstream connection is dropped too', async () => {
    const silent = await startSilentServer();
    const slow = await proxyTo(`http://127.0.0.1:${silent.port}`, { upstream: { timeout: '20s' } });
    try {
      const client = connect(Number(new URL(slow.url).port), '127.0.0.1', () =>
        client.write(`GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\n\r\n`),
      );
      client.on('error', () => undefined);
      await waitFor(async () => silent.open() === 1, 'the handshake to reach the upstream');
      client.destroy();
      await waitFor(async () => silent.open() === 0, 'the upstream connection to be dropped', 3000);
    } finally {
      await slow.stop();
      await silent.close();
    }
  });
});

describe('other upgrades and shutdown', () => {
  let plain: TestUpstream;
  let proxy: RunningAgentward;
  beforeAll(async () => {
    plain = await startUpstream();
    proxy = await proxyTo(plain.url);
  });
  afterAll(async () => {
    await proxy?.stop();
    await plain?.close();
  });

  test('an Upgrade other than websocket (h2c) is an ordinary request: answered by the upstream, its Upgrade not forwarded', async () => {
    const res = await rawRequest(`${proxy.url}/x`, { headers: { authorization: `Bearer ${token}`, connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA' } });
    expect(res.status).toBe(200);
    const seen = plain.seen.at(-1)!.headers;
    expect(seen.upgrade).toBeUndefined();
    expect(seen['http2-settings']).toBeUndefined();
    expect(seen.authorization).toBeUndefined();
  });

  test('an open WebSocket does not hold shutdown past listen.shutdownTimeout', async () => {
    const echoProxy = await proxyTo(echoUpstream.url, { listen: { shutdownTimeout: '200ms' } });
    const opened = await open(`${echoProxy.url.replace(/^http/, 'ws')}/ws`, { authorization: `Bearer ${token}` });
    if (!('ws' in opened)) throw new Error(`refused: ${opened.status}`);
    const closed = new Promise<void>((r) => opened.ws.once('close', () => r()));
    const started = Date.now();
    await echoProxy.stop();
    expect(Date.now() - started).toBeLessThan(3000);
    await closed;
  });
});
