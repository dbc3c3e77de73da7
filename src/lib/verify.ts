/**
 * `agentward/verify`: the credential verifiers, key sources and errors of agentward as a library,
 * so a Node service can verify the same credentials in process and third parties can run test
 * vectors against the code the proxy runs (docs/library.md).
 *
 * This file only re-exports: what it lists is the stable surface (semver from 1.0; until then,
 * breaking changes are named in the release notes). Everything else under src/ is internal, even
 * where it is exported for the proxy's own use. Every verifier and key source takes `now`
 * (milliseconds since the epoch, default `Date.now`), so a test vector is checked at the instant
 * it was written for (conventions §10).
 */

// ---------------------------------------------------------------- OAuth access tokens (RFC 9068), DPoP (RFC 9449)
export { AccessTokenVerifier, type AccessTokenIssuer, type AccessTokenVerifierOptions, type VerifiedAccessToken } from '../credentials/access-token.ts';
export { DpopNonces, DpopVerifier, jwkThumbprint, normalizeHtu, type DpopRequest, type DpopVerifierOptions, type VerifiedDpopProof } from '../credentials/dpop.ts';
export type { IssuerProfileName, ProfileSettings } from '../identity/issuer-profiles.ts';
export type { Actor, DelegationChain } from '../identity/delegation.ts';

// ---------------------------------------------------------------- Workload credentials (WIMSE, SPIFFE), Txn-Tokens
export {
  WimseVerifier,
  type VerifiedWit,
  type VerifiedWorkload,
  type WimseErrorCode,
  type WimseIssuer,
  type WimseRequest,
  type WimseTrustDomain,
  type WimseVerifierOptions,
  type WitKeyResolver,
} from '../credentials/wimse.ts';
export {
  HttpSignatureVerifier,
  contentDigest,
  WIMSE_TAG,
  type HttpSignatureVerifierOptions,
  type SignedRequest,
  type VerifiedSignature,
  type WorkloadKey,
} from '../credentials/http-signature.ts';
export { JwtSvidVerifier, type JwtSvidErrorCode, type JwtSvidTrustDomain, type JwtSvidVerifierOptions, type VerifiedJwtSvid } from '../credentials/jwt-svid.ts';
export { verifyX509Svid, presentsX509Svid, MAX_CHAIN_LENGTH, type VerifiedX509Svid, type X509AuthoritiesOf } from '../credentials/x509-svid.ts';
export { presentedCertificate, tlsCertificateOf, type PresentedCertificate } from '../credentials/client-certificate.ts';
export type { ClientCertificate } from '../identity/client-certificate.ts';
export { TxnTokenVerifier, txnTokenHash, type TxnKeyResolver, type TxnTokenErrorCode, type TxnTokenVerifierOptions, type VerifiedTxnToken } from '../credentials/txn-token.ts';
export { ReplayCache, type ReplayCacheOptions } from '../credentials/replay-cache.ts';
export { parseWorkloadId, WorkloadIdError, type ParseWorkloadIdOptions, type WorkloadId, type WorkloadIdReason } from '../identity/workload-id.ts';

// ---------------------------------------------------------------- Key sources
export { IssuerKeys, metadataUrls, type IssuerKeysOptions, type KeySetSource, type RotationListener, type VerificationKey } from '../keys/issuer-keys.ts';
export {
  TrustBundle,
  parseBundle,
  type BundleRotationListener,
  type KeyResolver,
  type ParsedBundle,
  type SvidUse,
  type TrustBundleOptions,
  type TrustBundleSource,
  type TrustBundleStatus,
} from '../keys/trust-bundle.ts';

// ---------------------------------------------------------------- Low level: the one compact-JWS routine (advanced; see docs/library.md)
export {
  CompactJws,
  explicitTyp,
  verifyCompactJws,
  type Claims,
  type ExplicitTyp,
  type Failure,
  type JwsFailures,
  type JwsForm,
  type JwsKey,
  type JwsProfile,
  type KeyChoice,
  type KeySource,
  type TimeRule,
  type VerifiedJws,
} from '../jose/verify.ts';

// ---------------------------------------------------------------- Errors and plumbing
export { AgentwardError, ERROR_CODES, type ChallengeHints, type ErrorCode, type OAuthError } from '../errors.ts';
export { createLogger, type Logger } from '../observability/logger.ts';
