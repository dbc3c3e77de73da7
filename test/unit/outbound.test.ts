/**
 * The one bounded body reader (src/outbound/bounded-body.ts) and the POST of the outbound client
 * (src/outbound/http.ts); the GETs are covered through their callers in issuer-keys.test.ts and
 * bundle-source.test.ts. Every failure must come out as the caller's own error, never undici's.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { readBounded, type BoundedBodyOptions } from '../../src/outbound/bounded-body.ts';
import { postForm, type TransportFailure } from '../../src/outbound/http.ts';

class CallerError extends Error {
  readonly failure: string;
  readonly original: unknown;
  constructor(failure: string, original?: unknown) {
    super(failure);
    this.failure = failure;
    this.original = original;
  }
}

const errors = (maxBytes: number): BoundedBodyOptions => ({
  maxBytes,
  tooLarge: () => new CallerError('too-large'),
  readFailed: (cause) => new CallerError('read-failed', cause),
});

describe('readBounded', () => {
  test('reads a body up to the cap, whole', async () => {
    const body = await readBounded(Readable.from([Buffer.from('abc'), Buffer.from('de')]), errors(5));
    expect(body.toString()).toBe('abcde');
  });

  test('a declared size over the cap is refused before a byte is read, after discard', async () => {
    const stream = Readable.from([Buffer.from('x')]);
    let discarded = false;
    const err = await readBounded(stream, { ...errors(5), contentLength: '6', discard: async () => void (discarded = true) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ failure: 'too-large' });
    expect(discarded).toBe(true);
    expect(stream.readableDidRead).toBe(false);
  });

  test('a counted size over the cap is refused at the first byte past it, and the stream destroyed', async () => {
    const stream = Readable.from([Buffer.from('abc'), Buffer.from('def'), Buffer.from('never read')]);
    await expect(readBounded(stream, { ...errors(5), contentLength: 'not a number' })).rejects.toMatchObject({ failure: 'too-large' });
    expect(stream.destroyed).toBe(true);
  });

  test('a stream that fails is the caller\'s read error, with the cause kept', async () => {
    const broken = new Error('socket hang up');
    const stream = new Readable({ read() { this.destroy(broken); } });
    const err = await readBounded(stream, errors(5)).catch((e: unknown) => e);
    expect(err).toMatchObject({ failure: 'read-failed', original: broken });
  });
});

describe('postForm', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await close(server);
    server = undefined;
  });

  async function close(s: Server): Promise<void> {
    s.closeAllConnections();
    await new Promise((done) => s.close(done));
  }

  async function serve(handler: RequestListener): Promise<URL> {
    server = createServer(handler);
    await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
    return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`);
  }

  const fail = (failure: TransportFailure, url: string, cause?: unknown): Error => new CallerError(`${failure.kind} ${url}`, cause);
  const options = { timeoutMs: 300, maxBytes: 64, headers: { 'content-type': 'application/x-www-form-urlencoded' }, fail };

  test('sends the body and headers as given; a 200 answer comes back with its body', async () => {
    const url = await serve((req, res) => {
      let form = '';
      req.on('data', (chunk: Buffer) => (form += chunk.toString()));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, type: req.headers['content-type'], form })));
    });
    const answer = await postForm(url, 'token=t', { ...options, maxBytes: 1024 });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(JSON.parse(answer.body.toString())).toEqual({ method: 'POST', type: 'application/x-www-form-urlencoded', form: 'token=t' });
  });

  test('a redirect is not followed: it comes back as its status, with no body', async () => {
    let hits = 0;
    const url = await serve((_req, res) => {
      hits++;
      res.writeHead(307, { location: '/elsewhere' }).end('moved');
    });
    await expect(postForm(url, 'token=t', options)).resolves.toMatchObject({ status: 307, body: Buffer.alloc(0) });
    expect(hits).toBe(1);
  });

  test('an answer over the cap, no answer in time and a refused connection are the caller\'s errors', async () => {
    const url = await serve((req, res) => {
      if (req.headers['x-mode'] === 'hang') return;
      res.writeHead(200).end('x'.repeat(65));
    });
    await expect(postForm(url, 'token=t', options)).rejects.toMatchObject({ failure: `too-large ${url.href}` });
    await expect(postForm(url, 'token=t', { ...options, headers: { 'x-mode': 'hang' } })).rejects.toMatchObject({ failure: `timeout ${url.href}` });
    await close(server!);
    server = undefined;
    await expect(postForm(url, 'token=t', options)).rejects.toMatchObject({ failure: `unreachable ${url.href}` });
  });
});
