/**
 * The admin listener: `/healthz` (the process serves), `/readyz` (config, policy and every
 * issuer's key set are loaded, and the process is not draining), with detail for operators, and
 * `/metrics` (Prometheus text exposition, src/observability/metrics.ts) unless metrics are off.
 * Keep it on a loopback or pod-internal address: it describes the policy and issuers.
 */
import { createServer, type Server } from 'node:http';

export interface HealthSources {
  ready: () => boolean;
  detail: () => Record<string, unknown>;
  /** The metrics exposition; undefined when `metrics.enabled` is false (then /metrics is 404). */
  metrics?: (() => Promise<{ contentType: string; body: string }>) | undefined;
}

export function createAdminServer(sources: HealthSources): Server {
  const endpoints = ['/healthz', '/readyz', ...(sources.metrics ? ['/metrics'] : [])];
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    let status: number;
    let body: Record<string, unknown>;
    if (path === '/metrics' && sources.metrics) {
      sources.metrics().then(
        (exposition) => {
          res.writeHead(200, { 'content-type': exposition.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(exposition.body) });
          res.end(req.method === 'HEAD' ? undefined : exposition.body);
        },
        () => {
          // A collector that failed: say so without detail (the admin listener is not for debugging internals).
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('metrics could not be collected\n');
        },
      );
      return;
    }
    if (path === '/healthz') {
      status = 200;
      body = { status: 'ok' };
    } else if (path === '/readyz') {
      const ready = sources.ready();
      status = ready ? 200 : 503;
      body = { ready, ...sources.detail() };
    } else {
      status = 404;
      body = { error: 'not found', endpoints };
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
}
