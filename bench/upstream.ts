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

const server = createServer((req, res) => {
  req.resume(); // a body, if any, is discarded
  res.writeHead(200, headers).end(body);
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
