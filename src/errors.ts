/**
 * Error classes with stable codes. Every failure the proxy can answer with has exactly one code
 * here; docs/errors.md is the table users read (a test keeps the two in step). Codes are never
 * reused or renamed once released.
 *
 * `status` is the HTTP status, `oauthError` the RFC 6750 §3.1 / RFC 9470 §3 `error` value for the
 * `WWW-Authenticate` challenge (absent where no challenge applies), `title` the fixed,
 * client-safe sentence for the problem body. The mapping to a response lives in one place:
 * src/proxy/reject.ts.
 */

export type OAuthError = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'insufficient_user_authentication' | 'invalid_dpop_proof' | 'use_dpop_nonce';

interface CodeInfo {
  readonly status: number;
  readonly oauthError?: OAuthError;
  readonly title: string;
  /**
   * A WIMSE workload-credential failure. Decision U3 (docs/negative-cases.md): 401 with `WWW-Authenticate: WPT`
   * when the proof was a WPT (wpt-02 §2.1), 400 without a challenge when it was an HTTP message
   * signature (http-signature §3.5). `status` is the WPT-mode status; reject.ts applies the rule.
   */
  readonly wimse?: true;
  /**
   * The JSON-RPC 2.0 error code used when the refusal is answered inside JSON-RPC (on `mcp.paths`
   * and `a2a.paths`, src/proxy/reject.ts): request errors keep their HTTP status, policy denials
   * of calls with an id are answered 200 with a JSON-RPC error response.
   */
  readonly rpcError?: number;
}

export const ERROR_CODES = {
  // Admission
  ERR_BAD_REQUEST: { status: 400, title: 'The request is malformed.' },
  ERR_HEADERS_TOO_LARGE: { status: 431, title: 'The request headers are too large.' },
  ERR_REQUEST_TIMEOUT: { status: 408, title: 'The request was not received in time.' },
  ERR_BODY_TOO_LARGE: { status: 413, title: 'The request body is larger than this route accepts.' },
  ERR_BODY_READ: { status: 400, title: 'The request body could not be read.' },
  ERR_PATH_NOT_NORMALIZED: { status: 400, title: 'The request path has dot segments, encoded slashes or dots, or backslashes; send its normalized form.' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'This endpoint only answers GET and HEAD.' },
  ERR_EXPECTATION_FAILED: { status: 417, title: 'The only expectation supported is 100-continue.' },
  ERR_METHOD_OVERRIDE: { status: 400, title: 'Method override fields (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override, _method) are not accepted here; send the method itself.' },
  // Admission control (src/proxy/admission.ts)
  ERR_OVERLOADED: { status: 503, title: 'The proxy is at its limit of requests in flight and waiting; retry shortly.' },
  // Never sent: the client had gone. Recorded so that every request leaves an audit record (status 499, as nginx logs it).
  ERR_CLIENT_CLOSED: { status: 499, title: 'The client closed the connection before its request was served.' },

  // Credential extraction (RFC 6750 §2, §3.1)
  ERR_CREDENTIALS_MISSING: { status: 401, title: 'This resource needs an access token.' },
  ERR_AUTHORIZATION_MULTIPLE: { status: 400, oauthError: 'invalid_request', title: 'Send exactly one Authorization header.' },
  ERR_AUTHORIZATION_MALFORMED: { status: 400, oauthError: 'invalid_request', title: 'The Authorization header is malformed.' },
  ERR_AUTHORIZATION_SCHEME: { status: 400, oauthError: 'invalid_request', title: 'The Authorization scheme is not supported here.' },
  ERR_TOKEN_IN_QUERY: { status: 400, oauthError: 'invalid_request', title: 'Access tokens are not accepted in the URI query; use the Authorization header.' },
  ERR_TOKEN_IN_BODY: { status: 400, oauthError: 'invalid_request', title: 'Access tokens are not accepted in the request body; use the Authorization header.' },

  // Access token verification (RFC 9068 §4, RFC 8725)
  ERR_TOKEN_MALFORMED: { status: 401, oauthError: 'invalid_token', title: 'The access token is not a well-formed signed JWT.' },
  ERR_TOKEN_ENCRYPTED: { status: 401, oauthError: 'invalid_token', title: 'Encrypted access tokens are not accepted.' },
  ERR_TOKEN_TYPE: { status: 401, oauthError: 'invalid_token', title: 'The token is not an access token: its typ header is not one its issuer\'s profile accepts (at+jwt by default).' },
  ERR_TOKEN_NOT_ACCESS_TOKEN: { status: 401, oauthError: 'invalid_token', title: 'The token is not an access token (an ID token, a refresh token or another token of a trusted issuer).' },
  ERR_TOKEN_ISSUER: { status: 401, oauthError: 'invalid_token', title: 'The access token issuer is not trusted.' },
  ERR_TOKEN_AUDIENCE: { status: 401, oauthError: 'invalid_token', title: 'The access token was not issued for this resource.' },
  ERR_TOKEN_ALGORITHM: { status: 401, oauthError: 'invalid_token', title: 'The access token signing algorithm is not allowed.' },
  ERR_TOKEN_KEY_UNKNOWN: { status: 401, oauthError: 'invalid_token', title: "The access token's signing key is unknown." },
  ERR_TOKEN_SIGNATURE: { status: 401, oauthError: 'invalid_token', title: 'The access token signature is invalid.' },
  ERR_TOKEN_EXPIRED: { status: 401, oauthError: 'invalid_token', title: 'The access token has expired.' },
  ERR_TOKEN_NOT_YET_VALID: { status: 401, oauthError: 'invalid_token', title: 'The access token is not valid yet.' },
  ERR_TOKEN_ISSUED_IN_FUTURE: { status: 401, oauthError: 'invalid_token', title: 'The access token was issued in the future.' },
  ERR_TOKEN_CLAIM_MISSING: { status: 401, oauthError: 'invalid_token', title: 'The access token lacks a required claim.' },
  ERR_TOKEN_CLAIM_INVALID: { status: 401, oauthError: 'invalid_token', title: 'An access token claim has an invalid value.' },
  ERR_TOKEN_BINDING_UNSUPPORTED: { status: 401, oauthError: 'invalid_token', title: 'The access token is bound to a key by a method this resource cannot verify.' },
  ERR_DELEGATION_TOO_DEEP: { status: 401, oauthError: 'invalid_token', title: 'The delegation chain in the access token is longer than this resource accepts.' },
  // DPoP (RFC 9449 §4.3, §7.1, §9)
  ERR_DPOP_PROOF_MISSING: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP scheme needs a DPoP proof header.' },
  ERR_DPOP_PROOF_MULTIPLE: { status: 401, oauthError: 'invalid_dpop_proof', title: 'Send exactly one DPoP header.' },
  ERR_DPOP_PROOF_MALFORMED: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof is not a well-formed JWT with jti, htm, htu and iat.' },
  ERR_DPOP_PROOF_TYPE: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof typ must be dpop+jwt.' },
  ERR_DPOP_PROOF_ALGORITHM: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof signing algorithm is not allowed.' },
  ERR_DPOP_PROOF_KEY: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof must carry one public key in its jwk header.' },
  ERR_DPOP_PROOF_SIGNATURE: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof signature is invalid.' },
  ERR_DPOP_PROOF_METHOD: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof htm does not match the request method.' },
  ERR_DPOP_PROOF_URI: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof htu does not match the request URI.' },
  ERR_DPOP_PROOF_EXPIRED: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof was not created recently enough (iat).' },
  ERR_DPOP_PROOF_ATH: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof ath does not match the access token.' },
  ERR_DPOP_REPLAYED: { status: 401, oauthError: 'invalid_dpop_proof', title: 'The DPoP proof was already used.' },
  ERR_DPOP_NONCE: { status: 401, oauthError: 'use_dpop_nonce', title: 'Resource server requires nonce in DPoP proof.' },
  ERR_DPOP_BINDING_MISMATCH: { status: 401, oauthError: 'invalid_token', title: 'Invalid DPoP key binding.' },
  ERR_DPOP_TOKEN_NOT_BOUND: { status: 401, oauthError: 'invalid_token', title: 'The access token is not bound to a DPoP key (no cnf.jkt).' },
  ERR_DPOP_BOUND_TOKEN_AS_BEARER: { status: 401, oauthError: 'invalid_token', title: 'A DPoP-bound access token must be sent with the DPoP scheme.' },
  ERR_DPOP_REQUIRED: { status: 401, oauthError: 'invalid_token', title: 'This resource accepts only DPoP-bound access tokens.' },
  ERR_DPOP_WITH_BEARER: { status: 400, oauthError: 'invalid_request', title: 'A DPoP proof goes with Authorization: DPoP, not Bearer.' },
  // mTLS certificate-bound tokens (RFC 8705 §3)
  ERR_MTLS_CERTIFICATE_MISSING: { status: 401, oauthError: 'invalid_token', title: 'The access token is bound to a client certificate, and this connection presented none.' },
  ERR_MTLS_BINDING_MISMATCH: { status: 401, oauthError: 'invalid_token', title: 'The client certificate of this connection is not the one the access token is bound to.' },
  ERR_CLIENT_CERT_HEADER_UNTRUSTED: { status: 400, oauthError: 'invalid_request', title: 'Client-Cert and Client-Cert-Chain are accepted only from a trusted proxy (listen.trustedProxies).' },
  ERR_CLIENT_CERT_HEADER_MALFORMED: { status: 400, oauthError: 'invalid_request', title: 'Client-Cert or Client-Cert-Chain is not what RFC 9440 defines (Byte Sequences of DER certificates).' },
  ERR_CLIENT_CERT_HEADER_UNVERIFIED: { status: 401, title: 'The client certificate forwarded by the trusted proxy does not verify against the configured authorities.' },
  ERR_CLIENT_CERT_AMBIGUOUS: { status: 400, oauthError: 'invalid_request', title: 'The request carries a client certificate both on the connection and in Client-Cert.' },
  // Opaque tokens (RFC 7662 introspection)
  ERR_TOKEN_INACTIVE: { status: 401, oauthError: 'invalid_token', title: 'The access token is not active (revoked, expired or unknown to its issuer).' },
  // Revocation (docs/signals.md): a security event (OpenID SSF/CAEP/RISC) or an operator's purge
  // named this token's subject, session, client or id, and the token was issued before it.
  ERR_TOKEN_REVOKED: { status: 401, oauthError: 'invalid_token', title: 'The access token was revoked: a security event or an operator named it, its session, subject or client.' },
  ERR_INTROSPECTION_UNAVAILABLE: { status: 503, title: 'The token introspection endpoint is unavailable; retry later.' },
  ERR_INTROSPECTION_RESPONSE_INVALID: { status: 503, title: 'The token introspection endpoint returned an answer that could not be trusted.' },
  // Transaction Tokens (draft-ietf-oauth-transaction-tokens §9, §12). A Txn-Token is not an access
  // token (§13.13), so its 401s carry no `invalid_token`: the challenge is the plain Bearer one.
  ERR_TXN_TOKEN_MISSING: { status: 401, title: 'This resource needs a Txn-Token header.' },
  ERR_TXN_TOKEN_MULTIPLE: { status: 400, oauthError: 'invalid_request', title: 'Send exactly one Txn-Token.' },
  ERR_TXN_TOKEN_UNSUPPORTED: { status: 401, title: 'This resource does not accept Txn-Tokens.' },
  ERR_TXN_TOKEN_MALFORMED: { status: 401, title: 'The Txn-Token is not a well-formed compact JWS.' },
  ERR_TXN_TOKEN_TYPE: { status: 401, title: 'The token is not a Txn-Token (typ must be txntoken+jwt).' },
  ERR_TXN_TOKEN_ALGORITHM: { status: 401, title: 'The Txn-Token signing algorithm is not allowed.' },
  ERR_TXN_TOKEN_KEY_UNKNOWN: { status: 401, title: "The Txn-Token's signing key is unknown." },
  ERR_TXN_TOKEN_SIGNATURE: { status: 401, title: 'The Txn-Token signature is invalid.' },
  ERR_TXN_TOKEN_AUDIENCE: { status: 401, title: 'The Txn-Token was not issued for this trust domain.' },
  ERR_TXN_TOKEN_EXPIRED: { status: 401, title: 'The Txn-Token has expired.' },
  ERR_TXN_TOKEN_NOT_YET_VALID: { status: 401, title: 'The Txn-Token is not valid yet.' },
  ERR_TXN_TOKEN_ISSUED_IN_FUTURE: { status: 401, title: 'The Txn-Token was issued in the future.' },
  ERR_TXN_TOKEN_LIFETIME: { status: 401, title: 'The Txn-Token is valid for longer than this resource accepts.' },
  ERR_TXN_TOKEN_CLAIM_MISSING: { status: 401, title: 'The Txn-Token lacks a required claim.' },
  ERR_TXN_TOKEN_CLAIM_INVALID: { status: 401, title: 'A Txn-Token claim has an invalid value.' },
  // The Txn-Token minted for the upstream (forward.txnToken, docs/upstream-identity.md)
  ERR_TXN_MINT_NO_SUBJECT: { status: 403, title: 'The request has no verified subject to put in the Txn-Token for the upstream.' },
  ERR_TXN_MINT_NO_SCOPE: { status: 403, title: 'The request has no scope left for the Txn-Token for the upstream: the token grants none the policy allows.' },
  ERR_TXN_MINT_FAILED: { status: 500, title: 'The Txn-Token for the upstream could not be signed.' },
  // Workload identity (draft-ietf-wimse-*, SPIFFE): which credentials prove the agent
  ERR_WORKLOAD_MISSING: { status: 401, title: 'This resource needs a workload identity (a WIT with a WPT or an HTTP message signature, an X.509-SVID, or a JWT-SVID).' },
  ERR_WORKLOAD_UNSUPPORTED: { status: 401, title: 'This resource does not accept workload identity credentials.' },
  ERR_WORKLOAD_CONFLICT: { status: 401, title: 'The request proves two different workload identities.' },
  ERR_WORKLOAD_TOKEN_MISMATCH: { status: 401, oauthError: 'invalid_token', title: 'The access token was issued to another agent than the workload that presents it.' },
  // WIMSE Workload Identity Token (workload-creds-02 §5.1; WIT-SVID for spiffe:// identifiers)
  ERR_WIT_MISSING: { status: 401, wimse: true, title: 'A workload proof needs the Workload-Identity-Token header.' },
  ERR_WIT_MULTIPLE: { status: 401, wimse: true, title: 'Send exactly one Workload-Identity-Token.' },
  ERR_WIT_MALFORMED: { status: 401, wimse: true, title: 'The workload identity token is not a well-formed compact JWS.' },
  ERR_WIT_TYPE: { status: 401, wimse: true, title: 'The workload identity token must have typ wit+jwt.' },
  ERR_WIT_ALGORITHM: { status: 401, wimse: true, title: 'The workload identity token algorithm is not allowed for its trust domain.' },
  ERR_WIT_SUBJECT: { status: 401, wimse: true, title: 'The workload identity token sub is not a valid workload identifier.' },
  ERR_WIT_TRUST_DOMAIN: { status: 401, wimse: true, title: 'The workload identity token names a trust domain that is not trusted here.' },
  ERR_WIT_ISSUER: { status: 401, wimse: true, title: 'The workload identity token issuer is not trusted for its trust domain.' },
  ERR_WIT_KEY_UNKNOWN: { status: 401, wimse: true, title: 'No single key of the trust domain matches the workload identity token.' },
  ERR_WIT_SIGNATURE: { status: 401, wimse: true, title: 'The workload identity token signature is invalid.' },
  ERR_WIT_EXPIRED: { status: 401, wimse: true, title: 'The workload identity token is expired or not yet valid.' },
  ERR_WIT_ISSUED_IN_FUTURE: { status: 401, wimse: true, title: 'The workload identity token was issued in the future.' },
  ERR_WIT_LIFETIME: { status: 401, wimse: true, title: 'The workload identity token is valid for longer than its trust domain allows.' },
  ERR_WIT_CLAIM_MISSING: { status: 401, wimse: true, title: 'The workload identity token lacks a required claim (sub, exp, cnf).' },
  ERR_WIT_CNF_INVALID: { status: 401, wimse: true, title: 'The workload identity token cnf.jwk is not a public signature key with a matching asymmetric alg.' },
  ERR_WIT_AUDIENCE: { status: 401, wimse: true, title: 'The workload identity token audience does not include this resource.' },
  ERR_WIT_NO_PROOF: { status: 401, wimse: true, title: 'A workload identity token is only accepted with a proof of possession (Authorization: WPT or a WIMSE HTTP message signature).' },
  // WIMSE Workload Proof Token (wpt-02 §2); failures are 401 with WWW-Authenticate: WPT (§2.1)
  ERR_WPT_MALFORMED: { status: 401, wimse: true, title: 'The workload proof token is not a well-formed compact JWS.' },
  ERR_WPT_TYPE: { status: 401, wimse: true, title: 'The workload proof token must have typ wpt+jwt.' },
  ERR_WPT_ALGORITHM: { status: 401, wimse: true, title: 'The workload proof token alg must equal the cnf.jwk.alg of the workload identity token.' },
  ERR_WPT_SIGNATURE: { status: 401, wimse: true, title: 'The workload proof token is not signed by the key of the workload identity token.' },
  ERR_WPT_CLAIM_MISSING: { status: 401, wimse: true, title: 'The workload proof token lacks a required claim (aud, exp, jti, wth).' },
  ERR_WPT_AUDIENCE: { status: 401, wimse: true, title: 'The workload proof token audience is not this resource.' },
  ERR_WPT_EXPIRED: { status: 401, wimse: true, title: 'The workload proof token is expired or not yet valid.' },
  ERR_WPT_ISSUED_IN_FUTURE: { status: 401, wimse: true, title: 'The workload proof token was issued in the future.' },
  ERR_WPT_LIFETIME: { status: 401, wimse: true, title: 'The workload proof token expires too far in the future.' },
  ERR_WPT_WTH: { status: 401, wimse: true, title: 'The workload proof token wth does not match the workload identity token.' },
  ERR_WPT_TTH: { status: 401, wimse: true, title: 'The workload proof token tth does not match the Txn-Token of the request.' },
  ERR_WPT_OTH: { status: 401, wimse: true, title: 'The workload proof token oth does not match the context tokens of the request.' },
  ERR_WPT_ATH: { status: 401, wimse: true, title: 'The workload proof token carries ath, which wpt-02 removed; send the access token bound by an HTTP message signature instead.' },
  ERR_WPT_REPLAYED: { status: 401, wimse: true, title: 'The workload proof token was already used.' },
  ERR_WPT_LEGACY: { status: 401, wimse: true, title: 'The Workload-Proof-Token header (wpt-01) is not accepted; send Authorization: WPT (wpt-02).' },
  // WIMSE HTTP Message Signatures (RFC 9421 profile, http-signature §3); failures are 400 (§3.5)
  ERR_HSIG_MALFORMED: { status: 400, title: 'The Signature or Signature-Input header is not a valid RFC 9421 structured field.' },
  ERR_HSIG_MULTIPLE: { status: 400, title: 'The request carries more than one signature tagged wimse-workload-to-workload.' },
  ERR_HSIG_LABEL: { status: 400, title: 'The WIMSE signature does not carry the signature label this resource accepts.' },
  ERR_HSIG_COMPONENTS: { status: 400, title: 'The WIMSE signature does not cover every component it must (@method, @path, @query, the credential and content headers present, and those this resource requires).' },
  ERR_HSIG_PARAMETERS: { status: 400, title: 'The WIMSE signature parameters are wrong: created, expires, nonce and wimse-aud are required, keyid and alg are forbidden.' },
  ERR_HSIG_EXPIRED: { status: 400, title: 'The WIMSE signature is expired, not yet valid, or valid for longer than this resource accepts.' },
  ERR_HSIG_AUDIENCE: { status: 400, title: 'The WIMSE signature wimse-aud is not this resource.' },
  ERR_HSIG_SIGNATURE: { status: 400, title: 'The WIMSE signature does not verify with the key of the workload identity token.' },
  ERR_HSIG_DIGEST: { status: 400, title: 'The request body does not match its Content-Digest, or a body was sent without a signed Content-Digest.' },
  ERR_HSIG_REPLAYED: { status: 400, title: 'The WIMSE signature nonce was already used.' },
  // SPIFFE X.509-SVID on the TLS connection (X509-SVID §4, §5)
  ERR_X509_SVID_SAN: { status: 401, title: 'The client certificate must carry exactly one URI SAN, a SPIFFE ID.' },
  ERR_X509_SVID_ID: { status: 401, title: 'The client certificate SPIFFE ID is not valid for an X.509-SVID.' },
  ERR_X509_SVID_TRUST_DOMAIN: { status: 401, title: 'The client certificate names a trust domain that is not trusted here.' },
  ERR_X509_SVID_LEAF: { status: 401, title: 'The client certificate is not a valid X.509-SVID leaf (it must not be a CA and must not sign certificates or CRLs).' },
  ERR_X509_SVID_CHAIN: { status: 401, title: 'The client certificate does not chain to the X.509 authorities of its own trust domain.' },
  ERR_X509_SVID_EXPIRED: { status: 401, title: 'The client certificate, or a certificate of its chain, is expired or not yet valid.' },
  // SPIFFE JWT-SVID in Authorization: Bearer (JWT-SVID §2–§5)
  ERR_JWT_SVID_MALFORMED: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID is not a well-formed compact JWS.' },
  ERR_JWT_SVID_TYPE: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID typ must be JWT or JOSE when present.' },
  ERR_JWT_SVID_ALGORITHM: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID algorithm is not one SPIFFE allows (RS, ES or PS with 256, 384 or 512).' },
  ERR_JWT_SVID_KEY_UNKNOWN: { status: 401, oauthError: 'invalid_token', title: 'No JWT-SVID key of the trust domain matches the token kid.' },
  ERR_JWT_SVID_SIGNATURE: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID signature is invalid.' },
  ERR_JWT_SVID_AUDIENCE: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID audience does not include this resource.' },
  ERR_JWT_SVID_EXPIRED: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID is expired or not yet valid.' },
  ERR_JWT_SVID_ISSUED_IN_FUTURE: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID was issued in the future.' },
  ERR_JWT_SVID_LIFETIME: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID is valid for longer than its trust domain allows.' },
  ERR_JWT_SVID_CLAIM_MISSING: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID lacks a required claim (sub, aud, exp).' },
  ERR_JWT_SVID_SUBJECT: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID sub is not a valid SPIFFE ID.' },
  ERR_JWT_SVID_TRUST_DOMAIN: { status: 401, oauthError: 'invalid_token', title: 'The JWT-SVID names a trust domain that is not trusted here.' },
  ERR_KEYS_UNAVAILABLE: { status: 503, title: 'The signing keys of the token issuer are unavailable; retry later.' },
  // Shared state (state.backend: redis): a proof's id cannot be recorded against replay, so the proof is not accepted.
  ERR_STATE_UNAVAILABLE: { status: 503, title: 'The shared replay state is unreachable, so this proof cannot be checked for replay; retry shortly.' },

  // Policy (docs/architecture.md "The request pipeline", step 6: every failure is a deny)
  ERR_POLICY_DENIED: { status: 403, rpcError: -32003, title: 'The policy denied this request.' },
  ERR_POLICY_NOT_FOUND: { status: 404, rpcError: -32602, title: 'Not found.' },
  ERR_POLICY_INSUFFICIENT_SCOPE: { status: 403, oauthError: 'insufficient_scope', title: 'The access token lacks a scope this request needs.' },
  ERR_POLICY_STEP_UP: { status: 401, oauthError: 'insufficient_user_authentication', title: 'A stronger or more recent user authentication is needed.' },
  ERR_POLICY_UNDEFINED: { status: 403, title: 'The policy returned no decision, so the request is denied.' },
  ERR_POLICY_NOT_LOADED: { status: 503, title: 'No policy is loaded.' },
  ERR_POLICY_EVALUATION: { status: 500, title: 'The policy could not be evaluated.' },
  ERR_POLICY_DECISION_INVALID: { status: 500, title: 'The policy returned a malformed decision.' },

  // JSON-RPC routes (mcp.paths, a2a.paths; JSON-RPC 2.0 §5.1, MCP 2026-07-28)
  ERR_RPC_CONTENT_TYPE: { status: 415, rpcError: -32600, title: 'JSON-RPC requests on this path must be sent with Content-Type: application/json.' },
  ERR_RPC_PARSE: { status: 400, rpcError: -32700, title: 'The JSON-RPC body is not valid UTF-8 JSON.' },
  ERR_RPC_INVALID: { status: 400, rpcError: -32600, title: 'The body is not a valid JSON-RPC 2.0 request.' },
  ERR_MCP_HEADER_MISMATCH: { status: 400, rpcError: -32020, title: 'The Mcp-Method or Mcp-Name header does not match the JSON-RPC body.' },
  ERR_MCP_RESPONSE_UNFILTERABLE: { status: 502, title: 'The upstream answered a list request in a form that cannot be filtered.' },

  // Upstream
  ERR_UPSTREAM_UNAVAILABLE: { status: 502, title: 'The upstream service could not be reached.' },
  ERR_UPSTREAM_RESET: { status: 502, title: 'The upstream service closed the connection.' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'The upstream service did not answer in time.' },

  // Security Event Tokens received from an SSF transmitter (RFC 8417, RFC 8935, RFC 8936). Never
  // an answer to an agent: the push endpoint answers them with RFC 8935 §2.3 `err` codes, poll
  // delivery reports them in `setErrs` (RFC 8936 §2.4), and each is logged with its reason.
  ERR_SET_MALFORMED: { status: 400, title: 'The security event token is not a well-formed signed JWT.' },
  ERR_SET_TYPE: { status: 400, title: 'The security event token must have typ secevent+jwt.' },
  ERR_SET_ALGORITHM: { status: 400, title: "The security event token's algorithm is not allowed for its transmitter." },
  ERR_SET_KEY_UNKNOWN: { status: 400, title: "No key of the transmitter's key set matches the security event token." },
  ERR_SET_SIGNATURE: { status: 400, title: 'The security event token signature is invalid.' },
  ERR_SET_ISSUER: { status: 400, title: 'The security event token was not issued by this transmitter.' },
  ERR_SET_AUDIENCE: { status: 400, title: 'The security event token was not issued for this receiver.' },
  ERR_SET_TIME: { status: 400, title: 'The security event token is too old, issued in the future, or expired.' },
  ERR_SET_REPLAYED: { status: 400, title: 'The security event token was already received (jti).' },
  ERR_SET_CLAIMS: { status: 400, title: 'The security event token lacks a required claim or has an invalid one (jti, iat, events, sub_id).' },
  ERR_SET_UNSUPPORTED_MEDIA: { status: 400, title: 'Security event tokens are pushed with Content-Type: application/secevent+jwt.' },
  ERR_SET_UNAUTHORIZED: { status: 401, title: 'The push request does not carry the Authorization value given to this transmitter.' },
  // The admin endpoint (POST /revoke, `agentward revoke`)
  ERR_ADMIN_UNAUTHORIZED: { status: 401, title: 'The admin request needs the admin bearer token.' },
  ERR_ADMIN_REQUEST: { status: 400, title: 'The revocation request is malformed: send a JSON object naming a subject, session, client, token id or email.' },

  ERR_INTERNAL: { status: 500, title: 'Internal error.' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Extra response facts an error may carry for its challenge (RFC 6750 §3, RFC 9470 §3). */
export interface ChallengeHints {
  scope?: readonly string[];
  acrValues?: string;
  maxAge?: number;
}

/**
 * The one error class the request path throws. `detail` is safe to show a client (it never holds
 * a token or internal state) and is only sent for 4xx; `cause` is for logs.
 */
export class AgentwardError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly oauthError: OAuthError | undefined;
  /** Whether `detail` may be shown to the client (false for every 5xx). */
  readonly expose: boolean;
  readonly detail: string;
  readonly hints: ChallengeHints;

  constructor(code: ErrorCode, detail?: string, options: { cause?: unknown; hints?: ChallengeHints } = {}) {
    const info: CodeInfo = ERROR_CODES[code];
    super(detail ?? info.title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentwardError';
    this.code = code;
    this.status = info.status;
    this.oauthError = info.oauthError;
    this.expose = info.status < 500;
    this.detail = detail ?? info.title;
    this.hints = options.hints ?? {};
  }
}

/** Wraps anything thrown by third-party code into our class (conventions §6). */
export function asAgentwardError(err: unknown, fallback: ErrorCode = 'ERR_INTERNAL'): AgentwardError {
  if (err instanceof AgentwardError) return err;
  return new AgentwardError(fallback, undefined, { cause: err });
}
