/**
 * WIMSE workload-to-workload HTTP Message Signatures: the RFC 9421 profile of
 * draft-ietf-wimse-http-signature with the -07/-08 rules (cases HSIG-Nxx and decision U2 in docs/negative-cases.md). The
 * request is signed with the private key of the WIT's `cnf.jwk`; verifying it proves possession of
 * that key and binds the covered parts of the request (method, path, query, credentials, body
 * digest) to it. The WIT itself is verified before this module runs (draft §3: "MUST validate the
 * WIT … before validating the HTTP message signature").
 *
 * `HttpSignatureVerifier.verify` runs the checks in one fixed order, each failure with its own
 * code: parse and select by `tag` and the accepted label (MALFORMED, MULTIPLE, LABEL) → signature
 * parameters (PARAMETERS) → required coverage (the profile's and the configured components), then
 * the signature base (COMPONENTS, MALFORMED) → `wimse-aud` (AUDIENCE) →
 * validity window (EXPIRED) → body digest (DIGEST) → the signature (SIGNATURE) → replay
 * (REPLAYED). Cheap, request-local checks come first; the public-key operation comes after
 * everything that can be refused without it; the nonce is remembered only once the signature is
 * known to be genuine, so nobody can poison the cache with forged signatures.
 *
 * The signature base is built here (RFC 9421 §2.5) rather than by a general RFC 9421 library: the
 * profile needs four derived components, plain header fields, custom signature parameters and
 * selection by `tag`, and the base is short. `structured-headers` parses the RFC 8941/9651 fields
 * and serialises the identifiers and `@signature-params` exactly.
 *
 * Response signing (`wimse-sign-response`, draft §3.2) is not implemented: a request asking for
 * it is accepted and reported with `signResponseRequested: true`.
 *
 * Replay (draft §3, §5.1): a nonce is remembered until its signature expires, keyed by a hash of
 * the nonce (scoped by the sender key's thumbprint when the caller provides it). The memory is
 * bounded: when the cache is full the oldest nonces are forgotten, and from then on signatures
 * expiring no later than a forgotten one are refused, so a forgotten nonce can never be replayed.
 */
import { createHash, hash, timingSafeEqual, type webcrypto } from 'node:crypto';
import type { CryptoKey } from 'jose';
import { MemoryReplayStore } from './replay-cache.ts';
import { claimAll, type ReplayClaim, type ReplaySpace, type ReplayStore } from '../state/replay.ts';
import { isInnerList, parseDictionary, serializeInnerList, serializeString, type Dictionary, type InnerList } from 'structured-headers';
import { AgentwardError, type ErrorCode } from '../errors.ts';
import { normalizeHtu } from './dpop.ts';

/** The `tag` that marks the WIMSE signature of a message (draft §3; RFC 9421 §2.3, §7.2.7). */
export const WIMSE_TAG = 'wimse-workload-to-workload';

/** The request as the verifier sees it. Every value is exactly as received. */
export interface SignedRequest {
  /** The method, e.g. `POST` (RFC 9421 §2.2.2: case-sensitive, not normalised). */
  method: string;
  /** The request path exactly as received, e.g. `/a/b`, without the query. */
  path: string;
  /** The raw query with its leading `?`, or `?` when there is none (RFC 9421 §2.2.7). */
  query: string;
  /** Header fields like Node's `req.headersDistinct`: lower-case names, every field line kept. */
  headers: Readonly<Record<string, string[]>>;
  /** The full request body when one was sent (undefined or empty: no body). */
  body: Buffer | undefined;
  /**
   * The target URI's authority (host[:port], default port left out), needed only when a signature
   * covers `@authority` (RFC 9421 §2.2.3). The proxy gives the configured resource's, never `Host`
   * (which the caller controls; draft §3 notes proxies rewrite it), so a signature made for another
   * authority fails as a signature. Without it a covering signature is refused as malformed.
   */
  authority?: string | undefined;
  /** The target URI's scheme (`https`), needed only when a signature covers `@scheme` (RFC 9421 §2.2.4); from configuration like `authority`. */
  scheme?: string | undefined;
}

/** The workload key from the verified WIT. */
export interface WorkloadKey {
  /** `cnf.jwk`, imported. */
  key: CryptoKey;
  /** `cnf.jwk.alg`: the JWS algorithm of every signature by this key (RFC 9421 §3.3.7). */
  alg: string;
  /**
   * RFC 7638 thumbprint of `cnf.jwk` (`VerifiedWit.jkt`). When given, the replay cache is scoped
   * per sender key, and written only after the signature verifies, so one workload cannot burn
   * another's nonces.
   */
  thumbprint?: string | undefined;
}

export interface HttpSignatureVerifierOptions {
  /** Extra accepted `wimse-aud` values from trusted configuration (deployment aliases, draft §3.1). */
  audiences: ReadonlySet<string>;
  /** Leeway for clocks that disagree, in seconds. */
  clockSkewSeconds: number;
  /** The longest accepted `expires - created`, in seconds (draft §3: "MUST be short"), e.g. 300. */
  maxLifetimeSeconds: number;
  /** How many nonces are remembered at most. */
  replayCacheSize: number;
  /** Where nonces are recorded (`state.backend`); default: this process's memory. */
  replay?: ReplayStore | undefined;
  /**
   * The most `created` may lie in the past, in seconds, besides the skew (RFC 9421 §3.2.1, §7.2.4:
   * a verifier may refuse signatures older than it accepts, whatever their `expires`). Default: no
   * bound beyond `maxLifetimeSeconds`.
   */
  maxAgeSeconds?: number | undefined;
  /**
   * Components every signature must cover besides those the profile requires (RFC 9421 §3.2.1,
   * §7.2.1: the verifier decides what must be signed), e.g. `['@authority', 'date']`. A field
   * listed here must be present in the request, since a signature cannot cover an absent one.
   */
  requiredComponents?: readonly string[] | undefined;
  /**
   * The one signature label accepted (RFC 9421 §4.1, §7.2.8). With it, the WIMSE signature is the
   * tagged member of that label and tagged members of other labels are ignored; a request whose
   * tagged signatures all carry other labels is refused (ERR_HSIG_LABEL). Default: any label, and
   * exactly one tagged member.
   */
  label?: string | undefined;
  /** Milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
}

export interface VerifiedSignature {
  /** The label of the WIMSE signature (informational only: never used to select it). */
  label: string;
  nonce: string;
  /** `created`, seconds since the epoch. */
  created: number;
  /** `expires`, seconds since the epoch. */
  expires: number;
  /** Covered component identifiers as serialised, e.g. `['"@method"', '"authorization"']`. */
  covered: string[];
  /** `wimse-aud` as signed. */
  audience: string;
  /** The request asked for a signed response (draft §3.2), which agentward does not produce. */
  signResponseRequested: boolean;
}

type HsigErrorCode = Extract<ErrorCode, `ERR_HSIG_${string}`>;

function fail(code: HsigErrorCode, detail?: string, cause?: unknown): AgentwardError {
  return new AgentwardError(code, detail, cause === undefined ? {} : { cause });
}

/** Longest accepted `nonce`: enough for any random value, small enough to bound the cache. */
const MAX_NONCE_LENGTH = 256;
const hsigReplayed = (): Error => fail('ERR_HSIG_REPLAYED');
/** Header fields covered whenever the request has them (draft §3); the WIT is always present. */
const COVERED_WHEN_PRESENT = ['content-type', 'content-digest', 'authorization', 'txn-token'] as const;
const ALWAYS_COVERED = ['@method', '@path', '@query', 'workload-identity-token'] as const;
/** RFC 9110 §5.1 field name (a token), lower-case as RFC 9421 §2.1 requires of identifiers. */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const DERIVED_NAME = /^@[a-z-]+$/;
/** A component value must fit on one base line and be one octet per character (see `signatureBase`). */
const UNFIT_VALUE = /[\r\n]|[^\x00-\xff]/;

/**
 * The components the profile requires this request's WIMSE signature to cover (draft §3):
 * `@method`, `@path`, `@query` and `Workload-Identity-Token` always, and `Content-Type`,
 * `Content-Digest`, `Authorization` and `Txn-Token` when the request has them.
 */
export function requiredComponents(headers: Readonly<Record<string, string[]>>): string[] {
  return [...ALWAYS_COVERED, ...COVERED_WHEN_PRESENT.filter((name) => fieldValue(headers, name) !== undefined)];
}

/**
 * Finds the one signature tagged `wimse-workload-to-workload` (draft §3): selection is by `tag`
 * (RFC 9421 §7.2.5), and, when `acceptedLabel` is given, by that label among the tagged members
 * (RFC 9421 §4.1, §7.2.8: a verifier may accept one label only). Returns undefined when no
 * `Signature-Input` member carries the tag (the request then has no WIMSE signature). Throws
 * ERR_HSIG_MALFORMED for an unparsable `Signature-Input`, ERR_HSIG_MULTIPLE for two tagged
 * members (without `acceptedLabel`) and ERR_HSIG_LABEL when tagged members exist but none has
 * `acceptedLabel`. Parses only `Signature-Input`, so it is cheap enough for every request that has one.
 */
export function findWimseSignature(headers: Readonly<Record<string, string[]>>, acceptedLabel?: string): { label: string } | undefined {
  const selected = selectWimse(headers, acceptedLabel);
  return selected && { label: selected.label };
}

function selectWimse(headers: Readonly<Record<string, string[]>>, acceptedLabel: string | undefined): { label: string; input: InnerList } | undefined {
  const value = fieldValue(headers, 'signature-input');
  if (value === undefined) return undefined;
  let found: { label: string; input: InnerList } | undefined;
  let tagged = false;
  for (const [label, member] of parseField(value, 'ERR_HSIG_MALFORMED', 'Signature-Input')) {
    // RFC 9421 §4.1: every member is an Inner List of component identifiers with the parameters.
    if (!isInnerList(member)) throw fail('ERR_HSIG_MALFORMED', 'A Signature-Input member is not an inner list.');
    if (member[1].get('tag') !== WIMSE_TAG) continue;
    tagged = true;
    // Dictionary keys are unique (RFC 8941 §3.2), so at most one member has the accepted label.
    if (acceptedLabel !== undefined && label !== acceptedLabel) continue;
    if (found) throw fail('ERR_HSIG_MULTIPLE');
    found = { label, input: member };
  }
  if (found === undefined && tagged) throw fail('ERR_HSIG_LABEL', `No signature tagged "${WIMSE_TAG}" has the label this resource accepts.`);
  return found;
}

/**
 * The covered component names of a `Signature-Input` member, checked (RFC 9421 §2, §2.1, §2.2):
 * each a String without parameters, a lower-case field name or a derived-component name, none
 * listed twice ("MUST NOT be repeated", RFC 9421 §2; HSIG-N30). Component parameters (`;sf`,
 * `;bs`, `;key`, `;req`, `;name`, `;tr`) serve nothing the profile needs, so any is refused:
 * fewer derivations to get right, and none of their ambiguities (RFC 9421 §7.5).
 */
function coveredComponents(input: InnerList): string[] {
  const names: string[] = [];
  for (const [name, params] of input[0]) {
    if (typeof name !== 'string') throw fail('ERR_HSIG_MALFORMED', 'A component identifier is not a string.');
    if (params.size > 0) throw fail('ERR_HSIG_MALFORMED', 'Component parameters are not supported.');
    if (!FIELD_NAME.test(name) && !DERIVED_NAME.test(name)) throw fail('ERR_HSIG_MALFORMED', 'A component identifier is not a lower-case field name or a derived component.');
    if (names.includes(name)) throw fail('ERR_HSIG_MALFORMED', 'A component identifier is listed twice.');
    names.push(name);
  }
  return names;
}

/**
 * The signature base of RFC 9421 §2.5 for `input` (a parsed `Signature-Input` member), as the
 * octets that are signed: one line `"<identifier>": <value>` per covered component, in order, then
 * `"@signature-params": ` and the member re-serialised (RFC 9421 §2.3, §3.2 step 5).
 *
 * Supported components: `@method`, `@path`, `@query`, `@authority` and `@scheme` (when the request
 * gives them) and header fields. Throws ERR_HSIG_MALFORMED when a component cannot be derived, including a
 * covered field the request lacks (§2.5: the base cannot be built), and for component parameters.
 *
 * The base is encoded one octet per character (latin1): Node decodes header values and the
 * request target that way, so the octets are exactly those received.
 */
export function signatureBase(request: SignedRequest, input: InnerList): Buffer {
  let base = '';
  for (const name of coveredComponents(input)) {
    const value = componentValue(request, name);
    if (UNFIT_VALUE.test(value)) throw fail('ERR_HSIG_MALFORMED', `The value of covered component ${serializeString(name)} cannot be signed.`);
    base += `${serializeString(name)}: ${value}\n`;
  }
  base += `"@signature-params": ${serializeInnerList(input)}`;
  return Buffer.from(base, 'latin1');
}

function componentValue(request: SignedRequest, name: string): string {
  switch (name) {
    case '@method':
      return request.method;
    case '@path':
      // RFC 9421 §2.2.6: the absolute path, not decoded; an empty path is "/" (RFC 9110 §4.2.3).
      return request.path === '' ? '/' : request.path;
    case '@query':
      // RFC 9421 §2.2.7: with its leading "?"; a request without a query has "?" alone.
      return request.query.startsWith('?') ? request.query : `?${request.query}`;
    case '@authority':
      // RFC 9421 §2.2.3: the authority of the target URI, lower case, default port left out (RFC 9110 §4.2.3).
      if (request.authority === undefined) throw fail('ERR_HSIG_MALFORMED', 'The signature covers "@authority", which this resource does not derive.');
      return request.authority.toLowerCase();
    case '@scheme':
      // RFC 9421 §2.2.4: the scheme of the target URI, lower case.
      if (request.scheme === undefined) throw fail('ERR_HSIG_MALFORMED', 'The signature covers "@scheme", which this resource does not derive.');
      return request.scheme.toLowerCase();
    default: {
      if (name.startsWith('@')) throw fail('ERR_HSIG_MALFORMED', `The derived component ${serializeString(name)} is not supported.`);
      const value = fieldValue(request.headers, name);
      if (value === undefined) throw fail('ERR_HSIG_MALFORMED', `The covered field ${serializeString(name)} is absent from the request.`);
      return value;
    }
  }
}

/**
 * RFC 9421 §2.1: a field's component value is each field line's value with surrounding
 * whitespace removed (obs-fold replaced by a space), the lines joined with ", " in order.
 * Undefined when the field is absent.
 */
function fieldValue(headers: Readonly<Record<string, string[]>>, name: string): string | undefined {
  const lines = headers[name];
  if (lines === undefined || lines.length === 0) return undefined;
  return lines.map((line) => line.replace(/\r?\n[ \t]+/g, ' ').replace(/^[ \t]+|[ \t]+$/g, '')).join(', ');
}

function parseField(value: string, code: HsigErrorCode, field: string): Dictionary {
  try {
    return parseDictionary(value);
  } catch (err) {
    throw fail(code, `The ${field} field is not a valid structured-field Dictionary.`, err);
  }
}

/** Content-Digest algorithms recognised (RFC 9530 §5, §7.2: "sha-256" and "sha-512" are Active). */
const DIGEST_ALGORITHMS: Readonly<Record<string, string>> = { 'sha-256': 'sha256', 'sha-512': 'sha512' };

/** The RFC 9530 `Content-Digest` value for `body`, e.g. `sha-256=:X48E9q…:`. */
export function contentDigest(body: Uint8Array, algorithm: 'sha-256' | 'sha-512' = 'sha-256'): string {
  return `${algorithm}=:${createHash(DIGEST_ALGORITHMS[algorithm]!).update(body).digest('base64')}:`;
}

/**
 * Draft §3: with a body, `Content-Digest` is required and must match the content received
 * (RFC 9530 §2). Every recognised member must match and at least one must be present; members of
 * other algorithms are ignored (RFC 9530 §2). A `Content-Digest` sent without a body must still
 * match the empty content.
 */
function checkDigest(request: SignedRequest): void {
  const body = request.body ?? Buffer.alloc(0);
  const value = fieldValue(request.headers, 'content-digest');
  if (value === undefined) {
    if (body.length > 0) throw fail('ERR_HSIG_DIGEST', 'A request with a body must carry a signed Content-Digest.');
    return;
  }
  let recognised = 0;
  for (const [algorithm, member] of parseField(value, 'ERR_HSIG_DIGEST', 'Content-Digest')) {
    // Own members only: "constructor" is a valid Dictionary key (RFC 9651 §3.2) and must be
    // ignored as an unknown algorithm, not found on Object.prototype and handed to createHash.
    const nodeAlgorithm = Object.hasOwn(DIGEST_ALGORITHMS, algorithm) ? DIGEST_ALGORITHMS[algorithm] : undefined;
    if (nodeAlgorithm === undefined) continue;
    if (isInnerList(member) || !(member[0] instanceof ArrayBuffer)) throw fail('ERR_HSIG_DIGEST', `The ${algorithm} Content-Digest member is not a byte sequence.`);
    const expected = createHash(nodeAlgorithm).update(body).digest();
    const given = Buffer.from(member[0]);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw fail('ERR_HSIG_DIGEST', `The body does not match its ${algorithm} Content-Digest.`);
    recognised++;
  }
  if (recognised === 0) throw fail('ERR_HSIG_DIGEST', 'The Content-Digest has no sha-256 or sha-512 member.');
}

/** The signature value for `label` in the `Signature` field (RFC 9421 §4.2: a Byte Sequence). */
function signatureValue(headers: Readonly<Record<string, string[]>>, label: string): Uint8Array {
  const value = fieldValue(headers, 'signature');
  if (value === undefined) throw fail('ERR_HSIG_MALFORMED', 'The Signature field is missing.');
  const member = parseField(value, 'ERR_HSIG_MALFORMED', 'Signature').get(label);
  if (member === undefined) throw fail('ERR_HSIG_MALFORMED', 'The Signature field has no member for the WIMSE signature label.');
  if (isInnerList(member) || !(member[0] instanceof ArrayBuffer)) throw fail('ERR_HSIG_MALFORMED', 'The WIMSE signature value is not a byte sequence.');
  return new Uint8Array(member[0]);
}

type SignatureAlgorithm = webcrypto.AlgorithmIdentifier | webcrypto.RsaPssParams | webcrypto.EcdsaParams;

/**
 * The Web Crypto parameters for the JWS algorithm `key.alg` (RFC 9421 §3.3.7, RFC 7518 §3,
 * RFC 8037 §3.1), after checking the key is of that family and size: ECDSA signatures are the
 * raw r‖s of JWS (RFC 7518 §3.4), RSA-PSS uses a salt as long as the hash (RFC 7518 §3.5).
 * Throws ERR_HSIG_SIGNATURE for an unsupported algorithm or a key of another kind (HSIG-N26).
 */
export function signatureAlgorithm(key: WorkloadKey): SignatureAlgorithm {
  const keyAlgorithm = key.key.algorithm as { name: string; namedCurve?: string; hash?: { name: string } };
  const expected = JWS_ALGORITHMS[key.alg];
  if (!expected || !expected.matches(keyAlgorithm)) throw fail('ERR_HSIG_SIGNATURE', 'The workload key cannot make signatures of its declared algorithm.');
  return expected.params(keyAlgorithm);
}

interface JwsAlgorithm {
  matches(keyAlgorithm: { name: string; namedCurve?: string; hash?: { name: string } }): boolean;
  params(keyAlgorithm: { name: string }): SignatureAlgorithm;
}

function ecdsa(curve: string, hashName: string): JwsAlgorithm {
  return { matches: (k) => k.name === 'ECDSA' && k.namedCurve === curve, params: () => ({ name: 'ECDSA', hash: hashName }) };
}
function rsa(name: 'RSASSA-PKCS1-v1_5' | 'RSA-PSS', hashName: string, saltLength?: number): JwsAlgorithm {
  return { matches: (k) => k.name === name && k.hash?.name === hashName, params: () => (saltLength === undefined ? { name } : { name, saltLength }) };
}
const JWS_ALGORITHMS: Readonly<Record<string, JwsAlgorithm>> = {
  ES256: ecdsa('P-256', 'SHA-256'),
  ES384: ecdsa('P-384', 'SHA-384'),
  ES512: ecdsa('P-521', 'SHA-512'),
  RS256: rsa('RSASSA-PKCS1-v1_5', 'SHA-256'),
  RS384: rsa('RSASSA-PKCS1-v1_5', 'SHA-384'),
  RS512: rsa('RSASSA-PKCS1-v1_5', 'SHA-512'),
  PS256: rsa('RSA-PSS', 'SHA-256', 32),
  PS384: rsa('RSA-PSS', 'SHA-384', 48),
  PS512: rsa('RSA-PSS', 'SHA-512', 64),
  // RFC 8037 §3.1 EdDSA (either curve) and RFC 9864 fully-specified Ed25519.
  EdDSA: { matches: (k) => k.name === 'Ed25519' || k.name === 'Ed448', params: (k) => ({ name: k.name }) },
  Ed25519: { matches: (k) => k.name === 'Ed25519', params: () => ({ name: 'Ed25519' }) },
};

/**
 * Verifies `signature` over the signature-base octets with the workload key (RFC 9421 §3.2 step
 * 8). False for a signature that does not verify; throws ERR_HSIG_SIGNATURE when the key cannot
 * verify at all (wrong family, unsupported algorithm).
 */
export async function verifySignatureValue(key: WorkloadKey, base: Uint8Array, signature: Uint8Array): Promise<boolean> {
  const algorithm = signatureAlgorithm(key);
  try {
    return await crypto.subtle.verify(algorithm, key.key, signature, base);
  } catch (err) {
    throw fail('ERR_HSIG_SIGNATURE', 'The workload key cannot verify this signature.', err);
  }
}

function isTimestamp(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export class HttpSignatureVerifier {
  private readonly audiences: ReadonlySet<string>;
  private readonly skew: number;
  private readonly maxLifetime: number;
  private readonly maxAge: number | undefined;
  private readonly extraComponents: readonly string[];
  private readonly label: string | undefined;
  private readonly now: () => number;
  /** Remembered nonces (hashed) and the `expires` of their signature. */
  private readonly seen: ReplaySpace;

  constructor(options: HttpSignatureVerifierOptions) {
    this.audiences = new Set([...options.audiences].map(normalizeHtu));
    this.skew = options.clockSkewSeconds;
    this.maxLifetime = options.maxLifetimeSeconds;
    this.maxAge = options.maxAgeSeconds;
    this.extraComponents = options.requiredComponents ?? [];
    this.label = options.label;
    this.now = options.now ?? Date.now;
    // Marked with the signature's expires: signatures expiring no later than a forgotten one are refused.
    this.seen = (options.replay ?? new MemoryReplayStore(() => this.now())).space('hsig', { max: options.replayCacheSize });
  }

  /** Nonces held now, expired ones dropped first (for tests and /readyz detail). */
  get replayCacheEntries(): number {
    return this.seen.size;
  }

  /**
   * Verifies the WIMSE signature of `request` with the WIT's key. `targetUri` is this resource's
   * target URI from trusted configuration (origin + path, no query, e.g.
   * `https://tools.example.com/mcp`; never from Host): `wimse-aud` must equal it, or one of
   * `options.audiences`, after the same normalisation as DPoP `htu`.
   *
   * Call it when `findWimseSignature` found a signature; without one it throws
   * ERR_HSIG_PARAMETERS (no signature has the required `tag`). Every failure is an
   * AgentwardError with an ERR_HSIG_* code and a detail that names the problem, never a value.
   * The nonce is recorded against replay at once, or, when `claims` is given, added to it for the
   * caller to make with the request's other proofs (src/state/replay.ts `claimAll`).
   */
  async verify(request: SignedRequest, key: WorkloadKey, targetUri: string, claims?: ReplayClaim[]): Promise<VerifiedSignature> {
    // 1. Parse and select by tag (draft §3); the Signature member of the same label (RFC 9421 §4.2).
    const selected = selectWimse(request.headers, this.label);
    if (!selected) throw fail('ERR_HSIG_PARAMETERS', `No signature carries tag="${WIMSE_TAG}".`);
    const { label, input } = selected;
    const covered = coveredComponents(input);
    const signature = signatureValue(request.headers, label);

    // 2. Signature parameters (draft §3, §3.1, §3.2; RFC 9421 §2.3 types).
    const params = input[1];
    if (params.has('keyid') || params.has('alg')) throw fail('ERR_HSIG_PARAMETERS', 'The keyid and alg signature parameters are not allowed; the WIT carries the key.');
    const created = params.get('created');
    const expires = params.get('expires');
    const nonce = params.get('nonce');
    const audience = params.get('wimse-aud');
    const signResponse = params.get('wimse-sign-response');
    if (!isTimestamp(created)) throw fail('ERR_HSIG_PARAMETERS', 'The created parameter must be an integer.');
    if (!isTimestamp(expires)) throw fail('ERR_HSIG_PARAMETERS', 'The expires parameter must be an integer.');
    if (typeof nonce !== 'string' || nonce === '' || nonce.length > MAX_NONCE_LENGTH) throw fail('ERR_HSIG_PARAMETERS', 'The nonce parameter must be a non-empty string.');
    if (typeof audience !== 'string' || audience === '') throw fail('ERR_HSIG_PARAMETERS', 'The wimse-aud parameter must be a non-empty string.');
    if (signResponse !== undefined && typeof signResponse !== 'boolean') throw fail('ERR_HSIG_PARAMETERS', 'The wimse-sign-response parameter must be a boolean.');

    // 3. Coverage (draft §3), then the base: a covered component that cannot be derived is malformed.
    for (const name of requiredComponents(request.headers)) {
      if (!covered.includes(name)) throw fail('ERR_HSIG_COMPONENTS', `The signature must cover ${serializeString(name)}.`);
    }
    for (const name of this.extraComponents) {
      if (!covered.includes(name)) throw fail('ERR_HSIG_COMPONENTS', `This resource requires the signature to cover ${serializeString(name)}.`);
    }
    const base = signatureBase(request, input);

    // 4. Audience from trusted configuration, never from Host (draft §3.1).
    const aud = normalizeHtu(audience);
    if (aud !== normalizeHtu(targetUri) && !this.audiences.has(aud)) throw fail('ERR_HSIG_AUDIENCE');

    // 5. Validity window (draft §3: expiration "MUST be short"; RFC 9421 §3.2.1).
    const nowSeconds = this.now() / 1000;
    if (expires < created) throw fail('ERR_HSIG_EXPIRED', 'The signature expires before it was created.');
    if (created > nowSeconds + this.skew) throw fail('ERR_HSIG_EXPIRED', 'The signature was created in the future.');
    if (expires <= nowSeconds - this.skew || this.seen.forgotten(expires)) throw fail('ERR_HSIG_EXPIRED', 'The signature has expired.');
    if (expires - created > this.maxLifetime) throw fail('ERR_HSIG_EXPIRED', 'The signature is valid for longer than this resource accepts.');
    // RFC 9421 §3.2.1, §7.2.4: an old `created` is refused whatever `expires` says.
    if (this.maxAge !== undefined && created < nowSeconds - this.maxAge - this.skew) throw fail('ERR_HSIG_EXPIRED', 'The signature was created longer ago than this resource accepts.');

    // 6. The body against its Content-Digest (draft §3; RFC 9530).
    checkDigest(request);

    // 7. The signature by the WIT's key (RFC 9421 §3.2 step 8).
    if (!(await verifySignatureValue(key, base, signature))) throw fail('ERR_HSIG_SIGNATURE');

    // 8. Replay (draft §3), kept until the signature expires. The label is left out of the key:
    // it is not signed, so a replay under another label must still be caught.
    const replayKey = hash('sha256', key.thumbprint === undefined ? nonce : `${key.thumbprint}.${nonce}`, 'base64url');
    const replay: ReplayClaim = { space: this.seen, key: replayKey, mark: expires, ttlMs: (expires + this.skew) * 1000 - this.now(), replayed: hsigReplayed };
    if (claims) claims.push(replay);
    else await claimAll([replay]);

    return {
      label,
      nonce,
      created,
      expires,
      covered: covered.map((name) => serializeString(name)),
      audience,
      signResponseRequested: signResponse === true,
    };
  }
}
