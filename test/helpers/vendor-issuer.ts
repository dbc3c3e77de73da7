/**
 * Authorization servers shaped like real vendors, for tests: an HTTP server on loopback that
 * publishes the vendor's discovery document(s) and JWK Set at the vendor's own paths, under an
 * issuer identifier of the vendor's own form, and mints access tokens and ID tokens whose JOSE
 * header and claims are those the vendor's documentation shows. Nothing here is agentward-specific:
 * the tests configure agentward the way docs/issuers.md tells a user to, and these tokens must
 * then pass (access tokens) or be refused (ID tokens, refresh tokens) for the reason the docs give.
 *
 * One table (`VENDORS`) describes every vendor; one server implementation serves them all.
 *
 * Sources, one per vendor (the shapes below follow these pages, checked when this was written):
 *
 * - Microsoft Entra ID (v2.0 tokens)
 *   "Access token claims reference", https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference
 *   "ID token claims reference", https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference
 *   "OpenID Connect on the Microsoft identity platform", https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc
 *     (discovery at {authority}/{tenant}/v2.0/.well-known/openid-configuration, keys at {authority}/{tenant}/discovery/v2.0/keys)
 *   Header: typ always "JWT", alg, kid. `x5t` is "a legacy claim emitted only in v1.0 access tokens",
 *   so a v2.0 token has none. v2.0 `aud` "is always the client ID of the API" (a GUID). `scp` is a
 *   space-separated string (delegated), `roles` an array (app permissions, client credentials).
 *   The token id is `uti`, not `jti`. ID tokens: aud = the client's application id, nonce, no
 *   azp, no scp.
 * - Okta (custom authorization server)
 *   "OpenID Connect & OAuth 2.0 API", Tokens and claims, https://developer.okta.com/docs/reference/api/oidc/#tokens-and-claims
 *   "Custom Authorization Servers" (metadata at /oauth2/{authorizationServerId}/.well-known/oauth-authorization-server
 *     and .../openid-configuration), https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/tag/CustomAS
 *   Header: "The header only includes" alg (always RS256) and kid. Access token: ver 1, jti "AT....",
 *   iss, aud ("api://default" for the default server), iat, exp, cid, uid (users only), scp (an
 *   array), auth_time, sub. ID token: ver 1, jti "ID....", aud = the client id, amr, idp, nonce,
 *   auth_time, at_hash when an access token was issued with it.
 * - Keycloak 26
 *   "Securing applications and services with OpenID Connect", Available endpoints, https://www.keycloak.org/securing-apps/oidc-layers
 *     (/realms/{realm-name}/.well-known/openid-configuration, /realms/{realm-name}/protocol/openid-connect/certs)
 *   "Server Administration Guide", Audience support, https://www.keycloak.org/docs/latest/server_admin/#audience-support
 *   Keycloak 26.2 release notes: the `typ: at+jwt` header is a per-client opt-in
 *     (`access.token.header.type.rfc9068`), off by default, so tokens say typ "JWT".
 *   Access token payload: exp iat jti iss aud sub typ "Bearer" azp sid acr allowed-origins
 *   realm_access resource_access scope (a string) preferred_username ...; `client_id` only in
 *   service-account (client credentials) tokens. ID token: typ "ID", aud = azp = the client,
 *   nonce, at_hash. Refresh token: typ "Refresh", signed with the realm's HMAC key (HS512).
 * - Auth0
 *   "Access Token Profiles", https://auth0.com/docs/secure/tokens/access-tokens/access-token-profiles
 *   "ID Token Structure", https://auth0.com/docs/secure/tokens/id-tokens/id-token-structure
 *   "Enable Role-Based Access Control for APIs", https://auth0.com/docs/get-started/apis/enable-role-based-access-control-for-apis
 *   Issuer "https://{domain}/" WITH the trailing slash; discovery at /.well-known/openid-configuration,
 *   keys at /.well-known/jwks.json. Auth0 token profile (the default): header typ "JWT", claims iss
 *   sub aud (an array with the API identifier and /userinfo when openid was asked) azp exp iat
 *   scope, permissions with RBAC; machine-to-machine: sub "{client_id}@clients", gty
 *   "client-credentials". RFC 9068 token profile: typ "at+jwt", client_id instead of azp, jti.
 *   ID token: aud = the client id, nonce, sid, no scope.
 * - Amazon Cognito user pools
 *   "Understanding the access token", https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html
 *   "Understanding the identity (ID) token", https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-id-token.html
 *   "Verifying a JSON Web Token", https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html
 *   "ResourceServerType" (custom scopes are `$resource-server-identifier/$scope`),
 *     https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_ResourceServerType.html
 *   Issuer https://cognito-idp.{region}.amazonaws.com/{userPoolId} (a pool id is "{region}_{id}"),
 *   keys at {issuer}/.well-known/jwks.json. Header: kid and alg only; access and ID tokens are
 *   signed with different keys. Access token: sub iss version 2 client_id origin_jti event_id
 *   token_use "access" scope auth_time exp iat jti username, and NO aud. ID token: aud = the app
 *   client id, token_use "id", at_hash, cognito:username, email, nonce.
 */
import { randomUUID, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

export type Vendor = 'entra' | 'okta' | 'keycloak' | 'auth0' | 'cognito';
export const VENDOR_NAMES: readonly Vendor[] = ['entra', 'okta', 'keycloak', 'auth0', 'cognito'];

/**
 * Kinds of access token a vendor issues:
 * - `user`: for a signed-in user (authorization code), scopes delegated by the user;
 * - `service`: for the client itself (client credentials): Entra app-only token with `roles`,
 *   Okta client-credentials token, Keycloak service-account token, Auth0 machine-to-machine token,
 *   Cognito M2M token;
 * - `rfc9068`: Auth0's RFC 9068 token profile (a user token), the only vendor shape here with
 *   `typ: at+jwt`.
 */
export type AccessKind = 'user' | 'service' | 'rfc9068';

export interface VendorIssuerOptions {
  /** The audience the vendor is set up to put in access tokens (see `audience` of each vendor below). */
  audience?: string;
  /** The OAuth client (the agent) the tokens are issued to. */
  clientId?: string;
  /** Cognito: the resource server identifier that prefixes custom scopes. */
  resourceServer?: string;
}

export interface AccessOptions {
  kind?: AccessKind;
  /** Scopes (or app roles) granted, bare names: the vendor renders them in its own claim and form. */
  scopes?: string[];
  /** Claims to add or replace; `undefined` removes one. */
  claims?: Record<string, unknown>;
}

export interface IdOptions {
  /** `aud` of the ID token; default the client id, as every vendor does. */
  aud?: string | string[];
  /** Leave out the ID-token markers (nonce, at_hash, c_hash), as an ID token from a refresh or a flow without nonce has none. */
  withoutMarkers?: boolean;
  claims?: Record<string, unknown>;
}

export interface VendorIssuer {
  vendor: Vendor;
  /** `http://127.0.0.1:port`, standing for the vendor's host. */
  base: string;
  /** The issuer identifier exactly as the vendor writes it in `iss` (Auth0: with the trailing slash). */
  issuer: string;
  /** Where the vendor documents its OpenID Connect discovery document. */
  discoveryUrl: string;
  jwksUri: string;
  clientId: string;
  /** The audience its access tokens carry (Cognito: none; `audiences` then lists the app client id). */
  audience: string;
  access(options?: AccessOptions): Promise<string>;
  id(options?: IdOptions): Promise<string>;
  /** Keycloak only: a refresh token (payload typ "Refresh", HS512 with the realm's HMAC key). */
  refresh(): Promise<string>;
  /** Requests served, by path (metadata and key set fetches). */
  hits(path: string): number;
  close(): Promise<void>;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

/** What a vendor-shaped token is built from. */
interface Ctx {
  issuer: string;
  base: string;
  audience: string;
  clientId: string;
  resourceServer: string;
  now: number;
  scopes: string[];
}

interface VendorShape {
  /** Path of the issuer identifier after the origin. */
  issuerPath: string;
  /** Documents served besides the key set: path -> the metadata (an object with issuer and jwks_uri). */
  metadataPaths: (issuerPath: string) => string[];
  jwksPath: string;
  /** The JWK members the vendor publishes besides kty/n/e (kid is always there). */
  jwkExtras: (kid: string) => Record<string, unknown>;
  defaults: { audience: (ctx: Omit<Ctx, 'audience' | 'scopes' | 'now'>) => string; clientId: string; resourceServer?: string };
  /** A separate key signs ID tokens (Cognito). */
  separateIdKey?: boolean;
  accessHeader: (kind: AccessKind) => Record<string, unknown>;
  idHeader: Record<string, unknown>;
  access: (ctx: Ctx, kind: AccessKind) => Record<string, unknown>;
  id: (ctx: Ctx) => Record<string, unknown>;
}

// Identifiers in the vendors' own formats (values made up).
const ENTRA_TENANT = 'aaaabbbb-0000-cccc-1111-dddd2222eeee';
const ENTRA_API_APP_ID = '00001111-aaaa-2222-bbbb-3333cccc4444';
const ENTRA_CLIENT_APP_ID = '11112222-bbbb-3333-cccc-4444dddd5555';
const OKTA_AUTH_SERVER = 'default';
const KEYCLOAK_REALM = 'agents';
const COGNITO_POOL = 'us-east-1_Abc123XyZ';

const uuid = () => randomUUID();
const opaque = (n = 24) => randomBytes(n).toString('base64url');
const hours = 3600;

export const VENDORS: Readonly<Record<Vendor, VendorShape>> = {
  entra: {
    issuerPath: `/${ENTRA_TENANT}/v2.0`,
    metadataPaths: (p) => [`${p}/.well-known/openid-configuration`],
    jwksPath: `/${ENTRA_TENANT}/discovery/v2.0/keys`,
    // Entra's keys: kty, use, kid, x5t (same value as kid), n, e, x5c, issuer; no alg.
    jwkExtras: (kid) => ({ use: 'sig', x5t: kid }),
    // v2.0 tokens: aud "is always the client ID of the API".
    defaults: { audience: () => ENTRA_API_APP_ID, clientId: ENTRA_CLIENT_APP_ID },
    accessHeader: () => ({ typ: 'JWT' }),
    idHeader: { typ: 'JWT' },
    access: (c, kind) => {
      const common = {
        aud: c.audience,
        iss: c.issuer,
        iat: c.now,
        nbf: c.now,
        exp: c.now + hours,
        aio: opaque(),
        azp: c.clientId,
        azpacr: '1',
        rh: `0.${opaque(30)}.`,
        tid: ENTRA_TENANT,
        uti: opaque(16),
        ver: '2.0',
      };
      if (kind === 'service') {
        // Client credentials: application permissions in `roles`; the subject is the client's service principal.
        const sp = uuid();
        return { ...common, oid: sp, roles: c.scopes, sub: sp };
      }
      return { ...common, name: 'Megan Bowen', oid: uuid(), preferred_username: 'meganb@contoso.example', scp: c.scopes.join(' '), sub: opaque(32) };
    },
    id: (c) => ({
      aud: c.clientId,
      iss: c.issuer,
      iat: c.now,
      nbf: c.now,
      exp: c.now + hours,
      aio: opaque(),
      name: 'Megan Bowen',
      nonce: opaque(12),
      oid: uuid(),
      preferred_username: 'meganb@contoso.example',
      rh: `0.${opaque(30)}.`,
      sid: uuid(),
      sub: opaque(32),
      tid: ENTRA_TENANT,
      uti: opaque(16),
      ver: '2.0',
    }),
  },

  okta: {
    issuerPath: `/oauth2/${OKTA_AUTH_SERVER}`,
    // Both documents, appended to the issuer (Okta's form, not RFC 8414's path insertion).
    metadataPaths: (p) => [`${p}/.well-known/oauth-authorization-server`, `${p}/.well-known/openid-configuration`],
    jwksPath: `/oauth2/${OKTA_AUTH_SERVER}/v1/keys`,
    jwkExtras: () => ({ alg: 'RS256', use: 'sig' }),
    defaults: { audience: () => 'api://default', clientId: '0oa4dr9kzkykPrLhq0g7' },
    accessHeader: () => ({}),
    idHeader: {},
    access: (c, kind) => {
      const common = { ver: 1, jti: `AT.${opaque(32)}`, iss: c.issuer, aud: c.audience, iat: c.now, exp: c.now + hours, cid: c.clientId, scp: c.scopes };
      // Client credentials: no user, so no uid and no auth_time; sub is the client id.
      if (kind === 'service') return { ...common, sub: c.clientId };
      return { ...common, uid: '00uixa271s6x7qt8I0h7', auth_time: c.now - 60, sub: 'joe.user@example.com' };
    },
    id: (c) => ({
      sub: '00uixa271s6x7qt8I0h7',
      ver: 1,
      iss: c.issuer,
      aud: c.clientId,
      iat: c.now,
      exp: c.now + hours,
      jti: `ID.${opaque(32)}`,
      amr: ['pwd'],
      idp: '00oixa26ycdNcX0VT0h7',
      nonce: opaque(12),
      auth_time: c.now - 60,
      at_hash: opaque(16),
    }),
  },

  keycloak: {
    issuerPath: `/realms/${KEYCLOAK_REALM}`,
    metadataPaths: (p) => [`${p}/.well-known/openid-configuration`],
    jwksPath: `/realms/${KEYCLOAK_REALM}/protocol/openid-connect/certs`,
    jwkExtras: (kid) => ({ alg: 'RS256', use: 'sig', x5t: kid }),
    // The audience comes from an Audience mapper on the client (Included Custom Audience).
    defaults: { audience: () => 'https://tools.example.com/mcp', clientId: 'research-bot' },
    accessHeader: () => ({ typ: 'JWT' }),
    idHeader: { typ: 'JWT' },
    access: (c, kind) => {
      const common = {
        exp: c.now + 300,
        iat: c.now,
        jti: uuid(),
        iss: c.issuer,
        typ: 'Bearer',
        azp: c.clientId,
        acr: '1',
        'allowed-origins': ['/*'],
        realm_access: { roles: [`default-roles-${KEYCLOAK_REALM}`, 'offline_access', 'uma_authorization'] },
        resource_access: { account: { roles: ['manage-account', 'view-profile'] } },
      };
      if (kind === 'service') {
        // The service_account client scope adds client_id, clientHost and clientAddress.
        return {
          ...common,
          aud: c.audience,
          sub: uuid(),
          scope: ['profile', 'email', ...c.scopes].join(' '),
          clientHost: '127.0.0.1',
          email_verified: false,
          preferred_username: `service-account-${c.clientId}`,
          clientAddress: '127.0.0.1',
          client_id: c.clientId,
        };
      }
      return {
        ...common,
        auth_time: c.now - 60,
        aud: [c.audience, 'account'],
        sub: uuid(),
        sid: uuid(),
        scope: ['openid', 'profile', 'email', ...c.scopes].join(' '),
        email_verified: true,
        name: 'Alice Liddell',
        preferred_username: 'alice',
        given_name: 'Alice',
        family_name: 'Liddell',
        email: 'alice@example.com',
      };
    },
    id: (c) => ({
      exp: c.now + 300,
      iat: c.now,
      auth_time: c.now - 60,
      jti: uuid(),
      iss: c.issuer,
      aud: c.clientId,
      sub: uuid(),
      typ: 'ID',
      azp: c.clientId,
      nonce: opaque(12),
      sid: uuid(),
      at_hash: opaque(16),
      acr: '1',
      email_verified: true,
      name: 'Alice Liddell',
      preferred_username: 'alice',
      email: 'alice@example.com',
    }),
  },

  auth0: {
    issuerPath: '/',
    metadataPaths: () => ['/.well-known/openid-configuration'],
    jwksPath: '/.well-known/jwks.json',
    jwkExtras: (kid) => ({ alg: 'RS256', use: 'sig', x5t: kid }),
    // The API's Identifier, set when the API is registered.
    defaults: { audience: () => 'https://tools.example.com/mcp', clientId: 'tQ4E0jXr3pxzV1WRb8NcqG7vA2MyLk5s' },
    accessHeader: (kind) => ({ typ: kind === 'rfc9068' ? 'at+jwt' : 'JWT' }),
    idHeader: { typ: 'JWT' },
    access: (c, kind) => {
      // RBAC with "Add Permissions in the Access Token": permissions lists what was granted.
      if (kind === 'service') {
        return { iss: c.issuer, sub: `${c.clientId}@clients`, aud: c.audience, iat: c.now, exp: c.now + 86400, scope: c.scopes.join(' '), gty: 'client-credentials', azp: c.clientId, permissions: c.scopes };
      }
      const user = { iss: c.issuer, sub: 'auth0|65f1c0ffee0123456789abcd', aud: [c.audience, `${c.issuer}userinfo`], iat: c.now, exp: c.now + 86400, scope: ['openid', 'profile', ...c.scopes].join(' '), permissions: c.scopes };
      if (kind === 'rfc9068') return { ...user, client_id: c.clientId, jti: opaque(16) };
      return { ...user, azp: c.clientId };
    },
    id: (c) => ({
      nickname: 'jane',
      name: 'Jane Doe',
      updated_at: new Date((c.now - 60) * 1000).toISOString(),
      email: 'jane@example.com',
      email_verified: true,
      iss: c.issuer,
      aud: c.clientId,
      sub: 'auth0|65f1c0ffee0123456789abcd',
      iat: c.now,
      exp: c.now + 36000,
      sid: opaque(24),
      nonce: opaque(12),
    }),
  },

  cognito: {
    issuerPath: `/${COGNITO_POOL}`,
    metadataPaths: (p) => [`${p}/.well-known/openid-configuration`],
    jwksPath: `/${COGNITO_POOL}/.well-known/jwks.json`,
    jwkExtras: () => ({ alg: 'RS256', use: 'sig' }),
    // No aud in access tokens: `audiences` lists app client ids, which client_id is compared with.
    defaults: { audience: (c) => c.clientId, clientId: '1example23456789abcdefghij', resourceServer: 'https://tools.example.com/mcp' },
    separateIdKey: true,
    accessHeader: () => ({}),
    idHeader: {},
    access: (c, kind) => {
      const scope = c.scopes.map((s) => `${c.resourceServer}/${s}`);
      const common = { iss: c.issuer, version: 2, client_id: c.clientId, token_use: 'access', auth_time: c.now, exp: c.now + hours, iat: c.now, jti: uuid() };
      // Client credentials: the subject is the app client; no username, no origin_jti, no event_id.
      if (kind === 'service') return { sub: c.clientId, ...common, scope: scope.join(' ') };
      return { sub: uuid(), 'cognito:groups': ['agents'], ...common, origin_jti: uuid(), event_id: uuid(), scope: ['openid', 'profile', 'email', ...scope].join(' '), username: 'janedoe' };
    },
    id: (c) => ({
      at_hash: opaque(16),
      sub: uuid(),
      email_verified: true,
      iss: c.issuer,
      'cognito:username': 'janedoe',
      origin_jti: uuid(),
      aud: c.clientId,
      event_id: uuid(),
      token_use: 'id',
      auth_time: c.now,
      exp: c.now + hours,
      iat: c.now,
      jti: uuid(),
      email: 'janedoe@example.com',
      nonce: opaque(12),
    }),
  },
};

/** The OpenID Connect Discovery 1.0 / RFC 8414 members this test server fills in. */
function metadata(issuer: string, base: string, issuerPath: string, jwksUri: string): Record<string, unknown> {
  const endpoints = issuerPath === '/' ? base : base + issuerPath;
  return {
    issuer,
    authorization_endpoint: `${endpoints}/authorize`,
    token_endpoint: `${endpoints}/token`,
    jwks_uri: jwksUri,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
  };
}

async function rsaKey(shape: VendorShape): Promise<Key> {
  const kid = opaque(20);
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const { kty, n, e } = await exportJWK(publicKey);
  return { kid, privateKey, jwk: { kty, kid, ...shape.jwkExtras(kid), n, e } as JWK };
}

/** Starts a loopback server shaped like `vendor`. */
export async function startVendorIssuer(vendor: Vendor, options: VendorIssuerOptions = {}): Promise<VendorIssuer> {
  const shape = VENDORS[vendor];
  const accessKey = await rsaKey(shape);
  const idKey = shape.separateIdKey ? await rsaKey(shape) : accessKey;
  const published: JWK[] = [accessKey.jwk, ...(idKey === accessKey ? [] : [idKey.jwk])];
  if (vendor === 'keycloak') {
    // Keycloak's certs endpoint also lists the realm's encryption key (use enc, RSA-OAEP).
    const { publicKey } = await generateKeyPair('RSA-OAEP', { extractable: true });
    published.push({ ...(await exportJWK(publicKey)), kid: opaque(20), use: 'enc', alg: 'RSA-OAEP' });
  }
  const refreshSecret = randomBytes(64);
  const refreshKid = uuid();

  const hitCount = new Map<string, number>();
  const documents = new Map<string, () => unknown>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    const doc = documents.get(path);
    if (req.method !== 'GET' || !doc) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    hitCount.set(path, (hitCount.get(path) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(doc()));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = shape.issuerPath === '/' ? `${base}/` : base + shape.issuerPath;
  const jwksUri = base + shape.jwksPath;
  for (const p of shape.metadataPaths(shape.issuerPath)) documents.set(p, () => metadata(issuer, base, shape.issuerPath, jwksUri));
  documents.set(shape.jwksPath, () => ({ keys: published }));

  const clientId = options.clientId ?? shape.defaults.clientId;
  const resourceServer = options.resourceServer ?? shape.defaults.resourceServer ?? '';
  const audience = options.audience ?? shape.defaults.audience({ issuer, base, clientId, resourceServer });
  const ctx = (scopes: string[]): Ctx => ({ issuer, base, audience, clientId, resourceServer, now: Math.floor(Date.now() / 1000), scopes });

  const sign = (payload: Record<string, unknown>, header: Record<string, unknown>, key: Key) => {
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
    return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header } as never).sign(key.privateKey);
  };

  return {
    vendor,
    base,
    issuer,
    discoveryUrl: `${shape.issuerPath === '/' ? base : issuer}/.well-known/openid-configuration`,
    jwksUri,
    clientId,
    audience,
    access(opts = {}) {
      const kind = opts.kind ?? 'user';
      if (kind === 'rfc9068' && vendor !== 'auth0') throw new Error(`${vendor} has no RFC 9068 token profile`);
      return sign({ ...shape.access(ctx(opts.scopes ?? ['tools.read']), kind), ...opts.claims }, shape.accessHeader(kind), accessKey);
    },
    id(opts = {}) {
      const claims: Record<string, unknown> = { ...shape.id(ctx([])) };
      if (opts.aud !== undefined) claims.aud = opts.aud;
      if (opts.withoutMarkers) for (const marker of ['nonce', 'at_hash', 'c_hash']) delete claims[marker];
      return sign({ ...claims, ...opts.claims }, shape.idHeader, idKey);
    },
    refresh() {
      if (vendor !== 'keycloak') throw new Error(`${vendor} refresh tokens are opaque here`);
      const c = ctx([]);
      // Keycloak: aud is the realm itself, and the realm's HMAC key signs it (alg HS512).
      const payload = { exp: c.now + 1800, iat: c.now, jti: uuid(), iss: issuer, aud: issuer, sub: uuid(), typ: 'Refresh', azp: clientId, sid: uuid(), scope: 'openid profile email' };
      return new SignJWT(payload).setProtectedHeader({ alg: 'HS512', typ: 'JWT', kid: refreshKid }).sign(refreshSecret);
    },
    hits: (path) => hitCount.get(path) ?? 0,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
