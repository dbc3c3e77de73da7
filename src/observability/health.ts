/**
 * The admin listener: `/healthz` (the process serves), `/readyz` (config, policy and every
 * issuer's key set are loaded, and the process is not draining; with several workers, every
 * worker is), with detail for operators, `/metrics` (Prometheus text exposition,
 * src/observability/metrics.ts) unless metrics are off, and
 * `/jwks.json`, the public keys of the Txn-Tokens agentward mints for the upstream
 * (`forward.txnToken`). Keep it on a loopback or pod-internal address: it describes the policy and
 * issuers (the upstream, which fetches the key set, is usually in the same pod).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** What /readyz answers: 200 when `ready`, else 503, with the detail for operators. */
export interface Readiness {
  ready: boolean;
  detail: Record<string, unknown>;
}

export interface HealthSources {
  /**
   * Synchronous in one process; a promise in the primary of several workers, which asks each
   * worker over IPC (src/app/workers.ts).
   */
  readiness: () => Readiness | Promise<Readiness>;
  /**
   * Other endpoints by exact path, each answering its own requests: SSF push (RFC 8935) and the
   * revocation endpoint (docs/signals.md). A handler never throws; one that does has its
   * connection cut.
   */
  routes?: ReadonlyMap<string, (req: IncomingMessage, res: ServerResponse) => Promise<void>>;
  /** The minter's JWK Set document, serialized; undefined when agentward mints no Txn-Token. */
  jwks?: (() => string) | undefined;
  /** The metrics exposition; undefined when `metrics.enabled` is false (then /metrics is 404). */
  metrics?: (() => Promise<{ contentType: string; body: string }>) | undefined;
}

export function createAdminServer(sources: HealthSources): Server {
  const endpoints = ['/healthz', '/readyz', ...(sources.metrics ? ['/metrics'] : [])];
  return createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    const route = sources.routes?.get(path);
    if (route) {
      route(req, res).catch(() => res.destroy());
      return;
    }
    if (path === '/jwks.json' && sources.jwks) {
      // RFC 7517 §8.5.1 media type. Short caching: after a key rotation the new key must be
      // fetched (verifiers also refetch on an unknown kid).
      const text = sources.jwks();
      res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
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
    const answer = (status: number, body: Record<string, unknown>) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    };
    if (path === '/healthz') answer(200, { status: 'ok' });
    else if (path === '/readyz') {
      Promise.resolve()
        .then(sources.readiness)
        .then(
          ({ ready, detail }) => answer(ready ? 200 : 503, { ready, ...detail }),
          () => answer(503, { ready: false }),
        );
    } else answer(404, { error: 'not found', endpoints: [...endpoints, ...(sources.jwks ? ['/jwks.json'] : []), ...(sources.routes?.keys() ?? [])] });
  });
}
