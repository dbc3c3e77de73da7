/**
 * The client certificate from a trusted TLS-terminating hop (RFC 9440 `Client-Cert`,
 * `Client-Cert-Chain`; `listen.trustedProxies`) through the real proxy: certificate-bound tokens
 * (RFC 8705) and X.509-SVIDs behind an ingress, the hop trusted by address (plain HTTP) or by the
 * certificate it connects with (mTLS from the ingress), agentward's own chain check, and the
 * refusals: a field from an untrusted peer, a malformed field, a chain that does not verify, and a
 * certificate both on the connection and in the field. Loopback tests always come from
 * 127.0.0.1, so an untrusted peer is one whose configuration lists other addresses. Every refused
 * request is checked not to reach the upstream.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, type RawResponse } from '../helpers/http.ts';
import { createCa, selfSigned, spiffeBundle, type IssuedCertificate, type TestCa } from '../helpers/pki.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const METADATA_PATH = '/.well-known/oauth-protected-resource/mcp';
const FACTS_POLICY = join(REPO, 'test/fixtures/policies/tls-facts');
const WORKLOAD_POLICY = join(REPO, 'test/fixtures/policies/workload');
const INGRESS = 'spiffe://infra.example.com/ns/ingress/sa/gateway';
const DOMAIN = 'agents.example.com';
const AGENT = `spiffe://${DOMAIN}/research-bot`;

let issuer: TestIssuer;
let upstream: TestUpstream;
/** Issues the agents' client certificates: what the forwarded chains must reach. */
let agentsCa: TestCa;
/** Issues agentward's server certificate and the ingress's client certificate. */
let infraCa: TestCa;
let client: IssuedCertificate;
let otherClient: IssuedCertificate;
/** Issued by an intermediate of agentsCa: verifies only with the intermediate in Client-Cert-Chain. */
let deepClient: IssuedCertificate;
let deepIntermediate: TestCa;
let ingress: IssuedCertificate;
/** HTTP; trusts 127.0.0.1 by address. */
let byAddress: RunningAgentward;
/** HTTPS, client certificates optional; trusts the ingress by its certificate only (addresses 10.0.0.0/8). */
let byCertificate: RunningAgentward;
/** HTTPS, client certificates optional; trusts 127.0.0.1 by address. */
let tlsByAddress: RunningAgentward;
/** HTTP with a workload section (agents.example.com and a partner domain), trusting 127.0.0.1: X.509-SVIDs forwarded. */
let svidHop: RunningAgentward;
let svid: IssuedCertificate;
let impostor: IssuedCertificate;

/** `Client-Cert` value of a certificate: an RFC 8941 Byte Sequence of its DER (RFC 9440 §2.2). */
const field = (cert: IssuedCertificate): string => `:${cert.der.toString('base64')}:`;

beforeAll(async () => {
  [issuer, upstream] = await Promise.all([startIssuer({ audience: RESOURCE }), startUpstream()]);
  agentsCa = createCa('agents CA', { sans: { uri: [`spiffe://${DOMAIN}`] } });
  infraCa = createCa('infra CA');
  const partnersCa = createCa('partners CA', { sans: { uri: ['spiffe://partners.example.org'] } });
  client = agentsCa.issue({ cn: 'research-bot', o: 'Acme, Inc.', sans: { dns: ['bot.agents.example.com'] }, usage: 'client' });
  otherClient = agentsCa.issue({ cn: 'other-bot', usage: 'client' });
  deepIntermediate = agentsCa.intermediate('agents intermediate');
  deepClient = deepIntermediate.issue({ cn: 'deep-bot', usage: 'client' });
  ingress = infraCa.issue({ cn: 'gateway', sans: { uri: [INGRESS] }, usage: 'client' });
  svid = agentsCa.issue({ cn: 'research-bot', sans: { uri: [AGENT] }, usage: 'client' });
  impostor = partnersCa.issue({ cn: 'impostor', sans: { uri: [AGENT] }, usage: 'client' });
  const server = infraCa.issue({ cn: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, usage: 'server' });

  const dir = mkdtempSync(join(tmpdir(), 'agentward-client-cert-'));
  const files: Record<string, string> = {
    'agents-ca.pem': agentsCa.certPem,
    'infra-ca.pem': infraCa.certPem,
    'server.crt': server.certPem,
    'server.key': server.keyPem,
    'agents.json': JSON.stringify(spiffeBundle([agentsCa])),
    'partners.json': JSON.stringify(spiffeBundle([partnersCa])),
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const at = (name: string) => join(dir, name);
  const base = { upstream: { url: upstream.url }, resource: { id: RESOURCE }, oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] }, policy: { source: FACTS_POLICY } };
  const tls = { certFile: at('server.crt'), keyFile: at('server.key'), clientCaFile: at('infra-ca.pem'), clientCert: 'optional' };
  [byAddress, byCertificate, tlsByAddress, svidHop] = await Promise.all([
    startAgentward({ ...base, listen: { trustedProxies: { addresses: ['127.0.0.1'], clientCertHeaders: true, clientCaFile: at('agents-ca.pem') } } }),
    startAgentward({ ...base, listen: { tls, trustedProxies: { addresses: ['10.0.0.0/8'], peerNames: [INGRESS], clientCertHeaders: true, clientCaFile: at('agents-ca.pem') } } }),
    startAgentward({ ...base, listen: { tls: { ...tls, clientCaFile: at('agents-ca.pem') }, trustedProxies: { addresses: ['127.0.0.0/8'], clientCertHeaders: true, clientCaFile: at('agents-ca.pem') } } }),
    startAgentward({
      ...base,
      policy: { source: WORKLOAD_POLICY },
      listen: { trustedProxies: { addresses: ['127.0.0.1'], clientCertHeaders: true } },
      workload: {
        trustDomains: [
          { name: DOMAIN, bundle: { file: at('agents.json') } },
          { name: 'partners.example.org', bundle: { file: at('partners.json') } },
        ],
        binding: { rule: 'client_id', clients: { 'research-bot': AGENT } },
      },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([byAddress, byCertificate, tlsByAddress, svidHop].map((a) => a?.stop()));
  await Promise.all([upstream?.close(), issuer?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

/** One request on a new connection; over TLS presenting `connectionCert` when given. */
function call(aw: RunningAgentward, token: string | undefined, headers: Record<string, string | string[]> = {}, connectionCert?: IssuedCertificate, path = '/mcp/tools'): Promise<RawResponse> {
  return rawRequest(`${aw.url}${path}`, {
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    ...(aw.url.startsWith('https:') ? { tls: { ca: infraCa.certPem, ...(connectionCert ? { cert: connectionCert.certPem, key: connectionCert.keyPem } : {}) } } : {}),
  });
}

const bound = (cert: IssuedCertificate, claims: Record<string, unknown> = {}) => issuer.mint({ cnf: { 'x5t#S256': cert.thumbprint }, ...claims });

/** What the fixture policy saw, from the headers it asked to add upstream. */
function policySaw(): { binding: string; presented: string; certificate: Record<string, unknown> | null } {
  expect(upstream.seen).toHaveLength(1);
  const h = upstream.seen[0]!.headers;
  return { binding: String(h['x-policy-binding']), presented: String(h['x-policy-presented']), certificate: JSON.parse(String(h['x-policy-certificate'])) as Record<string, unknown> | null };
}

function expectRefused(res: RawResponse, status: number, code: string): void {
  expect(res.json().code, res.body).toBe(code);
  expect(res.status).toBe(status);
  expect(upstream.seen).toHaveLength(0);
}

describe('a hop trusted by address (TLS ends at the ingress, plain HTTP to agentward)', () => {
  test('a certificate-bound token with the forwarded certificate: 200, binding mtls, the facts as over TLS; the fields are not forwarded', async () => {
    const res = await call(byAddress, await bound(client), { 'client-cert': field(client) });
    expect(res.status, res.body).toBe(200);
    const saw = policySaw();
    expect(saw.binding).toBe('mtls');
    expect(saw.presented).toBe('access_token client_certificate');
    expect(saw.certificate).toEqual({
      subject: 'CN=research-bot,O=Acme\\, Inc.',
      issuer: 'CN=agents CA,O=agentward tests',
      sans: { uri: [], dns: ['bot.agents.example.com'], email: [], ip: [] },
      thumbprint: client.thumbprint,
      notBefore: Math.floor(client.x509.validFromDate.getTime() / 1000),
      notAfter: Math.floor(client.x509.validToDate.getTime() / 1000),
      verified: true,
    });
    expect(upstream.seen[0]!.headers['client-cert']).toBeUndefined();
  });

  test('the metadata offers certificate-bound tokens (RFC 9728 §2) though agentward serves plain HTTP', async () => {
    const res = await call(byAddress, undefined, {}, undefined, METADATA_PATH);
    expect(res.json()).toMatchObject({ tls_client_certificate_bound_access_tokens: true });
  });

  test('a certificate under an intermediate verifies with the intermediate in Client-Cert-Chain', async () => {
    const res = await call(byAddress, await bound(deepClient), { 'client-cert': field(deepClient), 'client-cert-chain': field(deepIntermediate) });
    expect(res.status, res.body).toBe(200);
    expect(policySaw()).toMatchObject({ binding: 'mtls', certificate: { thumbprint: deepClient.thumbprint, verified: true } });
  });

  test('an unbound token with a forwarded certificate: 200, binding bearer, the certificate is a policy fact', async () => {
    const res = await call(byAddress, await issuer.mint(), { 'client-cert': field(otherClient) });
    expect(res.status, res.body).toBe(200);
    expect(policySaw()).toMatchObject({ binding: 'bearer', presented: 'access_token client_certificate', certificate: { thumbprint: otherClient.thumbprint } });
  });

  test('MT-N01 behind the hop: a bound token and no Client-Cert → 401 ERR_MTLS_CERTIFICATE_MISSING', async () => {
    expectRefused(await call(byAddress, await bound(client)), 401, 'ERR_MTLS_CERTIFICATE_MISSING');
  });

  test('MT-N02 behind the hop: another forwarded certificate → 401 ERR_MTLS_BINDING_MISMATCH', async () => {
    expectRefused(await call(byAddress, await bound(client), { 'client-cert': field(otherClient) }), 401, 'ERR_MTLS_BINDING_MISMATCH');
  });

  test.each([
    ['a Token, not a Byte Sequence', () => ({ 'client-cert': 'MIIB' })],
    ['a String', () => ({ 'client-cert': `"${client.der.toString('base64')}"` })],
    ['bytes that are no certificate', () => ({ 'client-cert': ':AQID:' })],
    ['an empty Byte Sequence', () => ({ 'client-cert': '::' })],
    ['two Client-Cert fields', () => ({ 'client-cert': [field(client), field(otherClient)] })],
    ['Client-Cert-Chain without Client-Cert', () => ({ 'client-cert-chain': field(deepIntermediate) })],
    ['a Client-Cert-Chain member that is an inner list', () => ({ 'client-cert': field(deepClient), 'client-cert-chain': `(${field(deepIntermediate)})` })],
    ['a Client-Cert-Chain that is no List', () => ({ 'client-cert': field(deepClient), 'client-cert-chain': ':not base64!:' })],
  ])('malformed: %s → 400 ERR_CLIENT_CERT_HEADER_MALFORMED', async (_case, headers) => {
    expectRefused(await call(byAddress, await bound(client), headers()), 400, 'ERR_CLIENT_CERT_HEADER_MALFORMED');
  });

  test.each([
    ['a self-signed certificate', () => ({ cert: selfSigned({ cn: 'research-bot', usage: 'client' }) })],
    ['a certificate of another CA', () => ({ cert: infraCa.issue({ cn: 'research-bot', usage: 'client' }) })],
    ['a certificate under an intermediate, sent without it', () => ({ cert: deepClient })],
    ['an expired certificate', () => ({ cert: agentsCa.issue({ cn: 'old-bot', usage: 'client', notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) }) })],
    ['a certificate for servers only (extended key usage serverAuth)', () => ({ cert: agentsCa.issue({ cn: 'server-ish', usage: 'server' }) })],
    [
      'a look-alike root of the same name, sent in the chain (never an anchor)',
      () => {
        const fake = createCa('agents CA', { sans: { uri: [`spiffe://${DOMAIN}`] } });
        return { cert: fake.issue({ cn: 'research-bot', usage: 'client' }), chain: field(fake) };
      },
    ],
  ])('agentward verifies the chain itself: %s → 401 ERR_CLIENT_CERT_HEADER_UNVERIFIED', async (_case, make) => {
    const { cert, chain } = make() as { cert: IssuedCertificate; chain?: string };
    const headers = { 'client-cert': field(cert), ...(chain ? { 'client-cert-chain': chain } : {}) };
    expectRefused(await call(byAddress, await bound(cert), headers), 401, 'ERR_CLIENT_CERT_HEADER_UNVERIFIED');
  });
});

describe('a hop trusted by its TLS client certificate (mTLS from the ingress)', () => {
  test('the ingress forwards the caller\'s certificate: the bound token is accepted; the policy sees the caller\'s certificate, not the ingress\'s', async () => {
    const res = await call(byCertificate, await bound(client), { 'client-cert': field(client) }, ingress);
    expect(res.status, res.body).toBe(200);
    expect(policySaw()).toMatchObject({ binding: 'mtls', presented: 'access_token client_certificate', certificate: { thumbprint: client.thumbprint, verified: true } });
  });

  test('without Client-Cert the ingress\'s own certificate is never taken as the caller\'s', async () => {
    expectRefused(await call(byCertificate, await bound(ingress), {}, ingress), 401, 'ERR_MTLS_CERTIFICATE_MISSING');
    const res = await call(byCertificate, await issuer.mint(), {}, ingress);
    expect(res.status, res.body).toBe(200);
    expect(policySaw()).toMatchObject({ presented: 'access_token', certificate: null });
  });

  test('a forwarded chain that does not verify is refused from a trusted ingress too → ERR_CLIENT_CERT_HEADER_UNVERIFIED', async () => {
    const rogue = selfSigned({ cn: 'research-bot', usage: 'client' });
    expectRefused(await call(byCertificate, await bound(rogue), { 'client-cert': field(rogue) }, ingress), 401, 'ERR_CLIENT_CERT_HEADER_UNVERIFIED');
  });
});

describe('untrusted peers (MT-N04 with trusted proxies configured)', () => {
  test('a caller connecting directly with Client-Cert → 400 ERR_CLIENT_CERT_HEADER_UNTRUSTED, whatever its own certificate', async () => {
    expectRefused(await call(byCertificate, await bound(client), { 'client-cert': field(client) }), 400, 'ERR_CLIENT_CERT_HEADER_UNTRUSTED');
    expectRefused(await call(byCertificate, await bound(client), { 'client-cert': field(client) }, client), 400, 'ERR_CLIENT_CERT_HEADER_UNTRUSTED');
    expectRefused(await call(byCertificate, await bound(client), { 'client-cert-chain': field(deepIntermediate) }), 400, 'ERR_CLIENT_CERT_HEADER_UNTRUSTED');
  });

  test('a certificate naming the ingress that the handshake did not verify does not make its holder a trusted hop', async () => {
    const lookalike = selfSigned({ cn: 'gateway', sans: { uri: [INGRESS] }, usage: 'client' });
    expectRefused(await call(byCertificate, await bound(client), { 'client-cert': field(client) }, lookalike), 400, 'ERR_CLIENT_CERT_HEADER_UNTRUSTED');
  });

  test('a verified certificate of another name is not the ingress', async () => {
    const other = infraCa.issue({ cn: 'other', sans: { uri: ['spiffe://infra.example.com/ns/other/sa/job'] }, usage: 'client' });
    expectRefused(await call(byCertificate, await bound(client), { 'client-cert': field(client) }, other), 400, 'ERR_CLIENT_CERT_HEADER_UNTRUSTED');
  });

  test('an untrusted peer without the fields is served as before: its own TLS certificate counts', async () => {
    const res = await call(byCertificate, await bound(ingress), {}, client);
    expect(res.json().code).toBe('ERR_MTLS_BINDING_MISMATCH');
    const own = await call(tlsByAddress, await bound(client), {}, client);
    expect(own.status, own.body).toBe(200);
  });
});

describe('a certificate on the connection and in Client-Cert', () => {
  test('from a hop trusted by address → 400 ERR_CLIENT_CERT_AMBIGUOUS, neither is chosen', async () => {
    expectRefused(await call(tlsByAddress, await bound(client), { 'client-cert': field(client) }, client), 400, 'ERR_CLIENT_CERT_AMBIGUOUS');
    expectRefused(await call(tlsByAddress, await bound(client), { 'client-cert': field(client) }, otherClient), 400, 'ERR_CLIENT_CERT_AMBIGUOUS');
  });

  test('the same hop without a connection certificate: the forwarded one is used', async () => {
    const res = await call(tlsByAddress, await bound(client), { 'client-cert': field(client) });
    expect(res.status, res.body).toBe(200);
    expect(policySaw()).toMatchObject({ binding: 'mtls', certificate: { thumbprint: client.thumbprint } });
  });
});

describe('X.509-SVIDs behind the ingress', () => {
  function agentSaw(): Record<string, string> {
    expect(upstream.seen).toHaveLength(1);
    return upstream.seen[0]!.headers as Record<string, string>;
  }

  test('a forwarded X.509-SVID proves the agent, with its certificate-bound token', async () => {
    const res = await call(svidHop, await bound(svid, { client_id: 'research-bot' }), { 'client-cert': field(svid) });
    expect(res.status, res.body).toBe(200);
    const seen = agentSaw();
    expect(seen['x-policy-agent']).toBe(AGENT);
    expect(seen['x-policy-agent-via']).toBe('x509_svid');
    expect(seen['x-policy-presented']).toBe('access_token x509_svid client_certificate');
  });

  test('X5-N06 behind the ingress: an SVID of agents.example.com signed by the partners CA → 401 ERR_X509_SVID_CHAIN', async () => {
    // The partners CA is an anchor of the forwarded chain (a bundle authority), so the field
    // verifies; the SVID check then ties the ID to its own trust domain.
    expectRefused(await call(svidHop, await bound(impostor, { client_id: 'research-bot' }), { 'client-cert': field(impostor) }), 401, 'ERR_X509_SVID_CHAIN');
  });

  test('a certificate no bundle authority vouches for → ERR_CLIENT_CERT_HEADER_UNVERIFIED', async () => {
    const stray = infraCa.issue({ cn: 'w', sans: { uri: [AGENT] }, usage: 'client' });
    expectRefused(await call(svidHop, await bound(stray, { client_id: 'research-bot' }), { 'client-cert': field(stray) }), 401, 'ERR_CLIENT_CERT_HEADER_UNVERIFIED');
  });
});
