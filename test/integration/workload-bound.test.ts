/**
 * A workload identity bound to an OAuth access token, end to end (issue 4 items 4, 5, 7;
 * docs/negative-cases.md HSIG, X5 and ACT-N05): an X.509-SVID on the TLS connection with a
 * DPoP- or certificate-bound token, and a WIT with a WIMSE HTTP message signature covering the
 * token. SPIFFE bundle files for two trust domains, a real OAuth issuer, the real opa-compiled
 * policy and a real upstream; nothing refused reaches the upstream.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, type RawResponse } from '../helpers/http.ts';
import { createCa, type IssuedCertificate, type TestCa } from '../helpers/pki.ts';
import { proof, proofKey, type ProofKey } from '../helpers/dpop.ts';
import { signRequest } from '../helpers/http-signature.ts';
import { bundleDocument, mintJwtSvid, mintWit, newWorkloadKey, type WorkloadKey } from '../helpers/workload-tokens.ts';

const RESOURCE = 'https://tools.example.com/api';
const DOMAIN = 'agents.example.com';
const OTHER = 'partners.example.org';
const AGENT = `spiffe://${DOMAIN}/research-bot`;
const POLICY = join(REPO, 'test/fixtures/policies/workload');

let issuer: TestIssuer;
let upstream: TestUpstream;
let agentsCa: TestCa;
let partnersCa: TestCa;
let serverCa: TestCa;
let svid: IssuedCertificate;
let impostor: IssuedCertificate;
let plainClient: IssuedCertificate;
let witIssuer: WorkloadKey;
let jwtIssuer: WorkloadKey;
let workloadKey: WorkloadKey;
let dpopKey: ProofKey;
/** HTTPS with client certificates, trust domains as the only client CAs, binding rule client_id. */
let mtls: RunningAgentward;
/** Plain HTTP, binding rule client_id: WIT + HTTP message signature with an access token. */
let signed: RunningAgentward;
/** As `signed`, with the verifier settings of workload.wimse.httpSignature: one label, a maximum age, required components. */
let strict: RunningAgentward;

beforeAll(async () => {
  [issuer, upstream] = await Promise.all([startIssuer({ audience: RESOURCE }), startUpstream()]);
  [witIssuer, jwtIssuer, workloadKey, dpopKey] = await Promise.all([newWorkloadKey('ES256', 'wit-1'), newWorkloadKey('ES256', 'jwt-1'), newWorkloadKey('ES256'), proofKey()]);
  agentsCa = createCa('agents CA', { sans: { uri: [`spiffe://${DOMAIN}`] } });
  partnersCa = createCa('partners CA', { sans: { uri: [`spiffe://${OTHER}`] } });
  serverCa = createCa('server CA');
  const server = serverCa.issue({ cn: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, usage: 'server' });
  svid = agentsCa.issue({ cn: 'research-bot', sans: { uri: [AGENT] }, usage: 'client' });
  // X5-N06: a partners CA certificate naming a workload of agents.example.com.
  impostor = partnersCa.issue({ cn: 'impostor', sans: { uri: [AGENT] }, usage: 'client' });
  plainClient = agentsCa.issue({ cn: 'legacy-client', sans: { dns: ['legacy.example.com'] }, usage: 'client' });

  const dir = mkdtempSync(join(tmpdir(), 'agentward-bound-'));
  const agentsBundle = { ...bundleDocument({ witSvid: [witIssuer.publicJwk], jwtSvid: [jwtIssuer.publicJwk] }) };
  agentsBundle.keys.push(...(pkiKeys(agentsCa) as never[]));
  writeFileSync(join(dir, 'agents.json'), JSON.stringify(agentsBundle));
  writeFileSync(join(dir, 'partners.json'), JSON.stringify({ keys: pkiKeys(partnersCa) }));
  writeFileSync(join(dir, 'server.crt'), server.certPem);
  writeFileSync(join(dir, 'server.key'), server.keyPem);
  const workload = {
    trustDomains: [
      { name: DOMAIN, bundle: { file: join(dir, 'agents.json') } },
      { name: OTHER, bundle: { file: join(dir, 'partners.json') } },
    ],
    binding: { rule: 'client_id', clients: { 'research-bot': AGENT } },
  };
  const base = {
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: POLICY },
    workload,
  };
  [mtls, signed, strict] = await Promise.all([
    startAgentward({ ...base, listen: { tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), clientCert: 'optional' } } }),
    startAgentward(base),
    startAgentward({ ...base, workload: { ...workload, wimse: { httpSignature: { label: 'wimse', maxAge: '30s', requiredComponents: ['@authority', 'content-type'] } } } }),
  ]);
});
afterAll(async () => {
  await Promise.all([mtls, signed, strict].map((a) => a?.stop()));
  await Promise.all([upstream?.close(), issuer?.close()]);
});

/** The x509-svid bundle entries of a CA, as a SPIFFE bundle publishes them. */
function pkiKeys(ca: TestCa): object[] {
  const { kty, crv, x, y } = ca.x509.publicKey.export({ format: 'jwk' });
  return [{ use: 'x509-svid', kty, crv, x, y, x5c: [ca.der.toString('base64')] }];
}

async function send(aw: RunningAgentward, options: { headers: Record<string, string | string[]>; client?: IssuedCertificate; method?: string; path?: string; body?: string }): Promise<{ res: RawResponse; forwarded: number }> {
  const before = upstream.seen.length;
  const tls = aw === mtls ? { ca: serverCa.certPem, ...(options.client ? { cert: options.client.chainPem, key: options.client.keyPem } : {}) } : undefined;
  const res = await rawRequest(`${aw.url}${options.path ?? '/orders'}`, { method: options.method ?? 'GET', headers: options.headers, ...(options.body !== undefined ? { body: options.body } : {}), ...(tls ? { tls } : {}) });
  return { res, forwarded: upstream.seen.length - before };
}

function expectRefused(result: { res: RawResponse; forwarded: number }, status: number, code: string): void {
  expect(result.res.json().code, result.res.body).toBe(code);
  expect(result.res.status).toBe(status);
  expect(result.forwarded).toBe(0);
}

describe('X.509-SVID with a sender-constrained access token', () => {
  test('an mTLS-bound token whose client_id maps to the SVID is allowed; the policy sees the agent and the match', async () => {
    const token = await issuer.mint({ cnf: { 'x5t#S256': svid.thumbprint } });
    const { res } = await send(mtls, { headers: { authorization: `Bearer ${token}` }, client: svid });
    expect(res.status, res.body).toBe(200);
    const seen = upstream.seen.at(-1)!.headers;
    expect(seen['x-policy-agent']).toBe(AGENT);
    expect(seen['x-policy-agent-via']).toBe('x509_svid');
    expect(seen['x-policy-agent-token']).toBe('{"actor":null,"clientId":true}');
    expect(seen['x-policy-subject']).toBe('research-bot');
    expect(seen['x-policy-presented']).toBe('access_token x509_svid client_certificate');
  });

  test('a DPoP-bound token whose client_id maps to the SVID is allowed', async () => {
    const token = await issuer.mint({ cnf: { jkt: dpopKey.jkt } });
    const dpop = await proof(dpopKey, { htm: 'GET', htu: 'https://tools.example.com/orders', accessToken: token });
    const { res } = await send(mtls, { headers: { authorization: `DPoP ${token}`, dpop }, client: svid });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe(AGENT);
  });

  test('ACT-N05: the same with a token issued to another client is refused under the binding rule', async () => {
    const token = await issuer.mint({ client_id: 'other-bot', cnf: { 'x5t#S256': svid.thumbprint } });
    const result = await send(mtls, { headers: { authorization: `Bearer ${token}` }, client: svid });
    expectRefused(result, 401, 'ERR_WORKLOAD_TOKEN_MISMATCH');
    expect(String(result.res.headers['www-authenticate'])).toContain('error="invalid_token"');
    const dpopToken = await issuer.mint({ client_id: 'other-bot', cnf: { jkt: dpopKey.jkt } });
    const dpop = await proof(dpopKey, { htm: 'GET', htu: 'https://tools.example.com/orders', accessToken: dpopToken });
    expectRefused(await send(mtls, { headers: { authorization: `DPoP ${dpopToken}`, dpop }, client: svid }), 401, 'ERR_WORKLOAD_TOKEN_MISMATCH');
  });

  test("X5-N06: a certificate naming agents.example.com but issued by partners' CA is refused, though the handshake accepted it", async () => {
    const token = await issuer.mint({ cnf: { 'x5t#S256': impostor.thumbprint } });
    expectRefused(await send(mtls, { headers: { authorization: `Bearer ${token}` }, client: impostor }), 401, 'ERR_X509_SVID_CHAIN');
  });

  test('a client certificate without a SPIFFE ID is no workload credential: the token alone decides', async () => {
    const { res } = await send(mtls, { headers: { authorization: `Bearer ${await issuer.mint()}` }, client: plainClient });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe('none');
  });

  test('two workload credentials naming different agents are refused (ERR_WORKLOAD_CONFLICT)', async () => {
    const jwtSvid = await mintJwtSvid({ key: jwtIssuer, sub: `spiffe://${DOMAIN}/planner`, aud: RESOURCE });
    expectRefused(await send(mtls, { headers: { authorization: `Bearer ${jwtSvid}` }, client: svid }), 401, 'ERR_WORKLOAD_CONFLICT');
  });
});

describe('WIT + HTTP message signature with an access token', () => {
  const TARGET = 'https://tools.example.com/orders';
  const wit = (options: Partial<Parameters<typeof mintWit>[0]> = {}) => mintWit({ key: witIssuer, sub: AGENT, cnfJwk: workloadKey.publicJwk, ...options });

  /** A signed POST: the token in Authorization, the WIT, a JSON body; `sign` overrides signer options. */
  async function signedPost(options: { token?: string; wit?: string; body?: string; sign?: Partial<Parameters<typeof signRequest>[0]>; extra?: Record<string, string> } = {}) {
    const body = options.body ?? '{"item":"book","qty":1}';
    const headers: Record<string, string> = {
      authorization: `Bearer ${options.token ?? (await issuer.mint())}`,
      'workload-identity-token': options.wit ?? (await wit()),
      'content-type': 'application/json',
      ...options.extra,
    };
    const added = await signRequest({ method: 'POST', url: '/orders?dry-run=1', headers, body, key: workloadKey.privateKey, alg: workloadKey.alg, aud: TARGET, ...options.sign });
    return { headers: { ...headers, ...added } as Record<string, string>, body };
  }

  test('the signature covers the token: agent and subject both reach the policy, bound by client_id; the exact body is forwarded', async () => {
    const request = await signedPost();
    const { res } = await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request });
    expect(res.status, res.body).toBe(200);
    const seen = upstream.seen.at(-1)!;
    expect(seen.headers['x-policy-agent']).toBe(AGENT);
    expect(seen.headers['x-policy-agent-via']).toBe('wit+http_signature');
    expect(seen.headers['x-policy-agent-token']).toBe('{"actor":null,"clientId":true}');
    expect(seen.headers['x-policy-subject']).toBe('research-bot');
    expect(seen.headers['x-policy-presented']).toBe('access_token wit http_signature');
    expect(seen.body).toBe(request.body);
    for (const h of ['signature', 'signature-input', 'workload-identity-token', 'authorization']) expect(seen.headers[h]).toBeUndefined();
  });

  test('a DPoP-bound token covered by the signature is verified with its proof too', async () => {
    const token = await issuer.mint({ cnf: { jkt: dpopKey.jkt } });
    const dpop = await proof(dpopKey, { htm: 'POST', htu: TARGET, accessToken: token });
    const body = '{}';
    const headers: Record<string, string> = { authorization: `DPoP ${token}`, dpop, 'workload-identity-token': await wit(), 'content-type': 'application/json' };
    const added = await signRequest({ method: 'POST', url: '/orders', headers, body, key: workloadKey.privateKey, alg: workloadKey.alg, aud: TARGET });
    const { res } = await send(signed, { method: 'POST', headers: { ...headers, ...added }, body });
    expect(res.status, res.body).toBe(200);
    const badProof = await proof(dpopKey, { htm: 'GET', htu: TARGET, accessToken: token });
    const again = await signRequest({ method: 'POST', url: '/orders', headers: { ...headers, dpop: badProof }, body, key: workloadKey.privateKey, alg: workloadKey.alg, aud: TARGET });
    expectRefused(await send(signed, { method: 'POST', headers: { ...headers, dpop: badProof, ...again }, body }), 401, 'ERR_DPOP_PROOF_METHOD');
  });

  test('RFC 9421 §2.2.3, §2.2.4: a signature covering @authority and @scheme of the configured resource is accepted (Host is 127.0.0.1)', async () => {
    const request = await signedPost({ sign: { components: ['@method', '@scheme', '@authority', '@path', '@query', 'authorization', 'content-type', 'content-digest', 'workload-identity-token'], authority: 'tools.example.com', scheme: 'https' } });
    const { res } = await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent-via']).toBe('wit+http_signature');
  });

  test('@authority is never taken from Host: a signature over the Host the caller sent fails as a signature', async () => {
    const components = ['@method', '@authority', '@path', '@query', 'authorization', 'content-type', 'content-digest', 'workload-identity-token'];
    const request = await signedPost({ sign: { components, authority: 'evil.example' }, extra: { host: 'evil.example' } });
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request }), 400, 'ERR_HSIG_SIGNATURE');
    const port = await signedPost({ sign: { components, authority: 'tools.example.com:8443' } });
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...port }), 400, 'ERR_HSIG_SIGNATURE');
  });

  test('@scheme is the configured resource scheme: a signature over another scheme fails as a signature', async () => {
    const request = await signedPost({ sign: { components: ['@method', '@scheme', '@path', '@query', 'authorization', 'content-type', 'content-digest', 'workload-identity-token'], scheme: 'http' } });
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request }), 400, 'ERR_HSIG_SIGNATURE');
  });

  test('HSIG-N11: a body swapped after signing is refused with 400', async () => {
    const request = await signedPost();
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', headers: request.headers, body: '{"item":"car","qty":1}' }), 400, 'ERR_HSIG_DIGEST');
  });

  test('HSIG-N06: a signature that does not cover Authorization is refused: the token would be unbound', async () => {
    const request = await signedPost({ sign: { components: ['@method', '@path', '@query', 'content-type', 'content-digest', 'workload-identity-token'] } });
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request }), 400, 'ERR_HSIG_COMPONENTS');
  });

  test('HSIG-N28: a covered token swapped for another valid token after signing is refused', async () => {
    const request = await signedPost();
    request.headers.authorization = `Bearer ${await issuer.mint()}`;
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request }), 400, 'ERR_HSIG_SIGNATURE');
  });

  test('HSIG-N25: a replayed signed request is refused', async () => {
    const request = await signedPost();
    expect((await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request })).res.status).toBe(200);
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request }), 400, 'ERR_HSIG_REPLAYED');
  });

  test('HSIG-N23: a wimse-aud for another service is refused', async () => {
    const request = await signedPost({ sign: { aud: 'https://billing.example.com/orders' } });
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request }), 400, 'ERR_HSIG_AUDIENCE');
  });

  test('HSIG-N27 and U3: an invalid WIT in signature mode is a 400 without challenge', async () => {
    const now = Math.floor(Date.now() / 1000);
    const request = await signedPost({ wit: await wit({ iat: now - 7200, exp: now - 3600 }) });
    const result = await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request });
    expectRefused(result, 400, 'ERR_WIT_EXPIRED');
    expect(result.res.headers['www-authenticate']).toBeUndefined();
  });

  test('the binding rule applies to signed requests: a token of another client is refused', async () => {
    const request = await signedPost({ token: await issuer.mint({ client_id: 'other-bot' }) });
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request }), 401, 'ERR_WORKLOAD_TOKEN_MISMATCH');
  });

  test('a body over listen.maxBodyBytes is refused with 413 before the digest is computed', async () => {
    const request = await signedPost({ body: JSON.stringify({ pad: 'x'.repeat(1_100_000) }) });
    expectRefused(await send(signed, { method: 'POST', path: '/orders?dry-run=1', ...request }), 413, 'ERR_BODY_TOO_LARGE');
  });
});

describe('verifier settings: workload.wimse.httpSignature (label, maxAge, requiredComponents)', () => {
  const TARGET = 'https://tools.example.com/orders';
  const COVERED = ['@method', '@authority', '@path', '@query', 'authorization', 'content-type', 'content-digest', 'workload-identity-token'];

  async function signedPost(sign: Partial<Parameters<typeof signRequest>[0]> = {}) {
    const body = '{"item":"book","qty":1}';
    const headers: Record<string, string> = {
      authorization: `Bearer ${await issuer.mint()}`,
      'workload-identity-token': await mintWit({ key: witIssuer, sub: AGENT, cnfJwk: workloadKey.publicJwk }),
      'content-type': 'application/json',
    };
    const added = await signRequest({ method: 'POST', url: '/orders', headers, body, key: workloadKey.privateKey, alg: workloadKey.alg, aud: TARGET, components: COVERED, authority: 'tools.example.com', ...sign });
    return { headers: { ...headers, ...added } as Record<string, string | string[]>, body };
  }

  const pick = (headers: Record<string, string | string[]>, names: string[]) => Object.fromEntries(names.map((n) => [n, headers[n] as string]));

  test('a signature with the accepted label, covering the required components, is accepted', async () => {
    const { res } = await send(strict, { method: 'POST', ...(await signedPost()) });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe(AGENT);
  });

  test('RFC 9421 §7.2.8: with two tagged signatures the one of the accepted label is chosen (without a label, ERR_HSIG_MULTIPLE)', async () => {
    const request = await signedPost();
    // A second tagged signature under another label, over the same request, with a wrong key.
    const decoy = await signRequest({ method: 'POST', url: '/orders', headers: pick(request.headers, ['authorization', 'workload-identity-token', 'content-type', 'content-digest']), body: request.body, key: jwtIssuer.privateKey, alg: jwtIssuer.alg, aud: TARGET, label: 'other', components: COVERED, authority: 'tools.example.com' });
    const headers = { ...request.headers, 'signature-input': [decoy['signature-input'], request.headers['signature-input'] as string], signature: [decoy.signature, request.headers.signature as string] };
    const { res } = await send(strict, { method: 'POST', headers, body: request.body });
    expect(res.status, res.body).toBe(200);
    expectRefused(await send(signed, { method: 'POST', headers, body: request.body }), 400, 'ERR_HSIG_MULTIPLE');
  });

  test('RFC 9421 §4.1: a tagged signature under another label is refused with ERR_HSIG_LABEL', async () => {
    expectRefused(await send(strict, { method: 'POST', ...(await signedPost({ label: 'sig1' })) }), 400, 'ERR_HSIG_LABEL');
  });

  test('RFC 9421 §3.2.1: a signature created longer ago than maxAge (plus the skew) is refused, though not expired', async () => {
    const created = Math.floor(Date.now() / 1000) - 120;
    expectRefused(await send(strict, { method: 'POST', ...(await signedPost({ created, expires: created + 240 })) }), 400, 'ERR_HSIG_EXPIRED');
    // The same age is accepted where no maxAge is set.
    const { res } = await send(signed, { method: 'POST', ...(await signedPost({ created, expires: created + 240 })) });
    expect(res.status, res.body).toBe(200);
  });

  test('a signature that does not cover a required component is refused with ERR_HSIG_COMPONENTS', async () => {
    const withoutAuthority = COVERED.filter((c) => c !== '@authority');
    expectRefused(await send(strict, { method: 'POST', ...(await signedPost({ components: withoutAuthority })) }), 400, 'ERR_HSIG_COMPONENTS');
    const { res } = await send(signed, { method: 'POST', ...(await signedPost({ components: withoutAuthority })) });
    expect(res.status, res.body).toBe(200);
  });
});
