/**
 * Property-based tests of the first readers of a request (issue 13 item 5a): the request target
 * (`parseTarget`, src/proxy/pipeline.ts) and the Authorization and DPoP fields
 * (`extractCredentials`, src/credentials/extract.ts). Each against a reference written here from
 * the specifications:
 *
 * - request target: origin-form (RFC 9112 §3.2.1) without controls or spaces (RFC 3986 §2), and
 *   no dot segment, encoded dot, slash or backslash, or backslash in the path (the rule of
 *   docs/architecture.md, "What the upstream sees"). Accepted targets keep their path: the WHATWG
 *   parser only percent-encodes what the URL Standard's path percent-encode set holds, and what
 *   the upstream is sent passes the check again;
 * - Authorization: `auth-scheme [ 1*SP credentials ]` (RFC 9110 §11.6.2) after OWS only, Bearer
 *   and DPoP with one b64token (RFC 6750 §2.1, RFC 9449 §7.1), WPT's credentials handed on as sent
 *   (wpt-02 §2), one Authorization field, no token in the query (RFC 6750 §2.3), a DPoP proof only
 *   with the DPoP scheme and exactly one (RFC 9449 §7.2, §4.3 step 1).
 *
 * Both parsers refuse only with AgentwardError. Seed and runs are fixed (test/helpers/property.ts).
 */
import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { AgentwardError } from '../../src/errors.ts';
import { extractCredentials, type ExtractOptions } from '../../src/credentials/extract.ts';
import { parseTarget } from '../../src/proxy/pipeline.ts';
import { nastyChar, nearMiss, outcome, runs } from '../helpers/property.ts';

// ---------------------------------------------------------------- request target

/** The URL Standard's path percent-encode set (§1.3): C0 controls, space, " # < > ? ` { } and above ~. */
function whatwgPath(path: string): string {
  let out = '';
  for (const c of path) {
    const code = c.codePointAt(0)!;
    out += code <= 0x20 || code > 0x7e || '"#<>?`{}'.includes(c) ? [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('') : c;
  }
  return out;
}

/** The reference: the code a target is refused with, or undefined when it is accepted. */
function referenceTarget(raw: string): 'ERR_BAD_REQUEST' | 'ERR_PATH_NOT_NORMALIZED' | undefined {
  if (!raw.startsWith('/') || [...raw].some((c) => c.charCodeAt(0) <= 0x20 || c === '\x7f')) return 'ERR_BAD_REQUEST';
  const path = raw.split(/[?#]/)[0]!;
  if (/%2e|%2f|%5c|\\/i.test(path) || path.split('/').some((segment) => segment === '.' || segment === '..')) return 'ERR_PATH_NOT_NORMALIZED';
  return undefined;
}

const SEGMENTS = ['mcp', 'a', 'tools', '', '.', '..', '...', '.a', '%2e', '%2E', '.%2e', '%2f', '%2F', '%5c', '\\', '%', '%zz', '%41', '~', '\u00e9', '|', '{x}', ';p=1', '@', ':', '#', '#f', '%00', '%252e'] as const;
const QUERIES = ['', '?', '?a=1', '?access_token=x', '?a=/../b', '?%2e', '?#', '?\u00e9'] as const;

const targetArb = nearMiss(
  fc.tuple(fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 5 }), fc.constantFrom(...QUERIES), fc.boolean()).map(([segments, query, leadingSlash]) => `${leadingSlash ? '/' : ''}${segments.join('/')}${query}`),
);

describe('parseTarget', () => {
  test('any string: a URL, or ERR_BAD_REQUEST / ERR_PATH_NOT_NORMALIZED', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 40 }).map((s) => `/${s}`)), (raw) => {
        const result = outcome(AgentwardError, () => parseTarget(raw));
        if (!result.ok) expect(['ERR_BAD_REQUEST', 'ERR_PATH_NOT_NORMALIZED']).toContain(result.error.code);
      }),
      runs(),
    );
  });

  test('generated and edited targets: refused exactly as the reference refuses; an accepted path is kept, and what is forwarded passes again', () => {
    fc.assert(
      fc.property(targetArb, (raw) => {
        const result = outcome(AgentwardError, () => parseTarget(raw));
        const expected = referenceTarget(raw);
        if (!result.ok) {
          // The WHATWG parser may refuse what the reference lets through; nothing else differs.
          expect(result.error.code).toBe(expected ?? 'ERR_BAD_REQUEST');
          return;
        }
        expect(expected).toBeUndefined();
        const url = result.value;
        // Nothing decoded or normalized (input-schema.ts `request.path`): only escaped, up to "?" or "#".
        expect(url.pathname).toBe(whatwgPath(raw.split(/[?#]/)[0]!));
        // The upstream is sent pathname + search (pipeline.ts): that target is accepted and means the same.
        const forwarded = parseTarget(`${url.pathname}${url.search}`);
        expect(forwarded.pathname).toBe(url.pathname);
        expect(forwarded.search).toBe(url.search);
      }),
      runs(2),
    );
  });

  test('regression: a tab or a trailing control cannot rebuild "%2f" or ".." behind the check', () => {
    for (const raw of ['/a%\t2f', '/a/.\t./b', '/a/..\x01', '/a/.\n.', '/a\r/b', '/a b']) {
      expect(outcome(AgentwardError, () => parseTarget(raw))).toMatchObject({ ok: false, error: { code: 'ERR_BAD_REQUEST' } });
    }
  });

  test('regression: a dot segment just before a fragment is refused, not normalized away', () => {
    for (const raw of ['/admin/..#x', '/.#/mcp', '/a/%2e#']) {
      expect(outcome(AgentwardError, () => parseTarget(raw))).toMatchObject({ ok: false, error: { code: 'ERR_PATH_NOT_NORMALIZED' } });
    }
  });
});

// ---------------------------------------------------------------- Authorization and DPoP

const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

interface Presented {
  authorization: string[] | undefined;
  dpop: string[] | undefined;
  query: string;
  dpopEnabled: boolean;
  wptEnabled: boolean;
}

type Read = { scheme: string | undefined; accessToken: string | undefined; wpt: string | undefined; dpopProof: string | undefined } | string;

/** The reference reading: what is presented, or the code of the refusal. */
function referenceRead(p: Presented): Read {
  const authorization = p.authorization ?? [];
  if (authorization.length > 1) return 'ERR_AUTHORIZATION_MULTIPLE';
  if (new URLSearchParams(p.query).has('access_token')) return 'ERR_TOKEN_IN_QUERY';
  let scheme: string | undefined;
  let accessToken: string | undefined;
  let wpt: string | undefined;
  if (authorization.length === 1) {
    // RFC 9110 §5.5: OWS (SP, HTAB) around a field value is not part of it.
    const value = authorization[0]!.replace(/^[ \t]+|[ \t]+$/g, '');
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: +(.*))?$/s.exec(value);
    if (!m || /[\r\n\u2028\u2029]/.test(value)) return 'ERR_AUTHORIZATION_MALFORMED';
    const name = m[1]!.toLowerCase();
    if (name === 'bearer' || (name === 'dpop' && p.dpopEnabled) || (name === 'wpt' && p.wptEnabled)) scheme = name;
    else return 'ERR_AUTHORIZATION_SCHEME';
    if (scheme === 'wpt') wpt = m[2] ?? '';
    else if (B64TOKEN.test(m[2] ?? '')) accessToken = m[2];
    else return 'ERR_AUTHORIZATION_MALFORMED';
  }
  const proofs = p.dpop ?? [];
  let dpopProof: string | undefined;
  if (proofs.length > 0) {
    if (scheme !== 'dpop') return p.dpopEnabled ? 'ERR_DPOP_WITH_BEARER' : 'ERR_AUTHORIZATION_SCHEME';
    if (proofs.length > 1) return 'ERR_DPOP_PROOF_MULTIPLE';
    dpopProof = proofs[0];
  } else if (scheme === 'dpop') {
    return 'ERR_DPOP_PROOF_MISSING';
  }
  return { scheme, accessToken, wpt, dpopProof };
}

function read(p: Presented): Read {
  const headersDistinct: Record<string, string[]> = {};
  if (p.authorization) headersDistinct.authorization = p.authorization;
  if (p.dpop) headersDistinct.dpop = p.dpop;
  const req = { headersDistinct, socket: {} } as unknown as IncomingMessage;
  const options: ExtractOptions = { accepted: { dpop: p.dpopEnabled, wpt: p.wptEnabled }, workload: undefined, trustedProxies: undefined };
  const result = outcome(AgentwardError, () => extractCredentials(req, new URLSearchParams(p.query), options));
  if (!result.ok) return result.error.code;
  const { scheme, accessToken, wpt, dpopProof } = result.value;
  return { scheme, accessToken, wpt, dpopProof };
}

const tokenArb = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 24 }).map((b) => Buffer.from(b).toString('base64url')),
  fc.uint8Array({ minLength: 1, maxLength: 24 }).map((b) => Buffer.from(b).toString('base64')),
  fc.constant('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln'),
  fc.constantFrom('a', '~', '=', 'a==', 'a=b', '-._~+/'),
);
const schemeArb = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'DPoP', 'dpop', 'WPT', 'wpt', 'Basic', 'Negotiate', 'Bearer,', '');
const authorizationValueArb = nearMiss(
  fc.tuple(fc.constantFrom('', ' ', '\t'), schemeArb, fc.constantFrom(' ', '  ', '\t', ''), tokenArb, fc.constantFrom('', ' ', '\t', '\u00a0')).map((parts) => parts.join('')),
);
const presentedArb: fc.Arbitrary<Presented> = fc.record({
  authorization: fc.option(fc.array(fc.oneof({ weight: 4, arbitrary: authorizationValueArb }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) }), { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 6 }),
  dpop: fc.option(fc.array(nearMiss(tokenArb), { minLength: 1, maxLength: 2 }), { nil: undefined }),
  query: fc.constantFrom('', 'a=1', 'access_token=x', 'access%5Ftoken=x', 'x=access_token', 'access_token'),
  dpopEnabled: fc.boolean(),
  wptEnabled: fc.boolean(),
});

describe('extractCredentials: Authorization and DPoP', () => {
  test('generated and edited fields: read exactly as the RFC 9110 / 6750 / 9449 reference reads them, refused only with AgentwardError', () => {
    fc.assert(
      fc.property(presentedArb, (p) => {
        expect(read(p)).toEqual(referenceRead(p));
      }),
      runs(2),
    );
  });

  test('round trip: "<scheme> <token>" gives back the token for every b64token', () => {
    fc.assert(
      fc.property(fc.constantFrom('Bearer', 'bEaReR', 'DPoP'), fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,40}={0,2}$/), nastyChar, (scheme, token, proof) => {
        const p: Presented = { authorization: [`${scheme} ${token}`], dpop: scheme === 'DPoP' ? [proof] : undefined, query: '', dpopEnabled: true, wptEnabled: false };
        expect(read(p)).toEqual({ scheme: scheme.toLowerCase(), accessToken: token, wpt: undefined, dpopProof: p.dpop?.[0] });
      }),
      runs(),
    );
  });

  test('regression: a token followed by U+00A0 (obs-text 0xA0) is malformed, not trimmed', () => {
    expect(read({ authorization: ['Bearer abc\u00a0'], dpop: undefined, query: '', dpopEnabled: false, wptEnabled: false })).toBe('ERR_AUTHORIZATION_MALFORMED');
  });
});
