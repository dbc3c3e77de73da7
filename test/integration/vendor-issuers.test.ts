/**
 * Issuer profiles against tokens shaped exactly like those of Microsoft Entra ID, Okta, Keycloak,
 * Auth0 (both token profiles) and Amazon Cognito (test/helpers/vendor-issuer.ts cites the vendor
 * documentation each shape follows), through the real proxy with the default policy.
 *
 * Each vendor gets its own agentward configured with ONLY what docs/issuers.md tells its users to
 * write (the `entry` of each case; the last block below checks it against the page's YAML, and
 * that every complete agentward.yaml on the page loads). Identity headers are added so the test
 * can see what the policy saw. For each vendor:
 *   - its access tokens with tools.read are forwarded for a GET (200), and the policy input holds the
 *     client id and the scopes read from the vendor's own claims (seen by the upstream through
 *     identity headers, and in the audit record);
 *   - a write without tools.write is 403 insufficient_scope, naming the scope;
 *   - its ID token is 401 ERR_TOKEN_NOT_ACCESS_TOKEN, both with its natural audience (the client)
 *     and with the audience this resource accepts and no nonce/at_hash, so the positive part of the
 *     confusion guard is what refuses it, not the audience check or the ID-token markers;
 *   - under the strict default profile, its access tokens are 401 ERR_TOKEN_TYPE (only Auth0's RFC
 *     9068 token profile passes there, as docs/issuers.md says).
 * (and Keycloak's refresh token is refused like its ID token). Then a `custom` profile with
 * overrides, and the config rule that a relaxed typ needs a guard that sets access tokens apart.
 */
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startVendorIssuer, VENDOR_NAMES, type AccessKind, type Vendor, type VendorIssuer } from '../helpers/vendor-issuer.ts';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, challengeParams, type RawResponse } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { parseConfig, ConfigError } from '../../src/config/load.ts';

const RESOURCE = 'https://tools.example.com/mcp';
/** What the tests read back from the upstream: the policy input's subject fields. */
const IDENTITY_HEADERS = { 'X-Client': 'subject.clientId', 'X-Scopes': 'subject.scopes', 'X-User': 'subject.sub' };

const issuers = {} as Record<Vendor, VendorIssuer>;
let upstream: TestUpstream;

beforeAll(async () => {
  upstream = await startUpstream();
  for (const vendor of VENDOR_NAMES) issuers[vendor] = await startVendorIssuer(vendor);
});
afterAll(async () => {
  await Promise.all([upstream?.close(), ...Object.values(issuers).map((i) => i.close())]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

async function call(aw: RunningAgentward, token: string, method = 'GET'): Promise<RawResponse> {
  return rawRequest(`${aw.url}/mcp/tools`, { method, headers: { authorization: `Bearer ${token}` } });
}

function expectRefused(res: RawResponse, code: string) {
  expect(res.status, res.body).toBe(401);
  expect(res.json().code).toBe(code);
  expect(challengeParams(res.headers['www-authenticate']).error).toBe('invalid_token');
  expect(upstream.seen).toHaveLength(0);
}

function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

interface VendorCase {
  name: string;
  vendor: Vendor;
  /** The heading of its section in docs/issuers.md. */
  docsSection: string;
  /** The `oauth.issuers[]` entry of docs/issuers.md for this vendor, for this test's issuer. */
  entry: (v: VendorIssuer) => Record<string, unknown>;
  /** The `policy.data` docs/issuers.md asks for, if any (Cognito's prefixed scopes). */
  policyData?: Record<string, unknown>;
  /** Access token kinds the vendor issues to agents. */
  kinds: AccessKind[];
  /** How the vendor renders a bare scope name in tokens (and so in the policy input). */
  scope: (name: string) => string;
  /** The ID token with the audience this resource accepts, as the vendor can produce it (see each). */
  idWithAcceptedAudience: (v: VendorIssuer) => Promise<string>;
  /** What the guard says refuses that ID token: the vendor's positive access-token marker. */
  guard: RegExp;
}

const bare = (name: string) => name;

const CASES: VendorCase[] = [
  {
    name: 'Microsoft Entra ID (v2.0 access tokens)',
    vendor: 'entra',
    docsSection: 'Microsoft Entra ID',
    // docs/issuers.md "Microsoft Entra ID": the tenant's v2.0 issuer, and the API's application (client) ID as audience.
    entry: (v) => ({ issuer: v.issuer, profile: 'entra', audiences: [v.audience] }),
    kinds: ['user', 'service'],
    scope: bare,
    // An app registration that is its own API (exposes tools.read and signs users in): its ID
    // tokens then carry the API's application id as aud. No azp and no scp still set them apart.
    idWithAcceptedAudience: (v) => v.id({ aud: v.audience, withoutMarkers: true, claims: { roles: ['tools.read'] } }),
    guard: /no azp or appid claim/,
  },
  {
    name: 'Okta (custom authorization server)',
    vendor: 'okta',
    docsSection: 'Okta',
    entry: (v) => ({ issuer: v.issuer, profile: 'okta', audiences: ['api://default'] }),
    kinds: ['user', 'service'],
    scope: bare,
    // Okta ID tokens always name the client in aud; this is the worst case (a resource that lists
    // a client id among its audiences): no cid and no scp still set it apart.
    idWithAcceptedAudience: (v) => v.id({ aud: v.audience, withoutMarkers: true }),
    guard: /no cid claim/,
  },
  {
    name: 'Keycloak 26 (typ JWT, audience mapper)',
    vendor: 'keycloak',
    docsSection: 'Keycloak',
    entry: (v) => ({ issuer: v.issuer, profile: 'keycloak' }),
    kinds: ['user', 'service'],
    scope: bare,
    // An Audience mapper with "Add to ID token" on: aud [client, resource]. The payload typ "ID"
    // (and the client in its own audience) still set it apart.
    idWithAcceptedAudience: (v) => v.id({ aud: [v.clientId, RESOURCE], withoutMarkers: true }),
    guard: /typ claim is not "Bearer"/,
  },
  {
    name: 'Auth0 (Auth0 token profile, and the RFC 9068 token profile under profile auth0)',
    vendor: 'auth0',
    docsSection: 'Auth0',
    entry: (v) => ({ issuer: v.issuer, profile: 'auth0' }),
    kinds: ['user', 'service', 'rfc9068'],
    scope: bare,
    // Auth0 ID tokens always have aud = the client id; the worst case (an API whose identifier is
    // a client id) has no azp/client_id, which every Auth0 access token carries.
    idWithAcceptedAudience: (v) => v.id({ aud: RESOURCE, withoutMarkers: true }),
    guard: /no client_id or azp claim/,
  },
  {
    name: 'Amazon Cognito (no aud; app client ids as audiences)',
    vendor: 'cognito',
    docsSection: 'Amazon Cognito',
    entry: (v) => ({ issuer: v.issuer, profile: 'cognito', audiences: [v.clientId] }),
    // Custom scopes are "<resource server identifier>/<scope>"; the default policy is told so.
    policyData: { agentward: { settings: { readScopes: [`${RESOURCE}/tools.read`], writeScopes: [`${RESOURCE}/tools.write`] } } },
    kinds: ['user', 'service'],
    scope: (name) => `${RESOURCE}/${name}`,
    // A Cognito ID token's aud IS the app client id, which `audiences` lists: token_use "id" sets it apart.
    idWithAcceptedAudience: (v) => v.id({ withoutMarkers: true }),
    guard: /token_use claim is not "access"/,
  },
];

describe.each(CASES)('$name', (c) => {
  let v: VendorIssuer;
  let aw: RunningAgentward;

  beforeAll(async () => {
    v = issuers[c.vendor];
    let policy: Record<string, unknown> = { source: DEFAULT_POLICY };
    if (c.policyData) {
      const file = join(mkdtempSync(join(tmpdir(), 'agentward-vendor-')), 'data.json');
      writeFileSync(file, JSON.stringify(c.policyData));
      policy = { ...policy, data: file };
    }
    aw = await startAgentward({
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [c.entry(v)] },
      policy,
      forward: { identityHeaders: IDENTITY_HEADERS },
    });
  });
  afterAll(async () => {
    await aw?.stop();
  });

  test('the keys were found through the vendor\'s own discovery document and key set path; the relaxation is named at startup', () => {
    expect(v.hits(new URL(v.discoveryUrl).pathname)).toBeGreaterThan(0);
    expect(v.hits(new URL(v.jwksUri).pathname)).toBeGreaterThan(0);
    expect(aw.logs()).toContain(`oauth.issuers[0] (profile ${c.entry(v).profile as string}) accepts JWT access tokens with typ`);
  });

  test.each(c.kinds)('a %s access token with tools.read: GET is forwarded, the policy saw its client and scopes', async (kind) => {
    const token = await v.access({ kind, scopes: ['tools.read'] });
    const res = await call(aw, token);
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen).toHaveLength(1);
    const seen = upstream.seen[0]!.headers;
    expect(seen['x-client']).toBe(v.clientId);
    expect(String(seen['x-scopes']).split(' ')).toContain(c.scope('tools.read'));
    expect(seen['x-user']).toBe(payloadOf(token).sub);
    expect(seen.authorization).toBeUndefined();
    const requestId = res.headers['x-request-id'];
    await waitFor(async () => aw.audit().some((r) => r.requestId === requestId), 'the audit record');
    const record = aw.audit().find((r) => r.requestId === requestId);
    expect(record).toMatchObject({ decision: 'allow', status: 200, subject: { iss: v.issuer, sub: payloadOf(token).sub, clientId: v.clientId } });
  });

  test.each(c.kinds)('a %s access token without tools.write: POST and DELETE are 403 insufficient_scope', async (kind) => {
    const token = await v.access({ kind, scopes: ['tools.read'] });
    for (const method of ['POST', 'DELETE']) {
      const res = await call(aw, token, method);
      expect(res.status, res.body).toBe(403);
      expect(res.json().code).toBe('ERR_POLICY_INSUFFICIENT_SCOPE');
      expect(challengeParams(res.headers['www-authenticate'])).toMatchObject({ error: 'insufficient_scope', scope: c.scope('tools.write') });
    }
    expect(upstream.seen).toHaveLength(0);
  });

  test('an access token with tools.write may POST', async () => {
    const res = await call(aw, await v.access({ scopes: ['tools.read', 'tools.write'] }), 'POST');
    expect(res.status, res.body).toBe(200);
  });

  test('its ID token, with its natural audience (the client), is refused as not an access token', async () => {
    const token = await v.id();
    expect(payloadOf(token).aud).toBe(v.clientId);
    expectRefused(await call(aw, token), 'ERR_TOKEN_NOT_ACCESS_TOKEN');
  });

  test('its ID token with the accepted audience and no nonce/at_hash is still refused: the guard, not the audience, refuses it', async () => {
    const res = await call(aw, await c.idWithAcceptedAudience(v));
    expectRefused(res, 'ERR_TOKEN_NOT_ACCESS_TOKEN');
    expect(String(res.json().detail)).toMatch(c.guard);
  });

  test('a token for another audience is refused by the audience check', async () => {
    const other = c.vendor === 'cognito' ? { client_id: 'another-app-client' } : { aud: 'https://other.example.com/api' };
    expectRefused(await call(aw, await v.access({ claims: other })), 'ERR_TOKEN_AUDIENCE');
  });

  // Keycloak's refresh tokens are JWTs too (the others' are opaque or encrypted).
  if (c.vendor === 'keycloak') {
    test('its refresh token (payload typ Refresh) is refused before its HS512 signature is looked at', async () => {
      const res = await call(aw, await v.refresh());
      expectRefused(res, 'ERR_TOKEN_NOT_ACCESS_TOKEN');
      expect(String(res.json().detail)).toMatch(/typ claim is not "Bearer"/);
    });
  }
});

describe('the strict default (no profile): RFC 9068 §4 typ check', () => {
  let aw: RunningAgentward;
  beforeAll(async () => {
    aw = await startAgentward({
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      // The same servers, with their audiences, but no profile: what a user gets before reading docs/issuers.md.
      oauth: { issuers: VENDOR_NAMES.map((vendor) => ({ issuer: issuers[vendor].issuer, audiences: [issuers[vendor].audience] })) },
      policy: { source: DEFAULT_POLICY },
      forward: { identityHeaders: IDENTITY_HEADERS },
    });
  });
  afterAll(async () => {
    await aw?.stop();
  });

  const vendorTokens: [Vendor, AccessKind][] = [
    ['entra', 'user'],
    ['entra', 'service'],
    ['okta', 'user'],
    ['keycloak', 'user'],
    ['keycloak', 'service'],
    ['auth0', 'user'],
    ['auth0', 'service'],
    ['cognito', 'user'],
  ];
  test.each(vendorTokens)('a %s %s access token is ERR_TOKEN_TYPE, and the detail points at the profile setting', async (vendor, kind) => {
    const res = await call(aw, await issuers[vendor].access({ kind }));
    expectRefused(res, 'ERR_TOKEN_TYPE');
    expect(String(res.json().detail)).toMatch(/profile/);
    expect(String(res.json().detail)).toMatch(vendor === 'okta' || vendor === 'cognito' ? /no typ/ : /"JWT"/);
  });

  test('Auth0\'s RFC 9068 token profile needs no profile at all: typ at+jwt, client_id, jti', async () => {
    const res = await call(aw, await issuers.auth0.access({ kind: 'rfc9068', scopes: ['tools.read'] }));
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen[0]!.headers['x-client']).toBe(issuers.auth0.clientId);
    expect(upstream.seen[0]!.headers['x-scopes']).toBe('openid profile tools.read');
  });

  test.each(VENDOR_NAMES)('a %s ID token is ERR_TOKEN_TYPE here (typ JWT or none)', async (vendor) => {
    expectRefused(await call(aw, await issuers[vendor].id({ aud: issuers[vendor].audience })), 'ERR_TOKEN_TYPE');
  });
});

/** The custom issuer entry of docs/issuers.md (minus its issuer URL). */
const CUSTOM_ENTRY = {
  profile: 'custom',
  typ: ['at+jwt', 'jwt'],
  clientIdClaims: ['azp'],
  scopeClaims: ['scp'],
  subjectClaim: 'oid',
  requiredClaims: ['iss', 'exp', 'aud', 'sub', 'azp', 'iat'],
  confusionGuard: { requireClientId: true, requireScope: true, forbidClaims: ['nonce', 'at_hash', 'c_hash'], audienceNotClientId: true },
};

describe('profile custom, with overrides', () => {
  // A server none of the presets describe: typ "JWT", the client in `azp`, scopes in an `scp`
  // array, the stable user id in `oid`, no jti. Its ID tokens carry nonce and no azp.
  let generic: TestIssuer;
  let aw: RunningAgentward;
  const access = (claims: Record<string, unknown> = {}) =>
    generic.mint({ client_id: undefined, scope: undefined, jti: undefined, azp: 'planner-agent', scp: ['tools.read'], oid: 'user-oid-7', ...claims }, { header: { typ: 'JWT' } });

  beforeAll(async () => {
    generic = await startIssuer({ audience: RESOURCE, alg: 'RS256' });
    aw = await startAgentward({
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: generic.issuer, jwksUri: generic.jwksUri, ...CUSTOM_ENTRY }] },
      policy: { source: DEFAULT_POLICY },
      forward: { identityHeaders: IDENTITY_HEADERS },
    });
  });
  afterAll(async () => {
    await aw?.stop();
    await generic?.close();
  });

  test('its access token is read through the overrides: client from azp, scopes from scp, subject from oid', async () => {
    const res = await call(aw, await access());
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen[0]!.headers).toMatchObject({ 'x-client': 'planner-agent', 'x-scopes': 'tools.read', 'x-user': 'user-oid-7' });
  });

  test('a token without typ is refused (typRequired stays true)', async () => {
    expectRefused(await call(aw, await generic.mint({ azp: 'planner-agent', scp: ['tools.read'] }, { header: { typ: undefined } })), 'ERR_TOKEN_TYPE');
  });

  test.each([
    ['its ID token (nonce, no azp, no scp)', { azp: undefined, scp: undefined, nonce: 'n-1' }],
    ['a token without azp', { azp: undefined }],
    ['a token without scp', { scp: undefined }],
    ['a token whose audience is its own client', { aud: [RESOURCE, 'planner-agent'] }],
    ['a token with at_hash', { at_hash: 'x' }],
  ])('%s is ERR_TOKEN_NOT_ACCESS_TOKEN', async (_name, claims) => {
    expectRefused(await call(aw, await access(claims)), 'ERR_TOKEN_NOT_ACCESS_TOKEN');
  });

  test('a per-field override of a named profile: entra reading the subject from oid', async () => {
    const entra = issuers.entra;
    const aw2 = await startAgentward({
      upstream: { url: upstream.url },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: entra.issuer, profile: 'entra', audiences: [entra.audience], subjectClaim: 'oid' }] },
      policy: { source: DEFAULT_POLICY },
      forward: { identityHeaders: IDENTITY_HEADERS },
    });
    try {
      const token = await entra.access();
      const res = await call(aw2, token);
      expect(res.status, res.body).toBe(200);
      expect(upstream.seen[0]!.headers['x-user']).toBe(payloadOf(token).oid);
      // The override changed only the subject: the ID token is still refused.
      upstream.seen.length = 0;
      expectRefused(await call(aw2, await entra.id()), 'ERR_TOKEN_NOT_ACCESS_TOKEN');
    } finally {
      await aw2.stop();
    }
  });
});

describe('config: a relaxed typ needs a confusion guard that sets access tokens apart', () => {
  function problemsOf(entry: Record<string, unknown>) {
    const text = JSON.stringify({
      upstream: { url: 'http://127.0.0.1:3000' },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: 'https://as.example.com', ...entry }] },
      policy: { source: DEFAULT_POLICY },
    });
    let caught: unknown;
    try {
      parseConfig(text, join(mkdtempSync(join(tmpdir(), 'agentward-config-')), 'agentward.yaml'));
    } catch (err) {
      caught = err;
    }
    expect(caught, 'the config was accepted').toBeInstanceOf(ConfigError);
    return (caught as ConfigError).problems;
  }

  test.each([
    ['custom with typ JWT and an empty guard', { profile: 'custom', typ: ['at+jwt', 'jwt'], confusionGuard: {} }],
    ['custom accepting tokens without typ, guard only forbidding markers', { profile: 'custom', typRequired: false, confusionGuard: { forbidClaims: ['nonce'] } }],
    ['entra with its positive checks turned off', { profile: 'entra', audiences: ['api'], confusionGuard: { requireClientId: false, requireScope: false } }],
    ['keycloak with the typ claim check emptied', { profile: 'keycloak', confusionGuard: { claims: {} } }],
  ])('%s: ConfigError at oauth.issuers[0].confusionGuard', (_name, entry) => {
    const problems = problemsOf(entry);
    expect(problems.map((p) => p.path)).toContain('oauth.issuers[0].confusionGuard');
    const problem = problems.find((p) => p.path === 'oauth.issuers[0].confusionGuard')!;
    expect(problem.message).toMatch(/ID token/);
    expect(problem.fix).toMatch(/issuers\.md/);
  });

  test('cognito without audiences: ConfigError at oauth.issuers[0].audiences', () => {
    expect(problemsOf({ profile: 'cognito' }).map((p) => p.path)).toContain('oauth.issuers[0].audiences');
  });

  test('the strict typ needs no guard; a relaxed profile with its preset guard loads', () => {
    for (const entry of [{ profile: 'custom' }, { profile: 'custom', clientIdClaims: ['azp'] }, { profile: 'okta' }, { profile: 'hydra' }]) {
      expect(() => parseConfig(JSON.stringify({ upstream: { url: 'http://127.0.0.1:3000' }, resource: { id: RESOURCE }, oauth: { issuers: [{ issuer: 'https://as.example.com', ...entry }] }, policy: { source: DEFAULT_POLICY } }), join(mkdtempSync(join(tmpdir(), 'agentward-config-')), 'agentward.yaml'))).not.toThrow();
    }
  });
});

describe('docs/issuers.md gives the configuration these tests run', () => {
  const DOC = readFileSync(join(REPO, 'docs/issuers.md'), 'utf8');
  /** The body of the `## ` section whose heading starts with `title`. */
  const section = (title: string) => {
    const found = DOC.split('\n## ').find((part) => part.startsWith(title));
    if (!found) throw new Error(`docs/issuers.md has no section "${title}"`);
    return found;
  };
  const blocks = (text: string, lang: string) => [...text.matchAll(new RegExp(`\`\`\`${lang}\n([\\s\\S]*?)\`\`\``, 'g'))].map((m) => m[1]!);
  /** The complete agentward.yaml of a section (the block that starts with `# agentward.yaml`). */
  const config = (title: string) => {
    const yaml = blocks(section(title), 'yaml').find((b) => b.startsWith('# agentward.yaml'));
    if (!yaml) throw new Error(`section "${title}" has no complete agentward.yaml`);
    return parseYaml(yaml) as { oauth: { issuers: Record<string, unknown>[] }; policy: Record<string, unknown> };
  };
  let dir: string;

  beforeAll(() => {
    // Where a user would put the page's files: its policies and its data file beside agentward.yaml.
    dir = mkdtempSync(join(tmpdir(), 'agentward-issuers-doc-'));
    symlinkSync(join(REPO, 'policies'), join(dir, 'policies'));
    writeFileSync(join(dir, 'cognito-scopes.json'), blocks(section('Amazon Cognito'), 'json')[0]!);
  });

  test('every complete agentward.yaml on the page loads as is', () => {
    const all = blocks(DOC, 'yaml').filter((b) => b.startsWith('# agentward.yaml'));
    expect(all.length).toBe(8);
    for (const yaml of all) expect(() => parseConfig(yaml, join(dir, 'agentward.yaml')), yaml.split('\n')[0]).not.toThrow();
  });

  test.each(CASES)('$docsSection: the page sets exactly the keys this test sets', (c) => {
    const doc = config(c.docsSection);
    const tested = c.entry(issuers[c.vendor]);
    expect(doc.oauth.issuers).toHaveLength(1);
    expect(Object.keys(doc.oauth.issuers[0]!).sort()).toEqual(Object.keys(tested).sort());
    expect(doc.oauth.issuers[0]!.profile).toBe(tested.profile);
    expect(doc.policy.data !== undefined).toBe(c.policyData !== undefined);
  });

  test('Amazon Cognito: the page\'s policy data is the one this test uses', () => {
    expect(JSON.parse(blocks(section('Amazon Cognito'), 'json')[0]!)).toEqual(CASES.find((c) => c.vendor === 'cognito')!.policyData);
  });

  test('strict RFC 9068: the issuer alone, as the strict-default test runs Auth0\'s RFC 9068 tokens', () => {
    expect(Object.keys(config('Strict RFC 9068').oauth.issuers[0]!)).toEqual(['issuer']);
  });

  test('custom: the page\'s entry is the one this test runs', () => {
    const { issuer: _issuer, ...entry } = config('Custom').oauth.issuers[0]!;
    expect(entry).toEqual(CUSTOM_ENTRY);
  });
});
