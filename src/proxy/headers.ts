/**
 * What the upstream sees. Inbound credentials are removed (MCP 2026-07-28 "Token Handling"),
 * caller-sent copies of every header the proxy vouches for are removed whether or not the proxy
 * sets them this time, and forwarding headers are rebuilt from facts the proxy knows itself
 * (RFC 9700 §4.13: a reverse proxy must sanitize inbound security headers).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { CREDENTIAL_HEADERS } from '../identity/credential-headers.ts';
import { readField, type PolicyInput } from '../policy/input.ts';

/** Forwarding headers only the proxy may set. */
const FORWARDING_HEADERS = ['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip'];

/** `forward` as the header rewrite reads it. */
export interface UpstreamHeaderSettings {
  stripCredentials: boolean;
  /** Lower-cased identity header name → policy input field. */
  identityHeaders: ReadonlyMap<string, string>;
  requestIdHeader: string;
  /** agentward sets `Txn-Token` itself (`forward.txnToken`): a caller's copy never passes on its own. */
  txnToken: boolean;
}

export interface UpstreamHeaderPlan extends UpstreamHeaderSettings {
  /** The fields every request loses (`upstreamHeaderPlan`). */
  removals: ReadonlySet<string>;
}

export interface UpstreamFacts {
  requestId: string;
  remoteAddress: string | undefined;
  proto: 'http' | 'https';
  input: PolicyInput;
  /** Headers from an allow decision (already validated, lower-cased names). */
  decisionHeaders: Readonly<Record<string, string>>;
  /** The Txn-Token for the upstream (src/proxy/upstream-token.ts), when the plan sets one. */
  txnToken: string | undefined;
}

/**
 * RFC 9110 §7.6.1: fields that describe one connection, plus any field the Connection header
 * names, are not forwarded in either direction. (Transfer-Encoding is re-framed by Node itself.)
 * Forwarding a client's `Connection: close` would make the upstream close the pooled connection.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'];
const HOP_BY_HOP_FIELDS: ReadonlySet<string> = new Set(HOP_BY_HOP);

/** Removes the hop-by-hop fields in place (a message that must stay the same object: http-proxy-3's head). */
export function stripHopByHop(headers: IncomingHttpHeaders): void {
  const named = connectionOptions(headers);
  for (const name in headers) if (isHopByHop(name, named)) delete headers[name];
}

/**
 * Whether `name` belongs to one connection only: a hop-by-hop field, or one that the message's
 * Connection header names (`named`, from `connectionOptions`). Code that can copies a message's
 * other fields into a new object rather than deleting these from the old one.
 */
export function isHopByHop(name: string, named: readonly string[]): boolean {
  return HOP_BY_HOP_FIELDS.has(name) || (named.length > 0 && named.includes(name));
}

const NO_FIELDS: readonly string[] = [];

/** The fields the Connection header names (RFC 9110 §7.6.1), except the framing ones Node handles. */
export function connectionOptions(headers: IncomingHttpHeaders): readonly string[] {
  const connection = headers.connection;
  if (typeof connection !== 'string') return NO_FIELDS;
  const fields: string[] = [];
  for (const name of connection.split(',')) {
    const field = name.trim().toLowerCase();
    if (field !== 'transfer-encoding' && field !== 'content-length') fields.push(field);
  }
  return fields;
}

/**
 * The plan, built once at start with the fields it removes from every request: hop-by-hop
 * fields; the credentials (`stripCredentials`); `Expect` (Node already answered "100 Continue" to
 * the client before the pipeline ran, RFC 9110 §10.1.1, and the body is on its way: the
 * expectation is met and is not forwarded); forwarding headers and the identity headers, which
 * only the proxy sets; and `Txn-Token` when agentward sets its own.
 */
export function upstreamHeaderPlan(settings: UpstreamHeaderSettings): UpstreamHeaderPlan {
  const removals = new Set([
    ...HOP_BY_HOP,
    ...(settings.stripCredentials ? CREDENTIAL_HEADERS : []),
    'expect',
    ...FORWARDING_HEADERS,
    ...settings.identityHeaders.keys(),
    ...(settings.txnToken ? ['txn-token'] : []),
  ]);
  return { ...settings, removals };
}

/**
 * The fields of the upstream request, in a new object: the client's `headers` less the plan's
 * removals, plus what the proxy sets. The removals are one pass over the fields the request has
 * (a handful) rather than a lookup for each of the ~25 names that may go; the kept ones are copied
 * because deleting from Node's object (every request loses its credential) would turn it into a
 * slow dictionary (V8) for everything that reads it after.
 */
export function rewriteUpstreamHeaders(headers: IncomingHttpHeaders, plan: UpstreamHeaderPlan, facts: UpstreamFacts): IncomingHttpHeaders {
  const removals = plan.removals;
  const named = connectionOptions(headers);
  // forward.methodOverride: strip. The policy was told (input.request.methodOverride); the
  // upstream must not act on a method the policy did not decide on (src/proxy/method-override.ts).
  const override = facts.input.request.methodOverride;
  const overrides = override?.action === 'stripped' ? override.fields.filter((f) => f.source === 'header').map((f) => f.name) : undefined;
  const upstream: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (removals.has(name) || Object.hasOwn(facts.decisionHeaders, name) || named.includes(name) || overrides?.includes(name)) continue;
    upstream[name] = headers[name];
  }

  for (const [name, field] of plan.identityHeaders) {
    const value = headerValue(readField(facts.input, field));
    if (value !== undefined) upstream[name] = value;
  }
  for (const [name, value] of Object.entries(facts.decisionHeaders)) upstream[name] = value;
  // draft-ietf-oauth-transaction-tokens §12.1: exactly one Txn-Token, ours, even with
  // stripCredentials off.
  if (plan.txnToken && facts.txnToken !== undefined) upstream['txn-token'] = facts.txnToken;

  upstream[plan.requestIdHeader] = facts.requestId;
  if (facts.remoteAddress) {
    upstream['x-forwarded-for'] = facts.remoteAddress;
    upstream.forwarded = `for=${forwardedNode(facts.remoteAddress)};proto=${facts.proto}`;
  }
  upstream['x-forwarded-proto'] = facts.proto;
  return upstream;
}

/**
 * Scalars as text, arrays joined with spaces (like an OAuth scope). A value with anything outside
 * visible ASCII, or with a "%", is percent-encoded (RFC 3986 §2.1): a claim can never break the
 * header framing, and the mapping stays one-to-one (a literal "j%C3%BCrgen" and "jürgen" differ).
 */
function headerValue(value: unknown): string | undefined {
  let text: string;
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) text = value.map(String).join(' ');
  else if (typeof value === 'object') return undefined;
  else text = String(value);
  return /^[\x20-\x24\x26-\x7e]*$/.test(text) ? text : encodeURIComponent(text.toWellFormed());
}

/** RFC 7239 §6: IPv6 addresses are quoted and bracketed. */
function forwardedNode(address: string): string {
  const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  return plain.includes(':') ? `"[${plain}]"` : plain;
}
