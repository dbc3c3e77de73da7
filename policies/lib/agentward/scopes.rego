# OAuth scope helpers over the access token in input.subject (docs/policy-input.md).
#
# input.subject is null when no access token was presented; every helper then treats the
# granted set as empty, so has_all/has_any fail and missing returns everything (fail closed).
# Scopes are compared as exact, case-sensitive strings (RFC 6749 §3.3).
package agentward.lib.scopes

# Scopes granted by the access token, as a set (empty when there is no token).
granted contains s if some s in input.subject.scopes

# missing(required) is the set of required scopes that the token does not grant.
# `required` may be an array or a set.
missing(required) := {s | some s in required; not s in granted}

# has_all(required) holds when the token grants every scope in `required`
# (an empty `required` always holds).
has_all(required) if count(missing(required)) == 0

# has_any(required) holds when the token grants at least one scope in `required`
# (an empty `required` never holds).
has_any(required) if {
	some s in required
	s in granted
}
