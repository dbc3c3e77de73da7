/**
 * Workload Identifiers (draft-ietf-wimse-identifier-03) and their stricter SPIFFE form
 * (SPIFFE-ID §2.1–2.3). Negative cases ID-N01..ID-N15: docs/negative-cases.md.
 *
 * Consumers "MUST compare/authorize on the complete URI" (identifier-03 §4.3), so this parser
 * never normalizes: anything whose normalized form (RFC 3986 §6.2.2) differs from the text —
 * upper-case scheme or host, lower-case or needless percent-encoding, dot segments — is refused
 * rather than rewritten. WHATWG `new URL` is deliberately not used: it lower-cases hosts,
 * resolves dot segments, decodes `%2E`, reads `127.1` as an IP address and accepts `\` as `/`,
 * each of which would let two different strings pass as one identity. The split below is RFC 3986
 * Appendix B, after which every component is checked against its ABNF.
 */

/** Why an identifier was refused. Stable; the lead maps each to an error code. */
export const WORKLOAD_ID_REASONS = [
  // Generic WIMSE rules (identifier-03 §4.1, §4.3, §7)
  'not-string',
  'too-long',
  'relative',
  'scheme-uppercase',
  'no-authority',
  'userinfo',
  'port',
  'query',
  'fragment',
  'ip-authority',
  'authority-uppercase',
  'authority-char',
  'path-char',
  'percent-malformed',
  'percent-not-normalized',
  'dot-segment',
  'no-path',
  'untrusted-domain',
  // SPIFFE-ID §2.1–2.3, X509-SVID §5.2
  'spiffe-uppercase',
  'spiffe-char',
  'spiffe-percent',
  'spiffe-trust-domain-too-long',
  'spiffe-trailing-slash',
  'spiffe-empty-segment',
  'spiffe-dot-segment',
  'spiffe-no-path',
] as const;

export type WorkloadIdReason = (typeof WORKLOAD_ID_REASONS)[number];

/** Fixed, client-safe sentences. They never repeat the identifier (it may be 2 KiB of anything). */
const MESSAGES: Record<WorkloadIdReason, string> = {
  'not-string': 'The workload identifier is not a string.',
  'too-long': 'The workload identifier is longer than 2048 bytes (identifier-03 section 4.1).',
  relative: 'The workload identifier is not an absolute URI (identifier-03 section 4.1, RFC 3986 section 4.3).',
  'scheme-uppercase': 'The workload identifier scheme must be lower-case (RFC 3986 section 3.1).',
  'no-authority': 'The workload identifier has no trust domain (identifier-03 section 4.1).',
  userinfo: 'The workload identifier must not contain userinfo (identifier-03 section 4.1).',
  port: 'The workload identifier must not contain a port (identifier-03 section 4.1).',
  query: 'The workload identifier must not contain a query (identifier-03 section 4.1).',
  fragment: 'The workload identifier must not contain a fragment (identifier-03 section 4.1).',
  'ip-authority': 'The workload identifier trust domain must not be an IP address (identifier-03 section 4.3).',
  'authority-uppercase': 'The workload identifier trust domain must be lower-case (RFC 3986 section 6.2.2.1).',
  'authority-char': 'The workload identifier trust domain contains a character a host name cannot hold.',
  'path-char': 'The workload identifier path contains a character a URI path cannot hold (RFC 3986 section 3.3).',
  'percent-malformed': 'The workload identifier has a % that does not start a percent-encoded octet (RFC 3986 section 2.1).',
  'percent-not-normalized': 'The workload identifier has lower-case or unnecessary percent-encoding (RFC 3986 section 6.2.2).',
  'dot-segment': 'The workload identifier path has a . or .. segment, plain or percent-encoded (RFC 3986 section 5.2.4).',
  'no-path': 'The workload identifier must name a workload, not only a trust domain.',
  'untrusted-domain': 'The workload identifier trust domain is not trusted here (identifier-03 section 7.3).',
  'spiffe-uppercase': 'The SPIFFE ID trust domain must be lower-case (SPIFFE-ID section 2.1).',
  'spiffe-char': 'The SPIFFE ID holds a character outside [a-z0-9.-_] (trust domain) or [a-zA-Z0-9.-_] (path) (SPIFFE-ID sections 2.1, 2.2).',
  'spiffe-percent': 'The SPIFFE ID must not contain percent-encoding (SPIFFE-ID sections 2.1, 2.2).',
  'spiffe-trust-domain-too-long': 'The SPIFFE ID trust domain is longer than 255 characters (SPIFFE-ID section 2.3).',
  'spiffe-trailing-slash': 'The SPIFFE ID path must not end with / (SPIFFE-ID section 2.2).',
  'spiffe-empty-segment': 'The SPIFFE ID path must not contain an empty segment (SPIFFE-ID section 2.2).',
  'spiffe-dot-segment': 'The SPIFFE ID path must not contain a . or .. segment (SPIFFE-ID section 2.2).',
  'spiffe-no-path': 'This SPIFFE ID must have a path; the trust domain alone names no workload (X509-SVID section 5.2).',
};

/**
 * A refused workload identifier. Not an AgentwardError on purpose: the same identifier rule fails
 * a WIT `sub`, a WIC URI SAN or a config entry, each with its own code, so the caller maps
 * `reason` to the code that fits where the identifier came from.
 */
export class WorkloadIdError extends Error {
  readonly reason: WorkloadIdReason;

  constructor(reason: WorkloadIdReason) {
    super(MESSAGES[reason]);
    this.name = 'WorkloadIdError';
    this.reason = reason;
  }
}

export interface WorkloadId {
  /** The identifier exactly as given: the only value to compare or authorize on (identifier-03 §4.3). */
  readonly id: string;
  /** Lower-case scheme, e.g. `spiffe` or `wimse`. */
  readonly scheme: string;
  /** The authority (identifier-03 §4.1): what trust anchors are looked up by (§7.3). */
  readonly trustDomain: string;
  /** `''` or starting with `/`. Never interpret it without the trust domain (identifier-03 §4.3). */
  readonly path: string;
}

export interface ParseWorkloadIdOptions {
  /** When given, the trust domain must be one of these, compared exactly (identifier-03 §7.3, ID-N08). Default: any. */
  trustDomains?: ReadonlySet<string>;
  /** Require a path naming a workload, as an X509-SVID leaf does (X509-SVID §5.2, ID-N15). Default: false. */
  requirePath?: boolean;
}

/** identifier-03 §4.1: "SHOULD NOT exceed 2048 bytes"; SPIFFE-ID §2.3 makes it the maximum. */
export const MAX_WORKLOAD_ID_BYTES = 2048;
/** SPIFFE-ID §2.3. */
const MAX_SPIFFE_TRUST_DOMAIN = 255;

const SCHEME = /^[a-z][a-z0-9+.-]*$/;
const SCHEME_ANY_CASE = /^[A-Za-z][A-Za-z0-9+.-]*$/;
/** RFC 3986 reg-name without pct-encoded: unreserved / sub-delims. */
const REG_NAME_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=]*$/;
/** RFC 3986 §3.3 pchar plus "/", with "%" checked separately. */
const PATH_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;
const SPIFFE_TRUST_DOMAIN_CHAR = /^[a-z0-9._-]*$/;
const SPIFFE_SEGMENT_CHAR = /^[A-Za-z0-9._-]*$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const HEX = /^[0-9A-Fa-f]{2}$/;
/**
 * The last label of a host that WHATWG (and many resolvers) read as IPv4: decimal or hex digits
 * (`1.2.3.4`, `127.1`, `2130706433`, `0x7f000001`). No DNS top-level label is numeric (RFC 3696 §2).
 */
const NUMERIC_LABEL = /^(?:[0-9]+|0[xX][0-9A-Fa-f]*)$/;

/**
 * Parses and checks a Workload Identifier. Returns the identifier with its trust domain and path;
 * throws {@link WorkloadIdError} with the first rule it breaks.
 *
 * Order: size before any parsing (§4.1, §7.1: bounded work on hostile input), then the URI
 * components identifier-03 §4.1 forbids, then the trust domain and path syntax (SPIFFE-ID §2 for
 * `spiffe`, RFC 3986 plus the no-normalization rule otherwise), then `requirePath`, and the
 * allowlist last so a malformed identifier reports its syntax rather than an unknown domain.
 */
export function parseWorkloadId(value: string, options: ParseWorkloadIdOptions = {}): WorkloadId {
  if (typeof value !== 'string') throw new WorkloadIdError('not-string');
  // A UTF-8 encoding is never shorter than the UTF-16 length, so the cheap test comes first.
  if (value.length > MAX_WORKLOAD_ID_BYTES || Buffer.byteLength(value, 'utf8') > MAX_WORKLOAD_ID_BYTES) {
    throw new WorkloadIdError('too-long');
  }

  const { scheme, authority, path, query, fragment } = split(value);
  if (scheme === undefined || !SCHEME_ANY_CASE.test(scheme)) throw new WorkloadIdError('relative');
  // RFC 3986 §3.1: schemes are case-insensitive, canonical form lower-case. `SPIFFE://` must not
  // escape the SPIFFE rules nor compare unequal to the same identity.
  if (!SCHEME.test(scheme)) throw new WorkloadIdError('scheme-uppercase');
  if (authority === undefined || authority === '') throw new WorkloadIdError('no-authority');
  if (authority.includes('@')) throw new WorkloadIdError('userinfo');
  if (authority.startsWith('[')) throw new WorkloadIdError('ip-authority'); // IP-literal, RFC 3986 §3.2.2
  if (authority.includes(':')) throw new WorkloadIdError('port');
  if (query !== undefined) throw new WorkloadIdError('query');
  if (fragment !== undefined) throw new WorkloadIdError('fragment');

  const trustDomain = authority;
  if (scheme === 'spiffe') {
    checkSpiffeTrustDomain(trustDomain);
  } else {
    checkTrustDomain(trustDomain);
  }
  // identifier-03 §4.3: IP addresses "MUST NOT be used except for legacy compatibility"; no
  // legacy mode is offered.
  if (looksLikeIpv4(trustDomain)) throw new WorkloadIdError('ip-authority');

  if (scheme === 'spiffe') {
    checkSpiffePath(path);
    if (options.requirePath === true && path === '') throw new WorkloadIdError('spiffe-no-path');
  } else {
    checkPath(path);
    if (options.requirePath === true && (path === '' || path === '/')) throw new WorkloadIdError('no-path');
  }

  if (options.trustDomains !== undefined && !options.trustDomains.has(trustDomain)) {
    throw new WorkloadIdError('untrusted-domain');
  }
  return Object.freeze({ id: value, scheme, trustDomain, path });
}

interface Components {
  scheme: string | undefined;
  authority: string | undefined;
  path: string;
  query: string | undefined;
  fragment: string | undefined;
}

/** RFC 3986 Appendix B, by index rather than regular expression; it accepts every string. */
function split(value: string): Components {
  let rest = value;
  let fragment: string | undefined;
  let query: string | undefined;
  const hash = rest.indexOf('#');
  if (hash !== -1) {
    fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
  }
  const question = rest.indexOf('?');
  if (question !== -1) {
    query = rest.slice(question + 1);
    rest = rest.slice(0, question);
  }
  let scheme: string | undefined;
  const colon = rest.indexOf(':');
  const slash = rest.indexOf('/');
  if (colon > 0 && (slash === -1 || colon < slash)) {
    scheme = rest.slice(0, colon);
    rest = rest.slice(colon + 1);
  }
  let authority: string | undefined;
  if (rest.startsWith('//')) {
    const end = rest.indexOf('/', 2);
    authority = end === -1 ? rest.slice(2) : rest.slice(2, end);
    rest = end === -1 ? '' : rest.slice(end);
  }
  return { scheme, authority, path: rest, query, fragment };
}

/** SPIFFE-ID §2.1: lower-case letters, digits, dots, dashes, underscores; no percent-encoding. */
function checkSpiffeTrustDomain(trustDomain: string): void {
  if (trustDomain.includes('%')) throw new WorkloadIdError('spiffe-percent');
  if (/[A-Z]/.test(trustDomain)) throw new WorkloadIdError('spiffe-uppercase');
  if (!SPIFFE_TRUST_DOMAIN_CHAR.test(trustDomain)) throw new WorkloadIdError('spiffe-char');
  if (trustDomain.length > MAX_SPIFFE_TRUST_DOMAIN) throw new WorkloadIdError('spiffe-trust-domain-too-long');
}

/**
 * Any other scheme: an RFC 3986 reg-name, lower-case (its normalized form, §6.2.2.1) and without
 * percent-encoding, which no DNS name needs and which would let two spellings name one domain.
 */
function checkTrustDomain(trustDomain: string): void {
  if (!REG_NAME_CHAR.test(trustDomain)) throw new WorkloadIdError('authority-char');
  if (/[A-Z]/.test(trustDomain)) throw new WorkloadIdError('authority-uppercase');
}

function looksLikeIpv4(host: string): boolean {
  const labels = host.split('.');
  if (labels.length > 1 && labels[labels.length - 1] === '') labels.pop(); // FQDN trailing dot
  return NUMERIC_LABEL.test(labels[labels.length - 1]!);
}

/**
 * SPIFFE-ID §2.2: segments separated by `/`, each non-empty, not `.` or `..`, of `[a-zA-Z0-9.-_]`,
 * no percent-encoding, no trailing `/`. The path may be empty (the trust domain's own ID).
 */
function checkSpiffePath(path: string): void {
  if (path === '') return;
  if (path.includes('%')) throw new WorkloadIdError('spiffe-percent');
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === '') throw new WorkloadIdError(i === segments.length - 1 ? 'spiffe-trailing-slash' : 'spiffe-empty-segment');
    if (segment === '.' || segment === '..') throw new WorkloadIdError('spiffe-dot-segment');
    if (!SPIFFE_SEGMENT_CHAR.test(segment)) throw new WorkloadIdError('spiffe-char');
  }
}

/**
 * Any other scheme: RFC 3986 §3.3 path-abempty, already in normalized form. Dot segments (also
 * percent-encoded ones, which RFC 3986 §6.2.2.2 decodes before §5.2.4 removes them) and
 * percent-encoding that normalization would change (lower-case hex, §6.2.2.1; encoded unreserved
 * characters, §6.2.2.2) are refused, because a consumer that normalizes would see another
 * identifier than one that compares text. Empty segments and a trailing `/` survive normalization
 * and are kept.
 */
function checkPath(path: string): void {
  if (!PATH_CHAR.test(path)) throw new WorkloadIdError('path-char');
  for (const segment of path.split('/')) {
    const decodedDots = segment.replace(/%2e/gi, '.');
    if (decodedDots === '.' || decodedDots === '..') throw new WorkloadIdError('dot-segment');
  }
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hex = path.slice(i + 1, i + 3);
    if (!HEX.test(hex)) throw new WorkloadIdError('percent-malformed');
    if (hex !== hex.toUpperCase()) throw new WorkloadIdError('percent-not-normalized');
    if (UNRESERVED.test(String.fromCharCode(Number.parseInt(hex, 16)))) throw new WorkloadIdError('percent-not-normalized');
  }
}
