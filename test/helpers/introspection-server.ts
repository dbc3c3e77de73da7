/**
 * A real RFC 7662 introspection endpoint for tests: an HTTP server on loopback that authenticates
 * the caller (client_secret_basic, client_secret_post or private_key_jwt, the assertion verified
 * with jose), answers from a table of tokens, signs the answer (RFC 9701) when asked, and can be
 * told to misbehave: hang, fail, send garbage, redirect, or answer too much. It counts calls.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SignJWT, jwtVerify, type CryptoKey, type JWTPayload } from 'jose';
import type { TestKey } from './issuer.ts';

export type ExpectedClientAuth =
  | { method: 'client_secret_basic'; clientId: string; clientSecret: string }
  | { method: 'client_secret_post'; clientId: string; clientSecret: string }
  | { method: 'private_key_jwt'; clientId: string; publicKey: CryptoKey; audience: string };

/**
 * up: answers; hang: accepts and never answers; hang-body: sends headers, never the body;
 * error: HTTP 500; not-json: 200 application/json with a non-JSON body; html: 200 text/html;
 * redirect: 307 to `redirectTo`; huge: a 1 MiB JSON body, chunked; huge-declared: the same
 * with its Content-Length.
 */
export type IntrospectionMode = 'up' | 'hang' | 'hang-body' | 'error' | 'not-json' | 'html' | 'redirect' | 'huge' | 'huge-declared';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  form: URLSearchParams;
  /** The verified client assertion (private_key_jwt). */
  assertion?: JWTPayload;
}

/** How the RFC 9701 signed answer is made; every field can be set wrong on purpose. */
export interface SignedResponseSettings {
  key: TestKey;
  typ?: string;
  iss?: string;
  aud?: string;
  /** Seconds; default: the server clock. */
  iat?: number;
  /** Content-Type sent with it. */
  contentType?: string;
  /** false: put the members at the top level instead of under token_introspection. */
  wrap?: boolean;
  /** Send this body instead of a signed JWT. */
  raw?: string;
}

export interface IntrospectionServer {
  /** The introspection endpoint URL. */
  endpoint: string;
  origin: string;
  /** The answer per token; a token not listed is `{ active: false }`. */
  tokens: Map<string, Record<string, unknown>>;
  mode: IntrospectionMode;
  redirectTo: string;
  /** Milliseconds to wait before answering (to make concurrent calls overlap). */
  delayMs: number;
  /** Set to sign answers to requests that accept application/token-introspection+jwt. */
  signed: SignedResponseSettings | undefined;
  /** Authenticated introspection calls answered or attempted (after client authentication). */
  calls(): number;
  /** Requests rejected for bad client authentication. */
  authFailures(): number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const JWT_MEDIA_TYPE = 'application/token-introspection+jwt';

/** RFC 6749 Appendix B: form-urlencoded decoding of one Basic credential part. */
const formDecode = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '));

export async function startIntrospectionServer(options: { issuer: string; auth: ExpectedClientAuth; now?: () => number }): Promise<IntrospectionServer> {
  const nowS = (): number => Math.floor((options.now ?? Date.now)() / 1000);
  const sockets = new Set<Socket>();
  let calls = 0;
  let authFailures = 0;

  const state: IntrospectionServer = {
    endpoint: '',
    origin: '',
    tokens: new Map(),
    mode: 'up',
    redirectTo: '',
    delayMs: 0,
    signed: undefined,
    calls: () => calls,
    authFailures: () => authFailures,
    requests: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  async function authenticate(headers: IncomingHttpHeaders, form: URLSearchParams, record: RecordedRequest): Promise<boolean> {
    const expected = options.auth;
    if (expected.method === 'client_secret_basic') {
      const header = headers.authorization ?? '';
      if (!header.startsWith('Basic ') || form.has('client_secret') || form.has('client_assertion')) return false;
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return false;
      return formDecode(decoded.slice(0, colon)) === expected.clientId && formDecode(decoded.slice(colon + 1)) === expected.clientSecret;
    }
    if (headers.authorization !== undefined) return false;
    if (expected.method === 'client_secret_post') {
      return form.get('client_id') === expected.clientId && form.get('client_secret') === expected.clientSecret;
    }
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return false;
    const assertion = form.get('client_assertion');
    if (!assertion) return false;
    try {
      // RFC 7523 §3: iss = sub = client_id, aud = the AS, exp and jti present.
      const { payload } = await jwtVerify(assertion, expected.publicKey, {
        issuer: expected.clientId,
        subject: expected.clientId,
        audience: expected.audience,
        requiredClaims: ['exp', 'iat', 'jti'],
        currentDate: new Date(nowS() * 1000),
      });
      record.assertion = payload;
      return true;
    } catch {
      return false;
    }
  }

  async function signedAnswer(body: Record<string, unknown>): Promise<string> {
    const s = state.signed!;
    if (s.raw !== undefined) return s.raw;
    const claims: Record<string, unknown> = {
      ...(s.wrap === false ? body : { token_introspection: body }),
      iss: s.iss ?? options.issuer,
      aud: s.aud ?? options.auth.clientId,
      iat: s.iat ?? nowS(),
    };
    return new SignJWT(claims).setProtectedHeader({ alg: s.key.alg, kid: s.key.kid, typ: s.typ ?? 'token-introspection+jwt' }).sign(s.key.privateKey);
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const record: RecordedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, form };
        state.requests.push(record);
        if (req.method !== 'POST' || req.headers['content-type'] !== 'application/x-www-form-urlencoded' || !form.get('token')) {
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
          return;
        }
        if (!(await authenticate(req.headers, form, record))) {
          authFailures++;
          res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic' }).end('{"error":"invalid_client"}');
          return;
        }
        calls++;
        if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
        switch (state.mode) {
          case 'hang':
            return;
          case 'hang-body':
            res.writeHead(200, { 'content-type': 'application/json' });
            res.write('{"active":');
            return;
          case 'error':
            res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}');
            return;
          case 'not-json':
            res.writeHead(200, { 'content-type': 'application/json' }).end('{"active":tru');
            return;
          case 'html':
            res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>');
            return;
          case 'redirect':
            res.writeHead(307, { location: state.redirectTo }).end();
            return;
          case 'huge':
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ active: true, pad: 'x'.repeat(1 << 20) }));
            return;
          case 'huge-declared': {
            const huge = JSON.stringify({ active: true, pad: 'x'.repeat(1 << 20) });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(huge) }).end(huge);
            return;
          }
          case 'up':
            break;
        }
        const answer = state.tokens.get(form.get('token')!) ?? { active: false };
        const accept = req.headers.accept ?? '';
        if (state.signed && accept.includes(JWT_MEDIA_TYPE)) {
          res.writeHead(200, { 'content-type': state.signed.contentType ?? JWT_MEDIA_TYPE }).end(await signedAnswer(answer));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(answer));
      })().catch((err: unknown) => {
        res.writeHead(500).end(String(err));
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.endpoint = `${state.origin}/oauth2/introspect`;
  return state;
}

/** A plain loopback server that only counts what reaches it (the target of a refused redirect). */
export async function startCountingServer(): Promise<{ origin: string; hits(): number; close(): Promise<void> }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"active":true,"aud":"https://tools.example.com/mcp"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
