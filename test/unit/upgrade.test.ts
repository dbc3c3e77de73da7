/**
 * The pieces of upgrade handling that the integration tests cannot reach on this Node: what
 * `upgradeResponse` does with an Upgrade other than websocket (Node before 24.9 hands every
 * upgrade to the listener), and the one mapping of transport failures to codes.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { upstreamError } from '../../src/proxy/forward.ts';
import { isWebSocketUpgrade, upgradeResponse, WebSocketProxy } from '../../src/proxy/upgrade.ts';

describe('upstreamError', () => {
  test.each([
    ['ECONNREFUSED', 'ERR_UPSTREAM_UNAVAILABLE'],
    ['ENOTFOUND', 'ERR_UPSTREAM_UNAVAILABLE'],
    ['UND_ERR_CONNECT_TIMEOUT', 'ERR_UPSTREAM_UNAVAILABLE'],
    ['ECONNECT_TIMEOUT', 'ERR_UPSTREAM_UNAVAILABLE'],
    ['UND_ERR_HEADERS_TIMEOUT', 'ERR_UPSTREAM_TIMEOUT'],
    ['UND_ERR_BODY_TIMEOUT', 'ERR_UPSTREAM_TIMEOUT'],
    ['UND_ERR_SOCKET', 'ERR_UPSTREAM_RESET'],
    ['ECONNRESET', 'ERR_UPSTREAM_RESET'],
    [undefined, 'ERR_UPSTREAM_RESET'],
  ])('%s → %s, with the cause kept', (code, expected) => {
    const cause = Object.assign(new Error('transport'), { code });
    const err = upstreamError(cause);
    expect(err.code).toBe(expected);
    expect(err.cause).toBe(cause);
  });

  test('our own timeout flag wins (a ClientRequest destroyed on its idle timer reports a reset)', () => {
    expect(upstreamError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), true).code).toBe('ERR_UPSTREAM_TIMEOUT');
    expect(upstreamError('not an error').code).toBe('ERR_UPSTREAM_RESET');
  });
});

describe('upgradeResponse, as on a Node that hands every upgrade to the listener', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** Sends `head` to a server with an 'upgrade' listener and no shouldUpgradeCallback; answers with what upgradeResponse decided. */
  async function upgrade(head: string): Promise<{ answer: string; websocket: boolean; refusal: string | undefined }> {
    let decided: { websocket: boolean; refusal: string | undefined } = { websocket: false, refusal: undefined };
    const proxy = new WebSocketProxy({ url: 'http://127.0.0.1:9', timeoutMs: 1000, connectTimeoutMs: 1000 });
    server = createServer();
    server.on('upgrade', (req: IncomingMessage, socket, bytes: Buffer) => {
      const { res, refusal } = upgradeResponse(req, socket, bytes);
      decided = { websocket: proxy.handles(req), refusal: refusal?.code };
      res.writeHead(299, { 'x-seen': String(isWebSocketUpgrade(req)), 'content-length': '8' }).end('answered');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      const socket = connect((server!.address() as AddressInfo).port, '127.0.0.1', () => socket.write(head));
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    proxy.close();
    return { answer, ...decided };
  }

  test('a WebSocket handshake is taken over; the answer on its response closes the connection', async () => {
    const got = await upgrade('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    expect(got).toMatchObject({ websocket: true, refusal: undefined });
    expect(got.answer).toMatch(/^HTTP\/1\.1 299 .*\r\n(.*\r\n)*connection: close\r\n/i);
    expect(got.answer).toContain('x-seen: true');
    expect(got.answer.endsWith('answered')).toBe(true);
  });

  test('h2c without a body is served as an ordinary request', async () => {
    const got = await upgrade('GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n');
    expect(got).toMatchObject({ websocket: false, refusal: undefined });
  });

  test.each(['Content-Length: 3\r\n\r\nabc', 'Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'])('h2c with a body Node left unread is refused: %j', async (rest) => {
    const got = await upgrade(`POST /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n${rest}`);
    expect(got).toMatchObject({ websocket: false, refusal: 'ERR_BAD_REQUEST' });
  });

  test('a client that sends more than 64 KiB before the handshake is answered loses its connection (RFC 6455 §4.1)', async () => {
    server = createServer();
    server.on('upgrade', (req: IncomingMessage, socket, bytes: Buffer) => void upgradeResponse(req, socket, bytes)); // never answered
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const closed = await new Promise<boolean>((resolve) => {
      const socket = connect((server!.address() as AddressInfo).port, '127.0.0.1', () => {
        socket.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
        socket.write(Buffer.alloc(70 * 1024));
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(true));
      setTimeout(() => resolve(false), 2000).unref();
    });
    expect(closed).toBe(true);
  });

  test('isWebSocketUpgrade: GET and the websocket token only', () => {
    const req = (method: string, upgradeField?: string) => ({ method, headers: upgradeField === undefined ? {} : { upgrade: upgradeField } }) as IncomingMessage;
    expect(isWebSocketUpgrade(req('GET', 'websocket'))).toBe(true);
    expect(isWebSocketUpgrade(req('GET', 'WebSocket'))).toBe(true);
    expect(isWebSocketUpgrade(req('GET', 'foo, websocket'))).toBe(true);
    expect(isWebSocketUpgrade(req('POST', 'websocket'))).toBe(false);
    expect(isWebSocketUpgrade(req('GET', 'h2c'))).toBe(false);
    expect(isWebSocketUpgrade(req('GET', 'websockets'))).toBe(false);
    expect(isWebSocketUpgrade(req('GET'))).toBe(false);
  });
});
