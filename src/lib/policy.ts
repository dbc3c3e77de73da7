/**
 * `agentward/policy`: the policy engine (Rego compiled to WebAssembly, evaluated in process with
 * opa-wasm), the decision contract and the input document, as a library (docs/library.md).
 *
 * Re-exports only; what is listed here is the stable surface. The engine has no clock of its own
 * for decisions: the time a policy sees is `input.now`, which the caller sets (a frozen instant
 * in a test vector).
 */
export { PolicyEngine, type MemoStatus, type PolicyEngineOptions, type PolicyStatus } from '../policy/engine.ts';
export { parseDecision, type Decision } from '../policy/decision.ts';
export type {
  A2aInput,
  AgentInput,
  McpInput,
  MethodOverrideField,
  MethodOverrideInput,
  PolicyInput,
  RequestInput,
  SubjectInput,
  TxnInput,
} from '../policy/input.ts';
export type { Actor, DelegationChain } from '../identity/delegation.ts';
export type { ClientCertificate } from '../identity/client-certificate.ts';
export type { ProvenWorkload, TokenMatch, WorkloadProof } from '../identity/workload.ts';
export { BundleVerifier, readVerificationKey, type BundleVerifierOptions, type VerificationKey as BundleVerificationKey } from '../policy/bundle-signature.ts';
export type { BundlePollOptions } from '../policy/bundle-source.ts';
export type { MemoOptions } from '../policy/memo.ts';
export { AgentwardError, ERROR_CODES, type ErrorCode } from '../errors.ts';
export { createLogger, type Logger } from '../observability/logger.ts';
