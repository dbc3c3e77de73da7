/**
 * Transaction Tokens end to end (draft-ietf-oauth-transaction-tokens; cases TXN-Nxx in docs/negative-cases.md): a real
 * JWK Set server for the trust domain's Txn-Token service, the real opa-compiled policy, and a
 * real upstream. A verified Txn-Token reaches the policy as input.txn and never the upstream; every
 * refusal is answered before the upstream sees anything.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startIssuer, newKey, type TestIssuer, type TestKey } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, challengeParams } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://tools.example.com/api';
const TRUST_DOMAIN = 'trust-domain.example';
const POLICY = join(REPO, 'test/fixtures/policies/txn');
let issuer: TestIssuer;
let tts: TestIssuer;
let upstream: TestUpstream;
let optional: RunningAgentward;
let required: RunningAgentward;
let unconfigured: RunningAgentward;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  // The Txn-Token service: only its JWK Set is used.
  tts = await startIssuer({ audience: TRUST_DOMAIN });
  upstream = await startUpstream();
  const base = {
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: POLICY },
  };
  [optional, required, unconfigured] = await Promise.all([
    startAgentward({ ...base, txnTokens: { trustDomain: TRUST_DOMAIN, jwksUri: tts.jwksUri } }),
    startAgentward({ ...base, txnTokens: { trustDomain: TRUST_DOMAIN, jwksUri: tts.jwksUri, mode: 'required' } }),
    startAgentward(base),
  ]);
});
afterAll(async () => {
  await Promise.all([optional, required, unconfigured].map((a) => a?.stop()));
  await Promise.all([upstream?.close(), issuer?.close(), tts?.close()]);
});

async function txnToken(claims: Record<string, unknown> = {}, options: { header?: Record<string, unknown>; key?: TestKey } = {}): Promise<string> {
  const key = options.key ?? tts.keys.at(-1)!;
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iat: now,
    aud: TRUST_DOMAIN,
    exp: now + 300,
    txn: '97053963-771d-49cc-a4e3-20aad399c312',
    sub: 'd084sdrt234fsaw34tr23t',
    scope: 'trade.stocks',
    req_wl: 'apigateway.trust-domain.example',
    tctx: { action: 'BUY', ticker: 'MSFT', quantity: '100' },
    ...claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'txntoken+jwt', ...options.header } as never).sign(key.privateKey);
}

async function send(aw: RunningAgentward, txn: string | string[] | undefined) {
  const before = upstream.seen.length;
  const headers: Record<string, string | string[]> = { authorization: `Bearer ${await issuer.mint()}` };
  if (txn !== undefined) headers['txn-token'] = txn;
  const res = await rawRequest(`${aw.url}/orders`, { headers });
  return { res, forwarded: upstream.seen.length - before };
}

describe('a verified Txn-Token', () => {
  test('is forwarded; the policy sees input.txn; the Txn-Token header is stripped', async () => {
    const { res, forwarded } = await send(optional, await txnToken());
    expect(res.status).toBe(200);
    expect(forwarded).toBe(1);
    const seen = upstream.seen.at(-1)!.headers;
    expect(seen['x-policy-txn']).toBe('97053963-771d-49cc-a4e3-20aad399c312');
    expect(seen['x-policy-txn-sub']).toBe('d084sdrt234fsaw34tr23t');
    expect(JSON.parse(seen['x-policy-txn-tctx'] as string)).toEqual({ action: 'BUY', ticker: 'MSFT', quantity: '100' });
    expect(seen['x-policy-presented']).toBe('access_token txn_token');
    expect(seen['txn-token']).toBeUndefined();
    const requestId = res.headers['x-request-id'];
    await waitFor(async () => optional.audit().some((r) => r.requestId === requestId), 'the audit record');
    const record = optional.audit().find((r) => r.requestId === requestId)!;
    expect(record.txn).toEqual({ id: '97053963-771d-49cc-a4e3-20aad399c312', hash: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/) });
  });

  test('is optional by default: without one, input.txn is null', async () => {
    const { res, forwarded } = await send(optional, undefined);
    expect(res.status).toBe(200);
    expect(forwarded).toBe(1);
    expect(upstream.seen.at(-1)!.headers['x-policy-txn']).toBe('none');
  });
});

describe('refused Txn-Tokens never reach the upstream', () => {
  test('TXN-N02: two Txn-Token headers are 400 ERR_TXN_TOKEN_MULTIPLE', async () => {
    const token = await txnToken();
    const { res, forwarded } = await send(optional, [token, token]);
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('ERR_TXN_TOKEN_MULTIPLE');
    expect(challengeParams(res.headers['www-authenticate']).error).toBe('invalid_request');
    expect(forwarded).toBe(0);
  });

  test.each([
    ['TXN-N04 wrong typ', 'ERR_TXN_TOKEN_TYPE', () => txnToken({}, { header: { typ: 'at+jwt' } })],
    ['TXN-N07 another trust domain', 'ERR_TXN_TOKEN_AUDIENCE', () => txnToken({ aud: 'other-domain.example' })],
    ['TXN-N08 expired', 'ERR_TXN_TOKEN_EXPIRED', () => txnToken({ iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 300 })],
    ['a key outside the service key set', 'ERR_TXN_TOKEN_KEY_UNKNOWN', async () => txnToken({}, { key: await newKey('ES256') })],
  ])('%s is 401 %s, with the plain Bearer challenge (no invalid_token)', async (_name, code, make) => {
    const { res, forwarded } = await send(optional, await make());
    expect(res.status).toBe(401);
    expect(res.json().code).toBe(code);
    const params = challengeParams(res.headers['www-authenticate']);
    expect(params.error).toBeUndefined();
    expect(params.resource_metadata).toBeDefined();
    expect(forwarded).toBe(0);
  });

  test('TXN-N13: a Txn-Token is no caller authentication: alone it gets ERR_CREDENTIALS_MISSING', async () => {
    const before = upstream.seen.length;
    const res = await rawRequest(`${optional.url}/orders`, { headers: { 'txn-token': await txnToken() } });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_CREDENTIALS_MISSING');
    expect(upstream.seen.length).toBe(before);
  });

  test('mode required: a request without a Txn-Token is 401 ERR_TXN_TOKEN_MISSING', async () => {
    const { res, forwarded } = await send(required, undefined);
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_TXN_TOKEN_MISSING');
    expect(res.headers['www-authenticate']).toBeDefined();
    expect(forwarded).toBe(0);
  });

  test('mode required: a valid Txn-Token is forwarded', async () => {
    const { res, forwarded } = await send(required, await txnToken());
    expect(res.status).toBe(200);
    expect(forwarded).toBe(1);
  });

  test('without txnTokens configured, a presented Txn-Token is refused: 401 ERR_TXN_TOKEN_UNSUPPORTED', async () => {
    const { res, forwarded } = await send(unconfigured, await txnToken());
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_TXN_TOKEN_UNSUPPORTED');
    expect(forwarded).toBe(0);
  });

  test('without txnTokens configured, a request without one is unaffected', async () => {
    const { res, forwarded } = await send(unconfigured, undefined);
    expect(res.status).toBe(200);
    expect(forwarded).toBe(1);
  });
});
