/**
 * Admission control (listen.maxInFlight, maxQueued, queueTimeout; src/proxy/admission.ts) through
 * the real proxy: beyond the limits a request is refused at once with 503 ERR_OVERLOADED and
 * Retry-After, never reaches the upstream, and is audited; a waiting request whose client leaves
 * gets no work (ERR_CLIENT_CLOSED in the audit trail); a slot frees when its response ends.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, DEFAULT_POLICY, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://tools.example.com/mcp';
let issuer: TestIssuer;
let upstream: TestUpstream;
let token: string;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
  token = await issuer.mint();
});
afterAll(async () => {
  await Promise.all([upstream?.close(), issuer?.close()]);
});

async function proxy(listen: Record<string, unknown>): Promise<RunningAgentward> {
  return startAgentward({
    listen,
    upstream: { url: upstream.url, timeout: '5s' },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: DEFAULT_POLICY },
  });
}

/** Starts a request to /slow (the upstream never answers) and returns a way to abort it. */
function hold(aw: RunningAgentward): { abort: () => void; done: Promise<void> } {
  const u = new URL(aw.url);
  const req = request({ host: u.hostname, port: u.port, path: '/slow', headers: { authorization: `Bearer ${token}` }, agent: false });
  const done = new Promise<void>((resolve) => {
    req.on('error', () => resolve());
    req.on('close', () => resolve());
  });
  req.end();
  return { abort: () => req.destroy(), done };
}

const get = (aw: RunningAgentward, path = '/items') => rawRequest(`${aw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

describe('admission control', () => {
  test('maxInFlight reached, no queue: 503 ERR_OVERLOADED with Retry-After at once, not forwarded, audited', async () => {
    const aw = await proxy({ maxInFlight: 1, maxQueued: 0 });
    try {
      const held = hold(aw);
      await waitFor(async () => upstream.seen.some((r) => r.url === '/slow'), 'the held request upstream');
      const before = upstream.seen.length;
      const refused = await get(aw);
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.json()).toMatchObject({ code: 'ERR_OVERLOADED', status: 503 });
      expect(upstream.seen.length).toBe(before);
      await waitFor(async () => aw.audit().some((r) => r.code === 'ERR_OVERLOADED'), 'the ERR_OVERLOADED audit record');
      const admission = ((await (await fetch(`${aw.adminUrl}/readyz`)).json()) as { admission: Record<string, number> }).admission;
      expect(admission).toMatchObject({ inFlight: 1, queued: 0, refused: 1, maxInFlight: 1, maxQueued: 0 });
      // The slot frees when the held response ends (here: its client leaves).
      held.abort();
      await held.done;
      await waitFor(async () => (await get(aw)).status === 200, 'a free slot');
    } finally {
      await aw.stop();
    }
  });

  test('a queued request runs when a slot frees', async () => {
    const aw = await proxy({ maxInFlight: 1, maxQueued: 1, queueTimeout: '5s' });
    try {
      const held = hold(aw);
      await waitFor(async () => upstream.seen.some((r) => r.url === '/slow'), 'the held request upstream');
      const queued = get(aw, '/queued');
      const third = await get(aw);
      expect(third.json()).toMatchObject({ code: 'ERR_OVERLOADED' });
      held.abort();
      expect((await queued).status).toBe(200);
      expect(upstream.seen.some((r) => r.url === '/queued')).toBe(true);
    } finally {
      await aw.stop();
    }
  });

  test('a request that waited longer than queueTimeout is refused with ERR_OVERLOADED', async () => {
    const aw = await proxy({ maxInFlight: 1, maxQueued: 1, queueTimeout: '100ms' });
    try {
      const held = hold(aw);
      await waitFor(async () => upstream.seen.some((r) => r.url === '/slow'), 'the held request upstream');
      const queued = get(aw, '/late');
      await new Promise((r) => setTimeout(r, 300));
      held.abort();
      const answer = await queued;
      expect(answer.status).toBe(503);
      expect(answer.json()).toMatchObject({ code: 'ERR_OVERLOADED' });
      expect(upstream.seen.some((r) => r.url === '/late')).toBe(false);
    } finally {
      await aw.stop();
    }
  });

  test('a waiting request whose client leaves gets no work: never forwarded, recorded as ERR_CLIENT_CLOSED', async () => {
    const aw = await proxy({ maxInFlight: 1, maxQueued: 4, queueTimeout: '5s' });
    try {
      const held = hold(aw);
      await waitFor(async () => upstream.seen.some((r) => r.url === '/slow'), 'the held request upstream');
      const u = new URL(aw.url);
      const leaving = request({ host: u.hostname, port: u.port, path: '/gone', headers: { authorization: `Bearer ${token}` }, agent: false });
      leaving.on('error', () => undefined);
      leaving.end();
      await new Promise((r) => setTimeout(r, 100));
      leaving.destroy();
      await new Promise((r) => setTimeout(r, 100));
      held.abort();
      await waitFor(async () => aw.audit().some((r) => r.code === 'ERR_CLIENT_CLOSED'), 'the ERR_CLIENT_CLOSED audit record');
      expect(upstream.seen.some((r) => r.url === '/gone')).toBe(false);
      expect(aw.audit().find((r) => r.code === 'ERR_CLIENT_CLOSED')).toMatchObject({ status: 499, action: { path: '/gone' } });
    } finally {
      await aw.stop();
    }
  });
});
