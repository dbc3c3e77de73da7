/**
 * `agentward explain` (docs/operations.md "Command line"): runs a described request through the real pipeline up to
 * the decision (extract, verify, inspect, build input, decide: `authorize` in
 * src/proxy/pipeline.ts) and reports the policy input, the decision and the answer the proxy
 * would give, forwarding nothing. The same code decides served requests, so what explain prints
 * is what serve does.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { asAgentwardError } from '../errors.ts';
import type { Decision } from '../policy/decision.ts';
import type { PolicyInput } from '../policy/input.ts';
import { admit, authorize, denyError, parseTarget, rejectContext, type PipelineDeps } from './pipeline.ts';
import { problemFor } from './reject.ts';

/** A request as `--request FILE` describes it (JSON or YAML). */
export interface DescribedRequest {
  /** Default GET. */
  method?: string;
  /** The path and query (`/mcp?x=1`), or an absolute URL whose path and query are used. */
  url: string;
  headers?: Record<string, string | string[]>;
  /** The body: a string as is, anything else serialised as JSON. */
  body?: unknown;
}

export interface ExplainResult {
  /**
   * The policy input, when the request got that far (authentication passed). For a JSON-RPC body
   * it is the input of the call the decision is about: the first denied call, or the first call.
   */
  input: PolicyInput | null;
  decision: Decision | null;
  /** What the proxy would answer instead of forwarding, or `forward` when it would forward. */
  answer: { action: 'forward' } | { action: 'refuse'; status: number; code: string; headers: Record<string, string | string[]>; body: unknown };
}

/** Checks the shape of a described request; throws a TypeError naming what is wrong. */
export function describedRequest(value: unknown): DescribedRequest {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError('the request file must hold an object with method, url, headers and body');
  const r = value as Record<string, unknown>;
  if (typeof r.url !== 'string' || r.url === '') throw new TypeError('url is required: a path such as /mcp, or an absolute URL');
  if (r.method !== undefined && (typeof r.method !== 'string' || !/^[A-Z]+$/.test(r.method))) throw new TypeError('method must be an upper-case HTTP method such as POST');
  if (r.headers !== undefined) {
    if (r.headers === null || typeof r.headers !== 'object' || Array.isArray(r.headers)) throw new TypeError('headers must be an object of header name to string (or list of strings)');
    for (const [name, v] of Object.entries(r.headers)) {
      if (!(typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string')))) throw new TypeError(`header ${name} must be a string or a list of strings`);
    }
  }
  return r as unknown as DescribedRequest;
}

/**
 * Runs `described` through admission and `authorize` with the served app's `deps`, and returns the
 * policy input, the decision and the answer the proxy would give. Never forwards and never throws
 * for a refused request: a refusal is the `refuse` answer, built by the same mapping as a served
 * one (src/proxy/reject.ts).
 */
export async function explainRequest(described: DescribedRequest, deps: PipelineDeps): Promise<ExplainResult> {
  const { req, res } = syntheticRequest(described);
  const ctx = admit(req, deps);
  let input: PolicyInput | null = null;
  try {
    const target = parseTarget(req.url ?? '/');
    ctx.path = target.pathname;
    const result = await authorize(req, res, target, ctx, deps);
    // For a JSON-RPC body, the input of the call the decision is about (the first denied one).
    const call = ctx.decidedCall;
    input = call ? { ...result.input, mcp: call.mcp, a2a: call.a2a } : result.input;
  } catch (err) {
    ctx.error = asAgentwardError(err);
  }
  const decision = ctx.decision ?? null;
  // Enforcement as in the pipeline: a deny becomes its error (in shadow mode it is forwarded).
  if (!ctx.error && decision && !decision.allow && (!deps.shadow || ctx.anonymous)) ctx.error = denyError(decision, ctx.anonymous);
  if (!ctx.error) return { input, decision, answer: { action: 'forward' } };
  const problem = problemFor(ctx.error, rejectContext(ctx, deps));
  return { input, decision, answer: { action: 'refuse', status: problem.status, code: ctx.error.code, headers: problem.headers, body: JSON.parse(problem.body) as unknown } };
}

/** A node:http request and response that never touch a network. */
function syntheticRequest(described: DescribedRequest): { req: IncomingMessage; res: ServerResponse } {
  const socket = new Socket();
  const req = new IncomingMessage(socket);
  req.method = described.method ?? 'GET';
  let path = described.url;
  const headers: [string, string][] = [];
  if (/^https?:\/\//i.test(path)) {
    const url = new URL(path);
    path = `${url.pathname}${url.search}`;
    headers.push(['Host', url.host]);
  }
  req.url = path;
  for (const [name, value] of Object.entries(described.headers ?? {})) for (const v of [value].flat()) headers.push([name, v]);
  const body = described.body === undefined || described.body === null ? undefined : typeof described.body === 'string' ? described.body : JSON.stringify(described.body);
  if (body !== undefined && !headers.some(([n]) => n.toLowerCase() === 'content-length')) headers.push(['Content-Length', String(Buffer.byteLength(body))]);
  // As Node's HTTP parser fills a request (headers, headersDistinct and rawHeaders from one list).
  const raw = headers.flat();
  (req as IncomingMessage & { _addHeaderLines(headers: string[], n: number): void })._addHeaderLines(raw, raw.length);
  if (body !== undefined) req.push(Buffer.from(body));
  req.push(null);
  return { req, res: new ServerResponse(req) };
}
