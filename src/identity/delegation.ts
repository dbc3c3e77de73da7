/**
 * RFC 8693 delegation chains. The `act` claim names the current actor; an `act` nested inside it
 * names the actor before, "the least recent actor is the most deeply nested" (RFC 8693 §4.1).
 *
 * Only the token's top-level claims and the current actor (`chain[0]`) may be used to grant
 * access; earlier actors "are informational only" (§4.1) and serve audit and deny-style rules.
 * The Rego library (policies/lib/agentward/delegation.rego) repeats this rule for policy authors.
 */
import { AgentwardError } from '../errors.ts';

export interface Actor {
  sub: string;
  iss: string | null;
  /** The actor's other identity claims. `exp`, `nbf`, `iat` and `aud` inside `act` carry no meaning (§4.1) and are dropped. */
  claims: Record<string, unknown>;
}

export interface DelegationChain {
  /** Current actor first, earliest last. Empty when the token has no `act`. */
  chain: Actor[];
  depth: number;
}

export const NO_DELEGATION: DelegationChain = Object.freeze({ chain: Object.freeze([]) as unknown as Actor[], depth: 0 });

const IGNORED_ACT_MEMBERS = new Set(['act', 'sub', 'iss', 'exp', 'nbf', 'iat', 'aud']);

/**
 * Flattens a verified token's `act` claim. A malformed chain (an `act` that is not an object, or
 * an actor without a string `sub`) rejects the token; a chain longer than `maxDepth` rejects it
 * with its own code. Walking stops at `maxDepth + 1`, so a hostile nesting costs nothing more.
 */
export function flattenDelegation(act: unknown, maxDepth: number): DelegationChain {
  if (act === undefined) return NO_DELEGATION;
  const chain: Actor[] = [];
  let current: unknown = act;
  while (current !== undefined) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) {
      throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'The act claim must be a JSON object (RFC 8693 section 4.1).');
    }
    const member = current as Record<string, unknown>;
    if (typeof member.sub !== 'string' || member.sub === '') {
      throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'Every actor in the act claim needs a string sub (RFC 8693 section 4.1).');
    }
    if (member.iss !== undefined && typeof member.iss !== 'string') {
      throw new AgentwardError('ERR_TOKEN_CLAIM_INVALID', 'An actor iss must be a string.');
    }
    if (chain.length === maxDepth) {
      throw new AgentwardError('ERR_DELEGATION_TOO_DEEP', `The delegation chain is longer than ${maxDepth} actor(s).`);
    }
    const claims: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(member)) if (!IGNORED_ACT_MEMBERS.has(k)) claims[k] = v;
    chain.push({ sub: member.sub, iss: typeof member.iss === 'string' ? member.iss : null, claims });
    current = member.act;
  }
  return { chain, depth: chain.length };
}
