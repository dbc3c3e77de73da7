/**
 * Which way an access token is verified. A compact JWT (three dot-separated parts, or five for a
 * JWE) is verified locally as an RFC 9068 token; anything else is opaque and goes to the one
 * issuer configured for RFC 7662 introspection. Without introspection an opaque token is
 * malformed. A JWT is never sent to introspection, so no token leaves the proxy for an issuer
 * that did not mint it.
 */
import type { AccessTokenVerifier, VerifiedAccessToken } from './access-token.ts';
import type { TokenIntrospector } from './introspection.ts';

export class AccessTokens {
  private readonly jwt: AccessTokenVerifier;
  private readonly introspector: TokenIntrospector | undefined;

  constructor(jwt: AccessTokenVerifier, introspector: TokenIntrospector | undefined) {
    this.jwt = jwt;
    this.introspector = introspector;
  }

  verify(token: string): Promise<VerifiedAccessToken> {
    if (this.introspector && !looksLikeJwt(token)) return this.introspector.introspect(token);
    return this.jwt.verify(token);
  }
}

/** RFC 7515 §7.1 / RFC 7516 §7.1 compact serialization: 3 or 5 parts. */
export function looksLikeJwt(token: string): boolean {
  let dots = 0;
  for (let i = 0; i < token.length; i++) if (token.charCodeAt(i) === 46) dots++;
  return dots === 2 || dots === 4;
}
