/**
 * The benchmark's upstream: the cheapest useful HTTP service, a small fixed JSON body with
 * Content-Length over keep-alive, so the numbers measure the proxies rather than the service.
 *
 *   node bench/upstream.ts PORT
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node bench/upstream.ts PORT');
  process.exit(2);
}

const body = Buffer.from(JSON.stringify({ ok: true, tool: 'bench', items: [1, 2, 3] }));
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
// The MCP contenders: a tools/call result at /mcp, a 100-tool tools/list result at /mcp-list
// (JSON-RPC id 1, as bench/run.sh sends), both plain JSON (MCP Streamable HTTP allows either).
const callResult = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'ok' }] } }));
const tools = Array.from({ length: 100 }, (_, i) => ({ name: `tool-${i}`, description: `Generated tool number ${i} of the benchmark`, inputSchema: { type: 'object', properties: { q: { type: 'string' } } } }));
const listResult = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools, nextCursor: 'page-2' } }));
const answers: Record<string, Buffer> = { '/mcp': callResult, '/mcp-list': listResult };

const server = createServer((req, res) => {
  req.resume(); // a body, if any, is discarded
  // GET /hold is never answered: run.sh's agentward-shed keeps its one admission slot busy with it.
  if (req.url === '/hold') return;
  const answer = req.method === 'POST' ? answers[req.url ?? ''] : undefined;
  if (answer) res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(answer.length) }).end(answer);
  else res.writeHead(200, headers).end(body);
});
// Longer than any proxy's idle pool timeout, so a proxy never races a close between runs.
server.keepAliveTimeout = 120_000;
server.listen(port, '127.0.0.1');

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
