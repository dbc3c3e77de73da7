/**
 * What the upstream sees (RFC 9700 §4.13; MCP "Token Handling"): consumed credentials
 * removed, forwarding headers rebuilt from facts the proxy knows, caller-sent copies of identity
 * headers removed even when the proxy has nothing to put there.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, test } from 'vitest';
import { rewriteUpstreamHeaders, upstreamHeaderPlan, type UpstreamFacts, type UpstreamHeaderPlan, type UpstreamHeaderSettings } from '../../src/proxy/headers.ts';
import { CREDENTIAL_HEADERS } from '../../src/identity/credential-headers.ts';
import type { PolicyInput, SubjectInput } from '../../src/policy/input.ts';

function subject(overrides: Partial<SubjectInput> = {}): SubjectInput {
  return {
    iss: 'https://as.example.com',
    sub: 'user-42',
    clientId: 'research-bot',
    scopes: ['tools.read', 'tools.write'],
    aud: ['https://tools.example.com/mcp'],
    acr: null,
    amr: ['pwd', 'otp'],
    authTime: 1764460000,
    authorizationDetails: [],
    jti: 'jti-1',
    expiresAt: 1764461100,
    format: 'jwt',
    binding: 'bearer',
    mayAct: null,
    claims: {},
    ...overrides,
  };
}

function input(sub: SubjectInput | null = subject(), chain: { sub: string; iss: string | null }[] = []): PolicyInput {
  return {
    version: 1,
    now: 1764460800,
    request: { id: 'req-1', method: 'GET', scheme: 'https', host: 'tools.example.com', path: '/mcp', query: {}, headers: {}, clientCertificate: null, methodOverride: null },
    resource: { id: 'https://tools.example.com/mcp' },
    agent: null,
    subject: sub,
    delegation: { chain: chain.map((a) => ({ ...a, claims: {} })), depth: chain.length },
    txn: null,
    mcp: null,
    a2a: null,
    credentials: { presented: ['access_token'] },
  };
}

function plan(overrides: Partial<UpstreamHeaderSettings> = {}): UpstreamHeaderPlan {
  return upstreamHeaderPlan({ stripCredentials: true, identityHeaders: new Map(), requestIdHeader: 'x-request-id', txnToken: false, ...overrides });
}

function facts(overrides: Partial<UpstreamFacts> = {}): UpstreamFacts {
  return { requestId: 'req-1', remoteAddress: '10.0.0.7', proto: 'http', input: input(), decisionHeaders: {}, txnToken: undefined, ...overrides };
}

function rewrite(headers: IncomingHttpHeaders, p = plan(), f = facts()): IncomingHttpHeaders {
  return rewriteUpstreamHeaders(headers, p, f);
}

function withCredentials(): IncomingHttpHeaders {
  return Object.fromEntries(CREDENTIAL_HEADERS.map((name) => [name, `value-of-${name}`]));
}

describe('credentials', () => {
  test('every credential header is removed when stripCredentials is on', () => {
    const h = rewrite({ ...withCredentials(), accept: 'application/json' });
    for (const name of CREDENTIAL_HEADERS) expect(h, name).not.toHaveProperty(name);
    expect(h.accept).toBe('application/json');
  });

  test('credential headers are kept when stripCredentials is off', () => {
    const h = rewrite(withCredentials(), plan({ stripCredentials: false }));
    for (const name of CREDENTIAL_HEADERS) expect(h[name], name).toBe(`value-of-${name}`);
  });
});

describe('forwarding headers', () => {
  test('inbound X-Forwarded-*, Forwarded and X-Real-IP are replaced by facts', () => {
    const h = rewrite({
      'x-forwarded-for': '1.2.3.4',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-port': '443',
      forwarded: 'for=1.2.3.4;host=evil.example',
      'x-real-ip': '1.2.3.4',
    });
    expect(h['x-forwarded-for']).toBe('10.0.0.7');
    expect(h.forwarded).toBe('for=10.0.0.7;proto=http');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h).not.toHaveProperty('x-forwarded-host');
    expect(h).not.toHaveProperty('x-forwarded-port');
    expect(h).not.toHaveProperty('x-real-ip');
  });

  test('IPv6: quoted and bracketed in Forwarded (RFC 7239 §6)', () => {
    const h = rewrite({}, plan(), facts({ remoteAddress: '2001:db8::17', proto: 'https' }));
    expect(h.forwarded).toBe('for="[2001:db8::17]";proto=https');
    expect(h['x-forwarded-for']).toBe('2001:db8::17');
  });

  test('IPv4-mapped IPv6 is written as the IPv4 address', () => {
    const h = rewrite({}, plan(), facts({ remoteAddress: '::ffff:192.0.2.9' }));
    expect(h.forwarded).toBe('for=192.0.2.9;proto=http');
  });

  test('no remote address (socket gone): no for=, spoofed values still removed', () => {
    const h = rewrite({ 'x-forwarded-for': '1.2.3.4', forwarded: 'for=1.2.3.4' }, plan(), facts({ remoteAddress: undefined }));
    expect(h).not.toHaveProperty('x-forwarded-for');
    expect(h).not.toHaveProperty('forwarded');
    expect(h['x-forwarded-proto']).toBe('http');
  });
});

describe('identity headers', () => {
  const identity = new Map([
    ['x-agent-id', 'subject.clientId'],
    ['x-user', 'subject.sub'],
    ['x-scopes', 'subject.scopes'],
    ['x-amr', 'subject.amr'],
    ['x-auth-time', 'subject.authTime'],
    ['x-acr', 'subject.acr'],
    ['x-actor', 'delegation.chain.0.sub'],
    ['x-depth', 'delegation.depth'],
  ]);

  test('set from the input: scalars as text, arrays joined by a space', () => {
    const h = rewrite({}, plan({ identityHeaders: identity }), facts({ input: input(subject(), [{ sub: 'planner', iss: null }]) }));
    expect(h['x-agent-id']).toBe('research-bot');
    expect(h['x-user']).toBe('user-42');
    expect(h['x-scopes']).toBe('tools.read tools.write');
    expect(h['x-amr']).toBe('pwd otp');
    expect(h['x-auth-time']).toBe('1764460000');
    expect(h['x-actor']).toBe('planner');
    expect(h['x-depth']).toBe('1');
  });

  test('caller-sent copies are removed even when the value is absent', () => {
    const spoofed = Object.fromEntries([...identity.keys()].map((k) => [k, 'spoofed']));
    // No subject (null), acr null, no delegation: nothing to set, yet every copy must go.
    const h = rewrite({ ...spoofed }, plan({ identityHeaders: identity }), facts({ input: input(null) }));
    for (const name of identity.keys()) {
      if (name === 'x-depth') expect(h[name]).toBe('0');
      else expect(h, name).not.toHaveProperty(name);
    }
  });

  test('a null claim (acr) removes the caller copy and sets nothing', () => {
    const h = rewrite({ 'x-acr': 'phr' }, plan({ identityHeaders: identity }));
    expect(h).not.toHaveProperty('x-acr');
  });

  test('non-ASCII and control characters are percent-encoded', () => {
    const h = rewrite({}, plan({ identityHeaders: identity }), facts({ input: input(subject({ sub: 'jürgen@example.com', clientId: 'bot\r\nX-Injected: 1' })) }));
    expect(h['x-user']).toBe('j%C3%BCrgen%40example.com');
    expect(h['x-agent-id']).toBe('bot%0D%0AX-Injected%3A%201');
    expect(h).not.toHaveProperty('x-injected');
  });

  test('two different claims never produce the same header value', () => {
    // "jürgen" is percent-encoded; a sub that is literally "j%C3%BCrgen" is visible ASCII and
    // sent as is, so the upstream could not tell the two users apart.
    const value = (sub: string) => rewrite({}, plan({ identityHeaders: identity }), facts({ input: input(subject({ sub })) }))['x-user'];
    expect(value('j%C3%BCrgen')).not.toBe(value('jürgen'));
  });

  test('a claim with a lone UTF-16 surrogate (valid JSON "\\ud800") does not throw', () => {
    // JSON.parse('"\\ud800"') yields a lone surrogate; encodeURIComponent throws URIError on it.
    const sub = JSON.parse('"user-\\ud800"') as string;
    let headers: IncomingHttpHeaders = { 'x-user': 'spoofed' };
    expect(() => (headers = rewriteUpstreamHeaders(headers, plan({ identityHeaders: identity }), facts({ input: input(subject({ sub })) })))).not.toThrow();
    expect(headers['x-user']).toMatch(/^user-%[0-9A-F]{2}/);
    expect(headers['x-user']).toMatch(/^[\x21-\x7e]+$/);
  });
});

describe('decision headers and request id', () => {
  test('decision headers are set, replacing caller copies', () => {
    const h = rewrite({ 'x-agent-tier': 'platinum' }, plan(), facts({ decisionHeaders: { 'x-agent-tier': 'gold', 'x-policy': 'v2' } }));
    expect(h['x-agent-tier']).toBe('gold');
    expect(h['x-policy']).toBe('v2');
  });

  test('the request id header carries our id, not the caller’s', () => {
    const h = rewrite({ 'x-correlation': 'caller' }, plan({ requestIdHeader: 'x-correlation' }), facts({ requestId: 'req-77' }));
    expect(h['x-correlation']).toBe('req-77');
  });

  test('method override headers the input says were stripped are removed; forwarded ones are kept', () => {
    const stripped = input();
    stripped.request.methodOverride = { action: 'stripped', fields: [{ source: 'header', name: 'x-http-method-override', value: 'DELETE' }, { source: 'query', name: '_method', value: 'PUT' }] };
    const h = rewrite({ 'x-http-method-override': 'DELETE', 'x-http-method': 'GET' }, plan(), facts({ input: stripped }));
    expect(h['x-http-method-override']).toBeUndefined();
    // Only what the policy was told was stripped is stripped (the screen names every override header).
    expect(h['x-http-method']).toBe('GET');
    const forwarded = input();
    forwarded.request.methodOverride = { action: 'forwarded', fields: [{ source: 'header', name: 'x-http-method-override', value: 'DELETE' }] };
    expect(rewrite({ 'x-http-method-override': 'DELETE' }, plan(), facts({ input: forwarded }))['x-http-method-override']).toBe('DELETE');
  });

  test('other headers pass untouched', () => {
    const h = rewrite({ accept: 'text/event-stream', 'content-type': 'application/json', 'mcp-session-id': 's1' });
    expect(h).toMatchObject({ accept: 'text/event-stream', 'content-type': 'application/json', 'mcp-session-id': 's1' });
  });
});

describe('the Txn-Token for the upstream (forward.txnToken)', () => {
  test('replaces a caller copy, even with stripCredentials off', () => {
    const h = rewrite({ 'txn-token': 'caller.forged.token' }, plan({ txnToken: true, stripCredentials: false }), facts({ txnToken: 'minted.by.agentward' }));
    expect(h['txn-token']).toBe('minted.by.agentward');
  });

  test('without the plan, a caller copy passes only as stripCredentials decides', () => {
    expect(rewrite({ 'txn-token': 'a.b.c' }, plan({ stripCredentials: false }))['txn-token']).toBe('a.b.c');
    expect(rewrite({ 'txn-token': 'a.b.c' })['txn-token']).toBeUndefined();
  });
});
