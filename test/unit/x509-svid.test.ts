/**
 * X509-SVIDs on a real TLS connection (src/credentials/x509-svid.ts): a node:tls server on
 * loopback asks for a client certificate and verifies it against every CA of the test (as the
 * listener does with clientCaFile plus all bundles), then verifyX509Svid judges the server-side
 * socket. One test per negative case of docs/negative-cases.md (X5-N01..N08) and ID-N15, plus the
 * decisions of the module (plain certificates, EKU, intermediates, anchors, caching).
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { Socket, type AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, test } from 'vitest';
import { presentedCertificate, tlsCertificateOf } from '../../src/credentials/client-certificate.ts';
import { verifyX509Svid, type X509AuthoritiesOf } from '../../src/credentials/x509-svid.ts';
import { AgentwardError, type ErrorCode } from '../../src/errors.ts';
import { parseBundle } from '../../src/keys/trust-bundle.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createCa, selfSigned, spiffeBundle, type CertificateOptions, type IssuedCertificate, type TestCa } from '../helpers/pki.ts';

const HOUR = 3600_000;
const serverCa = createCa('listener CA');
const serverCert = serverCa.issue({ cn: 'localhost', sans: { dns: ['localhost'] }, usage: 'server' });
/** The X.509 authority of example.org, and of other.org. */
const caA = createCa('example.org CA', { sans: { uri: ['spiffe://example.org'] } });
const caB = createCa('other.org CA', { sans: { uri: ['spiffe://other.org'] } });
/** A CA for plain (non-SPIFFE) client certificates, as in listen.tls.clientCaFile. */
const plainCa = createCa('plain client CA');

const domains = new Map<string, readonly X509Certificate[]>([
  ['example.org', [caA.x509]],
  ['other.org', [caB.x509]],
]);
const authoritiesOf: X509AuthoritiesOf = (td) => domains.get(td);

const svid = (ca: TestCa, id: string, options: Partial<CertificateOptions> = {}): IssuedCertificate =>
  ca.issue({ cn: 'workload', sans: { uri: [id] }, extKeyUsage: ['serverAuth', 'clientAuth'], ...options });

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const close of cleanup.splice(0)) close();
});

/**
 * Connects to a fresh TLS server on loopback with `client` (its chain and key) and returns the
 * server side of the connection. The server asks for a certificate, verifies it against
 * `trusted` (the handshake's CA set) and lets unverified ones through, like clientCert optional.
 */
async function handshake(client: IssuedCertificate | undefined, trusted: readonly IssuedCertificate[] = [caA, caB, plainCa]): Promise<TLSSocket> {
  const server = createServer({ cert: serverCert.certPem, key: serverCert.keyPem, requestCert: true, rejectUnauthorized: false, ca: trusted.map((c) => c.certPem) });
  const accepted = once(server, 'secureConnection') as Promise<[TLSSocket]>;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = connect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    servername: 'localhost',
    ca: serverCa.certPem,
    ...(client === undefined ? {} : { cert: client.chainPem, key: client.keyPem }),
  });
  socket.on('error', () => {});
  const [serverSocket] = await accepted;
  cleanup.push(() => {
    socket.destroy();
    serverSocket.destroy();
    server.close();
  });
  return serverSocket;
}

async function verify(client: IssuedCertificate | undefined, options: { trusted?: readonly IssuedCertificate[]; lookup?: X509AuthoritiesOf; now?: number } = {}) {
  const socket = await handshake(client, options.trusted);
  return verifyX509Svid(tlsCertificateOf(socket), options.lookup ?? authoritiesOf, options.now ?? Date.now());
}

async function failure(client: IssuedCertificate, options: Parameters<typeof verify>[1] = {}): Promise<{ code: ErrorCode; detail: string }> {
  try {
    await verify(client, options);
  } catch (err) {
    expect(err).toBeInstanceOf(AgentwardError);
    return { code: (err as AgentwardError).code, detail: (err as AgentwardError).detail };
  }
  throw new Error('the certificate was accepted');
}

describe('what is an X509-SVID', () => {
  test('a valid SVID issued by the trust domain authority → verified', async () => {
    const leaf = svid(caA, 'spiffe://example.org/ns/agents/sa/planner');
    const verified = await verify(leaf);
    expect(verified).toEqual({
      id: 'spiffe://example.org/ns/agents/sa/planner',
      trustDomain: 'example.org',
      path: '/ns/agents/sa/planner',
      expiresAt: Math.floor(leaf.x509.validToDate.getTime() / 1000),
      claims: {
        serialNumber: leaf.x509.serialNumber,
        fingerprint256: leaf.x509.fingerprint256,
        issuer: 'CN=example.org CA,O=agentward tests',
        notBefore: Math.floor(leaf.x509.validFromDate.getTime() / 1000),
        notAfter: Math.floor(leaf.x509.validToDate.getTime() / 1000),
      },
    });
    expect(Object.isFrozen(verified)).toBe(true);
  });

  test('a valid SVID via intermediates the client sends → verified', async () => {
    const intermediate = caA.intermediate('example.org intermediate 1').intermediate('example.org intermediate 2');
    const leaf = svid(intermediate, 'spiffe://example.org/agent');
    // The handshake trusts only the root: the client must send both intermediates.
    expect(leaf.chainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    expect((await verify(leaf))?.id).toBe('spiffe://example.org/agent');
  });

  test('a plain client certificate (no URI SAN) → undefined', async () => {
    expect(await verify(plainCa.issue({ cn: 'agent', sans: { dns: ['agent.example'] }, usage: 'client' }))).toBeUndefined();
  });

  test('a certificate whose only URI SAN is not spiffe → undefined (not a workload credential)', async () => {
    expect(await verify(plainCa.issue({ cn: 'agent', sans: { uri: ['https://agent.example/id'] }, usage: 'client' }))).toBeUndefined();
  });

  test('no client certificate, or no TLS → undefined', async () => {
    expect(await verify(undefined)).toBeUndefined();
    expect(verifyX509Svid(tlsCertificateOf(new Socket()), authoritiesOf, Date.now())).toBeUndefined();
  });

  test('DNS SANs next to the one URI SAN are allowed (X509-SVID §2 counts URI SANs)', async () => {
    expect((await verify(caA.issue({ cn: 'w', sans: { dns: ['w.example.org'], uri: ['spiffe://example.org/w'] }, usage: 'client' })))?.id).toBe('spiffe://example.org/w');
  });
});

describe('negative cases (X509-SVID §4–§5; X5 and ID in docs/negative-cases.md)', () => {
  test('X5-N01: two URI SANs → ERR_X509_SVID_SAN', async () => {
    expect((await failure(caA.issue({ cn: 'w', sans: { uri: ['spiffe://example.org/a', 'spiffe://example.org/b'] } }))).code).toBe('ERR_X509_SVID_SAN');
  });

  test('X5-N02: a SPIFFE ID next to a non-spiffe URI SAN → ERR_X509_SVID_SAN', async () => {
    const found = await failure(caA.issue({ cn: 'w', sans: { uri: ['https://w.example.org/', 'spiffe://example.org/w'] } }));
    expect(found).toEqual({ code: 'ERR_X509_SVID_SAN', detail: 'The client certificate has 2 URI SANs; an X509-SVID has exactly one, its SPIFFE ID (X509-SVID section 2).' });
  });

  test('X5-N03: root path "/" → ERR_X509_SVID_ID', async () => {
    expect((await failure(svid(caA, 'spiffe://example.org/'))).code).toBe('ERR_X509_SVID_ID');
  });

  test('ID-N15: a leaf naming only its trust domain (no path) → ERR_X509_SVID_ID', async () => {
    const found = await failure(svid(caA, 'spiffe://example.org'));
    expect(found.code).toBe('ERR_X509_SVID_ID');
    expect(found.detail).toContain('path');
  });

  test('X5-N04: a leaf with basic constraints cA=true → ERR_X509_SVID_LEAF', async () => {
    expect(await failure(svid(caA, 'spiffe://example.org/w', { basicConstraints: { ca: true } }))).toMatchObject({ code: 'ERR_X509_SVID_LEAF', detail: expect.stringContaining('cA=true') });
  });

  test('X5-N05: a leaf with keyCertSign (or cRLSign) → ERR_X509_SVID_LEAF', async () => {
    expect((await failure(svid(caA, 'spiffe://example.org/w', { keyUsage: ['digitalSignature', 'keyCertSign'] }))).code).toBe('ERR_X509_SVID_LEAF');
    expect((await failure(svid(caA, 'spiffe://example.org/w', { keyUsage: ['digitalSignature', 'cRLSign'] }))).code).toBe('ERR_X509_SVID_LEAF');
  });

  test('X5-N06: an example.org ID under the other.org authority → ERR_X509_SVID_CHAIN (the handshake trusted it)', async () => {
    const socket = await handshake(svid(caB, 'spiffe://example.org/w'));
    expect(socket.authorized).toBe(true);
    expect(() => verifyX509Svid(tlsCertificateOf(socket), authoritiesOf, Date.now())).toThrow(expect.objectContaining({ code: 'ERR_X509_SVID_CHAIN' }));
  });

  test('X5-N06: an ID under a CA that is not in any bundle (clientCaFile) → ERR_X509_SVID_CHAIN', async () => {
    expect((await failure(svid(plainCa, 'spiffe://example.org/w'))).code).toBe('ERR_X509_SVID_CHAIN');
  });

  test('X5-N07: an expired or not yet valid leaf → ERR_X509_SVID_EXPIRED', async () => {
    const expired = svid(caA, 'spiffe://example.org/w', { notBefore: new Date(Date.now() - 3 * HOUR), notAfter: new Date(Date.now() - HOUR) });
    expect(await failure(expired)).toEqual({ code: 'ERR_X509_SVID_EXPIRED', detail: 'The leaf of the client certificate chain has expired.' });
    const early = svid(caA, 'spiffe://example.org/w', { notBefore: new Date(Date.now() + HOUR) });
    expect(await failure(early)).toEqual({ code: 'ERR_X509_SVID_EXPIRED', detail: 'The leaf of the client certificate chain is not valid yet.' });
  });

  test('X5-N07: an expired intermediate → ERR_X509_SVID_EXPIRED', async () => {
    const old = caA.intermediate('old intermediate', { notBefore: new Date(Date.now() - 3 * HOUR), notAfter: new Date(Date.now() - HOUR) });
    expect(await failure(svid(old, 'spiffe://example.org/w'))).toEqual({ code: 'ERR_X509_SVID_EXPIRED', detail: 'The intermediate of the client certificate chain has expired.' });
  });

  test.each([
    ['upper-case trust domain', 'spiffe://Example.org/w'],
    ['dot segment', 'spiffe://example.org/a/../b'],
    ['percent-encoding', 'spiffe://example.org/a%20b'],
    ['empty segment', 'spiffe://example.org/a//b'],
    ['upper-case scheme', 'SPIFFE://example.org/w'],
    ['no authority', 'spiffe:/w'],
    ['query', 'spiffe://example.org/w?x=1'],
  ])('X5-N08: invalid SPIFFE ID syntax (%s) → ERR_X509_SVID_ID', async (_name, id) => {
    expect((await failure(svid(caA, id))).code).toBe('ERR_X509_SVID_ID');
  });

  test('a SPIFFE ID of a trust domain that is not configured → ERR_X509_SVID_TRUST_DOMAIN', async () => {
    expect((await failure(svid(caA, 'spiffe://unknown.org/w'))).code).toBe('ERR_X509_SVID_TRUST_DOMAIN');
  });
});

describe('leaf profile decisions', () => {
  test('key usage absent, or without digitalSignature → ERR_X509_SVID_LEAF', async () => {
    expect(await failure(svid(caA, 'spiffe://example.org/w', { keyUsage: null }))).toMatchObject({ code: 'ERR_X509_SVID_LEAF', detail: expect.stringContaining('no key usage') });
    expect(await failure(svid(caA, 'spiffe://example.org/w', { keyUsage: ['keyAgreement'] }))).toMatchObject({ code: 'ERR_X509_SVID_LEAF', detail: expect.stringContaining('lacks digitalSignature') });
  });

  test('EKU: without clientAuth → ERR_X509_SVID_LEAF; clientAuth alone or no EKU → verified', async () => {
    expect(await failure(svid(caA, 'spiffe://example.org/w', { extKeyUsage: ['serverAuth'] }))).toMatchObject({ code: 'ERR_X509_SVID_LEAF', detail: expect.stringContaining('clientAuth') });
    expect(await failure(svid(caA, 'spiffe://example.org/w', { extKeyUsage: ['anyExtendedKeyUsage'] }))).toMatchObject({ code: 'ERR_X509_SVID_LEAF' });
    expect((await verify(svid(caA, 'spiffe://example.org/w', { extKeyUsage: ['clientAuth'] })))?.id).toBe('spiffe://example.org/w');
    expect((await verify(svid(caA, 'spiffe://example.org/w', { extKeyUsage: null })))?.id).toBe('spiffe://example.org/w');
  });

  test('no basic constraints on the leaf is not a CA → verified', async () => {
    expect((await verify(svid(caA, 'spiffe://example.org/w', { basicConstraints: null })))?.id).toBe('spiffe://example.org/w');
  });

  test('order: the trust domain is checked before the leaf profile', async () => {
    expect((await failure(svid(caA, 'spiffe://unknown.org/w', { basicConstraints: { ca: true } }))).code).toBe('ERR_X509_SVID_TRUST_DOMAIN');
  });
});

describe('chain building', () => {
  test('an intermediate that is not a CA (cA=false) → ERR_X509_SVID_CHAIN', async () => {
    const notCa = caA.intermediate('not a CA', { basicConstraints: { ca: false } });
    expect(await failure(svid(notCa, 'spiffe://example.org/w'))).toMatchObject({ code: 'ERR_X509_SVID_CHAIN', detail: expect.stringContaining('is not a CA') });
  });

  test('an intermediate without keyCertSign → ERR_X509_SVID_CHAIN', async () => {
    const noSign = caA.intermediate('no keyCertSign', { keyUsage: ['digitalSignature'] });
    expect((await failure(svid(noSign, 'spiffe://example.org/w'))).code).toBe('ERR_X509_SVID_CHAIN');
  });

  test('a path length constraint of the anchor or an intermediate is honoured', async () => {
    const root = createCa('pathlen 0 root', { basicConstraints: { ca: true, pathLen: 0 } });
    const lookup: X509AuthoritiesOf = (td) => (td === 'example.org' ? [root.x509] : undefined);
    const direct = svid(root, 'spiffe://example.org/w');
    expect((await verify(direct, { trusted: [root], lookup }))?.id).toBe('spiffe://example.org/w');
    const below = svid(root.intermediate('i'), 'spiffe://example.org/w');
    expect(await failure(below, { trusted: [root], lookup })).toMatchObject({ code: 'ERR_X509_SVID_CHAIN', detail: expect.stringContaining('trust anchor') });
    const limited = caA.intermediate('pathlen 0', { basicConstraints: { ca: true, pathLen: 0 } }).intermediate('under it');
    expect(await failure(svid(limited, 'spiffe://example.org/w'))).toMatchObject({ code: 'ERR_X509_SVID_CHAIN', detail: expect.stringContaining('an intermediate') });
  });

  test('a chain longer than 8 certificates → ERR_X509_SVID_CHAIN', async () => {
    let ca: TestCa = caA;
    for (let i = 1; i <= 6; i++) ca = ca.intermediate(`level ${i}`);
    // leaf + 6 intermediates + anchor = 8: accepted.
    expect((await verify(svid(ca, 'spiffe://example.org/w')))?.id).toBe('spiffe://example.org/w');
    const deeper = ca.intermediate('level 7');
    expect(await failure(svid(deeper, 'spiffe://example.org/w'))).toEqual({ code: 'ERR_X509_SVID_CHAIN', detail: 'The client certificate chain has more than 8 certificates.' });
  });

  test('a look-alike root the client sends is never an anchor', async () => {
    const fake = createCa('example.org CA', { sans: { uri: ['spiffe://example.org'] } });
    const leaf = svid(fake, 'spiffe://example.org/w');
    const sent = { ...leaf, chainPem: leaf.chainPem + fake.certPem };
    expect((await failure(sent)).code).toBe('ERR_X509_SVID_CHAIN');
  });

  test('a chain our checks accept but the handshake did not verify → ERR_X509_SVID_CHAIN', async () => {
    const socket = await handshake(svid(caA, 'spiffe://example.org/w'), [plainCa]);
    expect(socket.authorized).toBe(false);
    expect(() => verifyX509Svid(tlsCertificateOf(socket), authoritiesOf, Date.now())).toThrow(expect.objectContaining({ code: 'ERR_X509_SVID_CHAIN', detail: 'The TLS handshake did not verify the client certificate chain.' }));
  });

  test('an empty bundle (BND-N04) trusts no SVID of its domain → ERR_X509_SVID_CHAIN', async () => {
    expect((await failure(svid(caA, 'spiffe://example.org/w'), { lookup: () => [] })).code).toBe('ERR_X509_SVID_CHAIN');
  });

  test('ERR_KEYS_UNAVAILABLE of the bundle propagates', async () => {
    const lookup: X509AuthoritiesOf = () => {
      throw new AgentwardError('ERR_KEYS_UNAVAILABLE');
    };
    expect((await failure(svid(caA, 'spiffe://example.org/w'), { lookup })).code).toBe('ERR_KEYS_UNAVAILABLE');
  });

  test('a self-signed certificate with a SPIFFE ID → ERR_X509_SVID_CHAIN', async () => {
    const own = selfSigned({ cn: 'w', sans: { uri: ['spiffe://example.org/w'] }, usage: 'client' });
    expect((await failure(own)).code).toBe('ERR_X509_SVID_CHAIN');
  });
});

describe('per connection', () => {
  test('one result per connection; time is checked on every call', async () => {
    const leaf = svid(caA, 'spiffe://example.org/w');
    const socket = await handshake(leaf);
    const first = verifyX509Svid(tlsCertificateOf(socket), authoritiesOf, Date.now());
    expect(verifyX509Svid(tlsCertificateOf(socket), authoritiesOf, Date.now())).toBe(first);
    const later = leaf.x509.validToDate.getTime() + 1000;
    expect(() => verifyX509Svid(tlsCertificateOf(socket), authoritiesOf, later)).toThrow(expect.objectContaining({ code: 'ERR_X509_SVID_EXPIRED' }));
  });

  test('a new authorities list (bundle rotation) builds the chain again', async () => {
    const socket = await handshake(svid(caA, 'spiffe://example.org/w'));
    let authorities: readonly X509Certificate[] = [caA.x509];
    const lookup: X509AuthoritiesOf = () => authorities;
    expect(verifyX509Svid(tlsCertificateOf(socket), lookup, Date.now())?.id).toBe('spiffe://example.org/w');
    authorities = [caB.x509];
    expect(() => verifyX509Svid(tlsCertificateOf(socket), lookup, Date.now())).toThrow(expect.objectContaining({ code: 'ERR_X509_SVID_CHAIN' }));
    authorities = [caB.x509, caA.x509];
    expect(verifyX509Svid(tlsCertificateOf(socket), lookup, Date.now())?.id).toBe('spiffe://example.org/w');
  });

  test('a failure is remembered and thrown as a new error on each call', async () => {
    const socket = await handshake(svid(caA, 'spiffe://example.org/a', { sans: { uri: ['spiffe://example.org/a', 'spiffe://example.org/b'] } }));
    const errors = [0, 1].map(() => {
      try {
        verifyX509Svid(tlsCertificateOf(socket), authoritiesOf, Date.now());
      } catch (err) {
        return err as AgentwardError;
      }
      return undefined;
    });
    expect(errors.map((e) => e?.code)).toEqual(['ERR_X509_SVID_SAN', 'ERR_X509_SVID_SAN']);
    expect(errors[0]).not.toBe(errors[1]);
  });
});

test('pki spiffeBundle: parseBundle installs each CA as an x509-svid authority', () => {
  const parsed = parseBundle(spiffeBundle([caA, caB], { sequence: 3, refreshHint: 60 }), createLogger('silent'));
  expect(parsed.x509.map((c) => c.fingerprint256)).toEqual([caA.x509.fingerprint256, caB.x509.fingerprint256]);
  expect(parsed).toMatchObject({ sequence: 3, refreshHintMs: 60_000 });
});

describe('a certificate presented outside the listener (presentedCertificate, the library)', () => {
  test('a leaf with the intermediates sent above it, verified by the caller → verified, at the instant the caller gives', () => {
    const intermediate = caA.intermediate('example.org library intermediate');
    const leaf = svid(intermediate, 'spiffe://example.org/agent');
    const presented = presentedCertificate(leaf.x509, { issuers: [intermediate.x509], verified: true });
    expect(verifyX509Svid(presented, authoritiesOf, leaf.x509.validFromDate.getTime() + HOUR)?.id).toBe('spiffe://example.org/agent');
    expect(() => verifyX509Svid(presented, authoritiesOf, leaf.x509.validToDate.getTime() + HOUR)).toThrow(expect.objectContaining({ code: 'ERR_X509_SVID_EXPIRED' }));
  });

  test('without the intermediate → ERR_X509_SVID_CHAIN (nothing the caller omits is guessed)', () => {
    const leaf = svid(caA.intermediate('example.org library intermediate 2'), 'spiffe://example.org/agent');
    expect(() => verifyX509Svid(presentedCertificate(leaf.x509, { verified: true }), authoritiesOf, Date.now())).toThrow(expect.objectContaining({ code: 'ERR_X509_SVID_CHAIN' }));
  });

  test('a chain the caller did not verify → ERR_X509_SVID_CHAIN, though it reaches the authority', () => {
    const leaf = svid(caA, 'spiffe://example.org/agent');
    expect(() => verifyX509Svid(presentedCertificate(leaf.x509, { verified: false }), authoritiesOf, Date.now())).toThrow(expect.objectContaining({ code: 'ERR_X509_SVID_CHAIN' }));
  });
});
