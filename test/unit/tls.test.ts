/**
 * TLS of the main listener and the RFC 8705 binding check, below the proxy: the `listen.tls`
 * config checks, reading and checking the PEM files (each problem names its key), reloading
 * (unchanged files do nothing, a broken file keeps the last good context), `agentward check`, and
 * the thumbprint comparison, and the SPIFFE bundle authorities the handshake trusts next to
 * clientCaFile (setClientAuthorities). The proxy end to end is in test/integration/mtls.test.ts.
 */
import type { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect, type TLSSocket } from 'node:tls';
import { cli } from '../helpers/cli.ts';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseConfig, type ConfigProblem } from '../../src/config/load.ts';
import { boundCertificateOf, checkCertificateBinding } from '../../src/credentials/client-certificate.ts';
import type { ClientCertificate } from '../../src/identity/client-certificate.ts';
import { AgentwardError, type ErrorCode } from '../../src/errors.ts';
import { createApp } from '../../src/app/index.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ListenerTls, readTlsFiles, TlsFileError } from '../../src/proxy/tls.ts';
import { REPO } from '../helpers/agentward.ts';
import { createCa, type IssuedCertificate } from '../helpers/pki.ts';

const POLICY = join(REPO, 'test/fixtures/policies/tls-facts');
const ca = createCa();
const server = ca.issue({ cn: 'localhost', sans: { dns: ['localhost'] }, usage: 'server' });
const other = ca.issue({ cn: 'other', usage: 'server' });

function folder(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-tls-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function config(tls: string): string {
  return `listen:
  tls:
${tls
  .trim()
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
upstream:
  url: http://127.0.0.1:3000
resource:
  id: https://tools.example.com/mcp
policy:
  source: ${POLICY}
`;
}

function problems(text: string, dir: string): ConfigProblem[] {
  try {
    parseConfig(text, join(dir, 'agentward.yaml'), {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('the config was accepted');
}

function memoryLogger(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: createLogger('debug', sink), text: () => text };
}

function expectTlsError(fn: () => unknown, key: string, reason: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(TlsFileError);
  expect((caught as TlsFileError).key).toBe(key);
  expect((caught as TlsFileError).reason).toContain(reason);
}

describe('listen.tls in the config', () => {
  test('paths are relative to the config file; clientCert defaults to none', () => {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': server.keyPem });
    const loaded = parseConfig(config('certFile: server.crt\nkeyFile: ./server.key'), join(dir, 'agentward.yaml'), {});
    expect(loaded.config.listen.tls).toEqual({ certFile: 'server.crt', keyFile: './server.key', clientCert: 'none' });
  });

  test('missing files are reported together, each with its path', () => {
    const dir = folder();
    const found = problems(config('certFile: no.crt\nkeyFile: no.key\nclientCaFile: no-ca.pem\nclientCert: required'), dir);
    expect(found.map((p) => p.path)).toEqual(['listen.tls.certFile', 'listen.tls.keyFile', 'listen.tls.clientCaFile']);
    expect(found[0]!.message).toContain(`"no.crt" is not a file (resolved to ${join(dir, 'no.crt')})`);
  });

  test('a folder is not a file', () => {
    const dir = folder({ 'server.key': server.keyPem });
    expect(problems(config('certFile: .\nkeyFile: server.key'), dir)).toMatchObject([{ path: 'listen.tls.certFile' }]);
  });

  test.each(['optional', 'required'])('clientCert %s needs clientCaFile', (mode) => {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': server.keyPem });
    expect(problems(config(`certFile: server.crt\nkeyFile: server.key\nclientCert: ${mode}`), dir)).toMatchObject([
      { path: 'listen.tls.clientCaFile', message: `is required with clientCert ${mode}` },
    ]);
  });

  test('clientCaFile without asking for certificates is a mistake, not silently unused', () => {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': server.keyPem, 'ca.pem': ca.certPem });
    expect(problems(config('certFile: server.crt\nkeyFile: server.key\nclientCaFile: ca.pem'), dir)).toMatchObject([
      { path: 'listen.tls.clientCaFile', message: 'is not used with clientCert none' },
    ]);
  });

  test('unknown keys and values are refused', () => {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': server.keyPem });
    const found = problems(config('certFile: server.crt\nkeyFile: server.key\nclientCert: sometimes\nclientCA: ca.pem'), dir);
    expect(found.map((p) => [p.path, p.message])).toEqual([
      ['listen.tls.clientCert', '"sometimes" is not an allowed value'],
      ['listen.tls.clientCA', 'unknown key "clientCA"'],
    ]);
  });

  test('certFile and keyFile are required', () => {
    expect(problems(config('clientCert: none'), folder()).map((p) => p.path).sort()).toEqual(['listen.tls.certFile', 'listen.tls.keyFile']);
  });
});

describe('readTlsFiles', () => {
  test('reads a chain, its key and the CAs', () => {
    const dir = folder({ 'chain.pem': server.certPem + ca.certPem, 'server.key': server.keyPem, 'ca.pem': ca.certPem + other.certPem });
    const loaded = readTlsFiles({ certFile: join(dir, 'chain.pem'), keyFile: join(dir, 'server.key'), clientCaFile: join(dir, 'ca.pem') });
    expect(loaded.certificate.subject).toBe('CN=localhost');
    expect(loaded.clientCas).toBe(2);
  });

  test('each unusable file is named by its key', () => {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': server.keyPem, 'other.key': other.keyPem, 'garbage.pem': 'hello\n', 'ca.pem': ca.certPem });
    const f = (name: string) => join(dir, name);
    expectTlsError(() => readTlsFiles({ certFile: f('missing.crt'), keyFile: f('server.key') }), 'certFile', 'cannot be read (ENOENT)');
    expectTlsError(() => readTlsFiles({ certFile: f('garbage.pem'), keyFile: f('server.key') }), 'certFile', 'holds no PEM certificate');
    expectTlsError(() => readTlsFiles({ certFile: f('server.crt'), keyFile: f('missing.key') }), 'keyFile', 'cannot be read');
    expectTlsError(() => readTlsFiles({ certFile: f('server.crt'), keyFile: f('garbage.pem') }), 'keyFile', 'is not a usable private key');
    expectTlsError(() => readTlsFiles({ certFile: f('server.crt'), keyFile: f('other.key') }), 'keyFile', 'key values mismatch');
    // Node would accept a CA file with no certificate and then verify no client at all.
    expectTlsError(() => readTlsFiles({ certFile: f('server.crt'), keyFile: f('server.key'), clientCaFile: f('garbage.pem') }), 'clientCaFile', 'holds no PEM certificate');
  });

  test('a certificate block that does not parse', () => {
    const broken = ca.certPem.replace(/\n[A-Za-z0-9+/]{64}\n/, '\nAAAA\n');
    const dir = folder({ 'server.crt': server.certPem, 'server.key': server.keyPem, 'ca.pem': ca.certPem + broken });
    expectTlsError(
      () => readTlsFiles({ certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), clientCaFile: join(dir, 'ca.pem') }),
      'clientCaFile',
      'certificate 2 cannot be parsed',
    );
  });
});

describe('ListenerTls', () => {
  function setup(clientCert: 'none' | 'optional' | 'required' = 'optional') {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': server.keyPem, 'ca.pem': ca.certPem });
    const log = memoryLogger();
    const tls = new ListenerTls({
      certFile: join(dir, 'server.crt'),
      keyFile: join(dir, 'server.key'),
      clientCaFile: clientCert === 'none' ? undefined : join(dir, 'ca.pem'),
      clientCert,
      logger: log.logger,
    });
    const contexts: unknown[] = [];
    // Only setSecureContext is used by reload; the real server is exercised by the integration tests.
    tls.watch({ setSecureContext: (c: unknown) => contexts.push(c) } as never);
    return { dir, tls, log, contexts };
  }

  test.each([
    ['none', false, false],
    ['optional', true, false],
    ['required', true, true],
  ] as const)('clientCert %s → requestCert %s, rejectUnauthorized %s', (mode, requestCert, rejectUnauthorized) => {
    const { tls } = setup(mode);
    expect(tls.serverOptions()).toMatchObject({ requestCert, rejectUnauthorized });
    expect(tls.serverOptions().ca === undefined).toBe(mode === 'none');
    tls.close();
  });

  test('unchanged files reload nothing; changed files swap the context; a broken file keeps the old one', () => {
    const { dir, tls, log, contexts } = setup();
    expect(tls.reload()).toBe(false);
    expect(contexts).toHaveLength(0);

    writeFileSync(join(dir, 'server.crt'), other.certPem);
    expect(tls.reload()).toBe(false);
    expect(contexts).toHaveLength(0);
    expect(tls.status().lastError).toContain('listen.tls.keyFile');
    expect(tls.status().certificate.subject).toBe('CN=localhost');
    expect(log.text()).toContain('TLS files reload failed; keeping the previous certificate');

    writeFileSync(join(dir, 'server.key'), other.keyPem);
    expect(tls.reload()).toBe(true);
    expect(contexts).toHaveLength(1);
    expect(tls.status()).toMatchObject({ clientCert: 'optional', certificate: { subject: 'CN=other' }, clientCas: 1, lastError: null });
    expect(log.text()).toContain('TLS files reloaded');
    tls.close();
  });

  test('an expired certificate loads, with a warning', () => {
    const old = ca.issue({ cn: 'old', notBefore: new Date(Date.now() - 48 * 3600_000), notAfter: new Date(Date.now() - 24 * 3600_000) });
    const dir = folder({ 'old.crt': old.certPem, 'old.key': old.keyPem });
    const log = memoryLogger();
    const tls = new ListenerTls({ certFile: join(dir, 'old.crt'), keyFile: join(dir, 'old.key'), clientCert: 'none', logger: log.logger });
    expect(log.text()).toContain('the listener certificate has expired');
    tls.close();
  });

  test('createApp with an unusable key stops startup with the file named', () => {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': other.keyPem });
    const text = config('certFile: server.crt\nkeyFile: server.key');
    const loaded = parseConfig(text, join(dir, 'agentward.yaml'), {});
    expect(() => createApp(loaded, { logger: createLogger('silent') })).toThrow(/listen\.tls\.keyFile .*server\.key: is not a usable private key/);
  });
});

describe('ListenerTls client authorities (SPIFFE trust bundles)', () => {
  const spiffeCa = createCa('example.org CA', { sans: { uri: ['spiffe://example.org'] } });
  const otherCa = createCa('other.org CA');
  const svid = spiffeCa.issue({ cn: 'workload', sans: { uri: ['spiffe://example.org/agent'] }, usage: 'client' });

  function listener(clientCert: 'none' | 'optional' | 'required', withCaFile = true) {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': server.keyPem, 'ca.pem': ca.certPem });
    const log = memoryLogger();
    const tls = new ListenerTls({
      certFile: join(dir, 'server.crt'),
      keyFile: join(dir, 'server.key'),
      clientCaFile: withCaFile && clientCert !== 'none' ? join(dir, 'ca.pem') : undefined,
      clientCert,
      logger: log.logger,
    });
    const contexts: { ca?: (Buffer | string)[] }[] = [];
    tls.watch({ setSecureContext: (c: { ca?: (Buffer | string)[] }) => contexts.push(c) } as never);
    return { dir, tls, log, contexts };
  }

  /** A real HTTPS server with the listener's options and context swaps. */
  async function serve(tls: ListenerTls): Promise<{ server: HttpsServer; port: number }> {
    const httpsServer = createHttpsServer(tls.serverOptions(), (_req, res) => res.end());
    tls.watch(httpsServer);
    httpsServer.listen(0, '127.0.0.1');
    await once(httpsServer, 'listening');
    return { server: httpsServer, port: (httpsServer.address() as AddressInfo).port };
  }

  /** The server's view of one handshake: whether the client chain verified, or the handshake error. */
  async function handshake(target: { server: HttpsServer; port: number }, client: IssuedCertificate): Promise<{ authorized: boolean } | { error: string }> {
    const outcome = new Promise<{ authorized: boolean } | { error: string }>((resolve) => {
      const ok = (socket: TLSSocket) => {
        target.server.off('tlsClientError', bad);
        resolve({ authorized: socket.authorized });
        socket.destroy();
      };
      const bad = (err: NodeJS.ErrnoException) => {
        target.server.off('secureConnection', ok);
        resolve({ error: err.code ?? err.message });
      };
      target.server.once('secureConnection', ok);
      target.server.once('tlsClientError', bad);
    });
    const socket = connect({ host: '127.0.0.1', port: target.port, servername: 'localhost', ca: ca.certPem, cert: client.chainPem, key: client.keyPem });
    socket.on('error', () => {});
    try {
      return await outcome;
    } finally {
      socket.destroy();
    }
  }

  test('an SVID from a bundle authority is authorized after setClientAuthorities, not before', async () => {
    const { tls } = listener('optional');
    const target = await serve(tls);
    try {
      expect(await handshake(target, svid)).toEqual({ authorized: false });
      expect(tls.setClientAuthorities([spiffeCa.x509])).toBe(true);
      expect(await handshake(target, svid)).toEqual({ authorized: true });
      // clientCaFile's CA still verifies its own clients.
      expect(await handshake(target, ca.issue({ cn: 'plain', usage: 'client' }))).toEqual({ authorized: true });
      // A rotation that drops the authority stops verifying its chains for new handshakes.
      expect(tls.setClientAuthorities([otherCa.x509])).toBe(true);
      expect(await handshake(target, svid)).toEqual({ authorized: false });
    } finally {
      target.server.close();
      tls.close();
    }
  });

  test('without clientCaFile: no client is trusted (not even by public roots) until authorities are set', async () => {
    const { tls } = listener('required', false);
    expect(tls.serverOptions()).toMatchObject({ requestCert: true, rejectUnauthorized: true, ca: [] });
    const target = await serve(tls);
    try {
      expect(await handshake(target, svid)).toHaveProperty('error');
      tls.setClientAuthorities([spiffeCa.x509]);
      expect(await handshake(target, svid)).toEqual({ authorized: true });
      expect(tls.status()).toMatchObject({ clientCas: 0, clientAuthorities: 1, lastError: null });
    } finally {
      target.server.close();
      tls.close();
    }
  });

  test('the same set again swaps nothing; a file reload keeps the authorities; clientCert none ignores them', () => {
    const { dir, tls, log, contexts } = listener('optional');
    expect(tls.setClientAuthorities([spiffeCa.x509, spiffeCa.x509])).toBe(true);
    expect(tls.status().clientAuthorities).toBe(1);
    expect(tls.setClientAuthorities([spiffeCa.x509])).toBe(false);
    expect(contexts).toHaveLength(1);
    expect(contexts[0]!.ca).toEqual([Buffer.from(ca.certPem), spiffeCa.x509.toString()]);
    expect(log.text()).toContain('TLS client authorities updated');

    writeFileSync(join(dir, 'ca.pem'), ca.certPem + other.certPem);
    expect(tls.reload()).toBe(true);
    expect(contexts[1]!.ca).toEqual([Buffer.from(ca.certPem + other.certPem), spiffeCa.x509.toString()]);
    tls.close();

    const none = listener('none');
    expect(none.tls.setClientAuthorities([spiffeCa.x509])).toBe(false);
    expect(none.contexts).toHaveLength(0);
    expect(none.tls.serverOptions().ca).toBeUndefined();
    none.tls.close();
  });

  test('authorities that cannot be installed keep the previous context, logged', () => {
    const { tls, log, contexts } = listener('optional');
    tls.setClientAuthorities([spiffeCa.x509]);
    const broken = {
      fingerprint256: 'broken',
      subject: 'CN=broken',
      toString: () => {
        throw new Error('not a certificate');
      },
    } as unknown as X509Certificate;
    expect(tls.setClientAuthorities([broken])).toBe(false);
    expect(contexts).toHaveLength(1);
    expect(tls.status()).toMatchObject({ clientAuthorities: 1, lastError: 'client authorities: not a certificate' });
    expect(log.text()).toContain('TLS client authorities could not be installed; keeping the previous ones');
    tls.close();
  });
});

describe('agentward check with listen.tls', () => {
  test('a key that does not fit the certificate → exit 1, naming listen.tls.keyFile', async () => {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': other.keyPem });
    writeFileSync(join(dir, 'agentward.yaml'), config('certFile: server.crt\nkeyFile: server.key'));
    const { code, stderr } = await cli(['check', '--config', join(dir, 'agentward.yaml')]);
    expect(code).toBe(1);
    expect(stderr).toContain(`listen.tls.keyFile: ${join(dir, 'server.key')} is not a usable private key`);
  });

  test('valid files → a tls line with the certificate and the client certificate mode', async () => {
    const dir = folder({ 'server.crt': server.certPem, 'server.key': server.keyPem, 'ca.pem': ca.certPem });
    writeFileSync(join(dir, 'agentward.yaml'), config('certFile: server.crt\nkeyFile: server.key\nclientCaFile: ca.pem\nclientCert: optional'));
    const { code, stdout, stderr } = await cli(['check', '--config', join(dir, 'agentward.yaml')]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(`  tls        CN=localhost until ${server.x509.validToDate.toISOString()}, client certificates optional (1 CA certificate)`);
  }, 120_000);
});

describe('the binding check (RFC 8705 §3)', () => {
  const facts = (thumbprint: string): ClientCertificate => ({
    subject: 'CN=a',
    issuer: 'CN=ca',
    sans: { uri: [], dns: [], email: [], ip: [] },
    thumbprint,
    notBefore: 0,
    notAfter: 1,
    verified: true,
  });
  const T = 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2';

  function code(fn: () => unknown): { code: ErrorCode; detail: string } | undefined {
    try {
      fn();
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(AgentwardError);
      return { code: (err as AgentwardError).code, detail: (err as AgentwardError).detail };
    }
  }

  test('boundCertificateOf', () => {
    expect(boundCertificateOf(undefined)).toBeUndefined();
    expect(boundCertificateOf({ jkt: T })).toBeUndefined();
    expect(boundCertificateOf({ 'x5t#S256': T })).toBe(T);
    expect(code(() => boundCertificateOf({ 'x5t#S256': '' }))?.code).toBe('ERR_TOKEN_CLAIM_INVALID');
    expect(code(() => boundCertificateOf({ 'x5t#S256': ['a'] }))?.code).toBe('ERR_TOKEN_CLAIM_INVALID');
    expect(code(() => boundCertificateOf({ 'x5t#S256': T, jkt: T }))?.detail).toContain('RFC 7800 section 3.1');
  });

  test('checkCertificateBinding', () => {
    expect(code(() => checkCertificateBinding(T, facts(T)))).toBeUndefined();
    expect(code(() => checkCertificateBinding(T, null))?.code).toBe('ERR_MTLS_CERTIFICATE_MISSING');
    const mismatch = code(() => checkCertificateBinding(T, facts(`${T.slice(1)}A`)));
    expect(mismatch).toEqual({ code: 'ERR_MTLS_BINDING_MISMATCH', detail: 'The client certificate of this connection is not the one the access token is bound to.' });
    // A value that cannot be a thumbprint says why no certificate can match it.
    expect(code(() => checkCertificateBinding(`${T}=`, facts(T)))?.detail).toContain('without padding');
  });
});
