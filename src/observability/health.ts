/**
 * The admin listener: `/healthz` (the process serves) and `/readyz` (config, policy and every
 * issuer's key set are loaded, and the process is not draining), with detail for operators.
 * Keep it on a loopback or pod-internal address: it describes the policy and issuers.
 */
import { createServer, type Server } from 'node:http';

export interface HealthSources {
  ready: () => boolean;
  detail: () => Record<string, unknown>;
}

export function createAdminServer(sources: HealthSources): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    let status: number;
    let body: Record<string, unknown>;
    if (path === '/healthz') {
      status = 200;
      body = { status: 'ok' };
    } else if (path === '/readyz') {
      const ready = sources.ready();
      status = ready ? 200 : 503;
      body = { ready, ...sources.detail() };
    } else {
      status = 404;
      body = { error: 'not found', endpoints: ['/healthz', '/readyz'] };
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
}
