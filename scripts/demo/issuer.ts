/**
 * The demo's OAuth authorization server: just enough of one to show agentward working against
 * a real issuer over HTTP.
 *
 *   GET  /.well-known/oauth-authorization-server   RFC 8414 metadata (agentward discovers /jwks here)
 *   GET  /jwks                                     the public signing key (RFC 7517 JWK Set)
 *   POST /token                                    client_credentials grant (RFC 6749 §4.4) with
 *                                                  client_secret_basic or client_secret_post, issuing
 *                                                  RFC 9068 JWT access tokens
 *
 * The signing key (ES256) is generated at every start, so tokens from an earlier run are refused.
 *
 * Demo-only extension: `on_behalf_of=<user>` on the token request makes the token speak for that
 * user (`sub`) with the client as the acting party (`act`, RFC 8693 §4.1). A real deployment gets
 * such tokens from token exchange (RFC 8693), not from client_credentials.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { listenOn } from './net.ts';

export interface DemoClient {
  id: string;
  secret: string;
  /** Scopes this client may be granted. */
  scopes: string[];
  description: string;
}

export const DEMO_CLIENTS: readonly DemoClient[] = [
  { id: 'research-bot', secret: 'research-bot-secret', scopes: ['tools.read'], description: 'may read' },
  { id: 'ops-bot', secret: 'ops-bot-secret', scopes: ['tools.read', 'tools.write'], description: 'may read and write' },
];

export const TOKEN_LIFETIME_SECONDS = 3600;
const ALG = 'ES256';

export interface DemoIssuer {
  /** Issuer identifier, e.g. http://127.0.0.1:9000 (no trailing slash). */
  issuer: string;
  tokenEndpoint: string;
  kid: string;
  close(): Promise<void>;
}

export interface IssuerOptions {
  port: number;
  /** The resource identifier: every token's `aud`. */
  audience: string;
}

/** `sub` values accepted by the demo-only `on_behalf_of` parameter. */
const USER = /^[A-Za-z0-9._@-]{1,64}$/;

export async function startIssuer(options: IssuerOptions): Promise<DemoIssuer> {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
  const kid = `demo-${randomUUID().slice(0, 8)}`;
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' };
  const issuer = `http://127.0.0.1:${options.port}`;
  const metadata = {
    issuer,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    scopes_supported: [...new Set(DEMO_CLIENTS.flatMap((c) => c.scopes))],
    response_types_supported: [],
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: 'server_error', error_description: (err as Error).message });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/.well-known/oauth-authorization-server' && (req.method === 'GET' || req.method === 'HEAD')) {
      json(res, 200, metadata);
    } else if (path === '/jwks' && (req.method === 'GET' || req.method === 'HEAD')) {
      json(res, 200, { keys: [publicJwk] }, 'application/jwk-set+json');
    } else if (path === '/token') {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST' }).end();
        return;
      }
      await token(req, res);
    } else {
      json(res, 404, { error: 'not found', endpoints: ['/.well-known/oauth-authorization-server', '/jwks', 'POST /token'] });
    }
  }

  /** RFC 6749 §4.4.2-3 and §5. */
  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    const body = await readBody(req, 16 * 1024);
    if (body === undefined) return oauthError(res, 400, 'invalid_request', 'the request body is too large');
    if (type !== 'application/x-www-form-urlencoded') {
      return oauthError(res, 400, 'invalid_request', 'send the parameters as application/x-www-form-urlencoded (RFC 6749 §4.4.2)');
    }
    const form = new URLSearchParams(body);
    for (const [name] of form) {
      if (form.getAll(name).length > 1) return oauthError(res, 400, 'invalid_request', `parameter ${name} is repeated (RFC 6749 §3.1)`);
    }

    // Client authentication (RFC 6749 §2.3.1): exactly one method.
    const basic = parseBasic(req.headers.authorization);
    const posted = form.has('client_secret');
    if (basic === null) return oauthError(res, 400, 'invalid_request', 'the Authorization header is not valid Basic authentication');
    if (basic && posted) return oauthError(res, 400, 'invalid_request', 'use one client authentication method, not both (RFC 6749 §2.3)');
    const clientId = basic ? basic.id : form.get('client_id');
    const secret = basic ? basic.secret : form.get('client_secret');
    const client = DEMO_CLIENTS.find((c) => c.id === clientId);
    if (!client || secret === null || !sameSecret(secret, client.secret)) {
      // §5.2: 401 with a challenge when the client tried the Authorization header.
      return oauthError(res, 401, 'invalid_client', 'unknown client or wrong secret', basic ? { 'www-authenticate': 'Basic realm="agentward-demo"' } : {});
    }
    if (basic && form.has('client_id') && form.get('client_id') !== client.id) {
      return oauthError(res, 400, 'invalid_request', 'client_id in the body differs from the authenticated client');
    }

    const grantType = form.get('grant_type');
    if (grantType === null) return oauthError(res, 400, 'invalid_request', 'grant_type is missing');
    if (grantType !== 'client_credentials') return oauthError(res, 400, 'unsupported_grant_type', 'this demo issuer supports client_credentials only');

    // RFC 8707 §2: a resource parameter must name the one resource this issuer serves.
    const resource = form.get('resource');
    if (resource !== null && resource !== options.audience) return oauthError(res, 400, 'invalid_target', `tokens are issued for ${options.audience} only`);

    // RFC 6749 §3.3: a requested subset is honoured; asking for more than allowed is an error.
    const requested = form.has('scope') ? (form.get('scope') ?? '').split(' ').filter(Boolean) : client.scopes;
    const refused = requested.filter((s) => !client.scopes.includes(s));
    if (refused.length > 0) return oauthError(res, 400, 'invalid_scope', `${client.id} may not be granted: ${refused.join(' ')}`);
    if (requested.length === 0) return oauthError(res, 400, 'invalid_scope', 'the scope parameter is empty');
    const scope = [...new Set(requested)].join(' ');

    const onBehalfOf = form.get('on_behalf_of');
    if (onBehalfOf !== null && !USER.test(onBehalfOf)) return oauthError(res, 400, 'invalid_request', 'on_behalf_of must be a short user name');

    const accessToken = await mintAccessToken({ client: client.id, scope, sub: onBehalfOf ?? client.id, act: onBehalfOf === null ? undefined : { sub: client.id } });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' });
    res.end(JSON.stringify({ access_token: accessToken, token_type: 'Bearer', expires_in: TOKEN_LIFETIME_SECONDS, scope }));
  }

  /** RFC 9068 §2: header typ at+jwt; claims iss, exp, aud, sub, client_id, iat, jti, scope. */
  function mintAccessToken(t: { client: string; scope: string; sub: string; act: { sub: string } | undefined }): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer,
      aud: options.audience,
      sub: t.sub,
      client_id: t.client,
      iat: now,
      exp: now + TOKEN_LIFETIME_SECONDS,
      jti: randomUUID(),
      scope: t.scope,
    };
    if (t.act) claims.act = t.act;
    return new SignJWT(claims).setProtectedHeader({ alg: ALG, kid, typ: 'at+jwt' }).sign(privateKey as CryptoKey);
  }

  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await listenOn(server, options.port, 'token issuer', 'DEMO_ISSUER_PORT');

  return {
    issuer,
    tokenEndpoint: metadata.token_endpoint,
    kid,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        for (const s of sockets) s.destroy();
      }),
  };
}

/**
 * A token no issuer made: the claims a real ops-bot token would carry (so it asks for write
 * access), the real issuer's `kid`, but signed with a key generated here. agentward fetches the
 * issuer's key for that kid and the signature does not verify.
 */
export async function forgeToken(issuer: DemoIssuer, audience: string): Promise<string> {
  const { privateKey } = await generateKeyPair(ALG);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: issuer.issuer,
    aud: audience,
    sub: 'ops-bot',
    client_id: 'ops-bot',
    iat: now,
    exp: now + TOKEN_LIFETIME_SECONDS,
    jti: randomUUID(),
    scope: 'tools.read tools.write',
  })
    .setProtectedHeader({ alg: ALG, kid: issuer.kid, typ: 'at+jwt' })
    .sign(privateKey);
}

/** undefined: no Authorization header; null: present but not usable Basic credentials. */
function parseBasic(header: string | undefined): { id: string; secret: string } | undefined | null {
  if (header === undefined) return undefined;
  const m = /^Basic +([A-Za-z0-9+/]+={0,2})$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
  try {
    return { id: decodeForm(decoded.slice(0, colon)), secret: decodeForm(decoded.slice(colon + 1)) };
  } catch {
    return null;
  }
}

function decodeForm(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((done, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => done(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', fail);
  });
}

function json(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) }).end(text);
}

function oauthError(res: ServerResponse, status: number, error: string, description: string, headers: Record<string, string> = {}): void {
  const text = JSON.stringify({ error, error_description: description });
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache', ...headers }).end(text);
}
