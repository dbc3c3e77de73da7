/**
 * Workload credentials for tests, signed with real keys by jose: SPIFFE JWT-SVIDs (JWT-SVID §2–3;
 * JWT-SVID §2–§3), WIMSE WITs (creds-02 §5.1) and WPTs (wpt-02 §2),
 * and SPIFFE bundle documents (Trust Domain and Bundle §4) to load them with.
 *
 * Every minting function takes `header` and `claims` that set or, with `undefined`, remove members
 * after the defaults are filled in, so each negative case (JS-Nxx, WIT-Nxx, WPT-Nxx) is one
 * override away from a valid token (a `crit` header is signed as given, its extensions declared
 * to jose). Unsecured (`alg: none`) tokens are not minted here: jose does not sign them. Times default to the real clock; pass `iat`/`exp` when the
 * verifier runs on a frozen one.
 *
 * ```ts
 * const issuer = await newWorkloadKey('ES256', 'jwt-1');
 * await writeFile(file, JSON.stringify(bundleDocument({ jwtSvid: [issuer.publicJwk] })));
 * const svid = await mintJwtSvid({ key: issuer, sub: 'spiffe://example.org/agent', aud: 'https://api.example.com' });
 *
 * const witIssuer = await newWorkloadKey('ES256', 'wit-1');
 * const workload = await newWorkloadKey('ES256');
 * const wit = await mintWit({ key: witIssuer, sub: 'spiffe://example.org/agent', cnfJwk: workload.publicJwk });
 * const wpt = await mintWpt({ wit, privateKey: workload.privateKey, alg: workload.alg, aud: 'https://api.example.com/tools' });
 * // headers: { 'workload-identity-token': wit, authorization: `WPT ${wpt}` }
 * ```
 */
import { hash, randomUUID } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/** A signing key as the minting functions take it. `kid` goes into the header when set. */
export interface SigningKey {
  /** A CryptoKey, or the shared secret of an HMAC algorithm (only to build negative cases). */
  privateKey: CryptoKey | Uint8Array;
  kid?: string | undefined;
  alg: string;
}

export interface WorkloadKey {
  alg: string;
  /** Set when one was given to {@link newWorkloadKey}; also in `publicJwk`. */
  kid: string | undefined;
  privateKey: CryptoKey;
  /** The public JWK with `alg` (and `kid` when given): a bundle entry, or a WIT `cnf.jwk`. */
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of the public key. */
  jkt: string;
}

/** Header or claim overrides: a value sets the member, `undefined` removes it. */
export type Overrides = Record<string, unknown>;

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** base64url(SHA-256(value)): the WPT `wth` / `tth` and the values of `oth` (wpt-02 §2). */
export function tokenHash(value: string): string {
  return hash('sha256', value, 'base64url');
}

/**
 * The WPT `oth` claim for context tokens sent in other headers (wpt-02 §2): names lower-cased,
 * values trimmed of surrounding spaces and tabs before hashing, as the verifier does.
 */
export function othFor(otherTokens: Readonly<Record<string, string>>): Record<string, string> {
  const oth: Record<string, string> = {};
  for (const [name, value] of Object.entries(otherTokens)) oth[name.toLowerCase()] = tokenHash(value.replace(/^[ \t]+|[ \t]+$/g, ''));
  return oth;
}

/**
 * A fresh key pair for `alg` (default `ES256`; `RS*`/`PS*` give 2048-bit RSA, `EdDSA` Ed25519),
 * extractable, with its public JWK carrying `alg` and, when given, `kid`.
 */
export async function newWorkloadKey(alg = 'ES256', kid?: string): Promise<WorkloadKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const exported = await exportJWK(publicKey);
  const publicJwk: JWK = { ...exported, alg, ...(kid === undefined ? {} : { kid }) };
  return { alg, kid, privateKey, publicJwk, jkt: await calculateJwkThumbprint(exported, 'sha256') };
}

export interface MintJwtSvidOptions {
  key: SigningKey;
  /** The SPIFFE ID (any string, to build JS-N09). */
  sub: string;
  /** A string or an array (JWT-SVID §3.2). */
  aud: string | string[];
  /** Seconds. Default `iat + 300`. */
  exp?: number;
  /** Seconds. Default now. */
  iat?: number;
  /** Default `{ alg: key.alg, kid: key.kid, typ: 'JWT' }`. */
  header?: Overrides;
  /** Extra claims, or overrides of `sub`, `aud`, `exp`, `iat`. */
  claims?: Overrides;
}

/** A JWT-SVID (JWT-SVID §2, §3): `sub`, `aud`, `exp`, `iat`; header `typ: JWT` and the key's `kid`. */
export async function mintJwtSvid(options: MintJwtSvidOptions): Promise<string> {
  const iat = options.iat ?? nowSeconds();
  return sign(
    { alg: options.key.alg, kid: options.key.kid, typ: 'JWT', ...options.header },
    { sub: options.sub, aud: options.aud, iat, exp: options.exp ?? iat + 300, ...options.claims },
    options.key.privateKey,
  );
}

export interface MintWitOptions {
  /** The trust domain's WIT issuer key (a `wit-svid` bundle entry). */
  key: SigningKey;
  /** The Workload Identifier (`spiffe://…` makes it a WIT-SVID, which needs `kid`). */
  sub: string;
  /** The workload's public key with `alg` (e.g. `WorkloadKey.publicJwk`); becomes `cnf.jwk`. */
  cnfJwk: JWK;
  /** Seconds. Default `iat + 3600`. */
  exp?: number;
  /** Seconds. Default now. */
  iat?: number;
  /** Default `{ alg: key.alg, kid: key.kid, typ: 'wit+jwt' }`. */
  header?: Overrides;
  /** Extra claims or overrides; a random `jti` is set by default. */
  claims?: Overrides;
}

/** A Workload Identity Token (creds-02 §5.1; WIT-SVID §2–3): typ `wit+jwt`, `cnf.jwk` the workload key. */
export async function mintWit(options: MintWitOptions): Promise<string> {
  const iat = options.iat ?? nowSeconds();
  return sign(
    { alg: options.key.alg, kid: options.key.kid, typ: 'wit+jwt', ...options.header },
    { sub: options.sub, iat, exp: options.exp ?? iat + 3600, jti: randomUUID(), cnf: { jwk: options.cnfJwk }, ...options.claims },
    options.key.privateKey,
  );
}

export interface MintWptOptions {
  /** The WIT exactly as it will be sent; `wth` is its hash. */
  wit: string;
  /** The workload's private key (the one in the WIT's `cnf.jwk`). */
  privateKey: CryptoKey | Uint8Array;
  /** Must equal the WIT's `cnf.jwk.alg` (wpt-02 §2). */
  alg: string;
  /** The target URI (no query or fragment), or an array. */
  aud: string | string[];
  /** Seconds. Default now + 60. */
  exp?: number;
  /** Default a random UUID. */
  jti?: string;
  /** The `tth` claim value: `tokenHash(txnToken)`. Absent by default. */
  tth?: string;
  /** The `oth` claim value: `othFor({ 'x-user-token': value })`. Absent by default. */
  oth?: Record<string, string>;
  /** Default `{ alg, typ: 'wpt+jwt' }`. */
  header?: Overrides;
  /** Extra claims or overrides (e.g. `{ wth: undefined }` for WPT-N22). */
  claims?: Overrides;
}

/** A Workload Proof Token (wpt-02 §2): typ `wpt+jwt`, `wth` = base64url(SHA-256(wit)), no `iat`. */
export async function mintWpt(options: MintWptOptions): Promise<string> {
  return sign(
    { alg: options.alg, typ: 'wpt+jwt', ...options.header },
    {
      aud: options.aud,
      exp: options.exp ?? nowSeconds() + 60,
      jti: options.jti ?? randomUUID(),
      wth: tokenHash(options.wit),
      ...(options.tth === undefined ? {} : { tth: options.tth }),
      ...(options.oth === undefined ? {} : { oth: options.oth }),
      ...options.claims,
    },
    options.privateKey,
  );
}

export interface BundleDocumentOptions {
  /** Public JWKs with `kid` (Bundle §4.2.2), published as `use: jwt-svid`. */
  jwtSvid?: JWK[];
  /** Public JWKs (with `kid` for WIT-SVID §6.1), published as `use: wit-svid`. */
  witSvid?: JWK[];
  /** JWKs carrying `x5c` (one CA certificate, base64 DER), published as `use: x509-svid`. */
  x509?: JWK[];
  /** `spiffe_sequence`; omitted by default. */
  sequence?: number;
  /** `spiffe_refresh_hint`, seconds; omitted by default. */
  refreshHint?: number;
}

/**
 * A SPIFFE bundle document (Trust Domain and Bundle §4.1): a JWK Set with `use` set per entry.
 * Entries are copied as given (a private member stays in, to test that it is refused).
 */
export function bundleDocument(options: BundleDocumentOptions = {}): { keys: JWK[]; spiffe_sequence?: number; spiffe_refresh_hint?: number } {
  const entries = (keys: JWK[] | undefined, use: string) => (keys ?? []).map((k) => ({ ...k, use }));
  return {
    keys: [...entries(options.jwtSvid, 'jwt-svid'), ...entries(options.witSvid, 'wit-svid'), ...entries(options.x509, 'x509-svid')],
    ...(options.sequence === undefined ? {} : { spiffe_sequence: options.sequence }),
    ...(options.refreshHint === undefined ? {} : { spiffe_refresh_hint: options.refreshHint }),
  };
}

async function sign(header: Overrides, claims: Overrides, key: CryptoKey | Uint8Array): Promise<string> {
  for (const [k, v] of Object.entries(header)) if (v === undefined) delete header[k];
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  // jose refuses to sign with extensions it does not know; declare them so `crit` cases can be built.
  const crit = Array.isArray(header.crit) ? Object.fromEntries(header.crit.filter((n) => typeof n === 'string').map((n: string) => [n, true])) : undefined;
  return new SignJWT(claims).setProtectedHeader(header as never).sign(key, crit === undefined ? undefined : { crit });
}
