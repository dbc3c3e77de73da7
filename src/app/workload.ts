/**
 * The workload side of the composition root: one SPIFFE trust bundle per trust domain, never
 * merged (SPIFFE Federation §4.2), the workload authenticator over them, and the listener's
 * client-certificate authorities.
 */
import type { LoadedConfig } from '../config/load.ts';
import type { WorkloadExtraction } from '../credentials/extract.ts';
import { buildWorkloadAuthenticator, type WorkloadAuthenticator } from '../credentials/workload.ts';
import type { IssuerKeys } from '../keys/issuer-keys.ts';
import { buildTrustBundles, type TrustBundle } from '../keys/trust-bundle.ts';
import type { ListenerTls } from '../proxy/tls.ts';
import type { Services } from '../services.ts';
import type { ReplayStore } from '../state/replay.ts';

export interface WorkloadParts {
  bundles: ReadonlyMap<string, TrustBundle>;
  /** The key sets of `workload.witIssuers`, started, reported and closed with the other key sets. */
  witIssuerKeys: readonly IssuerKeys[];
  authenticator: WorkloadAuthenticator;
  extraction: WorkloadExtraction;
  /** Whether X.509-SVIDs are accepted: their trust domains' authorities also anchor forwarded client certificates. */
  acceptsX509Svids: boolean;
  /** Ids held by the WPT and HTTP-signature replay caches (for metrics). */
  replayCacheEntries: () => { wpt: number; httpSignature: number };
}

/** Undefined without a `workload` section: workload credentials are then refused. */
export function buildWorkload(loaded: LoadedConfig, services: Services, tls: ListenerTls | undefined, replay?: ReplayStore): WorkloadParts | undefined {
  const { config } = loaded;
  const settings = config.workload;
  if (settings === undefined) return undefined;
  const bundles = buildTrustBundles(settings.trustDomains, config.oauth.keys.cooldown, services);
  // A client certificate is seen when the listener asks for one, or when a trusted proxy forwards one.
  const tlsClientCerts = tls !== undefined && tls.clientCert !== 'none';
  const acceptsX509Svids = settings.x509Svid.enabled && (tlsClientCerts || config.listen.trustedProxies !== undefined);
  if (acceptsX509Svids && tlsClientCerts) {
    // The handshake verifies client chains against clientCaFile plus every trust domain's X.509
    // authorities; the request path then checks each SVID against its own domain's bundle only.
    const install = () => tls!.setClientAuthorities([...bundles.values()].flatMap((b) => (b.ready ? safeAuthorities(b) : [])));
    for (const bundle of bundles.values()) bundle.onInstall(install);
  }
  const context = { bundles, acceptsX509Svids, resourceId: config.resource.id, oauthIssuers: new Set(config.oauth.issuers.map((i) => i.issuer)), cacheSize: config.oauth.tokenCacheSize, replay };
  return { bundles, acceptsX509Svids, ...buildWorkloadAuthenticator(settings, context, services) };
}

/** A bundle's X.509 authorities for the handshake; none while it is stale (its SVIDs are refused anyway). */
function safeAuthorities(bundle: TrustBundle) {
  try {
    return [...bundle.x509Authorities()];
  } catch {
    return [];
  }
}
