package agentward.lib.rar_test

import data.agentward.lib.rar
import data.agentward.lib.scopes

payments := "https://pay.example.com/payments"

# RFC 9396 §2 example, as the AS issued it for this resource.
payment := {
	"type": "payment_initiation",
	"actions": ["initiate", "status", "cancel"],
	"locations": [payments],
	"instructedAmount": {"currency": "EUR", "amount": "123.50"},
	"creditorName": "Merchant A",
	"creditorAccount": {"iban": "DE02100100109307118603"},
}

# RFC 9396 §2.2 common fields, with an identifier and no locations (applies at every resource).
repo := {
	"type": "repository",
	"actions": ["read", "create_issue"],
	"identifier": "acme/website",
	"datatypes": ["issues", "pull_requests"],
	"maxResults": 50,
}

token(details) := token_at(details, payments)

token_at(details, resource) := {
	"resource": {"id": resource},
	"subject": {"sub": "user-42", "scopes": ["payments"], "authorizationDetails": details},
}

test_details_and_types if {
	rar.details == [payment, repo] with input as token([payment, repo])
	rar.types == {"payment_initiation", "repository"} with input as token([payment, repo])
}

test_no_token_or_no_details_is_empty if {
	rar.details == [] with input as {"subject": null, "resource": {"id": payments}}
	rar.details == [] with input as token([])
	rar.details == [] with input as {"subject": {"sub": "user-42"}, "resource": {"id": payments}}
	count(rar.types) == 0 with input as token([])
	not rar.allows_action("payment_initiation", "initiate") with input as {"subject": null, "resource": {"id": payments}}
}

test_details_of_selects_by_type if {
	rar.details_of("payment_initiation") == [payment] with input as token([payment, repo])
	rar.details_of("repository") == [repo] with input as token([payment, repo])
}

test_allows_action if {
	rar.allows_action("payment_initiation", "initiate") with input as token([payment])
	rar.allows_action("payment_initiation", "cancel") with input as token([payment])
	rar.allows("payment_initiation", "status", payments) with input as token([payment])
}

# RAR-N02: only unknown types grant nothing, whatever they contain.
test_rar_n02_unknown_types_grant_nothing if {
	other := object.union(payment, {"type": "payment_initiation_v2"})
	inp := token([other, {"type": "urn:example:everything", "actions": ["initiate"]}])
	rar.details_of("payment_initiation") == [] with input as inp
	not rar.allows_action("payment_initiation", "initiate") with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", 1) with input as inp
}

# RAR-N03: the right type, but the action is not listed; an element without actions lists none.
test_rar_n03_action_not_listed if {
	not rar.allows_action("payment_initiation", "refund") with input as token([payment])
	no_actions := object.remove(payment, ["actions"])
	not rar.allows_action("payment_initiation", "initiate") with input as token([no_actions])
	not rar.allows_action("payment_initiation", "initiate") with input as token([object.union(payment, {"actions": "initiate"})])
}

# RAR-N04: `locations` names another resource server, so the element does not apply here.
test_rar_n04_locations_of_another_resource if {
	inp := token_at([payment], "https://other.example.com/payments")
	rar.details_of("payment_initiation") == [payment] with input as inp
	rar.details_here("payment_initiation") == [] with input as inp
	not rar.allows_action("payment_initiation", "initiate") with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", "10.00") with input as inp

	# It still applies where it says.
	rar.allows("payment_initiation", "initiate", payments) with input as inp
}

test_locations_must_list_the_resource_exactly if {
	# A prefix, another scheme or a trailing slash is another location (RFC 9396 §12).
	not rar.allows_action("payment_initiation", "initiate") with input as token_at([payment], "https://pay.example.com/payments/")
	not rar.allows_action("payment_initiation", "initiate") with input as token_at([payment], "https://pay.example.com")
	not rar.allows_action("payment_initiation", "initiate") with input as token_at([payment], "http://pay.example.com/payments")

	# An empty list applies nowhere; a non-array applies nowhere.
	not rar.allows_action("payment_initiation", "initiate") with input as token([object.union(payment, {"locations": []})])
	not rar.allows_action("payment_initiation", "initiate") with input as token([object.union(payment, {"locations": payments})])
	not rar.allows_action("payment_initiation", "initiate") with input as token([object.union(payment, {"locations": null})])
}

test_without_locations_an_element_applies_everywhere if {
	rar.allows_action("repository", "read") with input as token_at([repo], "https://tools.example.com/mcp")
	rar.details_here("repository") == [repo] with input as token_at([repo], "https://tools.example.com/mcp")
}

# RAR-N05: the amount exceeds the approved one, or is in another currency.
test_rar_n05_amount_over_the_approved_value if {
	inp := token([payment])
	rar.within_amount("payment_initiation", "instructedAmount", "EUR", "123.50") with input as inp
	rar.within_amount("payment_initiation", "instructedAmount", "EUR", 100) with input as inp
	rar.within_amount("payment_initiation", "instructedAmount", "EUR", "0.01") with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", "123.51") with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", 124) with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "USD", 1) with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "eur", 1) with input as inp
}

test_rar_n05_amounts_that_are_not_amounts_never_hold if {
	inp := token([payment])
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", -500) with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", "-5") with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", "1e2") with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", " 5") with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", null) with input as inp
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", "") with input as inp

	# An approved amount that is not an amount allows nothing.
	bad := object.union(payment, {"instructedAmount": {"currency": "EUR", "amount": "lots"}})
	not rar.within_amount("payment_initiation", "instructedAmount", "EUR", 1) with input as token([bad])
	not rar.within_amount("payment_initiation", "missingField", "EUR", 1) with input as inp
}

test_rar_n05_identifier_other_than_approved if {
	inp := token_at([repo], "https://tools.example.com/mcp")
	rar.identifier_allowed("repository", "acme/website") with input as inp
	not rar.identifier_allowed("repository", "acme/payroll") with input as inp
	not rar.identifier_allowed("repository", "ACME/website") with input as inp
	not rar.identifier_allowed("repository", "acme/website/") with input as inp
	not rar.identifier_allowed("payment_initiation", "acme/website") with input as inp
}

test_within_limit if {
	inp := token_at([repo], "https://tools.example.com/mcp")
	rar.within_limit("repository", "maxResults", 50) with input as inp
	rar.within_limit("repository", "maxResults", "20") with input as inp
	not rar.within_limit("repository", "maxResults", 51) with input as inp
	not rar.within_limit("repository", "minResults", 1) with input as inp
}

# RAR-N06: the type (or an action, or an identifier) matches only after case folding or Unicode
# normalization: no match (RFC 9396 §12).
test_rar_n06_no_case_folding_or_normalization if {
	folded := object.union(payment, {"type": "Payment_Initiation"})
	not rar.allows_action("payment_initiation", "initiate") with input as token([folded])
	rar.details_of("payment_initiation") == [] with input as token([folded])
	not rar.allows_action("payment_initiation", "Initiate") with input as token([payment])

	# "café" precomposed (NFC) in the token, decomposed (NFD) in the request.
	nfc := {"type": "caf\u00e9_order", "actions": ["order"]}
	not rar.allows_action("cafe\u0301_order", "order") with input as token([nfc])
	rar.allows_action("caf\u00e9_order", "order") with input as token([nfc])
}

# One element must grant everything; fields are never combined across elements.
test_checks_are_made_on_one_element if {
	# initiate up to 10 EUR; status (only) up to 1,000,000 EUR.
	small := object.union(payment, {"actions": ["initiate"], "instructedAmount": {"currency": "EUR", "amount": "10"}})
	large := object.union(payment, {"actions": ["status"], "instructedAmount": {"currency": "EUR", "amount": "1000000"}})
	inp := token([small, large])

	# Each separate helper finds some element ...
	rar.allows_action("payment_initiation", "initiate") with input as inp
	rar.within_amount("payment_initiation", "instructedAmount", "EUR", 500) with input as inp

	# ... but no one element allows initiating 500 EUR.
	not rar.allows_amount("payment_initiation", "initiate", "instructedAmount", "EUR", 500) with input as inp
	rar.allows_amount("payment_initiation", "initiate", "instructedAmount", "EUR", 10) with input as inp

	# The same for an action and an identifier.
	read_a := {"type": "repository", "actions": ["read"], "identifier": "acme/a"}
	write_b := {"type": "repository", "actions": ["create_issue"], "identifier": "acme/b"}
	inp2 := token([read_a, write_b])
	rar.allows_action_on("repository", "read", "acme/a") with input as inp2
	not rar.allows_action_on("repository", "create_issue", "acme/a") with input as inp2
}

test_element_helpers if {
	rar.lists(repo, "datatypes", "issues")
	not rar.lists(repo, "datatypes", "secrets")
	not rar.lists(repo, "identifier", "acme/website") # not an array
	not rar.lists(repo, "actions", ["read"])
	rar.has_identifier(repo, "acme/website")
	rar.applies_at(repo, "https://anywhere.example")
	rar.applies_at(payment, payments)
	not rar.applies_at(payment, "https://anywhere.example")
	rar.amount_within(payment, "instructedAmount", "EUR", "99.99")
	rar.limit_within(repo, "maxResults", 0)
}

# RAR-N07: details present in the token restrict it; a policy that looks only at scope is wrong.
# The token has the `payments` scope, and its details allow initiating at most 123.50 EUR.
scope_only_decision := scopes.has_all(["payments"])

details_decision if {
	scopes.has_all(["payments"])
	rar.allows_amount("payment_initiation", "initiate", "instructedAmount", "EUR", input.request.query.amount[0])
}

test_rar_n07_scope_alone_is_not_enough if {
	inp := object.union(token([payment]), {"request": {"method": "POST", "path": "/payments", "query": {"amount": ["5000.00"]}}})

	# Scope would allow a 5000 EUR payment ...
	scope_only_decision with input as inp

	# ... the details do not.
	not details_decision with input as inp

	# Within the approved amount both agree.
	ok := json.patch(inp, [{"op": "replace", "path": "/request/query/amount/0", "value": "99.00"}])
	details_decision with input as ok
}
