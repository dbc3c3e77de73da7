/**
 * The Txn-Token the upstream receives (`forward.txnToken`, docs/upstream-identity.md): minted per
 * allowed request from verified facts only, or, with `pass-through-or-mint`, the caller's own
 * Txn-Token once it has verified (draft-ietf-oauth-transaction-tokens §7: a Txn-Token travels the
 * call chain unchanged). Never the caller's access token: MCP 2026-07-28 forbids passing it on, and
 * a Txn-Token is how the user's context travels instead (§1).
 */
import { AgentwardError } from '../errors.ts';
import type { VerifiedAccessToken } from '../credentials/access-token.ts';
import type { MintClaims, TxnTokenMinter } from '../credentials/txn-mint.ts';
import type { VerifiedTxnToken } from '../credentials/txn-token.ts';
import type { ProvenWorkload } from '../identity/workload.ts';
import type { Decision } from '../policy/decision.ts';

export interface UpstreamTxnPlan {
  /** `mint`: always a new token. `pass-through-or-mint`: the caller's verified Txn-Token when it sent one. */
  mode: 'mint' | 'pass-through-or-mint';
  minter: Pick<TxnTokenMinter, 'mint'>;
}

/** The verified facts of one request the token is made of. */
export interface UpstreamTxnFacts {
  requestId: string;
  method: string;
  path: string;
  remoteAddress: string | undefined;
  token: VerifiedAccessToken | undefined;
  agent: ProvenWorkload | undefined;
  /** The caller's Txn-Token, verified, and its value as received. */
  txn: { verified: VerifiedTxnToken; value: string } | undefined;
  decision: Decision;
}

/** The `Txn-Token` field value for the upstream. Throws AgentwardError when no token can honestly be made. */
export function upstreamTxnToken(plan: UpstreamTxnPlan, facts: UpstreamTxnFacts): string {
  if (plan.mode === 'pass-through-or-mint' && facts.txn) return facts.txn.value;
  const claims = mintClaims(facts);
  try {
    return plan.minter.mint(claims);
  } catch (cause) {
    // node:crypto's throw (a key that cannot sign, which loading the key rules out): wrapped here, where it enters.
    throw new AgentwardError('ERR_TXN_MINT_FAILED', undefined, { cause });
  }
}

/**
 * What a minted token says (§9.2), each claim from something verified:
 * - `sub`: the user, the access token's subject; without one, the caller's Txn-Token's subject,
 *   then the proven workload, then the OAuth client;
 * - `req_wl`: the proven workload, else the OAuth client, else the caller's Txn-Token's `req_wl`;
 * - `scope`: the access token's scopes (else the caller's Txn-Token's), narrowed to the decision's
 *   `scopes` when it lists them; with neither token, the decision's `scopes` alone;
 * - `txn`: the request id, the same as in the audit record and `forward.requestIdHeader`;
 * - `tctx`: the method and path, and the decision's `context`;
 * - `rctx.req_ip`: the address of the TCP peer.
 */
export function mintClaims(facts: UpstreamTxnFacts): MintClaims {
  const { token, agent, txn, decision } = facts;
  const sub = token?.subject ?? txn?.verified.sub ?? agent?.id ?? token?.clientId ?? null;
  if (sub === null) throw new AgentwardError('ERR_TXN_MINT_NO_SUBJECT');
  const reqWl = agent?.id ?? token?.clientId ?? txn?.verified.reqWl ?? sub;
  const held = token?.scopes ?? txn?.verified.scopes;
  const allowed = decision.scopes;
  const scopes = held === undefined ? (allowed ?? []) : allowed === undefined ? held : held.filter((s) => allowed.includes(s));
  // §9.2: scope is required; an empty one would grant nothing and is refused by Txn-Token
  // verifiers that, like src/credentials/txn-token.ts, need one scope at least.
  if (scopes.length === 0) throw new AgentwardError('ERR_TXN_MINT_NO_SCOPE');
  return {
    txn: facts.requestId,
    sub,
    reqWl,
    scope: scopes.join(' '),
    // decision.ts refuses `method` and `path` in `context`; written last all the same, they always describe the request.
    tctx: decision.context === undefined ? { method: facts.method, path: facts.path } : { ...decision.context, method: facts.method, path: facts.path },
    rctx: facts.remoteAddress === undefined ? undefined : { req_ip: facts.remoteAddress },
  };
}
