/**
 * Which way an access token is verified. A compact JWT (three dot-separated parts, or five for a
 * JWE) is verified locally as an RFC 9068 token; anything else is opaque and goes to the one
 * issuer configured for RFC 7662 introspection. Without introspection an opaque token is
 * malformed. A JWT is never sent to introspection, so no token leaves the proxy for an issuer
 * that did not mint it.
 */
import { durationMs } from '../duration.ts';
import { AgentwardError } from '../errors.ts';
import { IssuerKeys, keySetOptions, type KeySetSource } from '../keys/issuer-keys.ts';
import type { Services } from '../services.ts';
import { AccessTokenVerifier, type AccessTokenIssuer, type VerifiedAccessToken } from './access-token.ts';
import type { RevocationList } from './revocation.ts';
import { buildIntrospector, type IntrospectionSettings, type TokenIntrospector } from './introspection.ts';

export class AccessTokens {
  private readonly jwt: AccessTokenVerifier;
  private readonly introspector: TokenIntrospector | undefined;
  /** Revoked-before marks (docs/signals.md); undefined without a `signals` section. */
  private readonly revocations: RevocationList | undefined;

  constructor(jwt: AccessTokenVerifier, introspector: TokenIntrospector | undefined, revocations?: RevocationList) {
    this.jwt = jwt;
    this.introspector = introspector;
    this.revocations = revocations;
  }

  /**
   * Verifies the token, then refuses it if a revocation mark names it: after the cache, so a
   * cached token is refused from the first request after the event on (ERR_TOKEN_REVOKED).
   */
  verify(token: string): Promise<VerifiedAccessToken> {
    const verified = this.introspector && !looksLikeJwt(token) ? this.introspector.introspect(token) : this.jwt.verify(token);
    return this.revocations ? verified.then(this.checkRevoked) : verified;
  }

  /** Drops the cached tokens `revoked` matches, per cache (a remediation's `purged` counts). */
  purge(revoked: (token: VerifiedAccessToken) => boolean): { accessTokens: number; introspection: number } {
    return { accessTokens: this.jwt.purge(revoked), introspection: this.introspector?.purge(revoked) ?? 0 };
  }

  private readonly checkRevoked = (verified: VerifiedAccessToken): VerifiedAccessToken => {
    if (this.revocations!.revoked(verified)) throw new AgentwardError('ERR_TOKEN_REVOKED');
    return verified;
  };
}

/** RFC 7515 §7.1 / RFC 7516 §7.1 compact serialization: 3 or 5 parts. */
export function looksLikeJwt(token: string): boolean {
  let dots = 0;
  for (let i = 0; i < token.length; i++) if (token.charCodeAt(i) === 46) dots++;
  return dots === 2 || dots === 4;
}

/** One `oauth.issuers[]` entry as the access-token side reads it (config/schema.ts describes the file). */
export interface IssuerSettings extends AccessTokenIssuer, KeySetSource {
  introspection?: IntrospectionSettings | undefined;
}

/** The `oauth` settings the access-token side reads, and the facts of the resource around it. */
export interface AccessTokenSettings {
  issuers: readonly IssuerSettings[];
  maxDelegationDepth: number;
  tokenCacheSize: number;
  /** `oauth.keys.timeout`: also the introspection call's deadline. */
  keys: { timeout: string };
  resourceId: string;
  /** The key bindings whose proof this resource can check (RFC 7800): the same for every token path. */
  dpopBinding: boolean;
  certificateBinding: boolean;
  /** A resolved introspection secret, by issuer index and name. */
  secret: (issuerIndex: number, name: 'clientSecret' | 'privateKey') => string;
}

export interface AccessTokenParts {
  tokens: AccessTokens;
  /** One key set per issuer: started, refreshed and shown in /readyz by the composition root. */
  issuers: { config: IssuerSettings; keys: IssuerKeys }[];
  /** The introspector of the issuer that has one (its calls and cache are observed by the metrics). */
  introspector: TokenIntrospector | undefined;
}

/** Builds the access-token side: a key set per issuer, the JWT verifier, and introspection for the issuer that has it. */
export function buildAccessTokens(settings: AccessTokenSettings, services: Services, revocations?: RevocationList): AccessTokenParts {
  const keyOptions = keySetOptions(services);
  const issuers = settings.issuers.map((config) => ({ config, keys: new IssuerKeys(config, keyOptions) }));
  if (issuers.length === 0) services.logger.warn('no OAuth issuers are configured: every request with a token will be refused');
  const { resourceId, maxDelegationDepth, dpopBinding, certificateBinding } = settings;
  const jwt = new AccessTokenVerifier({ issuers, resourceId, clockSkewSeconds: services.clockSkewSeconds, maxDelegationDepth, cacheSize: settings.tokenCacheSize, dpopBinding, certificateBinding, now: services.now });
  const index = issuers.findIndex((i) => i.config.introspection !== undefined);
  const introspecting = issuers[index];
  const introspector =
    introspecting &&
    buildIntrospector(
      introspecting.config.introspection!,
      {
        issuer: introspecting.config.issuer,
        audiences: new Set(introspecting.config.audiences ?? [resourceId]),
        resourceId,
        maxDelegationDepth,
        dpopBinding,
        certificateBinding,
        timeoutMs: durationMs(settings.keys.timeout),
        responseKeys: (header, token) => introspecting.keys.getKey(header, token),
        secret: (name) => settings.secret(index, name),
      },
      services,
    );
  return { tokens: new AccessTokens(jwt, introspector, revocations), issuers, introspector: introspector || undefined };
}
