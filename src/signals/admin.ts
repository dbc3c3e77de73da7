/**
 * Revocation by hand (docs/signals.md): `POST /revoke` on the admin listener, or `agentward
 * revoke`, which calls it. The request names what a security event would (a subject, a session, a
 * client, a token id or an email) and gets the same remediation: a revoked-before mark, the caches
 * purged, open streams closed, an audit record. It needs the admin bearer token
 * (`admin.revoke.token`), compared in constant time; the endpoint cannot be enabled without one.
 *
 *   POST /revoke
 *   Authorization: Bearer <admin.revoke.token>
 *   Content-Type: application/json
 *   { "sub": "user-42", "iss": "https://as.example.com" }     or { "sid": ... } { "clientId": ... } { "jti": ... } { "email": ... }
 *   optional "before": epoch seconds (default: now; never later than now)
 *
 * Answers 200 with { mark, purged, streamsClosed }; 400 ERR_ADMIN_REQUEST; 401 ERR_ADMIN_UNAUTHORIZED.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { AgentwardError, asAgentwardError } from '../errors.ts';
import type { RevocationMatch } from '../credentials/revocation.ts';
import { readBounded } from '../outbound/bounded-body.ts';
import type { Remediate } from './receiver.ts';

const FIELDS = ['iss', 'sub', 'sid', 'clientId', 'jti', 'email'] as const;
const MAX_BODY_BYTES = 16 * 1024;

export interface RevokeEndpointOptions {
  /** The admin bearer token (`admin.revoke.token`). */
  token: string;
  remediate: Remediate;
  now: () => number;
  logger: Logger;
}

/** The request handler of the revocation endpoint. */
export function revokeEndpoint(options: RevokeEndpointOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const expected = hash('sha256', `Bearer ${options.token}`, 'buffer');
  return async (req, res) => {
    try {
      if (req.method !== 'POST') {
        res.writeHead(405, { allow: 'POST', 'content-length': 0, connection: 'close' }).end();
        return;
      }
      const auth = req.headers.authorization;
      if (auth === undefined || !timingSafeEqual(hash('sha256', auth, 'buffer'), expected)) throw new AgentwardError('ERR_ADMIN_UNAUTHORIZED');
      const body = await readBounded(req, {
        maxBytes: MAX_BODY_BYTES,
        contentLength: req.headers['content-length'],
        tooLarge: () => new AgentwardError('ERR_ADMIN_REQUEST', 'The request body is too large.'),
        readFailed: (cause) => new AgentwardError('ERR_ADMIN_REQUEST', 'The request body could not be read.', { cause }),
      });
      const { match, before } = parseRevokeRequest(body, Math.floor(options.now() / 1000));
      const outcome = options.remediate({ source: 'admin', event: 'purge', transmitter: null, setId: null, subject: { ...match }, matches: [match], notes: [], before });
      send(res, 200, { mark: outcome.marks[0] ?? null, purged: outcome.purged, streamsClosed: outcome.streamsClosed });
    } catch (err) {
      const error = asAgentwardError(err);
      options.logger.warn({ code: error.code, remoteAddress: req.socket.remoteAddress }, `revocation request refused: ${error.detail}`);
      send(res, error.status, { code: error.code, detail: error.expose ? error.detail : 'Internal error.' }, error.code === 'ERR_ADMIN_UNAUTHORIZED');
    }
  };
}

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...(close ? { connection: 'close' } : {}) });
  res.end(text);
}

/** The selector of a revocation request; ERR_ADMIN_REQUEST for anything else. */
export function parseRevokeRequest(body: Buffer, nowSeconds: number): { match: RevocationMatch; before: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new AgentwardError('ERR_ADMIN_REQUEST', 'The body is not JSON.');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new AgentwardError('ERR_ADMIN_REQUEST', 'The body must be a JSON object.');
  const match: RevocationMatch = {};
  let before = nowSeconds;
  for (const [name, value] of Object.entries(doc)) {
    if (name === 'before') {
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new AgentwardError('ERR_ADMIN_REQUEST', 'before must be a number (epoch seconds).');
      before = Math.floor(Math.min(value, nowSeconds));
      continue;
    }
    if (!(FIELDS as readonly string[]).includes(name)) throw new AgentwardError('ERR_ADMIN_REQUEST', `Unknown member ${JSON.stringify(name).slice(0, 40)}; use ${FIELDS.join(', ')} or before.`);
    if (typeof value !== 'string' || value === '') throw new AgentwardError('ERR_ADMIN_REQUEST', `${name} must be a non-empty string.`);
    match[name as (typeof FIELDS)[number]] = value;
  }
  if (!FIELDS.some((f) => f !== 'iss' && match[f] !== undefined)) throw new AgentwardError('ERR_ADMIN_REQUEST', 'Name a sub, sid, clientId, jti or email (iss only narrows one of them).');
  return { match, before };
}
