/**
 * A plain node:http client for tests that need what fetch cannot send: repeated header fields,
 * raw paths with dot segments, or no automatic headers at all. With `tls`, node:https on a fresh
 * connection per request (the CA to trust, and the client certificate to present, if any).
 */
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: () => Record<string, unknown>;
}

export function rawRequest(
  url: string,
  options: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: string; tls?: { ca: string; cert?: string; key?: string } } = {},
): Promise<RawResponse> {
  const u = new URL(url);
  const send = options.tls ? httpsRequest : request;
  return new Promise((resolve, reject) => {
    const req = send(
      { host: u.hostname, port: u.port, method: options.method ?? 'GET', path: options.path ?? `${u.pathname}${u.search}`, headers: options.headers ?? {}, agent: false, ...options.tls },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as Record<string, unknown> });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Parses `Bearer k="v", k2="v2"` into its parameters (values unescaped). */
export function challengeParams(header: string | string[] | undefined): Record<string, string> {
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const params: Record<string, string> = {};
  for (const m of text.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) params[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
  return params;
}
