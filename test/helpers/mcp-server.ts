/**
 * A real MCP server for tests, built with the official MCP TypeScript SDK
 * (@modelcontextprotocol/sdk): Streamable HTTP in stateless mode (a new server and transport per
 * request, as the SDK shows for stateless servers), on loopback. It records every request body it
 * receives, so tests can assert that a refused call never reached it.
 *
 * Tools: search_docs and stream_report (read), create_issue and delete_repo (write), needs_write,
 * admin_console, plus `extraTools` generated ones (tool-0 ... for the list-filtering benchmark).
 * stream_report sends progress notifications before its result, so its answer is a multi-event
 * Server-Sent Events stream. Prompts: summarize, leak_secrets. Resources: docs://public/readme,
 * docs://private/keys.
 *
 * `json: true` makes the transport answer with one JSON document instead of an event stream.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface TestMcpServer {
  url: string;
  /** Raw request bodies received, in order. */
  bodies: string[];
  close(): Promise<void>;
}

export const READ_TOOLS = ['search_docs', 'stream_report'];
export const ALL_TOOLS = [...READ_TOOLS, 'create_issue', 'delete_repo', 'needs_write', 'admin_console'];

function build(extraTools: number): McpServer {
  const server = new McpServer({ name: 'agentward-test-tools', version: '1.0.0' });
  const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
  server.registerTool('search_docs', { description: 'Search the docs', inputSchema: { query: z.string() } }, ({ query }) => text(`results for ${query}`));
  server.registerTool('stream_report', { description: 'A report streamed with progress', inputSchema: { steps: z.number().int().min(1).max(10) } }, async ({ steps }, extra) => {
    const token = extra._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: steps, message: `step ${i}` } });
      await new Promise((r) => setTimeout(r, 20));
    }
    return text(`report with ${steps} steps: ${'x'.repeat(2000)}`);
  });
  server.registerTool('create_issue', { description: 'Create an issue', inputSchema: { repo: z.string(), title: z.string() } }, ({ repo, title }) => text(`created "${title}" in ${repo}`));
  server.registerTool('delete_repo', { description: 'Delete a repository', inputSchema: { repo: z.string() } }, ({ repo }) => text(`deleted ${repo}`));
  server.registerTool('needs_write', { description: 'Needs tools.write' }, () => text('written'));
  server.registerTool('admin_console', { description: 'Hidden from most callers' }, () => text('admin'));
  for (let i = 0; i < extraTools; i++) server.registerTool(`tool-${i}`, { description: `generated tool ${i}` }, () => text(`tool-${i}`));
  server.registerPrompt('summarize', { description: 'Summarize a text' }, () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'Summarize.' } }] }));
  server.registerPrompt('leak_secrets', { description: 'Never shown' }, () => ({ messages: [{ role: 'user', content: { type: 'text', text: 'Leak.' } }] }));
  server.registerResource('readme', 'docs://public/readme', { description: 'Public readme' }, (uri) => ({ contents: [{ uri: uri.href, text: 'readme' }] }));
  server.registerResource('keys', 'docs://private/keys', { description: 'Private keys' }, (uri) => ({ contents: [{ uri: uri.href, text: 'secret' }] }));
  return server;
}

export async function startMcpServer(options: { json?: boolean; extraTools?: number } = {}): Promise<TestMcpServer> {
  const bodies: string[] = [];
  const http: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      bodies.push(raw);
      void (async () => {
        const server = build(options.extraTools ?? 0);
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: options.json ?? false });
        res.on('close', () => {
          void transport.close();
          void server.close();
        });
        await server.connect(transport);
        await transport.handleRequest(req, res, raw === '' ? undefined : JSON.parse(raw));
      })().catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(err));
      });
    });
  });
  await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    bodies,
    close: () =>
      new Promise<void>((done) => {
        http.closeAllConnections();
        http.close(() => done());
      }),
  };
}
