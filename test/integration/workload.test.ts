/**
 * Workload identity end to end (issue 4; cases WIT, WPT, JS and TXN and decisions U1–U12 in docs/negative-cases.md): SPIFFE bundle
 * files for two trust domains, WITs with WPTs, JWT-SVIDs, a Txn-Token service, an OAuth issuer,
 * the real opa-compiled policy and a real upstream. A proven workload reaches the policy as
 * input.agent; every refusal is answered before the upstream sees anything, with the status,
 * challenge and code of its mode (U3).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, type RawResponse } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { bundleDocument, mintJwtSvid, mintWit, mintWpt, newWorkloadKey, othFor, tokenHash, type WorkloadKey } from '../helpers/workload-tokens.ts';

const RESOURCE = 'https://tools.example.com/api';
const TARGET = 'https://tools.example.com/orders';
const DOMAIN = 'agents.example.com';
const OTHER = 'partners.example.org';
/** A trust domain whose bundle comes from a (loopback) bundle endpoint. */
const REMOTE = 'remote.example.net';
const AGENT = `spiffe://${DOMAIN}/research-bot`;
const TXN_DOMAIN = 'trust-domain.example';
const POLICY = join(REPO, 'test/fixtures/policies/workload');

let issuer: TestIssuer;
let tts: TestIssuer;
let upstream: TestUpstream;
let witIssuer: WorkloadKey;
let otherWitIssuer: WorkloadKey;
let jwtIssuer: WorkloadKey;
let otherJwtIssuer: WorkloadKey;
let workloadKey: WorkloadKey;
let edKey: WorkloadKey;
/** An EdDSA WIT issuer key in the agents.example.com bundle (the WIMSE drafts allow EdDSA). */
let edWitIssuer: WorkloadKey;
let remoteIssuer: WorkloadKey;
let bundleServer: Server;
let remoteBundle: unknown;
/** Workload-only authentication allowed (oauth.requireToken: false), no binding rule. */
let open: RunningAgentward;
/** An access token required, bound to the workload by client_id through a mapping table. */
let bound: RunningAgentward;
/** workload.require on. */
let requiring: RunningAgentward;
/** No workload section. */
let unconfigured: RunningAgentward;

beforeAll(async () => {
  [issuer, tts, upstream] = await Promise.all([startIssuer({ audience: RESOURCE }), startIssuer({ audience: TXN_DOMAIN }), startUpstream()]);
  [witIssuer, otherWitIssuer, jwtIssuer, otherJwtIssuer, workloadKey] = await Promise.all([
    newWorkloadKey('ES256', 'wit-1'),
    newWorkloadKey('ES256', 'wit-1'),
    newWorkloadKey('ES256', 'jwt-1'),
    newWorkloadKey('ES256', 'jwt-other'),
    newWorkloadKey('ES256'),
  ]);
  edKey = await newWorkloadKey('EdDSA');
  edWitIssuer = await newWorkloadKey('EdDSA', 'wit-ed');
  remoteIssuer = await newWorkloadKey('ES256', 'remote-1');
  remoteBundle = bundleDocument({ witSvid: [remoteIssuer.publicJwk], sequence: 1 });
  bundleServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(remoteBundle)));
  await new Promise<void>((done) => bundleServer.listen(0, '127.0.0.1', done));
  const dir = mkdtempSync(join(tmpdir(), 'agentward-bundles-'));
  writeFileSync(join(dir, 'agents.json'), JSON.stringify(bundleDocument({ witSvid: [witIssuer.publicJwk, edWitIssuer.publicJwk], jwtSvid: [jwtIssuer.publicJwk] })));
  writeFileSync(join(dir, 'partners.json'), JSON.stringify(bundleDocument({ witSvid: [otherWitIssuer.publicJwk], jwtSvid: [otherJwtIssuer.publicJwk] })));
  const trustDomains = [
    { name: DOMAIN, bundle: { file: join(dir, 'agents.json') } },
    // The SPIFFE WIT-SVID algorithm profile (RS/ES/PS only); agents.example.com keeps the WIMSE default.
    { name: OTHER, bundle: { file: join(dir, 'partners.json') }, witProfile: 'spiffe' },
    { name: REMOTE, bundle: { url: `http://127.0.0.1:${(bundleServer.address() as AddressInfo).port}/bundle` } },
  ];
  const base = {
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    txnTokens: { trustDomain: TXN_DOMAIN, jwksUri: tts.jwksUri },
    policy: { source: POLICY },
  };
  [open, bound, requiring, unconfigured] = await Promise.all([
    startAgentward({
      ...base,
      oauth: { ...base.oauth, requireToken: false },
      workload: { trustDomains, wimse: { contextTokenHeaders: ['x-user-token'] } },
      forward: { identityHeaders: { 'X-Agent-Id': 'agent.id', 'X-Agent-Via': 'agent.via' } },
    }),
    startAgentward({ ...base, workload: { trustDomains, binding: { rule: 'client_id', clients: { 'research-bot': AGENT } } } }),
    startAgentward({ ...base, workload: { trustDomains, require: true } }),
    startAgentward(base),
  ]);
});
afterAll(async () => {
  await Promise.all([open, bound, requiring, unconfigured].map((a) => a?.stop()));
  await Promise.all([upstream?.close(), issuer?.close(), tts?.close()]);
  bundleServer?.close();
});

const wit = (options: Partial<Parameters<typeof mintWit>[0]> = {}) => mintWit({ key: witIssuer, sub: AGENT, cnfJwk: workloadKey.publicJwk, ...options });
const wpt = (forWit: string, options: Partial<Parameters<typeof mintWpt>[0]> = {}) => mintWpt({ wit: forWit, privateKey: workloadKey.privateKey, alg: workloadKey.alg, aud: TARGET, ...options });

async function send(aw: RunningAgentward, headers: Record<string, string | string[]>, path = '/orders'): Promise<{ res: RawResponse; forwarded: number }> {
  const before = upstream.seen.length;
  const res = await rawRequest(`${aw.url}${path}`, { headers });
  return { res, forwarded: upstream.seen.length - before };
}

/** A refusal: status, code, the WPT challenge when it is a 401 of a WIMSE code, and nothing forwarded. */
function expectRefused(result: { res: RawResponse; forwarded: number }, status: number, code: string): void {
  expect(result.res.json().code, result.res.body).toBe(code);
  expect(result.res.status).toBe(status);
  expect(result.forwarded).toBe(0);
}

async function txnToken(): Promise<string> {
  const key = tts.keys.at(-1)!;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, aud: TXN_DOMAIN, exp: now + 120, txn: 'txn-1', sub: 'user-42', scope: 'orders', req_wl: AGENT })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'txntoken+jwt' })
    .sign(key.privateKey);
}

describe('WIT + WPT (wpt-02)', () => {
  test('a valid WIT and WPT from a configured trust domain is forwarded; the policy sees input.agent; the upstream sees no credential', async () => {
    const w = await wit();
    const { res, forwarded } = await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` });
    expect(res.status, res.body).toBe(200);
    expect(forwarded).toBe(1);
    const seen = upstream.seen.at(-1)!.headers;
    expect(seen['x-policy-agent']).toBe(AGENT);
    expect(seen['x-policy-agent-domain']).toBe(DOMAIN);
    expect(seen['x-policy-agent-path']).toBe('/research-bot');
    expect(seen['x-policy-agent-via']).toBe('wit+wpt');
    expect(seen['x-policy-agent-token']).toBe('null');
    expect(seen['x-policy-subject']).toBe('none');
    expect(seen['x-policy-presented']).toBe('wpt wit');
    expect(seen['workload-identity-token']).toBeUndefined();
    expect(seen.authorization).toBeUndefined();
    expect(seen['x-agent-id']).toBe(AGENT);
    expect(seen['x-agent-via']).toBe('wit+wpt');
    const requestId = String(res.headers['x-request-id']);
    // The record is written after the response; the audit file may lag a little.
    await waitFor(async () => open.audit().some((r) => r.requestId === requestId), 'the audit record');
    const record = open.audit().find((r) => r.requestId === requestId)!;
    expect(record.agent).toEqual({ id: AGENT, via: 'wit+wpt' });
    expect(JSON.stringify(record)).not.toContain(w.split('.')[2]);
  });

  test('WPT-P02: a query string on the request does not change the audience', async () => {
    const w = await wit();
    const { res } = await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` }, '/orders?page=2');
    expect(res.status, res.body).toBe(200);
  });

  test('WPT-N23: a WIT swapped under a valid WPT is refused with 401 WPT', async () => {
    const [first, second] = await Promise.all([wit(), wit()]);
    const result = await send(open, { 'workload-identity-token': second, authorization: `WPT ${await wpt(first)}` });
    expectRefused(result, 401, 'ERR_WPT_WTH');
    expect(result.res.headers['www-authenticate']).toBe('WPT');
  });

  test('WPT-N21: a replayed WPT is refused', async () => {
    const w = await wit();
    const headers = { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` };
    expect((await send(open, headers)).res.status).toBe(200);
    expectRefused(await send(open, headers), 401, 'ERR_WPT_REPLAYED');
  });

  test('WPT-N11, WPT-N12, WPT-N13, WPT-N15: a WPT for another audience is refused; Host cannot make it ours', async () => {
    const w = await wit();
    for (const aud of ['https://billing.example.com/orders', 'https://tools.example.com/other', 'http://tools.example.com/orders']) {
      expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w, { aud })}` }), 401, 'ERR_WPT_AUDIENCE');
    }
    const spoofed = await wpt(w, { aud: 'https://evil.example/orders' });
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${spoofed}`, host: 'evil.example', 'x-forwarded-host': 'evil.example' }), 401, 'ERR_WPT_AUDIENCE');
  });

  test("WIT-N12: a WIT signed by another trust domain's key is refused (no key of the named domain verifies it)", async () => {
    // Same kid as the agents.example.com key, so the signature check itself must fail.
    const forged = await wit({ key: otherWitIssuer });
    expectRefused(await send(open, { 'workload-identity-token': forged, authorization: `WPT ${await wpt(forged)}` }), 401, 'ERR_WIT_SIGNATURE');
    const otherKid = await wit({ key: { ...otherWitIssuer, kid: 'partners-only' } });
    expectRefused(await send(open, { 'workload-identity-token': otherKid, authorization: `WPT ${await wpt(otherKid)}` }), 401, 'ERR_WIT_KEY_UNKNOWN');
  });

  test('a workload of the second trust domain is proven with its own bundle', async () => {
    const w = await wit({ key: otherWitIssuer, sub: `spiffe://${OTHER}/planner` });
    const { res } = await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe(`spiffe://${OTHER}/planner`);
  });

  test('WIT-N13: a WIT of a trust domain that is not configured is refused', async () => {
    const w = await wit({ sub: 'spiffe://unknown.example/bot' });
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` }), 401, 'ERR_WIT_TRUST_DOMAIN');
  });

  test('WIT-N29: a valid WIT alone is refused with 401 WPT', async () => {
    const result = await send(open, { 'workload-identity-token': await wit() });
    expectRefused(result, 401, 'ERR_WIT_NO_PROOF');
    expect(result.res.headers['www-authenticate']).toBe('WPT');
  });

  test('WIT-N30: a WIT sent as a Bearer token is refused (typ wit+jwt is neither a JWT-SVID nor an access token)', async () => {
    expectRefused(await send(open, { authorization: `Bearer ${await wit()}` }), 401, 'ERR_JWT_SVID_TYPE');
    expectRefused(await send(bound, { authorization: `Bearer ${await wit({ sub: 'wimse://agents.example.com/research-bot' })}` }), 401, 'ERR_TOKEN_TYPE');
  });

  test('a wimse:// or spiffe:// WIT may use an EdDSA workload key under the default (wimse) profile', async () => {
    for (const sub of ['wimse://agents.example.com/research-bot', AGENT]) {
      const w = await wit({ sub, cnfJwk: edKey.publicJwk });
      const proof = await mintWpt({ wit: w, privateKey: edKey.privateKey, alg: 'EdDSA', aud: TARGET });
      const { res } = await send(open, { 'workload-identity-token': w, authorization: `WPT ${proof}` });
      expect(res.status, res.body).toBe(200);
      expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe(sub);
    }
  });

  test('an EdDSA-signed spiffe:// WIT is accepted under the default (wimse) profile', async () => {
    const w = await wit({ key: edWitIssuer });
    const { res } = await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe(AGENT);
  });

  test('WIT-N34: under witProfile spiffe an EdDSA WIT-SVID, or one with an EdDSA workload key, is refused', async () => {
    const sub = `spiffe://${OTHER}/planner`;
    const edSigned = await wit({ key: { ...edWitIssuer, kid: 'wit-1' }, sub });
    expectRefused(await send(open, { 'workload-identity-token': edSigned, authorization: `WPT ${await wpt(edSigned)}` }), 401, 'ERR_WIT_ALGORITHM');
    const edCnf = await wit({ key: otherWitIssuer, sub, cnfJwk: edKey.publicJwk });
    const proof = await mintWpt({ wit: edCnf, privateKey: edKey.privateKey, alg: 'EdDSA', aud: TARGET });
    expectRefused(await send(open, { 'workload-identity-token': edCnf, authorization: `WPT ${proof}` }), 401, 'ERR_WIT_CNF_INVALID');
  });

  test('WIT-N02: two WIT fields are refused', async () => {
    const w = await wit();
    expectRefused(await send(open, { 'workload-identity-token': [w, w], authorization: `WPT ${await wpt(w)}` }), 401, 'ERR_WIT_MULTIPLE');
  });

  test('WPT-N01 and a WPT without WIT: each refused with 401 WPT', async () => {
    const w = await wit();
    expectRefused(await send(open, { 'workload-identity-token': w }), 401, 'ERR_WIT_NO_PROOF');
    expectRefused(await send(open, { authorization: `WPT ${await wpt(w)}` }), 401, 'ERR_WIT_MISSING');
  });

  test('WPT-N02: a WPT sent with the Bearer scheme is no proof: the WIT is refused', async () => {
    const w = await wit();
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `Bearer ${await wpt(w)}` }), 401, 'ERR_WIT_NO_PROOF');
  });

  test('WPT-N04: the wpt-01 Workload-Proof-Token header is refused', async () => {
    const w = await wit();
    expectRefused(await send(open, { 'workload-identity-token': w, 'workload-proof-token': await wpt(w) }), 401, 'ERR_WPT_LEGACY');
  });

  test('WPT-N05: WPT credentials that are not one JWT are refused as a WPT failure', async () => {
    const w = await wit();
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)} extra` }), 401, 'ERR_WPT_MALFORMED');
  });

  test('WPT-N03: a WPT and a Bearer token in two Authorization fields are refused', async () => {
    const w = await wit();
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: [`WPT ${await wpt(w)}`, `Bearer ${await issuer.mint()}`] }), 400, 'ERR_AUTHORIZATION_MULTIPLE');
  });

  test('WPT-N33: a WPT under an expired WIT is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const w = await wit({ iat: now - 7200, exp: now - 3600 });
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` }), 401, 'ERR_WIT_EXPIRED');
  });

  test('RFC 7519 §4.1.6: a WIT issued in the future (beyond oauth.clockSkew) is refused, as an access token is', async () => {
    const now = Math.floor(Date.now() / 1000);
    const w = await wit({ iat: now + 600 });
    const result = await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` });
    expectRefused(result, 401, 'ERR_WIT_ISSUED_IN_FUTURE');
    expect(result.res.headers['www-authenticate']).toBe('WPT');
  });

  test('RFC 7519 §4.1.6: a WPT that carries an iat in the future is refused', async () => {
    const w = await wit();
    const ahead = await wpt(w, { claims: { iat: Math.floor(Date.now() / 1000) + 600 } });
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${ahead}` }), 401, 'ERR_WPT_ISSUED_IN_FUTURE');
  });

  test('WIT lifetime above the trust domain maxLifetime (24h default) is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const w = await wit({ iat: now, exp: now + 3 * 86400 });
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` }), 401, 'ERR_WIT_LIFETIME');
  });
});

describe('a trust domain served by a bundle endpoint', () => {
  test('its WITs verify; a key rotated in between polls is fetched on first sight of its kid', async () => {
    const first = await wit({ key: remoteIssuer, sub: `spiffe://${REMOTE}/agent` });
    expect((await send(open, { 'workload-identity-token': first, authorization: `WPT ${await wpt(first)}` })).res.status).toBe(200);

    const rotated = await newWorkloadKey('ES256', 'remote-2');
    remoteBundle = bundleDocument({ witSvid: [rotated.publicJwk], sequence: 2 });
    const next = await wit({ key: rotated, sub: `spiffe://${REMOTE}/agent` });
    const { res } = await send(open, { 'workload-identity-token': next, authorization: `WPT ${await wpt(next)}` });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe(`spiffe://${REMOTE}/agent`);
    // The old key left the bundle with the rotation.
    const old = await wit({ key: remoteIssuer, sub: `spiffe://${REMOTE}/agent` });
    expectRefused(await send(open, { 'workload-identity-token': old, authorization: `WPT ${await wpt(old)}` }), 401, 'ERR_WIT_KEY_UNKNOWN');
  });

  test('/readyz shows every trust domain bundle', async () => {
    const detail = (await (await fetch(`${open.adminUrl}/readyz`)).json()) as { trustDomains: { trustDomain: string; ready: boolean; source: string }[] };
    expect(detail.trustDomains.map((d) => [d.trustDomain, d.source, d.ready])).toEqual([
      [DOMAIN, 'file', true],
      [OTHER, 'file', true],
      [REMOTE, 'url', true],
    ]);
  });
});

describe('WPT with context tokens (tth, oth)', () => {
  test('TXN with tth: a Txn-Token bound by tth is verified and reaches the policy', async () => {
    const w = await wit();
    const txn = await txnToken();
    const { res } = await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w, { tth: tokenHash(txn) })}`, 'txn-token': txn });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-presented']).toBe('wpt wit txn_token');
  });

  test('WPT-N24, WPT-N25, TXN-N14, WPT-N26: tth missing, for another Txn-Token, or without a Txn-Token is refused', async () => {
    const w = await wit();
    const [txn, otherTxn] = await Promise.all([txnToken(), txnToken()]);
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}`, 'txn-token': txn }), 401, 'ERR_WPT_TTH');
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w, { tth: tokenHash(`${otherTxn}x`) })}`, 'txn-token': txn }), 401, 'ERR_WPT_TTH');
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w, { tth: tokenHash(txn) })}` }), 401, 'ERR_WPT_TTH');
  });

  test('oth binds a configured context header, which then reaches the policy; WPT-N31: an unbound one does not', async () => {
    const w = await wit();
    const userToken = 'user-context-token-1';
    const boundRes = await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w, { oth: othFor({ 'x-user-token': userToken }) })}`, 'x-user-token': userToken });
    expect(boundRes.res.status, boundRes.res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-headers']).toContain('x-user-token');
    const unbound = await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}`, 'x-user-token': userToken });
    expect(unbound.res.status, unbound.res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-headers']).not.toContain('x-user-token');
  });

  test('WPT-N27, WPT-N28, WPT-N30: oth for an absent header, with a wrong hash, or a repeated header is refused', async () => {
    const w = await wit();
    const oth = othFor({ 'x-user-token': 'a' });
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w, { oth })}` }), 401, 'ERR_WPT_OTH');
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w, { oth })}`, 'x-user-token': 'b' }), 401, 'ERR_WPT_OTH');
    expectRefused(await send(open, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w, { oth })}`, 'x-user-token': ['a', 'a'] }), 401, 'ERR_WPT_OTH');
  });
});

describe('JWT-SVID in Authorization: Bearer', () => {
  const svid = (options: Partial<Parameters<typeof mintJwtSvid>[0]> = {}) => mintJwtSvid({ key: jwtIssuer, sub: AGENT, aud: RESOURCE, ...options });

  test('a JWT-SVID of a configured trust domain proves the agent; the policy sees no subject', async () => {
    const { res } = await send(open, { authorization: `Bearer ${await svid()}` });
    expect(res.status, res.body).toBe(200);
    const seen = upstream.seen.at(-1)!.headers;
    expect(seen['x-policy-agent']).toBe(AGENT);
    expect(seen['x-policy-agent-via']).toBe('jwt_svid');
    expect(seen['x-policy-subject']).toBe('none');
    expect(seen['x-policy-presented']).toBe('jwt_svid');
  });

  test('JS-N04, JS-N07: another audience, or a key of another trust domain, is refused with invalid_token', async () => {
    const wrongAud = await send(open, { authorization: `Bearer ${await svid({ aud: 'https://other.example.com' })}` });
    expectRefused(wrongAud, 401, 'ERR_JWT_SVID_AUDIENCE');
    expect(String(wrongAud.res.headers['www-authenticate'])).toContain('error="invalid_token"');
    expectRefused(await send(open, { authorization: `Bearer ${await svid({ key: otherJwtIssuer })}` }), 401, 'ERR_JWT_SVID_KEY_UNKNOWN');
  });

  test('JS-N05: a JWT-SVID issued in the future (beyond oauth.clockSkew) is refused with its own code', async () => {
    const now = Math.floor(Date.now() / 1000);
    const result = await send(open, { authorization: `Bearer ${await svid({ iat: now + 600, exp: now + 900 })}` });
    expectRefused(result, 401, 'ERR_JWT_SVID_ISSUED_IN_FUTURE');
    expect(String(result.res.headers['www-authenticate'])).toContain('error="invalid_token"');
  });

  test('with oauth.requireToken (default) a JWT-SVID alone is not enough', async () => {
    expectRefused(await send(bound, { authorization: `Bearer ${await svid()}` }), 401, 'ERR_CREDENTIALS_MISSING');
  });
});

describe('binding the agent to its OAuth token', () => {
  test('a WIT + WPT without an access token is refused where a token is required', async () => {
    const w = await wit();
    const result = await send(bound, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` });
    expectRefused(result, 401, 'ERR_CREDENTIALS_MISSING');
    // One challenge per accepted scheme; Node joins them into one field value.
    expect(String(result.res.headers['www-authenticate'])).toMatch(/^Bearer resource_metadata="[^"]+", DPoP algs="[^"]+", resource_metadata="[^"]+", WPT$/);
  });

  test('WIT-N01: with workload.require an access token alone gets ERR_WORKLOAD_MISSING', async () => {
    expectRefused(await send(requiring, { authorization: `Bearer ${await issuer.mint()}` }), 401, 'ERR_WORKLOAD_MISSING');
  });

  test('a caller-sent identity header is never an identity, and never reaches the upstream', async () => {
    const { res } = await send(open, { authorization: `Bearer ${await issuer.mint()}`, 'x-agent-id': AGENT });
    expect(res.status).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe('none');
    expect(upstream.seen.at(-1)!.headers['x-agent-id']).toBeUndefined();
  });

  test('without a workload section a WIT is refused, never ignored', async () => {
    const w = await wit();
    expectRefused(await send(unconfigured, { 'workload-identity-token': w, authorization: `Bearer ${await issuer.mint()}` }), 401, 'ERR_WORKLOAD_UNSUPPORTED');
    expectRefused(await send(unconfigured, { 'workload-identity-token': w, authorization: `WPT ${await wpt(w)}` }), 400, 'ERR_AUTHORIZATION_SCHEME');
  });
});
