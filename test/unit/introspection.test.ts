/**
 * OAuth 2.0 Token Introspection (RFC 7662, RFC 9701; AT-N25..AT-N27, DP-N23 in docs/negative-cases.md) against a
 * real introspection endpoint on loopback that authenticates the client. Time is frozen through
 * the `now` option; every failure asserts its own code, and no error ever carries the token.
 */
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type CryptoKey } from 'jose';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { TokenIntrospector, type IntrospectionClientAuth, type TokenIntrospectorOptions } from '../../src/credentials/introspection.ts';
import { AgentwardError } from '../../src/errors.ts';
import { subjectInput } from '../../src/proxy/input.ts';
import { newKey, type TestKey } from '../helpers/issuer.ts';
import { startCountingServer, startIntrospectionServer, type ExpectedClientAuth, type IntrospectionServer } from '../helpers/introspection-server.ts';
import { expectCode } from '../helpers/expect-code.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const ISSUER = 'https://as.example.com';
const NOW_S = Date.UTC(2026, 0, 15, 12, 0, 0) / 1000;
const SKEW_S = 30;
const CLIENT_ID = 'agentward-rs';
/** A secret with the characters RFC 6749 §2.3.1 form-encoding exists for. */
const CLIENT_SECRET = 's3cr:t +/=%';
const JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const TIMEOUT_MS = 300;

// ---------------------------------------------------------------- harness

const dispatcher = new Agent({ connections: 8 });
afterAll(() => dispatcher.close());

const clock = { ms: NOW_S * 1000 };
const open: IntrospectionServer[] = [];
afterEach(async () => {
  clock.ms = NOW_S * 1000;
  await Promise.all(open.splice(0).map((s) => s.close()));
});

let tokenSeq = 0;
/** A fresh opaque token (unique per test, so caches never leak between tests). */
const opaque = (): string => `opaque-${++tokenSeq}-${Math.random().toString(36).slice(2)}`;

/** The answer an AS gives for an active token at the frozen time; `undefined` removes a member. */
function active(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const body: Record<string, unknown> = {
    active: true,
    iss: ISSUER,
    aud: RESOURCE,
    sub: 'user-42',
    client_id: 'research-bot',
    scope: 'tools.read tools.write',
    token_type: 'Bearer',
    iat: NOW_S - 10,
    exp: NOW_S + 300,
    ...extra,
  };
  for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
  return body;
}

interface Setup {
  server: IntrospectionServer;
  introspector: TokenIntrospector;
  /** Registers a token with its answer and returns it. */
  token(answer?: Record<string, unknown>): string;
}

async function setup(
  options: { auth?: ExpectedClientAuth; clientAuth?: IntrospectionClientAuth; overrides?: Partial<TokenIntrospectorOptions> } = {},
): Promise<Setup> {
  const server = await startIntrospectionServer({
    issuer: ISSUER,
    auth: options.auth ?? { method: 'client_secret_basic', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
    now: () => clock.ms,
  });
  open.push(server);
  const introspector = new TokenIntrospector({
    issuer: ISSUER,
    endpoint: server.endpoint,
    clientAuth: options.clientAuth ?? { method: 'client_secret_basic', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
    resourceId: RESOURCE,
    clockSkewSeconds: SKEW_S,
    maxDelegationDepth: 4,
    cache: { maxEntries: 100, maxTtlMs: 120_000, negativeTtlMs: 10_000 },
    timeoutMs: TIMEOUT_MS,
    dpopBinding: true,
    dispatcher,
    now: () => clock.ms,
    ...options.overrides,
  });
  return {
    server,
    introspector,
    token(answer = active()) {
      const t = opaque();
      server.tokens.set(t, answer);
      return t;
    },
  };
}


// ---------------------------------------------------------------- mapping

describe('active token', () => {
  test('maps the response to the VerifiedAccessToken shape', async () => {
    const s = await setup();
    const t = s.token(active({ amr: ['pwd', 'otp'], acr: 'urn:mace:incommon:iap:silver', auth_time: NOW_S - 60, authorization_details: [{ type: 'tool_call', tools: ['search'] }] }));
    const result = await s.introspector.introspect(t);
    expect(result).toMatchObject({
      issuer: ISSUER,
      scopes: ['tools.read', 'tools.write'],
      audiences: [RESOURCE],
      expiresAt: NOW_S + 300,
      kid: undefined,
      jkt: undefined,
      binding: 'bearer',
      delegation: { chain: [], depth: 0 },
    });
    expect(result.claims.sub).toBe('user-42');
    expect(result.claims.client_id).toBe('research-bot');
    expect(result.claims.authorization_details).toEqual([{ type: 'tool_call', tools: ['search'] }]);
    expect(result.hashPrefix).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(result.hashPrefix).not.toBe(t.slice(0, 16));
    expect(Object.isFrozen(result)).toBe(true);

    // RFC 7662 §2.1: POST, form-encoded, token and hint, authenticated; JSON asked for.
    const req = s.server.requests.at(-1)!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/oauth2/introspect'); // the token travels in the body only
    expect(req.form.get('token')).toBe(t);
    expect(req.form.get('token_type_hint')).toBe('access_token');
    expect(req.headers.accept).toBe('application/json');
  });

  test('aud as an array containing this resource is accepted; configured audiences replace the resource id', async () => {
    const s = await setup();
    const result = await s.introspector.introspect(s.token(active({ aud: ['https://other.example.com', RESOURCE] })));
    expect(result.audiences).toEqual(['https://other.example.com', RESOURCE]);

    const other = await setup({ overrides: { audiences: new Set(['urn:tools']) } });
    await expect(other.introspector.introspect(other.token(active({ aud: 'urn:tools' })))).resolves.toMatchObject({ audiences: ['urn:tools'] });
    await expectCode(other.introspector.introspect(other.token(active())), 'ERR_TOKEN_AUDIENCE');
  });

  test('a response without iss is taken as the configured issuer', async () => {
    const s = await setup();
    await expect(s.introspector.introspect(s.token(active({ iss: undefined })))).resolves.toMatchObject({ issuer: ISSUER });
  });

  test('without exp the result expires with the cache bound (now + maxTtl)', async () => {
    const s = await setup();
    const result = await s.introspector.introspect(s.token(active({ exp: undefined })));
    expect(result.expiresAt).toBe(NOW_S + 120);
  });

  test('act is flattened into the delegation chain (RFC 8693 §4.1)', async () => {
    const s = await setup();
    const result = await s.introspector.introspect(
      s.token(active({ act: { sub: 'https://service16.example.com', iss: ISSUER, act: { sub: 'https://service77.example.com' } } })),
    );
    expect(result.delegation.depth).toBe(2);
    expect(result.delegation.chain.map((a) => a.sub)).toEqual(['https://service16.example.com', 'https://service77.example.com']);
    expect(result.delegation.chain[0]!.iss).toBe(ISSUER);
  });
});

// ---------------------------------------------------------------- token failures

describe('token failures (401)', () => {
  test('AT-N25 active:false → ERR_TOKEN_INACTIVE', async () => {
    const s = await setup();
    const t = s.token({ active: false });
    const err = await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_INACTIVE', t);
    expect(err.status).toBe(401);
    expect(err.oauthError).toBe('invalid_token');
    // An unknown token is inactive too.
    await expectCode(s.introspector.introspect('never-issued'), 'ERR_TOKEN_INACTIVE', 'never-issued');
  });

  test('AT-N11/AT-N12 aud missing or another resource → ERR_TOKEN_AUDIENCE', async () => {
    const s = await setup();
    for (const aud of [undefined, 'https://other.example.com', ['https://a.example.com', 'https://b.example.com'], 'https://tools.example.com/MCP']) {
      const t = s.token(active({ aud }));
      await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_AUDIENCE', t);
    }
    await expectCode(s.introspector.introspect(s.token(active({ aud: 42 }))), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('AT-N10 iss of another issuer (incl. trailing slash) → ERR_TOKEN_ISSUER', async () => {
    const s = await setup();
    for (const iss of [`${ISSUER}/`, 'https://evil.example.com']) await expectCode(s.introspector.introspect(s.token(active({ iss }))), 'ERR_TOKEN_ISSUER');
  });

  test('AT-N15/AT-N16/AT-N17 the AS says active but time says otherwise', async () => {
    const s = await setup();
    const t = s.token(active({ exp: NOW_S - SKEW_S - 1 }));
    await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_EXPIRED', t);
    await expect(s.introspector.introspect(s.token(active({ exp: NOW_S - SKEW_S + 1 })))).resolves.toBeDefined();
    await expectCode(s.introspector.introspect(s.token(active({ nbf: NOW_S + SKEW_S + 5 }))), 'ERR_TOKEN_NOT_YET_VALID');
    await expectCode(s.introspector.introspect(s.token(active({ iat: NOW_S + SKEW_S + 5 }))), 'ERR_TOKEN_ISSUED_IN_FUTURE');
    await expectCode(s.introspector.introspect(s.token(active({ exp: '1700000000' }))), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('claims have the types policies rely on (same rules as the JWT path)', async () => {
    const s = await setup();
    const bad: Record<string, unknown>[] = [
      { scope: ['tools.read'] },
      { sub: 42 },
      { client_id: null },
      { acr: 2 },
      { username: {} },
      { auth_time: 'yesterday' },
      { amr: 'pwd' },
      { authorization_details: [{ tools: ['x'] }] },
      { authorization_details: { type: 'x' } },
      { act: { iss: ISSUER } },
      { iss: 7 },
    ];
    for (const extra of bad) await expectCode(s.introspector.introspect(s.token(active(extra))), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('authorization_details reach input.subject.authorizationDetails unchanged (RFC 9396 §9.2)', async () => {
    const s = await setup();
    const details = [
      {
        type: 'payment_initiation',
        actions: ['initiate'],
        locations: ['https://pay.example.com/payments'],
        instructedAmount: { currency: 'EUR', amount: '123.50' },
      },
      { type: 'Tool_Call', actions: ['create_issue'], identifier: 'acme/website' },
    ];
    const subject = subjectInput(await s.introspector.introspect(s.token(active({ authorization_details: details }))));
    expect(subject.format).toBe('opaque');
    expect(JSON.stringify(subject.authorizationDetails)).toBe(JSON.stringify(details));
    expect(subject.claims).not.toHaveProperty('authorization_details');
    expect(subjectInput(await s.introspector.introspect(s.token(active()))).authorizationDetails).toEqual([]);
  });

  test('RAR-N01: malformed authorization_details → 401 invalid_token, the same check and detail as a JWT', async () => {
    const s = await setup();
    for (const details of ['payment_initiation', null, [null], [{ type: 7 }], [{ type: 'a' }, ['b']]]) {
      const t = s.token(active({ authorization_details: details }));
      const err = await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_CLAIM_INVALID', t);
      expect(err).toMatchObject({ status: 401, oauthError: 'invalid_token', expose: true });
      expect(err.detail).toMatch(/authorization_details claim must be an (array|object with a string type) \(RFC 9396 section 2\)\.$/);
    }
    const t = s.token(active({ authorization_details: [{ type: 'a' }, { iban: 'DE02100100109307118603' }] }));
    const err = await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_CLAIM_INVALID', t);
    expect(err.detail).toBe('Element 1 of the authorization_details claim must be an object with a string type (RFC 9396 section 2).');
  });

  test('required claims and delegation depth', async () => {
    const s = await setup({ overrides: { requiredClaims: ['sub', 'client_id'], maxDelegationDepth: 1 } });
    await expectCode(s.introspector.introspect(s.token(active({ sub: undefined }))), 'ERR_TOKEN_CLAIM_MISSING');
    await expectCode(s.introspector.introspect(s.token(active({ act: { sub: 'a', act: { sub: 'b' } } }))), 'ERR_DELEGATION_TOO_DEEP');
  });
});

// ---------------------------------------------------------------- token kind (docs/issuers.md)

describe('the answer says the token is not an access token → ERR_TOKEN_NOT_ACCESS_TOKEN', () => {
  test.each([
    ['Ory Hydra refresh token', { token_use: 'refresh_token' }],
    ['Cognito-style ID token', { token_use: 'id' }],
    ['token_type refresh_token', { token_type: 'refresh_token' }],
    ['token_type RFC 8693 refresh token URI', { token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }],
    ['token_type RFC 8693 ID token URI', { token_type: 'urn:ietf:params:oauth:token-type:id_token' }],
    ['Keycloak refresh token', { typ: 'Refresh' }],
    ['Keycloak offline token', { typ: 'Offline' }],
    ['Keycloak ID token', { typ: 'ID' }],
  ])('%s', async (_name, members) => {
    const s = await setup();
    const t = s.token(active(members));
    const err = await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_NOT_ACCESS_TOKEN', t);
    expect(err.status).toBe(401);
    expect(err.oauthError).toBe('invalid_token');
  });

  test('access tokens by every vocabulary pass: token_use access_token (Hydra) or access, Keycloak typ Bearer', async () => {
    const s = await setup();
    for (const members of [{ token_use: 'access_token' }, { token_use: 'access' }, { typ: 'Bearer' }]) {
      await expect(s.introspector.introspect(s.token(active(members)))).resolves.toMatchObject({ clientId: 'research-bot', subject: 'user-42' });
    }
  });

  test('a token_use that is not a string is ERR_TOKEN_CLAIM_INVALID; an unknown one is not echoed', async () => {
    const s = await setup();
    await expectCode(s.introspector.introspect(s.token(active({ token_use: 1 }))), 'ERR_TOKEN_CLAIM_INVALID');
    const err = await expectCode(s.introspector.introspect(s.token(active({ token_use: '<b>x</b>' }))), 'ERR_TOKEN_NOT_ACCESS_TOKEN');
    expect(err.detail).not.toContain('<b>');
  });
});

// ---------------------------------------------------------------- binding

describe('key binding (RFC 9449 §6.2, RFC 7800)', () => {
  test('DP-N23 token_type Bearer with cnf.jkt → DPoP-bound', async () => {
    const s = await setup();
    const result = await s.introspector.introspect(s.token(active({ token_type: 'Bearer', cnf: { jkt: JKT } })));
    expect(result.jkt).toBe(JKT);
    expect(result.binding).toBe('dpop');
    expect(result.claims.cnf).toEqual({ jkt: JKT });
  });

  test('cnf x5t#S256 (RFC 8705 §3.2): the thumbprint is kept when certificates are checked, refused otherwise', async () => {
    const thumbprint = 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2';
    const withCerts = await setup({ overrides: { certificateBinding: true } });
    await expect(withCerts.introspector.introspect(withCerts.token(active({ cnf: { 'x5t#S256': thumbprint } })))).resolves.toMatchObject({ x5t: thumbprint, jkt: undefined });
    const without = await setup();
    await expectCode(without.introspector.introspect(without.token(active({ cnf: { 'x5t#S256': thumbprint } }))), 'ERR_TOKEN_BINDING_UNSUPPORTED');
  });

  test('token_type DPoP with cnf.jkt → DPoP-bound; without cnf.jkt → ERR_DPOP_TOKEN_NOT_BOUND', async () => {
    const s = await setup();
    await expect(s.introspector.introspect(s.token(active({ token_type: 'DPoP', cnf: { jkt: JKT } })))).resolves.toMatchObject({ jkt: JKT, binding: 'dpop' });
    await expectCode(s.introspector.introspect(s.token(active({ token_type: 'DPoP' }))), 'ERR_DPOP_TOKEN_NOT_BOUND');
  });

  test('AT-N24 a binding this resource cannot check is refused, never downgraded', async () => {
    const s = await setup();
    await expectCode(s.introspector.introspect(s.token(active({ cnf: { 'x5t#S256': JKT } }))), 'ERR_TOKEN_BINDING_UNSUPPORTED');
    await expectCode(s.introspector.introspect(s.token(active({ cnf: { jkt: JKT, kid: 'k1' } }))), 'ERR_TOKEN_BINDING_UNSUPPORTED');
    await expectCode(s.introspector.introspect(s.token(active({ token_type: 'mac' }))), 'ERR_TOKEN_BINDING_UNSUPPORTED');
    await expectCode(s.introspector.introspect(s.token(active({ cnf: { jkt: 'short' } }))), 'ERR_TOKEN_CLAIM_INVALID');
    await expectCode(s.introspector.introspect(s.token(active({ cnf: 'jkt' }))), 'ERR_TOKEN_CLAIM_INVALID');

    const noDpop = await setup({ overrides: { dpopBinding: false } });
    await expectCode(noDpop.introspector.introspect(noDpop.token(active({ cnf: { jkt: JKT } }))), 'ERR_TOKEN_BINDING_UNSUPPORTED');
  });
});

// ---------------------------------------------------------------- endpoint failures

describe('AT-N26 endpoint failures fail closed (503)', () => {
  const unavailable = async (s: Setup, token: string): Promise<void> => {
    const started = performance.now();
    const err = await expectCode(s.introspector.introspect(token), 'ERR_INTROSPECTION_UNAVAILABLE', token);
    expect(err.status).toBe(503);
    expect(err.expose).toBe(false);
    expect(err.oauthError).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + 700);
  };

  test('HTTP 500', async () => {
    const s = await setup();
    s.server.mode = 'error';
    await unavailable(s, s.token());
  });

  test('no answer within the deadline (headers, then body)', async () => {
    const s = await setup();
    s.server.mode = 'hang';
    await unavailable(s, s.token());
    s.server.mode = 'hang-body';
    await unavailable(s, s.token());
  });

  test('not JSON, or not JSON at all', async () => {
    const s = await setup();
    s.server.mode = 'not-json';
    await unavailable(s, s.token());
    s.server.mode = 'html';
    await unavailable(s, s.token());
  });

  test('a redirect, even to another origin, is never followed', async () => {
    const s = await setup();
    const elsewhere = await startCountingServer();
    try {
      s.server.mode = 'redirect';
      s.server.redirectTo = `${elsewhere.origin}/introspect`;
      await unavailable(s, s.token());
      expect(elsewhere.hits()).toBe(0);
    } finally {
      await elsewhere.close();
    }
  });

  test('an answer larger than the cap, declared or streamed', async () => {
    const s = await setup();
    s.server.mode = 'huge';
    await unavailable(s, s.token());
    s.server.mode = 'huge-declared';
    await unavailable(s, s.token());
  });

  test('the AS refuses our client credentials (RFC 7662 §2.3)', async () => {
    const s = await setup({ clientAuth: { method: 'client_secret_basic', clientId: CLIENT_ID, clientSecret: 'wrong' } });
    await unavailable(s, s.token());
    expect(s.server.authFailures()).toBe(1);
  });

  test('connection refused', async () => {
    const s = await setup();
    const endpoint = s.server.endpoint;
    await s.server.close();
    open.splice(open.indexOf(s.server), 1);
    const dead = new TokenIntrospector({
      issuer: ISSUER,
      endpoint,
      clientAuth: { method: 'client_secret_post', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
      resourceId: RESOURCE,
      clockSkewSeconds: SKEW_S,
      maxDelegationDepth: 4,
      cache: { maxEntries: 10, maxTtlMs: 1000, negativeTtlMs: 0 },
      timeoutMs: TIMEOUT_MS,
      dpopBinding: false,
      dispatcher,
    });
    await expectCode(dead.introspect('tok'), 'ERR_INTROSPECTION_UNAVAILABLE', 'tok');
  });

  test('a 200 whose active is not a boolean → ERR_INTROSPECTION_RESPONSE_INVALID, not cached', async () => {
    const s = await setup();
    for (const answer of [{ active: 'true', aud: RESOURCE }, { aud: RESOURCE }, { active: 1 }]) {
      const t = s.token(answer);
      const err = await expectCode(s.introspector.introspect(t), 'ERR_INTROSPECTION_RESPONSE_INVALID', t);
      expect(err.status).toBe(503);
    }
    const arr = s.token();
    s.server.tokens.set(arr, [active()] as unknown as Record<string, unknown>);
    await expectCode(s.introspector.introspect(arr), 'ERR_INTROSPECTION_RESPONSE_INVALID');
  });

  test('errors are never cached: the next call asks again and succeeds', async () => {
    const s = await setup();
    const t = s.token();
    s.server.mode = 'error';
    await expectCode(s.introspector.introspect(t), 'ERR_INTROSPECTION_UNAVAILABLE');
    s.server.mode = 'up';
    await expect(s.introspector.introspect(t)).resolves.toMatchObject({ issuer: ISSUER });
    expect(s.server.calls()).toBe(2);
  });
});

// ---------------------------------------------------------------- cache and single flight

describe('cache (RFC 7662 §4)', () => {
  test('a cached result is served without calling the AS', async () => {
    const s = await setup();
    const t = s.token();
    const first = await s.introspector.introspect(t);
    clock.ms += 60_000;
    expect(await s.introspector.introspect(t)).toBe(first);
    expect(s.server.calls()).toBe(1);
  });

  test('AT-N27 never cached past exp, even within the clock skew', async () => {
    const s = await setup();
    const t = s.token(active({ exp: NOW_S + 60 }));
    await s.introspector.introspect(t);
    clock.ms = (NOW_S + 59) * 1000;
    await s.introspector.introspect(t);
    expect(s.server.calls()).toBe(1);
    // The AS has since forgotten the token; at exp the cache must ask again.
    s.server.tokens.set(t, { active: false });
    clock.ms = (NOW_S + 60) * 1000;
    await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_INACTIVE');
    expect(s.server.calls()).toBe(2);
  });

  test('never cached past maxTtl (the revocation window)', async () => {
    const s = await setup({ overrides: { cache: { maxEntries: 10, maxTtlMs: 5_000, negativeTtlMs: 0 } } });
    const t = s.token();
    await s.introspector.introspect(t);
    s.server.tokens.set(t, { active: false }); // revoked
    clock.ms += 4_999;
    await s.introspector.introspect(t);
    clock.ms += 1;
    await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_INACTIVE');
    expect(s.server.calls()).toBe(2);
  });

  test('inactive answers are cached for negativeTtl only', async () => {
    const s = await setup();
    const t = s.token({ active: false });
    await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_INACTIVE');
    clock.ms += 9_999;
    await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_INACTIVE');
    expect(s.server.calls()).toBe(1);
    clock.ms += 1;
    s.server.tokens.set(t, active({ exp: NOW_S + 300 }));
    await expect(s.introspector.introspect(t)).resolves.toMatchObject({ issuer: ISSUER });
    expect(s.server.calls()).toBe(2);
  });

  test('rejected active answers (wrong audience) are not cached', async () => {
    const s = await setup();
    const t = s.token(active({ aud: 'https://other.example.com' }));
    await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_AUDIENCE');
    await expectCode(s.introspector.introspect(t), 'ERR_TOKEN_AUDIENCE');
    expect(s.server.calls()).toBe(2);
  });

  test('maxEntries 0 disables the cache; clear() forgets', async () => {
    const off = await setup({ overrides: { cache: { maxEntries: 0, maxTtlMs: 60_000, negativeTtlMs: 60_000 } } });
    const t = off.token();
    await off.introspector.introspect(t);
    await off.introspector.introspect(t);
    expect(off.server.calls()).toBe(2);

    const on = await setup();
    const u = on.token();
    await on.introspector.introspect(u);
    on.introspector.clear();
    await on.introspector.introspect(u);
    expect(on.server.calls()).toBe(2);
  });

  test('single flight: 5 concurrent introspections of one token → 1 call, same result', async () => {
    const s = await setup();
    s.server.delayMs = 50;
    const t = s.token();
    const results = await Promise.all(Array.from({ length: 5 }, () => s.introspector.introspect(t)));
    expect(s.server.calls()).toBe(1);
    for (const r of results) expect(r).toBe(results[0]);
    // Different tokens do not share a flight.
    await Promise.all([s.introspector.introspect(s.token()), s.introspector.introspect(s.token())]);
    expect(s.server.calls()).toBe(3);
  });

  test('single flight shares a failure too, and the next call tries again', async () => {
    const s = await setup();
    s.server.delayMs = 50;
    s.server.mode = 'error';
    const t = s.token();
    const settled = await Promise.allSettled(Array.from({ length: 5 }, () => s.introspector.introspect(t)));
    expect(settled.every((r) => r.status === 'rejected' && (r.reason as AgentwardError).code === ('ERR_INTROSPECTION_UNAVAILABLE' as string))).toBe(true);
    expect(s.server.calls()).toBe(1);
    s.server.mode = 'up';
    await s.introspector.introspect(t);
    expect(s.server.calls()).toBe(2);
  });
});

// ---------------------------------------------------------------- client authentication

describe('client authentication (RFC 7662 §2.1)', () => {
  test('client_secret_basic: form-encoded id and secret in Basic (RFC 6749 §2.3.1)', async () => {
    const s = await setup();
    await s.introspector.introspect(s.token());
    expect(s.server.authFailures()).toBe(0);
    const req = s.server.requests.at(-1)!;
    expect(req.headers.authorization).toMatch(/^Basic /);
    expect(req.form.has('client_secret')).toBe(false);
  });

  test('client_secret_post: id and secret in the body, no Authorization', async () => {
    const auth = { method: 'client_secret_post', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET } as const;
    const s = await setup({ auth, clientAuth: auth });
    await s.introspector.introspect(s.token());
    const req = s.server.requests.at(-1)!;
    expect(req.headers.authorization).toBeUndefined();
    expect(req.form.get('client_secret')).toBe(CLIENT_SECRET);
  });

  describe('private_key_jwt (RFC 7523 §3)', () => {
    let key: TestKey;
    beforeAll(async () => {
      key = await newKey('ES256', 'rs-key-1');
    });

    test('assertion: iss = sub = client id, aud = issuer, unique jti, short exp', async () => {
      const s = await setup({
        auth: { method: 'private_key_jwt', clientId: CLIENT_ID, publicKey: (await importJWK(key.publicJwk, key.alg)) as CryptoKey, audience: ISSUER },
        clientAuth: { method: 'private_key_jwt', clientId: CLIENT_ID, privateKey: key.privateKey, alg: 'ES256', kid: key.kid },
      });
      await s.introspector.introspect(s.token());
      await s.introspector.introspect(s.token());
      expect(s.server.authFailures()).toBe(0);
      const [a, b] = s.server.requests.map((r) => r.assertion!);
      expect(a).toMatchObject({ iss: CLIENT_ID, sub: CLIENT_ID, aud: ISSUER, iat: NOW_S });
      expect(a!.exp! - a!.iat!).toBeLessThanOrEqual(60);
      expect(a!.jti).not.toBe(b!.jti);
      expect(s.server.requests[0]!.headers.authorization).toBeUndefined();
    });

    test('a private JWK works, and audience "endpoint" sends the endpoint URL', async () => {
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
      const jwk = { ...(await exportJWK(privateKey)), kid: 'ed-1' };
      const endpointAudience = await startIntrospectionServerExpectingEndpoint(publicKey);
      open.push(endpointAudience);
      const t = opaque();
      endpointAudience.tokens.set(t, active());
      const introspector = new TokenIntrospector({
        issuer: ISSUER,
        endpoint: endpointAudience.endpoint,
        clientAuth: { method: 'private_key_jwt', clientId: CLIENT_ID, privateKey: jwk, alg: 'EdDSA', audience: 'endpoint' },
        resourceId: RESOURCE,
        clockSkewSeconds: SKEW_S,
        maxDelegationDepth: 4,
        cache: { maxEntries: 10, maxTtlMs: 60_000, negativeTtlMs: 0 },
        timeoutMs: TIMEOUT_MS,
        dpopBinding: false,
        dispatcher,
        now: () => clock.ms,
      });
      await introspector.introspect(t);
      expect(endpointAudience.authFailures()).toBe(0);
      expect(endpointAudience.requests[0]!.assertion).toMatchObject({ aud: endpointAudience.endpoint });
    });

    test('refuses a public key or a symmetric algorithm at construction', () => {
      const base = { issuer: ISSUER, endpoint: 'https://as.example.com/introspect', resourceId: RESOURCE, clockSkewSeconds: 0, maxDelegationDepth: 1, cache: { maxEntries: 0, maxTtlMs: 0, negativeTtlMs: 0 }, timeoutMs: 100, dpopBinding: false };
      expect(() => new TokenIntrospector({ ...base, clientAuth: { method: 'private_key_jwt', clientId: 'x', privateKey: key.publicJwk, alg: 'ES256' } })).toThrow(TypeError);
      expect(() => new TokenIntrospector({ ...base, clientAuth: { method: 'private_key_jwt', clientId: 'x', privateKey: key.privateKey, alg: 'HS256' } })).toThrow(TypeError);
      expect(() => new TokenIntrospector({ ...base, clientAuth: { method: 'client_secret_basic', clientId: 'x', clientSecret: 'y' }, responseFormat: 'jwt' })).toThrow(TypeError);
    });
  });
});

/** A private_key_jwt server that expects its own endpoint URL as the assertion audience. */
async function startIntrospectionServerExpectingEndpoint(publicKey: CryptoKey): Promise<IntrospectionServer> {
  // The port is only known once listening, so the expected audience is resolved lazily.
  const auth = { method: 'private_key_jwt' as const, clientId: CLIENT_ID, publicKey, audience: '' };
  const server = await startIntrospectionServer({ issuer: ISSUER, auth, now: () => clock.ms });
  auth.audience = server.endpoint;
  return server;
}

// ---------------------------------------------------------------- RFC 9701 signed responses

describe('RFC 9701 signed (JWT) responses', () => {
  let asKey: TestKey;
  let otherKey: TestKey;
  beforeAll(async () => {
    asKey = await newKey('ES256', 'as-1');
    otherKey = await newKey('ES256', 'as-1'); // same kid, different key: a forged signature
  });

  const jwtSetup = async (overrides: Partial<TokenIntrospectorOptions> = {}): Promise<Setup> => {
    const s = await setup({ overrides: { responseFormat: 'jwt', responseKeys: createLocalJWKSet({ keys: [asKey.publicJwk] }), ...overrides } });
    s.server.signed = { key: asKey };
    return s;
  };

  test('a good signature is verified and the members under token_introspection are used', async () => {
    const s = await jwtSetup();
    const t = s.token(active({ cnf: { jkt: JKT } }));
    const result = await s.introspector.introspect(t);
    expect(result).toMatchObject({ issuer: ISSUER, jkt: JKT, audiences: [RESOURCE] });
    expect(result.claims.token_introspection).toBeUndefined();
    expect(s.server.requests.at(-1)!.headers.accept).toBe('application/token-introspection+jwt');
  });

  test('active:false inside a signed response → ERR_TOKEN_INACTIVE', async () => {
    const s = await jwtSetup();
    await expectCode(s.introspector.introspect(s.token({ active: false })), 'ERR_TOKEN_INACTIVE');
  });

  test('bad signature, wrong typ, wrong aud, wrong iss, stale iat, disallowed alg → ERR_INTROSPECTION_RESPONSE_INVALID', async () => {
    const s = await jwtSetup();
    const cases: [string, NonNullable<IntrospectionServer['signed']>][] = [
      ['bad signature', { key: otherKey }],
      ['wrong typ', { key: asKey, typ: 'JWT' }],
      ['access-token typ', { key: asKey, typ: 'at+jwt' }],
      ['wrong aud', { key: asKey, aud: 'another-rs' }],
      ['wrong iss', { key: asKey, iss: 'https://evil.example.com' }],
      ['stale iat (a replayed answer)', { key: asKey, iat: NOW_S - SKEW_S - 120 }],
      ['future iat', { key: asKey, iat: NOW_S + SKEW_S + 120 }],
      ['members not under token_introspection', { key: asKey, wrap: false }],
      ['not a JWT', { key: asKey, raw: 'not.a.jwt' }],
      ['unsigned (alg none)', { key: asKey, raw: `${Buffer.from('{"alg":"none","typ":"token-introspection+jwt"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: ISSUER, aud: CLIENT_ID, iat: NOW_S, token_introspection: active() })).toString('base64url')}.` }],
    ];
    for (const [name, signed] of cases) {
      s.server.signed = signed;
      const t = s.token();
      const err = await expectCode(s.introspector.introspect(t), 'ERR_INTROSPECTION_RESPONSE_INVALID', t);
      expect(err.status, name).toBe(503);
    }
    const es384 = await jwtSetup({ responseAlgorithms: ['RS256'] });
    await expectCode(es384.introspector.introspect(es384.token()), 'ERR_INTROSPECTION_RESPONSE_INVALID');
  });

  test('an unsigned JSON answer when a signed one was asked for is refused (no downgrade)', async () => {
    const s = await jwtSetup();
    s.server.signed = undefined;
    await expectCode(s.introspector.introspect(s.token()), 'ERR_INTROSPECTION_UNAVAILABLE');
    s.server.signed = { key: asKey, contentType: 'application/jwt' };
    await expectCode(s.introspector.introspect(s.token()), 'ERR_INTROSPECTION_UNAVAILABLE');
  });

  test('the key resolver failing with a 5xx code passes through (keys unavailable)', async () => {
    const s = await jwtSetup({
      responseKeys: async () => {
        throw new AgentwardError('ERR_KEYS_UNAVAILABLE');
      },
    });
    await expectCode(s.introspector.introspect(s.token()), 'ERR_KEYS_UNAVAILABLE');
  });
});
