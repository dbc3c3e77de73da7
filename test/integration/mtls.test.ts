/**
 * HTTPS on the main listener and RFC 8705 certificate-bound access tokens through the real proxy
 * (RFC 8705 §3; MT-N01..MT-N05 in docs/negative-cases.md): client certificates optional and required, the
 * binding of `cnf.x5t#S256` to this connection's certificate, the certificate facts the policy
 * sees, and hot reload of the certificate, key and CA files. Every refused request is checked not
 * to reach the upstream.
 */
import { hash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request as httpsRequest } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { challengeParams, rawRequest, type RawResponse } from '../helpers/http.ts';
import { createCa, selfSigned, type IssuedCertificate, type TestCa } from '../helpers/pki.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const METADATA_PATH = '/.well-known/oauth-protected-resource/mcp';
const FACTS_POLICY = join(REPO, 'test/fixtures/policies/tls-facts');

let issuer: TestIssuer;
let upstream: TestUpstream;
let ca: TestCa;
let server: IssuedCertificate;
/** A client certificate from the CA, with every kind of SAN (and a comma in a URI and in O). */
let client: IssuedCertificate;
let otherClient: IssuedCertificate;
let rogue: IssuedCertificate;
let dir: string;
let optional: RunningAgentward;
const running: RunningAgentward[] = [];

/** Writes PEM files into `folder` and returns their paths. */
function writePem(folder: string, files: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(files).map(([name, pem]) => [name, (writeFileSync(join(folder, name), pem), join(folder, name))]));
}

async function start(listenTls: Record<string, unknown> | undefined, extra: { anonymous?: 'policy'; policy?: string } = {}): Promise<RunningAgentward> {
  const aw = await startAgentward({
    ...(listenTls ? { listen: { tls: listenTls } } : {}),
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }], ...(extra.anonymous ? { anonymous: extra.anonymous } : {}) },
    policy: { source: extra.policy ?? FACTS_POLICY },
  });
  running.push(aw);
  return aw;
}

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
  ca = createCa();
  server = ca.issue({ cn: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, usage: 'server' });
  client = ca.issue({
    cn: 'research-bot',
    o: 'Acme, Inc.',
    sans: {
      uri: ['spiffe://agents.example.com/research-bot', 'https://agents.example.com/a,b'],
      dns: ['bot.agents.example.com'],
      email: ['bot@agents.example.com'],
      ip: ['10.0.0.7', '2001:db8::7'],
    },
    usage: 'client',
  });
  otherClient = ca.issue({ cn: 'other-bot', usage: 'client' });
  rogue = selfSigned({ cn: 'research-bot', o: 'Acme, Inc.', usage: 'client' });
  dir = mkdtempSync(join(tmpdir(), 'agentward-mtls-'));
  const files = writePem(dir, { 'server.crt': server.certPem, 'server.key': server.keyPem, 'ca.pem': ca.certPem });
  optional = await start({ certFile: files['server.crt'], keyFile: files['server.key'], clientCaFile: files['ca.pem'], clientCert: 'optional' });
});
afterAll(async () => {
  await Promise.all(running.map((a) => a.stop()));
  await Promise.all([upstream?.close(), issuer?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

/** One request on a new TLS connection, presenting `cert` when given. */
function call(aw: RunningAgentward, token: string | undefined, cert?: IssuedCertificate, headers: Record<string, string> = {}, path = '/mcp/tools'): Promise<RawResponse> {
  return rawRequest(`${aw.url}${path}`, {
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    ...(aw.url.startsWith('https:') ? { tls: { ca: ca.certPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) } } : {}),
  });
}

/** What the fixture policy saw, from the headers it asked to add upstream. */
function policySaw(): { binding: string; presented: string; certificate: Record<string, unknown> | null } {
  expect(upstream.seen).toHaveLength(1);
  const h = upstream.seen[0]!.headers;
  return { binding: String(h['x-policy-binding']), presented: String(h['x-policy-presented']), certificate: JSON.parse(String(h['x-policy-certificate'])) as Record<string, unknown> | null };
}

function expectRefused(res: RawResponse, code: string): void {
  expect(res.status, res.body).toBe(401);
  expect(res.json().code).toBe(code);
  expect(challengeParams(res.headers['www-authenticate']).error).toBe('invalid_token');
  expect(upstream.seen).toHaveLength(0);
}

describe('HTTPS listener', () => {
  test('serves the metadata over TLS, with tls_client_certificate_bound_access_tokens (RFC 9728 §2)', async () => {
    const res = await call(optional, undefined, undefined, {}, METADATA_PATH);
    expect(res.status, res.body).toBe(200);
    expect(res.json()).toMatchObject({ resource: RESOURCE, tls_client_certificate_bound_access_tokens: true });
  });

  test('an unbound Bearer token without a client certificate: 200, binding bearer, no certificate; forwarded as https', async () => {
    const res = await call(optional, await issuer.mint());
    expect(res.status, res.body).toBe(200);
    expect(policySaw()).toEqual({ binding: 'bearer', presented: 'access_token', certificate: null });
    const h = upstream.seen[0]!.headers;
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h.forwarded).toBe('for=127.0.0.1;proto=https');
  });

  test('an unbound Bearer token with a client certificate: 200, binding bearer, the certificate is a policy fact', async () => {
    const res = await call(optional, await issuer.mint(), client);
    expect(res.status, res.body).toBe(200);
    const saw = policySaw();
    expect(saw.binding).toBe('bearer');
    expect(saw.presented).toBe('access_token client_certificate');
    expect(saw.certificate?.thumbprint).toBe(client.thumbprint);
  });

  test('a plain-HTTP request to the TLS port is not served', async () => {
    await expect(rawRequest(`${optional.url.replace('https:', 'http:')}/mcp/tools`)).rejects.toThrow();
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('certificate-bound tokens (RFC 8705 §3), client certificates optional', () => {
  test('the token with the certificate it is bound to: 200, binding mtls, and the certificate facts', async () => {
    const res = await call(optional, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } }), client);
    expect(res.status, res.body).toBe(200);
    const saw = policySaw();
    expect(saw.binding).toBe('mtls');
    expect(saw.presented).toBe('access_token client_certificate');
    expect(saw.certificate).toEqual({
      subject: 'CN=research-bot,O=Acme\\, Inc.',
      issuer: 'CN=agentward test CA,O=agentward tests',
      sans: {
        uri: ['spiffe://agents.example.com/research-bot', 'https://agents.example.com/a,b'],
        dns: ['bot.agents.example.com'],
        email: ['bot@agents.example.com'],
        ip: ['10.0.0.7', '2001:db8::7'],
      },
      thumbprint: client.thumbprint,
      notBefore: Math.floor(client.x509.validFromDate.getTime() / 1000),
      notAfter: Math.floor(client.x509.validToDate.getTime() / 1000),
      verified: true,
    });
    // The thumbprint is base64url(SHA-256(DER)) without padding (RFC 8705 §3.1).
    expect(client.thumbprint).toBe(hash('sha256', client.der, 'base64url'));
    expect(upstream.seen[0]!.headers.authorization).toBeUndefined();
  });

  test('MT-N01 no client certificate → 401 invalid_token ERR_MTLS_CERTIFICATE_MISSING', async () => {
    expectRefused(await call(optional, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } })), 'ERR_MTLS_CERTIFICATE_MISSING');
  });

  test('MT-N02 another certificate from the same CA → ERR_MTLS_BINDING_MISMATCH', async () => {
    expectRefused(await call(optional, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } }), otherClient), 'ERR_MTLS_BINDING_MISMATCH');
  });

  test('MT-N02 a self-signed certificate with the same names → ERR_MTLS_BINDING_MISMATCH', async () => {
    expectRefused(await call(optional, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } }), rogue), 'ERR_MTLS_BINDING_MISMATCH');
  });

  test.each([
    ['over the PEM text', () => hash('sha256', client.certPem, 'base64url')],
    ['with base64 padding', () => hash('sha256', client.der, 'base64')],
    ['as base64url with padding', () => `${client.thumbprint}=`],
    ['as hex', () => hash('sha256', client.der, 'hex')],
    ['as SHA-1', () => hash('sha1', client.der, 'base64url')],
  ])('MT-N03 a thumbprint computed %s → ERR_MTLS_BINDING_MISMATCH', async (_how, thumbprint) => {
    expectRefused(await call(optional, await issuer.mint({ cnf: { 'x5t#S256': thumbprint() } }), client), 'ERR_MTLS_BINDING_MISMATCH');
  });

  test('MT-N04 a Client-Cert header (RFC 9440) from the caller does not satisfy the binding, and is never forwarded', async () => {
    const clientCert = `:${client.der.toString('base64')}:`;
    expectRefused(await call(optional, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } }), undefined, { 'client-cert': clientCert }), 'ERR_MTLS_CERTIFICATE_MISSING');
    expectRefused(await call(optional, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } }), otherClient, { 'client-cert': clientCert }), 'ERR_MTLS_BINDING_MISMATCH');

    const res = await call(optional, await issuer.mint(), undefined, { 'client-cert': clientCert, 'client-cert-chain': clientCert });
    expect(res.status, res.body).toBe(200);
    expect(policySaw().certificate).toBeNull();
    expect(upstream.seen[0]!.headers['client-cert']).toBeUndefined();
    expect(upstream.seen[0]!.headers['client-cert-chain']).toBeUndefined();
  });

  test('a token bound to a self-signed certificate works with that certificate; the policy sees verified false (RFC 8705 §6.2)', async () => {
    const res = await call(optional, await issuer.mint({ cnf: { 'x5t#S256': rogue.thumbprint } }), rogue);
    expect(res.status, res.body).toBe(200);
    const saw = policySaw();
    expect(saw.binding).toBe('mtls');
    expect(saw.certificate).toMatchObject({ thumbprint: rogue.thumbprint, verified: false, issuer: 'CN=research-bot,O=Acme\\, Inc.' });
  });

  test('cnf with both jkt and x5t#S256 → ERR_TOKEN_CLAIM_INVALID (RFC 7800 §3.1: one key)', async () => {
    const token = await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint, jkt: '0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I' } });
    expectRefused(await call(optional, token, client), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('x5t#S256 that is not a string → ERR_TOKEN_CLAIM_INVALID', async () => {
    expectRefused(await call(optional, await issuer.mint({ cnf: { 'x5t#S256': 42 } }), client), 'ERR_TOKEN_CLAIM_INVALID');
  });
});

describe('connections that carry several requests', () => {
  /** Sends requests through `agent` (so connections or TLS sessions are reused). */
  function viaAgent(agent: Agent, token: string, cert: IssuedCertificate, maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3'): Promise<{ status: number; reused: boolean }> {
    const port = Number(new URL(optional.url).port);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port, path: '/mcp/tools', headers: { authorization: `Bearer ${token}` }, agent, ca: ca.certPem, cert: cert.certPem, key: cert.keyPem, maxVersion },
        (res) => {
          const reused = (res.socket as TLSSocket).isSessionReused();
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  test.each(['TLSv1.2', 'TLSv1.3'] as const)('a resumed %s session keeps its client certificate, and the binding holds', async (maxVersion) => {
    const agent = new Agent({ keepAlive: false, maxCachedSessions: 10 });
    const token = await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } });
    const first = await viaAgent(agent, token, client, maxVersion);
    // Let the client store the session ticket the server sends after the handshake (TLS 1.3).
    await new Promise((r) => setTimeout(r, 50));
    const second = await viaAgent(agent, token, client, maxVersion);
    expect([first, second]).toEqual([
      { status: 200, reused: false },
      { status: 200, reused: true },
    ]);
    agent.destroy();
  });

  test('requests on one keep-alive connection each see its certificate', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const token = await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } });
    for (let i = 0; i < 3; i++) expect((await viaAgent(agent, token, client)).status).toBe(200);
    expect(upstream.seen.map((r) => r.headers['x-policy-binding'])).toEqual(['mtls', 'mtls', 'mtls']);
    agent.destroy();
  });

  test('TLS 1.2 renegotiation ends the connection, so a connection cannot change its certificate', async () => {
    const port = Number(new URL(optional.url).port);
    const socket = connect({ host: '127.0.0.1', port, ca: ca.certPem, cert: client.certPem, key: client.keyPem, maxVersion: 'TLSv1.2', servername: 'localhost' });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.renegotiate({ rejectUnauthorized: false }, () => undefined);
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the connection survived the renegotiation')), 5000))]);
    await waitFor(async () => optional.logs().includes('TLS renegotiation refused'), 'the refusal in the log', 5000);
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('MT-N05 where no certificate can be seen, a bound token is refused, never taken as bearer', () => {
  test('plain HTTP listener → ERR_TOKEN_BINDING_UNSUPPORTED; the metadata does not offer the binding', async () => {
    const plain = await start(undefined);
    expectRefused(await call(plain, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } })), 'ERR_TOKEN_BINDING_UNSUPPORTED');
    const metadata = await call(plain, undefined, undefined, {}, METADATA_PATH);
    expect(metadata.json()).not.toHaveProperty('tls_client_certificate_bound_access_tokens');
  });

  test('HTTPS with clientCert none → ERR_TOKEN_BINDING_UNSUPPORTED, even with a client certificate offered', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'agentward-mtls-none-'));
    const files = writePem(folder, { 'server.crt': server.certPem, 'server.key': server.keyPem });
    const none = await start({ certFile: files['server.crt'], keyFile: files['server.key'] });
    expectRefused(await call(none, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } }), client), 'ERR_TOKEN_BINDING_UNSUPPORTED');
    const res = await call(none, await issuer.mint(), client);
    expect(res.status, res.body).toBe(200);
    // The server asked for no certificate, so none was sent.
    expect(policySaw()).toMatchObject({ binding: 'bearer', certificate: null });
    upstream.seen.length = 0;
    const metadata = await call(none, undefined, undefined, {}, METADATA_PATH);
    expect(metadata.json()).not.toHaveProperty('tls_client_certificate_bound_access_tokens');
  });
});

describe('oauth.anonymous: policy with client certificates optional', () => {
  test('a connection with a client certificate is not anonymous: 401 ERR_CREDENTIALS_MISSING, even where anonymous requests are allowed', async () => {
    const anonymous = await start(
      { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), clientCaFile: join(dir, 'ca.pem'), clientCert: 'optional' },
      { anonymous: 'policy', policy: join(REPO, 'test/fixtures/policies/hygiene') },
    );
    // Without a certificate the policy opens /public to anonymous callers...
    expect((await call(anonymous, undefined, undefined, {}, '/public')).status).toBe(200);
    upstream.seen.length = 0;
    // ...but a client certificate is a credential: verified or refused, never anonymous.
    for (const cert of [client, rogue]) {
      const res = await call(anonymous, undefined, cert, {}, '/public');
      expect(res.status, res.body).toBe(401);
      expect(res.json().code).toBe('ERR_CREDENTIALS_MISSING');
    }
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('client certificates required', () => {
  let required: RunningAgentward;
  beforeAll(async () => {
    const folder = mkdtempSync(join(tmpdir(), 'agentward-mtls-required-'));
    const files = writePem(folder, { 'server.crt': server.certPem, 'server.key': server.keyPem, 'ca.pem': ca.certPem });
    required = await start({ certFile: files['server.crt'], keyFile: files['server.key'], clientCaFile: files['ca.pem'], clientCert: 'required' });
  });

  test('without a certificate the TLS handshake fails: no HTTP response, nothing upstream', async () => {
    await expect(call(required, await issuer.mint())).rejects.toThrow();
    expect(upstream.seen).toHaveLength(0);
    await waitFor(async () => required.logs().includes('TLS handshake failed'), 'the handshake failure in the log', 5000);
  });

  test('with a certificate the CA does not verify the handshake fails too', async () => {
    await expect(call(required, await issuer.mint({ cnf: { 'x5t#S256': rogue.thumbprint } }), rogue)).rejects.toThrow();
    expect(upstream.seen).toHaveLength(0);
  });

  test('with a verified certificate: bound and unbound tokens work', async () => {
    const bound = await call(required, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } }), client);
    expect(bound.status, bound.body).toBe(200);
    expect(policySaw()).toMatchObject({ binding: 'mtls', certificate: { verified: true, thumbprint: client.thumbprint } });
    upstream.seen.length = 0;
    const unbound = await call(required, await issuer.mint(), otherClient);
    expect(unbound.status, unbound.body).toBe(200);
    expect(policySaw()).toMatchObject({ binding: 'bearer', certificate: { verified: true, thumbprint: otherClient.thumbprint } });
  });

  test('a certificate-bound token with another verified certificate → ERR_MTLS_BINDING_MISMATCH', async () => {
    expectRefused(await call(required, await issuer.mint({ cnf: { 'x5t#S256': client.thumbprint } }), otherClient), 'ERR_MTLS_BINDING_MISMATCH');
  });
});

/** SHA-256 thumbprint of the certificate a new TLS connection to `aw` is served. */
function servedThumbprint(aw: RunningAgentward): Promise<string> {
  const port = Number(new URL(aw.url).port);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      resolve(cert ? hash('sha256', cert.raw, 'base64url') : '');
    });
    socket.on('error', reject);
  });
}

describe('hot reload of the certificate, key and CA files', () => {
  test('new handshakes get the new files; a broken file keeps the last good ones and is logged', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'agentward-mtls-reload-'));
    const newCa = createCa('agentward second CA');
    const newClient = newCa.issue({ cn: 'new-bot', usage: 'client' });
    const files = writePem(folder, { 'server.crt': server.certPem, 'server.key': server.keyPem, 'ca.pem': ca.certPem });
    const aw = await start({ certFile: files['server.crt'], keyFile: files['server.key'], clientCaFile: files['ca.pem'], clientCert: 'optional' });
    const readyz = async () => (await rawRequest(`${aw.adminUrl}/readyz`)).json() as { tls: { lastError: string | null } };

    expect(await servedThumbprint(aw)).toBe(server.thumbprint);
    const before = await call(aw, await issuer.mint(), newClient);
    expect(before.status, before.body).toBe(200);
    expect(policySaw().certificate).toMatchObject({ thumbprint: newClient.thumbprint, verified: false });
    upstream.seen.length = 0;

    // A new server certificate and key (replaced by rename, as editors and Kubernetes do), and a CA file that trusts the new CA.
    const next = newCa.issue({ cn: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, usage: 'server' });
    writeFileSync(join(folder, 'server.key.tmp'), next.keyPem);
    writeFileSync(join(folder, 'server.crt.tmp'), next.certPem);
    renameSync(join(folder, 'server.key.tmp'), files['server.key']!);
    renameSync(join(folder, 'server.crt.tmp'), files['server.crt']!);
    writeFileSync(files['ca.pem']!, ca.certPem + newCa.certPem);
    await waitFor(async () => (await servedThumbprint(aw)) === next.thumbprint, 'the new server certificate', 10_000);
    await waitFor(async () => aw.logs().includes('TLS files reloaded'), 'the reload to be logged', 10_000);
    const after = await rawRequest(`${aw.url}/mcp/tools`, { headers: { authorization: `Bearer ${await issuer.mint()}` }, tls: { ca: newCa.certPem, cert: newClient.certPem, key: newClient.keyPem } });
    expect(after.status, after.body).toBe(200);
    expect(policySaw().certificate).toMatchObject({ thumbprint: newClient.thumbprint, verified: true });

    // A broken certificate file: the reload fails, the last good certificate stays.
    writeFileSync(files['server.crt']!, 'not a certificate\n');
    await waitFor(async () => aw.logs().includes('TLS files reload failed'), 'the failed reload in the log', 10_000);
    expect(await servedThumbprint(aw)).toBe(next.thumbprint);
    expect((await readyz()).tls.lastError).toContain('listen.tls.certFile');

    // A key that does not belong to the certificate is refused the same way.
    writeFileSync(files['server.crt']!, server.certPem);
    await waitFor(async () => ((await readyz()).tls.lastError ?? '').includes('listen.tls.keyFile'), 'the mismatched key to be refused', 10_000);
    expect(await servedThumbprint(aw)).toBe(next.thumbprint);

    // Fixed: the files are taken again and the error clears.
    writeFileSync(files['server.key']!, server.keyPem);
    await waitFor(async () => (await servedThumbprint(aw)) === server.thumbprint, 'the repaired files', 10_000);
    await waitFor(async () => (await readyz()).tls.lastError === null, 'lastError to clear', 10_000);
  });

  test('a Kubernetes-style secret volume (files are symlinks through ..data, swapped atomically) is followed', async () => {
    const volume = mkdtempSync(join(tmpdir(), 'agentward-mtls-volume-'));
    const version = (name: string, cert: IssuedCertificate) => {
      mkdirSync(join(volume, name));
      writePem(join(volume, name), { 'tls.crt': cert.certPem, 'tls.key': cert.keyPem });
    };
    version('..2026_01', server);
    symlinkSync('..2026_01', join(volume, '..data'));
    symlinkSync('..data/tls.crt', join(volume, 'tls.crt'));
    symlinkSync('..data/tls.key', join(volume, 'tls.key'));
    const aw = await start({ certFile: join(volume, 'tls.crt'), keyFile: join(volume, 'tls.key') });
    expect(await servedThumbprint(aw)).toBe(server.thumbprint);

    const renewed = ca.issue({ cn: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, usage: 'server' });
    version('..2026_02', renewed);
    symlinkSync('..2026_02', join(volume, '..data_tmp'));
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    await waitFor(async () => (await servedThumbprint(aw)) === renewed.thumbprint, 'the renewed certificate', 10_000);
  });
});
