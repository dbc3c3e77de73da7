/**
 * The workload side of the composition root: one SPIFFE trust bundle per trust domain, never
 * merged (SPIFFE Federation §4.2), the WIMSE and SPIFFE verifiers over them, and what extraction
 * reads as workload credentials.
 */
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import type { WorkloadConfig } from '../config/schema.ts';
import { durationMs } from '../duration.ts';
import type { WorkloadExtraction } from '../credentials/extract.ts';
import { HttpSignatureVerifier } from '../credentials/http-signature.ts';
import { JwtSvidVerifier, looksLikeJwtSvid } from '../credentials/jwt-svid.ts';
import { WimseVerifier } from '../credentials/wimse.ts';
import { WorkloadAuthenticator } from '../credentials/workload.ts';
import { presentsX509Svid } from '../credentials/x509-svid.ts';
import { TrustBundle } from '../keys/trust-bundle.ts';
import type { ListenerTls } from '../proxy/tls.ts';
import type { Services } from '../services.ts';

export interface WorkloadParts {
  bundles: ReadonlyMap<string, TrustBundle>;
  authenticator: WorkloadAuthenticator;
  extraction: WorkloadExtraction;
}

/** Undefined without a `workload` section: workload credentials are then refused. */
export function buildWorkload(loaded: LoadedConfig, services: Services, tls: ListenerTls | undefined): WorkloadParts | undefined {
  const { config } = loaded;
  const settings = config.workload;
  if (settings === undefined) return undefined;
  const bundles = new Map(settings.trustDomains.map((domain) => [domain.name, trustBundle(domain, config.oauth.keys.cooldown, services)]));
  const acceptsX509Svids = settings.x509Svid.enabled && tls !== undefined && tls.clientCert !== 'none';
  if (acceptsX509Svids) {
    // The handshake verifies client chains against clientCaFile plus every trust domain's X.509
    // authorities; the request path then checks each SVID against its own domain's bundle only.
    const install = () => tls!.setClientAuthorities([...bundles.values()].flatMap((b) => (b.ready ? safeAuthorities(b) : [])));
    for (const bundle of bundles.values()) bundle.onInstall(install);
  }
  const trustDomains: ReadonlySet<string> = new Set(bundles.keys());
  const oauthIssuers: ReadonlySet<string> = new Set(config.oauth.issuers.map((i) => i.issuer));
  return {
    bundles,
    authenticator: workloadAuthenticator(settings, config.resource.id, config.oauth.tokenCacheSize, bundles, acceptsX509Svids, services),
    extraction: {
      contextTokenHeaders: settings.wimse.contextTokenHeaders,
      // A Bearer token is a JWT-SVID when its sub is a SPIFFE ID of a configured trust domain and its iss no OAuth issuer.
      isJwtSvid: settings.jwtSvid.enabled ? (token) => looksLikeJwtSvid(token, trustDomains, oauthIssuers) : undefined,
      presentsX509Svid: acceptsX509Svids ? presentsX509Svid : undefined,
    },
  };
}

function trustBundle(domain: WorkloadConfig['trustDomains'][number], cooldown: string, services: Services): TrustBundle {
  return new TrustBundle({
    trustDomain: domain.name,
    // config/load.ts guarantees exactly one of file and url.
    source: domain.bundle.file !== undefined ? { file: resolve(services.baseDir, domain.bundle.file) } : { url: domain.bundle.url! },
    maxStaleMs: durationMs(domain.bundle.maxStale),
    timeoutMs: durationMs(domain.bundle.timeout),
    unknownKeyCooldownMs: durationMs(cooldown),
    logger: services.logger,
    now: services.now,
    ...(services.dispatcher ? { dispatcher: services.dispatcher } : {}),
  });
}

/** The workload authenticator: WIMSE verifiers and SPIFFE checks over the trust bundles. */
function workloadAuthenticator(
  settings: WorkloadConfig,
  resourceId: string,
  cacheSize: number,
  bundles: ReadonlyMap<string, TrustBundle>,
  acceptsX509Svids: boolean,
  services: Services,
): WorkloadAuthenticator {
  const { clockSkewSeconds, now } = services;
  const maxProofSeconds = durationMs(settings.wimse.maxProofLifetime) / 1000;
  const domains = settings.trustDomains.map((domain) => ({ domain, bundle: bundles.get(domain.name)!, maxLifetimeSeconds: durationMs(domain.maxLifetime) / 1000 }));
  const audiences = new Set(settings.wimse.audiences);
  return new WorkloadAuthenticator({
    wimse: new WimseVerifier({
      trustDomains: new Map(domains.map(({ domain, bundle, maxLifetimeSeconds }) => [domain.name, { witKeys: () => bundle.witSvidKeys(), algorithms: domain.algorithms, maxLifetimeSeconds }])),
      audiences,
      clockSkewSeconds,
      maxWptLifetimeSeconds: maxProofSeconds,
      replayCacheSize: settings.wimse.replayCacheSize,
      strictWptAudience: settings.wimse.strictAudience,
      cacheSize,
      now,
    }),
    httpSignatures: new HttpSignatureVerifier({ audiences, clockSkewSeconds, maxLifetimeSeconds: maxProofSeconds, replayCacheSize: settings.wimse.replayCacheSize, now }),
    jwtSvid: settings.jwtSvid.enabled
      ? new JwtSvidVerifier({
          trustDomains: new Map(domains.map(({ domain, bundle, maxLifetimeSeconds }) => [domain.name, { jwtKeys: () => bundle.jwtSvidKeys(), maxLifetimeSeconds }])),
          audiences: new Set(settings.jwtSvid.audiences ?? [resourceId]),
          requireKid: settings.jwtSvid.requireKid,
          clockSkewSeconds,
          cacheSize,
          now,
        })
      : undefined,
    x509Authorities: acceptsX509Svids ? (trustDomain) => bundles.get(trustDomain)?.x509Authorities() : undefined,
    required: settings.require,
    binding: { rule: settings.binding.rule, clients: settings.binding.clients },
    now,
  });
}

/** A bundle's X.509 authorities for the handshake; none while it is stale (its SVIDs are refused anyway). */
function safeAuthorities(bundle: TrustBundle) {
  try {
    return [...bundle.x509Authorities()];
  } catch {
    return [];
  }
}
