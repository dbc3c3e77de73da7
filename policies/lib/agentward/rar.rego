# Rich Authorization Requests (RFC 9396) helpers over input.subject.authorizationDetails
# (docs/policy-input.md; RAR-Nxx in docs/negative-cases.md).
#
# The access token's `authorization_details` reach the policy unchanged: an array of objects,
# each with a string `type` (RFC 9396 §2). A token whose details are not shaped like that never
# gets here: it is refused with ERR_TOKEN_CLAIM_INVALID (RAR-N01).
#
# How a resource server enforces them (RFC 9396 §9, §12; RFC 9700 §2.3), and so how these
# helpers read them:
#   - only elements of a `type` the policy names count; an element of any other type grants
#     nothing (RAR-N02);
#   - one element must authorize the whole request: the action, the location, the identifier and
#     the amount are checked on the same element, never picked from different ones. The combined
#     helpers (allows_action_on, allows_amount) do that; two separate helper calls in one rule
#     may each be satisfied by a different element;
#   - `actions`: the request's action must be listed; an element without `actions` grants no
#     action (RAR-N03);
#   - `locations`: when present, the element applies only at the locations it lists, so it must
#     list this resource (`input.resource.id`); an empty list applies nowhere (RAR-N04);
#   - every comparison is exact: RFC 9396 §12 forbids collation and normalization, so a type,
#     action or identifier that matches only after case folding or Unicode normalization does
#     not match (RAR-N06). Amounts are compared as numbers (RAR-N05).
#
# Every helper fails closed: without a token, with no element of the type, or with a field of
# the wrong type, it does not hold (and the *_of / *_at sets are empty).
#
# Details restrict what a token grants in a way scope cannot express (RAR-N07): a policy that
# accepts tokens carrying details of a type must check them, not only the scope.
package agentward.lib.rar

# The token's authorization_details as given, or [] without a token or without details.
details := d if {
	d := input.subject.authorizationDetails
	is_array(d)
} else := []

# The set of types present in the token.
types contains d.type if {
	some d in details
	is_string(d.type)
}

# details_of(type) is the list of elements whose `type` equals `type` exactly, wherever they
# apply. Unknown types simply yield nothing.
details_of(type) := [d |
	some d in details
	is_object(d)
	d.type == type
]

# details_at(type, location) is the list of elements of `type` that apply at `location`: those
# without `locations`, and those whose `locations` lists `location`.
details_at(type, location) := [d |
	some d in details_of(type)
	applies_at(d, location)
]

# details_here(type) is details_at(type, input.resource.id): the elements of `type` that apply
# at this resource.
details_here(type) := details_at(type, input.resource.id)

# allows(type, action, location) holds when one element of `type` that applies at `location`
# lists `action` in its `actions`.
allows(type, action, location) if {
	some d in details_at(type, location)
	lists(d, "actions", action)
}

# allows_action(type, action) is allows(type, action, input.resource.id).
allows_action(type, action) if allows(type, action, input.resource.id)

# identifier_allowed(type, identifier) holds when one element of `type` that applies at this
# resource names exactly `identifier` (RFC 9396 §2.2 `identifier`).
identifier_allowed(type, identifier) if {
	some d in details_here(type)
	has_identifier(d, identifier)
}

# allows_action_on(type, action, identifier) holds when ONE element of `type` that applies at
# this resource both lists `action` and names `identifier`.
allows_action_on(type, action, identifier) if {
	some d in details_here(type)
	lists(d, "actions", action)
	has_identifier(d, identifier)
}

# within_amount(type, field, currency, amount) holds when one element of `type` that applies at
# this resource carries an amount object `field` (for example RFC 9396 §2's `instructedAmount`:
# {"currency": "EUR", "amount": "123.50"}) in exactly `currency` whose amount is at least
# `amount`. Amounts are non-negative numbers or decimal strings ("123.50"); anything else never
# holds (RAR-N05).
within_amount(type, field, currency, amount) if {
	some d in details_here(type)
	amount_within(d, field, currency, amount)
}

# allows_amount(type, action, field, currency, amount) holds when ONE element of `type` that
# applies at this resource lists `action` and allows `amount` in `currency` under `field`.
allows_amount(type, action, field, currency, amount) if {
	some d in details_here(type)
	lists(d, "actions", action)
	amount_within(d, field, currency, amount)
}

# within_limit(type, field, value) holds when one element of `type` that applies at this
# resource has a numeric `field` (a number or a decimal string) of at least `value`, e.g.
# {"type": "search", "maxResults": 50}.
within_limit(type, field, value) if {
	some d in details_here(type)
	limit_within(d, field, value)
}

# ---- Element helpers: combine them on one element, e.g.
#   some d in rar.details_here("tool_call")
#   rar.lists(d, "actions", input.mcp.name)
#   rar.lists(d, "datatypes", "issues")

# applies_at(d, location) holds when element `d` has no `locations` member, or its `locations`
# is an array that lists `location`. A `locations` of any other type applies nowhere.
applies_at(d, _) if {
	is_object(d)
	not has_member(d, "locations")
}

applies_at(d, location) if lists(d, "locations", location)

# lists(d, field, value) holds when element `d` has an array `field` (actions, locations,
# datatypes, privileges, or a type-specific list) that contains `value`, compared exactly.
lists(d, field, value) if {
	is_array(d[field])
	is_string(value)
	some v in d[field]
	v == value
}

# has_identifier(d, identifier) holds when element `d`'s `identifier` is exactly `identifier`.
has_identifier(d, identifier) if {
	is_string(identifier)
	d.identifier == identifier
}

# amount_within(d, field, currency, amount) holds when d[field] is {"currency": currency,
# "amount": limit} and `amount` <= limit (both non-negative numbers or decimal strings).
amount_within(d, field, currency, amount) if {
	is_string(currency)
	d[field].currency == currency
	limit := non_negative_number(d[field].amount)
	non_negative_number(amount) <= limit
}

# limit_within(d, field, value) holds when d[field] is a non-negative number (or decimal string)
# of at least `value`.
limit_within(d, field, value) if non_negative_number(value) <= non_negative_number(d[field])

# A non-negative number, or a decimal string such as "123.50" read as one; undefined otherwise
# (no sign, exponent or spaces: an amount like "1e9" or " 5" is not an amount).
non_negative_number(x) := x if {
	is_number(x)
	x >= 0
}

non_negative_number(x) := to_number(x) if {
	is_string(x)
	regex.match(`^[0-9]+(\.[0-9]+)?$`, x)
}

has_member(obj, key) if _ = obj[key]
