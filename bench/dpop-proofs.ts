/**
 * DPoP proofs for the load run (RFC 9449 §4.2), one per line, for bench/proofs.lua. wrk sends static
 * headers, and a proof is single-use (agentward remembers its jti) and must be recent (its iat
 * within oauth.dpop.maxAge + oauth.clockSkew), so run.sh writes them right before each load run:
 * every proof carries the same key, htm, htu and ath, a fresh random jti, and iat = now.
 *
 *   node bench/dpop-proofs.ts --key DIR/dpop-key.json --token-file DIR/dpop-token \
 *     --htu https://tools.bench.test/api/items --count 60000 --out FILE [--htm GET] [--iat-offset=-300]
 *
 * --key is the private JWK written by bench/issuer.ts; the token (its cnf.jkt is this key's
 * thumbprint) gives `ath`. Signing uses node:crypto synchronously (ES256, IEEE P1363 signature as
 * JWS wants), about 30 µs a proof, so tens of thousands take a second or two; the first proof is
 * verified with jose before the file is written, so a malformed encoding cannot reach the run.
 */
import { createPrivateKey, hash, randomUUID, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EmbeddedJWK, compactVerify, type JWK } from 'jose';

const { values } = parseArgs({
  options: {
    key: { type: 'string' },
    'token-file': { type: 'string' },
    htu: { type: 'string' },
    htm: { type: 'string', default: 'GET' },
    count: { type: 'string', default: '1' },
    'iat-offset': { type: 'string', default: '0' },
    out: { type: 'string' },
  },
  strict: true,
});
if (!values.key || !values['token-file'] || !values.htu || !values.out) {
  console.error('usage: node bench/dpop-proofs.ts --key JWK_FILE --token-file FILE --htu URL --count N --out FILE [--htm GET] [--iat-offset=SECONDS]');
  process.exit(2);
}
const count = Number(values.count);
const iatOffset = Number(values['iat-offset']);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(iatOffset)) {
  console.error('--count must be a positive integer and --iat-offset an integer');
  process.exit(2);
}

const privateJwk = JSON.parse(readFileSync(values.key, 'utf8')) as JWK;
const privateKey = createPrivateKey({ key: privateJwk as never, format: 'jwk' });
const { kty, crv, x, y } = privateJwk;
const token = readFileSync(values['token-file'], 'utf8').trim();

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
// One header for every proof: the public key only (§4.3 step 7).
const header = b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } });
const ath = hash('sha256', token, 'base64url');
const iat = Math.floor(Date.now() / 1000) + iatOffset;

const lines: string[] = new Array(count);
for (let i = 0; i < count; i++) {
  const input = `${header}.${b64({ jti: randomUUID(), htm: values.htm, htu: values.htu, iat, ath })}`;
  const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  lines[i] = `${input}.${signature}`;
}
await compactVerify(lines[0]!, EmbeddedJWK, { algorithms: ['ES256'] });
writeFileSync(values.out, `${lines.join('\n')}\n`);
