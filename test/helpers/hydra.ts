/**
 * A real Ory Hydra (v2.3.0, built once by scripts/hydra.sh) as a child process:
 * `hydra serve all --dev` with the in-memory SQLite database, public and admin APIs on free
 * loopback ports. Offers what the tests need from an authorization server: clients created
 * through the admin API, client-credentials tokens (JWT or opaque, per client), a headless
 * authorization-code flow (login and consent accepted through the admin API) and rotation of the
 * JWT access-token signing key. Nothing leaves the loopback interface.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { freePort, startChild } from './child-process.ts';

export const HYDRA_VERSION = 'v2.3.0';

/** The hydra binary: $AGENTWARD_HYDRA (scripts/hydra.sh sets it), else the cache folder's. */
export function hydraBinary(): string {
  const cached = join(process.env.AGENTWARD_CACHE ?? join(homedir(), '.cache', 'agentward'), `hydra-${HYDRA_VERSION}`, 'hydra');
  const binary = process.env.AGENTWARD_HYDRA ?? cached;
  if (!existsSync(binary)) throw new Error(`no hydra binary at ${binary}: run \`. scripts/hydra.sh\` (scripts/run test does) to build Ory Hydra ${HYDRA_VERSION}`);
  return binary;
}

export interface HydraClient {
  clientId: string;
  clientSecret: string;
  /** The client as the admin API answered its creation. */
  registered: Record<string, unknown>;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
  refresh_token?: string;
  id_token?: string;
}

export interface Hydra {
  /** The issuer identifier, exactly as Hydra writes it in `iss` (URLS_SELF_ISSUER). */
  issuer: string;
  publicUrl: string;
  adminUrl: string;
  /** The admin API's RFC 7662 endpoint (Hydra does not authenticate its caller there). */
  introspectionEndpoint: string;
  /** Creates a client through the admin API; `options` are client fields (snake_case) to set. */
  createClient(options: Record<string, unknown> & { client_id: string }): Promise<HydraClient>;
  /** A client that may use client_credentials for `scope` and `audience`. */
  createClientCredentialsClient(clientId: string, options: { scope: string; audience: string[]; accessTokenStrategy?: 'jwt' | 'opaque' }): Promise<HydraClient>;
  /** A confidential authorization-code client that may refresh (scope `openid offline ...`). */
  createAuthorizationCodeClient(clientId: string, options: { scope: string; audience: string[]; accessTokenStrategy?: 'jwt' | 'opaque' }): Promise<HydraClient>;
  /** client_credentials at the token endpoint (client_secret_basic). */
  clientCredentials(client: HydraClient, options: { scope: string; audience?: string[] }): Promise<TokenResponse>;
  /** The whole authorization-code flow for `subject`, login and consent accepted through the admin API. */
  authorizationCode(client: HydraClient, options: { subject: string; scope: string; audience?: string[] }): Promise<TokenResponse & { refresh_token: string; id_token: string }>;
  /** refresh_token at the token endpoint. */
  refresh(client: HydraClient, refreshToken: string): Promise<TokenResponse>;
  /** RFC 7662 at the admin API. */
  introspect(token: string): Promise<Record<string, unknown>>;
  /** Adds a new signing key to `hydra.jwt.access-token`; Hydra signs new JWT access tokens with it. Returns its kid. */
  rotateAccessTokenKey(): Promise<string>;
  /** The public JWK Set (/.well-known/jwks.json). */
  jwks(): Promise<{ keys: Record<string, unknown>[] }>;
  /** What the process printed (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
}

const REDIRECT_URI = 'http://127.0.0.1:9/callback'; // never called: the flow stops at the redirect
const SYSTEM_SECRET = 'agentward-test-hydra-system-secret'; // >= 32 characters, Hydra's minimum

async function json(res: Response, what: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

const basic = (client: HydraClient) => `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`;

/** Starts Hydra and waits until both APIs answer /health/ready. */
export async function startHydra(options: { accessTokenStrategy?: 'jwt' | 'opaque' } = {}): Promise<Hydra> {
  const [publicPort, adminPort] = [await freePort(), await freePort()];
  const publicUrl = `http://127.0.0.1:${publicPort}`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const issuer = publicUrl;
  // A clean environment: Hydra reads its whole configuration from environment variables, so
  // nothing of the caller's (a DSN, a LOG_LEVEL...) may leak in.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    DSN: 'memory',
    SERVE_PUBLIC_HOST: '127.0.0.1',
    SERVE_PUBLIC_PORT: String(publicPort),
    SERVE_ADMIN_HOST: '127.0.0.1',
    SERVE_ADMIN_PORT: String(adminPort),
    URLS_SELF_ISSUER: issuer,
    // The login and consent "apps" are never visited: the flow reads their challenge from the
    // redirect and accepts it through the admin API.
    URLS_LOGIN: 'http://127.0.0.1:9/login',
    URLS_CONSENT: 'http://127.0.0.1:9/consent',
    URLS_ERROR: 'http://127.0.0.1:9/error',
    SECRETS_SYSTEM: SYSTEM_SECRET,
    STRATEGIES_ACCESS_TOKEN: options.accessTokenStrategy ?? 'jwt',
    // No telemetry (it would leave the machine), no colour codes in the captured log.
    SQA_OPT_OUT: 'true',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
  };
  // Should the test process end without stop() (a crash, a killed worker), Hydra goes with it.
  const server = startChild(hydraBinary(), ['serve', 'all', '--dev', '--sqa-opt-out'], env);
  let gone = false;
  void server.exited.then(() => (gone = true));
  const stop = () => server.stop();

  const until = Date.now() + 30_000;
  for (;;) {
    if (gone) throw new Error(`hydra exited during start-up:\n${server.output()}`);
    const ready = await Promise.all(
      [publicUrl, adminUrl].map((u) =>
        fetch(`${u}/health/ready`).then(
          (r) => r.ok,
          () => false,
        ),
      ),
    );
    if (ready.every(Boolean)) break;
    if (Date.now() > until) {
      await stop();
      throw new Error(`hydra did not become ready in 30 s:\n${server.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const createClient = async (fields: Record<string, unknown> & { client_id: string }): Promise<HydraClient> => {
    const clientSecret = `${fields.client_id}-secret-0123456789`;
    const registered = await json(
      await fetch(`${adminUrl}/admin/clients`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_secret: clientSecret, token_endpoint_auth_method: 'client_secret_basic', ...fields }),
      }),
      `creating the hydra client ${fields.client_id}`,
    );
    return { clientId: fields.client_id, clientSecret: (registered.client_secret as string | undefined) ?? clientSecret, registered };
  };

  const token = async (client: HydraClient, form: Record<string, string>): Promise<TokenResponse> =>
    (await json(
      await fetch(`${publicUrl}/oauth2/token`, {
        method: 'POST',
        headers: { authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      }),
      `${form.grant_type} at hydra`,
    )) as unknown as TokenResponse;

  /** Accepts a login or consent challenge through the admin API; returns where to go next. */
  const accept = async (kind: 'login' | 'consent', challenge: string, body: Record<string, unknown>): Promise<string> => {
    const answer = await json(
      await fetch(`${adminUrl}/admin/oauth2/auth/requests/${kind}/accept?${kind}_challenge=${encodeURIComponent(challenge)}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
      `accepting the ${kind} request`,
    );
    return answer.redirect_to as string;
  };

  const authorizationCode: Hydra['authorizationCode'] = async (client, options) => {
    const cookies = new Map<string, string>();
    /** One GET on the public API with the cookie jar; returns the redirect target. */
    const step = async (url: string): Promise<URL> => {
      const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const at = pair!.indexOf('=');
        cookies.set(pair!.slice(0, at).trim(), pair!.slice(at + 1).trim());
      }
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) throw new Error(`hydra authorization flow: expected a redirect from ${url}, got HTTP ${res.status} ${await res.text()}`);
      return new URL(location, url);
    };
    const param = (url: URL, name: string) => {
      const value = url.searchParams.get(name);
      if (!value) throw new Error(`hydra authorization flow: no ${name} in ${url.origin}${url.pathname}?${[...url.searchParams.keys()].join('&')} (error: ${url.searchParams.get('error')} ${url.searchParams.get('error_description')})`);
      return value;
    };
    const scopes = options.scope.split(' ');
    const authorize = new URL(`${publicUrl}/oauth2/auth`);
    authorize.search = new URLSearchParams({
      client_id: client.clientId,
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: options.scope,
      state: 'state-0123456789',
      nonce: 'nonce-0123456789',
      ...(options.audience ? { audience: options.audience.join(' ') } : {}),
    }).toString();
    const toLogin = await step(authorize.toString());
    const afterLogin = await accept('login', param(toLogin, 'login_challenge'), { subject: options.subject, remember: false });
    const toConsent = await step(afterLogin);
    const afterConsent = await accept('consent', param(toConsent, 'consent_challenge'), {
      grant_scope: scopes,
      grant_access_token_audience: options.audience ?? [],
      remember: false,
    });
    const toCallback = await step(afterConsent);
    const code = param(toCallback, 'code');
    const tokens = await token(client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI });
    if (!tokens.refresh_token || !tokens.id_token) throw new Error(`hydra authorization flow: no refresh or ID token in the answer (scope ${tokens.scope})`);
    return tokens as TokenResponse & { refresh_token: string; id_token: string };
  };

  return {
    issuer,
    publicUrl,
    adminUrl,
    introspectionEndpoint: `${adminUrl}/admin/oauth2/introspect`,
    createClient,
    createClientCredentialsClient: (clientId, options) =>
      createClient({
        client_id: clientId,
        grant_types: ['client_credentials'],
        scope: options.scope,
        audience: options.audience,
        ...(options.accessTokenStrategy ? { access_token_strategy: options.accessTokenStrategy } : {}),
      }),
    createAuthorizationCodeClient: (clientId, options) =>
      createClient({
        client_id: clientId,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [REDIRECT_URI],
        scope: options.scope,
        audience: options.audience,
        ...(options.accessTokenStrategy ? { access_token_strategy: options.accessTokenStrategy } : {}),
      }),
    clientCredentials: (client, options) =>
      token(client, { grant_type: 'client_credentials', scope: options.scope, ...(options.audience ? { audience: options.audience.join(' ') } : {}) }),
    authorizationCode,
    refresh: (client, refreshToken) => token(client, { grant_type: 'refresh_token', refresh_token: refreshToken }),
    introspect: async (t) =>
      json(
        await fetch(`${adminUrl}/admin/oauth2/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t }).toString() }),
        'introspection at hydra',
      ),
    rotateAccessTokenKey: async () => {
      const set = await json(
        await fetch(`${adminUrl}/admin/keys/hydra.jwt.access-token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ alg: 'RS256', use: 'sig', kid: `rotated-${Date.now()}` }),
        }),
        'creating a new access-token signing key',
      );
      return ((set.keys as { kid: string }[])[0]!).kid;
    },
    jwks: async () => (await json(await fetch(`${publicUrl}/.well-known/jwks.json`), 'hydra jwks')) as unknown as { keys: Record<string, unknown>[] },
    logs: () => server.output(),
    stop,
  };
}
