/**
 * Property-based tests of the WIMSE HTTP Message Signature reader (src/credentials/http-signature.ts),
 * issue 13 item 5a: the `Signature-Input` and `Signature` structured fields (RFC 9421 §4.1, §4.2;
 * RFC 9651 Dictionaries) and `Content-Digest` (RFC 9530 §2). The strict reference for the fields
 * is the `structured-headers` parser and serializer (RFC 9651 §4), for the signature WebCrypto.
 *
 * - any `Signature-Input` (generated Dictionaries, then edited, and arbitrary text): the signature
 *   is found exactly where the reference parses the field and finds one member tagged
 *   wimse-workload-to-workload among inner lists; refusals are ERR_HSIG_MALFORMED / _MULTIPLE;
 * - round trip: a Dictionary serialized and read back selects the same member, and the signature
 *   base built from the parsed member is the one built from the member the signer held;
 * - signed requests, then edited (a field, the method, path, query or body): `verify` refuses only
 *   with ERR_HSIG_*, and accepts only when the edit left every signed thing as it was;
 * - `Content-Digest` (any members, "constructor" among them, signed with the request): accepted
 *   exactly when the RFC 9530 reference accepts.
 *
 * Seed and runs are fixed (test/helpers/property.ts); scripts/property-long-run.sh runs them long.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { generateKeyPair, type CryptoKey } from 'jose';
import { Token, isInnerList, parseDictionary, serializeDictionary, serializeInnerList, type BareItem, type Dictionary, type InnerList, type Item, type Parameters } from 'structured-headers';
import { beforeAll, describe, expect, test } from 'vitest';
import { AgentwardError } from '../../src/errors.ts';
import { HttpSignatureVerifier, WIMSE_TAG, findWimseSignature, signatureBase, type SignedRequest } from '../../src/credentials/http-signature.ts';
import { signRequest, toSignedRequest } from '../helpers/http-signature.ts';
import { PROTOTYPE_NAMES, edits, nearMiss, outcome, outcomeAsync, runs } from '../helpers/property.ts';

const TARGET = 'https://tools.example.com/mcp';
const NOW = 1_800_000_000;
const WIT = 'eyJhbGciOiJFUzI1NiIsInR5cCI6IndpdCtqd3QifQ.eyJzdWIiOiJ3aW1zZTovL2V4YW1wbGUuY29tL2FnZW50In0.c2ln';

/** The workload's key pair: the private key signs, the public one (the WIT's `cnf.jwk`) verifies. */
let key: CryptoKey;
let workloadKey: { key: CryptoKey; alg: string };
beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  workloadKey = { key: pair.publicKey, alg: 'ES256' };
});

/** A Byte Sequence item's value: an ArrayBuffer of exactly these bytes. */
const bytes = (b: Uint8Array): ArrayBuffer => b.slice().buffer as ArrayBuffer;

const verifier = () => new HttpSignatureVerifier({ audiences: new Set(), clockSkewSeconds: 5, maxLifetimeSeconds: 300, replayCacheSize: 100, now: () => NOW * 1000 });

// ---------------------------------------------------------------- generated structured fields

const keyArb = fc.oneof(fc.constantFrom('wimse', 'sig1', 'a', '*', 'tag', ...PROTOTYPE_NAMES.filter((n) => /^[a-z*][a-z0-9_.*-]*$/.test(n))), fc.stringMatching(/^[a-z*][a-z0-9_.*-]{0,6}$/));
const bareItemArb: fc.Arbitrary<BareItem> = fc.oneof(
  fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }),
  fc.integer({ min: -999_999, max: 999_999 }).map((n) => n / 1000 + 0.5),
  fc.string({ maxLength: 12 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  fc.boolean(),
  fc.stringMatching(/^[A-Za-z*][A-Za-z0-9!#$%&'*+.^_`|~:/-]{0,8}$/).map((t) => new Token(t)),
  fc.uint8Array({ maxLength: 16 }).map(bytes),
  fc.constantFrom(WIMSE_TAG, TARGET),
);
const paramsArb: fc.Arbitrary<Parameters> = fc
  .array(fc.tuple(fc.oneof(keyArb, fc.constantFrom('tag', 'created', 'expires', 'nonce', 'wimse-aud', 'keyid', 'alg')), bareItemArb), { maxLength: 4 })
  .map((entries) => new Map(entries));
const componentArb = fc.oneof(fc.constantFrom('@method', '@path', '@query', '@authority', '@target-uri', 'content-type', 'content-digest', 'authorization', 'workload-identity-token', 'Content-Type', 'x y'), fc.string({ maxLength: 6 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')));
const innerListArb: fc.Arbitrary<InnerList> = fc.tuple(
  fc.array(fc.tuple(fc.oneof({ weight: 5, arbitrary: componentArb }, { weight: 1, arbitrary: bareItemArb }), fc.oneof({ weight: 5, arbitrary: fc.constant(new Map()) }, { weight: 1, arbitrary: paramsArb })), { maxLength: 5 }) as fc.Arbitrary<Item[]>,
  fc.tuple(paramsArb, fc.constantFrom<BareItem | undefined>(WIMSE_TAG, WIMSE_TAG, 'other', new Token('wimse-workload-to-workload'), undefined)).map(([params, tag]) => {
    if (tag !== undefined) params.set('tag', tag);
    return params;
  }),
);
const memberArb: fc.Arbitrary<InnerList | Item> = fc.oneof({ weight: 5, arbitrary: innerListArb }, { weight: 1, arbitrary: fc.tuple(bareItemArb, paramsArb) });
const dictionaryArb: fc.Arbitrary<Dictionary> = fc.array(fc.tuple(keyArb, memberArb), { minLength: 1, maxLength: 3 }).map((entries) => new Map(entries));
const fieldArb = fc.oneof(
  { weight: 3, arbitrary: dictionaryArb.map((d) => serializeDictionary(d)) },
  { weight: 3, arbitrary: nearMiss(dictionaryArb.map((d) => serializeDictionary(d))) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);

/** The reference selection: the label of the one tagged inner list, undefined for none, or a refusal. */
function referenceSelect(value: string): string | undefined | 'refused' {
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionary(value);
  } catch {
    return 'refused';
  }
  const members = [...dictionary];
  if (members.some(([, m]) => !isInnerList(m))) return 'refused';
  const tagged = members.filter(([, m]) => (m as InnerList)[1].get('tag') === WIMSE_TAG);
  return tagged.length > 1 ? 'refused' : tagged[0]?.[0];
}

describe('Signature-Input', () => {
  test('generated, edited and arbitrary fields: selected exactly as structured-headers reads them; refused only with ERR_HSIG_MALFORMED or ERR_HSIG_MULTIPLE', () => {
    fc.assert(
      fc.property(fc.array(fieldArb, { minLength: 1, maxLength: 2 }), (lines) => {
        const result = outcome(AgentwardError, () => findWimseSignature({ 'signature-input': lines }));
        // RFC 9421 §2.1 / RFC 9110 §5.3: field lines are combined with ", ", each without its surrounding OWS.
        const expected = referenceSelect(lines.map((l) => l.replace(/^[ \t]+|[ \t]+$/g, '')).join(', '));
        if (!result.ok) {
          expect(['ERR_HSIG_MALFORMED', 'ERR_HSIG_MULTIPLE']).toContain(result.error.code);
          expect(expected).toBe('refused');
        } else {
          expect(result.value?.label).toBe(expected);
        }
      }),
      runs(2),
    );
  });

  test('round trip: a serialized Dictionary selects the member it was built with, and its signature base is the signer\'s', () => {
    const request: SignedRequest = { method: 'POST', path: '/mcp', query: '?', headers: { 'workload-identity-token': [WIT], 'content-type': ['application/json'] }, body: undefined };
    fc.assert(
      fc.property(dictionaryArb, (dictionary) => {
        const tagged = [...dictionary].filter(([, m]) => isInnerList(m) && m[1].get('tag') === WIMSE_TAG);
        fc.pre(tagged.length === 1 && [...dictionary.values()].every(isInnerList));
        const [label, input] = tagged[0]! as [string, InnerList];
        const field = serializeDictionary(dictionary);
        expect(findWimseSignature({ 'signature-input': [field] })).toEqual({ label });
        const parsed = parseDictionary(field).get(label) as InnerList;
        expect(serializeInnerList(parsed)).toBe(serializeInnerList(input));
        const signer = outcome(AgentwardError, () => signatureBase(request, input));
        const verifier = outcome(AgentwardError, () => signatureBase(request, parsed));
        expect(verifier.ok).toBe(signer.ok);
        if (signer.ok && verifier.ok) expect(verifier.value.equals(signer.value)).toBe(true);
      }),
      { ...runs(), maxSkipsPerRun: 1000 },
    );
  });
});

// ---------------------------------------------------------------- signed requests, then edited

interface Signed {
  request: SignedRequest;
  headers: Record<string, string>;
  label: string;
}

const requestArb = fc.record({
  method: fc.constantFrom('POST', 'GET', 'DELETE'),
  url: fc.constantFrom('/mcp', '/mcp?a=1', '/mcp?', '/a/b'),
  body: fc.option(fc.uint8Array({ maxLength: 32 }), { nil: undefined }),
  contentType: fc.boolean(),
  authorization: fc.boolean(),
  label: fc.constantFrom('wimse', 'sig', 'constructor'),
});

async function sign(r: typeof requestArb extends fc.Arbitrary<infer T> ? T : never): Promise<Signed> {
  const headers: Record<string, string> = { 'workload-identity-token': WIT };
  if (r.contentType) headers['content-type'] = 'application/json';
  if (r.authorization) headers.authorization = 'Bearer abc';
  const added = await signRequest({ method: r.method, url: r.url, headers, body: r.body, key, alg: 'ES256', aud: TARGET, label: r.label, created: NOW });
  const all = { ...headers, ...added } as Record<string, string>;
  return { request: toSignedRequest({ method: r.method, url: r.url, headers: all, body: r.body }), headers: all, label: r.label };
}

type Edit = { part: 'header'; name: string; edit: (value: string) => string } | { part: 'method' | 'path' | 'query'; edit: (value: string) => string } | { part: 'body'; bytes: Uint8Array } | { part: 'none' };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.constant<Edit>({ part: 'none' }),
  fc.tuple(fc.constantFrom('signature-input', 'signature', 'content-digest', 'content-type', 'authorization', 'workload-identity-token'), edits).map(([name, edit]): Edit => ({ part: 'header', name, edit })),
  fc.tuple(fc.constantFrom<'method' | 'path' | 'query'>('method', 'path', 'query'), edits).map(([part, edit]): Edit => ({ part, edit })),
  fc.uint8Array({ maxLength: 8 }).map((bytes): Edit => ({ part: 'body', bytes })),
);

function applyEdit(signed: Signed, edit: Edit): SignedRequest {
  const r = signed.request;
  const headers = { ...r.headers };
  switch (edit.part) {
    case 'none':
      return r;
    case 'header': {
      const value = headers[edit.name]?.[0];
      if (value === undefined) headers[edit.name] = [edit.edit('')];
      else headers[edit.name] = [edit.edit(value)];
      return { ...r, headers };
    }
    case 'body':
      return { ...r, body: Buffer.concat([r.body ?? Buffer.alloc(0), edit.bytes]) };
    default:
      return { ...r, [edit.part]: edit.edit(r[edit.part]) };
  }
}

/** Whether everything the signature signed reads the same in `edited` as in `original` (by the references). */
function signsTheSame(original: SignedRequest, edited: SignedRequest, label: string): boolean {
  // RFC 9421 §2.1: each line without surrounding whitespace, obs-fold read as one space, lines joined by ", ".
  const field = (request: SignedRequest, name: string): string | undefined => request.headers[name]?.map((l) => l.replace(/\r?\n[ \t]+/g, ' ').replace(/^[ \t]+|[ \t]+$/g, '')).join(', ');
  const member = (request: SignedRequest, name: string): string | undefined => {
    try {
      const m = parseDictionary(field(request, name) ?? '').get(label);
      return m === undefined ? undefined : isInnerList(m) ? serializeInnerList(m) : Buffer.from(m[0] as ArrayBuffer).toString('hex');
    } catch {
      return undefined;
    }
  };
  const digest = (request: SignedRequest): string => createHash('sha256').update(request.body ?? Buffer.alloc(0)).digest('hex');
  return (
    member(edited, 'signature-input') === member(original, 'signature-input') &&
    member(edited, 'signature') === member(original, 'signature') &&
    ['content-type', 'content-digest', 'authorization', 'workload-identity-token'].every((name) => field(edited, name) === field(original, name)) &&
    edited.method === original.method &&
    (edited.path || '/') === (original.path || '/') &&
    (edited.query.startsWith('?') ? edited.query : `?${edited.query}`) === original.query &&
    digest(edited) === digest(original)
  );
}

describe('HttpSignatureVerifier.verify', () => {
  test('signed, then edited requests: refused only with ERR_HSIG_*, accepted only when every signed part reads the same', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, editArb, async (r, edit) => {
        const signed = await sign(r);
        const edited = applyEdit(signed, edit);
        const result = await outcomeAsync(AgentwardError, () => verifier().verify(edited, workloadKey, TARGET));
        if (!result.ok) {
          expect(result.error.code).toMatch(/^ERR_HSIG_/);
          expect(edit.part === 'none', 'the unedited request is accepted').toBe(false);
        } else {
          expect(signsTheSame(signed.request, edited, signed.label)).toBe(true);
        }
      }),
      runs(),
    );
  });
});

// ---------------------------------------------------------------- Content-Digest

const ALGORITHMS = { 'sha-256': 'sha256', 'sha-512': 'sha512' } as const;

/** RFC 9530 §2 as the profile reads it: every sha-256 / sha-512 member matches, and one is there. */
function referenceDigest(value: string, body: Uint8Array): boolean {
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionary(value);
  } catch {
    return false;
  }
  let recognised = 0;
  for (const [name, member] of dictionary) {
    if (name !== 'sha-256' && name !== 'sha-512') continue;
    if (isInnerList(member) || !(member[0] instanceof ArrayBuffer)) return false;
    if (!Buffer.from(member[0]).equals(createHash(ALGORITHMS[name]).update(body).digest())) return false;
    recognised++;
  }
  return recognised > 0;
}

const digestMemberArb = (body: Uint8Array): fc.Arbitrary<[string, Item | InnerList]> =>
  fc.tuple(
    fc.constantFrom('sha-256', 'sha-256', 'sha-512', 'sha', 'md5', 'unixsum', 'constructor', 'id-sha-256'),
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('sha256', 'sha512').map((a): Item => [bytes(createHash(a).update(body).digest()), new Map()]) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b): Item => [bytes(b), new Map()]) },
      { weight: 1, arbitrary: bareItemArb.map((v): Item => [v, new Map()]) },
      { weight: 1, arbitrary: innerListArb },
    ),
  );

describe('Content-Digest', () => {
  test('any members, signed with the request: accepted exactly when the RFC 9530 reference accepts, else ERR_HSIG_DIGEST', async () => {
    const caseArb = fc.uint8Array({ maxLength: 32 }).chain((body) =>
      fc.tuple(fc.constant(body), fc.oneof({ weight: 3, arbitrary: fc.array(digestMemberArb(body), { minLength: 1, maxLength: 3 }).map((m) => serializeDictionary(new Map(m))) }, { weight: 1, arbitrary: nearMiss(fc.constant(`sha-256=:${createHash('sha256').update(body).digest('base64')}:`)) })),
    );
    await fc.assert(
      fc.asyncProperty(caseArb, async ([body, digest]) => {
        const headers = { 'workload-identity-token': WIT, 'content-digest': digest };
        const added = await outcomeAsync(AgentwardError, () => signRequest({ method: 'POST', url: '/mcp', headers, body, key, alg: 'ES256', aud: TARGET, created: NOW }));
        // A value with a line break or a character above U+00FF cannot be signed (signature base, RFC 9421 §2.5).
        if (!added.ok) {
          expect(added.error.code).toBe('ERR_HSIG_MALFORMED');
          return;
        }
        const request = toSignedRequest({ method: 'POST', url: '/mcp', headers: { ...headers, ...added.value }, body });
        const result = await outcomeAsync(AgentwardError, () => verifier().verify(request, workloadKey, TARGET));
        const trimmed = digest.replace(/^[ \t]+|[ \t]+$/g, '');
        expect(result.ok ? 'accepted' : result.error.code).toBe(referenceDigest(trimmed, body) ? 'accepted' : 'ERR_HSIG_DIGEST');
      }),
      runs(),
    );
  });

  test('regression: a "constructor" member is an unknown algorithm, not Object.prototype.constructor', async () => {
    const body = Buffer.from('{}');
    const digest = `constructor=:AAAA:, sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
    const headers = { 'workload-identity-token': WIT, 'content-digest': digest };
    const added = await signRequest({ method: 'POST', url: '/mcp', headers, body, key, alg: 'ES256', aud: TARGET, created: NOW });
    const request = toSignedRequest({ method: 'POST', url: '/mcp', headers: { ...headers, ...added }, body });
    await expect(verifier().verify(request, workloadKey, TARGET)).resolves.toMatchObject({ label: 'wimse' });
  });
});
