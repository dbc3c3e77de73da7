/**
 * Revoked-before marks (docs/signals.md): a security event (OpenID SSF 1.0 with CAEP 1.0 / RISC
 * 1.0) or an operator's purge names a subject, a session, a client, a token id or an email, and
 * from then on every access token it matches that was issued at or before the event is refused
 * (ERR_TOKEN_REVOKED). A token issued after the event is not affected: the authorization server
 * has seen the event and minted it anyway.
 *
 * Matching is on the verified token only: (`iss`, `sub`), `sid`, the client (`client_id`, or the
 * issuer profile's client claim), `jti`, and `email`. A mark's fields must all match (a CAEP
 * complex subject, SSF §3.3: the user AND the session). The comparison with the event time is
 * `iat <= before` (whole seconds): a token minted in the same second as the event is refused, so
 * the one-second granularity of NumericDate (RFC 7519 §2) never lets a token from before the event
 * through. A token without `iat` cannot be shown to be newer than the event: while a mark matches
 * it, it is refused (fail closed).
 *
 * Marks are kept for `retentionMs` (the longest token lifetime accepted, `signals.maxTokenLifetime`):
 * by then every token issued before the event has expired. Memory is bounded (`maxMarks`): when
 * full, the oldest mark is forgotten, and, as the replay cache does, every token issued at or
 * before a forgotten mark's time is refused, whoever it names, until that mark would have
 * expired. Under a flood of events this refuses some valid tokens; it never lets a revoked one
 * through.
 */
import { LRUCache } from 'lru-cache';
import type { VerifiedAccessToken } from './access-token.ts';

/** What a mark names. Every field present must equal the token's; at least one is present. */
export interface RevocationMatch {
  /** The token's issuer, exactly (RFC 9493 `iss_sub`, `jwt_id`). */
  iss?: string;
  /** The token's subject (`sub`, or the issuer profile's subject claim). */
  sub?: string;
  /** The token's `sid` claim (OpenID Connect Front-Channel Logout §3, RFC 9068 leaves it open). */
  sid?: string;
  /** The token's client (`client_id`, `azp`, ...). */
  clientId?: string;
  /** The token's `jti`. */
  jti?: string;
  /** The token's `email` claim, compared case-insensitively (RFC 9493 `email`). */
  email?: string;
}

/** The fields, most specific first: a mark is filed under the first one it has. */
const FIELDS = ['jti', 'sid', 'clientId', 'sub', 'email'] as const;
type Field = (typeof FIELDS)[number];

export interface RevocationMark {
  match: Readonly<RevocationMatch>;
  /** Tokens issued at or before this time (epoch seconds) are refused. */
  before: number;
}

export interface RevocationListOptions {
  /** Marks held at most. */
  maxMarks: number;
  /** How long a mark is kept, ms: the longest token lifetime accepted. */
  retentionMs: number;
  now: () => number;
  /** Told when a mark is forgotten to make room (the caller logs it as an error). */
  onForget?: (mark: RevocationMark) => void;
}

/** The token facts marks are compared with, read once per token. */
interface TokenFacts {
  iss: string;
  sub: string | null;
  sid: string | undefined;
  clientId: string | null;
  jti: string | undefined;
  email: string | undefined;
  iat: number | undefined;
}

export class RevocationList {
  /** Marks by `field\0value` of their most specific field. */
  private readonly marks: LRUCache<string, RevocationMark[]>;
  private readonly retentionMs: number;
  private readonly now: () => number;
  /** After a forced forget: tokens issued at or before `upTo` are refused until `until` (ms). */
  private floor = { upTo: -Infinity, until: -Infinity };
  private forgotten = 0;
  private added = 0;

  constructor(options: RevocationListOptions) {
    this.retentionMs = options.retentionMs;
    this.now = options.now;
    this.marks = new LRUCache<string, RevocationMark[]>({
      maxSize: options.maxMarks,
      sizeCalculation: (list) => Math.max(1, list.length),
      ttl: options.retentionMs,
      ttlAutopurge: false,
      // Read the clock on every check (the default caches it for 1 ms on a real timer).
      ttlResolution: 0,
      perf: { now: options.now },
      dispose: (list, _key, reason) => {
        if (reason !== 'evict') return;
        for (const mark of list) {
          this.forgotten++;
          this.floor = { upTo: Math.max(this.floor.upTo, mark.before), until: this.now() + this.retentionMs };
          options.onForget?.(mark);
        }
      },
    });
  }

  /** Adds a mark (a later `before` for the same match wins) and returns it as kept. */
  add(match: RevocationMatch, before: number): RevocationMark {
    const clean = normalize(match);
    const field = FIELDS.find((f) => clean[f] !== undefined);
    if (field === undefined) throw new TypeError('a revocation mark must name a subject, session, client, token id or email');
    const key = `${field}\0${clean[field]}`;
    const list = [...(this.marks.peek(key) ?? [])];
    const same = list.findIndex((m) => sameMatch(m.match, clean));
    const mark: RevocationMark = { match: Object.freeze(clean), before: same === -1 ? before : Math.max(before, list[same]!.before) };
    if (same === -1) list.push(mark);
    else list[same] = mark;
    this.marks.set(key, list);
    this.added++;
    return mark;
  }

  /** Whether a mark for exactly `match` with this `before` or a later one is held (a replicated mark already applied). */
  holds(match: RevocationMatch, before: number): boolean {
    const clean = normalize(match);
    const field = FIELDS.find((f) => clean[f] !== undefined);
    if (field === undefined) return false;
    return (this.marks.peek(`${field}\0${clean[field]}`) ?? []).some((m) => sameMatch(m.match, clean) && m.before >= before);
  }

  /** Whether a verified token is revoked. O(1): at most five lookups, none while no mark is held. */
  revoked(token: VerifiedAccessToken): boolean {
    const floored = this.now() < this.floor.until;
    if (this.marks.size === 0 && !floored) return false;
    const facts = factsOf(token);
    if (floored && (facts.iat === undefined || facts.iat <= this.floor.upTo)) return true;
    for (const field of FIELDS) {
      const value = facts[field];
      if (value === undefined || value === null) continue;
      // peek: a lookup does not refresh a mark, so the one forgotten when full is the oldest set.
      const list = this.marks.peek(`${field}\0${value}`);
      if (list && list.some((mark) => markMatches(mark, facts))) return true;
    }
    return false;
  }

  /** A predicate for cache purges and stream closing: the tokens any of `marks` revokes. */
  static matcher(marks: readonly RevocationMark[]): (token: VerifiedAccessToken) => boolean {
    return (token) => {
      const facts = factsOf(token);
      return marks.some((mark) => markMatches(mark, facts));
    };
  }

  /** For /readyz. */
  status(): { marks: number; added: number; forgotten: number; refusingIssuedBefore: number | null } {
    this.marks.purgeStale();
    let marks = 0;
    for (const list of this.marks.values()) marks += list.length;
    return { marks, added: this.added, forgotten: this.forgotten, refusingIssuedBefore: this.now() < this.floor.until ? this.floor.upTo : null };
  }
}

function normalize(match: RevocationMatch): RevocationMatch {
  const out: RevocationMatch = {};
  for (const name of ['iss', ...FIELDS] as const) {
    const value = match[name];
    if (typeof value === 'string' && value !== '') out[name] = name === 'email' ? value.toLowerCase() : value;
  }
  return out;
}

function sameMatch(a: RevocationMatch, b: RevocationMatch): boolean {
  return a.iss === b.iss && FIELDS.every((f) => a[f] === b[f]);
}

function factsOf(token: VerifiedAccessToken): TokenFacts {
  const { claims } = token;
  const str = (name: string) => (typeof claims[name] === 'string' ? (claims[name] as string) : undefined);
  const iat = claims.iat;
  return {
    iss: token.issuer,
    sub: token.subject,
    sid: str('sid'),
    clientId: token.clientId,
    jti: str('jti'),
    email: str('email')?.toLowerCase(),
    iat: typeof iat === 'number' && Number.isFinite(iat) ? iat : undefined,
  };
}

function markMatches(mark: RevocationMark, facts: TokenFacts): boolean {
  const { match } = mark;
  if (facts.iat !== undefined && facts.iat > mark.before) return false;
  if (match.iss !== undefined && match.iss !== facts.iss) return false;
  for (const field of FIELDS as readonly Field[]) {
    const want = match[field];
    if (want !== undefined && want !== facts[field]) return false;
  }
  return true;
}
