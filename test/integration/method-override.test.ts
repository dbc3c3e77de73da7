/**
 * Method override fields through the real proxy (issue 13 item 1): a read-only token's `GET`
 * with `X-HTTP-Method-Override: DELETE` (or `X-HTTP-Method`, `X-Method-Override`, any case, or
 * `?_method=DELETE`) must not become a `DELETE` the policy never decided on. One proxy per
 * `forward.methodOverride` mode: `reject` (default) refuses with 400 ERR_METHOD_OVERRIDE, `strip`
 * removes the fields before the policy and the upstream, `pass` forwards them and shows them to
 * the policy (which here denies an override to a write).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { join } from 'node:path';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { DEFAULT_POLICY, REPO, startAgentward, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';

const RESOURCE = 'https://tools.example.com/';
const POLICY = join(REPO, 'test/fixtures/policies/hygiene');
let issuer: TestIssuer;
let upstream: TestUpstream;
let reject: RunningAgentward;
let strip: RunningAgentward;
let pass: RunningAgentward;
/** pass with the repository's default policy, whose request.is_read counts a forwarded override. */
let passDefault: RunningAgentward;
let token: string;

function start(methodOverride?: 'reject' | 'strip' | 'pass', policy = POLICY): Promise<RunningAgentward> {
  return startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE, authorizationServers: [issuer.issuer] },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: policy },
    ...(methodOverride ? { forward: { methodOverride } } : {}),
  });
}

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
  [reject, strip, pass, passDefault] = await Promise.all([start(), start('strip'), start('pass'), start('pass', DEFAULT_POLICY)]);
  token = await issuer.mint({ scope: 'tools.read' });
});
afterAll(async () => {
  await Promise.all([reject?.stop(), strip?.stop(), pass?.stop(), passDefault?.stop()]);
  await Promise.all([upstream?.close(), issuer?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

const auth = () => ({ authorization: `Bearer ${token}` });

describe('forward.methodOverride: reject (the default)', () => {
  for (const header of ['X-HTTP-Method-Override', 'x-http-method', 'X-METHOD-OVERRIDE']) {
    test(`a GET with ${header}: DELETE is refused, 400 ERR_METHOD_OVERRIDE naming the header and the setting; nothing reaches the upstream`, async () => {
      const res = await rawRequest(`${reject.url}/items/1`, { headers: { ...auth(), [header]: 'DELETE' } });
      expect(res.status).toBe(400);
      const body = res.json();
      expect(body.code).toBe('ERR_METHOD_OVERRIDE');
      expect(body.detail).toContain(`the ${header.toLowerCase()} header`);
      expect(body.detail).toContain('forward.methodOverride: reject');
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(upstream.seen).toHaveLength(0);
    });
  }

  test('the _method query parameter is refused the same way (even percent-encoded)', async () => {
    for (const query of ['?_method=DELETE', '?a=1&%5Fmethod=DELETE']) {
      const res = await rawRequest(`${reject.url}/items/1${query}`, { headers: auth() });
      expect(res.status, query).toBe(400);
      expect(res.json().code).toBe('ERR_METHOD_OVERRIDE');
      expect(res.json().detail).toContain('the _method query parameter');
    }
    expect(upstream.seen).toHaveLength(0);
  });

  test('the refusal comes before authentication: without a token it is the same 400', async () => {
    const res = await rawRequest(`${reject.url}/items/1`, { headers: { 'x-http-method-override': 'DELETE' } });
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('ERR_METHOD_OVERRIDE');
  });

  test('the audit record has the code and the method of the request line', async () => {
    await rawRequest(`${reject.url}/audited`, { headers: { ...auth(), 'x-http-method-override': 'DELETE' } });
    const record = reject.audit().find((r) => (r.action as { path: string }).path === '/audited')!;
    expect(record).toMatchObject({ decision: 'deny', status: 400, code: 'ERR_METHOD_OVERRIDE', action: { method: 'GET' } });
  });

  test('without an override the read is allowed, and the real DELETE is denied', async () => {
    expect((await rawRequest(`${reject.url}/items/1?method=x`, { headers: auth() })).status).toBe(200);
    const del = await rawRequest(`${reject.url}/items/1`, { method: 'DELETE', headers: auth() });
    expect(del.status).toBe(403);
    expect(del.json().code).toBe('ERR_POLICY_DENIED');
  });
});

describe('forward.methodOverride: strip', () => {
  test('the override headers are removed before the policy and the upstream; the policy input says so', async () => {
    const res = await rawRequest(`${strip.url}/items/1`, { headers: { ...auth(), 'X-HTTP-Method-Override': 'DELETE', 'x-method-override': 'PUT', 'x-kept': 'yes' } });
    expect(res.status).toBe(200);
    const seen = upstream.seen[0]!;
    expect(seen.method).toBe('GET');
    for (const name of ['x-http-method-override', 'x-method-override']) expect(seen.headers[name]).toBeUndefined();
    expect(seen.headers['x-kept']).toBe('yes');
    expect(JSON.parse(seen.headers['x-policy-override'] as string)).toEqual({
      action: 'stripped',
      fields: [
        { source: 'header', name: 'x-http-method-override', value: 'DELETE' },
        { source: 'header', name: 'x-method-override', value: 'PUT' },
      ],
    });
    // Not in input.request.headers either: the policy and the upstream see the same request.
    const names = (seen.headers['x-policy-header-names'] as string).split(',');
    expect(names).toContain('x-kept');
    expect(names).not.toContain('x-http-method-override');
  });

  test('_method is removed from the query the policy sees and the upstream gets; the other parameters keep their bytes and order', async () => {
    const res = await rawRequest(`${strip.url}/items/1?a=1&_method=DELETE&b=%41+x&_method=PUT`, { headers: auth() });
    expect(res.status).toBe(200);
    const seen = upstream.seen[0]!;
    expect(seen.url).toBe('/items/1?a=1&b=%41+x');
    expect(JSON.parse(seen.headers['x-policy-query'] as string)).toEqual({ a: ['1'], b: ['A x'] });
    expect(JSON.parse(seen.headers['x-policy-override'] as string)).toEqual({
      action: 'stripped',
      fields: [
        { source: 'query', name: '_method', value: 'DELETE' },
        { source: 'query', name: '_method', value: 'PUT' },
      ],
    });
  });

  test('a query of only _method leaves no query at all', async () => {
    expect((await rawRequest(`${strip.url}/items/1?_method=DELETE`, { headers: auth() })).status).toBe(200);
    expect(upstream.seen[0]!.url).toBe('/items/1');
  });

  test('a request without an override: methodOverride is null', async () => {
    expect((await rawRequest(`${strip.url}/items/1`, { headers: auth() })).status).toBe(200);
    expect(upstream.seen[0]!.headers['x-policy-override']).toBe('null');
  });
});

describe('forward.methodOverride: pass', () => {
  test('the override is forwarded as sent and the policy sees it: an override to a read is allowed', async () => {
    const res = await rawRequest(`${pass.url}/items/1?_method=head`, { headers: { ...auth(), 'X-HTTP-Method': 'GET' } });
    expect(res.status).toBe(200);
    const seen = upstream.seen[0]!;
    expect(seen.url).toBe('/items/1?_method=head');
    expect(seen.headers['x-http-method']).toBe('GET');
    expect(JSON.parse(seen.headers['x-policy-override'] as string)).toEqual({
      action: 'forwarded',
      fields: [
        { source: 'header', name: 'x-http-method', value: 'GET' },
        { source: 'query', name: '_method', value: 'head' },
      ],
    });
  });

  test('a policy can deny on it: an override to DELETE is denied (403) and not forwarded', async () => {
    const res = await rawRequest(`${pass.url}/items/1`, { headers: { ...auth(), 'x-http-method-override': 'DELETE' } });
    expect(res.status).toBe(403);
    expect(res.json().code).toBe('ERR_POLICY_DENIED');
    expect(upstream.seen).toHaveLength(0);
  });

  test('the default policy counts a forwarded override to a write as a write: read-only token, 403 insufficient_scope', async () => {
    const res = await rawRequest(`${passDefault.url}/items/1`, { headers: { ...auth(), 'x-http-method-override': 'delete' } });
    expect(res.status).toBe(403);
    expect(res.json().code).toBe('ERR_POLICY_INSUFFICIENT_SCOPE');
    expect(upstream.seen).toHaveLength(0);
    expect((await rawRequest(`${passDefault.url}/items/1`, { headers: { ...auth(), 'x-http-method-override': 'GET' } })).status).toBe(200);
  });

  test('pass is a relaxation, named at startup', () => {
    expect(pass.logs()).toContain('forward.methodOverride is pass');
    expect(reject.logs()).not.toContain('forward.methodOverride is');
  });
});
