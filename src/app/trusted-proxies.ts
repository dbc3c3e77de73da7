/**
 * `listen.trustedProxies` in the composition root: the TLS-terminating hops allowed to forward a
 * client certificate (RFC 9440), and the anchors agentward verifies a forwarded chain against
 * (src/credentials/client-cert-header.ts): `clientCaFile`, read once here, and, where X.509-SVIDs
 * are accepted, the X.509 authorities of every trust domain, as the handshake also trusts them.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import { TrustedProxies } from '../credentials/client-cert-header.ts';
import type { TrustBundle } from '../keys/trust-bundle.ts';
import type { Services } from '../services.ts';

/** Undefined without `listen.trustedProxies`: nobody may forward a client certificate. */
export function buildTrustedProxies(loaded: LoadedConfig, services: Services, svidBundles: readonly TrustBundle[]): TrustedProxies | undefined {
  const settings = loaded.config.listen.trustedProxies;
  if (settings === undefined) return undefined;
  const cas = settings.clientCaFile === undefined ? [] : readCaCertificates(resolve(loaded.baseDir, settings.clientCaFile));
  return new TrustedProxies({ addresses: settings.addresses, peerNames: settings.peerNames, anchors: anchorsOf(cas, svidBundles), now: services.now });
}

/**
 * The PEM CA certificates of `file`. Throws an Error whose message says what is wrong with the
 * file (without its name): `agentward check` and startup report it under its YAML path.
 */
export function readCaCertificates(file: string): X509Certificate[] {
  let pem: string;
  try {
    pem = readFileSync(file, 'latin1');
  } catch (err) {
    throw new Error(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return blocks.map((block, i) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch (err) {
      throw new Error(`certificate ${i + 1} cannot be parsed (${(err as Error).message})`, { cause: err });
    }
    if (!cert.ca) throw new Error(`certificate ${i + 1} (${cert.subject.replaceAll('\n', ', ')}) is not a CA certificate`);
    return cert;
  });
}

const NONE: readonly X509Certificate[] = [];

/**
 * The anchors as one array, the same array until a bundle's authorities change (the verifier
 * keeps a built chain per array). A bundle that is unavailable or stale contributes none: its
 * SVIDs are refused anyway, and a certificate of clientCaFile still verifies.
 */
function anchorsOf(cas: readonly X509Certificate[], bundles: readonly TrustBundle[]): () => readonly X509Certificate[] {
  if (bundles.length === 0) return () => cas;
  let parts: readonly (readonly X509Certificate[])[] = [];
  let union = cas;
  return () => {
    const now = bundles.map(authoritiesOf);
    if (now.length !== parts.length || now.some((p, i) => p !== parts[i])) {
      parts = now;
      union = [...cas, ...now.flat()];
    }
    return union;
  };
}

function authoritiesOf(bundle: TrustBundle): readonly X509Certificate[] {
  try {
    return bundle.x509Authorities();
  } catch {
    return NONE;
  }
}
