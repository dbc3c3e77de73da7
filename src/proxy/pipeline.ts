/**
 * The request pipeline (docs/architecture.md "The request pipeline"), in one function and in this order:
 *
 *   admit → extract → verify → inspect → build input → decide → enforce → record
 *
 * Why this order: nothing reaches policy unverified, and policy never sees a raw token; a body is
 * read only after the caller is known, so no unauthenticated request can make the proxy buffer;
 * recording runs in `finally`, after the response, so it sees the outcome of every path.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { AgentwardError, asAgentwardError } from '../errors.ts';
import { parseJsonRpcBody } from '../rpc/json-rpc.ts';
import { checkMcpHeaders, inspectRpc, type ListKind, type RpcCall, type RpcInspection, type RpcProtocol } from '../rpc/inspect.ts';
import { listResponseRewrite, type ResponseRewrite } from '../rpc/list-filter.ts';
import { readBounded } from '../outbound/bounded-body.ts';
import { extractCredentials, type ExtractOptions, type PresentedCredentials, type RequestFacts } from '../credentials/extract.ts';
import type { WorkloadAuthenticator, WorkloadResult } from '../credentials/workload.ts';
import type { ProvenWorkload, TokenMatch } from '../identity/workload.ts';
import type { VerifiedAccessToken } from '../credentials/access-token.ts';
import type { TxnTokenCheck, VerifiedTxnToken } from '../credentials/txn-token.ts';
import type { AccessTokens } from '../credentials/tokens.ts';
import type { DpopCheck } from '../credentials/dpop.ts';
import { claimAll, type ReplayClaim } from '../state/replay.ts';
import { checkCertificateBinding } from '../credentials/client-certificate.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import type { Decision } from '../policy/decision.ts';
import type { PolicyInput } from '../policy/input.ts';
import { buildInput } from './input.ts';
import { screenMethodOverride, type MethodOverrideMode } from './method-override.ts';
import type { AuditRecord, AuditSink } from '../observability/audit.ts';
import type { Outcome } from '../observability/metrics.ts';
import type { ServerErrorLog } from '../observability/server-errors.ts';
import type { Telemetry } from '../observability/telemetry.ts';
import type { RequestSpans } from '../observability/tracing.ts';
import type { Forwarder } from './forward.ts';
import type { OpenStreams } from './streams.ts';
import { rewriteUpstreamHeaders, type UpstreamHeaderPlan } from './headers.ts';
import type { ProtectedResource } from './protected-resource.ts';
import { upstreamTxnToken, type UpstreamTxnPlan } from './upstream-token.ts';
import { problemFor, sendProblem, type ChallengeSchemes, type RejectContext } from './reject.ts';

/** A path whose JSON-RPC body is read and decided per call. */
export interface RpcRoute {
  protocol: RpcProtocol;
  maxBodyBytes: number;
  /** MCP: filter tools/list, prompts/list, resources/list results. */
  filterLists: boolean;
}

export interface PipelineDeps {
  /** Exact request paths of MCP and A2A endpoints. */
  rpcRoutes: ReadonlyMap<string, RpcRoute>;
  /** `policy.mode: shadow`: decisions are evaluated and audited, never enforced. */
  shadow: boolean;
  /** Would-deny decisions in shadow mode since start (shown in /readyz). */
  shadowDenials: { count: number };
  resource: ProtectedResource;
  /** JWT access tokens, and opaque ones by introspection. */
  verifier: AccessTokens;
  /** DPoP proof checks; undefined when `oauth.dpop.mode` is `disabled`. */
  dpop: DpopCheck | undefined;
  /** Workload identity (WIT + WPT or HTTP signature, X.509-SVID, JWT-SVID); undefined without a `workload` section (workload credentials are then refused). */
  workload: WorkloadAuthenticator | undefined;
  /** `oauth.requireToken`: every request needs an access token, even with a proven workload identity. */
  requireToken: boolean;
  /**
   * `oauth.anonymous: policy`: a request that presents no credential at all reaches the policy
   * (subject and agent null) instead of being refused before it; a denial is still the 401 of a
   * missing credential.
   */
  anonymous: boolean;
  /** What step 2 reads: the Authorization schemes accepted besides Bearer, the workload headers. */
  extraction: ExtractOptions;
  /** Txn-Token checks; undefined when `txnTokens` is not configured (a Txn-Token is then refused). */
  txn: Pick<TxnTokenCheck, 'verifier' | 'required'> | undefined;
  /** The schemes offered in challenges. */
  schemes: ChallengeSchemes;
  policy: PolicyEngine;
  forwarder: Forwarder;
  headerPlan: UpstreamHeaderPlan;
  /** `forward.txnToken`: the Txn-Token the upstream gets; undefined when off. */
  upstreamTxn: UpstreamTxnPlan | undefined;
  audit: AuditSink;
  /** Metrics and traces (src/observability/telemetry.ts). */
  telemetry: Telemetry;
  logger: Logger;
  /** 5xx failures: the first of each code logged in full, the rest counted once a second. */
  serverErrors: ServerErrorLog;
  /** `forward.methodOverride`: what a request with method override fields gets. */
  methodOverride: MethodOverrideMode;
  /** Responses in flight by token, closed by a remediation (docs/signals.md); undefined without `signals`. */
  streams?: OpenStreams | undefined;
  /** Largest body read for inspection. */
  maxBodyBytes: number;
  exposeReason: boolean;
  /** Scheme of the listener agents connect to. */
  listenerProto: 'http' | 'https';
  now: () => number;
}

export interface RequestContext {
  id: string;
  traceId: string | null;
  startedAt: number;
  method: string;
  path: string;
  scheme: PresentedCredentials['scheme'];
  /** Nothing was presented and `oauth.anonymous: policy` let the request reach the policy as it is. */
  anonymous: boolean;
  /** How a WIT was proven, known before it is verified (its failures' status depends on it, U3). */
  workloadProof: 'wpt' | 'http_signature' | undefined;
  agent: ProvenWorkload | undefined;
  token: VerifiedAccessToken | undefined;
  /** The request body, when a step had to read it (an HTTP signature's Content-Digest, a form, JSON-RPC). */
  body: Buffer | undefined;
  /** The JSON-RPC route (mcp.paths, a2a.paths) of the request path, if any. */
  route?: RpcRoute | undefined;
  /** What the JSON-RPC body asks for, once read. */
  rpc?: RpcInspection | undefined;
  /** The call whose decision is `decision` (the first denied one, or the first). */
  decidedCall?: RpcCall | undefined;
  /** policy.mode shadow: the policy denied and the request was forwarded anyway. */
  shadowed?: boolean;
  txn: VerifiedTxnToken | undefined;
  decision: Decision | undefined;
  error: AgentwardError | undefined;
  status: number;
  /** Set once the audit record is written (a refusal's, before its response). */
  recorded?: boolean;
  /** Stage marks (`performance.now()`, 0 until reached) for metrics and spans: end of step 3, step 6, forwarding. */
  verifiedAt: number;
  policyStartedAt: number;
  decidedAt: number;
  upstreamStartedAt: number;
  /** The request's spans, when tracing is on. */
  spans: RequestSpans | undefined;
}

const RESOLVED = Promise.resolve();
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * Runs one request through the pipeline. `refusal` is set when the server has already decided to
 * refuse the request (an unsupported `Expect`); it is then answered and recorded like any other.
 */
export async function handleRequest(req: IncomingMessage, res: ServerResponse, deps: PipelineDeps, refusal?: AgentwardError): Promise<void> {
  const ctx = admit(req, deps);
  res.setHeader(deps.headerPlan.requestIdHeader, ctx.id);
  // The raw path until the target is parsed: what a refusal before that (overload, an unmet
  // Expect, a malformed target) is recorded and traced with.
  ctx.path = (req.url ?? '').split('?', 1)[0]!;
  deps.telemetry.begin(ctx, req);
  try {
    if (refusal) throw refusal;
    const target = parseTarget(req.url ?? '');
    ctx.path = target.pathname;
    if (deps.resource.metadataPaths.has(target.pathname)) {
      serveMetadata(req, res, deps.resource);
      ctx.status = res.statusCode;
      return;
    }

    callerPresent(req);
    const { input, body, decision, forwardTarget } = await authorize(req, res, target, ctx, deps);
    enforce(decision, ctx, deps);
    callerPresent(req);

    req.headers = rewriteUpstreamHeaders(req.headers, deps.headerPlan, {
      requestId: ctx.id,
      remoteAddress: req.socket.remoteAddress,
      proto: deps.listenerProto,
      input,
      decisionHeaders: decision.headers,
      txnToken: deps.upstreamTxn && txnTokenFor(req, decision, ctx, deps.upstreamTxn),
    });
    // From here the response may stay open (SSE, WebSocket): a revocation must be able to close it.
    if (deps.streams && ctx.token) deps.streams.track(res, ctx.token);
    const rewrite = listFilterFor(input, ctx, deps);
    if (rewrite) req.headers['accept-encoding'] = 'identity';
    // With tracing on, the upstream's traceparent names our upstream span (W3C Trace Context §3.2).
    deps.telemetry.upstream(ctx, req, target.pathname);
    const result = await deps.forwarder.forward(
      req,
      res,
      // The target in the parsed form the policy saw (architecture.md, "What the upstream sees").
      `${forwardTarget.pathname}${forwardTarget.search}`,
      body,
      (err) => {
        ctx.error = err;
        sendProblem(res, err, rejectContext(ctx, deps));
      },
      rewrite,
    );
    ctx.status = result.status;
  } catch (err) {
    ctx.error = asAgentwardError(err);
    if (res.headersSent) {
      res.destroy();
      ctx.status = res.statusCode;
      return;
    }
    // A refusal is recorded before it is answered (draft-ietf-wimse-aims §11: durable records of
    // every decision): no caller learns of a refusal the audit trail does not hold.
    const problem = problemFor(ctx.error, rejectContext(ctx, deps));
    ctx.status = problem.status;
    await record(ctx, deps, true);
    res.writeHead(problem.status, { ...problem.headers, 'content-length': Buffer.byteLength(problem.body) });
    res.end(problem.body);
  } finally {
    if (!ctx.recorded) record(ctx, deps);
  }
}

/**
 * Steps 2 to 6 (extract, verify, inspect, build input, decide): everything up to the decision,
 * nothing sent. `handleRequest` enforces and forwards after it; `agentward explain` prints what it
 * found (src/proxy/explain.ts).
 */
export async function authorize(
  req: IncomingMessage,
  res: ServerResponse,
  target: URL,
  ctx: RequestContext,
  deps: PipelineDeps,
): Promise<{ input: PolicyInput; body: Buffer | undefined; decision: Decision; forwardTarget: URL }> {
  // Request hygiene before credentials: a method override is refused, or stripped so that the
  // policy and the upstream see the same request, or passed on and shown to the policy.
  const screened = screenMethodOverride(req.headersDistinct, target, deps.methodOverride);
  const decided = screened?.target ?? target;
  const credentials = extractCredentials(req, target.search === '' ? undefined : target.searchParams, deps.extraction);
  ctx.scheme = credentials.scheme;
  // oauth.anonymous: policy. Only a request that presents nothing at all is anonymous; one that
  // presents anything is verified below and refused if that fails, never downgraded to anonymous.
  // Nothing to verify, and the requirements (requireToken, workload.require, a required Txn-Token)
  // are for callers who present credentials: the policy decides with subject and agent null.
  ctx.anonymous = deps.anonymous && credentials.anonymous;
  const { unboundContextHeaders, tokenMatch } = ctx.anonymous ? ANONYMOUS : await verifyCredentials(req, res, credentials, ctx, deps);
  ctx.verifiedAt = performance.now();

  ctx.route = deps.rpcRoutes.get(target.pathname);
  const inspecting = inspectBody(req, deps.maxBodyBytes, ctx);
  const body = inspecting ? await inspecting : ctx.body;
  ctx.policyStartedAt = performance.now();
  const input = buildInput(
    {
      requestId: ctx.id,
      method: ctx.method,
      target: decided,
      headers: req.headersDistinct,
      credentials,
      agent: ctx.agent,
      tokenMatch,
      token: ctx.token,
      txn: ctx.txn,
      unboundContextHeaders,
      methodOverride: screened?.override ?? null,
    },
    deps.resource,
    deps.now(),
  );
  ctx.decision = decide(input, ctx, deps);
  ctx.decidedAt = performance.now();
  return { input, body, decision: ctx.decision, forwardTarget: decided };
}

const ANONYMOUS = { unboundContextHeaders: [], tokenMatch: null } as const;

/**
 * Step 3, in the order docs/architecture.md gives ("The request pipeline", step 3): the workload
 * (agent) first, then the access token with its sender constraint, then the Txn-Token. Every
 * credential presented is verified.
 */
async function verifyCredentials(
  req: IncomingMessage,
  res: ServerResponse,
  credentials: PresentedCredentials,
  ctx: RequestContext,
  deps: PipelineDeps,
): Promise<{ unboundContextHeaders: readonly string[]; tokenMatch: TokenMatch | null }> {
  // A step with nothing to check is not awaited: each await of a settled promise still costs the
  // request a microtask turn and its allocations, and most requests present a bearer token only.
  // The request facts are made only for the checks that read them (workload proofs, DPoP).
  const workload = deps.workload ? await authenticateWorkload(deps.workload, credentials, requestFacts(req, ctx, deps), ctx) : noWorkload(credentials);
  ctx.agent = workload.agent;
  const accessToken = credentials.bearerIsJwtSvid ? undefined : credentials.accessToken;
  let dpopReplay: ReplayClaim | undefined;
  if (accessToken !== undefined) {
    ctx.token = await deps.verifier.verify(accessToken);
    checkTokenBinding(credentials, ctx.token, deps);
    if (credentials.scheme === 'dpop') dpopReplay = await verifyDpopBinding(credentials, ctx.token, requestFacts(req, ctx, deps), res, deps);
  } else if (deps.requireToken || ctx.agent === undefined) {
    throw new AgentwardError('ERR_CREDENTIALS_MISSING');
  }
  const tokenMatch = ctx.agent && ctx.token ? deps.workload!.matchToken(ctx.agent, ctx.token) : null;
  ctx.txn = credentials.txnTokens === undefined && !deps.txn?.required ? undefined : await verifyTxnToken(credentials, deps);
  // Every credential verified: now the proof ids (WPT jti, signature nonce, DPoP jti) are recorded
  // against replay, all together (one step in memory, one round trip to Redis; src/state/replay.ts),
  // so a request refused by any check burns none of its proofs. A taken id refuses with its
  // proof's code; a store that cannot answer refuses with 503 ERR_STATE_UNAVAILABLE.
  const replays = dpopReplay ? [...workload.replays, dpopReplay] : workload.replays;
  if (replays.length > 0) await claimAll(replays);
  return { unboundContextHeaders: workload.unboundContextHeaders, tokenMatch };
}

/** The request facts verifiers need besides the credentials: the signed components are the request as received (RFC 9421 §2.2.6, §2.2.7). */
function requestFacts(req: IncomingMessage, ctx: RequestContext, deps: PipelineDeps): RequestFacts {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  return {
    method: req.method ?? 'GET',
    path,
    query: q === -1 ? '?' : raw.slice(q),
    targetUri: `${deps.resource.origin}${path}`,
    authority: deps.resource.host,
    scheme: deps.resource.scheme,
    headers: req.headersDistinct as Record<string, string[]>,
    readBody: async () => (ctx.body ??= await readBody(req, deps.maxBodyBytes)),
  };
}

/** No work for a request whose caller has gone (it waited, or a verification step awaited); it is still recorded. */
function callerPresent(req: IncomingMessage): void {
  if (req.socket.destroyed) throw new AgentwardError('ERR_CLIENT_CLOSED');
}

/**
 * Requests Node refuses before the pipeline can run (a malformed or oversized head, a client too
 * slow to send its request): answered in the same problem format, and recorded like any other.
 */
export function handleClientError(err: NodeJS.ErrnoException, socket: Socket, deps: PipelineDeps): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'ERR_HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'ERR_REQUEST_TIMEOUT' : 'ERR_BAD_REQUEST';
  const ctx = newContext(randomUUID(), null, '');
  const error = new AgentwardError(code, undefined, { cause: err });
  ctx.error = error;
  ctx.status = error.status;
  const problem = problemFor(error, rejectContext(ctx, deps));
  const head = Object.entries({ ...problem.headers, [deps.headerPlan.requestIdHeader]: ctx.id, 'content-length': String(Buffer.byteLength(problem.body)), connection: 'close' })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const answer = (): void => void socket.end(`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\n${head}\r\n${problem.body}`);
  void record(ctx, deps, true).then(answer);
}

/** Step 1: request id (kept from the caller when well-formed) and W3C trace id. */
export function admit(req: IncomingMessage, deps: PipelineDeps): RequestContext {
  const inbound = req.headers[deps.headerPlan.requestIdHeader];
  const traceparent = req.headers.traceparent;
  const id = typeof inbound === 'string' && REQUEST_ID.test(inbound) ? inbound : randomUUID();
  return newContext(id, typeof traceparent === 'string' ? (TRACEPARENT.exec(traceparent)?.[1] ?? null) : null, req.method ?? 'GET');
}

/** A request context before any step has run: the one place its fields start out. */
function newContext(id: string, traceId: string | null, method: string): RequestContext {
  return {
    id,
    traceId,
    startedAt: performance.now(),
    method,
    path: '',
    scheme: undefined,
    anonymous: false,
    workloadProof: undefined,
    agent: undefined,
    token: undefined,
    body: undefined,
    txn: undefined,
    decision: undefined,
    error: undefined,
    status: 0,
    verifiedAt: 0,
    policyStartedAt: 0,
    decidedAt: 0,
    upstreamStartedAt: 0,
    spans: undefined,
  };
}

/**
 * Step 3, second half: the token's sender constraint. A certificate-bound token (`cnf.x5t#S256`)
 * needs the client certificate (RFC 8705 §3): this connection's, or a trusted hop's (§6.5). A
 * DPoP-bound token (`cnf.jkt`) needs the DPoP scheme and a proof by that key (RFC 9449 §7.1,
 * §7.2, `verifyDpopBinding`); the DPoP scheme needs a bound token.
 */
function checkTokenBinding(credentials: PresentedCredentials, token: VerifiedAccessToken, deps: PipelineDeps): void {
  if (token.x5t !== undefined) checkCertificateBinding(token.x5t, credentials.clientCertificate?.facts ?? null);
  if (credentials.scheme === 'dpop') return;
  if (token.jkt !== undefined) throw new AgentwardError('ERR_DPOP_BOUND_TOKEN_AS_BEARER');
  if (deps.dpop?.required) throw new AgentwardError('ERR_DPOP_REQUIRED');
}

/**
 * The DPoP scheme's proof, and the token's binding to its key. The proof id is handed back, to be
 * recorded against replay once every credential holds.
 */
async function verifyDpopBinding(credentials: PresentedCredentials, token: VerifiedAccessToken, facts: RequestFacts, res: ServerResponse, deps: PipelineDeps): Promise<ReplayClaim> {
  // RFC 9449 §4.3 step 9: htu is the resource origin + path from configuration, never Host.
  const proof = await deps.dpop!.verifier.verify(credentials.dpopProof!, { method: facts.method, uri: facts.targetUri, accessToken: credentials.accessToken! });
  if (token.jkt === undefined) throw new AgentwardError('ERR_DPOP_TOKEN_NOT_BOUND');
  if (proof.jkt !== token.jkt) throw new AgentwardError('ERR_DPOP_BINDING_MISMATCH');
  if (proof.freshNonce !== undefined) res.setHeader('dpop-nonce', proof.freshNonce);
  return proof.replay;
}

const NO_WORKLOAD: WorkloadResult = { agent: undefined, unboundContextHeaders: [], replays: [] };

/**
 * Step 3, first part, without a `workload` section: a WIT is refused, never ignored (a client
 * relying on it must learn it did not count).
 */
function noWorkload(credentials: PresentedCredentials): WorkloadResult {
  if (credentials.wits !== undefined || credentials.legacyWpt) throw new AgentwardError('ERR_WORKLOAD_UNSUPPORTED');
  return NO_WORKLOAD;
}

/** Step 3, first part: the workload identity. */
function authenticateWorkload(workload: WorkloadAuthenticator, credentials: PresentedCredentials, facts: RequestFacts, ctx: RequestContext): Promise<WorkloadResult> {
  ctx.workloadProof = workload.proofMode(credentials);
  return workload.authenticate(credentials, facts);
}

/**
 * Step 3, third part: the Txn-Token (draft-ietf-oauth-transaction-tokens §12), after the caller's
 * access token and its sender constraint. Verified when present, or required by configuration; a
 * Txn-Token sent to a resource that is not set up for them is refused, never ignored.
 */
async function verifyTxnToken(credentials: PresentedCredentials, deps: PipelineDeps): Promise<VerifiedTxnToken> {
  if (!deps.txn) throw new AgentwardError('ERR_TXN_TOKEN_UNSUPPORTED');
  return deps.txn.verifier.verify(credentials.txnTokens ?? []);
}

/**
 * Step 7 (allow half): the Txn-Token the upstream gets (src/proxy/upstream-token.ts), from the
 * verified facts only. The caller's own Txn-Token, when passed on, is the value that verified:
 * the one `Txn-Token` field of the request (step 3 refused any other count).
 */
function txnTokenFor(req: IncomingMessage, decision: Decision, ctx: RequestContext, plan: UpstreamTxnPlan): string {
  const value = req.headers['txn-token'];
  return upstreamTxnToken(plan, {
    requestId: ctx.id,
    method: ctx.method,
    path: ctx.path,
    remoteAddress: req.socket.remoteAddress,
    token: ctx.token,
    agent: ctx.agent,
    txn: ctx.txn && typeof value === 'string' ? { verified: ctx.txn, value: value.trim() } : undefined,
    decision,
  });
}

/** What the error mapping needs to know about this request. */
export function rejectContext(ctx: RequestContext, deps: PipelineDeps): RejectContext {
  return {
    requestId: ctx.id,
    resourceMetadataUrl: deps.resource.metadataUrl,
    schemes: deps.schemes,
    scheme: ctx.scheme,
    workloadProof: ctx.workloadProof,
    dpopNonce: ctx.error?.code === 'ERR_DPOP_NONCE' ? deps.dpop?.nonces?.current() : undefined,
    exposedReason: deps.exposeReason && ctx.decision && !ctx.decision.allow ? ctx.decision.reason : undefined,
    rpc: ctx.route ? { ids: ctx.rpc?.ids ?? [], batch: ctx.rpc?.batch ?? false, deniedId: ctx.decidedCall?.call.id } : undefined,
  };
}

/**
 * The request target in origin-form (RFC 9112 §3.2.1). Paths that a server behind us could read
 * differently from the policy (dot segments, encoded dots or slashes, backslashes) are refused
 * rather than normalized, so policy and upstream see the same bytes.
 */
export function parseTarget(rawUrl: string): URL {
  if (!rawUrl.startsWith('/')) throw new AgentwardError('ERR_BAD_REQUEST', 'The request target must be a path (origin-form).');
  // No URI holds a control character or a space (RFC 3986 §2, RFC 9112 §3.2). Node's parser
  // refuses them already; refused here too because the WHATWG parser below removes tabs and
  // newlines and trailing controls (URL Standard §4.4 basic URL parser), which would turn
  // "/a%<TAB>2f" into "/a%2f" and "/a/..<0x01>" into "/" after the check below has passed.
  if (/[\x00-\x20\x7f]/.test(rawUrl)) throw new AgentwardError('ERR_BAD_REQUEST', 'The request target is not a valid URI path.');
  // The path ends at "?" or at "#" (RFC 3986 §3.3): "/admin/..#x" is the path "/admin/..", which
  // the URL parser would otherwise turn into "/" after the check below had passed.
  const path = rawUrl.split(/[?#]/, 1)[0]!;
  if (/(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|\\/i.test(path)) throw new AgentwardError('ERR_PATH_NOT_NORMALIZED');
  try {
    // Concatenated, not resolved against a base: "//host/x" must stay a path, exactly as the
    // upstream will receive it, not become an authority.
    return new URL(`http://target.invalid${rawUrl}`);
  } catch {
    throw new AgentwardError('ERR_BAD_REQUEST', 'The request target is not a valid URI path.');
  }
}

function serveMetadata(req: IncomingMessage, res: ServerResponse, resource: ProtectedResource): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new AgentwardError('ERR_METHOD_NOT_ALLOWED');
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300', 'content-length': Buffer.byteLength(resource.metadataBody) });
  res.end(req.method === 'HEAD' ? undefined : resource.metadataBody);
}

/**
 * Step 4. A form body is the one place RFC 6750 §2.2 lets a token ride; we accept tokens only in
 * the header, so a form body is read (bounded) and refused if it carries `access_token`
 * (AT-N20). The exact bytes read are the bytes forwarded. Other bodies stream through unread,
 * unless an earlier step read them (an HTTP message signature's Content-Digest): for those the
 * answer is undefined rather than a promise, so that most requests pay no await here.
 */
function inspectBody(req: IncomingMessage, maxBytes: number, ctx: RequestContext): Promise<Buffer> | undefined {
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  // JSON-RPC routes: a POST carries the calls (MCP Streamable HTTP, A2A); other methods (an MCP
  // GET stream, a DELETE) carry none and are decided as plain HTTP requests.
  const route = ctx.route;
  if (route && req.method === 'POST') {
    if (type !== 'application/json') throw new AgentwardError('ERR_RPC_CONTENT_TYPE');
    return inspectRpcBody(req, route, ctx);
  }
  return type === 'application/x-www-form-urlencoded' ? inspectForm(req, maxBytes, ctx) : undefined;
}

async function inspectRpcBody(req: IncomingMessage, route: RpcRoute, ctx: RequestContext): Promise<Buffer> {
  const body = (ctx.body ??= await readBody(req, route.maxBodyBytes));
  if (body.length > route.maxBodyBytes) throw new AgentwardError('ERR_BODY_TOO_LARGE');
  ctx.rpc = inspectRpc(route.protocol, parseJsonRpcBody(body));
  // After ctx.rpc is set, so that a mismatch is answered with the request's id.
  checkMcpHeaders(ctx.rpc, req.headersDistinct);
  return body;
}

async function inspectForm(req: IncomingMessage, maxBytes: number, ctx: RequestContext): Promise<Buffer> {
  const body = (ctx.body ??= await readBody(req, maxBytes));
  if (new URLSearchParams(body.toString('latin1')).has('access_token')) throw new AgentwardError('ERR_TOKEN_IN_BODY');
  return body;
}

/** Reads the whole request body, refusing more than `maxBytes` (413) before buffering it. */
function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return readBounded(req, {
    maxBytes,
    contentLength: req.headers['content-length'],
    tooLarge: () => new AgentwardError('ERR_BODY_TOO_LARGE'),
    readFailed: (cause) => new AgentwardError('ERR_BODY_READ', undefined, { cause }),
  });
}

/**
 * Step 6. A JSON-RPC body is decided call by call, each with its own `input.mcp` / `input.a2a`
 * (a batch is allowed only when every call is); any other request once. The decision kept is
 * the first deny, or else the first call's allow (whose `headers` then go upstream).
 */
function decide(input: PolicyInput, ctx: RequestContext, deps: PipelineDeps): Decision {
  const calls = ctx.rpc?.calls ?? [];
  if (calls.length === 0) return deps.policy.evaluate(input);
  let first: Decision | undefined;
  for (const call of calls) {
    const decision = deps.policy.evaluate({ ...input, mcp: call.mcp, a2a: call.a2a });
    if (!decision.allow) {
      ctx.decidedCall = call;
      return decision;
    }
    if (first === undefined) {
      first = decision;
      ctx.decidedCall = call;
    }
  }
  return first!;
}

/**
 * The MCP list filter for this request, when it has list calls and filtering is on: each item is
 * decided as the call it stands for, with the same input otherwise. In shadow mode every item
 * stays (the ones the policy would hide are logged).
 */
function listFilterFor(input: PolicyInput, ctx: RequestContext, deps: PipelineDeps): ResponseRewrite | undefined {
  if (!ctx.route?.filterLists || !ctx.rpc || ctx.rpc.lists.size === 0) return undefined;
  // Every item is this input with its own input.mcp: the rest is encoded once (src/policy/engine.ts).
  const decideItem = deps.policy.prepare({ ...input, a2a: null }, 'mcp');
  return listResponseRewrite(ctx.rpc.lists, (kind: ListKind, name: string) => {
    const allowed = decideItem({ method: kind.callMethod, name, arguments: null, id: null, listFilter: true }).allow;
    if (!allowed && deps.shadow) {
      deps.logger.info({ requestId: ctx.id, item: name, method: kind.callMethod }, 'shadow mode: the policy would hide this list item');
      return true;
    }
    return allowed;
  });
}

/**
 * Step 7 (deny half): a decision that does not allow becomes the error its fields ask for. In
 * shadow mode it is logged and counted instead, and the request goes on.
 */
function enforce(decision: Decision, ctx: RequestContext, deps: PipelineDeps): void {
  if (decision.allow) return;
  // Shadow mode forwards what the policy denies, but an anonymous request it denies is a missing
  // credential, an authentication failure: still refused, or shadow mode would open the resource.
  if (deps.shadow && !ctx.anonymous) {
    ctx.shadowed = true;
    deps.shadowDenials.count++;
    deps.logger.info({ requestId: ctx.id, reason: decision.reason, rpcMethod: ctx.decidedCall?.call.method }, 'shadow mode: the policy would deny this request');
    return;
  }
  throw denyError(decision, ctx.anonymous);
}

/**
 * The error a deny asks for: step-up (RFC 9470), insufficient scope (RFC 6750 §3.1), not found or
 * denied. For an anonymous request (`oauth.anonymous: policy`) every deny is the answer to a
 * missing credential, 401 with the plain challenge and `resource_metadata` (RFC 6750 §3.1, RFC
 * 9728 §5.1), so that a client learns where to get a token, exactly as without the setting.
 */
export function denyError(decision: Decision, anonymous = false): AgentwardError {
  if (anonymous) return new AgentwardError('ERR_CREDENTIALS_MISSING');
  if (decision.stepUp) return new AgentwardError('ERR_POLICY_STEP_UP', undefined, { hints: { acrValues: decision.stepUp.acrValues, maxAge: decision.stepUp.maxAge } });
  if (decision.requiredScopes.length > 0) return new AgentwardError('ERR_POLICY_INSUFFICIENT_SCOPE', undefined, { hints: { scope: decision.requiredScopes } });
  // status 404: the policy hides that the resource exists from this caller.
  return new AgentwardError(decision.status === 404 ? 'ERR_POLICY_NOT_FOUND' : 'ERR_POLICY_DENIED');
}

/**
 * The security state the decision was made in (draft-ietf-wimse-aims §11 (f), "posture-assessment
 * or risk state used"), from what was verified: how the token is bound to its sender, how the
 * workload proved itself, and the authentication context the issuer stated (OIDC Core §2 `acr`,
 * RFC 8176 `amr`).
 */
function posture(token: VerifiedAccessToken | undefined, agent: ProvenWorkload | undefined): NonNullable<AuditRecord['posture']> {
  const acr = token?.claims.acr;
  const amr = token?.claims.amr;
  return {
    tokenBinding: token?.jkt !== undefined ? 'dpop' : token?.x5t !== undefined ? 'mtls' : null,
    workloadProof: agent?.via ?? null,
    acr: typeof acr === 'string' ? acr : null,
    amr: Array.isArray(amr) && amr.every((m) => typeof m === 'string') ? amr : null,
  };
}

/**
 * Step 8: one audit record and one log line per request (5xx and shed requests: the first of a
 * code in full, the rest counted; ServerErrorLog, Admission). A refusal's record is written before
 * its response (`beforeResponse`), any other when the response has ended (batched per event-loop
 * turn). The request's child logger is made only when its line will be written (a forwarded
 * request logs at debug, usually off).
 */
function record(ctx: RequestContext, deps: PipelineDeps, beforeResponse = false): Promise<void> {
  ctx.recorded = true;
  let written: Promise<void> = RESOLVED;
  const log = (level: 'debug' | 'info' | 'error'): Logger | undefined => (deps.logger.isLevelEnabled(level) ? deps.logger.child({ requestId: ctx.id }) : undefined);
  const end = performance.now();
  const latencyMs = Math.round((end - ctx.startedAt) * 1000) / 1000;
  const token = ctx.token;
  const err = ctx.error;
  // A policy decision is what it says; without one, a refusal before policy is a deny and a
  // server-side failure an error (an upstream failure after an allow stays an allow, with its code).
  const decision: Outcome = ctx.decision ? (ctx.decision.allow ? 'allow' : 'deny') : !err ? 'allow' : err.status >= 500 ? 'error' : 'deny';
  // Metrics and spans (the trace id the record carries was set when the server span began).
  deps.telemetry.end(ctx, decision, end);
  try {
    const entry: AuditRecord = {
      time: new Date(performance.timeOrigin + ctx.startedAt).toISOString(),
      requestId: ctx.id,
      traceId: ctx.traceId,
      agent: ctx.agent ? { id: ctx.agent.id, via: ctx.agent.via } : null,
      subject: token ? { iss: token.issuer, sub: token.subject, clientId: token.clientId } : null,
      delegation: token ? token.delegation.chain.map((a) => a.sub) : [],
      resource: deps.resource.id,
      action: { method: ctx.method, path: ctx.path, mcpTool: ctx.decidedCall?.mcp?.name ?? null, rpcMethod: ctx.decidedCall?.call.method ?? null },
      shadow: ctx.shadowed ?? false,
      decision,
      status: ctx.status,
      code: err?.code ?? null,
      reason: ctx.decision?.reason ?? null,
      policyRevision: deps.policy.revision ?? null,
      token: token ? { jti: (token.claims.jti as string | undefined) ?? null, hash: token.hashPrefix } : null,
      txn: ctx.txn ? { id: ctx.txn.txn, hash: ctx.txn.hashPrefix } : null,
      posture: token || ctx.agent ? posture(token, ctx.agent) : null,
      latencyMs,
    };
    if (beforeResponse) written = deps.audit.writeBeforeAnswer(entry, err?.code !== 'ERR_OVERLOADED').catch((syncErr: unknown) => log('error')?.error({ err: syncErr }, 'audit record could not be put on disk'));
    else deps.audit.write(entry);
  } catch (auditErr) {
    log('error')?.error({ err: auditErr }, 'audit record could not be written');
  }
  if (!err) log('debug')?.debug({ status: ctx.status, latencyMs }, ctx.decision ? 'request forwarded' : 'request served');
  // Shed requests come in floods: admission control logs their count once a second instead.
  else if (err.code === 'ERR_OVERLOADED') return written;
  // Server failures come in floods too (an upstream that is down fails every request alike).
  else if (err.status >= 500) deps.serverErrors.report(ctx.id, err, latencyMs);
  else log('info')?.info({ code: err.code, status: err.status, reason: ctx.decision?.reason, latencyMs }, err.detail);
  return written;
}
