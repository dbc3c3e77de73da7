/**
 * The one error → response mapping (conventions §5; RFC 6750 §3, RFC 9470 §3, RFC 9728 §5.1; AT-N01, PRM-N02/N03/N05 in docs/negative-cases.md): status,
 * `WWW-Authenticate` challenge and RFC 9457 problem body. 5xx bodies say nothing internal and no
 * response echoes a credential.
 */
import { describe, expect, test } from 'vitest';
import { problemFor, quote, sendProblem, type ProblemResponse, type RejectContext } from '../../src/proxy/reject.ts';
import { AgentwardError, ERROR_CODES, type ErrorCode } from '../../src/errors.ts';
import { flattenDelegation } from '../../src/identity/delegation.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const CTX: RejectContext = {
  requestId: 'req-123',
  resourceMetadataUrl: 'https://tools.example.com/.well-known/oauth-protected-resource/mcp',
  schemes: { bearer: true, dpopAlgs: undefined, wpt: false },
};
const METADATA = `resource_metadata="${CTX.resourceMetadataUrl}"`;
const TOKEN = 'eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl';

function body(p: ProblemResponse): Record<string, unknown> {
  return JSON.parse(p.body) as Record<string, unknown>;
}

function problem(code: ErrorCode, detail?: string, options?: ConstructorParameters<typeof AgentwardError>[2]): ProblemResponse {
  return problemFor(new AgentwardError(code, detail, options), CTX);
}

/** Splits `Bearer a="x", b="y"` into its auth-params (values unescaped). */
function params(header: string | string[]): Record<string, string> {
  expect(typeof header, 'one challenge expected').toBe('string');
  const challenge = header as string;
  expect(challenge.startsWith('Bearer ')).toBe(true);
  const out: Record<string, string> = {};
  const re = /([a-z_]+)="((?:[^"\\]|\\.)*)"(?:, |$)/gy;
  re.lastIndex = 'Bearer '.length;
  let m: RegExpExecArray | null;
  while ((m = re.exec(challenge))) out[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
  expect(re.lastIndex === 0 || re.lastIndex === challenge.length, `unparsed challenge tail in ${challenge}`).toBe(true);
  return out;
}

describe('challenges', () => {
  test('AT-N01: no credentials → 401, resource_metadata, no error', () => {
    const p = problem('ERR_CREDENTIALS_MISSING');
    expect(p.status).toBe(401);
    expect(p.headers['www-authenticate']).toBe(`Bearer ${METADATA}`);
    expect(params(p.headers['www-authenticate']!)).toEqual({ resource_metadata: CTX.resourceMetadataUrl });
  });

  test('invalid_token → 401 with error, error_description and resource_metadata', () => {
    const p = problem('ERR_TOKEN_EXPIRED');
    expect(p.status).toBe(401);
    expect(params(p.headers['www-authenticate']!)).toEqual({
      error: 'invalid_token',
      error_description: ERROR_CODES.ERR_TOKEN_EXPIRED.title,
      resource_metadata: CTX.resourceMetadataUrl,
    });
  });

  test('invalid_request → 400 with error and the specific detail', () => {
    const p = problem('ERR_AUTHORIZATION_MULTIPLE', 'The request has more than one Authorization header.');
    expect(p.status).toBe(400);
    expect(params(p.headers['www-authenticate']!)).toEqual({
      error: 'invalid_request',
      error_description: 'The request has more than one Authorization header.',
      resource_metadata: CTX.resourceMetadataUrl,
    });
  });

  test('insufficient_scope → 403 with scope (space-separated) and resource_metadata (PRM-N05)', () => {
    const p = problem('ERR_POLICY_INSUFFICIENT_SCOPE', undefined, { hints: { scope: ['tools.write', 'repo:admin'] } });
    expect(p.status).toBe(403);
    expect(params(p.headers['www-authenticate']!)).toEqual({
      error: 'insufficient_scope',
      error_description: ERROR_CODES.ERR_POLICY_INSUFFICIENT_SCOPE.title,
      scope: 'tools.write repo:admin',
      resource_metadata: CTX.resourceMetadataUrl,
    });
  });

  test('step-up → 401 insufficient_user_authentication with acr_values and max_age (RFC 9470 §3)', () => {
    const p = problem('ERR_POLICY_STEP_UP', undefined, { hints: { acrValues: 'mfa phr', maxAge: 0 } });
    expect(p.status).toBe(401);
    expect(params(p.headers['www-authenticate']!)).toEqual({
      error: 'insufficient_user_authentication',
      error_description: ERROR_CODES.ERR_POLICY_STEP_UP.title,
      acr_values: 'mfa phr',
      max_age: '0',
      resource_metadata: CTX.resourceMetadataUrl,
    });
  });

  test('step-up with only max_age leaves acr_values out', () => {
    const p = problem('ERR_POLICY_STEP_UP', undefined, { hints: { maxAge: 300 } });
    const c = params(p.headers['www-authenticate']!);
    expect(c.max_age).toBe('300');
    expect(c).not.toHaveProperty('acr_values');
  });

  test('a plain policy deny (403) has no challenge', () => {
    const p = problem('ERR_POLICY_DENIED');
    expect(p.status).toBe(403);
    expect(p.headers).not.toHaveProperty('www-authenticate');
  });

  test('quotes and backslashes in parameters are escaped (RFC 9110 §5.6.4)', () => {
    expect(quote('a"b\\c')).toBe('"a\\"b\\\\c"');
    const p = problemFor(new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'bad "x" \\ value'), { ...CTX, resourceMetadataUrl: 'https://r.example/"m"' });
    const header = p.headers['www-authenticate']!;
    expect(header).toContain('error_description="bad \\"x\\" \\\\ value"');
    expect(header).toContain('resource_metadata="https://r.example/\\"m\\""');
    expect(params(header)).toEqual({ error: 'invalid_token', error_description: 'bad "x" \\ value', resource_metadata: 'https://r.example/"m"' });
  });

  test('every challenge is visible ASCII, even for a detail with a non-ASCII character (RFC 6750 §3)', () => {
    // RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E; a raw "§"
    // goes out as the Latin-1 byte 0xA7, which clients decoding UTF-8 cannot read.
    const p = problemFor(new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'see RFC 8693 §4.1 – act'), CTX);
    expect(p.headers['www-authenticate']).toMatch(/^[\x20-\x7e]*$/);
    expect(p.headers['www-authenticate']).toContain('error_description="see RFC 8693 4.1  act"');
  });

  test('the details the verifier produces are ASCII already', () => {
    let err: AgentwardError | undefined;
    try {
      flattenDelegation('not-an-object', 4);
    } catch (e) {
      err = e as AgentwardError;
    }
    expect(err?.detail).toMatch(/^[\x20-\x7e]+$/);
  });

  test('every code with an oauthError gets a challenge, every 401 carries resource_metadata (WIMSE codes: the WPT challenge)', () => {
    for (const [code, info] of Object.entries(ERROR_CODES) as [ErrorCode, (typeof ERROR_CODES)[ErrorCode]][]) {
      const p = problem(code);
      expect(p.status, code).toBe(info.status);
      if ('oauthError' in info) expect(params(p.headers['www-authenticate']!).error, code).toBe(info.oauthError);
      if ('wimse' in info) expect(p.headers['www-authenticate'], code).toBe('WPT');
      else if (info.status === 401) expect(p.headers['www-authenticate'], code).toContain(METADATA);
    }
  });

  test('U3: a WIT failure is 401 WPT with a WPT proof, 400 without challenge with an HTTP message signature', () => {
    const err = new AgentwardError('ERR_WIT_EXPIRED');
    const wpt = problemFor(err, { ...CTX, workloadProof: 'wpt' });
    expect(wpt.status).toBe(401);
    expect(wpt.headers['www-authenticate']).toBe('WPT');
    const signed = problemFor(err, { ...CTX, workloadProof: 'http_signature' });
    expect(signed.status).toBe(400);
    expect(signed.headers['www-authenticate']).toBeUndefined();
    expect(JSON.parse(signed.body)).toMatchObject({ status: 400, code: 'ERR_WIT_EXPIRED' });
    // HTTP-signature codes are 400 whatever the mode.
    expect(problemFor(new AgentwardError('ERR_HSIG_SIGNATURE'), { ...CTX, workloadProof: 'http_signature' }).status).toBe(400);
  });

  test('with workload identity configured, every challenge list also offers WPT', () => {
    const p = problemFor(new AgentwardError('ERR_CREDENTIALS_MISSING'), { ...CTX, schemes: { bearer: true, dpopAlgs: 'ES256', wpt: true } });
    expect(p.headers['www-authenticate']).toEqual([`Bearer ${METADATA}`, `DPoP algs="ES256", ${METADATA}`, 'WPT']);
  });
});

describe('problem body (RFC 9457)', () => {
  test('content type, no-store, type/title/status/code/requestId', () => {
    const p = problem('ERR_TOKEN_AUDIENCE');
    expect(p.headers['content-type']).toBe('application/problem+json');
    expect(p.headers['cache-control']).toBe('no-store');
    expect(body(p)).toEqual({
      type: 'urn:agentward:error:ERR_TOKEN_AUDIENCE',
      title: ERROR_CODES.ERR_TOKEN_AUDIENCE.title,
      status: 401,
      code: 'ERR_TOKEN_AUDIENCE',
      requestId: 'req-123',
    });
  });

  test('a 4xx detail different from the title is sent as detail', () => {
    expect(body(problem('ERR_TOKEN_CLAIM_MISSING', 'The access token has no jti claim (RFC 9068 §2.2).')).detail).toBe('The access token has no jti claim (RFC 9068 §2.2).');
  });

  test('5xx: fixed title, no detail, no cause, no error_description', () => {
    const cause = new Error(`opa-wasm exploded while evaluating ${TOKEN} at /srv/agentward/policy.wasm`);
    for (const code of ['ERR_INTERNAL', 'ERR_POLICY_EVALUATION', 'ERR_POLICY_DECISION_INVALID', 'ERR_UPSTREAM_UNAVAILABLE', 'ERR_UPSTREAM_TIMEOUT', 'ERR_KEYS_UNAVAILABLE'] as const) {
      const p = problem(code, `internal detail /srv/agentward ${TOKEN}`, { cause });
      expect(p.status, code).toBeGreaterThanOrEqual(500);
      expect(body(p), code).toEqual({ type: `urn:agentward:error:${code}`, title: ERROR_CODES[code].title, status: p.status, code, requestId: 'req-123' });
      expect(p.body).not.toContain('/srv/agentward');
      expect(p.body).not.toContain(TOKEN);
      expect(JSON.stringify(p.headers)).not.toContain(TOKEN);
    }
  });

  test('a 4xx never shows its cause, only its client-safe detail', () => {
    const p = problem('ERR_TOKEN_SIGNATURE', undefined, { cause: new Error(`signature mismatch for ${TOKEN}`) });
    expect(p.body).not.toContain(TOKEN);
    expect(p.headers['www-authenticate']).not.toContain(TOKEN);
    expect(body(p)).not.toHaveProperty('detail');
  });

  test('exposedReason goes to the body as reason', () => {
    const p = problemFor(new AgentwardError('ERR_POLICY_DENIED'), { ...CTX, exposedReason: 'create_issue needs scope tools.write' });
    expect(body(p).reason).toBe('create_issue needs scope tools.write');
    expect(body(problem('ERR_POLICY_DENIED'))).not.toHaveProperty('reason');
  });
});

describe('other headers', () => {
  test('503 carries retry-after', () => {
    expect(problem('ERR_KEYS_UNAVAILABLE').headers['retry-after']).toBe('5');
    expect(problem('ERR_POLICY_NOT_LOADED').headers['retry-after']).toBe('5');
    expect(problem('ERR_POLICY_EVALUATION').headers).not.toHaveProperty('retry-after');
  });

  test('405 carries allow', () => {
    const p = problem('ERR_METHOD_NOT_ALLOWED');
    expect(p.status).toBe(405);
    expect(p.headers.allow).toBe('GET, HEAD');
  });
});

describe('sendProblem', () => {
  test('writes status, headers and an exact content-length on a real response', async () => {
    const server = createServer((_req, res) => sendProblem(res, new AgentwardError('ERR_CREDENTIALS_MISSING'), CTX));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const text = await res.text();
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(`Bearer ${METADATA}`);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
      expect(JSON.parse(text)).toMatchObject({ code: 'ERR_CREDENTIALS_MISSING', status: 401, requestId: 'req-123' });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
