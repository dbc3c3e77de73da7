# Transaction Token helpers over input.txn (draft-ietf-oauth-transaction-tokens; docs/policy-input.md).
#
# A verified Txn-Token says what the transaction is for (scope, tctx); it does not authenticate
# the caller (§13.12). These helpers compare it with the request so that a call outside the
# transaction's intent is denied (TXN-N10, TXN-N11). All fail closed without a Txn-Token.
package agentward.lib.txn

# has_scope(s) holds when the Txn-Token's scope (split on spaces) includes `s` (TXN-N10).
has_scope(s) if s in input.txn.scopes

# context(key) is the value of `key` in the immutable transaction context tctx; undefined when
# there is no Txn-Token, no tctx, or no such key.
context(key) := input.txn.tctx[key]

# context_matches(key, value) holds when tctx[key] equals `value` exactly (no case folding).
# Deny when it does not hold for the value the request asks for (TXN-N11: tctx says MSFT, the
# request trades AAPL).
context_matches(key, value) if context(key) == value

# requested_by(workloads) holds when the token's req_wl (the workload that asked the Txn-Token
# service for it) is one of `workloads`.
requested_by(workloads) if input.txn.reqWl in workloads
