/**
 * A workload (agent) identity proven on a request: plain data, produced by the credential
 * verifiers (src/credentials/workload.ts) and read by the policy input and the audit record.
 */

/** How the identity was proven (`input.agent.via`). */
export type WorkloadProof = 'wit+wpt' | 'wit+http_signature' | 'x509_svid' | 'jwt_svid';

/** A workload identity proven on a request; `input.agent` (docs/policy-input.md) is this plus the token match. */
export interface ProvenWorkload {
  /** The full workload identifier, exactly as the credential carries it, e.g. `spiffe://agents.example.com/research-bot`: compare it whole (identifier-03 §4.3). */
  id: string;
  trustDomain: string;
  /** The identifier path, e.g. `/research-bot`; meaningful only with `trustDomain`. */
  path: string;
  via: WorkloadProof;
  /** When the proving credential expires, seconds since the epoch. */
  expiresAt: number;
  /** The credential's other verified claims (WIT or JWT-SVID claims; certificate facts for an X.509-SVID). */
  claims: Record<string, unknown>;
}

/** Whether the access token's parties are this workload (`input.agent.token`); null when the token has no such party. */
export interface TokenMatch {
  clientId: boolean | null;
  actor: boolean | null;
}
