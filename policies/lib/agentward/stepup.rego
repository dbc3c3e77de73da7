# Step-up authentication helpers (RFC 9470) over input.subject.acr / authTime (docs/policy-input.md).
#
# Both fail closed: an absent (null) `acr` or `auth_time` never satisfies a requirement
# (spec C.7 SU-N01, SU-N04). A policy that needs step-up denies with
#   {"allow": false, "reason": "...", "stepUp": {"acrValues": "mfa", "maxAge": 300}}
# which the proxy turns into 401 error="insufficient_user_authentication" with acr_values /
# max_age (RFC 9470 §3). Keep it apart from scope failures, which are 403 insufficient_scope
# (SU-N05).
package agentward.lib.stepup

# acr_in(values) holds when the token's `acr` (RFC 9068 §2.2.1) is one of `values`
# (array or set). A null `acr` never matches.
acr_in(values) if {
	is_string(input.subject.acr)
	input.subject.acr in values
}

# authenticated_within(seconds) holds when the user authenticated at most `seconds` ago, i.e.
# input.now - auth_time <= seconds (the max_age test of RFC 9470 §3). A null `auth_time` counts
# as too old (SU-N04).
authenticated_within(seconds) if {
	is_number(input.subject.authTime)
	input.now - input.subject.authTime <= seconds
}
