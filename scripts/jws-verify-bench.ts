/**
 * What one compact-JWS verification costs in src/jose/verify.ts (issue 12: "jose for JOSE
 * objects, node:crypto for the per-request signature math"), outside the server:
 *
 *   - `verifyCompactJws` with an access-token profile (form `parts`, claims read first, an issuer
 *     key set built by jose's createLocalJWKSet): a token the cache has not seen;
 *   - `DpopVerifier.verify` + `commit` (src/credentials/dpop.ts): a new proof by a known key;
 *   - the signature check alone, per algorithm: jose `compactVerify` (WebCrypto on libuv's thread
 *     pool) against `crypto.verify` on a KeyObject (what verify.ts now does).
 *
 *   taskset -c 0 node scripts/jws-verify-bench.ts [N]     (default 5000 per row, a fifth more to warm up)
 *
 * CPU µs/op is process.cpuUsage() (user + system, all threads, so the thread pool's work counts)
 * divided by the operations, run one at a time. Set FAST_JWT=/path/to/node_modules/fast-jwt to add
 * fast-jwt's verifier (not a dependency; install it elsewhere to compare).
 */
import { generateKeyPairSync, hash, KeyObject, randomUUID, sign, verify as verifySync, constants, type KeyObject as KeyObjectType } from 'node:crypto';
import { compactVerify, createLocalJWKSet, importJWK, type JWK } from 'jose';
import { DpopVerifier } from '../src/credentials/dpop.ts';
import { explicitTyp, verifyCompactJws, type JwsProfile } from '../src/jose/verify.ts';

const N = Number(process.argv[2] ?? 5000);
const NOW_S = Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Runs `op` for i in [0, count), one at a time, after a warm-up of count/5; prints CPU and wall µs per op. */
async function measure(name: string, op: (i: number) => unknown, count = N): Promise<void> {
  const warm = Math.floor(count / 5);
  for (let i = 0; i < warm; i++) await op(count + i);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await op(i);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(`${name.padEnd(58)} ${((cpu.user + cpu.system) / count).toFixed(1).padStart(7)} µs CPU  ${((wall * 1000) / count).toFixed(1).padStart(7)} µs wall`);
}

/** `count` tokens with distinct claims, signed by `signer` over header.payload. */
function mint(count: number, header: Record<string, unknown>, claims: () => Record<string, unknown>, signer: (input: Buffer) => Buffer): string[] {
  const h = b64(header);
  return Array.from({ length: count }, () => {
    const input = `${h}.${b64(claims())}`;
    return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
  });
}

const TOTAL = N + Math.floor(N / 5);

// ---- verifyCompactJws, access-token profile, ES256, every token new (cache miss)
{
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1' } as JWK;
  const resolver = createLocalJWKSet({ keys: [jwk] });
  const profile: JwsProfile<null> = {
    noun: 'The access token',
    form: 'parts',
    claimsFirst: true,
    typ: explicitTyp({ accepted: ['at+jwt'], wrong: 'ERR_TOKEN_TYPE' }),
    algorithms: ['ES256', 'RS256'],
    keys: async (header, jws) => resolver(header, jws),
    failures: { malformed: 'ERR_TOKEN_MALFORMED', algorithm: 'ERR_TOKEN_ALGORITHM', keyUnknown: 'ERR_TOKEN_KEY_UNKNOWN', signature: 'ERR_TOKEN_SIGNATURE', unverifiable: 'ERR_TOKEN_MALFORMED' },
  };
  const claims = () => ({ iss: 'https://issuer.bench.test', aud: 'https://tools.bench.test', sub: 'user-42', client_id: 'bench', iat: NOW_S, exp: NOW_S + 3600, jti: randomUUID(), scope: 'tools.read tools.write' });
  const tokens = mint(TOTAL, { alg: 'ES256', typ: 'at+jwt', kid: 'k1' }, claims, (input) => sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
  await measure('verifyCompactJws, ES256 access token (cache miss)', (i) => verifyCompactJws(tokens[i]!, profile, null));
  const forged = tokens.map((t) => `${t.slice(0, -4)}AAAA`);
  await measure('verifyCompactJws, ES256 access token, forged signature', (i) => verifyCompactJws(forged[i]!, profile, null).catch(() => undefined));
}

// ---- DpopVerifier.verify + commit, ES256, a new proof by the same key each time
{
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const accessToken = `eyJhbGciOiJFUzI1NiJ9.${'x'.repeat(400)}.sig`;
  const htu = 'https://tools.bench.test/api/items';
  const ath = hash('sha256', accessToken, 'base64url');
  const proofs = mint(TOTAL, { typ: 'dpop+jwt', alg: 'ES256', jwk: publicKey.export({ format: 'jwk' }) }, () => ({ jti: randomUUID(), htm: 'GET', htu, iat: NOW_S, ath }), (input) =>
    sign('sha256', input, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
  );
  const verifier = new DpopVerifier({ algorithms: ['ES256', 'EdDSA', 'PS256', 'RS256'], maxAgeSeconds: 60, clockSkewSeconds: 30, replayCacheSize: 2 * TOTAL, now: () => NOW_S * 1000 });
  const request = { method: 'GET', uri: htu, accessToken };
  await measure('DpopVerifier.verify + commit, ES256 proof', async (i) => (await verifier.verify(proofs[i]!, request)).commit());
}

// ---- the signature check alone: jose compactVerify vs crypto.verify (vs fast-jwt, if given)
interface AlgCase {
  alg: string;
  pair: { privateKey: KeyObjectType; publicKey: KeyObjectType };
  signer: (input: Buffer, key: KeyObjectType) => Buffer;
  verifier: (input: Buffer, key: KeyObjectType, signature: Buffer) => boolean;
}
const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
const CASES: AlgCase[] = [
  { alg: 'ES256', pair: generateKeyPairSync('ec', { namedCurve: 'P-256' }), signer: (i, key) => sign('sha256', i, { key, dsaEncoding: 'ieee-p1363' }), verifier: (i, key, s) => verifySync('sha256', i, { key, dsaEncoding: 'ieee-p1363' }, s) },
  { alg: 'RS256', pair: generateKeyPairSync('rsa', { modulusLength: 2048 }), signer: (i, key) => sign('sha256', i, key), verifier: (i, key, s) => verifySync('sha256', i, key, s) },
  { alg: 'PS256', pair: generateKeyPairSync('rsa', { modulusLength: 2048 }), signer: (i, key) => sign('sha256', i, { key, ...pss }), verifier: (i, key, s) => verifySync('sha256', i, { key, ...pss }, s) },
  { alg: 'EdDSA', pair: generateKeyPairSync('ed25519'), signer: (i, key) => sign(null, i, key), verifier: (i, key, s) => verifySync(null, i, key, s) },
];
const fastJwtPath = process.env.FAST_JWT;
const fastJwt = fastJwtPath ? ((await import(fastJwtPath)) as { createVerifier: (options: Record<string, unknown>) => (token: string) => unknown }) : undefined;
for (const c of CASES) {
  const tokens = mint(TOTAL, { alg: c.alg, typ: 'JWT' }, () => ({ sub: 'user-42', exp: NOW_S + 3600, jti: randomUUID() }), (input) => c.signer(input, c.pair.privateKey));
  const cryptoKey = await importJWK(c.pair.publicKey.export({ format: 'jwk' }) as JWK, c.alg);
  await measure(`${c.alg} jose compactVerify (WebCrypto)`, (i) => compactVerify(tokens[i]!, cryptoKey, { algorithms: [c.alg] }));
  const keyObject = KeyObject.from(cryptoKey as unknown as Parameters<typeof KeyObject.from>[0]);
  await measure(`${c.alg} crypto.verify on a KeyObject`, (i) => {
    const token = tokens[i]!;
    const dot = token.lastIndexOf('.');
    if (!c.verifier(Buffer.from(token.slice(0, dot), 'latin1'), keyObject, Buffer.from(token.slice(dot + 1), 'base64url'))) throw new Error('bad');
  });
  if (fastJwt) {
    const verify = fastJwt.createVerifier({ key: keyObject.export({ type: 'spki', format: 'pem' }), algorithms: [c.alg], cache: false });
    await measure(`${c.alg} fast-jwt createVerifier (sync)`, (i) => verify(tokens[i]!));
  }
}
