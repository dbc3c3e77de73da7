/**
 * Security events through the real proxy (docs/signals.md): SSF transmitters on loopback
 * (test/helpers/ssf-transmitter.ts) push (RFC 8935) and answer polls (RFC 8936) with SETs signed
 * by their own keys; agentward's receiver verifies them and remediates. Each accepted event stops
 * the tokens it names that were issued before it (401 ERR_TOKEN_REVOKED from the next request
 * on), closes their open streams and leaves an audit record; a token issued after the event
 * works. Every bad SET is refused without effect, with its RFC 8935 / RFC 8936 error and a log
 * line. The admin endpoint and `agentward revoke` do the same by hand.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startIssuer, newKey, type TestIssuer } from '../helpers/issuer.ts';
import { startStreamingUpstream, type StreamingUpstream } from '../helpers/streaming-upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { startSsfTransmitter, CAEP, RISC, type SsfTransmitter } from '../helpers/ssf-transmitter.ts';
import { rawRequest } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { cli } from '../helpers/cli.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../helpers/introspection-server.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const RECEIVER = 'https://tools.example.com/ssf-receiver';
let issuer: TestIssuer;
let upstream: StreamingUpstream;
let pushed: SsfTransmitter;
let polled: SsfTransmitter;
let onMain: SsfTransmitter;
let introspection: IntrospectionServer;
let aw: RunningAgentward;

const now = () => Math.floor(Date.now() / 1000);
let counter = 0;
/** A user of its own for each test, so marks of one test never touch another's tokens. */
const freshUser = () => `user-${++counter}-${Math.random().toString(36).slice(2, 6)}`;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startStreamingUpstream();
  [pushed, polled, onMain] = await Promise.all([
    startSsfTransmitter({ audience: RECEIVER, path: '/push' }),
    startSsfTransmitter({ audience: RECEIVER, path: '/poll' }),
    startSsfTransmitter({ audience: RECEIVER }),
  ]);
  introspection = await startIntrospectionServer({ issuer: issuer.issuer, auth: { method: 'client_secret_basic', clientId: 'rs', clientSecret: 's3cret' } });
  aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: {
      issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri, introspection: { endpoint: introspection.endpoint, clientId: 'rs', clientSecret: { value: 's3cret' }, cacheTtl: '5m' } }],
    },
    policy: { source: DEFAULT_POLICY },
    admin: { address: '127.0.0.1:0', revoke: { token: { value: 'admin-secret' } } },
    signals: {
      audience: RECEIVER,
      transmitters: [
        { issuer: pushed.issuer, algorithms: ['ES256'], delivery: { method: 'push', path: '/ssf/push', authorization: { value: 'Bearer push-secret' } } },
        { issuer: polled.issuer, algorithms: ['ES256'], transmitterAuthorization: { value: polled.authorization }, delivery: { method: 'poll', interval: '100ms' } },
        { issuer: onMain.issuer, algorithms: ['ES256'], delivery: { method: 'push', listener: 'main', path: '/ssf/events', authorization: { value: 'Bearer push-secret' } } },
      ],
    },
  });
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([issuer?.close(), upstream?.close(), pushed?.close(), polled?.close(), onMain?.close(), introspection?.close()]);
});

const pushUrl = () => `${aw.adminUrl}/ssf/push`;
const call = (token: string, path = '/mcp/tools') => rawRequest(`${aw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
/** A token issued 10 s ago: before the events of these tests, which happened 5 s ago. */
const oldToken = (claims: Record<string, unknown>) => issuer.mint({ iat: now() - 10, ...claims });
/** A token issued now: after the event. */
const newToken = (claims: Record<string, unknown>) => issuer.mint({ iat: now(), ...claims });

async function expectRevoked(token: string): Promise<void> {
  const res = await call(token);
  expect(res.status, res.body).toBe(401);
  expect(res.json().code).toBe('ERR_TOKEN_REVOKED');
  expect(String(res.headers['www-authenticate'])).toContain('error="invalid_token"');
}

async function expectAccepted(token: string): Promise<void> {
  const res = await call(token);
  expect(res.status, res.body).toBe(200);
}

/** Opens an SSE stream through the proxy; resolves once its first event arrived. */
function openStream(token: string): Promise<{ closed: Promise<void> }> {
  const u = new URL(`${aw.url}/events`);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, agent: false }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`stream answered ${res.statusCode}`));
      const closed = new Promise<void>((done) => res.socket.once('close', () => done()));
      res.once('data', () => resolve({ closed }));
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end();
  });
}

async function remediationOf(setId: string): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | undefined;
  await waitFor(async () => {
    found = aw.audit().find((r) => (r.remediation as { setId?: string } | undefined)?.setId === setId);
    return found !== undefined;
  }, `the remediation record of ${setId}`);
  return found!.remediation as Record<string, unknown>;
}

/** An event that happened 5 s ago, in a SET issued then (RISC events carry no event_timestamp). */
const fiveSecondsAgo = () => ({ iat: now() - 5 });

describe('push delivery (RFC 8935)', () => {
  test('CAEP session-revoked for a session: its token is refused from the next request, its SSE stream is closed, the audit holds the remediation, a token issued after works', async () => {
    const sub = freshUser();
    const token = await oldToken({ sub, sid: 'session-a' });
    const otherSession = await oldToken({ sub, sid: 'session-b' });
    await expectAccepted(token);
    const stream = await openStream(token);

    const subject = { format: 'complex', user: { format: 'iss_sub', iss: issuer.issuer, sub }, session: { format: 'opaque', id: 'session-a' } };
    const at = now() - 5;
    const set = await pushed.sign(`${CAEP}session-revoked`, { event_timestamp: at }, subject);
    const started = performance.now();
    const answer = await pushed.push(pushUrl(), set.token);
    expect(answer.status, answer.body).toBe(202);
    await expectRevoked(token);
    const delayMs = performance.now() - started;
    await stream.closed;
    // The revocation delay (event pushed -> next request refused), for docs/signals.md.
    console.log(`revocation delay, push to refusal: ${delayMs.toFixed(1)} ms`);

    const record = await remediationOf(set.jti);
    expect(record).toMatchObject({
      source: 'ssf-push',
      event: `${CAEP}session-revoked`,
      transmitter: pushed.issuer,
      setId: set.jti,
      subject,
      mark: { match: { iss: issuer.issuer, sub, sid: 'session-a' }, before: at },
      streamsClosed: 1,
    });
    expect((record.purged as Record<string, number>).accessTokens).toBeGreaterThanOrEqual(1);
    // The session alone: another session of the same user is not named.
    await expectAccepted(otherSession);
    await expectAccepted(await newToken({ sub, sid: 'session-a' }));
  });

  const cases: [string, string, (sub: string) => { subject: unknown; claims: Record<string, unknown> }][] = [
    ['CAEP credential-change', `${CAEP}credential-change`, (sub) => ({ subject: { format: 'iss_sub', iss: issuer.issuer, sub }, claims: { sub } })],
    ['CAEP token-claims-change', `${CAEP}token-claims-change`, (sub) => ({ subject: { format: 'opaque', id: sub }, claims: { sub } })],
    ['CAEP assurance-level-change (decrease)', `${CAEP}assurance-level-change`, (sub) => ({ subject: { format: 'email', email: `${sub}@Example.com` }, claims: { sub, email: `${sub}@example.com` } })],
    ['RISC account-disabled', `${RISC}account-disabled`, (sub) => ({ subject: { format: 'iss_sub', iss: issuer.issuer, sub }, claims: { sub } })],
    ['RISC account-purged', `${RISC}account-purged`, (sub) => ({ subject: { format: 'opaque', id: sub }, claims: { sub } })],
    ['RISC credential-compromise', `${RISC}credential-compromise`, (sub) => ({ subject: { format: 'email', email: `${sub}@example.com` }, claims: { sub, email: `${sub}@example.com` } })],
    ['RISC sessions-revoked', `${RISC}sessions-revoked`, (sub) => ({ subject: { format: 'iss_sub', iss: issuer.issuer, sub }, claims: { sub } })],
    ['a complex subject naming an application and a device (the device set aside)', `${CAEP}session-revoked`, (sub) => ({ subject: { format: 'complex', application: { format: 'opaque', id: `app-${sub}` }, device: { format: 'opaque', id: 'laptop-1' } }, claims: { client_id: `app-${sub}` } })],
    ['a jwt_id subject (one token)', `${RISC}credential-compromise`, (sub) => ({ subject: { format: 'jwt_id', iss: issuer.issuer, jti: `jti-${sub}` }, claims: { sub, jti: `jti-${sub}` } })],
    ['an aliases subject', `${RISC}account-disabled`, (sub) => ({ subject: { format: 'aliases', identifiers: [{ format: 'phone_number', phone_number: '+12065550100' }, { format: 'opaque', id: sub }] }, claims: { sub } })],
    ['the subject inside the event (earlier drafts)', `${CAEP}session-revoked`, (sub) => ({ subject: { format: 'iss_sub', iss: issuer.issuer, sub }, claims: { sub }, inEvent: true })],
  ];

  test.each(cases)('%s: the named tokens issued before are refused, a token issued after works', async (_name, event, build) => {
    const sub = freshUser();
    const { subject, claims, inEvent } = build(sub) as { subject: unknown; claims: Record<string, unknown>; inEvent?: boolean };
    const token = await oldToken(claims);
    await expectAccepted(token);
    const payload = event.endsWith('assurance-level-change') ? { namespace: 'NIST-AAL', current_level: 'nist-aal1', previous_level: 'nist-aal2', change_direction: 'decrease' } : {};
    const at = now() - 5;
    const set = await pushed.sign(event, payload, subject, { iat: at, subjectInEvent: inEvent });
    const answer = await pushed.push(pushUrl(), set.token);
    expect(answer.status, answer.body).toBe(202);
    await expectRevoked(token);
    expect(await remediationOf(set.jti)).toMatchObject({ event, mark: { before: at } });
    // A new token with a fresh jti (a jwt_id mark names one token id only).
    await expectAccepted(await newToken({ ...claims, ...(claims.jti ? { jti: `after-${sub}` } : {}) }));
  });

  test('CAEP assurance-level-change upwards marks nothing: tokens issued before stay valid; the event is audited', async () => {
    const sub = freshUser();
    const token = await oldToken({ sub });
    const set = await pushed.sign(`${CAEP}assurance-level-change`, { namespace: 'NIST-AAL', current_level: 'nist-aal2', previous_level: 'nist-aal1', change_direction: 'increase' }, { format: 'opaque', id: sub }, fiveSecondsAgo());
    expect((await pushed.push(pushUrl(), set.token)).status).toBe(202);
    expect(await remediationOf(set.jti)).toMatchObject({ mark: null, streamsClosed: 0 });
    await expectAccepted(token);
  });

  test('an unknown event type is acknowledged (202) and logged, and has no effect', async () => {
    const sub = freshUser();
    const token = await oldToken({ sub });
    const set = await pushed.sign('https://example.com/event-type/something-new', {}, { format: 'opaque', id: sub }, fiveSecondsAgo());
    expect((await pushed.push(pushUrl(), set.token)).status).toBe(202);
    await expectAccepted(token);
    expect(aw.logs()).toContain('SSF event of an unknown type acknowledged');
  });

  test('an opaque token (RFC 7662) is refused too, and its cached introspection answer purged', async () => {
    const sub = freshUser();
    introspection.tokens.set(`opaque-${sub}`, { active: true, iss: issuer.issuer, aud: RESOURCE, sub, client_id: 'ops-bot', scope: 'tools.read', iat: now() - 10, exp: now() + 300 });
    await expectAccepted(`opaque-${sub}`);
    const set = await pushed.sign(`${RISC}credential-compromise`, {}, { format: 'iss_sub', iss: issuer.issuer, sub }, fiveSecondsAgo());
    expect((await pushed.push(pushUrl(), set.token)).status).toBe(202);
    await expectRevoked(`opaque-${sub}`);
    expect(((await remediationOf(set.jti)).purged as Record<string, number>).introspection).toBe(1);
  });

  test('push on the agent listener (listener: main) works the same', async () => {
    const sub = freshUser();
    const token = await oldToken({ sub });
    const set = await onMain.sign(`${RISC}account-disabled`, {}, { format: 'iss_sub', iss: issuer.issuer, sub }, fiveSecondsAgo());
    const answer = await onMain.push(`${aw.url}/ssf/events`, set.token);
    expect(answer.status, answer.body).toBe(202);
    await expectRevoked(token);
  });
});

describe('bad SETs pushed are refused without effect (RFC 8935 §2.3), each with its reason logged', () => {
  const subjectOf = (sub: string) => ({ format: 'opaque', id: sub });

  const refusals: [string, (sub: string) => Promise<{ token: string; authorization?: string | null; contentType?: string }>, number, string, string][] = [
    ['no Authorization header', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), fiveSecondsAgo())).token, authorization: null }), 401, 'authentication_failed', 'ERR_SET_UNAUTHORIZED'],
    ['a wrong Authorization value', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), fiveSecondsAgo())).token, authorization: 'Bearer guess' }), 401, 'authentication_failed', 'ERR_SET_UNAUTHORIZED'],
    ['a key the transmitter never published', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), { ...fiveSecondsAgo(), key: await newKey('ES256', 'ssf-1') })).token }), 400, 'invalid_key', 'ERR_SET_SIGNATURE'],
    ['an unknown kid', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), { ...fiveSecondsAgo(), key: await newKey('ES256', 'other-kid') })).token }), 400, 'invalid_key', 'ERR_SET_KEY_UNKNOWN'],
    ['another aud', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), { ...fiveSecondsAgo(), aud: 'https://someone-else.example.com' })).token }), 400, 'invalid_audience', 'ERR_SET_AUDIENCE'],
    ['another transmitter\'s SET on this path', async (sub) => ({ token: (await onMain.sign(`${RISC}account-disabled`, {}, subjectOf(sub), fiveSecondsAgo())).token }), 400, 'invalid_issuer', 'ERR_SET_ISSUER'],
    ['typ JWT instead of secevent+jwt', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), { ...fiveSecondsAgo(), typ: 'JWT' })).token }), 400, 'invalid_request', 'ERR_SET_TYPE'],
    ['an iat older than signals.maxSetAge', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), { iat: now() - 7200 })).token }), 400, 'invalid_request', 'ERR_SET_TIME'],
    ['an iat in the future', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), { iat: now() + 3600 })).token }), 400, 'invalid_request', 'ERR_SET_TIME'],
    ['two events in one SET', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), { ...fiveSecondsAgo(), claims: { events: { [`${RISC}account-disabled`]: {}, [`${RISC}account-purged`]: {} } } })).token }), 400, 'invalid_request', 'ERR_SET_CLAIMS'],
    ['a malformed subject', async () => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, { format: 'email' }, fiveSecondsAgo())).token }), 400, 'invalid_request', 'ERR_SET_CLAIMS'],
    ['no jti', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), { ...fiveSecondsAgo(), claims: { jti: undefined } })).token }), 400, 'invalid_request', 'ERR_SET_CLAIMS'],
    ['not a JWS', async () => ({ token: 'not-a-set' }), 400, 'invalid_request', 'ERR_SET_MALFORMED'],
    ['the wrong media type', async (sub) => ({ token: (await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), fiveSecondsAgo())).token, contentType: 'application/jwt' }), 400, 'invalid_request', 'ERR_SET_UNSUPPORTED_MEDIA'],
  ];

  test.each(refusals)('%s', async (_name, build, status, err, code) => {
    const sub = freshUser();
    const token = await oldToken({ sub });
    const { token: set, authorization, contentType } = await build(sub);
    const answer = await pushed.push(pushUrl(), set, { authorization, contentType });
    expect(answer.status, answer.body).toBe(status);
    expect(answer.json().err).toBe(err);
    expect(aw.logs()).toContain(`"code":"${code}"`);
    await expectAccepted(token);
  });

  test('a replayed jti is refused the second time (invalid_request), without a second remediation', async () => {
    const sub = freshUser();
    const set = await pushed.sign(`${RISC}account-disabled`, {}, subjectOf(sub), fiveSecondsAgo());
    expect((await pushed.push(pushUrl(), set.token)).status).toBe(202);
    const again = await pushed.push(pushUrl(), set.token);
    expect(again.status).toBe(400);
    expect(again.json().err).toBe('invalid_request');
    expect(aw.logs()).toContain('"code":"ERR_SET_REPLAYED"');
    await remediationOf(set.jti);
    expect(aw.audit().filter((r) => (r.remediation as { setId?: string } | undefined)?.setId === set.jti)).toHaveLength(1);
  });

  test('after a burst of bad SETs the proxy still serves and still takes good ones', async () => {
    const garbage = await Promise.all(Array.from({ length: 20 }, () => pushed.push(pushUrl(), 'x.y.z')));
    expect(garbage.every((a) => a.status === 400)).toBe(true);
    const sub = freshUser();
    const token = await oldToken({ sub });
    await expectAccepted(token);
    const set = await pushed.sign(`${RISC}sessions-revoked`, {}, subjectOf(sub), fiveSecondsAgo());
    expect((await pushed.push(pushUrl(), set.token)).status).toBe(202);
    await expectRevoked(token);
  });
});

describe('poll delivery (RFC 8936)', () => {
  test('the stream configuration is read (the poll endpoint comes from it) and the verification event it asked for arrives', async () => {
    expect(polled.streamReads).toBeGreaterThanOrEqual(1);
    expect(polled.verificationRequests).toHaveLength(1);
    await waitFor(async () => {
      const ready = (await rawRequest(`${aw.adminUrl}/readyz`)).json() as { signals: { transmitters: { issuer: string; verified: boolean | null }[] } };
      return ready.signals.transmitters.find((t) => t.issuer === polled.issuer)?.verified === true;
    }, 'the verification event');
  });

  test('a polled session-revoked stops the token and its stream; the next poll acknowledges it', async () => {
    const sub = freshUser();
    const token = await oldToken({ sub, sid: 'polled-session' });
    await expectAccepted(token);
    const stream = await openStream(token);
    const set = await polled.sign(`${CAEP}session-revoked`, { event_timestamp: now() - 5 }, { format: 'complex', session: { format: 'opaque', id: 'polled-session' } });
    polled.queue(set.token, set.jti);
    // A request in flight when the event lands is cut like any open response of the token: not an error here.
    await waitFor(async () => (await call(token).catch(() => ({ status: 0 }))).status === 401, 'the polled event to take effect');
    await expectRevoked(token);
    await stream.closed;
    await waitFor(async () => polled.polls.some((p) => p.ack.includes(set.jti)), 'the acknowledgement');
    const remediation = await remediationOf(set.jti);
    expect(remediation).toMatchObject({ source: 'ssf-poll', mark: { match: { sid: 'polled-session' } } });
    // The stream, and any of the probing calls above that was in flight when the mark landed.
    expect(remediation.streamsClosed).toBeGreaterThanOrEqual(1);
    await expectAccepted(await newToken({ sub, sid: 'polled-session' }));
  });

  test('bad SETs in a poll answer are reported in setErrs of the next poll, never acknowledged, without effect', async () => {
    const sub = freshUser();
    const token = await oldToken({ sub });
    const subject = { format: 'opaque', id: sub };
    const wrongKey = await polled.sign(`${RISC}account-disabled`, {}, subject, { ...fiveSecondsAgo(), key: await newKey('ES256', 'ssf-1') });
    const wrongAud = await polled.sign(`${RISC}account-disabled`, {}, subject, { ...fiveSecondsAgo(), aud: 'https://else.example.com' });
    const good = await polled.sign('https://example.com/event-type/unknown', {}, subject, fiveSecondsAgo());
    polled.queue(wrongKey.token, wrongKey.jti);
    polled.queue(wrongAud.token, wrongAud.jti);
    polled.queue(good.token, good.jti);
    await waitFor(async () => polled.polls.some((p) => p.setErrs?.[wrongKey.jti] !== undefined), 'setErrs in a poll');
    const report = polled.polls.find((p) => p.setErrs?.[wrongKey.jti] !== undefined)!;
    expect(report.setErrs![wrongKey.jti]!.err).toBe('invalid_key');
    expect(report.setErrs![wrongAud.jti]!.err).toBe('invalid_audience');
    expect(report.ack).toContain(good.jti);
    expect(report.ack).not.toContain(wrongKey.jti);
    // The same SET delivered again is a replay: reported, not acted on twice.
    polled.queue(good.token, good.jti);
    await waitFor(async () => polled.polls.some((p) => p.setErrs?.[good.jti]?.err === 'invalid_request'), 'the replay reported');
    await expectAccepted(token);
  });
});

describe('revocation by hand', () => {
  const revoke = (body: unknown, token = 'admin-secret') =>
    rawRequest(`${aw.adminUrl}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('POST /revoke needs the admin token', async () => {
    const res = await revoke({ sub: 'anyone' }, 'wrong');
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_ADMIN_UNAUTHORIZED');
    const none = await rawRequest(`${aw.adminUrl}/revoke`, { method: 'POST', body: '{}' });
    expect(none.status).toBe(401);
  });

  test('POST /revoke with a malformed selector is refused (ERR_ADMIN_REQUEST)', async () => {
    for (const body of [{}, { iss: issuer.issuer }, { sub: 42 }, { subject: 'x' }, []]) {
      const res = await revoke(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json().code).toBe('ERR_ADMIN_REQUEST');
    }
  });

  test('POST /revoke for a subject: its token and stream are stopped, the purge is audited, a token issued after works', async () => {
    const sub = freshUser();
    const token = await oldToken({ sub });
    await expectAccepted(token);
    const stream = await openStream(token);
    const res = await revoke({ iss: issuer.issuer, sub, before: now() - 5 });
    expect(res.status, res.body).toBe(200);
    expect(res.json()).toMatchObject({ mark: { match: { iss: issuer.issuer, sub } }, streamsClosed: 1 });
    await expectRevoked(token);
    await stream.closed;
    await waitFor(async () => aw.audit().some((r) => (r.remediation as { source?: string; subject?: { sub?: string } } | undefined)?.subject?.sub === sub), 'the purge record');
    const record = aw.audit().find((r) => (r.remediation as { subject?: { sub?: string } } | undefined)?.subject?.sub === sub)!.remediation;
    expect(record).toMatchObject({ source: 'admin', event: 'purge', transmitter: null, setId: null, streamsClosed: 1 });
    await expectAccepted(await newToken({ sub }));
  });

  test('agentward revoke --client posts to the admin endpoint', async () => {
    const client = `cli-client-${freshUser()}`;
    const token = await oldToken({ client_id: client });
    await expectAccepted(token);
    const result = await cli(['revoke', '--admin', `${aw.adminUrl}/revoke`, '--client', client], { AGENTWARD_ADMIN_TOKEN: 'admin-secret' });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ mark: { match: { clientId: client } } });
    await expectRevoked(token);
  });
});

test('/readyz counts the marks and shows each transmitter', async () => {
  const ready = (await rawRequest(`${aw.adminUrl}/readyz`)).json() as { ready: boolean; signals: { marks: number; maxMarks: number; openStreams: number; transmitters: { issuer: string; keys: { ready: boolean } }[] } };
  expect(ready.ready).toBe(true);
  expect(ready.signals.marks).toBeGreaterThan(0);
  expect(ready.signals.maxMarks).toBe(100000);
  expect(ready.signals.transmitters.map((t) => t.issuer)).toEqual([pushed.issuer, polled.issuer, onMain.issuer]);
  expect(ready.signals.transmitters.every((t) => t.keys.ready)).toBe(true);
});

describe('a WebSocket and a token without iat (admin purge only, no transmitter)', () => {
  let echo: { url: string; close(): Promise<void> };
  let proxy: RunningAgentward;
  beforeAll(async () => {
    const http: Server = createServer((_req, res) => res.writeHead(200).end('ok'));
    const wss = new WebSocketServer({ noServer: true });
    http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data) => ws.send(data))));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    echo = {
      url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
      async close() {
        for (const client of wss.clients) client.terminate();
        wss.close();
        http.closeAllConnections();
        await new Promise<void>((r) => http.close(() => r()));
      },
    };
    proxy = await startAgentward({
      upstream: { url: echo.url },
      resource: { id: RESOURCE },
      // iat optional (a relaxation of RFC 9068 §2.2), so that a token without it can be presented.
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri, requiredClaims: ['iss', 'exp', 'aud', 'sub', 'client_id', 'jti'] }] },
      policy: { source: DEFAULT_POLICY },
      admin: { address: '127.0.0.1:0', revoke: { token: { value: 'admin-secret' } } },
      signals: {},
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await echo?.close();
  });
  const purge = (body: unknown) =>
    rawRequest(`${proxy.adminUrl}/revoke`, { method: 'POST', headers: { authorization: 'Bearer admin-secret', 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('an open WebSocket of the revoked subject is closed, and counted', async () => {
    const sub = freshUser();
    const token = await oldToken({ sub });
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/mcp/ws`, { headers: { authorization: `Bearer ${token}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const echoed = new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
    ws.send('ping');
    expect(await echoed).toBe('ping');
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    const res = await purge({ sub, before: now() - 5 });
    expect(res.json()).toMatchObject({ streamsClosed: 1 });
    await closed;
    const again = await rawRequest(`${proxy.url}/mcp/tools`, { headers: { authorization: `Bearer ${token}` } });
    expect(again.json().code).toBe('ERR_TOKEN_REVOKED');
  });

  test('a token without iat is refused while a mark names its subject (it cannot be shown to be newer), and others are not', async () => {
    const sub = freshUser();
    const noIat = await issuer.mint({ sub }, { omit: ['iat'] });
    const other = await issuer.mint({ sub: freshUser() }, { omit: ['iat'] });
    expect((await rawRequest(`${proxy.url}/mcp/tools`, { headers: { authorization: `Bearer ${noIat}` } })).status).toBe(200);
    expect((await purge({ sub, before: now() - 5 })).status).toBe(200);
    const res = await rawRequest(`${proxy.url}/mcp/tools`, { headers: { authorization: `Bearer ${noIat}` } });
    expect(res.status).toBe(401);
    expect(res.json().code).toBe('ERR_TOKEN_REVOKED');
    expect((await rawRequest(`${proxy.url}/mcp/tools`, { headers: { authorization: `Bearer ${other}` } })).status).toBe(200);
  });
});
