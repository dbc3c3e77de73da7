/**
 * A real OAuth authorization server for integration tests: panva's `oidc-provider` (from npm),
 * run in its own process by test/helpers/oidc-provider.ts so that nothing of it shares memory
 * with the agentward under test.
 *
 * Input: the environment variable AW_OIDC_CONFIG, a JSON object
 *   { resource, opaqueResource, clients: { id: { secret, scope } }, introspector: { id, secret } }
 * Output: one line per event on stdout, `AW-OIDC {json}` (other stdout lines, such as the
 * provider's own notices, are not part of the protocol):
 *   {"event":"ready","issuer":"http://127.0.0.1:PORT","kids":[...]}   once listening
 *   {"event":"rotated","kids":[...]}                                   after each rotate command
 *   {"event":"request","method":"GET","path":"/jwks"}                  each request received
 * Commands, one JSON line each on stdin:
 *   {"cmd":"rotate","keepOld":true}  a new ES256 key goes first in the JWK Set (the provider
 *                                    signs with the first key of the algorithm asked for); the
 *                                    previous ES256 key stays published unless keepOld is false.
 * The provider is rebuilt with the new key set behind the same listening socket; issued tokens
 * survive because they live in this process's store (ProcessStore), not in the provider.
 * Closing stdin (the parent going away) ends the process.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

interface ServerConfig {
  resource: string;
  opaqueResource: string;
  clients: Record<string, { secret: string; scope: string }>;
  introspector: { id: string; secret: string };
}

/** The few members of oidc-provider's Provider used here (the package ships no types). */
interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}
type ProviderClass = new (issuer: string, configuration: Record<string, unknown>) => ProviderInstance;
type ErrorClass = new (description?: string) => Error;

// oidc-provider prints its "you SHOULD change this default" notices with console.info; keep
// stdout for the protocol lines.
console.info = console.error;

const config = JSON.parse(process.env.AW_OIDC_CONFIG ?? '') as ServerConfig;
// A non-literal specifier: the package has no type declarations, and this module describes
// the part of its API it uses itself.
const pkg = 'oidc-provider';
const { default: Provider, errors } = (await import(pkg)) as { default: ProviderClass; errors: { InvalidTarget: ErrorClass } };

type PrivateJwk = Record<string, unknown> & { kid: string; alg: string };

function newKey(alg: 'ES256' | 'RS256'): PrivateJwk {
  const { privateKey } = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`, alg, use: 'sig' };
}

/**
 * oidc-provider's storage (its adapter interface), kept for the life of the process so a
 * rebuilt provider still knows the tokens the previous one issued. oidc-provider 9's own memory
 * adapter is per provider instance.
 */
const stored = new Map<string, { payload: Record<string, unknown>; expiresAt: number }>();
class ProcessStore {
  private readonly model: string;
  constructor(model: string) {
    this.model = model;
  }
  private get(key: string): Record<string, unknown> | undefined {
    const entry = stored.get(key);
    if (entry && entry.expiresAt <= Date.now()) stored.delete(key);
    return entry && entry.expiresAt > Date.now() ? entry.payload : undefined;
  }
  async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    stored.set(`${this.model}:${id}`, { payload, expiresAt });
    if (typeof payload.uid === 'string') stored.set(`uid:${payload.uid}`, { payload, expiresAt });
    if (typeof payload.userCode === 'string') stored.set(`userCode:${payload.userCode}`, { payload, expiresAt });
  }
  async find(id: string) {
    return this.get(`${this.model}:${id}`);
  }
  async findByUid(uid: string) {
    return this.get(`uid:${uid}`);
  }
  async findByUserCode(userCode: string) {
    return this.get(`userCode:${userCode}`);
  }
  async consume(id: string): Promise<void> {
    const payload = this.get(`${this.model}:${id}`);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    stored.delete(`${this.model}:${id}`);
  }
  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [key, entry] of stored) if (entry.payload.grantId === grantId) stored.delete(key);
  }
}

/** The provider's key set, in order: the first key of an algorithm signs. */
let keys: PrivateJwk[] = [newKey('ES256'), newKey('RS256')];

function configuration(): Record<string, unknown> {
  const clients = [
    ...Object.entries(config.clients).map(([id, c]) => ({
      client_id: id,
      client_secret: c.secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: c.scope,
    })),
    {
      // The resource server's own credentials: it can call the introspection endpoint and
      // nothing else.
      client_id: config.introspector.id,
      client_secret: config.introspector.secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
  ];
  return {
    adapter: ProcessStore,
    clients,
    jwks: { keys },
    clockTolerance: 5,
    // RFC 9068 §2.2.1 authentication claims for the step-up tests: client-credentials tokens
    // have no user login, so one client stands in for "a user who just did MFA".
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) =>
      token.clientId === 'mfa-bot' ? { acr: 'mfa', amr: ['pwd', 'otp'], auth_time: Math.floor(Date.now() / 1000) - 60 } : undefined,
    scopes: ['tools.read', 'tools.write'],
    ttl: { ClientCredentials: 600, AccessToken: 600 },
    // Nothing here is called from a browser.
    clientBasedCORS: () => false,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // RFC 7662 §4: only the resource server may introspect, not the token's own client.
        allowedPolicy: (ctx: { oidc: { client: { clientId: string } } }) => ctx.oidc.client.clientId === config.introspector.id,
      },
      revocation: { enabled: true },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => false,
        getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => {
          if (resourceIndicator === config.resource) {
            return { scope: 'tools.read tools.write', audience: config.resource, accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'ES256' } } };
          }
          if (resourceIndicator === config.opaqueResource) {
            return { scope: 'tools.read tools.write', audience: config.opaqueResource, accessTokenFormat: 'opaque', accessTokenTTL: 600 };
          }
          throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
        },
      },
    },
  };
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`AW-OIDC ${JSON.stringify(event)}\n`);
}

const publicKids = () => keys.map((k) => k.kid);

const server = createServer((req, res) => {
  emit({ event: 'request', method: req.method, path: req.url });
  handler(req, res);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

let handler = new Provider(issuer, configuration()).callback();
emit({ event: 'ready', issuer, kids: publicKids() });

const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const command = JSON.parse(line) as { cmd: string; keepOld?: boolean };
  if (command.cmd === 'rotate') {
    const fresh = newKey('ES256');
    keys = [fresh, ...keys.filter((k) => command.keepOld !== false || k.alg !== 'ES256')];
    handler = new Provider(issuer, configuration()).callback();
    emit({ event: 'rotated', kids: publicKids() });
  }
});
commands.on('close', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
