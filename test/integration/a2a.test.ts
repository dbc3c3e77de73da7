/**
 * A2A JSON-RPC calls decided per method (issue 5 item 4): the policy reads input.a2a.operation,
 * the same for A2A 1.0 (`SendMessage`) and 0.3 (`message/send`) names; a denied call is answered
 * with a JSON-RPC error and never reaches the agent.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { join } from 'node:path';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://agents.example.com/a2a';
let issuer: TestIssuer;
let upstream: TestUpstream;
let aw: RunningAgentward;

beforeAll(async () => {
  [issuer, upstream] = await Promise.all([startIssuer({ audience: RESOURCE }), startUpstream()]);
  aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: join(REPO, 'test/fixtures/policies/mcp') },
    a2a: { paths: ['/a2a'] },
  });
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([upstream?.close(), issuer?.close()]);
});

async function call(method: string, params: Record<string, unknown>) {
  const before = upstream.seen.length;
  const body = JSON.stringify({ jsonrpc: '2.0', id: 'a-1', method, params });
  const res = await rawRequest(`${aw.url}/a2a`, { method: 'POST', headers: { authorization: `Bearer ${await issuer.mint()}`, 'content-type': 'application/json' }, body });
  return { res, forwarded: upstream.seen.length - before, body };
}

const message = { message: { role: 'ROLE_USER', messageId: 'm-1', parts: [{ text: 'hello' }] } };

test.each([
  ['SendMessage', message],
  ['message/send', message],
  ['GetTask', { id: 'task-1' }],
  ['tasks/get', { id: 'task-1' }],
])('%s is allowed (operation SendMessage / GetTask) and forwarded byte for byte', async (method, params) => {
  const { res, forwarded, body } = await call(method, params);
  expect(res.status).toBe(200);
  expect(forwarded).toBe(1);
  expect(upstream.seen.at(-1)!.body).toBe(body);
});

test.each(['CancelTask', 'tasks/cancel', 'UnknownMethod'])('%s is denied with a JSON-RPC error, never forwarded', async (method) => {
  const { res, forwarded } = await call(method, { id: 'task-1' });
  expect(res.status).toBe(200);
  expect(res.json()).toMatchObject({ jsonrpc: '2.0', id: 'a-1', error: { code: -32003, data: { code: 'ERR_POLICY_DENIED' } } });
  expect(forwarded).toBe(0);
  // The record is written after the response: wait for this request's.
  const requestId = String(res.headers['x-request-id']);
  await waitFor(async () => aw.audit().some((r) => r.requestId === requestId), 'the audit record');
  expect(aw.audit().find((r) => r.requestId === requestId)).toMatchObject({ decision: 'deny', action: { rpcMethod: method, mcpTool: null } });
});
