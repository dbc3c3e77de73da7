/**
 * WIMSE credentials for the load run (agentward-wpt): a trust domain with a WIT issuer key, one
 * agent's WIT, and Workload Proof Tokens for it (wpt-02 §2), one per line for bench/proofs.lua. A
 * WPT is single-use (agentward remembers its jti) and short-lived, so run.sh writes them right
 * before each load run, like DPoP proofs.
 *
 *   node bench/wimse.ts init --out DIR
 *       DIR/bundle.json        SPIFFE bundle of agents.bench.test: the WIT issuer key (use wit-svid)
 *       DIR/wit                the agent's WIT: sub spiffe://agents.bench.test/bench-agent,
 *                              cnf.jwk = the workload key (ES256), valid 2 h
 *       DIR/wit-forged         the same claims signed by another key claiming the issuer's kid
 *       DIR/workload-key.json  the agent's private key (JWK), for `proofs`
 *   node bench/wimse.ts proofs --dir DIR --aud URL --count N --out FILE [--lifetime 240]
 *       N WPTs for DIR/wit (fresh jti each, exp = now + lifetime, aud = URL)
 *
 * Signing uses node:crypto synchronously (ES256, IEEE P1363 as JWS wants); the first WPT is checked
 * with jose before the file is written.
 */
import { createPrivateKey, generateKeyPairSync, hash, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compactVerify, importJWK, type JWK } from 'jose';

const TRUST_DOMAIN = 'agents.bench.test';
const AGENT = `spiffe://${TRUST_DOMAIN}/bench-agent`;
const ISSUER_KID = 'bench-wit-1';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const es256 = (input: string, key: KeyObject) => sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
const jws = (header: unknown, claims: unknown, key: KeyObject) => {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${es256(input, key)}`;
};
const publicJwk = (key: KeyObject): JWK => {
  const { kty, crv, x, y } = key.export({ format: 'jwk' });
  return { kty, crv, x, y } as JWK;
};

const [command, ...rest] = process.argv.slice(2);
if (command === 'init') {
  const { values } = parseArgs({ args: rest, options: { out: { type: 'string' } }, strict: true });
  if (!values.out) usage();
  mkdirSync(values.out, { recursive: true });
  const issuer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const impostor = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const workload = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'ES256', kid: ISSUER_KID, typ: 'wit+jwt' };
  const claims = { sub: AGENT, iat: now, exp: now + 7200, jti: randomUUID(), cnf: { jwk: { ...publicJwk(workload.publicKey), alg: 'ES256' } } };
  writeFileSync(join(values.out, 'bundle.json'), JSON.stringify({ keys: [{ ...publicJwk(issuer.publicKey), kid: ISSUER_KID, use: 'wit-svid' }] }));
  writeFileSync(join(values.out, 'wit'), jws(header, claims, issuer.privateKey));
  writeFileSync(join(values.out, 'wit-forged'), jws(header, claims, impostor.privateKey));
  writeFileSync(join(values.out, 'workload-key.json'), JSON.stringify(workload.privateKey.export({ format: 'jwk' })));
} else if (command === 'proofs') {
  const { values } = parseArgs({
    args: rest,
    options: { dir: { type: 'string' }, aud: { type: 'string' }, count: { type: 'string', default: '1' }, out: { type: 'string' }, lifetime: { type: 'string', default: '240' } },
    strict: true,
  });
  const count = Number(values.count);
  const lifetime = Number(values.lifetime);
  if (!values.dir || !values.aud || !values.out || !Number.isInteger(count) || count < 1 || !Number.isInteger(lifetime)) usage();
  const key = createPrivateKey({ key: JSON.parse(readFileSync(join(values.dir, 'workload-key.json'), 'utf8')), format: 'jwk' });
  const wth = hash('sha256', readFileSync(join(values.dir, 'wit'), 'utf8'), 'base64url');
  const header = b64({ alg: 'ES256', typ: 'wpt+jwt' });
  const exp = Math.floor(Date.now() / 1000) + lifetime;
  const lines: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const input = `${header}.${b64({ aud: values.aud, exp, jti: randomUUID(), wth })}`;
    lines[i] = `${input}.${es256(input, key)}`;
  }
  await compactVerify(lines[0]!, await importJWK({ ...publicJwk(key), alg: 'ES256' } as JWK, 'ES256'), { algorithms: ['ES256'] });
  writeFileSync(values.out, `${lines.join('\n')}\n`);
} else {
  usage();
}

function usage(): never {
  console.error('usage: node bench/wimse.ts init --out DIR\n       node bench/wimse.ts proofs --dir DIR --aud URL --count N --out FILE [--lifetime SECONDS]');
  process.exit(2);
}
