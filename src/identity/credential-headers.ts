/**
 * Request headers that carry credentials. They are what the extract step reads and, with
 * `forward.stripCredentials`, what never reaches the upstream (MCP 2026-07-28 "Token Handling":
 * a server must not pass through the token it received). Lower case, as Node presents them.
 */
export const CREDENTIAL_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'dpop',
  'workload-identity-token',
  'workload-proof-token',
  'txn-token',
  'signature',
  'signature-input',
  // RFC 9440 client certificate headers are only meaningful from a trusted hop; an agent-sent copy
  // is never forwarded (RFC 9700 §4.13).
  'client-cert',
  'client-cert-chain',
];
