/**
 * The configuration schema: the single source of truth for the file's shape, its defaults and
 * its documentation. `config/agentward.schema.json` is generated from it (`npm run schema`) and a
 * test fails when the committed file drifts. Every object is closed (additionalProperties: false)
 * so a typo such as `audiance:` stops startup instead of silently disabling a check.
 */
import { ISSUER_PROFILES } from '../identity/issuer-profiles.ts';
// Asymmetric JWS algorithms only (RFC 8725 §3.1, §3.2): the one list, shared with the verifiers.
import { ASYMMETRIC_ALGORITHMS } from '../jose/algorithms.ts';
import { Type, type Static, type TSchema, type TObject, type TProperties, type TUnsafe } from '@sinclair/typebox';

/** A closed object: unknown keys are errors. */
function Closed<T extends TProperties>(properties: T, options: { description?: string; default?: unknown } = {}): TObject<T> {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

/** A string from a fixed list, as a plain JSON Schema `enum` (clearer errors than anyOf/const). */
function Enum<const T extends readonly string[]>(values: T, options: { default?: T[number]; description?: string } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** Durations are strings so units are explicit: "250ms", "30s", "5m", "1h". */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h)$';
/** A duration that must not be zero (a zero timeout or interval means "none" or "spin"). */
export const POSITIVE_DURATION_PATTERN = '^0*[1-9][0-9]*(ms|s|m|h)$';
const Duration = (defaultValue: string, description: string, options: { allowZero?: boolean } = {}) =>
  Type.String({
    pattern: options.allowZero ? DURATION_PATTERN : POSITIVE_DURATION_PATTERN,
    default: defaultValue,
    description: `${description} A duration such as "250ms", "30s", "5m", "1h"${options.allowZero ? '' : ', more than zero'}.`,
  });

/** host:port, IPv6 in brackets ("[::1]:8080"). Port 0 picks a free port. */
const Address = (defaultValue: string, description: string) =>
  Type.String({ pattern: '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$', default: defaultValue, description });

/** A secret: inline (discouraged outside tests), from an environment variable, or from a file. */
export const SecretSchema = Type.Object(
  {
    value: Type.Optional(Type.String({ minLength: 1 })),
    fromEnv: Type.Optional(Type.String({ minLength: 1, pattern: '^[A-Za-z_][A-Za-z0-9_]*$' })),
    fromFile: Type.Optional(Type.String({ minLength: 1 })),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    description: 'A secret value: exactly one of `value`, `fromEnv` (variable name) or `fromFile` (path; trailing newline removed).',
  },
);

/** An explicit allow-list of asymmetric JWS algorithms (RFC 8725 §3.1), never empty. */
const Algorithms = (defaults: readonly (typeof ASYMMETRIC_ALGORITHMS)[number][], description: string) =>
  Type.Array(Enum(ASYMMETRIC_ALGORITHMS), { minItems: 1, uniqueItems: true, default: [...defaults], description });

const ClaimNames = (description: string) => Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true, description }));

const IssuerSchema = Closed({
  issuer: Type.String({ minLength: 1, description: 'Issuer identifier, compared byte for byte with the token `iss` (RFC 9068 §4 step 3).' }),
  jwksUri: Type.Optional(Type.String({ minLength: 1, description: "The issuer's JWK Set URL. When absent, discovered from the issuer metadata." })),
  discovery: Enum(['auto', 'oauth-authorization-server', 'openid-configuration'], {
    default: 'auto',
    description: 'Where to find the metadata when `jwksUri` is absent: RFC 8414 (`oauth-authorization-server`), OpenID Connect Discovery (`openid-configuration`), or `auto` (RFC 8414 first).',
  }),
  audiences: Type.Optional(
    Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true, description: 'Audience values that name this resource. Default: [resource.id].' }),
  ),
  algorithms: Algorithms(['RS256', 'PS256', 'ES256', 'EdDSA'], 'JWS algorithms accepted from this issuer. Only asymmetric algorithms can be listed.'),
  profile: Type.Optional(Enum(ISSUER_PROFILES, {
    default: 'rfc9068',
    description:
      'How this server\'s JWT access tokens are read (docs/issuers.md). `rfc9068` (default): strict RFC 9068, `typ: at+jwt` required. `entra`, `okta`, `keycloak`, `auth0`, `hydra`, `cognito`: presets for servers that do not send at+jwt, each with a confusion guard that tells its access tokens from its ID tokens (a documented deviation from RFC 9068 §4). `custom`: the RFC 9068 preset, to be overridden field by field. Every field below overrides the profile.',
  })),
  typ: Type.Optional(
    Type.Array(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9!#$&^_.+/-]+$' }), {
      uniqueItems: true,
      description: 'JOSE `typ` header values accepted (case-insensitive, `application/` optional), besides `at+jwt`, which is always accepted. Default: the profile\'s (`at+jwt` for rfc9068; `at+jwt`, `jwt` for most others).',
    }),
  ),
  typRequired: Type.Optional(Type.Boolean({ description: 'Whether a token must have a `typ` header. Default: the profile\'s (true for rfc9068; false for entra, okta, cognito).' })),
  clientIdClaims: ClaimNames('Claims naming the OAuth client, in order; the first present one is `input.subject.clientId`. Default: the profile\'s (`client_id`; `azp`, `appid` for entra; `cid` for okta).'),
  scopeClaims: ClaimNames('Claims holding scopes or roles (a space-separated string or an array of strings); every one present is read into `input.subject.scopes`. Default: the profile\'s (`scope`; `scp`, `roles` for entra).'),
  subjectClaim: Type.Optional(Type.String({ minLength: 1, description: 'The claim that is `input.subject.sub`. Default: `sub`.' })),
  audienceClaims: ClaimNames('Claims holding the audience, in order; the first present one must name this resource (see `audiences`). Default: `aud` (`aud`, then `client_id` for cognito, whose access tokens have no aud).'),
  requiredClaims: Type.Optional(
    Type.Array(Type.String({ minLength: 1 }), {
      uniqueItems: true,
      description: 'Claims a token must carry. Default: the profile\'s (rfc9068: the RFC 9068 §2.2 set). `iss`, `exp` and the audience are always required.',
    }),
  ),
  confusionGuard: Type.Optional(
    Closed(
      {
        claims: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String(), { description: 'Claims that must have exactly these string values, e.g. `token_use: access`.' })),
        requireClientId: Type.Optional(Type.Boolean({ description: 'A claim of `clientIdClaims` must be present.' })),
        requireScope: Type.Optional(Type.Boolean({ description: 'A claim of `scopeClaims` must be present.' })),
        forbidClaims: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true, description: 'Claims that only ID tokens carry; a token with one is refused. Default for relaxed profiles: nonce, at_hash, c_hash.' })),
        audienceNotClientId: Type.Optional(Type.Boolean({ description: 'Refuse a token whose audience equals its own client id (the shape of an ID token).' })),
      },
      {
        description:
          'What still tells an access token from an ID token or another JWT of this issuer when `typ` is relaxed (RFC 8725 §3.11); failures are ERR_TOKEN_NOT_ACCESS_TOKEN. Each field overrides the profile\'s. An issuer that accepts tokens without `typ: at+jwt` must keep a check that sets access tokens apart (`claims`, `requireClientId` or `requireScope`).',
      },
    ),
  ),
  introspection: Type.Optional(
    Closed(
      {
        endpoint: Type.String({ minLength: 1, description: "The issuer's RFC 7662 introspection endpoint (https, or http on loopback)." }),
        clientId: Type.String({ minLength: 1, description: 'This resource server\'s client id at the issuer.' }),
        auth: Enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt'], { default: 'client_secret_basic', description: 'How the resource server authenticates to the endpoint.' }),
        clientSecret: Type.Optional(SecretSchema),
        privateKey: Type.Optional(SecretSchema),
        algorithm: Type.Optional(Enum(ASYMMETRIC_ALGORITHMS, { description: 'Signing algorithm of the private_key_jwt assertion; default: the key\'s `alg`.' })),
        format: Enum(['json', 'jwt'], { default: 'json', description: 'Ask for plain JSON (RFC 7662) or a signed response (RFC 9701), verified with the issuer\'s keys.' }),
        cacheTtl: Duration('60s', 'Longest time an active answer is reused (never beyond the token exp): the revocation delay.'),
        negativeCacheTtl: Duration('5s', 'How long an inactive answer is reused.'),
        cacheSize: Type.Integer({ minimum: 0, default: 10000, description: 'Answers remembered, by SHA-256 of the token; 0 keeps none (concurrent requests with one token still share one call).' }),
      },
      {
        description:
          'RFC 7662 introspection for opaque tokens (anything that is not a compact JWT) from this issuer. At most one issuer may have it: an opaque token names no issuer, and it is never sent to more than one.',
      },
    ),
  ),
});

const TrustDomainSchema = Closed({
  name: Type.String({ minLength: 1, description: 'The trust domain, e.g. `agents.example.com`: the authority of the workload identifiers it vouches for (SPIFFE ID §2.1: lowercase letters, digits, ".", "-", "_").' }),
  bundle: Closed(
    {
      file: Type.Optional(Type.String({ minLength: 1, description: 'A SPIFFE bundle file (JWK Set with `use` x509-svid, jwt-svid, wit-svid), reloaded when it changes. Relative to this file.' })),
      url: Type.Optional(Type.String({ minLength: 1, description: 'A SPIFFE bundle endpoint (https_web profile, SPIFFE Federation §5.2.1), polled every `spiffe_refresh_hint` (default 5 minutes).' })),
      maxStale: Duration('1h', 'With `url`: how long the last good bundle is still used while the endpoint fails; after that credentials of this trust domain are refused (503).'),
      timeout: Duration('5s', 'With `url`: longest wait for one bundle fetch.'),
    },
    { description: 'Where the trust domain key material comes from: exactly one of `file` or `url`.' },
  ),
  algorithms: Algorithms(
    ASYMMETRIC_ALGORITHMS,
    'JWS algorithms accepted for WITs of this trust domain. Default: every asymmetric algorithm, as the WIMSE drafts allow (EdDSA included). JWT-SVIDs always use the SPIFFE list (RS/ES/PS, JWT-SVID §2.1).',
  ),
  witProfile: Enum(['wimse', 'spiffe'], {
    default: 'wimse',
    description:
      'The algorithm rules for WITs whose `sub` is a spiffe:// ID. `wimse` (default): the WIMSE drafts, `algorithms` alone, and any asymmetric `cnf.jwk` (EdDSA included). `spiffe`: the SPIFFE WIT-SVID profile, RS/ES/PS only for the WIT and its `cnf.jwk` (WIT-SVID §2.1, §3.2). Either way a spiffe:// WIT needs a `kid` and no `aud`.',
  }),
  maxLifetime: Duration('24h', 'Longest validity (`exp - iat`) of a WIT or JWT-SVID of this trust domain.'),
});

const WitIssuerSchema = Closed({
  issuer: Type.String({ minLength: 1, description: 'The WIT issuer identifier, compared byte for byte with the WIT `iss` (creds §5.1). Never used to find keys: they come from `jwksUri` or `jwksFile`.' }),
  jwksUri: Type.Optional(Type.String({ minLength: 1, description: "The issuer's JWK Set URL (https; http only on loopback), fetched and refreshed like oauth.issuers key sets (oauth.keys)." })),
  jwksFile: Type.Optional(Type.String({ minLength: 1, description: "The issuer's JWK Set as a file, relative to this file; read at start, every oauth.keys.maxAge and on an unknown `kid` (at most every oauth.keys.cooldown)." })),
  trustDomains: Type.Array(Type.String({ minLength: 1 }), {
    minItems: 1,
    uniqueItems: true,
    description: 'The trust domains whose workloads this issuer may name in `sub`, e.g. `agents.example.com`. A WIT of another trust domain is never verified with its keys.',
  }),
  algorithms: Algorithms(ASYMMETRIC_ALGORITHMS, 'JWS algorithms accepted for WITs of this issuer. Default: every asymmetric algorithm, as the WIMSE drafts allow.'),
  maxLifetime: Duration('24h', 'Longest validity (`exp - iat`) of a WIT of this issuer.'),
});

/** The derived components the WIMSE signature base can hold (RFC 9421 §2.2; `componentValue` in src/credentials/http-signature.ts). */
const SIGNED_DERIVED_COMPONENTS = '@method, @scheme, @authority, @path, @query';
const TransmitterSchema = Closed({
  issuer: Type.String({ minLength: 1, description: "The transmitter's issuer identifier, compared byte for byte with every SET `iss` (RFC 8417 §2.2) and with the `issuer` of its `/.well-known/ssf-configuration` (SSF 1.0 §7.2)." }),
  jwksUri: Type.Optional(Type.String({ minLength: 1, description: "The transmitter's JWK Set URL. When absent, the `jwks_uri` of its SSF configuration (`/.well-known/ssf-configuration`, path-inserted as in RFC 8414)." })),
  audience: Type.Optional(Type.String({ minLength: 1, description: 'The `aud` its SETs must name: this receiver. Default: `signals.audience`.' })),
  algorithms: Algorithms(['RS256', 'PS256', 'ES256', 'EdDSA'], 'JWS algorithms accepted for its SETs. Only asymmetric algorithms can be listed.'),
  transmitterAuthorization: Type.Optional(
    SecretSchema,
  ),
  streamId: Type.Optional(Type.String({ minLength: 1, description: 'The stream id, when the transmitter keeps several streams for this receiver (sent as `stream_id` when reading the stream configuration).' })),
  delivery: Closed(
    {
      method: Enum(['push', 'poll'], { description: '`push`: the transmitter POSTs SETs to agentward (RFC 8935). `poll`: agentward POSTs to the transmitter for them (RFC 8936).' }),
      path: Type.Optional(Type.String({ pattern: '^/[!$&\'()*+,;=:@A-Za-z0-9._~/-]*$', description: 'Push: the path the transmitter POSTs to.' })),
      listener: Enum(['admin', 'main'], { default: 'admin', description: 'Push: which listener serves `path` (the admin listener by default; `main` when the transmitter can only reach the agents\' address).' }),
      authorization: Type.Optional(
        SecretSchema,
      ),
      endpoint: Type.Optional(Type.String({ minLength: 1, description: "Poll: the transmitter's polling endpoint. Default: `delivery.endpoint_url` of the stream configuration." })),
      interval: Duration('30s', 'Poll: time between two polls (sooner when the transmitter says more are available). After failures in a row the wait doubles, up to 8 intervals.'),
      maxEvents: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Poll: `maxEvents` asked for per poll (RFC 8936 §2.4).' }),
      timeout: Duration('10s', 'Poll and stream management: longest wait for one answer of the transmitter.'),
    },
    { description: 'How SETs are delivered.' },
  ),
});

const SignalsSchema = Closed(
  {
    audience: Type.Optional(Type.String({ minLength: 1, description: 'This receiver, as SETs name it in `aud` (RFC 8417 §2.2). Default: `resource.id`.' })),
    transmitters: Type.Array(TransmitterSchema, { default: [], description: 'The SSF transmitters whose security events are received.' }),
    maxTokenLifetime: Duration('24h', 'How long a revoked-before mark is kept: the longest lifetime of the access tokens this resource accepts. A token that lives longer than this and was issued before an event is accepted again once its mark is gone.'),
    maxMarks: Type.Integer({
      minimum: 100,
      default: 100000,
      description: 'Revoked-before marks held at most. When full, the oldest is forgotten, and every token issued at or before it is refused, whoever it names, until the mark would have expired (fail closed; logged as an error).',
    }),
    maxSetAge: Duration('1h', 'Oldest SET accepted (now minus `iat`); SET ids are remembered this long against replay.'),
    replayCacheSize: Type.Integer({ minimum: 1000, default: 100000, description: 'SET ids remembered against replay (bounded; when full, SETs as old as the forgotten ones are refused).' }),
  },
  {
    description:
      'Security events from OpenID Shared Signals transmitters (SSF 1.0, CAEP 1.0, RISC 1.0): each accepted event stops the tokens it names (docs/signals.md). Also enables revocation by hand (`admin.revoke`).',
  },
);

const StateSchema = Closed(
  {
    backend: Enum(['memory', 'redis'], {
      default: 'memory',
      description:
        '`memory`: replay memory (DPoP, WPT and HTTP-signature proof ids), the DPoP nonce key and revocation marks are this process\'s own. `redis`: shared by every process and replica through `state.redis` (docs/operations.md "Shared state"); needed when more than one process serves the same agents with proof-bearing credentials.',
    }),
    redis: Type.Optional(
      Closed(
        {
          url: Type.String({
            pattern: '^rediss?://[^\\s@/]+(/[0-9]{1,2})?$',
            description: 'The Redis (or Valkey) server: `redis://host:port` or, with TLS, `rediss://host:port`, optionally `/db`. No credentials here: use `username` and `password`.',
          }),
          username: Type.Optional(Type.String({ minLength: 1, description: 'The ACL user (Redis 6 or later). Default: the `default` user.' })),
          password: Type.Optional(SecretSchema),
          tls: Type.Optional(
            Closed(
              { caFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA certificates the server certificate must chain to. Default: the system CAs. Relative to this file.' })) },
              { description: 'TLS settings of a `rediss://` URL.' },
            ),
          ),
          keyPrefix: Type.String({ minLength: 1, maxLength: 64, default: 'agentward:', description: 'Put before every key and channel agentward uses, so several deployments can share one Redis. Replicas that must share state use the same prefix.' }),
          connectTimeout: Duration('2s', 'Longest wait for a connection (at start, and for each reconnection attempt).'),
          commandTimeout: Duration('500ms', 'Longest wait for one answer (a request\'s replay claims are one round trip); past it the request gets 503 ERR_STATE_UNAVAILABLE.'),
        },
        { description: 'The Redis server of `state.backend: redis`.' },
      ),
    ),
  },
  {
    default: {},
    description:
      'Where the state that replicas must share is kept: replay memory of proofs, the DPoP nonce key, revocation marks and cache purges (docs/operations.md "Shared state"). Default: this process\'s memory.',
  },
);

const WorkloadSchema = Closed(
  {
    trustDomains: Type.Array(TrustDomainSchema, {
      default: [],
      description: 'The trust domains whose workloads may call this resource, each with its SPIFFE bundle. Credentials of any other trust domain are refused. At least one entry here or in `witIssuers`.',
    }),
    witIssuers: Type.Array(WitIssuerSchema, {
      default: [],
      description:
        'WIT issuers trusted by their `iss` (exact match) with their own JWK Set, beside the trust-domain bundles: for issuers that publish no SPIFFE bundle. A WIT whose `iss` is one of them and whose `sub` names one of its trust domains is verified with its keys only.',
    }),
    require: Type.Boolean({ default: false, description: 'Every request must prove a workload identity; without one it gets ERR_WORKLOAD_MISSING.' }),
    wimse: Closed(
      {
        audiences: Type.Array(Type.String({ minLength: 1 }), {
          default: [],
          uniqueItems: true,
          description: 'Values accepted as WPT `aud` and signature `wimse-aud` besides the target URI (resource origin + path), e.g. a name the callers use before a rewrite. From trusted configuration only (wpt-02 §3.1.7).',
        }),
        maxProofLifetime: Duration('5m', 'Longest time a WPT or an HTTP message signature may be valid for (wpt-02 §2: "MUST be short").'),
        strictAudience: Type.Boolean({ default: false, description: 'Accept a WPT `aud` only as a string, never as an array (decision U6, docs/negative-cases.md).' }),
        contextTokenHeaders: Type.Array(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9a-z-]+$" }), {
          default: [],
          uniqueItems: true,
          description:
            'Lower-case names of headers that carry other context tokens (wpt-02 §2 `oth`). With a WPT, such a header reaches the policy only when `oth` binds it; one `oth` names but the request lacks is refused.',
        }),
        replayCacheSize: Type.Integer({ minimum: 1000, default: 200000, description: 'WPT ids and signature nonces remembered against replay (bounded; when full, proofs as old as the forgotten ones are refused).' }),
        httpSignature: Closed(
          {
            label: Type.Optional(
              Type.String({
                pattern: '^[a-z*][a-z0-9_.*-]*$',
                maxLength: 64,
                description:
                  'The one signature label accepted (RFC 9421 §4.1, §7.2.8). The WIMSE signature is then the member tagged wimse-workload-to-workload with this label; tagged members of other labels are ignored, and a request whose tagged signatures all have other labels gets ERR_HSIG_LABEL. Default: any label, and exactly one tagged member.',
              }),
            ),
            maxAge: Type.Optional(
              Type.String({
                pattern: POSITIVE_DURATION_PATTERN,
                description: "The most a signature's `created` may lie in the past, besides oauth.clockSkew (RFC 9421 §3.2.1, §7.2.4); older gets ERR_HSIG_EXPIRED whatever its `expires`. Default: no bound but `maxProofLifetime`. A duration such as 30s, more than zero.",
              }),
            ),
            requiredComponents: Type.Array(Type.String({ pattern: "^(@method|@scheme|@authority|@path|@query|[!#$%&'*+.^_`|~0-9a-z-]+)$" }), {
              default: [],
              uniqueItems: true,
              description: `Components every WIMSE signature must cover besides those the profile requires (@method, @path, @query, the credential and content headers present): lower-case header field names, or the derived components the verifier builds (src/credentials/http-signature.ts): ${SIGNED_DERIVED_COMPONENTS}. A missing one gets ERR_HSIG_COMPONENTS; a listed header must then be sent on every signed request.`,
            }),
          },
          { default: {}, description: 'Verifier settings of WIMSE HTTP message signatures (RFC 9421) beyond the profile.' },
        ),
      },
      { default: {}, description: 'WIMSE workload credentials: a Workload-Identity-Token proved by `Authorization: WPT` or by an HTTP message signature.' },
    ),
    jwtSvid: Closed(
      {
        enabled: Type.Boolean({ default: true, description: 'Accept SPIFFE JWT-SVIDs in `Authorization: Bearer` (recognised when `sub` is a spiffe ID of a configured trust domain and `iss` is not an OAuth issuer).' }),
        audiences: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true, description: 'Audience values naming this resource in JWT-SVIDs. Default: [resource.id].' })),
        requireKid: Type.Boolean({ default: true, description: 'Refuse JWT-SVIDs without `kid` (decision U10, docs/negative-cases.md).' }),
      },
      { default: {} },
    ),
    x509Svid: Closed(
      {
        enabled: Type.Boolean({
          default: true,
          description: 'Accept SPIFFE X.509-SVIDs as client certificates (needs `listen.tls` with clientCert optional or required, or `listen.trustedProxies` forwarding them); the trust domain X.509 authorities are added to the handshake CAs and to the anchors of forwarded certificates.',
        }),
      },
      { default: {} },
    ),
    binding: Closed(
      {
        rule: Enum(['none', 'client_id', 'actor', 'client_id_or_actor'], {
          default: 'none',
          description:
            'When a request carries both an access token and a workload identity, which token party must be that workload: `client_id`, the current `actor` (RFC 8693 act.sub), either, or `none` (the comparison still reaches the policy as input.agent.token).',
        }),
        clients: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), {
          default: {},
          description: 'Token `client_id` (or actor) values that name a workload differently, mapped to its workload identifier, e.g. `research-bot: spiffe://agents.example.com/research-bot`.',
        }),
      },
      { default: {} },
    ),
  },
  { description: 'Agent workload identity (draft-ietf-wimse-*, SPIFFE): trust domains, and how their credentials are accepted. Without this section a workload credential is refused.' },
);

const RpcPaths = (description: string) =>
  Type.Array(Type.String({ pattern: '^/', minLength: 1 }), { default: [], uniqueItems: true, description });

const McpPath = Type.Union([
  Type.String({ pattern: '^/', minLength: 1 }),
  Closed(
    {
      path: Type.String({ pattern: '^/', minLength: 1, description: 'The exact request path.' }),
      filterLists: Type.Optional(Type.Boolean({ description: 'This path only: overrides mcp.filterLists.' })),
      maxBodyBytes: Type.Optional(Type.Integer({ minimum: 1, description: 'This path only: overrides mcp.maxBodyBytes.' })),
    },
    { description: 'A path with its own settings.' },
  ),
]);

const McpSchema = Closed(
  {
    paths: Type.Array(McpPath, {
      default: [],
      description:
        'Request paths (exact) served by an MCP server over Streamable HTTP. Their JSON-RPC bodies are read and decided per call (input.mcp). An entry is a path, or `{ path, filterLists, maxBodyBytes }` to set those for that path alone.',
    }),
    maxBodyBytes: Type.Integer({ minimum: 1, default: 1048576, description: 'Largest JSON-RPC body read on these paths; larger gets 413 ERR_BODY_TOO_LARGE.' }),
    filterLists: Type.Boolean({
      default: true,
      description: 'Filter the results of tools/list, prompts/list and resources/list: each item stays only when the policy would allow the corresponding call (tools/call, prompts/get, resources/read).',
    }),
  },
  { description: 'MCP (Model Context Protocol, Streamable HTTP) awareness: tool-level decisions and list filtering.' },
);

const A2aSchema = Closed(
  {
    paths: RpcPaths('Request paths (exact) served by an A2A agent over JSON-RPC. Their bodies are read and decided per call (input.a2a).'),
    maxBodyBytes: Type.Integer({ minimum: 1, default: 1048576, description: 'Largest JSON-RPC body read on these paths; larger gets 413 ERR_BODY_TOO_LARGE.' }),
  },
  { description: 'A2A (Agent2Agent protocol, JSON-RPC binding) awareness: method-level decisions.' },
);

export const ConfigSchema = Closed(
  {
    listen: Closed(
      {
        address: Address('0.0.0.0:8080', 'Where agents connect.'),
        maxHeaderBytes: Type.Integer({ minimum: 1024, maximum: 1048576, default: 16384, description: 'Largest request head accepted; larger gets 431.' }),
        maxBodyBytes: Type.Integer({ minimum: 0, default: 1048576, description: 'Largest body read for inspection (form bodies); larger gets 413.' }),
        requestTimeout: Duration('60s', 'Time a client has to send a whole request.'),
        shutdownTimeout: Duration('15s', 'On SIGTERM, how long in-flight requests may finish before connections are closed.', { allowZero: true }),
        maxInFlight: Type.Integer({
          minimum: 1,
          default: 512,
          description:
            'Requests in the pipeline at once (admission control), from arrival until their response has ended. Beyond it requests wait (`maxQueued`) or are refused at once with 503 ERR_OVERLOADED and Retry-After. Long-lived responses (SSE streams) hold a slot: raise it for servers with many open streams.',
        }),
        maxQueued: Type.Integer({ minimum: 0, default: 512, description: 'Requests waiting for a slot when `maxInFlight` are running; beyond it, 503 ERR_OVERLOADED at once.' }),
        queueTimeout: Duration('1s', 'Longest wait for a slot; a request that waited longer is refused with 503 ERR_OVERLOADED (its caller has probably given up).'),
        tls: Type.Optional(
          Closed(
            {
              certFile: Type.String({ minLength: 1, description: 'PEM certificate of this listener, then its intermediates.' }),
              keyFile: Type.String({ minLength: 1, description: 'PEM private key of certFile.' }),
              clientCaFile: Type.Optional(
                Type.String({ minLength: 1, description: 'PEM CA certificates that client certificates are verified against. Required when clientCert is optional or required.' }),
              ),
              clientCert: Enum(['none', 'optional', 'required'], {
                default: 'none',
                description:
                  'Client certificates (mTLS): `none` asks for none; `optional` asks, and a connection without one (or with one clientCaFile does not verify) still proceeds; `required` fails the TLS handshake without a certificate that clientCaFile verifies. With optional or required, certificate-bound access tokens (RFC 8705) are accepted.',
              }),
            },
            { description: 'Serve HTTPS on listen.address. Paths are relative to this file; the files are reloaded when they change.' },
          ),
        ),
        trustedProxies: Type.Optional(
          Closed(
            {
              addresses: Type.Array(Type.String({ minLength: 1 }), {
                default: [],
                description: 'Peers trusted by the source address of their connection: CIDRs or single addresses, IPv4 or IPv6 (e.g. `10.20.0.0/16`, `fd00::/8`, `127.0.0.1`). An IPv4 entry also matches its IPv4-mapped IPv6 form.',
              }),
              peerNames: Type.Array(Type.String({ minLength: 1 }), {
                default: [],
                description:
                  'Peers trusted by the TLS client certificate they connect with (mTLS from the ingress): a URI SAN, e.g. a SPIFFE ID, compared exactly, or a DNS SAN, compared in any case. The certificate must be verified in the handshake (needs `listen.tls` with clientCert optional or required). It is the hop\'s identity, never the caller\'s.',
              }),
              clientCertHeaders: Type.Boolean({
                default: false,
                description:
                  'Take the client certificate from these peers\' `Client-Cert` and `Client-Cert-Chain` fields (RFC 9440), as if it came over agentward\'s own TLS: certificate-bound tokens (RFC 8705) and X.509-SVIDs then work behind a TLS-terminating ingress. Must be `true`: it is the one thing trusted proxies can pass today.',
              }),
              clientCaFile: Type.Optional(
                Type.String({
                  minLength: 1,
                  description:
                    'PEM CA certificates a forwarded certificate must chain to: agentward verifies the chain itself rather than trusting the ingress alone. With X.509-SVIDs accepted, the trust domains\' X.509 authorities count too, and this may be left out. Read at startup.',
                }),
              ),
            },
            {
              description:
                'TLS-terminating hops (ingress, load balancer) in front of agentward, allowed to forward the client certificate they received. A `Client-Cert` or `Client-Cert-Chain` field from any other peer is refused (400 ERR_CLIENT_CERT_HEADER_UNTRUSTED).',
            },
          ),
        ),
      },
      { default: {} },
    ),
    admin: Closed(
      {
        address: Address('127.0.0.1:9901', 'Where /healthz and /readyz are served. Keep it off the agents\' network.'),
        revoke: Type.Optional(
          Closed(
            {
              path: Type.String({ pattern: '^/[A-Za-z0-9._~/-]*$', default: '/revoke', description: 'The path of the revocation endpoint (POST).' }),
              token: SecretSchema,
            },
            { description: 'Revocation by hand on the admin listener (`agentward revoke`, docs/signals.md): the same marks and purges as a security event.' },
          ),
        ),
      },
      { default: {} },
    ),
    workers: Type.Unsafe<number | 'auto'>({
      anyOf: [{ type: 'integer', minimum: 1, maximum: 256 }, { type: 'string', enum: ['auto'] }],
      default: 1,
      description:
        'Processes serving the agent listener (docs/operations.md "Workers"). `1` (default): one process, no cluster. More: a primary process forks that many workers (node:cluster; the kernel hands each new connection to the primary, which passes it to the workers in turn), serves the admin listener itself and restarts a worker that dies. `auto`: one per available CPU (os.availableParallelism(), which follows the CPU affinity mask). Each worker writes its own audit file (`audit.w1.jsonl`, ...). With more than one worker, DPoP, a `workload` section and `signals` need shared state (`state.backend: redis`): the check refuses them otherwise.',
    }),
    upstream: Closed({
      url: Type.String({ minLength: 1, description: 'The protected service, e.g. http://127.0.0.1:3000.' }),
      timeout: Duration('30s', 'Longest wait for the next byte from the upstream (response head or body); past it the client gets 504 (or the stream is cut).'),
      connectTimeout: Duration('5s', 'Longest wait for a new connection to the upstream, the TLS handshake included.'),
      maxSockets: Type.Integer({ minimum: 1, default: 256, description: 'Keep-alive connections to the upstream at most.' }),
    }),
    resource: Closed({
      id: Type.String({ minLength: 1, description: 'This resource identifier (RFC 8707, RFC 9728 `resource`): the audience tokens must name, byte for byte.' }),
      authorizationServers: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'RFC 9728 `authorization_servers`.' }),
      scopesSupported: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'RFC 9728 `scopes_supported`.' }),
      name: Type.Optional(Type.String({ minLength: 1, description: 'RFC 9728 `resource_name`.' })),
      documentation: Type.Optional(Type.String({ minLength: 1, description: 'RFC 9728 `resource_documentation`.' })),
    }),
    oauth: Closed(
      {
        issuers: Type.Array(IssuerSchema, { default: [], description: 'Authorization servers whose JWT access tokens are accepted.' }),
        requireToken: Type.Boolean({
          default: true,
          description:
            'Every request must carry an access token. Set false to let a proven workload identity alone (see `workload`) authenticate a request, e.g. WIT + WPT, which uses the Authorization header for the proof; the policy then sees `subject: null`.',
        }),
        anonymous: Enum(['refuse', 'policy'], {
          default: 'refuse',
          description:
            'Requests that present no credential at all. `refuse`: 401 ERR_CREDENTIALS_MISSING before the policy runs. `policy`: they reach the policy with `subject` and `agent` null and `credentials.presented` empty, for public paths such as a health probe or documentation; a denial is still 401 with the same challenge. A request that presents any credential is verified and refused if that fails, never treated as anonymous. A relaxed setting, named at startup.',
        }),
        clockSkew: Duration('30s', 'Leeway for exp, nbf and iat (RFC 9068 §4: a few minutes at most).', { allowZero: true }),
        maxDelegationDepth: Type.Integer({ minimum: 0, maximum: 32, default: 4, description: 'Longest RFC 8693 `act` chain accepted; deeper tokens get ERR_DELEGATION_TOO_DEEP.' }),
        tokenCacheSize: Type.Integer({ minimum: 0, default: 10000, description: 'Verified tokens remembered (by SHA-256) until they expire; 0 disables the cache, and with it the memory of forged tokens (1,000 for 60 s, dropped on any key-set change).' }),
        dpop: Closed(
          {
            mode: Enum(['disabled', 'allowed', 'required'], {
              default: 'allowed',
              description: 'DPoP (RFC 9449) at this resource: `allowed` accepts Bearer and DPoP-bound tokens (a bound token only with its proof), `required` accepts only DPoP, `disabled` refuses DPoP and every bound token.',
            }),
            algorithms: Algorithms(['ES256', 'EdDSA', 'PS256', 'RS256'], 'Algorithms accepted for DPoP proofs (advertised as `algs` and in the metadata).'),
            maxAge: Duration('60s', 'How old a proof may be (its iat), besides oauth.clockSkew; also how long proof ids are remembered against replay.'),
            nonce: Closed(
              {
                enabled: Type.Boolean({ default: false, description: 'Require server-issued nonces in proofs (RFC 9449 §9).' }),
                lifetime: Duration('5m', 'How long a nonce is current; the previous one is still accepted, so clients cross a rotation without an extra round trip.'),
              },
              { default: {} },
            ),
            replayCacheSize: Type.Integer({
              minimum: 1000,
              default: 200000,
              description: 'Proof ids remembered against replay. When full, the oldest are forgotten and proofs as old as them are refused, so memory stays bounded and no proof can be replayed.',
            }),
          },
          { default: {} },
        ),
        keys: Closed(
          {
            maxAge: Duration('5m', 'How often key sets are refreshed in the background.'),
            // Short by default: an authorization server that rotates signs with the new key at once,
            // and until the refetch its tokens are refused. Single flight keeps a flood of unknown
            // kids to one fetch per cooldown.
            cooldown: Duration('5s', 'Least time between a fetch and a refetch caused by an unknown `kid`.'),
            timeout: Duration('2s', 'Longest wait for a metadata or key set fetch; a request waits at most this long.'),
          },
          { default: {} },
        ),
      },
      { default: {} },
    ),
    workload: Type.Optional(WorkloadSchema),
    mcp: Type.Optional(McpSchema),
    a2a: Type.Optional(A2aSchema),
    signals: Type.Optional(SignalsSchema),
    state: StateSchema,
    txnTokens: Type.Optional(
      Closed(
        {
          trustDomain: Type.String({ minLength: 1, description: 'The trust domain this resource belongs to: a Txn-Token is accepted only when its `aud` names it (draft-ietf-oauth-transaction-tokens §12.2).' }),
          issuer: Type.Optional(Type.String({ minLength: 1, description: 'The Txn-Token service identifier, used only to label its key set (status, logs). Default: trustDomain.' })),
          jwksUri: Type.String({ minLength: 1, description: "The JWK Set URL of the trust domain's Txn-Token service." }),
          algorithms: Algorithms(['ES256', 'RS256', 'PS256', 'EdDSA'], 'JWS algorithms accepted for Txn-Tokens. Only asymmetric algorithms can be listed.'),
          maxLifetime: Duration('10m', 'Longest accepted `exp - iat` of a Txn-Token (they live minutes or less, §6).'),
          mode: Enum(['optional', 'required'], {
            default: 'optional',
            description: '`optional`: a Txn-Token is verified when present; `required`: a request without one gets ERR_TXN_TOKEN_MISSING.',
          }),
        },
        { description: 'Transaction Tokens (draft-ietf-oauth-transaction-tokens) in the `Txn-Token` header, verified and given to the policy as `input.txn`. Without this section a request carrying a Txn-Token is refused.' },
      ),
    ),
    policy: Closed({
      source: Type.String({
        minLength: 1,
        description:
          'A folder of .rego files (compiled with opa at start and on change), an OPA bundle (.tar.gz with policy.wasm), a .wasm file, or the URL of a bundle on an OPA bundle server (https; http only on loopback), polled every poll.interval.',
      }),
      entrypoint: Type.String({ minLength: 1, default: 'agentward/decision', description: 'The rule that returns the decision.' }),
      data: Type.Optional(Type.String({ minLength: 1, description: 'A JSON file loaded as `data` (with a .wasm source, or on top of a bundle\'s data.json).' })),
      mode: Enum(['enforce', 'shadow'], {
        default: 'enforce',
        description:
          'How decisions are applied. `enforce`: a deny is answered. `shadow`: every request is evaluated and audited, and forwarded whatever the policy says (authentication failures are still refused); would-deny decisions are logged and counted. A relaxed setting, named at startup.',
      }),
      watch: Type.Boolean({ default: true, description: 'Reload the policy when its files change, and poll a URL source. Off: the policy is loaded once, at start.' }),
      opa: Type.Optional(Type.String({ minLength: 1, description: 'The opa binary used to compile a folder of Rego. Default: $AGENTWARD_OPA, then `opa` on PATH.' })),
      maxMemoryBytes: Type.Integer({ minimum: 1048576, maximum: 4294967296, default: 134217728, description: 'WebAssembly memory the policy may grow to; past it evaluation fails (a deny).' }),
      exposeReason: Type.Boolean({ default: false, description: "Send the decision's `reason` to the client in the problem body (it always goes to the audit record)." }),
      poll: Closed(
        {
          interval: Duration('30s', 'Time between two polls (conditional GETs with If-None-Match). After failures in a row the wait doubles, up to 8 intervals.'),
          timeout: Duration('10s', 'Longest wait for one bundle download.'),
          maxBytes: Type.Integer({ minimum: 1024, maximum: 268435456, default: 33554432, description: 'Largest bundle (compressed) downloaded; a larger one fails like a server error.' }),
        },
        { default: {}, description: 'With a URL source: how the bundle server is polled. A failed poll keeps the last good policy.' },
      ),
      verification: Type.Optional(
        Closed(
          {
            keyFile: Type.String({
              minLength: 1,
              description: "The signer's public key: PEM (SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY` or a certificate) or a JWK. Relative to this file.",
            }),
            keyId: Type.Optional(Type.String({ minLength: 1, description: 'The key id: a signature naming another key (JWS `kid`, or the payload `keyid`) is refused.' })),
            algorithm: Type.Optional(
              Enum(ASYMMETRIC_ALGORITHMS, { description: "The JWS algorithm signatures must use. Default: the JWK's `alg`, else RS256 for RSA, PS256 for RSA-PSS, ES256/ES384/ES512 by curve, EdDSA." }),
            ),
            scope: Type.Optional(Type.String({ minLength: 1, description: 'The `scope` the signature must carry. Without it, a signature with a scope is refused (as in OPA).' })),
          },
          {
            description:
              'Verify OPA bundle signatures (/.signatures.json, as `opa build --signing-key` or `opa sign` write them): an unsigned, badly signed or altered bundle is refused. Needs a bundle source (.tar.gz or URL). Without this section a signed bundle is refused.',
          },
        ),
      ),
    }),
    forward: Closed(
      {
        stripCredentials: Type.Boolean({ default: true, description: 'Remove the credentials the proxy consumed (Authorization, DPoP, ...) before forwarding.' }),
        identityHeaders: Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), Type.String({ minLength: 1 }), {
          default: {},
          description: 'Headers added upstream, each from a policy input field, e.g. `X-Agent-Id: subject.clientId`. Caller-sent copies are always removed.',
        }),
        requestIdHeader: Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", default: 'x-request-id', description: 'Header carrying the request id upstream and back to the client.' }),
        methodOverride: Enum(['reject', 'strip', 'pass'], {
          default: 'reject',
          description:
            'Requests with a method override (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`, the `_method` query parameter), which an upstream framework may act on instead of the method the policy decided on. `reject`: 400 ERR_METHOD_OVERRIDE. `strip`: removed before the policy and the upstream see the request. `pass`: forwarded as sent, shown to the policy in `input.request.methodOverride` (a relaxed setting, named at startup).',
        }),
        txnToken: Type.Optional(
          Closed(
            {
              mode: Enum(['off', 'mint', 'pass-through-or-mint'], {
                default: 'mint',
                description:
                  "`mint`: every forwarded request gets a Txn-Token signed by agentward. `pass-through-or-mint`: a request that carried a verified Txn-Token (`txnTokens`) passes it on unchanged, any other gets a minted one. `off`: no Txn-Token (the section is kept but does nothing).",
              }),
              keyFile: Type.String({ minLength: 1, description: 'The signing key: one unencrypted PEM private key (PKCS#8, SEC 1 or PKCS#1) that fits `algorithm`. Relative to this file. Re-read when it changes; see rotationOverlap.' }),
              algorithm: Enum(ASYMMETRIC_ALGORITHMS, { default: 'ES256', description: 'The JWS algorithm tokens are signed with.' }),
              audience: Type.String({ minLength: 1, description: 'The `aud` of minted tokens: the trust domain the upstream accepts Txn-Tokens for (draft-ietf-oauth-transaction-tokens §9.2).' }),
              issuer: Type.Optional(Type.String({ minLength: 1, description: 'The `iss` of minted tokens. Default: resource.id.' })),
              lifetime: Duration('60s', 'How long a minted token is valid (`exp - iat`), whole seconds, at most 10m (§6: minutes or less).'),
              rotationOverlap: Duration('5m', 'How long the key a new keyFile replaces stays in the JWK Set, so the tokens it signed still verify; at least `lifetime`.'),
            },
            {
              description:
                'A Transaction Token (draft-ietf-oauth-transaction-tokens) for the upstream in the `Txn-Token` header of every forwarded request: the user, the requesting workload, the scope the decision allows and the transaction context, signed by agentward. Its JWK Set is served on the admin listener at /jwks.json. See docs/upstream-identity.md.',
            },
          ),
        ),
      },
      { default: {} },
    ),
    audit: Closed(
      {
        sink: Enum(['stdout', 'stderr', 'file', 'off'], { default: 'stdout', description: 'Where audit records go, one JSON line each.' }),
        file: Type.Optional(Type.String({ minLength: 1, description: 'The audit file when sink is `file` (appended to).' })),
        hashChain: Type.Boolean({ default: true, description: 'Chain records with `prev` and `hash` so a removed or edited record is detectable (`agentward audit verify`).' }),
        hashKey: Type.Optional(SecretSchema),
        fsync: Enum(['never', 'interval', 'deny', 'always'], {
          default: 'deny',
          description:
            'With sink `file`: when records are put on disk (fsync). `deny`: each refusal before its response (one fsync shared by the refusals waiting), the rest every `fsyncInterval`. `interval`: every `fsyncInterval`. `always`: after every write. `never`: left to the OS.',
        }),
        fsyncInterval: Duration('1s', 'With fsync `interval` or `deny`: the longest time a written record waits to be put on disk.'),
        rotate: Type.Optional(
          Closed(
            {
              maxBytes: Type.Optional(Type.Integer({ minimum: 4096, description: 'Start a new file when the current one reaches this size (bytes).' })),
              interval: Type.Optional(Type.String({ pattern: POSITIVE_DURATION_PATTERN, description: 'Start a new file when the current one is this old, e.g. "24h".' })),
            },
            { description: 'With sink `file`: rotation. The current file is renamed `<name>.<UTC time>.<ext>`; the new one starts with a `rotation` record chained to the last hash of the old one.' },
          ),
        ),
        checkpoints: Type.Optional(
          Closed(
            {
              interval: Duration('10s', 'How often the chain head is written as a checkpoint (only when records were written since the last one).'),
              file: Type.Optional(Type.String({ minLength: 1, description: 'Also append checkpoints to this file (keep it apart from the audit file, ideally on another host). They always go to the log.' })),
            },
            { description: 'Periodic checkpoints of the hash chain head, HMACed with `hashKey` when set, so `audit verify --checkpoints` finds a cut-off end or replaced records. Needs `hashChain`.' },
          ),
        ),
      },
      { default: {} },
    ),
    metrics: Closed(
      {
        enabled: Type.Boolean({ default: true, description: 'Serve Prometheus metrics at `GET /metrics` on the admin listener (docs/operations.md, "Metrics").' }),
        mcpToolLabelLimit: Type.Integer({
          minimum: 0,
          maximum: 10000,
          default: 100,
          description:
            'Distinct MCP tool names (and resource URIs) that get a `tool` label value of their own in agentward_mcp_tool_calls_total, first come first served; later ones are counted as `other`, so a client cannot grow the metrics without bound.',
        }),
        processMetrics: Type.Boolean({ default: true, description: 'Also export the Node.js process metrics (CPU, memory, event-loop lag, garbage collection, open handles).' }),
      },
      { default: {} },
    ),
    tracing: Type.Optional(
      Closed(
        {
          serviceName: Type.String({ minLength: 1, default: 'agentward', description: 'The `service.name` resource attribute of every span.' }),
          sampleRatio: Type.Number({
            minimum: 0,
            maximum: 1,
            default: 1,
            description:
              'Share of traces recorded when the caller sent no sampled traceparent (0 to 1, by trace id). A caller\'s sampling decision is followed (parent-based), so a trace is never cut in half.',
          }),
          otlp: Closed(
            {
              endpoint: Type.String({ minLength: 1, description: 'The OTLP/HTTP traces endpoint (protobuf), e.g. http://127.0.0.1:4318/v1/traces.' }),
              headers: Type.Record(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), SecretSchema, {
                default: {},
                description: 'Fields sent with every export, e.g. an API key: `{ authorization: { fromEnv: OTLP_AUTH } }`. Values are secrets (never logged).',
              }),
              timeout: Duration('10s', 'Longest wait for one export.'),
            },
            { description: 'Where spans go (OTLP over HTTP, protobuf).' },
          ),
        },
        {
          description:
            'OpenTelemetry tracing: one server span per request with a child per stage (verify, policy, upstream), under the caller\'s W3C traceparent; the upstream gets a traceparent naming our upstream span. Absent: no spans, and the caller\'s traceparent is passed on unchanged.',
        },
      ),
    ),
    log: Closed(
      { level: Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'Least severe log level written (logs go to stderr).' }) },
      { default: {} },
    ),
  },
  { description: 'agentward configuration' },
);

export type Config = Static<typeof ConfigSchema>;
export type IssuerConfig = Static<typeof IssuerSchema>;
export type TxnTokensConfig = NonNullable<Config['txnTokens']>;
export type TxnMintConfig = NonNullable<Config['forward']['txnToken']>;
export type McpPathConfig = Static<typeof McpPath>;
export type WorkloadConfig = NonNullable<Config['workload']>;
export type TrustDomainConfig = Static<typeof TrustDomainSchema>;
export type WitIssuerConfig = Static<typeof WitIssuerSchema>;
export type Secret = Static<typeof SecretSchema>;
export type SignalsConfig = NonNullable<Config['signals']>;
export type TransmitterConfig = Static<typeof TransmitterSchema>;
export type StateConfig = Static<typeof StateSchema>;

/**
 * The JSON Schema document committed as config/agentward.schema.json. A key with a default is
 * not required of the user (the loader fills it in), so it is dropped from `required` here.
 */
export function jsonSchemaDocument(): Record<string, unknown> {
  const schema = JSON.parse(JSON.stringify(ConfigSchema as TSchema)) as Record<string, unknown>;
  const relax = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    const n = node as { required?: string[]; properties?: Record<string, { default?: unknown }> };
    if (n.required && n.properties) {
      n.required = n.required.filter((k) => n.properties![k]?.default === undefined);
      if (n.required.length === 0) delete n.required;
    }
    for (const child of Object.values(node)) relax(child);
  };
  relax(schema);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'agentward configuration',
    ...schema,
  };
}
