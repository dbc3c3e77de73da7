/**
 * WIMSE HTTP Message Signatures for tests (draft-ietf-wimse-http-signature -07/-08, RFC 9421):
 * signs a request with a workload's private key and returns the header values to add. Defaults
 * produce a signature the verifier accepts; every part is overridable so each negative case of
 * docs/negative-cases.md (HSIG-Nxx) can be built.
 *
 * The signature base, the algorithm parameters and the Content-Digest come from
 * src/credentials/http-signature.ts itself (its base construction is checked separately against
 * the RFC 9421 published vectors), so signer and verifier cannot drift apart.
 *
 * ```ts
 * const { privateKey } = await generateKeyPair('ES256');
 * const added = await signRequest({ method: 'POST', url: '/mcp?x=1', headers: { 'workload-identity-token': wit,
 *   'content-type': 'application/json' }, body, key: privateKey, alg: 'ES256', aud: 'https://tools.example.com/mcp' });
 * await fetch(`${base}/mcp?x=1`, { method: 'POST', headers: { ...headers, ...added }, body });
 * ```
 */
import { randomBytes } from 'node:crypto';
import type { CryptoKey } from 'jose';
import { serializeDictionary, type BareItem, type InnerList, type Parameters } from 'structured-headers';
import { WIMSE_TAG, contentDigest, requiredComponents, signatureAlgorithm, signatureBase, type SignedRequest } from '../../src/credentials/http-signature.ts';

export interface SignRequestOptions {
  method: string;
  /** Path and query as sent, e.g. `/mcp?session=1`. */
  url: string;
  /** The request's header fields (any case) that the signature may cover. */
  headers?: Readonly<Record<string, string | readonly string[]>>;
  /** The request body; when non-empty a `Content-Digest` (sha-256) is added unless `headers` has one. */
  body?: string | Uint8Array | undefined;
  /** The authority, needed only when `components` lists `@authority`. */
  authority?: string | undefined;
  /** The scheme, needed only when `components` lists `@scheme`. */
  scheme?: string | undefined;
  /** The workload's private key (the one matching the WIT's `cnf.jwk`). */
  key: CryptoKey;
  /** The JWS algorithm of the key (`cnf.jwk.alg`): ES256, EdDSA, PS256, … */
  alg: string;
  /** Signature label. Default `wimse`. */
  label?: string;
  /** Default: now, in seconds. */
  created?: number;
  /** Default: `created + 60`. */
  expires?: number;
  /** Default: 16 random bytes, base64url. */
  nonce?: string;
  /** `wimse-aud`: the target URI of the resource, e.g. `https://tools.example.com/mcp`. */
  aud: string;
  /** Default `wimse-workload-to-workload`. */
  tag?: string;
  /**
   * Covered component names, in order (e.g. `['@method', '@path', 'authorization']`). Default:
   * what the profile requires of this request: `@method`, `@path`, `@query` and the headers of
   * `content-type`, `content-digest`, `authorization`, `txn-token`, `workload-identity-token`
   * that are present.
   */
  components?: readonly string[];
  /**
   * Signature parameters to add or override after the defaults (created, expires, nonce, tag,
   * wimse-aud); `undefined` removes one. E.g. `{ keyid: 'k1' }`, `{ nonce: undefined }`,
   * `{ 'wimse-sign-response': true }`.
   */
  params?: Readonly<Record<string, BareItem | undefined>>;
}

/** Header values to add to the request (lower-case names). */
export interface SignatureHeaders {
  'signature-input': string;
  signature: string;
  /** Present when the helper computed it (a body and no `content-digest` in `headers`). */
  'content-digest'?: string;
}

/** Signs the request as a WIMSE workload would (draft §3) and returns the headers to add. */
export async function signRequest(options: SignRequestOptions): Promise<SignatureHeaders> {
  const body = typeof options.body === 'string' ? Buffer.from(options.body) : options.body;
  const headers = lowerCase(options.headers ?? {});
  let digest: string | undefined;
  if (body !== undefined && body.length > 0 && headers['content-digest'] === undefined) {
    digest = contentDigest(body);
    headers['content-digest'] = [digest];
  }
  const request = toSignedRequest({ method: options.method, url: options.url, headers, body, authority: options.authority, scheme: options.scheme });

  const created = options.created ?? Math.floor(Date.now() / 1000);
  const params: Parameters = new Map<string, BareItem>([
    ['created', created],
    ['expires', options.expires ?? created + 60],
    ['nonce', options.nonce ?? randomBytes(16).toString('base64url')],
    ['tag', options.tag ?? WIMSE_TAG],
    ['wimse-aud', options.aud],
  ]);
  for (const [name, value] of Object.entries(options.params ?? {})) {
    if (value === undefined) params.delete(name);
    else params.set(name, value);
  }
  const components = options.components ?? requiredComponents(request.headers).filter((name) => name.startsWith('@') || request.headers[name] !== undefined);
  const input: InnerList = [components.map((name) => [name, new Map()]), params];

  const workloadKey = { key: options.key, alg: options.alg };
  const signature = await crypto.subtle.sign(signatureAlgorithm(workloadKey), options.key, signatureBase(request, input));
  const label = options.label ?? 'wimse';
  return {
    'signature-input': serializeDictionary(new Map([[label, input]])),
    signature: serializeDictionary(new Map([[label, [signature, new Map()]]])),
    ...(digest === undefined ? {} : { 'content-digest': digest }),
  };
}

export interface RequestParts {
  method: string;
  /** Path and query as sent. */
  url: string;
  /** Header fields, any case; a list is several field lines. */
  headers: Readonly<Record<string, string | readonly string[]>>;
  body?: string | Uint8Array | undefined;
  authority?: string | undefined;
  scheme?: string | undefined;
}

/** The `SignedRequest` the verifier sees for these parts (as the proxy builds it from Node's request). */
export function toSignedRequest(parts: RequestParts): SignedRequest {
  const q = parts.url.indexOf('?');
  const body = typeof parts.body === 'string' ? Buffer.from(parts.body) : parts.body === undefined ? undefined : Buffer.from(parts.body);
  return {
    method: parts.method,
    path: q === -1 ? parts.url : parts.url.slice(0, q),
    query: q === -1 ? '?' : parts.url.slice(q),
    headers: lowerCase(parts.headers),
    body,
    authority: parts.authority,
    scheme: parts.scheme,
  };
}

function lowerCase(headers: Readonly<Record<string, string | readonly string[]>>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const key = name.toLowerCase();
    out[key] = [...(out[key] ?? []), ...(typeof value === 'string' ? [value] : value)];
  }
  return out;
}
