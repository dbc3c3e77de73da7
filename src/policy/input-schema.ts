/**
 * The policy input document (version 1, docs/policy-input.md) as a JSON Schema: the reference policy
 * authors read. docs/policy-input.md is rendered from it (`npm run policy:input-doc`) and a test
 * fails when the committed page drifts, so the page, this schema and the `PolicyInput` type
 * (src/policy/input.ts) cannot disagree:
 *   - the type and the schema are checked against each other at compile time (below);
 *   - inputs the proxy builds are validated against the schema in test/unit/input-schema.test.ts;
 *   - every field carries a description, which the page prints.
 * Objects are closed (additionalProperties: false) except the `claims` bags and the MCP / A2A
 * arguments, which carry whatever the caller or the issuer sent.
 */
import { Type, type Static, type TObject, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';
import type { PolicyInput } from './input.ts';

/** A closed object: the input never has keys the schema does not name. */
function Closed<T extends TProperties>(properties: T, description: string): TObject<T> {
  return Type.Object(properties, { additionalProperties: false, description });
}

/** A string from a fixed list, as a plain JSON Schema `enum`. */
function Enum<const T extends readonly string[]>(values: T, description: string): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], description });
}

/** `schema` or `null`; the description is the field's. */
function Nullable<T extends TSchema>(schema: T, description: string) {
  return Type.Union([schema, Type.Null()], { description });
}

const Seconds = (description: string) => Type.Number({ description: `${description} Seconds since the epoch.` });
const Strings = (description: string) => Type.Array(Type.String(), { description });
const Bag = (description: string) => Type.Record(Type.String(), Type.Unknown(), { description });
const JsonRpcId = Type.Union([Type.String(), Type.Number(), Type.Null()], { description: 'The JSON-RPC `id`; `null` for a notification.' });

const ClientCertificateSchema = Closed(
  {
    subject: Type.String({
      description:
        'The subject distinguished name as an RFC 4514 string: most specific RDN first, separated by `,`, special characters escaped with `\\` (in Rego source, `\\\\`). The same form as RFC 8705 §2.1.2 `tls_client_auth_subject_dn`.',
    }),
    issuer: Type.String({ description: 'The issuer distinguished name, same form.' }),
    sans: Closed(
      {
        uri: Strings('URI names. A SPIFFE ID is one.'),
        dns: Strings('DNS names.'),
        email: Strings('rfc822Name values.'),
        ip: Strings('IP addresses: IPv4 dotted, IPv6 in RFC 5952 form (lower case, compressed).'),
      },
      'Subject alternative names by type, each `[]` when the certificate has none; other name types are not exposed.',
    ),
    thumbprint: Type.String({ description: 'RFC 8705 §3.1 `x5t#S256`: base64url (no padding) SHA-256 of the certificate\'s DER encoding.' }),
    notBefore: Seconds('Start of the certificate\'s validity.'),
    notAfter: Seconds('End of the certificate\'s validity.'),
    verified: Type.Boolean({
      description:
        'Whether the chain was verified, validity dates included. Over agentward\'s own TLS: by the handshake, against `listen.tls.clientCaFile` (and the trust domains\' X.509 authorities); always `true` with `clientCert: required`; with `optional`, `false` for a self-signed, foreign or expired certificate, which then proves only that the caller holds its key. Forwarded by a trusted proxy (`Client-Cert`, RFC 9440): by agentward itself, against `listen.trustedProxies.clientCaFile` (and the trust domains\' X.509 authorities), after the proxy\'s own check; always `true`, since a forwarded certificate that fails is refused. Grant on names only when this is `true`.',
    }),
  },
  'The client certificate of the caller (the leaf only, not the chain): the TLS client certificate of the connection, or the one a trusted TLS-terminating proxy forwarded in `Client-Cert` (RFC 9440; `listen.trustedProxies`), the same facts either way. A `Client-Cert` field from any other peer is never read: it is removed, or refused when trusted proxies are configured.',
);

const MethodOverrideSchema = Closed(
  {
    action: Enum(
      ['stripped', 'forwarded'],
      '`stripped` (`forward.methodOverride: strip`): the fields were removed; they are not in `request.headers` or `request.query` and the upstream does not get them. `forwarded` (`pass`): the upstream gets them as sent, and may act on the method they name instead of `request.method`: deny what you do not mean to allow, e.g. `deny if input.request.methodOverride.action == "forwarded"`.',
    ),
    fields: Type.Array(
      Closed(
        {
          source: Enum(['header', 'query'], 'Where the field was: a header, or the query.'),
          name: Type.String({ description: 'The header name in lower case (`x-http-method-override`, `x-http-method`, `x-method-override`), or `_method`.' }),
          value: Type.String({ description: 'The value as sent (caller-controlled), e.g. `DELETE`.' }),
        },
        'One method override field.',
      ),
      { description: 'Every field: the headers first (`x-http-method-override`, `x-http-method`, `x-method-override`, one entry per field line), then the `_method` query values in order.' },
    ),
  },
  'Method override fields and what the proxy did with them.',
);

const RequestSchema = Closed(
  {
    id: Type.String({
      description:
        'The request id, as in the audit record and the `x-request-id` header (`forward.requestIdHeader`). A caller-sent id is kept when it matches `[A-Za-z0-9._:-]{1,128}`, so do not treat it as unique or trusted.',
    }),
    method: Type.String({ description: 'The method as sent. Methods are case-sensitive (RFC 9110 §9.1): `get` is not `GET`.' }),
    scheme: Enum(['http', 'https'], 'The scheme of `resource.id` (configuration), not of the connection.'),
    host: Type.String({ description: 'The host (and port, if any) of `resource.id` (configuration). Never the `Host` header, which the caller controls.' }),
    path: Type.String({
      description:
        'The path of the request target (up to `?` or `#`), as sent: nothing is decoded or normalized, and a target that starts with `//` is a path too. Paths with dot segments, encoded dots, slashes or backslashes, or backslashes never reach the policy (`ERR_PATH_NOT_NORMALIZED`).',
    }),
    query: Type.Record(Type.String(), Type.Array(Type.String()), {
      description: 'Query parameters, decoded (`+` and percent-encoding), each name with its values in order; `?b=` gives `"b": [""]`; `{}` without a query.',
    }),
    headers: Type.Record(Type.String(), Type.String(), {
      description:
        'Request headers with lower-case names; the values of a repeated field are joined with `", "` (RFC 9110 §5.3), those of `cookie` with `"; "` (RFC 6265 §5.4). Credential headers (`authorization`, `dpop`, ...; see `forward.stripCredentials`) are removed. Every header here is caller-controlled, including `host`, `x-forwarded-for` and `forwarded`: never grant on them.',
    }),
    clientCertificate: Nullable(
      ClientCertificateSchema,
      'The client certificate: the TLS one of this connection (with `listen.tls.clientCert` `optional` or `required`), or the one a trusted proxy forwarded (`listen.trustedProxies`). `null` when there is none: plain HTTP or `clientCert: none` without a forwarded certificate, or the client sent none. The certificate a trusted proxy connects with is its own, never the caller\'s.',
    ),
    methodOverride: Nullable(
      MethodOverrideSchema,
      'Method override fields the request carried (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`, any case, and the `_method` query parameter), and what `forward.methodOverride` did with them; `null` when it carried none. With the default `reject` such a request is refused (`ERR_METHOD_OVERRIDE`) and never reaches the policy.',
    ),
  },
  'The HTTP request.',
);

const TokenMatchSchema = Closed(
  {
    clientId: Nullable(Type.Boolean(), 'Whether the token\'s `client_id` names this workload (after `workload.binding.clients`); `null` when the token has no `client_id`.'),
    actor: Nullable(Type.Boolean(), 'Whether the token\'s current actor (`act.sub`) names this workload; `null` when the token has no `act`.'),
  },
  'Whether the access token of this request was issued to this workload.',
);

const AgentSchema = Closed(
  {
    id: Type.String({
      description: 'The full workload identifier, e.g. `spiffe://agents.example.com/research-bot`. Compare it whole (identifier-03 §4.3): `startswith` on the path alone would let another trust domain in.',
    }),
    trustDomain: Type.String({ description: 'Its trust domain (`agents.example.com`), one of `workload.trustDomains`.' }),
    path: Type.String({ description: 'The identifier path (`/research-bot`); meaningful only with `trustDomain`.' }),
    via: Enum(
      ['wit+wpt', 'wit+http_signature', 'x509_svid', 'jwt_svid'],
      'How it was proven. When several credentials proved it (they must agree), the first of this list. A `jwt_svid` is a bearer credential.',
    ),
    expiresAt: Seconds('When the proving credential expires.'),
    claims: Bag('The credential\'s other verified claims (a WIT\'s `iss`, `jti`, `iat`, ...; for an X.509-SVID `serialNumber`, `fingerprint256`, `issuer`, `notBefore`, `notAfter`).'),
    token: Nullable(TokenMatchSchema, 'With an access token, whether it names this workload (spec E.1 ACT-N05); `null` without an access token.'),
  },
  'The workload (agent) identity proven cryptographically on this request (draft-ietf-wimse-aims §6–§9): WIT + WPT, WIT + HTTP message signature, X.509-SVID or JWT-SVID. Never from a header the caller set. How each credential is checked: docs/workload-identity.md.',
);

/**
 * RFC 9396 §2: an object with a string `type`. Static type `unknown`, as in `SubjectInput`
 * (the claim checks guarantee the shape, the policy reads the members).
 */
const AuthorizationDetailSchema = Type.Unsafe<unknown>({
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string' } },
  description: 'One RFC 9396 authorization details object.',
});

const SubjectSchema = Closed(
  {
    iss: Type.String({ description: 'The issuer (`iss`), equal to one of `oauth.issuers[].issuer`.' }),
    sub: Nullable(
      Type.String(),
      'Whom the token acts for (`sub`, or the issuer profile\'s `subjectClaim`): the user or the system (draft-klrc-aiagent-auth §10.3). `null` only when that claim is not in the issuer\'s `requiredClaims` and the token lacks it.',
    ),
    clientId: Nullable(Type.String(), 'The agent as OAuth client (`client_id`, or the first of the issuer profile\'s `clientIdClaims`: `azp`, `cid`, `appid`). `null` only when no such claim is required and the token has none.'),
    scopes: Strings('The space-separated `scope` split into a list (or, by the issuer profile\'s `scopeClaims`, `scp` and `roles`, strings or arrays, joined); `[]` without them. Compare exactly (RFC 6749 §3.3).'),
    aud: Strings('The audiences (`aud`), always a list.'),
    acr: Nullable(Type.String(), 'Authentication context class (`acr`; RFC 9068 §2.2.1, RFC 9470).'),
    amr: Strings('Authentication methods (`amr`); `[]` when absent.'),
    authTime: Nullable(Type.Number(), 'When the user authenticated (`auth_time`), seconds since the epoch.'),
    authorizationDetails: Type.Array(AuthorizationDetailSchema, {
      description:
        'RFC 9396 rich authorization requests (`authorization_details`), exactly as the issuer sent them: objects with a string `type` and type-specific members; `[]` when absent. A token whose details are not an array of such objects is refused (`ERR_TOKEN_CLAIM_INVALID`). Read them with `agentward.lib.rar`.',
    }),
    jti: Nullable(Type.String(), 'The token id (`jti`).'),
    expiresAt: Seconds('Expiry (`exp`). For an introspected token without `exp`, the end of the time its answer may be cached.'),
    format: Enum(['jwt', 'opaque'], 'How the token was verified: `jwt`, a JWT access token checked locally (RFC 9068); `opaque`, described by the issuer\'s introspection endpoint (RFC 7662).'),
    binding: Enum(
      ['bearer', 'dpop', 'mtls'],
      'How the token is bound to the caller. `dpop`: it carries `cnf.jkt` and came with a DPoP proof by that key, verified before the policy runs (RFC 9449). `mtls`: it carries `cnf.x5t#S256` and came over a TLS connection whose client certificate has that thumbprint (RFC 8705 §3). Tokens with other `cnf` methods are refused before the policy.',
    ),
    mayAct: Nullable(Bag('The `may_act` object.'), 'RFC 8693 §4.4 `may_act`: who may act for the subject. Informational; never grant on it.'),
    claims: Bag(
      'The token\'s remaining verified claims (for a JWT, e.g. `iat`, `nbf` and custom claims; for an introspected token, the other members of the answer such as `active` and `token_type`). The claims with a field of their own, and `act`, are not repeated here.',
    ),
  },
  'The verified OAuth access token (a JWT per RFC 9068, or an opaque token described by introspection, RFC 7662). Only verified tokens reach the policy. Claim types are checked before (`ERR_TOKEN_CLAIM_INVALID`).',
);

const ActorSchema = Closed(
  {
    sub: Type.String({ description: 'The actor\'s `sub` (never empty).' }),
    iss: Nullable(Type.String(), 'The actor\'s `iss`, `null` when absent.'),
    claims: Bag('The actor\'s other members. `exp`, `nbf`, `iat` and `aud` inside `act` carry no meaning (RFC 8693 §4.1) and are dropped, as are `sub`, `iss` and the nested `act`.'),
  },
  'One actor of the delegation chain.',
);

const DelegationSchema = Closed(
  {
    chain: Type.Array(ActorSchema, {
      description:
        'Current actor first (the outermost `act`), earliest actor last (the most deeply nested). `[]` when the token has no `act`. Only `chain[0]` may grant (RFC 8693 §4.1); the others are for deny-style rules and audit.',
    }),
    depth: Type.Number({
      description: 'The number of actors (`count(chain)`); 0 without `act`. Never more than `oauth.maxDelegationDepth`: deeper tokens are refused with `ERR_DELEGATION_TOO_DEEP`.',
    }),
  },
  'The access token\'s RFC 8693 `act` claim flattened into a list. Always present: without a token or without `act` it is `{"chain": [], "depth": 0}`.',
);

const TxnSchema = Closed(
  {
    txn: Type.String({ description: 'The transaction identifier (`txn`).' }),
    sub: Type.String({ description: 'The subject of the transaction, unique within the trust domain (`sub`).' }),
    scopes: Strings('`scope` split on spaces.'),
    tctx: Nullable(Bag('The `tctx` object.'), 'The immutable transaction context (`tctx`).'),
    rctx: Nullable(Bag('The `rctx` object.'), 'The request environment (`rctx`), e.g. `req_ip`.'),
    reqWl: Type.String({ description: 'The workload that requested the token (`req_wl`).' }),
    iss: Nullable(Type.String(), '`iss`, when the token has one.'),
    issuedAt: Seconds('`iat`.'),
    expiresAt: Seconds('`exp`.'),
    claims: Bag('The other claims (not `aud`).'),
  },
  'A Transaction Token (draft-ietf-oauth-transaction-tokens) from the `Txn-Token` header, verified against `txnTokens`: signed by the trust domain\'s Txn-Token service, `aud` equal to `txnTokens.trustDomain`, current, with the §9.2 claims. It grants nothing by itself (§13.12, §13.13): comparing it with the request is the policy\'s job.',
);

const McpSchema = Closed(
  {
    method: Type.String({ description: 'The JSON-RPC `method`, e.g. `tools/call`, `tools/list`, `resources/read`, `initialize`.' }),
    name: Nullable(
      Type.String(),
      'What the call acts on: `params.uri` for `resources/read`, `resources/subscribe` and `resources/unsubscribe`, `params.name` for every other method (the tool of `tools/call`, the prompt of `prompts/get`); `null` when that member is not a string. The same value as the `Mcp-Name` header, which must agree with it when sent.',
    ),
    arguments: Nullable(Bag('The arguments object.'), '`params.arguments` (`tools/call`, `prompts/get`) when it is an object; `null` otherwise. Caller-controlled: compare it, never trust it.'),
    id: JsonRpcId,
    listFilter: Type.Boolean({
      description:
        '`true` when the call is not being made but asked about: the policy decides whether one item of a `tools/list`, `prompts/list` or `resources/list` result is shown, as the call it stands for (`tools/call` with the tool\'s name, `prompts/get`, `resources/read` with the uri as `name`). A policy that allows exactly the calls it means to allow needs no rule of its own for lists.',
    }),
  },
  'One MCP JSON-RPC call on an `mcp.paths` route (Streamable HTTP). A batch is decided once per element, with that element here.',
);

const A2aSchema = Closed(
  {
    method: Type.String({ description: 'The JSON-RPC `method` as sent, e.g. `SendMessage` (A2A 1.0) or `message/send` (A2A 0.3).' }),
    operation: Type.String({
      description:
        'The A2A 1.0 operation name for either naming: `SendMessage` (0.3 `message/send`), `SendStreamingMessage` (`message/stream`), `GetTask` (`tasks/get`), `ListTasks` (`tasks/list`), `CancelTask` (`tasks/cancel`), `SubscribeToTask` (`tasks/resubscribe`), `CreateTaskPushNotificationConfig` (`tasks/pushNotificationConfig/set`), `GetTaskPushNotificationConfig` (`.../get`), `ListTaskPushNotificationConfigs` (`.../list`), `DeleteTaskPushNotificationConfig` (`.../delete`), `GetExtendedAgentCard` (`agent/getAuthenticatedExtendedCard`). An unknown method is passed through as is: deny what you do not know.',
    }),
    id: JsonRpcId,
    arguments: Nullable(Bag('The params object.'), '`params` when it is an object; `null` otherwise. Caller-controlled: compare it, never trust it.'),
  },
  'One A2A JSON-RPC call on an `a2a.paths` route. A batch is decided once per element.',
);

export const PolicyInputSchema = Closed(
  {
    version: Type.Literal(1, { description: 'Always `1` for this document. A future incompatible input gets a new number.' }),
    now: Type.Number({
      description: "The proxy's clock when the input was built, in whole seconds since the epoch. Compare times against it, so tests can fix the clock with `with input as`.",
    }),
    request: RequestSchema,
    resource: Closed({ id: Type.String({ description: '`resource.id` from the configuration: this resource\'s identifier (the audience tokens must name).' }) }, 'The protected resource.'),
    agent: Nullable(AgentSchema, 'The workload (agent) identity proven on this request; `null` when the request proved none (always for an anonymous request, `oauth.anonymous: policy`).'),
    subject: Nullable(
      SubjectSchema,
      'The verified access token; `null` without one. A request without an access token reaches the policy only with `oauth.requireToken: false`, proven by a workload identity alone (with the default `true` it is refused with `ERR_CREDENTIALS_MISSING`), or with `oauth.anonymous: policy` when it presents no credential at all (then `agent` is `null` too and `credentials.presented` is `[]`). Write policies so that a `null` subject denies unless you mean otherwise.',
    ),
    delegation: DelegationSchema,
    txn: Nullable(TxnSchema, 'The verified Transaction Token; `null` without one, or when `txnTokens` is not configured.'),
    mcp: Nullable(McpSchema, 'The MCP call this decision is about; `null` outside `mcp.paths` routes or for a request that carries no JSON-RPC call (such as `GET` for the SSE stream).'),
    a2a: Nullable(A2aSchema, 'The A2A call this decision is about; `null` outside `a2a.paths` routes or for a request that carries no JSON-RPC call.'),
    credentials: Closed(
      {
        presented: Strings(
          'Names of the credentials on the request, in this order: those of the `Authorization` field (`access_token`, `dpop` when a DPoP proof came with it, `wpt`), then the workload credentials (`wit`, `http_signature`, `x509_svid`, `jwt_svid`; a JWT-SVID replaces `access_token`), `txn_token` when a verified Txn-Token came with it, and `client_certificate` when the TLS connection presented a client certificate (verified or not). `[]` only for an anonymous request (`oauth.anonymous: policy`): one that carried no credential header and no client certificate at all.',
        ),
      },
      'Which credentials the request carried.',
    ),
  },
  'The document every policy reads as `input`. Every key is always present: a credential that was not presented is `null`, never a missing key.',
);

/**
 * `true` exactly when A and B are assignable to each other. Tuples keep unions from being
 * distributed.
 */
type MutuallyAssignable<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/**
 * Compile-time proof that the schema describes the `PolicyInput` type and nothing else: a field
 * added to, removed from or retyped in one of them without the other turns this into a type
 * error (`true` is not assignable to `false`).
 */
export const SCHEMA_MATCHES_POLICY_INPUT: MutuallyAssignable<Static<typeof PolicyInputSchema>, PolicyInput> = true;
