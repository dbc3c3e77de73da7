/**
 * Workload Identifier parsing (ID-Nxx in docs/negative-cases.md): the identifier-03 §4.1/§4.3/§7 rules,
 * the SPIFFE-ID §2.1–2.3 rules, one test per negative case ID-N01..ID-N15, and the hardening
 * cases (no normalization may make two strings one identity).
 */
import { describe, expect, test } from 'vitest';
import {
  MAX_WORKLOAD_ID_BYTES,
  parseWorkloadId,
  WORKLOAD_ID_REASONS,
  WorkloadIdError,
  type ParseWorkloadIdOptions,
  type WorkloadIdReason,
} from '../../src/identity/workload-id.ts';

function expectReason(value: string, reason: WorkloadIdReason, options?: ParseWorkloadIdOptions): WorkloadIdError {
  let caught: unknown;
  try {
    parseWorkloadId(value, options);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(WorkloadIdError);
  const error = caught as WorkloadIdError;
  expect(error.reason).toBe(reason);
  expect(error.name).toBe('WorkloadIdError');
  return error;
}

/** `prefix` followed by `a`s and `/` up to exactly `bytes` bytes. */
function idOfLength(prefix: string, bytes: number): string {
  let path = '';
  while (prefix.length + path.length < bytes) path += path.length % 64 === 63 ? '/' : 'a';
  const id = prefix + path;
  // Never end on a slash (SPIFFE trailing slash).
  return id.endsWith('/') ? `${id.slice(0, -2)}bb` : id;
}

describe('accepted identifiers', () => {
  test('a SPIFFE ID', () => {
    expect(parseWorkloadId('spiffe://example.org/ns/prod/sa/api')).toEqual({
      id: 'spiffe://example.org/ns/prod/sa/api',
      scheme: 'spiffe',
      trustDomain: 'example.org',
      path: '/ns/prod/sa/api',
    });
  });

  test('a wimse identifier (identifier-03 §4.4)', () => {
    expect(parseWorkloadId('wimse://example.com/specific-workload')).toEqual({
      id: 'wimse://example.com/specific-workload',
      scheme: 'wimse',
      trustDomain: 'example.com',
      path: '/specific-workload',
    });
  });

  test('the result is frozen and keeps the input unchanged', () => {
    const id = 'wimse://example.com/a%2Fb/c';
    const parsed = parseWorkloadId(id);
    expect(parsed.id).toBe(id);
    expect(parsed.path).toBe('/a%2Fb/c');
    expect(Object.isFrozen(parsed)).toBe(true);
  });

  test('a SPIFFE ID of the trust domain alone is valid when no path is required', () => {
    expect(parseWorkloadId('spiffe://example.org')).toMatchObject({ trustDomain: 'example.org', path: '' });
  });

  test('SPIFFE trust domain and path use every allowed character class', () => {
    expect(parseWorkloadId('spiffe://my_td-1.example.org/A.b-C_9/x', { requirePath: true }).path).toBe('/A.b-C_9/x');
  });

  test('a trusted trust domain passes the allowlist', () => {
    const trustDomains = new Set(['example.org', 'example.com']);
    expect(parseWorkloadId('spiffe://example.org/a', { trustDomains }).trustDomain).toBe('example.org');
    expect(parseWorkloadId('wimse://example.com/a', { trustDomains }).trustDomain).toBe('example.com');
  });

  test('other schemes follow the generic rules: sub-delims, ":", "@", "~", upper-case %XX of reserved octets', () => {
    const id = "urn-like+x://td.example/a:b@c/~d/!$&'()*+,;=/%2F%C3%A9";
    expect(parseWorkloadId(id).path).toBe("/a:b@c/~d/!$&'()*+,;=/%2F%C3%A9");
  });

  test('generic empty segments and a trailing slash survive normalization and are kept', () => {
    expect(parseWorkloadId('wimse://example.com/a//b/').path).toBe('/a//b/');
  });

  test('a 2048-byte identifier is accepted', () => {
    const spiffe = idOfLength('spiffe://example.org/', MAX_WORKLOAD_ID_BYTES);
    expect(Buffer.byteLength(spiffe)).toBe(2048);
    expect(parseWorkloadId(spiffe).id).toBe(spiffe);
    const wimse = idOfLength('wimse://example.com/', 2048);
    expect(parseWorkloadId(wimse).id).toBe(wimse);
  });

  test('a 255-character SPIFFE trust domain is accepted', () => {
    const td = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`;
    expect(td.length).toBe(255);
    expect(parseWorkloadId(`spiffe://${td}/x`).trustDomain).toBe(td);
  });
});

describe('negative cases (identifier-03 §4, SPIFFE-ID §2)', () => {
  test('ID-N01 query', () => {
    expectReason('wimse://example.org/a?b=c', 'query');
    expectReason('wimse://example.org/a?', 'query');
  });

  test('ID-N02 fragment', () => {
    expectReason('wimse://example.org/a#b', 'fragment');
    expectReason('spiffe://example.org/a#', 'fragment');
  });

  test('ID-N03 userinfo', () => {
    expectReason('wimse://u@example.org/a', 'userinfo');
    expectReason('spiffe://u:p@example.org/a', 'userinfo');
    expectReason('wimse://@example.org/a', 'userinfo');
  });

  test('ID-N04 port', () => {
    expectReason('wimse://example.org:8443/a', 'port');
    expectReason('spiffe://example.org:443/a', 'port');
    expectReason('wimse://example.org:/a', 'port');
  });

  test('ID-N05 empty authority', () => {
    expectReason('spiffe:///x', 'no-authority');
    expectReason('wimse://', 'no-authority');
    expectReason('wimse:example.org/x', 'no-authority');
    expectReason('spiffe:/example.org/x', 'no-authority');
  });

  test('ID-N06 relative URI / no scheme', () => {
    expectReason('/ns/prod/sa/api', 'relative');
    expectReason('//example.org/a', 'relative');
    expectReason('example.org/a', 'relative');
    expectReason('', 'relative');
    expectReason(':/x', 'relative');
    expectReason('1wimse://example.org/a', 'relative');
    expectReason(' spiffe://example.org/a', 'relative');
  });

  test('ID-N07 more than 2048 bytes', () => {
    expectReason(idOfLength('spiffe://example.org/', 2049), 'too-long');
    expectReason(idOfLength('wimse://example.com/', 2049), 'too-long');
  });

  test('ID-N08 trust domain not in the allowlist', () => {
    const trustDomains = new Set(['example.org']);
    expectReason('spiffe://evil.example/ns/prod', 'untrusted-domain', { trustDomains });
    expectReason('wimse://example.com/a', 'untrusted-domain', { trustDomains });
    // Exact comparison: a sub-domain or a trailing dot is another trust domain.
    expectReason('spiffe://a.example.org/x', 'untrusted-domain', { trustDomains });
    expectReason('spiffe://example.org./x', 'untrusted-domain', { trustDomains });
    expectReason('spiffe://example.org/x', 'untrusted-domain', { trustDomains: new Set() });
  });

  test('ID-N09 upper-case SPIFFE trust domain', () => {
    expectReason('spiffe://Example.org/a', 'spiffe-uppercase');
    expectReason('spiffe://EXAMPLE.ORG/a', 'spiffe-uppercase');
  });

  test('ID-N10 trailing slash in a SPIFFE ID', () => {
    expectReason('spiffe://example.org/a/', 'spiffe-trailing-slash');
    expectReason('spiffe://example.org/', 'spiffe-trailing-slash');
  });

  test('ID-N11 empty SPIFFE path segment', () => {
    expectReason('spiffe://example.org/a//b', 'spiffe-empty-segment');
    expectReason('spiffe://example.org//a', 'spiffe-empty-segment');
  });

  test('ID-N12 dot segments in a SPIFFE ID', () => {
    expectReason('spiffe://example.org/a/../b', 'spiffe-dot-segment');
    expectReason('spiffe://example.org/a/./b', 'spiffe-dot-segment');
    expectReason('spiffe://example.org/..', 'spiffe-dot-segment');
  });

  test('ID-N13 percent-encoding in a SPIFFE ID', () => {
    expectReason('spiffe://example.org/a%20b', 'spiffe-percent');
    expectReason('spiffe://example.org/%2E%2E/x', 'spiffe-percent');
    expectReason('spiffe://exa%6Dple.org/a', 'spiffe-percent');
  });

  test('ID-N14 character outside [a-zA-Z0-9.-_] in a SPIFFE path', () => {
    expectReason('spiffe://example.org/~user', 'spiffe-char');
    expectReason('spiffe://example.org/a:b', 'spiffe-char');
    expectReason('spiffe://example.org/a b', 'spiffe-char');
    expectReason('spiffe://example.org/caf\u00e9', 'spiffe-char');
    expectReason('spiffe://exa~mple.org/a', 'spiffe-char');
  });

  test('ID-N15 X509-SVID leaf whose SPIFFE ID has no path', () => {
    expectReason('spiffe://example.org', 'spiffe-no-path', { requirePath: true });
  });
});

describe('generic rules beyond the listed cases', () => {
  test('an IP address is not a trust domain (identifier-03 §4.3; no legacy mode)', () => {
    expectReason('wimse://192.0.2.1/a', 'ip-authority');
    expectReason('spiffe://192.0.2.1/a', 'ip-authority');
    expectReason('wimse://[2001:db8::1]/a', 'ip-authority');
    expectReason('wimse://[2001:db8::1]:8443/a', 'ip-authority');
    // Shapes WHATWG URL and inet_aton read as IPv4.
    expectReason('spiffe://127.1/a', 'ip-authority');
    expectReason('spiffe://2130706433/a', 'ip-authority');
    expectReason('wimse://0x7f000001/a', 'ip-authority');
    expectReason('spiffe://192.0.2.1./a', 'ip-authority');
  });

  test('requirePath applies to other schemes too', () => {
    expectReason('wimse://example.com', 'no-path', { requirePath: true });
    expectReason('wimse://example.com/', 'no-path', { requirePath: true });
    expect(parseWorkloadId('wimse://example.com').path).toBe('');
  });

  test('a 255-plus SPIFFE trust domain is refused (SPIFFE-ID §2.3)', () => {
    expectReason(`spiffe://${'a'.repeat(256)}/x`, 'spiffe-trust-domain-too-long');
  });

  test('a generic trust domain holds reg-name characters only, without percent-encoding', () => {
    expectReason('wimse://exa%6Dple.org/a', 'authority-char');
    expectReason('wimse://exa mple.org/a', 'authority-char');
    expectReason('wimse://ex\\ample.org/a', 'authority-char');
  });

  test('a generic path holds RFC 3986 pchar only', () => {
    expectReason('wimse://example.com/a b', 'path-char');
    expectReason('wimse://example.com/a\\b', 'path-char');
    expectReason('wimse://example.com/caf\u00e9', 'path-char');
    expectReason('wimse://example.com/a\u0000', 'path-char');
    expectReason('wimse://example.com/<x>', 'path-char');
  });

  test('length is counted in UTF-8 bytes and checked before parsing', () => {
    // 1000 two-byte characters: 1020 UTF-16 units but 2020+ bytes. Parsing would say path-char.
    expectReason(`wimse://example.com/${'\u00e9'.repeat(1015)}`, 'too-long');
    // A huge hostile value full of structure is refused for its length, before any parsing
    // (a parse would report query or fragment first).
    expectReason(`spiffe://example.org/${'a?#@:'.repeat(2_000_000)}`, 'too-long');
  });

  test('a non-string is refused (an unverified sub claim may be anything)', () => {
    expectReason(42 as unknown as string, 'not-string');
    expectReason(undefined as unknown as string, 'not-string');
  });
});

describe('hardening: nothing a normalizer would change is accepted', () => {
  test('an upper-case scheme is refused, so SPIFFE:// cannot dodge the SPIFFE rules', () => {
    expectReason('SPIFFE://example.org/a', 'scheme-uppercase');
    expectReason('Wimse://example.com/a', 'scheme-uppercase');
  });

  test('an upper-case generic trust domain is refused (RFC 3986 §6.2.2.1)', () => {
    expectReason('wimse://Example.com/a', 'authority-uppercase');
  });

  test('percent-encoding of an unreserved character is refused (%61)', () => {
    expectReason('wimse://example.com/%61', 'percent-not-normalized');
    expectReason('wimse://example.com/a%7E', 'percent-not-normalized');
    expectReason('wimse://example.com/a%2D', 'percent-not-normalized');
  });

  test('lower-case hex in percent-encoding is refused (%2f)', () => {
    expectReason('wimse://example.com/a%2fb', 'percent-not-normalized');
    expectReason('wimse://example.com/%c3%a9', 'percent-not-normalized');
  });

  test('a stray or truncated % is refused', () => {
    expectReason('wimse://example.com/100%', 'percent-malformed');
    expectReason('wimse://example.com/%2', 'percent-malformed');
    expectReason('wimse://example.com/%zz', 'percent-malformed');
  });

  test('dot segments, plain or percent-encoded, are refused for every scheme', () => {
    expectReason('wimse://example.com/a/../admin', 'dot-segment');
    expectReason('wimse://example.com/a/./b', 'dot-segment');
    expectReason('wimse://example.com/..', 'dot-segment');
    expectReason('wimse://example.com/a/%2E%2E/admin', 'dot-segment');
    expectReason('wimse://example.com/a/%2e./admin', 'dot-segment');
    expectReason('wimse://example.com/a/.%2E', 'dot-segment');
    expectReason('wimse://example.com/%2E', 'dot-segment');
    expectReason('spiffe://example.org/a/%2E%2E/admin', 'spiffe-percent');
  });

  test('segments that merely contain dots are fine', () => {
    expect(parseWorkloadId('spiffe://example.org/.../a.b/..c').path).toBe('/.../a.b/..c');
    expect(parseWorkloadId('wimse://example.com/.../..x').path).toBe('/.../..x');
  });

  test('a backslash is never read as a slash', () => {
    expectReason('spiffe://example.org\\evil/a', 'spiffe-char');
    expectReason('spiffe://example.org/a\\..\\b', 'spiffe-char');
  });
});

describe('WorkloadIdError', () => {
  test('every reason has a fixed message that does not echo the identifier', () => {
    for (const reason of WORKLOAD_ID_REASONS) {
      const error = new WorkloadIdError(reason);
      expect(error.message.length).toBeGreaterThan(10);
      expect(error.reason).toBe(reason);
    }
    const error = expectReason('wimse://secret-looking.example:1/a', 'port');
    expect(error.message).not.toContain('secret-looking');
  });

  test('reasons are unique', () => {
    expect(new Set(WORKLOAD_ID_REASONS).size).toBe(WORKLOAD_ID_REASONS.length);
  });
});
