/**
 * The benchmark's RFC 7662 introspection endpoint: node:http on 127.0.0.1, the cheapest answer an
 * authorization server can give, so the numbers measure agentward's side of the round trip.
 *
 *   POST /introspect   client_secret_basic required (401 otherwise); form field `token`.
 *                      Answers {active: true, iss, aud, scope, exp, ...} for the known tokens and
 *                      for any token starting with the unique prefix, {active: false} otherwise.
 *   GET  /stats        {"calls": N, "authFailures": N}: introspection calls answered so far, so
 *                      run.sh can count the calls made during a load run.
 *
 * Writes into --out:
 *   client-secret    agentward's client secret (random per run; the config reads it with fromFile)
 *   opaque           the valid opaque token every cached load run sends (scope tools.read)
 *   opaque-no-scope  active, without tools.read (the default policy answers a GET with 403)
 *   opaque-wrong-aud active, for another resource (401 ERR_TOKEN_AUDIENCE)
 *   opaque-inactive  unknown to this server: {active: false} (401 ERR_TOKEN_INACTIVE)
 *   unique-prefix    every token with this prefix is active (bench/opaque.lua appends a counter)
 *   ready            written last
 *
 *   node bench/introspection.ts --port 18010 --out DIR --issuer URL --audience RESOURCE_ID --client-id ID
 */
import { createServer } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    out: { type: 'string' },
    issuer: { type: 'string' },
    audience: { type: 'string' },
    'client-id': { type: 'string' },
  },
  strict: true,
});
if (!values.port || !values.out || !values.issuer || !values.audience || !values['client-id']) {
  console.error('usage: node bench/introspection.ts --port PORT --out DIR --issuer URL --audience RESOURCE_ID --client-id ID');
  process.exit(2);
}
const { issuer, audience, out } = values;
const clientId = values['client-id'];

const random = (bytes: number) => randomBytes(bytes).toString('base64url');
const clientSecret = random(24);
// RFC 6749 §2.3.1: the id and the secret are form-urlencoded before base64 (both are URL-safe here).
const expectedAuth = Buffer.from(`Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`);
// Opaque tokens: no dots, so agentward never takes one for a JWT.
const tokens = { opaque: random(32), noScope: random(32), wrongAud: random(32), inactive: random(32) };
const uniquePrefix = `u-${random(12)}-`;

const now = Math.floor(Date.now() / 1000);
const base = { active: true, iss: issuer, aud: audience, sub: 'user-42', client_id: 'bench-client', token_type: 'Bearer', scope: 'tools.read', iat: now, exp: now + 6 * 3600 };
const answers = new Map<string, string>([
  [tokens.opaque, JSON.stringify(base)],
  [tokens.noScope, JSON.stringify({ ...base, scope: 'tools.write' })],
  [tokens.wrongAud, JSON.stringify({ ...base, aud: 'https://other.bench.test' })],
]);
const activeAnswer = answers.get(tokens.opaque)!;
const inactiveAnswer = JSON.stringify({ active: false });

let calls = 0;
let authFailures = 0;

function authorized(header: string | undefined): boolean {
  if (header === undefined) return false;
  const given = Buffer.from(header);
  return given.length === expectedAuth.length && timingSafeEqual(given, expectedAuth);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ calls, authFailures }));
    return;
  }
  if (req.method !== 'POST' || req.url !== '/introspect') {
    req.resume();
    res.writeHead(404).end();
    return;
  }
  if (!authorized(req.headers.authorization)) {
    authFailures++;
    req.resume();
    res.writeHead(401, { 'www-authenticate': 'Basic realm="introspection"' }).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    calls++;
    const token = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('token') ?? '';
    const body = answers.get(token) ?? (token.startsWith(uniquePrefix) ? activeAnswer : inactiveAnswer);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(body)) }).end(body);
  });
});
server.keepAliveTimeout = 120_000;
await new Promise<void>((done, fail) => {
  server.once('error', fail);
  server.listen(Number(values.port), '127.0.0.1', () => done());
});

mkdirSync(out, { recursive: true });
const files: Record<string, string> = {
  'client-secret': clientSecret,
  opaque: tokens.opaque,
  'opaque-no-scope': tokens.noScope,
  'opaque-wrong-aud': tokens.wrongAud,
  'opaque-inactive': tokens.inactive,
  'unique-prefix': uniquePrefix,
};
for (const [name, content] of Object.entries(files)) writeFileSync(join(out, name), content);
writeFileSync(join(out, 'ready'), `http://127.0.0.1:${values.port}/introspect\n`);

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
