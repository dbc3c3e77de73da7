/**
 * The decision contract (docs/policy-guide.md "The decision"): `true`/`false` or an object with only the documented keys.
 * Anything else is malformed and must deny with ERR_POLICY_DECISION_INVALID (fail closed,
 * conventions §9), never be half-applied.
 */
import { describe, expect, test } from 'vitest';
import { parseDecision } from '../../src/policy/decision.ts';
import { AgentwardError } from '../../src/errors.ts';
import { CREDENTIAL_HEADERS } from '../../src/identity/credential-headers.ts';

/** Asserts `value` is refused as a malformed decision, and returns the internal reason (the cause). */
function expectInvalid(value: unknown): string {
  let caught: unknown;
  try {
    parseDecision(value);
  } catch (err) {
    caught = err;
  }
  expect(caught, `accepted ${JSON.stringify(value)}`).toBeInstanceOf(AgentwardError);
  const err = caught as AgentwardError;
  expect(err.code).toBe('ERR_POLICY_DECISION_INVALID');
  expect(err.status).toBe(500);
  // 5xx: the client never sees why; the reason is kept for logs in `cause`.
  expect(err.expose).toBe(false);
  expect(err.cause).toBeInstanceOf(Error);
  return (err.cause as Error).message;
}

describe('booleans', () => {
  test('true is a bare allow', () => {
    expect(parseDecision(true)).toEqual({ allow: true, reason: undefined, status: undefined, requiredScopes: [], stepUp: undefined, headers: {} });
  });
  test('false is a bare deny', () => {
    expect(parseDecision(false)).toEqual({ allow: false, reason: undefined, status: undefined, requiredScopes: [], stepUp: undefined, headers: {} });
  });
});

describe('valid objects', () => {
  test('every field of a deny', () => {
    const d = parseDecision({
      allow: false,
      reason: 'create_issue needs scope tools.write',
      status: 403,
      requiredScopes: ['tools.write', 'repo:admin'],
      stepUp: { acrValues: 'urn:mace:incommon:iap:silver mfa', maxAge: 300 },
    });
    expect(d).toEqual({
      allow: false,
      reason: 'create_issue needs scope tools.write',
      status: 403,
      requiredScopes: ['tools.write', 'repo:admin'],
      stepUp: { acrValues: 'urn:mace:incommon:iap:silver mfa', maxAge: 300 },
      headers: {},
    });
  });

  test('an allow with headers: names are lower-cased, values kept', () => {
    const d = parseDecision({ allow: true, reason: 'ok', headers: { 'X-Agent-Tier': 'gold', 'x-empty': '', 'X-Tab': 'a\tb' } });
    expect(d.allow).toBe(true);
    expect(d.headers).toEqual({ 'x-agent-tier': 'gold', 'x-empty': '', 'x-tab': 'a\tb' });
  });

  test.each([403, 404] as const)('status %i is accepted', (status) => {
    expect(parseDecision({ allow: false, status }).status).toBe(status);
  });

  test('stepUp with only maxAge 0, or only acrValues', () => {
    expect(parseDecision({ allow: false, stepUp: { maxAge: 0 } }).stepUp).toEqual({ acrValues: undefined, maxAge: 0 });
    expect(parseDecision({ allow: false, stepUp: { acrValues: 'mfa' } }).stepUp).toEqual({ acrValues: 'mfa', maxAge: undefined });
  });

  test('reason of exactly 1024 characters is accepted', () => {
    expect(parseDecision({ allow: false, reason: 'r'.repeat(1024) }).reason).toHaveLength(1024);
  });
});

describe('malformed decisions deny with ERR_POLICY_DECISION_INVALID', () => {
  test.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 1],
    ['a string', 'allow'],
    ['an array', [true]],
  ])('not a boolean or object: %s', (_name, value) => {
    expectInvalid(value);
  });

  test('unknown key', () => {
    expect(expectInvalid({ allow: true, alow: true })).toContain('unknown key "alow"');
  });

  test.each([['missing', {}], ['a string', { allow: 'true' }], ['a number', { allow: 1 }], ['null', { allow: null }]])('allow %s', (_name, value) => {
    expect(expectInvalid(value)).toContain('"allow" must be a boolean');
  });

  test('reason too long or not a string', () => {
    expect(expectInvalid({ allow: false, reason: 'r'.repeat(1025) })).toContain('"reason"');
    expect(expectInvalid({ allow: false, reason: 42 })).toContain('"reason"');
  });

  test.each([500, 200, 302, 401, '403', 403.5])('status %s (401 is asked for with stepUp)', (status) => {
    expect(expectInvalid({ allow: false, status })).toContain('"status" must be 403 or 404');
  });

  test.each([
    ['a space', ['tools.read tools.write']],
    ['a double quote', ['tools"read']],
    ['a backslash', ['tools\\read']],
    ['an empty scope', ['']],
    ['a non-ASCII character', ['tools.lé']],
    ['a non-string', [42]],
    ['not an array', 'tools.read'],
  ])('requiredScopes with %s', (_name, requiredScopes) => {
    expect(expectInvalid({ allow: false, requiredScopes })).toContain('"requiredScopes"');
  });

  test('stepUp empty', () => {
    expect(expectInvalid({ allow: false, stepUp: {} })).toContain('needs acrValues or maxAge');
  });

  test('stepUp not an object', () => {
    for (const stepUp of [null, 'mfa', ['mfa'], 300]) expect(expectInvalid({ allow: false, stepUp })).toContain('"stepUp" must be an object');
  });

  test('stepUp unknown key', () => {
    expect(expectInvalid({ allow: false, stepUp: { acrValues: 'mfa', max_age: 300 } })).toContain('unknown key "stepUp.max_age"');
  });

  test.each([-1, 1.5, '300', Number.NaN])('stepUp.maxAge %s', (maxAge) => {
    expect(expectInvalid({ allow: false, stepUp: { maxAge } })).toContain('"stepUp.maxAge"');
  });

  test.each([
    ['empty', ''],
    ['a double quote', 'mf"a'],
    ['a backslash', 'mf\\a'],
    ['two spaces', 'mfa  hwk'],
    ['a leading space', ' mfa'],
    ['a trailing space', 'mfa '],
    ['a newline', 'mfa\nhwk'],
    ['a number', 2],
  ])('stepUp.acrValues with %s', (_name, acrValues) => {
    expect(expectInvalid({ allow: false, stepUp: { acrValues } })).toContain('"stepUp.acrValues"');
  });

  test.each([...CREDENTIAL_HEADERS, 'Authorization', 'AUTHORIZATION', 'Host', 'content-length', 'Transfer-Encoding', 'Connection', 'X-Forwarded-For', 'Forwarded'])(
    'headers naming %s',
    (name) => {
      expect(expectInvalid({ allow: true, headers: { [name]: 'x' } })).toContain(`header "${name}" cannot be set by a policy`);
    },
  );

  test('header name that is not an RFC 9110 token', () => {
    expect(expectInvalid({ allow: true, headers: { 'X Agent': 'x' } })).toContain('cannot be set by a policy');
    expect(expectInvalid({ allow: true, headers: { 'X-Agent:': 'x' } })).toContain('cannot be set by a policy');
  });

  test.each([
    ['CR', 'gold\rX-Injected: 1'],
    ['LF', 'gold\nX-Injected: 1'],
    ['CRLF', 'gold\r\nX-Injected: 1'],
    ['NUL', 'gold\0'],
    ['non-ASCII', 'göld'],
    ['a number', 1],
  ])('header value with %s', (_name, value) => {
    expect(expectInvalid({ allow: true, headers: { 'X-Agent-Tier': value } })).toContain('must have a visible-ASCII string value');
  });

  test('headers not an object', () => {
    for (const headers of [null, ['X-A'], 'X-A: 1']) expect(expectInvalid({ allow: true, headers })).toContain('"headers" must be an object');
  });

  test('allow:true with requiredScopes or stepUp', () => {
    expect(expectInvalid({ allow: true, requiredScopes: ['tools.write'] })).toContain('an allow cannot carry requiredScopes or stepUp');
    expect(expectInvalid({ allow: true, stepUp: { maxAge: 60 } })).toContain('an allow cannot carry requiredScopes or stepUp');
  });
});

describe('scopes and context (the Txn-Token minted for the upstream, forward.txnToken)', () => {
  test('an allow may list the scopes the request may use upstream and add to tctx', () => {
    const d = parseDecision({ allow: true, scopes: ['tools.read'], context: { tool: 'create_issue', limits: { max: 3 } } });
    expect(d.scopes).toEqual(['tools.read']);
    expect(d.context).toEqual({ tool: 'create_issue', limits: { max: 3 } });
    expect(parseDecision({ allow: true })).toMatchObject({ scopes: undefined, context: undefined });
  });

  test.each([
    ['scopes not scope tokens', { scopes: ['a b'] }, '"scopes"'],
    ['scopes not an array', { scopes: 'tools.read' }, '"scopes"'],
    ['context not an object', { context: ['x'] }, '"context" must be an object'],
    ['context null', { context: null }, '"context" must be an object'],
    ['context setting method', { context: { method: 'DELETE' } }, '"context.method" is set by agentward'],
    ['context setting path', { context: { path: '/admin' } }, '"context.path" is set by agentward'],
    ['context over 4096 bytes', { context: { blob: 'x'.repeat(4096) } }, 'at most 4096 bytes'],
  ])('%s is malformed', (_name, fields, message) => {
    expect(expectInvalid({ allow: true, ...fields })).toContain(message);
  });
});
