/**
 * The floor for a Node.js proxy: node:http in, one undici keep-alive pool out, no auth, no
 * policy, no logging. Whatever agentward costs above this is its own work (token, policy,
 * audit, header rewriting) plus its choice of forwarding library; below this no Node proxy goes.
 *
 *   node bench/forwarder.ts PORT UPSTREAM_URL
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';

const port = Number(process.argv[2]);
const upstream = process.argv[3];
if (!Number.isInteger(port) || port <= 0 || !upstream) {
  console.error('usage: node bench/forwarder.ts PORT UPSTREAM_URL');
  process.exit(2);
}

// The same bound as agentward's default upstream.maxSockets.
const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 60_000 });

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection; undici refuses some of them.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  return kept;
}

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .request({ path: req.url ?? '/', method: req.method as 'GET', headers: endToEnd(req.headers), body: hasBody ? req : null })
    .then(
      (up) => {
        if (res.destroyed) {
          void up.body.dump().catch(() => undefined); // the client left while the upstream answered
          return;
        }
        res.writeHead(up.statusCode, endToEnd(up.headers));
        // .pipe, not stream.pipeline: pipeline makes an AbortController per call and aborts it at
        // the end, and building that AbortError (a DOMException with a stack trace) showed up as a
        // sizeable share of this forwarder's CPU profile.
        up.body.on('error', () => res.destroy());
        res.on('close', () => {
          if (!up.body.readableEnded) up.body.destroy(); // the client left mid-body: free the connection
        });
        up.body.pipe(res);
      },
      () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      },
    );
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');

const stop = () => {
  server.close(() => void pool.close().then(() => process.exit(0)));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
