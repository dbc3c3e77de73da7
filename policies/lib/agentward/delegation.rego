# Delegation-chain helpers over input.delegation (docs/policy-input.md).
#
# input.delegation.chain is the access token's RFC 8693 `act` claim flattened: chain[0] is the
# current actor (the outermost `act`), the last element the earliest actor (the most deeply
# nested `act`).
#
# RFC 8693 §4.1: for access control a consumer "MUST only consider the token's top-level claims
# and the party identified as the current actor"; prior (nested) actors "are informational only".
# So only input.subject and chain[0] may GRANT anything:
#   - use current_actor / current_actor_in to grant;
#   - actor_appears looks at the whole chain and is ONLY for deny-style rules (an actor that must
#     never appear) and audit. Granting on it would let a privileged identity that merely took
#     part earlier in the chain authorize the request (spec E.1 ACT-N01);
#   - depth / within_depth are hygiene limits (deny-style).
# `may_act` (RFC 8693 §4.4, input.subject.mayAct) says who MAY become an actor; it is a hint for
# the authorization server at token exchange and never grants anything here (spec E.1 ACT-N06).
# This library deliberately offers no helper for it.
package agentward.lib.delegation

# The flattened chain, or [] when the token has no `act` claim.
chain := c if {
	c := input.delegation.chain
	is_array(c)
} else := []

# Number of actors in the chain: input.delegation.depth, or the chain length when the proxy did
# not send a depth. 0 for a token without `act` (impersonation or direct use).
depth := d if {
	d := input.delegation.depth
	is_number(d)
} else := count(chain)

# The current actor's `sub` (chain[0]); undefined when there is no chain.
current_actor := chain[0].sub

# within_depth(limit) holds when the chain has at most `limit` actors. A non-numeric limit never
# holds, so a misconfigured limit denies instead of comparing across types.
within_depth(limit) if {
	is_number(limit)
	depth <= limit
}

# actor_appears(sub) holds when `sub` is ANY actor in the chain, current or earlier.
# Deny-style rules and audit only: never use it to grant (RFC 8693 §4.1).
actor_appears(sub) if {
	some actor in chain
	actor.sub == sub
}

# current_actor_in(actors) holds when the current actor (chain[0]) is in `actors` (array or set).
# This is the only delegation helper that may be used to grant.
current_actor_in(actors) if current_actor in actors

# is_delegated holds when the token carries an `act` chain: the caller acts for the subject
# through at least one actor. A policy that requires delegation (spec E.1 ACT-N04) denies a token
# without it, so an impersonation token (no `act`) cannot stand in for a delegated one.
is_delegated if depth > 0
