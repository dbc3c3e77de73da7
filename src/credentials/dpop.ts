/**
 * DPoP proofs at the resource server (RFC 9449). `DpopVerifier.verify` runs every check of
 * §4.3 and §7.1 on the proof that accompanies `Authorization: DPoP <token>`; the binding of the
 * proof key to the token's `cnf.jkt` (§6.1) is the pipeline's last step, because it needs both.
 *
 * Replay (§11.1): a proof id is remembered for the acceptance window, keyed by a hash of the proof
 * key and `jti`, and inserted only once every check has passed. The memory is bounded: when the
 * cache is full the oldest ids are forgotten, and from then on proofs created no later than a
 * forgotten one are refused as too old, so a forgotten id can never be replayed.
 *
 * Steps 2 and 4-7 (form, typ, algorithm, key, signature) are src/jose/verify.ts's, with this
 * module's profile: the key is the proof's own `jwk` header, checked in `locateKey`.
 */
import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { importJWK, type CryptoKey, type JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import { MemoryReplayStore } from './replay-cache.ts';
import type { ReplayClaim, ReplaySpace, ReplayStore } from '../state/replay.ts';
import { claimAll } from '../state/replay.ts';
import { PRIVATE_JWK_MEMBERS } from '../jose/algorithms.ts';
import { explicitTyp, verifyCompactJws, type CompactJws, type JwsProfile, type KeyChoice } from '../jose/verify.ts';
import { AgentwardError } from '../errors.ts';
import { durationMs } from '../duration.ts';
import type { Services } from '../services.ts';

export interface DpopVerifierOptions {
  algorithms: readonly string[];
  /** How old a proof may be, in seconds (its `iat`). */
  maxAgeSeconds: number;
  /** Leeway for a proof created slightly in the future, in seconds. */
  clockSkewSeconds: number;
  replayCacheSize: number;
  /** Where proof ids are recorded (`state.backend`); default: this process's memory. */
  replay?: ReplayStore | undefined;
  /** Server nonces (§9), or undefined when not required. */
  nonces?: DpopNonces | undefined;
  now?: () => number;
}

export interface DpopRequest {
  method: string;
  /** The request URI built from trusted configuration (never from Host). */
  uri: string;
  accessToken: string;
}

export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key, to compare with the token's `cnf.jkt`. */
  jkt: string;
  /** Set when the proof used the previous nonce: send the current one back (§8.2). */
  freshNonce: string | undefined;
  /**
   * The proof id to record against replay, once the token binding also holds: the pipeline makes
   * it together with the request's other proofs (src/state/replay.ts `claimAll`).
   */
  replay: ReplayClaim;
  /** Records `replay` on its own (ERR_DPOP_REPLAYED when it was seen). */
  commit(): Promise<void>;
}

const MAX_JTI_LENGTH = 256;

/** What `locateKey` found for one proof: the thumbprint of its key. */
interface ProofKey {
  jkt: string;
}

export class DpopVerifier {
  private readonly algorithms: string[];
  private readonly maxAge: number;
  private readonly skew: number;
  private readonly nonces: DpopNonces | undefined;
  private readonly now: () => number;
  private readonly seen: ReplaySpace;
  private readonly ttlMs: number;
  /**
   * Imported proof keys by thumbprint and algorithm: a client signs every proof with the same key,
   * and importing it is a third of a proof's cost. Keyed by the thumbprint, so a different key
   * can never be served from the cache.
   */
  private readonly keys = new LRUCache<string, CryptoKey>({ max: 10_000 });
  private readonly profile: JwsProfile<ProofKey>;

  constructor(options: DpopVerifierOptions) {
    this.algorithms = [...options.algorithms];
    this.maxAge = options.maxAgeSeconds;
    this.skew = options.clockSkewSeconds;
    this.nonces = options.nonces;
    this.now = options.now ?? Date.now;
    // Marked with the proof's iat: proofs as old as a forgotten one are refused.
    this.seen = (options.replay ?? new MemoryReplayStore(() => this.now())).space('dpop', { max: options.replayCacheSize });
    this.ttlMs = (this.maxAge + 2 * this.skew) * 1000;
    this.profile = {
      noun: 'The DPoP proof',
      // §4.3 step 2: one well-formed JWS in compact form.
      form: 'parts',
      claimsFirst: false,
      // Steps 4, 5: typ, an allowed asymmetric algorithm.
      typ: explicitTyp({ accepted: ['dpop+jwt'], wrong: 'ERR_DPOP_PROOF_TYPE' }),
      algorithms: this.algorithms,
      failures: {
        malformed: 'ERR_DPOP_PROOF_MALFORMED',
        algorithm: 'ERR_DPOP_PROOF_ALGORITHM',
        // A key jose cannot import or use for the algorithm is not a usable proof key.
        keyUnknown: 'ERR_DPOP_PROOF_KEY',
        signature: 'ERR_DPOP_PROOF_SIGNATURE',
        unverifiable: 'ERR_DPOP_PROOF_KEY',
      },
      locateKey: (jws, proofKey) => this.proofKey(jws, proofKey),
    };
  }

  /** Proof ids held now, expired ones dropped first (for tests and /readyz detail). */
  get replayCacheEntries(): number {
    return this.seen.size;
  }

  private async importKey(jkt: string, alg: string, jwk: JWK): Promise<CryptoKey> {
    const id = `${alg}.${jkt}`;
    let key = this.keys.get(id);
    if (!key) {
      key = (await importJWK(jwk, alg)) as CryptoKey;
      this.keys.set(id, key);
    }
    return key;
  }

  /** Step 7: the proof's `jwk` header, a public key only; step 6 then checks the signature with it. */
  private proofKey(jws: CompactJws, proofKey: ProofKey): KeyChoice {
    const { jwk, alg } = jws.header;
    if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk) || PRIVATE_JWK_MEMBERS.some((m) => m in jwk)) {
      throw new AgentwardError('ERR_DPOP_PROOF_KEY');
    }
    const jkt = jwkThumbprint(jwk as Record<string, unknown>);
    proofKey.jkt = jkt;
    // `alg` is a string by now: the allow-list step has passed it.
    return { keys: () => this.importKey(jkt, alg!, jwk) };
  }

  async verify(proof: string, request: DpopRequest): Promise<VerifiedDpopProof> {
    const proofKey: ProofKey = { jkt: '' };
    const { claims } = await verifyCompactJws(proof, this.profile, proofKey);
    const { jkt } = proofKey;

    // Step 3: required claims with their types.
    const { jti, htm, htu, iat } = claims;
    if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH || typeof htm !== 'string' || typeof htu !== 'string' || typeof iat !== 'number' || !Number.isFinite(iat)) {
      throw new AgentwardError('ERR_DPOP_PROOF_MALFORMED');
    }

    // Steps 8 and 9: the method and the URI of this request, query and fragment ignored.
    if (htm !== request.method) throw new AgentwardError('ERR_DPOP_PROOF_METHOD');
    if (normalizeHtu(htu) !== normalizeHtu(request.uri)) throw new AgentwardError('ERR_DPOP_PROOF_URI');

    // Step 10: the server nonce, when required (§9: use_dpop_nonce with a fresh DPoP-Nonce).
    let freshNonce: string | undefined;
    if (this.nonces) {
      const state = this.nonces.check(claims.nonce);
      if (state === 'invalid') throw new AgentwardError('ERR_DPOP_NONCE');
      if (state === 'previous') freshNonce = this.nonces.current();
    }

    // Step 11: created recently (§11.1), slightly in the future tolerated.
    const now = this.now() / 1000;
    if (iat < now - this.maxAge - this.skew || iat > now + this.skew || this.seen.forgotten(iat)) throw new AgentwardError('ERR_DPOP_PROOF_EXPIRED');

    // Step 12: `ath` is the hash of exactly this access token (§4.2).
    const ath = hash('sha256', request.accessToken, 'base64url');
    if (typeof claims.ath !== 'string' || claims.ath !== ath) throw new AgentwardError('ERR_DPOP_PROOF_ATH');

    // Keyed by a hash of the key and jti (never the proof); kept as long as the proof is acceptable.
    const replay: ReplayClaim = { space: this.seen, key: hash('sha256', `${jkt}.${jti}`, 'base64url'), mark: iat, ttlMs: this.ttlMs, replayed: dpopReplayed };
    return { jkt, freshNonce, replay, commit: () => claimAll([replay]) };
  }
}

const dpopReplayed = (): Error => new AgentwardError('ERR_DPOP_REPLAYED');

/**
 * RFC 7638 §3: the SHA-256 thumbprint of a public JWK, computed synchronously over the required
 * members in lexicographic order (§3.2). A key lacking them is not a usable proof key.
 */
export function jwkThumbprint(jwk: Record<string, unknown>): string {
  // Own members only: a `kty` of "constructor" or "__proto__" must not find Object.prototype's.
  const members = typeof jwk.kty === 'string' && Object.hasOwn(THUMBPRINT_MEMBERS, jwk.kty) ? THUMBPRINT_MEMBERS[jwk.kty] : undefined;
  if (!members) throw new AgentwardError('ERR_DPOP_PROOF_KEY');
  const parts: string[] = [];
  for (const name of members) {
    const value = jwk[name];
    if (typeof value !== 'string' || value === '') throw new AgentwardError('ERR_DPOP_PROOF_KEY');
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(value)}`);
  }
  return hash('sha256', `{${parts.join(',')}}`, 'base64url');
}

/** RFC 7638 §3.2 (EC, RSA), RFC 8037 §2 (OKP): required members, sorted. */
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  RSA: ['e', 'kty', 'n'],
  OKP: ['crv', 'kty', 'x'],
};

/**
 * The URI compared for `htu` (RFC 9449 §4.3 step 9): query and fragment removed, then RFC 3986
 * §6.2.2 syntax-based normalization (case of scheme and host, percent-encoding case, unreserved
 * characters decoded, dot segments) and §6.2.3 scheme-based normalization (default port, empty
 * path) — which the WHATWG URL parser applies. An unparsable value never matches.
 */
export function normalizeHtu(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `\0invalid:${value}`;
  }
  const path = url.pathname.replace(/%[0-9a-fA-F]{2}/g, (pct) => {
    const c = String.fromCharCode(parseInt(pct.slice(1), 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : pct.toUpperCase();
  });
  return `${url.protocol}//${url.host}${path}`;
}

/**
 * Server-issued DPoP nonces (RFC 9449 §9), stateless: a nonce is the current time slot with an
 * HMAC over it, so any instance holding the key can check it. The current and the previous slot
 * are accepted, so a client crosses a rotation without an extra round trip. With shared state
 * (`state.backend: redis`) every replica uses the same key (`useKey`), so a nonce one issued is
 * accepted by all.
 */
export class DpopNonces {
  private key: Buffer;
  private readonly lifetimeMs: number;
  private readonly now: () => number;

  constructor(options: { lifetimeMs: number; key?: Buffer; now?: () => number }) {
    this.key = options.key ?? randomBytes(32);
    this.lifetimeMs = options.lifetimeMs;
    this.now = options.now ?? Date.now;
  }

  /** The HMAC key nonces are made with (random per process until `useKey`). */
  get secret(): Buffer {
    return this.key;
  }

  /** Replaces the key: the one every replica shares (src/app/state.ts). */
  useKey(key: Buffer): void {
    this.key = key;
  }

  current(): string {
    return this.forSlot(this.slot());
  }

  check(nonce: unknown): 'current' | 'previous' | 'invalid' {
    if (typeof nonce !== 'string') return 'invalid';
    const slot = this.slot();
    if (equal(nonce, this.forSlot(slot))) return 'current';
    if (equal(nonce, this.forSlot(slot - 1))) return 'previous';
    return 'invalid';
  }

  private slot(): number {
    return Math.floor(this.now() / this.lifetimeMs);
  }

  private forSlot(slot: number): string {
    const id = slot.toString(36);
    return `${id}.${createHmac('sha256', this.key).update(id).digest('base64url').slice(0, 22)}`;
  }
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The `oauth.dpop` section as this module reads it (config/schema.ts describes the file). */
export interface DpopSettings {
  mode: 'disabled' | 'allowed' | 'required';
  algorithms: readonly string[];
  maxAge: string;
  nonce: { enabled: boolean; lifetime: string };
  replayCacheSize: number;
}

/** What the pipeline checks DPoP with: the proof verifier, the server nonces when asked for, and whether DPoP is required. */
export interface DpopCheck {
  verifier: DpopVerifier;
  nonces: DpopNonces | undefined;
  required: boolean;
}

/** Builds DPoP (RFC 9449) from its section; undefined when the mode is `disabled`. */
export function buildDpop(settings: DpopSettings, services: Pick<Services, 'now' | 'clockSkewSeconds'>, replay?: ReplayStore): DpopCheck | undefined {
  if (settings.mode === 'disabled') return undefined;
  const { now, clockSkewSeconds } = services;
  const nonces = settings.nonce.enabled ? new DpopNonces({ lifetimeMs: durationMs(settings.nonce.lifetime), now }) : undefined;
  const verifier = new DpopVerifier({ algorithms: settings.algorithms, maxAgeSeconds: durationMs(settings.maxAge) / 1000, clockSkewSeconds, replayCacheSize: settings.replayCacheSize, replay, nonces, now });
  return { verifier, nonces, required: settings.mode === 'required' };
}
