/**
 * The Txn-Token agentward mints for the upstream (forward.txnToken; draft-ietf-oauth-transaction-
 * tokens), end to end: the real agentward, a real issuer, the real opa-compiled policy, and an
 * upstream that verifies every Txn-Token it receives with jose against the JWK Set agentward
 * serves on its admin listener (a real HTTP fetch of /jwks.json), as docs/upstream-identity.md
 * tells a protected service to. Also: a verified incoming Txn-Token passed on unchanged
 * (pass-through-or-mint), and a key file replaced while running (new kid signs, old kid still
 * published).
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, createRemoteJWKSet, jwtVerify, type JWK, type JWTPayload, type JWTVerifyGetKey, type ProtectedHeaderParameters } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://tools.example.com/api';
const TRUST_DOMAIN = 'trust-domain.example';
const POLICY = join(REPO, 'test/fixtures/policies/txn-mint');

/** What the upstream got: the Txn-Token as received, and jose's verdict on it. */
interface Received {
  txnToken: string | undefined;
  authorization: string | undefined;
  verified: { payload: JWTPayload; protectedHeader: ProtectedHeaderParameters } | undefined;
  error: string | undefined;
}

interface VerifyingUpstream {
  url: string;
  received: Received[];
  /** Points the verifier at agentward's admin JWK Set, once agentward has started. */
  trust(jwksUrl: string): void;
  close(): Promise<void>;
}

/**
 * A protected service as docs/upstream-identity.md describes it: jose's remote key set on
 * agentward's /jwks.json, and jwtVerify with the algorithm, issuer, audience and typ pinned.
 * `cooldownDuration: 0` so that a new kid after a rotation is fetched at once (the how-to explains).
 */
async function startVerifyingUpstream(): Promise<VerifyingUpstream> {
  const received: Received[] = [];
  let keys: JWTVerifyGetKey | undefined;
  const server: Server = createServer((req, res) => {
    void (async () => {
      const token = req.headers['txn-token'] as string | undefined;
      const entry: Received = { txnToken: token, authorization: req.headers.authorization, verified: undefined, error: undefined };
      try {
        entry.verified = await jwtVerify(token ?? '', keys!, { algorithms: ['ES256'], issuer: RESOURCE, audience: TRUST_DOMAIN, typ: 'txntoken+jwt', requiredClaims: ['iat', 'exp', 'txn', 'sub', 'scope', 'req_wl'] });
      } catch (err) {
        entry.error = (err as { code?: string }).code ?? String(err);
      }
      received.push(entry);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    trust(jwksUrl) {
      keys = createRemoteJWKSet(new URL(jwksUrl), { cooldownDuration: 0 });
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function pem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

let issuer: TestIssuer;
let tts: TestIssuer;
let keyDir: string;
let keyFile: string;
let mintUpstream: VerifyingUpstream;
let passUpstream: VerifyingUpstream;
let minting: RunningAgentward;
let passing: RunningAgentward;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  tts = await startIssuer({ audience: TRUST_DOMAIN });
  keyDir = mkdtempSync(join(tmpdir(), 'agentward-txn-key-'));
  keyFile = join(keyDir, 'signing.pem');
  writeFileSync(keyFile, pem());
  [mintUpstream, passUpstream] = await Promise.all([startVerifyingUpstream(), startVerifyingUpstream()]);
  const base = (upstream: VerifyingUpstream, mode: string) => ({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    txnTokens: { trustDomain: TRUST_DOMAIN, jwksUri: tts.jwksUri },
    policy: { source: POLICY },
    forward: { txnToken: { mode, keyFile, audience: TRUST_DOMAIN } },
  });
  [minting, passing] = await Promise.all([startAgentward(base(mintUpstream, 'mint')), startAgentward(base(passUpstream, 'pass-through-or-mint'))]);
  mintUpstream.trust(`${minting.adminUrl}/jwks.json`);
  passUpstream.trust(`${passing.adminUrl}/jwks.json`);
}, 60_000);

afterAll(async () => {
  await Promise.all([minting, passing].map((a) => a?.stop()));
  await Promise.all([mintUpstream, passUpstream].map((u) => u?.close()));
  await Promise.all([issuer?.close(), tts?.close()]);
});

/** A Txn-Token from the trust domain's own Txn-Token service. */
async function incomingTxnToken(): Promise<string> {
  const key = tts.keys.at(-1)!;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iat: now, aud: TRUST_DOMAIN, exp: now + 300, txn: 'txn-from-the-gateway', sub: 'user-42', scope: 'orders.read', req_wl: 'apigateway.trust-domain.example', tctx: { action: 'LIST' } })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'txntoken+jwt' })
    .sign(key.privateKey);
}

async function send(aw: RunningAgentward, upstream: VerifyingUpstream, path: string, headers: Record<string, string>) {
  const before = upstream.received.length;
  const res = await rawRequest(`${aw.url}${path}`, { headers });
  return { res, received: upstream.received.length > before ? upstream.received.at(-1) : undefined };
}

async function adminJwks(aw: RunningAgentward): Promise<{ contentType: string | null; keys: JWK[] }> {
  const res = await fetch(`${aw.adminUrl}/jwks.json`);
  return { contentType: res.headers.get('content-type'), keys: ((await res.json()) as { keys: JWK[] }).keys };
}

describe('mode mint', () => {
  test('the upstream verifies the minted token with jose against /jwks.json: signature, typ, iss, aud, exp and every claim', async () => {
    const accessToken = await issuer.mint({ scope: 'tools.read orders.read admin' });
    const { res, received } = await send(minting, mintUpstream, '/orders', { authorization: `Bearer ${accessToken}` });
    expect(res.status).toBe(200);
    expect(received?.error).toBeUndefined();
    const { payload, protectedHeader } = received!.verified!;
    const { keys } = await adminJwks(minting);
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'txntoken+jwt', kid: keys[0]!.kid });
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(payload).toMatchObject({
      iss: RESOURCE,
      aud: TRUST_DOMAIN,
      txn: res.headers['x-request-id'],
      sub: 'user-42',
      req_wl: 'research-bot',
      // The token's scopes narrowed to the decision's `scopes`: admin is not passed on.
      scope: 'tools.read orders.read',
      tctx: { method: 'GET', path: '/orders', tool: 'orders' },
      rctx: { req_ip: '127.0.0.1' },
    });
    // Never the caller's access token, neither as a header nor inside the Txn-Token.
    expect(received!.authorization).toBeUndefined();
    expect(Buffer.from(received!.txnToken!.split('.')[1]!, 'base64url').toString()).not.toContain(accessToken.split('.')[1]);
  });

  test("without decision scopes, the scope is the access token's", async () => {
    const { res, received } = await send(minting, mintUpstream, '/tools', { authorization: `Bearer ${await issuer.mint({ scope: 'tools.read admin' })}` });
    expect(res.status).toBe(200);
    expect(received!.verified!.payload).toMatchObject({ scope: 'tools.read admin', tctx: { method: 'GET', path: '/tools' } });
  });

  test('a verified incoming Txn-Token is replaced by a minted one', async () => {
    const { res, received } = await send(minting, mintUpstream, '/orders', { authorization: `Bearer ${await issuer.mint()}`, 'txn-token': await incomingTxnToken() });
    expect(res.status).toBe(200);
    expect(received!.verified!.payload).toMatchObject({ iss: RESOURCE, txn: res.headers['x-request-id'] });
  });

  test('no scope left for the token: 403 ERR_TXN_MINT_NO_SCOPE, the upstream sees nothing', async () => {
    const { res, received } = await send(minting, mintUpstream, '/orders', { authorization: `Bearer ${await issuer.mint({ scope: 'admin' })}` });
    expect(res.status).toBe(403);
    expect(res.json().code).toBe('ERR_TXN_MINT_NO_SCOPE');
    expect(received).toBeUndefined();
  });

  test('the admin listener serves the public key set: application/jwk-set+json, no private member', async () => {
    const { contentType, keys } = await adminJwks(minting);
    expect(contentType).toBe('application/jwk-set+json');
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
  });
});

describe('mode pass-through-or-mint', () => {
  test('a verified incoming Txn-Token is passed on unchanged', async () => {
    const incoming = await incomingTxnToken();
    const { res, received } = await send(passing, passUpstream, '/orders', { authorization: `Bearer ${await issuer.mint()}`, 'txn-token': incoming });
    expect(res.status).toBe(200);
    expect(received!.txnToken).toBe(incoming);
    expect(received!.authorization).toBeUndefined();
  });

  test('a request without one gets a minted token', async () => {
    const { res, received } = await send(passing, passUpstream, '/orders', { authorization: `Bearer ${await issuer.mint()}` });
    expect(res.status).toBe(200);
    expect(received!.error).toBeUndefined();
    expect(received!.verified!.payload).toMatchObject({ iss: RESOURCE, txn: res.headers['x-request-id'], scope: 'tools.read' });
  });

  test('an incoming Txn-Token that does not verify is refused, never passed on', async () => {
    const forged = (await incomingTxnToken()).replace(/\.[^.]+$/, '.AAAA');
    const { res, received } = await send(passing, passUpstream, '/orders', { authorization: `Bearer ${await issuer.mint()}`, 'txn-token': forged });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_TXN_TOKEN_SIGNATURE');
    expect(received).toBeUndefined();
  });
});

describe('key rotation while running', () => {
  test('a new key file: the new kid signs at once, the old kid stays in /jwks.json, the upstream verifies both', async () => {
    const authorization = `Bearer ${await issuer.mint()}`;
    const before = await send(minting, mintUpstream, '/orders', { authorization });
    const oldKid = before.received!.verified!.protectedHeader.kid;

    // As a Kubernetes secret or an editor replaces a file: a new one renamed onto it.
    const next = join(keyDir, 'next.pem');
    writeFileSync(next, pem());
    renameSync(next, keyFile);
    await waitFor(async () => (await adminJwks(minting)).keys.length === 2, 'the new key in /jwks.json');

    const { keys } = await adminJwks(minting);
    expect(keys.map((k) => k.kid)).toEqual([expect.any(String), oldKid]);
    const after = await send(minting, mintUpstream, '/orders', { authorization });
    expect(after.res.status).toBe(200);
    expect(after.received!.error).toBeUndefined();
    expect(after.received!.verified!.protectedHeader.kid).toBe(keys[0]!.kid);
    expect(keys[0]!.kid).not.toBe(oldKid);

    const ready = (await (await fetch(`${minting.adminUrl}/readyz`)).json()) as { txnMint: { kid: string; retired: { kid: string }[] } };
    expect(ready.txnMint).toMatchObject({ kid: keys[0]!.kid, retired: [{ kid: oldKid }] });
    // The logs name kids, never a token.
    expect(minting.logs()).toContain('Txn-Token signing key replaced');
    expect(minting.logs()).not.toContain(after.received!.txnToken!);
  });
});
