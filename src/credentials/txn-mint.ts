/**
 * Minting Transaction Tokens for the upstream (draft-ietf-oauth-transaction-tokens-11, the draft
 * src/credentials/txn-token.ts verifies). agentward acts as the Txn-Token service of the one
 * upstream behind it (§10: a trust domain has one logical TTS; the upstream trusts agentward's key
 * set for the `aud` it is configured with): per forwarded request it signs a short-lived token
 * (§6, §13.1) carrying the verified user, the requesting workload, the scope the request may use
 * and the immutable transaction context, so the upstream gets a signed identity instead of
 * headers it must take on trust.
 *
 * The signing key is one PEM private key in a file, read at startup and re-read when the file
 * changes (src/file-watch.ts). A new key signs from the moment it is loaded; the key it replaces
 * stays in the JWK Set served on the admin listener for `rotationOverlapMs`, so tokens it signed
 * still verify until they expire. A file that cannot be used keeps the last good key (fail closed
 * never means "sign with nothing": there is always a key once startup succeeded).
 *
 * Cost: the per-request work is one JSON.stringify of the claims, base64url, and one synchronous
 * `crypto.sign` with a KeyObject built once per key (src/jose/signature.ts `signJws`); the
 * protected header is encoded once per key.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import { keyFitsAlgorithm, type AsymmetricAlgorithm } from '../jose/algorithms.ts';
import { signJws } from '../jose/signature.ts';
import { watchFiles, type FileWatch } from '../file-watch.ts';

/** A key file that cannot be used for minting; `reason` says why, without the file name. */
export class TxnKeyFileError extends Error {
  readonly file: string;
  readonly reason: string;
  constructor(file: string, reason: string, cause?: unknown) {
    super(`${file} ${reason}`, cause === undefined ? undefined : { cause });
    this.name = 'TxnKeyFileError';
    this.file = file;
    this.reason = reason;
  }
}

/** One signing key as loaded from the file. */
export interface SigningKey {
  /** RFC 7638 JWK thumbprint (SHA-256) of the public key: the same file always gives the same kid. */
  kid: string;
  privateKey: KeyObject;
  /** The public JWK as published: key members plus `kid`, `alg`, `use: "sig"` (RFC 7517 §4). */
  publicJwk: JWK;
  /** base64url of the protected header `{"alg","typ":"txntoken+jwt","kid"}`, encoded once. */
  encodedHeader: string;
}

/** RFC 7638 §3.2: the required members of each key type, in lexicographic order. */
const THUMBPRINT_MEMBERS: Readonly<Record<string, readonly string[]>> = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] };

/**
 * RFC 7638 JWK thumbprint with SHA-256, computed synchronously so a key loads in one step
 * (jose's `calculateJwkThumbprint` is asynchronous; test/unit/txn-mint.test.ts holds the two equal).
 */
export function jwkThumbprint(jwk: Readonly<Record<string, unknown>>): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty as string];
  if (members === undefined) throw new TypeError(`no thumbprint for key type ${String(jwk.kty)}`);
  const json = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`;
  return createHash('sha256').update(json).digest('base64url');
}

/** RFC 7518 §3.3, §3.5: RSA keys of 2048 bits or more (jose refuses smaller ones too). */
const MIN_RSA_BITS = 2048;

/**
 * Reads `file`: one unencrypted PEM private key (PKCS#8, SEC 1 `EC PRIVATE KEY` or PKCS#1 `RSA
 * PRIVATE KEY`) that fits `algorithm`. Throws TxnKeyFileError naming what is wrong.
 */
export function readSigningKey(file: string, algorithm: AsymmetricAlgorithm): SigningKey {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new TxnKeyFileError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new TxnKeyFileError(file, 'is not an unencrypted PEM private key', err);
  }
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, unknown>;
  if (!keyFitsAlgorithm(algorithm, jwk)) throw new TxnKeyFileError(file, `holds a key (${String(jwk.kty)}${jwk.crv ? ` ${String(jwk.crv)}` : ''}) that cannot sign ${algorithm}`);
  const bits = privateKey.asymmetricKeyDetails?.modulusLength;
  if (jwk.kty === 'RSA' && (bits === undefined || bits < MIN_RSA_BITS)) throw new TxnKeyFileError(file, `holds an RSA key of ${bits ?? '?'} bits; at least ${MIN_RSA_BITS} are needed (RFC 7518 section 3.3)`);
  const kid = jwkThumbprint(jwk);
  // §9.1: typ txntoken+jwt, explicit typing (RFC 8725 §3.11); kid so the upstream picks the key.
  const encodedHeader = Buffer.from(JSON.stringify({ alg: algorithm, typ: 'txntoken+jwt', kid })).toString('base64url');
  return { kid, privateKey, publicJwk: { ...jwk, kid, alg: algorithm, use: 'sig' } as JWK, encodedHeader };
}

/** The facts of one request that go into its token (the caller picks them; see src/proxy/upstream-token.ts). */
export interface MintClaims {
  /** §9.2 `txn`: the transaction identifier. */
  txn: string;
  /** §9.2 `sub`: the user (or, without one, the calling principal). */
  sub: string;
  /** §9.2 `req_wl`: the workload that asked (the proven workload, else the OAuth client). */
  reqWl: string;
  /** §9.2 `scope`: space-separated, never empty. */
  scope: string;
  /** §9.2 `tctx`: the immutable transaction context. */
  tctx: Readonly<Record<string, unknown>>;
  /** §9.2 `rctx`: the request environment, or undefined to leave it out. */
  rctx: Readonly<Record<string, unknown>> | undefined;
}

export interface TxnMinterOptions {
  /** Absolute path of the PEM private key. */
  keyFile: string;
  algorithm: AsymmetricAlgorithm;
  /** §9.2 `aud`: the trust domain the upstream accepts tokens for. */
  audience: string;
  /** §9.2 `iss` (optional in the draft, always set here): identifies this minter. */
  issuer: string;
  /** `exp - iat`, whole seconds. */
  lifetimeSeconds: number;
  /** How long a replaced key stays in the JWK Set. At least the lifetime, or its last tokens stop verifying early. */
  rotationOverlapMs: number;
  logger: Logger;
  /** Wait after the last file event before re-reading. Default 200 ms. */
  debounceMs?: number;
  /** Milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
}

export interface TxnMinterStatus {
  kid: string;
  algorithm: AsymmetricAlgorithm;
  /** Replaced keys still published, with when they leave the key set. */
  retired: { kid: string; until: string }[];
  loadedAt: string;
  /** Why the last reload failed; null after a success. */
  lastError: string | null;
}

export class TxnTokenMinter {
  readonly algorithm: AsymmetricAlgorithm;
  private readonly options: TxnMinterOptions;
  private readonly now: () => number;
  private current: SigningKey;
  private retired: { key: SigningKey; until: number }[] = [];
  private loadedAt: number;
  private lastError: string | null = null;
  private jwksBody: string | undefined;
  private watcher: FileWatch | undefined;

  /** Reads the key once; throws TxnKeyFileError when it cannot be used (startup fails). */
  constructor(options: TxnMinterOptions) {
    if (!(Number.isInteger(options.lifetimeSeconds) && options.lifetimeSeconds > 0)) throw new TypeError('lifetimeSeconds must be a whole number of seconds, more than zero.');
    if (options.audience === '' || options.issuer === '') throw new TypeError('audience and issuer must not be empty.');
    this.options = options;
    this.algorithm = options.algorithm;
    this.now = options.now ?? Date.now;
    this.current = readSigningKey(options.keyFile, options.algorithm);
    this.loadedAt = this.now();
  }

  /** The kid new tokens are signed with. */
  get kid(): string {
    return this.current.kid;
  }

  /**
   * Signs one Txn-Token (§9: a JWS with typ txntoken+jwt). Claims in the order of the draft's
   * example; `iat`/`exp` from the injected clock. Synchronous; throws only on a signing failure.
   */
  mint(claims: MintClaims): string {
    const iat = Math.floor(this.now() / 1000);
    const payload = {
      iss: this.options.issuer,
      iat,
      aud: this.options.audience,
      exp: iat + this.options.lifetimeSeconds,
      txn: claims.txn,
      sub: claims.sub,
      scope: claims.scope,
      req_wl: claims.reqWl,
      tctx: claims.tctx,
      ...(claims.rctx === undefined ? {} : { rctx: claims.rctx }),
    };
    const key = this.current;
    const signingInput = `${key.encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return `${signingInput}.${signJws(this.algorithm, key.privateKey, signingInput).toString('base64url')}`;
  }

  /**
   * The JWK Set (RFC 7517 §5) to publish: the current key first, then every replaced key whose
   * overlap has not ended. Serialized once per change; a retired key leaves when its time is up.
   */
  jwks(): string {
    const now = this.now();
    if (this.retired.some((r) => r.until <= now)) {
      this.retired = this.retired.filter((r) => r.until > now);
      this.jwksBody = undefined;
    }
    return (this.jwksBody ??= JSON.stringify({ keys: [this.current.publicJwk, ...this.retired.map((r) => r.key.publicJwk)] }));
  }

  /** Re-reads the key file when it changes (src/file-watch.ts). */
  watch(): void {
    this.watcher ??= watchFiles([this.options.keyFile], {
      debounceMs: this.options.debounceMs ?? 200,
      onChange: () => this.reload(),
      onError: (err, dir) => this.options.logger.error({ err, dir }, 'Txn-Token key file watcher failed; key reload is off for this folder'),
    });
  }

  /**
   * Reads the key file again. A different key becomes the signing key at once and the one it
   * replaces stays published for the overlap; the same key changes nothing; an unusable file
   * keeps the current key and is logged. Returns whether the key changed. Never throws.
   */
  reload(): boolean {
    let next: SigningKey;
    try {
      next = readSigningKey(this.options.keyFile, this.algorithm);
    } catch (err) {
      this.lastError = err instanceof TxnKeyFileError ? err.message : String(err);
      this.options.logger.error({ err: this.lastError, keptKid: this.current.kid }, 'Txn-Token key file reload failed; keeping the previous key');
      return false;
    }
    this.lastError = null;
    if (next.kid === this.current.kid) return false;
    const now = this.now();
    const previous = this.current;
    // A key that comes back while still published is current again, not listed twice.
    this.retired = [{ key: previous, until: now + this.options.rotationOverlapMs }, ...this.retired.filter((r) => r.key.kid !== next.kid && r.key.kid !== previous.kid)];
    this.current = next;
    this.loadedAt = now;
    this.jwksBody = undefined;
    this.options.logger.info({ kid: next.kid, retiredKid: previous.kid, retiredUntil: new Date(now + this.options.rotationOverlapMs).toISOString() }, 'Txn-Token signing key replaced');
    return true;
  }

  status(): TxnMinterStatus {
    this.jwks();
    return {
      kid: this.current.kid,
      algorithm: this.algorithm,
      retired: this.retired.map((r) => ({ kid: r.key.kid, until: new Date(r.until).toISOString() })),
      loadedAt: new Date(this.loadedAt).toISOString(),
      lastError: this.lastError,
    };
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}
