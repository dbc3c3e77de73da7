/**
 * A real OpenID Shared Signals transmitter for tests (SSF 1.0): an HTTP server on loopback that
 * publishes `/.well-known/ssf-configuration` and a JWK Set, signs Security Event Tokens (RFC 8417)
 * with jose, pushes them (RFC 8935) and answers polls (RFC 8936), serves the stream configuration
 * and answers verification requests (SSF 1.0 §8.1.4.2) with a verification event for the next poll.
 * It can be told to sign bad SETs: an unpublished key, another `aud` or `iss`, another `typ`, a
 * reused `jti`.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SignJWT } from 'jose';
import { newKey, type TestKey } from './issuer.ts';

export const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
export const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
export const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/';

export interface SetOptions {
  /** Sign with this key (not published unless it is the transmitter's). */
  key?: TestKey;
  aud?: string;
  iss?: string;
  typ?: string;
  jti?: string;
  iat?: number;
  /** Put the subject in the event payload (earlier drafts) rather than in `sub_id`. */
  subjectInEvent?: boolean;
  /** Extra top-level claims, or undefined values to drop defaults. */
  claims?: Record<string, unknown>;
}

export interface PollRequest {
  ack: string[];
  setErrs?: Record<string, { err: string; description: string }>;
  maxEvents?: number;
  returnImmediately?: boolean;
}

export interface SsfTransmitter {
  issuer: string;
  jwksUri: string;
  key: TestKey;
  /** What the poll endpoint and the management endpoints require. */
  authorization: string;
  /** Signs one SET: `event` is a full event type URI. */
  sign(event: string, payload: Record<string, unknown>, subject: unknown, options?: SetOptions): Promise<{ token: string; jti: string }>;
  /** POSTs a SET (RFC 8935 §2) and returns the answer. */
  push(url: string, token: string, options?: { authorization?: string | null; contentType?: string }): Promise<{ status: number; body: string; json: () => Record<string, unknown> }>;
  /** Queues a SET for the next poll, under its jti (or another key). */
  queue(token: string, jti: string): void;
  /** Poll requests received, in order. */
  polls: PollRequest[];
  verificationRequests: { stream_id?: string; state?: string }[];
  streamReads: number;
  close(): Promise<void>;
}

export async function startSsfTransmitter(options: { audience: string; path?: string }): Promise<SsfTransmitter> {
  const key = await newKey('ES256', 'ssf-1');
  const sockets = new Set<Socket>();
  const queued = new Map<string, string>();
  const polls: PollRequest[] = [];
  const verificationRequests: SsfTransmitter['verificationRequests'] = [];
  const authorization = 'Bearer poll-secret';
  let streamReads = 0;
  let base = '';
  const issuerPath = options.path ?? '';
  let issuer = '';

  const sign: SsfTransmitter['sign'] = async (event, payload, subject, opts = {}) => {
    const signer = opts.key ?? key;
    const jti = opts.jti ?? `set-${Math.random().toString(36).slice(2)}`;
    const claims: Record<string, unknown> = {
      iss: opts.iss ?? issuer,
      aud: opts.aud ?? options.audience,
      iat: opts.iat ?? Math.floor(Date.now() / 1000),
      jti,
      ...(opts.subjectInEvent ? {} : { sub_id: subject }),
      events: { [event]: opts.subjectInEvent ? { subject, ...payload } : payload },
      ...opts.claims,
    };
    for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
    const token = await new SignJWT(claims).setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: opts.typ ?? 'secevent+jwt' }).sign(signer.privateKey);
    return { token, jti };
  };

  const readBody = (req: import('node:http').IncomingMessage) =>
    new Promise<string>((resolve) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => resolve(body));
    });

  const server: Server = createServer((req, res) => {
    void (async () => {
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const path = (req.url ?? '').split('?')[0];
      if (path === `/.well-known/ssf-configuration${issuerPath}`) {
        json(200, {
          spec_version: '1_0',
          issuer,
          jwks_uri: `${base}/jwks`,
          delivery_methods_supported: ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'],
          configuration_endpoint: `${base}/stream`,
          verification_endpoint: `${base}/verify`,
        });
        return;
      }
      if (path === '/jwks') {
        json(200, { keys: [key.publicJwk] });
        return;
      }
      if (req.headers.authorization !== authorization) {
        json(401, { error: 'unauthorized' });
        return;
      }
      if (path === '/stream' && req.method === 'GET') {
        streamReads++;
        json(200, {
          stream_id: 'stream-1',
          iss: issuer,
          aud: options.audience,
          delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: `${base}/poll` },
          events_delivered: [`${CAEP}session-revoked`, `${RISC}account-disabled`],
        });
        return;
      }
      if (path === '/verify' && req.method === 'POST') {
        const body = JSON.parse(await readBody(req)) as { stream_id?: string; state?: string };
        verificationRequests.push(body);
        const set = await sign(`${SSF}verification`, { state: body.state }, { format: 'opaque', id: body.stream_id ?? 'stream-1' });
        queued.set(set.jti, set.token);
        res.writeHead(204).end();
        return;
      }
      if (path === '/poll' && req.method === 'POST') {
        const body = JSON.parse(await readBody(req)) as PollRequest;
        polls.push(body);
        const max = body.maxEvents ?? 100;
        const sets: Record<string, string> = {};
        for (const [jti, token] of queued) {
          if (Object.keys(sets).length >= max) break;
          sets[jti] = token;
          queued.delete(jti);
        }
        json(200, { sets, moreAvailable: queued.size > 0 });
        return;
      }
      json(404, { error: 'not found' });
    })();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer = base + issuerPath;

  return {
    issuer,
    jwksUri: `${base}/jwks`,
    key,
    authorization,
    sign,
    push(url, token, opts = {}) {
      const u = new URL(url);
      const auth = opts.authorization === undefined ? 'Bearer push-secret' : opts.authorization;
      return new Promise((resolve, reject) => {
        const req = request(
          {
            host: u.hostname,
            port: u.port,
            path: u.pathname,
            method: 'POST',
            agent: false,
            headers: { 'content-type': opts.contentType ?? 'application/secevent+jwt', accept: 'application/json', ...(auth === null ? {} : { authorization: auth }) },
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body, json: () => JSON.parse(body) as Record<string, unknown> }));
          },
        );
        req.on('error', reject);
        req.end(token);
      });
    },
    queue(token, jti) {
      queued.set(jti, token);
    },
    polls,
    verificationRequests,
    get streamReads() {
      return streamReads;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
