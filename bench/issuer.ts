/**
 * The benchmark's token issuer: generates one ES256 key at start, serves its JWK Set on
 * 127.0.0.1 (agentward fetches it once at start), and writes into --out:
 *
 *   public.pem      the public key (SPKI PEM), for HAProxy's jwt_verify
 *   token           the valid, long-lived RFC 9068 access token every load run sends
 *   forged          the same claims signed by a different key that claims the same kid
 *   expired         exp an hour ago (well past any clock skew)
 *   wrong-aud       aud names another resource
 *   no-scope        no tools.read scope (the default policy denies GET with 403)
 *   wrong-iss       iss names an issuer nobody configured
 *   dpop-key.json   a client's DPoP proof key (private JWK, ES256), for bench/dpop-proofs.ts
 *   dpop-token      the valid token bound to that key (cnf.jkt = its RFC 7638 thumbprint)
 *   ready           written last, so the caller can wait for this one file
 *
 * The negative tokens let run.sh prove, before loading, that HAProxy and agentward really
 * check what they are credited with checking.
 *
 *   node bench/issuer.ts --port 18000 --out DIR --audience https://tools.bench.test
 */
import { createServer } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT, calculateJwkThumbprint, exportJWK, exportSPKI, generateKeyPair, type CryptoKey } from 'jose';

const { values } = parseArgs({
  options: { port: { type: 'string' }, out: { type: 'string' }, audience: { type: 'string' } },
  strict: true,
});
if (!values.port || !values.out || !values.audience) {
  console.error('usage: node bench/issuer.ts --port PORT --out DIR --audience RESOURCE_ID');
  process.exit(2);
}
const port = Number(values.port);
const out = values.out;
const audience = values.audience;
const issuer = `http://127.0.0.1:${port}`;
const kid = 'bench-1';

const signing = await generateKeyPair('ES256', { extractable: true });
const impostor = await generateKeyPair('ES256', { extractable: true });
// The DPoP client's key: the issuer binds a token to it, bench/dpop-proofs.ts signs proofs with it.
const dpopKey = await generateKeyPair('ES256', { extractable: true });
const dpopPublicJwk = await exportJWK(dpopKey.publicKey);
const dpopJkt = await calculateJwkThumbprint(dpopPublicJwk, 'sha256');
const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(signing.publicKey)), kid, alg: 'ES256', use: 'sig' }] });

async function mint(claims: Record<string, unknown> = {}, key: CryptoKey = signing.privateKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: issuer,
    aud: audience,
    sub: 'user-42',
    client_id: 'bench-client',
    iat: now,
    // Long-lived: one token serves every run (and the cache keeps it for its whole life).
    exp: now + 6 * 3600,
    jti: `bench-${now}`,
    scope: 'tools.read',
    ...claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' }).sign(key);
}

const server = createServer((req, res) => {
  if (req.url === '/jwks') {
    res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(jwks);
    return;
  }
  res.writeHead(404).end();
});
await new Promise<void>((done, fail) => {
  server.once('error', fail);
  server.listen(port, '127.0.0.1', () => done());
});

mkdirSync(out, { recursive: true });
const now = Math.floor(Date.now() / 1000);
const files: Record<string, string> = {
  'public.pem': await exportSPKI(signing.publicKey),
  token: await mint(),
  forged: await mint({}, impostor.privateKey),
  expired: await mint({ iat: now - 7200, exp: now - 3600 }),
  'wrong-aud': await mint({ aud: 'https://other.bench.test' }),
  'no-scope': await mint({ scope: 'tools.write' }),
  'wrong-iss': await mint({ iss: 'http://127.0.0.1:1' }),
  'dpop-key.json': JSON.stringify({ ...(await exportJWK(dpopKey.privateKey)), alg: 'ES256' }),
  'dpop-token': await mint({ cnf: { jkt: dpopJkt } }),
};
for (const [name, content] of Object.entries(files)) writeFileSync(join(out, name), content);
writeFileSync(join(out, 'ready'), `${issuer}\n`);

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
