/**
 * Issuer profiles: how the JWT access tokens of one authorization server are read. RFC 9068 is
 * the default and the only profile that relies on the `typ` header alone (RFC 9068 §4 step 1,
 * RFC 8725 §3.11). The other profiles describe servers that do not send `typ: at+jwt` (Microsoft
 * Entra ID, Okta, Keycloak, Auth0's default token profile, Ory Hydra, Amazon Cognito): they are a
 * documented deviation from RFC 9068 §4, and each comes with a confusion guard that does the job
 * of `typ` for that server's tokens — what tells its access tokens from its ID tokens and other
 * JWTs it signs with the same keys. docs/issuers.md gives the reasoning per server.
 *
 * These presets are the defaults of the issuer fields of the same names: every field can be set
 * per issuer, and `effectiveProfile` is the one place where preset and overrides meet.
 */
export const ISSUER_PROFILES = ['rfc9068', 'entra', 'okta', 'keycloak', 'auth0', 'hydra', 'cognito', 'custom'] as const;
export type IssuerProfileName = (typeof ISSUER_PROFILES)[number];

/** What still tells an access token from an ID token (or another JWT of the issuer) without `typ`. */
export interface ConfusionGuard {
  /** Claims that must be present with exactly these string values (Cognito `token_use: access`, Keycloak `typ: Bearer`). */
  readonly claims: Readonly<Record<string, string>>;
  /** A claim of `clientIdClaims` must be present (ID tokens of these servers carry none). */
  readonly requireClientId: boolean;
  /** A claim of `scopeClaims` must be present (ID tokens of these servers carry none). */
  readonly requireScope: boolean;
  /** Claims only ID tokens carry (OpenID Connect Core §2, §3.1.3.6, §3.3.2.11): present means refused. */
  readonly forbidClaims: readonly string[];
  /** Refuse a token whose audience equals its own client id: the shape of an ID token (OIDC Core §2 `aud`). */
  readonly audienceNotClientId: boolean;
}

export interface AccessTokenProfile {
  readonly name: IssuerProfileName;
  /** Accepted `typ` header values, as media types (compared case-insensitively, `application/` optional). */
  readonly typ: readonly string[];
  /** Whether a token must have a `typ` header. */
  readonly typRequired: boolean;
  /** Claims naming the OAuth client, in order: the first present one is `input.subject.clientId`. */
  readonly clientIdClaims: readonly string[];
  /** Claims holding scopes or roles; all present ones are read and joined into `input.subject.scopes`. */
  readonly scopeClaims: readonly string[];
  /** The claim that is `input.subject.sub`. */
  readonly subjectClaim: string;
  /** Claims holding the audience, in order: the first present one is compared with `audiences`. */
  readonly audienceClaims: readonly string[];
  readonly requiredClaims: readonly string[];
  readonly confusionGuard: ConfusionGuard;
}

/** RFC 9068 §2.2: the claims every JWT access token carries. */
export const RFC9068_REQUIRED_CLAIMS = ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'] as const;

/** Claims only OpenID Connect ID tokens carry (OIDC Core §2 `nonce`, §3.1.3.6 `at_hash`, §3.3.2.11 `c_hash`). */
const ID_TOKEN_MARKERS = ['nonce', 'at_hash', 'c_hash'] as const;

const NO_GUARD: ConfusionGuard = { claims: {}, requireClientId: false, requireScope: false, forbidClaims: [], audienceNotClientId: false };
const ID_TOKEN_GUARD: ConfusionGuard = { ...NO_GUARD, forbidClaims: ID_TOKEN_MARKERS, audienceNotClientId: true };

const RFC9068: AccessTokenProfile = {
  name: 'rfc9068',
  typ: ['at+jwt'],
  typRequired: true,
  clientIdClaims: ['client_id'],
  scopeClaims: ['scope'],
  subjectClaim: 'sub',
  audienceClaims: ['aud'],
  requiredClaims: RFC9068_REQUIRED_CLAIMS,
  confusionGuard: NO_GUARD,
};

/**
 * The presets. `at+jwt` stays accepted everywhere: such a token is an access token by its own
 * declaration, whatever else the server sends.
 */
export const PROFILE_PRESETS: Readonly<Record<IssuerProfileName, AccessTokenProfile>> = {
  rfc9068: RFC9068,
  custom: { ...RFC9068, name: 'custom' },
  // Entra ID v2 access tokens: header typ JWT (or none in some flows), client in azp (v2) or appid
  // (v1), delegated scopes in `scp` (a string), application permissions in `roles` (an array).
  // ID tokens have no azp/appid, no scp, and carry nonce/at_hash/c_hash; their aud is the client.
  entra: {
    name: 'entra',
    typ: ['at+jwt', 'jwt'],
    typRequired: false,
    clientIdClaims: ['azp', 'appid'],
    scopeClaims: ['scp', 'roles'],
    subjectClaim: 'sub',
    audienceClaims: ['aud'],
    requiredClaims: ['iss', 'exp', 'aud', 'sub', 'iat'],
    confusionGuard: { ...ID_TOKEN_GUARD, requireClientId: true, requireScope: true },
  },
  // Okta custom authorization servers: no typ, client in `cid`, scopes in `scp` (an array). Okta ID
  // tokens have neither cid nor scp.
  okta: {
    name: 'okta',
    typ: ['at+jwt', 'jwt'],
    typRequired: false,
    clientIdClaims: ['cid'],
    scopeClaims: ['scp'],
    subjectClaim: 'sub',
    audienceClaims: ['aud'],
    requiredClaims: ['iss', 'exp', 'aud', 'sub', 'iat', 'jti'],
    confusionGuard: { ...ID_TOKEN_GUARD, requireClientId: true, requireScope: true },
  },
  // Keycloak: header typ JWT, and the payload says what the token is: `typ` Bearer (access), ID,
  // Refresh, Logout. Client in `client_id` (service accounts) or `azp`.
  keycloak: {
    name: 'keycloak',
    typ: ['at+jwt', 'jwt'],
    typRequired: true,
    clientIdClaims: ['client_id', 'azp'],
    scopeClaims: ['scope'],
    subjectClaim: 'sub',
    audienceClaims: ['aud'],
    requiredClaims: ['iss', 'exp', 'aud', 'sub', 'iat', 'jti'],
    confusionGuard: { ...ID_TOKEN_GUARD, claims: { typ: 'Bearer' } },
  },
  // Auth0: the RFC 9068 token profile sends at+jwt and client_id; the default "Auth0" profile sends
  // typ JWT and the client in `azp`. ID tokens carry no azp for a single audience.
  auth0: {
    name: 'auth0',
    typ: ['at+jwt', 'jwt'],
    typRequired: true,
    clientIdClaims: ['client_id', 'azp'],
    scopeClaims: ['scope'],
    subjectClaim: 'sub',
    audienceClaims: ['aud'],
    requiredClaims: ['iss', 'exp', 'aud', 'sub', 'iat'],
    confusionGuard: { ...ID_TOKEN_GUARD, requireClientId: true },
  },
  // Ory Hydra: its token library always writes typ JWT; `client_id` and `scp` (an array) are in
  // every access token and in no ID token.
  hydra: {
    name: 'hydra',
    typ: ['at+jwt', 'jwt'],
    typRequired: true,
    clientIdClaims: ['client_id'],
    scopeClaims: ['scp', 'scope'],
    subjectClaim: 'sub',
    audienceClaims: ['aud'],
    requiredClaims: ['iss', 'exp', 'aud', 'sub', 'iat', 'jti', 'client_id'],
    confusionGuard: { ...ID_TOKEN_GUARD, requireClientId: true, requireScope: true },
  },
  // Amazon Cognito: no typ; `token_use` says access or id. Access tokens have no `aud`: the app
  // client id in `client_id` stands for it, so `audiences` lists the accepted app clients.
  cognito: {
    name: 'cognito',
    typ: ['at+jwt'],
    typRequired: false,
    clientIdClaims: ['client_id'],
    scopeClaims: ['scope'],
    subjectClaim: 'sub',
    audienceClaims: ['aud', 'client_id'],
    requiredClaims: ['iss', 'exp', 'sub', 'iat', 'jti', 'client_id', 'token_use'],
    confusionGuard: { ...NO_GUARD, claims: { token_use: 'access' }, requireClientId: true, forbidClaims: ID_TOKEN_MARKERS },
  },
};

/** The profile fields of one `oauth.issuers[]` entry, as written (all optional). */
export interface ProfileSettings {
  profile?: IssuerProfileName | undefined;
  typ?: readonly string[] | undefined;
  typRequired?: boolean | undefined;
  clientIdClaims?: readonly string[] | undefined;
  scopeClaims?: readonly string[] | undefined;
  subjectClaim?: string | undefined;
  audienceClaims?: readonly string[] | undefined;
  requiredClaims?: readonly string[] | undefined;
  confusionGuard?: Partial<ConfusionGuard> | undefined;
}

/** The issuer's preset with its own settings on top, field by field (the guard's fields too). */
export function effectiveProfile(issuer: ProfileSettings): AccessTokenProfile {
  const preset = PROFILE_PRESETS[issuer.profile ?? 'rfc9068'];
  const guard = issuer.confusionGuard;
  return {
    name: preset.name,
    typ: issuer.typ ?? preset.typ,
    typRequired: issuer.typRequired ?? preset.typRequired,
    clientIdClaims: issuer.clientIdClaims ?? preset.clientIdClaims,
    scopeClaims: issuer.scopeClaims ?? preset.scopeClaims,
    subjectClaim: issuer.subjectClaim ?? preset.subjectClaim,
    audienceClaims: issuer.audienceClaims ?? preset.audienceClaims,
    requiredClaims: issuer.requiredClaims ?? preset.requiredClaims,
    confusionGuard: {
      claims: guard?.claims ?? preset.confusionGuard.claims,
      requireClientId: guard?.requireClientId ?? preset.confusionGuard.requireClientId,
      requireScope: guard?.requireScope ?? preset.confusionGuard.requireScope,
      forbidClaims: guard?.forbidClaims ?? preset.confusionGuard.forbidClaims,
      audienceNotClientId: guard?.audienceNotClientId ?? preset.confusionGuard.audienceNotClientId,
    },
  };
}

/** Whether the profile accepts more than RFC 9068's `typ: at+jwt` (a deviation from RFC 9068 §4). */
export function relaxesTyp(profile: AccessTokenProfile): boolean {
  return !profile.typRequired || profile.typ.some((t) => !/^(application\/)?at\+jwt$/i.test(t));
}

/** Whether the guard checks anything that sets an access token apart (not only refusals). */
export function guardsAccessTokens(guard: ConfusionGuard): boolean {
  return Object.keys(guard.claims).length > 0 || guard.requireClientId || guard.requireScope;
}
