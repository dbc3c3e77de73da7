/**
 * Minting Txn-Tokens for the upstream (src/credentials/txn-mint.ts, src/proxy/upstream-token.ts):
 * every algorithm's token verifies with jose and with agentward's own Txn-Token verifier; the
 * kid is jose's RFC 7638 thumbprint; a replaced key stays published for the overlap and then
 * leaves; the key file is re-read when it changes, and a broken file keeps the last good key.
 * Time is frozen through `now`; key files are real files in a temporary folder.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { beforeEach, describe, expect, test } from 'vitest';
import { readSigningKey, TxnKeyFileError, TxnTokenMinter, type MintClaims } from '../../src/credentials/txn-mint.ts';
import { TxnTokenVerifier } from '../../src/credentials/txn-token.ts';
import type { AsymmetricAlgorithm } from '../../src/jose/algorithms.ts';
import { createLogger } from '../../src/observability/logger.ts';
import type { Decision } from '../../src/policy/decision.ts';
import { mintClaims, upstreamTxnToken, type UpstreamTxnFacts } from '../../src/proxy/upstream-token.ts';
import type { VerifiedAccessToken } from '../../src/credentials/access-token.ts';
import { expectCode } from '../helpers/expect-code.ts';
import { waitFor } from '../helpers/wait.ts';

const AUDIENCE = 'trust-domain.example';
const ISSUER = 'https://tools.example.com/api';
const NOW_MS = Date.UTC(2026, 0, 15, 12, 0, 0);
const logger = createLogger('silent');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'agentward-mint-'));
});

function pem(kind: 'ec' | 'rsa' | 'ed25519', options: Record<string, unknown> = {}): string {
  const defaults = kind === 'ec' ? { namedCurve: 'P-256' } : kind === 'rsa' ? { modulusLength: 2048 } : {};
  const { privateKey } = generateKeyPairSync(kind as 'ec', { ...defaults, ...options } as { namedCurve: string });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function keyFile(text: string, name = 'signing.pem'): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function minter(file: string, options: { algorithm?: AsymmetricAlgorithm; now?: () => number; overlapMs?: number; debounceMs?: number } = {}): TxnTokenMinter {
  return new TxnTokenMinter({
    keyFile: file,
    algorithm: options.algorithm ?? 'ES256',
    audience: AUDIENCE,
    issuer: ISSUER,
    lifetimeSeconds: 60,
    rotationOverlapMs: options.overlapMs ?? 300_000,
    logger,
    now: options.now ?? (() => NOW_MS),
    debounceMs: options.debounceMs,
  });
}

const CLAIMS: MintClaims = {
  txn: 'f5da9a74-153f-47c5-b82f-e4571180a00c',
  sub: 'user-42',
  reqWl: 'spiffe://agents.example.com/research-bot',
  scope: 'tools.read tools.write',
  tctx: { method: 'POST', path: '/mcp', tool: 'create_issue' },
  rctx: { req_ip: '10.0.0.7' },
};

/** A synchronous throw as a rejection, for expectCode. */
const later = (fn: () => unknown): Promise<unknown> => Promise.resolve().then(fn);

const kids = (m: TxnTokenMinter) => (JSON.parse(m.jwks()) as { keys: JWK[] }).keys.map((k) => k.kid);

describe('a minted token', () => {
  test.each<[AsymmetricAlgorithm, () => string]>([
    ['ES256', () => pem('ec')],
    ['ES384', () => pem('ec', { namedCurve: 'P-384' })],
    ['ES512', () => pem('ec', { namedCurve: 'P-521' })],
    ['RS256', () => pem('rsa')],
    ['PS256', () => pem('rsa')],
    ['EdDSA', () => pem('ed25519')],
    ['Ed25519', () => pem('ed25519')],
  ])('%s: verifies with jose against the published JWK Set, with every claim of draft section 9.2', async (alg, make) => {
    const m = minter(keyFile(make()), { algorithm: alg });
    const token = m.mint(CLAIMS);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(JSON.parse(m.jwks()) as { keys: JWK[] }), {
      algorithms: [alg],
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: 'txntoken+jwt',
      currentDate: new Date(NOW_MS),
    });
    expect(protectedHeader).toEqual({ alg, typ: 'txntoken+jwt', kid: m.kid });
    expect(payload).toEqual({
      iss: ISSUER,
      iat: NOW_MS / 1000,
      aud: AUDIENCE,
      exp: NOW_MS / 1000 + 60,
      txn: CLAIMS.txn,
      sub: 'user-42',
      scope: 'tools.read tools.write',
      req_wl: CLAIMS.reqWl,
      tctx: CLAIMS.tctx,
      rctx: CLAIMS.rctx,
    });
  });

  test("passes agentward's own Txn-Token verifier (a second agentward downstream accepts it)", async () => {
    const m = minter(keyFile(pem('ec')));
    const jwks = createLocalJWKSet(JSON.parse(m.jwks()) as { keys: JWK[] });
    const verifier = new TxnTokenVerifier({ trustDomain: AUDIENCE, keys: jwks, algorithms: ['ES256'], clockSkewSeconds: 0, maxLifetimeSeconds: 600, now: () => NOW_MS });
    const verified = await verifier.verify([m.mint(CLAIMS)]);
    expect(verified).toMatchObject({ txn: CLAIMS.txn, sub: 'user-42', scopes: ['tools.read', 'tools.write'], reqWl: CLAIMS.reqWl, iss: ISSUER, tctx: CLAIMS.tctx, rctx: CLAIMS.rctx });
  });

  test('the kid is the RFC 7638 thumbprint jose computes, and the JWK holds no private member', async () => {
    for (const text of [pem('ec'), pem('rsa'), pem('ed25519')]) {
      const algorithm: AsymmetricAlgorithm = text.length > 1000 ? 'RS256' : text.length > 200 ? 'ES256' : 'EdDSA';
      const key = readSigningKey(keyFile(text), algorithm);
      expect(key.kid).toBe(await calculateJwkThumbprint(key.publicJwk));
      expect(Object.keys(key.publicJwk).filter((k) => ['d', 'p', 'q', 'dp', 'dq', 'qi'].includes(k))).toEqual([]);
      expect(key.publicJwk).toMatchObject({ kid: key.kid, alg: algorithm, use: 'sig' });
    }
  });
});

describe('the key file', () => {
  test.each<[string, () => string, AsymmetricAlgorithm, RegExp]>([
    ['missing', () => join(dir, 'absent.pem'), 'ES256', /cannot be read \(ENOENT\)/],
    ['not a key', () => keyFile('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), 'ES256', /not an unencrypted PEM private key/],
    ['encrypted', () => keyFile(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }) as string), 'ES256', /not an unencrypted PEM private key/],
    ['an EC key for RS256', () => keyFile(pem('ec')), 'RS256', /\(EC P-256\) that cannot sign RS256/],
    ['a P-384 key for ES256', () => keyFile(pem('ec', { namedCurve: 'P-384' })), 'ES256', /\(EC P-384\) that cannot sign ES256/],
    ['a 1024-bit RSA key', () => keyFile(pem('rsa', { modulusLength: 1024 })), 'RS256', /1024 bits; at least 2048/],
  ])('%s is refused with what is wrong', (_name, file, alg, reason) => {
    const err = (() => {
      try {
        readSigningKey(file(), alg);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(TxnKeyFileError);
    expect((err as TxnKeyFileError).reason).toMatch(reason);
  });

  test('SEC 1 and PKCS#1 PEM are read like PKCS#8', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    expect(readSigningKey(keyFile(ec, 'ec.pem'), 'ES256').publicJwk.kty).toBe('EC');
    expect(readSigningKey(keyFile(rsa, 'rsa.pem'), 'PS256').publicJwk.kty).toBe('RSA');
  });
});

describe('rotation with overlap', () => {
  test('a new key file: the new kid signs at once, the old kid stays in the JWK Set for the overlap, then leaves', async () => {
    let now = NOW_MS;
    const file = keyFile(pem('ec'));
    const m = minter(file, { now: () => now, overlapMs: 300_000 });
    const oldKid = m.kid;
    const oldToken = m.mint(CLAIMS);

    writeFileSync(file, pem('ec'));
    now += 1000;
    expect(m.reload()).toBe(true);
    const newKid = m.kid;
    expect(newKid).not.toBe(oldKid);
    expect(decodeProtectedHeader(m.mint(CLAIMS)).kid).toBe(newKid);
    expect(kids(m)).toEqual([newKid, oldKid]);
    expect(m.status().retired).toEqual([{ kid: oldKid, until: new Date(now + 300_000).toISOString() }]);
    // A token the old key signed before the rotation still verifies against the published set.
    const jwks = createLocalJWKSet(JSON.parse(m.jwks()) as { keys: JWK[] });
    await expect(jwtVerify(oldToken, jwks, { currentDate: new Date(NOW_MS + 30_000) })).resolves.toBeDefined();

    now += 299_999;
    expect(kids(m)).toEqual([newKid, oldKid]);
    now += 1;
    expect(kids(m)).toEqual([newKid]);
    expect(m.status().retired).toEqual([]);
  });

  test('the same key again changes nothing; an old key coming back is current, not listed twice', () => {
    const first = pem('ec');
    const file = keyFile(first);
    const m = minter(file);
    const a = m.kid;
    expect(m.reload()).toBe(false);
    writeFileSync(file, pem('ec'));
    m.reload();
    const b = m.kid;
    writeFileSync(file, first);
    expect(m.reload()).toBe(true);
    expect(m.kid).toBe(a);
    expect(kids(m)).toEqual([a, b]);
  });

  test('an unusable file keeps the last good key and says why; a good one clears the error', () => {
    const file = keyFile(pem('ec'));
    const m = minter(file);
    const kid = m.kid;
    writeFileSync(file, 'not a key');
    expect(m.reload()).toBe(false);
    expect(m.kid).toBe(kid);
    expect(m.status().lastError).toMatch(/not an unencrypted PEM private key/);
    expect(decodeProtectedHeader(m.mint(CLAIMS)).kid).toBe(kid);
    writeFileSync(file, pem('ec', { namedCurve: 'P-384' }));
    expect(m.reload()).toBe(false);
    expect(m.status().lastError).toMatch(/cannot sign ES256/);
    writeFileSync(file, pem('ec'));
    expect(m.reload()).toBe(true);
    expect(m.status().lastError).toBeNull();
  });
});

describe('hot reload', () => {
  test('a key file replaced by rename (as editors and Kubernetes do) is picked up by the watch', async () => {
    const file = keyFile(pem('ec'));
    const m = minter(file, { now: Date.now, debounceMs: 20 });
    const oldKid = m.kid;
    m.watch();
    try {
      const next = join(dir, 'next.pem');
      writeFileSync(next, pem('ec'));
      renameSync(next, file);
      await waitFor(async () => m.kid !== oldKid, 'the new signing key');
      expect(kids(m)).toEqual([m.kid, oldKid]);
    } finally {
      m.close();
    }
  });
});

describe('the claims of the token for the upstream', () => {
  const token = (over: Partial<VerifiedAccessToken> = {}): VerifiedAccessToken =>
    ({ issuer: 'https://as.example.com', claims: {}, subject: 'user-42', clientId: 'research-bot', scopes: ['tools.read', 'tools.write', 'admin'], audiences: [], expiresAt: 0, kid: undefined, jkt: undefined, delegation: { chain: [], depth: 0 }, hashPrefix: 'x', format: 'jwt', ...over }) as VerifiedAccessToken;
  const decision = (over: Partial<Decision> = {}): Decision => ({ allow: true, reason: undefined, status: undefined, requiredScopes: [], stepUp: undefined, headers: {}, scopes: undefined, context: undefined, ...over });
  const facts = (over: Partial<UpstreamTxnFacts> = {}): UpstreamTxnFacts => ({ requestId: 'req-1', method: 'GET', path: '/tools', remoteAddress: '10.0.0.7', token: token(), agent: undefined, txn: undefined, decision: decision(), ...over });

  test("scope: the token's scopes narrowed to the decision's scopes; unnarrowed without them", () => {
    expect(mintClaims(facts({ decision: decision({ scopes: ['tools.read', 'other'] }) })).scope).toBe('tools.read');
    expect(mintClaims(facts()).scope).toBe('tools.read tools.write admin');
  });

  test('no scope left is 403 ERR_TXN_MINT_NO_SCOPE; without a token, the decision grants its scopes alone', async () => {
    await expectCode(later(() => mintClaims(facts({ decision: decision({ scopes: ['other'] }) }))), 'ERR_TXN_MINT_NO_SCOPE');
    const agent = { id: 'spiffe://agents.example.com/bot', trustDomain: 'agents.example.com', path: '/bot', via: 'x509_svid', expiresAt: 0, claims: {} } as const;
    await expectCode(later(() => mintClaims(facts({ token: undefined, agent }))), 'ERR_TXN_MINT_NO_SCOPE');
    expect(mintClaims(facts({ token: undefined, agent, decision: decision({ scopes: ['tools.read'] }) }))).toMatchObject({ sub: agent.id, reqWl: agent.id, scope: 'tools.read' });
  });

  test('sub is the user; req_wl the proven workload, else the client; tctx has method, path and the decision context; txn the request id', async () => {
    const agent = { id: 'spiffe://agents.example.com/bot', trustDomain: 'agents.example.com', path: '/bot', via: 'wit+wpt', expiresAt: 0, claims: {} } as const;
    expect(mintClaims(facts({ decision: decision({ context: { tool: 'x' } }) }))).toEqual({
      txn: 'req-1',
      sub: 'user-42',
      reqWl: 'research-bot',
      scope: 'tools.read tools.write admin',
      tctx: { tool: 'x', method: 'GET', path: '/tools' },
      rctx: { req_ip: '10.0.0.7' },
    });
    expect(mintClaims(facts({ agent })).reqWl).toBe(agent.id);
    expect(mintClaims(facts({ token: token({ subject: null }) })).sub).toBe('research-bot');
    await expectCode(later(() => mintClaims(facts({ token: token({ subject: null, clientId: null }) }))), 'ERR_TXN_MINT_NO_SUBJECT');
  });

  test('pass-through-or-mint passes a verified Txn-Token on unchanged; mint makes a new one', () => {
    const m = minter(keyFile(pem('ec')));
    const txn = { verified: { txn: 't', sub: 's', scopes: ['a'], tctx: null, rctx: null, reqWl: 'w', iss: null, issuedAt: 0, expiresAt: 0, claims: {}, hashPrefix: 'h' }, value: 'incoming.txn.token' };
    expect(upstreamTxnToken({ mode: 'pass-through-or-mint', minter: m }, facts({ txn }))).toBe('incoming.txn.token');
    const minted = upstreamTxnToken({ mode: 'mint', minter: m }, facts({ txn }));
    expect(decodeProtectedHeader(minted).kid).toBe(m.kid);
    expect(decodeProtectedHeader(upstreamTxnToken({ mode: 'pass-through-or-mint', minter: m }, facts())).kid).toBe(m.kid);
  });
});
