/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) for the configured resource, built once.
 * Served at `/.well-known/oauth-protected-resource` and at the path-inserted form for the
 * resource identifier (§3: `https://r.example/res1` → `/.well-known/oauth-protected-resource/res1`);
 * `resource` is the configured identifier byte for byte (§3.3).
 */
import type { Config } from '../config/schema.ts';

export interface ProtectedResource {
  id: string;
  scheme: 'http' | 'https';
  host: string;
  /** Scheme, host and port of the resource: the base of request URIs for DPoP `htu`. */
  origin: string;
  /** RFC 9728 §5.1 `resource_metadata` for challenges. */
  metadataUrl: string;
  /** Request paths that answer with the metadata document. */
  metadataPaths: ReadonlySet<string>;
  metadataBody: string;
}

const WELL_KNOWN = '/.well-known/oauth-protected-resource';

export function protectedResource(config: Readonly<Config>): ProtectedResource {
  const url = new URL(config.resource.id);
  // §3.1: a terminating "/" after the host is removed before inserting the well-known path.
  const resourcePath = url.pathname === '/' ? '' : url.pathname;
  const doc: Record<string, unknown> = { resource: config.resource.id };
  if (config.resource.authorizationServers.length > 0) doc.authorization_servers = config.resource.authorizationServers;
  if (config.resource.scopesSupported.length > 0) doc.scopes_supported = config.resource.scopesSupported;
  // Only the header method is accepted (RFC 6750 §2.1); query and body are refused (PRM-N06).
  doc.bearer_methods_supported = ['header'];
  if (config.resource.name) doc.resource_name = config.resource.name;
  if (config.resource.documentation) doc.resource_documentation = config.resource.documentation;
  // RFC 9728 §2 / RFC 9449 §5.1: which proof algorithms are accepted, and whether Bearer is not.
  if (config.oauth.dpop.mode !== 'disabled') {
    doc.dpop_signing_alg_values_supported = config.oauth.dpop.algorithms;
    doc.dpop_bound_access_tokens_required = config.oauth.dpop.mode === 'required';
  }
  // RFC 9728 §2: mutual-TLS certificate-bound tokens (RFC 8705) are accepted when the listener asks for certificates.
  // Certificate-bound tokens can be checked when the listener asks for client certificates, or a
  // trusted TLS-terminating proxy forwards them (RFC 9440).
  const clientCert = config.listen.tls?.clientCert ?? 'none';
  if (clientCert !== 'none' || config.listen.trustedProxies !== undefined) doc.tls_client_certificate_bound_access_tokens = true;
  return {
    id: config.resource.id,
    scheme: url.protocol === 'https:' ? 'https' : 'http',
    host: url.host,
    origin: url.origin,
    metadataUrl: `${url.origin}${WELL_KNOWN}${resourcePath}`,
    metadataPaths: new Set([WELL_KNOWN, `${WELL_KNOWN}${resourcePath}`]),
    metadataBody: JSON.stringify(doc),
  };
}
