/**
 * What one DPoP proof costs agentward outside the server: `DpopVerifier.verify` + `commit` of
 * src/credentials/dpop.ts in a tight loop, with a frozen clock (so every proof stays recent and no
 * replay entry expires), and its parts measured alone. Each proof is new (its own jti), as under
 * load, so the replay cache grows by one entry per proof.
 *
 *   taskset -c 0 node bench/dpop-micro.ts [PROOFS]      (default 10000 per pass)
 *
 * CPU µs/op is process.cpuUsage() (user + system, all threads: WebCrypto work runs on libuv's
 * thread pool) divided by the operations; wall µs/op is elapsed time. "32 in flight" runs the
 * same verifications 32 at a time, like a loaded server with 32 connections.
 */
import { createPublicKey, generateKeyPairSync, hash, randomUUID, sign, verify as verifySync, webcrypto } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, compactVerify, importJWK, type JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import { DpopVerifier, normalizeHtu } from '../src/credentials/dpop.ts';

const N = Number(process.argv[2] ?? 10000);
const HTU = 'https://tools.bench.test/api/items';
const REQUEST_URI = 'https://tools.bench.test/api/items';
const TOKEN = `eyJhbGciOiJFUzI1NiJ9.${'x'.repeat(400)}.sig`; // only its hash matters (ath)
const FROZEN = Date.now();

const { privateKey: privateKeyObject, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = publicKey.export({ format: 'jwk' });
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const header = b64({ typ: 'dpop+jwt', alg: 'ES256', jwk });
const ath = hash('sha256', TOKEN, 'base64url');
const iat = Math.floor(FROZEN / 1000);

function makeProofs(count: number): string[] {
  const out: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const input = `${header}.${b64({ jti: randomUUID(), htm: 'GET', htu: HTU, iat, ath })}`;
    out[i] = `${input}.${sign('sha256', Buffer.from(input), { key: privateKeyObject, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  }
  return out;
}

interface Result {
  name: string;
  cpu: number;
  wall: number;
}
const results: Result[] = [];

/** Runs `op` over `count` indices, `inFlight` at a time, after a warm-up of a fifth as many. */
async function measure(name: string, count: number, op: (i: number) => unknown, inFlight = 1): Promise<void> {
  const run = async (from: number, to: number) => {
    if (inFlight === 1) {
      for (let i = from; i < to; i++) await op(i);
      return;
    }
    for (let i = from; i < to; i += inFlight) {
      const batch: unknown[] = [];
      for (let j = i; j < Math.min(i + inFlight, to); j++) batch.push(op(j));
      await Promise.all(batch);
    }
  };
  const warm = Math.floor(count / 5);
  await run(0, warm);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run(warm, count);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const n = count - warm;
  results.push({ name, cpu: (cpu.user + cpu.system) / n, wall: (wall * 1000) / n });
}

const algorithms = ['ES256', 'EdDSA', 'PS256', 'RS256']; // agentward's default oauth.dpop.algorithms
const newVerifier = () => new DpopVerifier({ algorithms, maxAgeSeconds: 60, clockSkewSeconds: 30, replayCacheSize: 200000, now: () => FROZEN });
const request = { method: 'GET', uri: REQUEST_URI, accessToken: TOKEN };

// The whole check, as the pipeline runs it: verify, then commit (the replay-cache insert).
const total = N + Math.floor(N / 5);
{
  const proofs = makeProofs(total);
  const verifier = newVerifier();
  await measure('DpopVerifier.verify + commit, one at a time', total, async (i) => (await verifier.verify(proofs[i]!, request)).commit());
}
{
  const proofs = makeProofs(total);
  const verifier = newVerifier();
  await measure('DpopVerifier.verify + commit, 32 in flight', total, async (i) => (await verifier.verify(proofs[i]!, request)).commit(), 32);
}

// Its parts, alone.
const proofs = makeProofs(total);
await measure('  jose compactVerify with EmbeddedJWK (key import + ECDSA verify)', total, (i) => compactVerify(proofs[i]!, EmbeddedJWK, { algorithms }));
await measure('    of which: importJWK of the embedded key (WebCrypto importKey)', total, () => importJWK(jwk as JWK, 'ES256'));
const cryptoKey = await webcrypto.subtle.importKey('jwk', jwk as webcrypto.JsonWebKey, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
const signed = proofs.map((p) => {
  const [h, pl, s] = p.split('.');
  return { data: Buffer.from(`${h}.${pl}`), sig: Buffer.from(s!, 'base64url') };
});
await measure('    of which: crypto.subtle.verify, key already imported', total, (i) =>
  webcrypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, cryptoKey, signed[i]!.sig, signed[i]!.data),
);
await measure('  calculateJwkThumbprint of the embedded key', total, () => calculateJwkThumbprint(jwk as JWK, 'sha256'));
{
  // The synchronous rest of verify(): decode the header, parse the claims, compare htm and htu
  // (two URL parses), hash the token for ath, hash the replay key, look it up and insert it.
  const seen = new LRUCache<string, number>({ max: 200000, ttl: 120_000, ttlAutopurge: false, perf: { now: () => FROZEN } });
  await measure('  the rest: JSON decode, htu normalisation, ath hash, replay key hash + LRU insert', total, (i) => {
    const [h, pl] = proofs[i]!.split('.');
    JSON.parse(Buffer.from(h!, 'base64url').toString('utf8'));
    const claims = JSON.parse(Buffer.from(pl!, 'base64url').toString('utf8')) as { jti: string; htu: string };
    if (normalizeHtu(claims.htu) !== normalizeHtu(REQUEST_URI)) throw new Error('htu');
    if (hash('sha256', TOKEN, 'base64url') !== ath) throw new Error('ath');
    const key = hash('sha256', `jkt.${claims.jti}`, 'base64url');
    if (!seen.has(key)) seen.set(key, iat);
  });
}
// For comparison: the same ECDSA verification synchronously with a KeyObject (what a verifier that
// kept imported proof keys, e.g. by thumbprint, and used node:crypto would pay).
const keyObject = createPublicKey({ key: jwk as never, format: 'jwk' });
await measure('  for comparison: crypto.verify (sync, KeyObject kept)', total, (i) =>
  verifySync('sha256', signed[i]!.data, { key: keyObject, dsaEncoding: 'ieee-p1363' }, signed[i]!.sig),
);

const width = Math.max(...results.map((r) => r.name.length));
console.log(`node ${process.version}, ${N} operations per line (after ${Math.floor(N / 5)} warm-up), clock frozen\n`);
console.log(`${'operation'.padEnd(width)}  CPU µs/op  wall µs/op`);
for (const r of results) console.log(`${r.name.padEnd(width)}  ${r.cpu.toFixed(0).padStart(9)}  ${r.wall.toFixed(0).padStart(10)}`);
