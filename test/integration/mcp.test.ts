/**
 * MCP-aware authorization end to end (issue 5 items 1-3): a real MCP server built with the
 * official MCP TypeScript SDK behind agentward, and a real MCP client from the same SDK. The
 * client lists only the tools its token allows, calls an allowed tool, is refused a forbidden one
 * with a JSON-RPC error, and receives a streamed (SSE) tool result intact; requests whose
 * Mcp-Name header disagrees with the body, malformed or ambiguous JSON-RPC bodies are refused
 * before the server sees them.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.ts';
import { rawRequest, challengeParams } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';

const RESOURCE = 'https://tools.example.com/mcp';
const POLICY = join(REPO, 'test/fixtures/policies/mcp');

let issuer: TestIssuer;
let sseServer: TestMcpServer;
let jsonServer: TestMcpServer;
/** In front of the SSE server, list filtering on (the default). */
let aw: RunningAgentward;
/** In front of the JSON server. */
let awJson: RunningAgentward;
/** policy.mode shadow. */
let shadow: RunningAgentward;
const clients: Client[] = [];

beforeAll(async () => {
  [issuer, sseServer, jsonServer] = await Promise.all([startIssuer({ audience: RESOURCE }), startMcpServer(), startMcpServer({ json: true })]);
  const base = (upstream: string) => ({
    upstream: { url: upstream },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: POLICY },
    mcp: { paths: ['/mcp', { path: '/mcp-all', filterLists: false }], maxBodyBytes: 65536 },
  });
  [aw, awJson, shadow] = await Promise.all([
    startAgentward(base(sseServer.url)),
    startAgentward(base(jsonServer.url)),
    startAgentward({ ...base(sseServer.url), policy: { source: POLICY, mode: 'shadow' } }),
  ]);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  await Promise.all([aw, awJson, shadow].map((a) => a?.stop()));
  await Promise.all([sseServer?.close(), jsonServer?.close(), issuer?.close()]);
});

/** `tamper` may change the headers of each POST the client makes (to play a client whose headers lie). */
async function connect(target: RunningAgentward, scope: string, tamper?: (body: string, headers: Headers) => void, path = '/mcp'): Promise<Client> {
  const token = await issuer.mint({ scope });
  const client = new Client({ name: 'agentward-test-agent', version: '1.0.0' });
  const fetchWith = tamper
    ? (url: string | URL, init?: RequestInit) => {
        const headers = new Headers(init?.headers);
        if (typeof init?.body === 'string') tamper(init.body, headers);
        return fetch(url, { ...init, headers });
      }
    : undefined;
  const transport = new StreamableHTTPClientTransport(new URL(`${target.url}${path}`), { requestInit: { headers: { authorization: `Bearer ${token}` } }, ...(fetchWith ? { fetch: fetchWith } : {}) });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

/** A raw JSON-RPC POST to /mcp with a valid token. */
async function post(target: RunningAgentward, body: string, headers: Record<string, string> = {}, scope = 'tools.read tools.write') {
  return rawRequest(`${target.url}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await issuer.mint({ scope })}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
}

describe('with the official MCP SDK client', () => {
  test('tools/list shows only the tools the token allows (SSE framing)', async () => {
    const reader = await connect(aw, 'tools.read');
    expect((await reader.listTools()).tools.map((t) => t.name).sort()).toEqual(['search_docs', 'stream_report']);
    const writer = await connect(aw, 'tools.read tools.write');
    expect((await writer.listTools()).tools.map((t) => t.name).sort()).toEqual(['create_issue', 'search_docs', 'stream_report']);
  });

  test('tools/list filtering works on a plain JSON answer too, and keeps the other result members', async () => {
    const reader = await connect(awJson, 'tools.read');
    const result = await reader.listTools();
    expect(result.tools.map((t) => t.name).sort()).toEqual(['search_docs', 'stream_report']);
    expect(result.tools.find((t) => t.name === 'search_docs')?.inputSchema).toMatchObject({ type: 'object' });
  });

  test('filterLists can be turned off for one path; its calls are still decided', async () => {
    const client = await connect(aw, 'tools.read', undefined, '/mcp-all');
    expect((await client.listTools()).tools).toHaveLength(6);
    expect((await rejection(client.callTool({ name: 'delete_repo', arguments: { repo: 'x' } })) as McpError).code).toBe(-32003);
  });

  test('prompts/list and resources/list are filtered the same way', async () => {
    const client = await connect(aw, 'tools.read');
    expect((await client.listPrompts()).prompts.map((p) => p.name)).toEqual(['summarize']);
    expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['docs://public/readme']);
  });

  test('an allowed tool call succeeds; the policy saw its arguments', async () => {
    const client = await connect(aw, 'tools.read tools.write');
    expect(await client.callTool({ name: 'search_docs', arguments: { query: 'dpop' } })).toMatchObject({ content: [{ type: 'text', text: 'results for dpop' }] });
    expect(await client.callTool({ name: 'create_issue', arguments: { repo: 'agentward/demo', title: 'hello' } })).toMatchObject({ content: [{ text: 'created "hello" in agentward/demo' }] });
    const isCreate = (r: Record<string, unknown>) => (r.action as { mcpTool: string | null }).mcpTool === 'create_issue';
    await waitFor(async () => aw.audit().some(isCreate), 'the audit record of create_issue');
    const record = aw.audit().find(isCreate);
    expect(record).toMatchObject({ decision: 'allow', action: { rpcMethod: 'tools/call' } });
  });

  test('a forbidden tool call is refused with a JSON-RPC error (-32003); the server never sees it', async () => {
    const client = await connect(aw, 'tools.read tools.write');
    const err = await rejection(client.callTool({ name: 'delete_repo', arguments: { repo: 'agentward/demo' } }));
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32003);
    expect((err as McpError).message).toContain('The policy denied this request.');
    // Arguments decide too: create_issue outside the demo repository.
    const other = await rejection(client.callTool({ name: 'create_issue', arguments: { repo: 'agentward/prod', title: 'x' } }));
    expect((other as McpError).code).toBe(-32003);
    // (The client may list tools before a call, to validate results: those lists did pass.)
    expect(sseServer.bodies.filter((b) => b.includes('delete_repo') || b.includes('agentward/prod'))).toEqual([]);
  });

  test('a hidden tool (status 404) answers like an unknown tool (-32602)', async () => {
    const client = await connect(aw, 'tools.read tools.write');
    const err = await rejection(client.callTool({ name: 'admin_console', arguments: {} }));
    expect((err as McpError).code).toBe(-32602);
  });

  test('a streamed (SSE) tool result arrives intact, progress notifications included', async () => {
    const client = await connect(aw, 'tools.read');
    const progress: number[] = [];
    const result = await client.callTool({ name: 'stream_report', arguments: { steps: 4 } }, undefined, { onprogress: (p) => progress.push(p.progress) });
    expect(progress).toEqual([1, 2, 3, 4]);
    expect(result).toMatchObject({ content: [{ type: 'text', text: `report with 4 steps: ${'x'.repeat(2000)}` }] });
  });

  test('a request whose Mcp-Name header disagrees with its body is refused (400, -32020)', async () => {
    // A client whose tool calls all claim to be search_docs in their headers.
    const client = await connect(aw, 'tools.read', (body, headers) => {
      if (body.includes('"tools/call"')) {
        headers.set('mcp-method', 'tools/call');
        headers.set('mcp-name', 'search_docs');
      }
    });
    expect(await client.callTool({ name: 'search_docs', arguments: { query: 'ok' } })).toMatchObject({ content: [{ text: 'results for ok' }] });
    const before = sseServer.bodies.length;
    await expect(client.callTool({ name: 'stream_report', arguments: { steps: 1 } })).rejects.toThrow(/-32020|Mcp-Name header does not match/);
    expect(sseServer.bodies.slice(before).filter((b) => b.includes('stream_report') && b.includes('tools/call'))).toEqual([]);
  });
});

describe('JSON-RPC bodies on the MCP path', () => {
  const call = (name: string, id: number | string = 1, args: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

  test('Mcp-Method / Mcp-Name that match the body pass; a mismatch is 400 with JSON-RPC error -32020', async () => {
    const body = JSON.stringify(call('search_docs', 7, { query: 'q' }));
    const ok = await post(aw, body, { 'mcp-method': 'tools/call', 'mcp-name': 'search_docs' });
    expect(ok.status).toBe(200);
    const before = sseServer.bodies.length;
    const bad = await post(aw, body, { 'mcp-method': 'tools/call', 'mcp-name': 'delete_repo' });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ jsonrpc: '2.0', id: 7, error: { code: -32020, data: { code: 'ERR_MCP_HEADER_MISMATCH' } } });
    expect((await post(aw, body, { 'mcp-method': 'tools/list' })).json()).toMatchObject({ error: { code: -32020 } });
    // Base64-encoded header values (SEP-2243) are decoded before the comparison.
    const encoded = await post(aw, body, { 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('search_docs').toString('base64')}?=` });
    expect(encoded.status).toBe(200);
    expect(sseServer.bodies.length).toBe(before + 1);
  });

  test('the exact bytes the policy saw are the bytes forwarded', async () => {
    const body = `{ "jsonrpc" : "2.0", "id": "x-1",\n  "method": "tools/call", "params": {"name": "search_docs", "arguments": {"query": "caf\\u00e9"}}}`;
    const res = await post(aw, body);
    expect(res.status).toBe(200);
    expect(sseServer.bodies.at(-1)).toBe(body);
  });

  test.each([
    ['not JSON', '{"jsonrpc": "2.0", "id": 1,', 400, -32700, 'ERR_RPC_PARSE'],
    ['not an object', '"tools/call"', 400, -32600, 'ERR_RPC_INVALID'],
    ['an empty batch', '[]', 400, -32600, 'ERR_RPC_INVALID'],
    ['a duplicate member (two parsers could disagree)', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_docs","name":"delete_repo"}}', 400, -32600, 'ERR_RPC_INVALID'],
    ['an escaped duplicate member', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_docs","\\u006eame":"delete_repo"}}', 400, -32600, 'ERR_RPC_INVALID'],
    ['no jsonrpc 2.0', '{"id":1,"method":"tools/call","params":{"name":"search_docs"}}', 400, -32600, 'ERR_RPC_INVALID'],
  ])('%s is refused, never forwarded', async (_name, body, status, code, errorCode) => {
    const before = sseServer.bodies.length;
    const res = await post(aw, body);
    expect(res.status).toBe(status);
    expect(res.json()).toMatchObject({ jsonrpc: '2.0', error: { code, data: { code: errorCode } } });
    expect(sseServer.bodies.length).toBe(before);
  });

  test('a POST that is not application/json is 415; a body over mcp.maxBodyBytes is 413', async () => {
    const before = sseServer.bodies.length;
    const form = await post(aw, JSON.stringify(call('search_docs')), { 'content-type': 'text/plain' });
    expect(form.status).toBe(415);
    expect(form.json()).toMatchObject({ error: { code: -32600, data: { code: 'ERR_RPC_CONTENT_TYPE' } } });
    const big = await post(aw, JSON.stringify(call('search_docs', 1, { query: 'x'.repeat(70000) })));
    expect(big.status).toBe(413);
    expect(sseServer.bodies.length).toBe(before);
  });

  test('a batch is allowed only when every call is; otherwise every request of it gets an error', async () => {
    const before = sseServer.bodies.length;
    const res = await post(aw, JSON.stringify([call('search_docs', 1, { query: 'a' }), call('delete_repo', 2, { repo: 'x' }), { jsonrpc: '2.0', method: 'notifications/progress', params: {} }]));
    expect(res.status).toBe(200);
    const answers = res.json() as unknown as { id: number; error: { code: number; message: string } }[];
    expect(answers.map((a) => [a.id, a.error.code])).toEqual([
      [1, -32003],
      [2, -32003],
    ]);
    expect(answers[0]!.error.message).toMatch(/another call of this batch was denied/);
    expect(sseServer.bodies.length).toBe(before);
  });

  test('a denied tool that needs a scope is HTTP 403 insufficient_scope with the scope (MCP scope challenge)', async () => {
    const res = await post(aw, JSON.stringify(call('needs_write')), {}, 'tools.read');
    expect(res.status).toBe(403);
    const params = challengeParams(res.headers['www-authenticate']);
    expect(params).toMatchObject({ error: 'insufficient_scope', scope: 'tools.write' });
    expect(params.resource_metadata).toBeDefined();
  });

  test('authentication failures stay HTTP 401 with the Bearer challenge on MCP paths', async () => {
    const res = await rawRequest(`${aw.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(call('search_docs')) });
    expect(res.status).toBe(401);
    expect(String(res.headers['www-authenticate'])).toContain('resource_metadata=');
    expect(res.headers['content-type']).toBe('application/problem+json');
  });

  test('a denied notification has no id to answer: HTTP 403 problem', async () => {
    const res = await post(aw, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' }));
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ code: 'ERR_POLICY_DENIED' });
  });
});

describe('shadow mode', () => {
  test('a call the policy denies is forwarded, audited as a would-deny, and counted in /readyz and /metrics', async () => {
    const client = await connect(shadow, 'tools.read tools.write');
    expect(await client.callTool({ name: 'delete_repo', arguments: { repo: 'agentward/demo' } })).toMatchObject({ content: [{ text: 'deleted agentward/demo' }] });
    // Shadow mode keeps every list item.
    expect((await client.listTools()).tools).toHaveLength(6);
    await waitFor(async () => shadow.audit().some((r) => r.shadow === true), 'the shadow audit record');
    expect(shadow.audit().find((r) => r.shadow === true)).toMatchObject({ decision: 'deny', status: 200, action: { mcpTool: 'delete_repo' } });
    const detail = (await (await fetch(`${shadow.adminUrl}/readyz`)).json()) as { shadow: { wouldDeny: number } };
    expect(detail.shadow.wouldDeny).toBeGreaterThanOrEqual(1);
    // The same count in /metrics, and the MCP calls by method and tool (docs/operations.md, "Metrics").
    const metrics = await (await fetch(`${shadow.adminUrl}/metrics`)).text();
    expect(Number(/^agentward_shadow_would_deny_total (\d+)$/m.exec(metrics)?.[1])).toBe(detail.shadow.wouldDeny);
    expect(Number(/^agentward_mcp_tool_calls_total\{tool="delete_repo"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/^agentward_mcp_calls_total\{method="tools\/list"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(shadow.logs()).toContain('policy.mode is shadow');
  });
});
