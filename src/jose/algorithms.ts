/**
 * The JWS algorithms agentward verifies, in one list (RFC 8725 §3.1-3.2: an explicit allow-list of
 * asymmetric algorithms; never `none`, never an HMAC keyed with public material). Config offers
 * these and only these; each verifier narrows them further (per issuer, per trust domain).
 */

/** RFC 7518 §3.1 / RFC 8037 §3.1 / RFC 9864 signature algorithms with a public verification key. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

const ASYMMETRIC: ReadonlySet<string> = new Set(ASYMMETRIC_ALGORITHMS);

/** Whether `alg` is one of ASYMMETRIC_ALGORITHMS. */
export function isAsymmetricAlgorithm(alg: unknown): alg is AsymmetricAlgorithm {
  return typeof alg === 'string' && ASYMMETRIC.has(alg);
}

/**
 * The algorithms SPIFFE allows for JWT-SVIDs and WIT-SVIDs (JWT-SVID §2.1, WIT-SVID §2.1, §3.2):
 * RS, ES and PS with 256, 384 or 512 bits; no EdDSA.
 */
export const SPIFFE_ALGORITHMS: ReadonlySet<AsymmetricAlgorithm> = new Set<AsymmetricAlgorithm>(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512']);

/** The key each algorithm goes with (RFC 7518 §3, RFC 8037 §3.1, RFC 9864); keyed by the one list, so none is missed. */
const KEY_FOR_ALG: Record<AsymmetricAlgorithm, (jwk: Record<string, unknown>) => boolean> = {
  ES256: (k) => k.kty === 'EC' && k.crv === 'P-256',
  ES384: (k) => k.kty === 'EC' && k.crv === 'P-384',
  ES512: (k) => k.kty === 'EC' && k.crv === 'P-521',
  RS256: (k) => k.kty === 'RSA',
  RS384: (k) => k.kty === 'RSA',
  RS512: (k) => k.kty === 'RSA',
  PS256: (k) => k.kty === 'RSA',
  PS384: (k) => k.kty === 'RSA',
  PS512: (k) => k.kty === 'RSA',
  EdDSA: (k) => k.kty === 'OKP' && (k.crv === 'Ed25519' || k.crv === 'Ed448'),
  Ed25519: (k) => k.kty === 'OKP' && k.crv === 'Ed25519',
};

/** Whether `alg` is an asymmetric algorithm and `jwk` a key of the type and curve it signs with. */
export function keyFitsAlgorithm(alg: unknown, jwk: Record<string, unknown>): alg is AsymmetricAlgorithm {
  return isAsymmetricAlgorithm(alg) && KEY_FOR_ALG[alg](jwk);
}

/** Private key members of RFC 7518 §6 (and `k` of §6.4): a key that verifies must hold none of them. */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
