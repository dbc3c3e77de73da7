/**
 * Issuer profiles (identity/issuer-profiles.ts, docs/issuers.md): each relaxed profile accepts what
 * its server sends, fills the same verified fields (subject, client id, scopes), and its
 * confusion guard refuses the server's other JWTs with ERR_TOKEN_NOT_ACCESS_TOKEN. Real
 * signatures and a real key set on loopback; the vendor-shaped end-to-end tests are in
 * test/integration/vendor-issuers.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AccessTokenVerifier } from '../../src/credentials/access-token.ts';
import { IssuerKeys } from '../../src/keys/issuer-keys.ts';
import type { IssuerConfig } from '../../src/config/schema.ts';
import { effectiveProfile, PROFILE_PRESETS, relaxesTyp, guardsAccessTokens, ISSUER_PROFILES } from '../../src/identity/issuer-profiles.ts';
import { parseConfig, relaxations, ConfigError } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { AgentwardError } from '../../src/errors.ts';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { expectCode } from '../helpers/expect-code.ts';

const RESOURCE = 'https://tools.example.com/mcp';
let issuer: TestIssuer;
let keys: IssuerKeys;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  keys = new IssuerKeys({ issuer: issuer.issuer, jwksUri: issuer.jwksUri, discovery: 'auto' }, { maxAgeMs: 3_600_000, cooldownMs: 0, timeoutMs: 2000, logger: createLogger('silent') });
  await keys.start();
});
afterAll(async () => {
  keys.close();
  await issuer.close();
});

function verifier(settings: Partial<IssuerConfig>): AccessTokenVerifier {
  const config: IssuerConfig = { issuer: issuer.issuer, jwksUri: issuer.jwksUri, discovery: 'auto', algorithms: ['ES256'], ...settings };
  return new AccessTokenVerifier({ issuers: [{ config, keys }], resourceId: RESOURCE, clockSkewSeconds: 30, maxDelegationDepth: 4, cacheSize: 0, dpopBinding: false });
}

/** A token with `typ` (undefined: no typ header) and RFC 9068 claims minus client_id/scope, plus `claims`. */
function mint(typ: string | undefined, claims: Record<string, unknown>): Promise<string> {
  return issuer.mint({ client_id: undefined, scope: undefined, ...claims }, { header: { typ } });
}

describe('presets', () => {
  test.each(ISSUER_PROFILES)('%s: a relaxed typ always comes with a check that sets access tokens apart', (name) => {
    const profile = PROFILE_PRESETS[name];
    expect(profile.typ).toContain('at+jwt');
    if (relaxesTyp(profile)) expect(guardsAccessTokens(profile.confusionGuard)).toBe(true);
  });

  test('rfc9068 and custom are strict; every vendor profile relaxes typ', () => {
    expect(relaxesTyp(PROFILE_PRESETS.rfc9068)).toBe(false);
    expect(relaxesTyp(PROFILE_PRESETS.custom)).toBe(false);
    for (const name of ['entra', 'okta', 'keycloak', 'auth0', 'hydra', 'cognito'] as const) expect(relaxesTyp(PROFILE_PRESETS[name])).toBe(true);
  });

  test('issuer fields override the preset one by one, the guard field by field', () => {
    const p = effectiveProfile({ profile: 'okta', scopeClaims: ['scp', 'groups'], confusionGuard: { forbidClaims: ['nonce'] } });
    expect(p.clientIdClaims).toEqual(['cid']);
    expect(p.scopeClaims).toEqual(['scp', 'groups']);
    expect(p.confusionGuard).toMatchObject({ requireClientId: true, requireScope: true, forbidClaims: ['nonce'], audienceNotClientId: true });
  });
});

describe('typ', () => {
  test('rfc9068 (default): JWT refused with a detail naming what it saw and the setting', async () => {
    const err = await verifier({}).verify(await issuer.mint({}, { header: { typ: 'JWT' } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentwardError);
    expect((err as AgentwardError).code).toBe('ERR_TOKEN_TYPE');
    expect((err as AgentwardError).detail).toContain('has typ "JWT"');
    expect((err as AgentwardError).detail).toContain('profile rfc9068');
    expect((err as AgentwardError).detail).toContain('oauth.issuers[].profile');
  });

  test('a typ that is not a short media type is never echoed', async () => {
    const err = (await verifier({}).verify(await issuer.mint({}, { header: { typ: '<script>alert(1)</script>' } })).catch((e: unknown) => e)) as AgentwardError;
    expect(err.code).toBe('ERR_TOKEN_TYPE');
    expect(err.detail).not.toContain('script');
  });

  test('a missing typ is accepted only where typRequired is false', async () => {
    const token = await mint(undefined, { azp: 'agent-1', scp: 'tools.read' });
    await expect(verifier({ profile: 'entra' }).verify(token)).resolves.toMatchObject({ clientId: 'agent-1' });
    await expectCode(verifier({ profile: 'keycloak' }).verify(token), 'ERR_TOKEN_TYPE');
  });

  test('a relaxed issuer never relaxes another issuer: an unknown iss with typ JWT stays ERR_TOKEN_TYPE', async () => {
    const token = await mint('JWT', { iss: 'https://elsewhere.example', client_id: 'a', scp: ['x'] });
    await expectCode(verifier({ profile: 'hydra' }).verify(token), 'ERR_TOKEN_TYPE');
  });

  test('typ at+jwt is accepted by every profile (an access token by its own declaration); an override list replaces the rest', async () => {
    const token = await mint('at+jwt', { client_id: 'agent-1', scp: ['tools.read'] });
    await expect(verifier({ profile: 'hydra' }).verify(token)).resolves.toMatchObject({ clientId: 'agent-1' });
    await expect(verifier({ profile: 'hydra', typ: ['application/jwt'] }).verify(token)).resolves.toBeDefined();
    await expect(verifier({ profile: 'hydra', typ: ['application/jwt'] }).verify(await mint('JWT', { client_id: 'agent-1', scp: [] }))).resolves.toBeDefined();
    await expectCode(verifier({ profile: 'hydra', typ: ['at+jwt'] }).verify(await mint('JWT', { client_id: 'agent-1', scp: [] })), 'ERR_TOKEN_TYPE');
  });
});

describe('claim mapping', () => {
  test('entra: client from azp (v2) or appid (v1), scopes from scp (string) and roles (array)', async () => {
    const v = verifier({ profile: 'entra' });
    expect(await v.verify(await mint('JWT', { azp: 'agent-1', scp: 'tools.read tools.write', roles: ['Tools.Admin'] }))).toMatchObject({
      clientId: 'agent-1',
      subject: 'user-42',
      scopes: ['tools.read', 'tools.write', 'Tools.Admin'],
    });
    expect(await v.verify(await mint(undefined, { appid: 'agent-v1', roles: ['tools.read'] }))).toMatchObject({ clientId: 'agent-v1', scopes: ['tools.read'] });
  });

  test('okta: cid and scp as an array', async () => {
    expect(await verifier({ profile: 'okta' }).verify(await mint(undefined, { cid: 'agent-1', scp: ['tools.read', 'tools.read'] }))).toMatchObject({ clientId: 'agent-1', scopes: ['tools.read'] });
  });

  test('subjectClaim override: Entra oid', async () => {
    expect(await verifier({ profile: 'entra', subjectClaim: 'oid' }).verify(await mint('JWT', { azp: 'a', scp: 'x', oid: 'object-1' }))).toMatchObject({ subject: 'object-1' });
  });

  test('a scope claim of the wrong type is ERR_TOKEN_CLAIM_INVALID, a client claim that is not a string too', async () => {
    await expectCode(verifier({ profile: 'okta' }).verify(await mint(undefined, { cid: 'a', scp: { x: 1 } })), 'ERR_TOKEN_CLAIM_INVALID');
    await expectCode(verifier({ profile: 'okta' }).verify(await mint(undefined, { cid: 7, scp: [] })), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('cognito: no aud, the client_id is matched against audiences', async () => {
    const v = verifier({ profile: 'cognito', audiences: ['app-client-1'] });
    const access = await mint(undefined, { aud: undefined, client_id: 'app-client-1', token_use: 'access', scope: 'tools.read' });
    expect(await v.verify(access)).toMatchObject({ clientId: 'app-client-1', audiences: ['app-client-1'], scopes: ['tools.read'] });
    await expectCode(verifier({ profile: 'cognito', audiences: ['app-client-2'] }).verify(access), 'ERR_TOKEN_AUDIENCE');
  });
});

describe('confusion guards refuse ID tokens and other JWTs of the same issuer', () => {
  const cases: [string, Partial<IssuerConfig>, string | undefined, Record<string, unknown>][] = [
    ['entra ID token (no azp, nonce)', { profile: 'entra' }, 'JWT', { nonce: 'n', oid: 'o' }],
    ['entra token with azp but no scp/roles', { profile: 'entra' }, 'JWT', { azp: 'agent-1' }],
    ['entra token whose audience is its client', { profile: 'entra', audiences: ['agent-1'] }, 'JWT', { aud: 'agent-1', azp: 'agent-1', scp: 'x' }],
    ['okta ID token (no cid/scp)', { profile: 'okta' }, undefined, { nonce: 'n', at_hash: 'h', jti: 'ID.1' }],
    ['keycloak ID token (typ ID)', { profile: 'keycloak' }, 'JWT', { typ: 'ID', azp: 'agent-1', nonce: 'n' }],
    ['keycloak refresh token (typ Refresh)', { profile: 'keycloak' }, 'JWT', { typ: 'Refresh', azp: 'agent-1' }],
    ['keycloak token without typ claim', { profile: 'keycloak' }, 'JWT', { azp: 'agent-1', scope: 'tools.read' }],
    ['auth0 ID token (no azp, nonce)', { profile: 'auth0' }, 'JWT', { nonce: 'n', sid: 's' }],
    ['hydra ID token (no client_id, at_hash)', { profile: 'hydra' }, 'JWT', { at_hash: 'h', sid: 's' }],
    ['hydra token with c_hash', { profile: 'hydra' }, 'JWT', { client_id: 'a', scp: [], c_hash: 'h' }],
    ['cognito ID token (token_use id)', { profile: 'cognito', audiences: ['app-client-1'] }, undefined, { aud: 'app-client-1', token_use: 'id', at_hash: 'h' }],
  ];
  test.each(cases)('%s → ERR_TOKEN_NOT_ACCESS_TOKEN', async (_name, settings, typ, claims) => {
    await expectCode(verifier(settings).verify(await mint(typ, claims)), 'ERR_TOKEN_NOT_ACCESS_TOKEN');
  });

  test('a keycloak access token (typ Bearer) passes the same guard', async () => {
    expect(await verifier({ profile: 'keycloak' }).verify(await mint('JWT', { typ: 'Bearer', azp: 'agent-1', scope: 'tools.read' }))).toMatchObject({ clientId: 'agent-1', scopes: ['tools.read'] });
  });

  test('the guard runs before the audience: an ID token is named as what it is', async () => {
    await expectCode(verifier({ profile: 'hydra' }).verify(await mint('JWT', { aud: ['agent-1'], at_hash: 'h' })), 'ERR_TOKEN_NOT_ACCESS_TOKEN');
  });

  test('the rfc9068 profile has no guard: typ at+jwt says it all', async () => {
    await expect(verifier({}).verify(await issuer.mint({ nonce: 'n' }))).resolves.toBeDefined();
  });
});

describe('config', () => {
  const base = (issuerYaml: string) =>
    `upstream: { url: "http://127.0.0.1:3000" }\nresource: { id: "${RESOURCE}" }\npolicy: { source: "${process.cwd()}/policies" }\noauth:\n  issuers:\n    - issuer: https://as.example.com\n${issuerYaml}`;

  test('a relaxed typ with a guard that checks nothing is refused at its path, with a fix', () => {
    let err: unknown;
    try {
      parseConfig(base('      profile: custom\n      typ: [JWT]\n'), 'agentward.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problem = (err as ConfigError).problems.find((p) => p.path === 'oauth.issuers[0].confusionGuard');
    expect(problem?.message).toContain('ID token of this issuer would pass');
    expect(problem?.fix).toContain('requireClientId');
  });

  test('switching a vendor guard off entirely is refused too', () => {
    expect(() => parseConfig(base('      profile: okta\n      confusionGuard: { requireClientId: false, requireScope: false }\n'), 'agentward.yaml')).toThrow(/confusionGuard/);
  });

  test('cognito without audiences is refused: the resource id is never a client id', () => {
    expect(() => parseConfig(base('      profile: cognito\n'), 'agentward.yaml')).toThrow(/oauth\.issuers\[0\]\.audiences: is required/);
  });

  test('an unknown profile is a schema error listing the profiles', () => {
    expect(() => parseConfig(base('      profile: azure\n'), 'agentward.yaml')).toThrow(/rfc9068, entra, okta, keycloak, auth0, hydra, cognito, custom/);
  });

  test('a relaxed profile is named as a relaxation; the strict default is not', () => {
    const relaxed = relaxations(parseConfig(base('      profile: entra\n'), 'agentward.yaml').config);
    expect(relaxed.join('\n')).toMatch(/oauth\.issuers\[0\] \(profile entra\) accepts JWT access tokens with typ at\+jwt, jwt, none/);
    expect(relaxations(parseConfig(base(''), 'agentward.yaml').config)).toEqual([]);
  });
});
