/**
 * A real, separate authorization server for integration tests: panva's `oidc-provider` (npm)
 * in a child process (test/helpers/oidc-provider-server.ts) on 127.0.0.1. Tokens come from its
 * real /token endpoint through real grants (client credentials, with DPoP proofs when asked),
 * so what agentward sees is exactly what that server emits:
 *   - resource indicators (RFC 8707): `resource` gets RFC 9068 JWT access tokens (typ at+jwt,
 *     ES256, aud = resource), `opaqueResource` gets opaque ones;
 *   - RFC 8414 and OpenID Connect discovery documents, a JWK Set of an ES256 and an RS256 key;
 *   - DPoP (RFC 9449) at the token endpoint: a proof binds the token (cnf.jkt);
 *   - introspection (RFC 7662) for the confidential client `introspectionClient` only;
 *   - key rotation: a new ES256 key first in the set, the old one kept or retired.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { SignJWT, type CryptoKey, type JWK, type KeyObject } from 'jose';

export const SERVER_SCRIPT = join(import.meta.dirname, 'oidc-provider-server.ts');

export interface AuthorizationServerOptions {
  /** agentward's resource identifier: tokens for it are RFC 9068 JWTs. */
  resource: string;
  /** A second resource whose tokens are opaque. */
  opaqueResource: string;
}

/** The clients registered at the server, with the scope each may ask for. */
export const CLIENTS = {
  'research-bot': { scope: 'tools.read' },
  'ops-bot': { scope: 'tools.read tools.write' },
  // Its tokens carry acr "mfa" and an auth_time a minute ago (see oidc-provider-server.ts), as if
  // a user had just logged in with a second factor: the step-up tests use it.
  'mfa-bot': { scope: 'tools.read' },
} as const;
export type ClientName = keyof typeof CLIENTS;

export interface DpopKey {
  privateKey: CryptoKey | KeyObject;
  /** The public JWK with its `alg` (ES256 unless told). */
  publicJwk: JWK;
}

export interface TokenRequest {
  scope?: string;
  resource?: string;
  /** Sends a DPoP proof (RFC 9449 §5) with the token request, so the token is bound to this key. */
  dpop?: DpopKey;
}

/** The token endpoint's successful answer (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
}

export interface AuthorizationServer {
  /** e.g. http://127.0.0.1:PORT, exactly as the server puts it in `iss` and its metadata. */
  issuer: string;
  /** The RFC 8414 metadata the server published at start. */
  metadata: Record<string, unknown>;
  /** A client-credentials grant; resolves to the access token or fails with the server's error. */
  token(client: ClientName, request?: TokenRequest): Promise<string>;
  /** The same grant, resolving to the whole token response. */
  tokenResponse(client: ClientName, request?: TokenRequest): Promise<TokenResponse>;
  /** The confidential client allowed to call the introspection endpoint. */
  introspectionClient: { clientId: string; secret: string };
  /** RFC 7662 introspection as that client. */
  introspect(token: string): Promise<Record<string, unknown>>;
  /** The `kid`s the server publishes, in order (the first ES256 key signs). */
  kids(): string[];
  /** Puts a new ES256 key first; the previous ES256 key stays published unless keepOld is false. */
  rotateKeys(options?: { keepOld?: boolean }): Promise<string[]>;
  /** Every request the server has received so far, in order. */
  requests(): ServerRequest[];
  /** The server's stderr so far, for failure messages. */
  stderr(): string;
  close(): Promise<void>;
}

interface ServerEvent {
  event: 'ready' | 'rotated' | 'request';
  issuer?: string;
  kids: string[];
  method?: string;
  path?: string;
}

/** A request the authorization server received (from anyone: the tests or agentward). */
export interface ServerRequest {
  method: string;
  path: string;
}

export async function startAuthorizationServer(options: AuthorizationServerOptions): Promise<AuthorizationServer> {
  const secrets = Object.fromEntries(Object.keys(CLIENTS).map((id) => [id, randomBytes(16).toString('base64url')])) as Record<ClientName, string>;
  const introspectionClient = { clientId: 'agentward-rs', secret: randomBytes(16).toString('base64url') };
  const serverConfig = {
    resource: options.resource,
    opaqueResource: options.opaqueResource,
    clients: Object.fromEntries(Object.entries(CLIENTS).map(([id, c]) => [id, { secret: secrets[id as ClientName], scope: c.scope }])),
    introspector: { id: introspectionClient.clientId, secret: introspectionClient.secret },
  };

  const child: ChildProcess = spawn(process.execPath, [SERVER_SCRIPT], {
    env: { ...process.env, AW_OIDC_CONFIG: JSON.stringify(serverConfig), DEBUG: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  // Protocol lines from the server, in order; waiters take the next one.
  const events: ServerEvent[] = [];
  const requests: ServerRequest[] = [];
  const waiters: ((e: ServerEvent) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('AW-OIDC ')) return;
    const event = JSON.parse(line.slice('AW-OIDC '.length)) as ServerEvent;
    if (event.event === 'request') {
      requests.push({ method: event.method!, path: event.path! });
      return;
    }
    const waiter = waiters.shift();
    if (waiter) waiter(event);
    else events.push(event);
  });
  function nextEvent(what: string, ms = 10_000): Promise<ServerEvent> {
    const queued = events.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`authorization server: no ${what} within ${ms} ms\n${stderr}`)), ms);
      const onExit = () => reject(new Error(`authorization server exited before ${what}\n${stderr}`));
      child.once('exit', onExit);
      waiters.push((e) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(e);
      });
    });
  }

  let ready: ServerEvent;
  try {
    ready = await nextEvent('ready event');
  } catch (err) {
    child.kill();
    throw err;
  }
  const issuer = ready.issuer!;
  let kids = ready.kids;
  const metadataResponse = await fetch(`${issuer}/.well-known/oauth-authorization-server`);
  const metadata = (await metadataResponse.json()) as Record<string, unknown>;
  const tokenEndpoint = String(metadata.token_endpoint);
  const introspectionEndpoint = String(metadata.introspection_endpoint);

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  async function dpopProof(key: DpopKey, nonce?: string): Promise<string> {
    const alg = key.publicJwk.alg ?? 'ES256';
    return new SignJWT({ jti: randomUUID(), htm: 'POST', htu: tokenEndpoint, ...(nonce ? { nonce } : {}) })
      .setProtectedHeader({ typ: 'dpop+jwt', alg, jwk: key.publicJwk })
      .setIssuedAt()
      .sign(key.privateKey);
  }

  async function tokenResponse(client: ClientName, request: TokenRequest = {}): Promise<TokenResponse> {
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    if (request.scope !== undefined) body.set('scope', request.scope);
    if (request.resource !== undefined) body.set('resource', request.resource);
    let nonce: string | undefined;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { authorization: basic(client, secrets[client]), 'content-type': 'application/x-www-form-urlencoded' };
      if (request.dpop) headers.dpop = await dpopProof(request.dpop, nonce);
      const res = await fetch(tokenEndpoint, { method: 'POST', headers, body });
      const json = (await res.json()) as Record<string, unknown>;
      // RFC 9449 §8: a server may demand a nonce; answer once with the one it gave.
      if (res.status === 400 && json.error === 'use_dpop_nonce' && attempt === 0 && request.dpop) {
        nonce = res.headers.get('dpop-nonce') ?? undefined;
        continue;
      }
      if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${JSON.stringify(json)}`);
      return json as unknown as TokenResponse;
    }
  }

  return {
    issuer,
    metadata,
    tokenResponse,
    async token(client, request) {
      return (await tokenResponse(client, request)).access_token;
    },
    introspectionClient,
    async introspect(token) {
      const res = await fetch(introspectionEndpoint, {
        method: 'POST',
        headers: { authorization: basic(introspectionClient.clientId, introspectionClient.secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token }),
      });
      const json = (await res.json()) as Record<string, unknown>;
      if (res.status !== 200) throw new Error(`introspection endpoint answered ${res.status}: ${JSON.stringify(json)}`);
      return json;
    },
    kids: () => [...kids],
    async rotateKeys(opts = {}) {
      child.stdin!.write(`${JSON.stringify({ cmd: 'rotate', keepOld: opts.keepOld ?? true })}\n`);
      const event = await nextEvent('rotated event');
      kids = event.kids;
      return [...kids];
    },
    requests: () => [...requests],
    stderr: () => stderr,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end(); // the server closes its socket and exits
      const timer = setTimeout(() => child.kill(), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}
