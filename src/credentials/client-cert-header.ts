/**
 * The client certificate behind a TLS-terminating hop (RFC 9440): when TLS ends at an ingress in
 * front of agentward, the ingress passes the client certificate it received in `Client-Cert` (an
 * RFC 8941 Byte Sequence of the DER, §2.2) and its chain in `Client-Cert-Chain` (a List of Byte
 * Sequences, §2.3). RFC 8705 §6.5 leaves that transfer to deployments; RFC 9440 §4 and RFC 9700
 * §4.13 ask that the fields be taken only from a trusted hop and sanitized otherwise.
 *
 * Trusted hops are `listen.trustedProxies`: peers by source address (CIDR), or by the TLS client
 * certificate they connect with, verified in the handshake, whose URI or DNS SAN is listed. Who
 * may send the fields, and what a request carries as its client certificate, is decided in one
 * place, the extract step (src/credentials/extract.ts).
 *
 * Defense in depth: the hop's word is not enough. agentward verifies the forwarded chain itself,
 * leaf through the `Client-Cert-Chain` certificates to an anchor of `listen.trustedProxies.clientCaFile`
 * (and, where X.509-SVIDs are accepted, of the trust bundles), every certificate within its
 * validity, the leaf's extended key usage allowing `clientAuth` when present (as OpenSSL's client
 * purpose check does in a handshake). A certificate that fails is refused, never passed on with
 * `verified: false`: so a forwarded certificate the policy sees is always `verified: true`. The
 * chain is built by the X.509-SVID chain builder (src/credentials/x509-svid.ts), one routine.
 *
 * Work per request: a value seen before is found by its exact text in a bounded cache, with its
 * parsed certificates and the chain built for the current anchors; only the clock is compared
 * again. The cached object is also what the X.509-SVID checks remember their work by.
 */
import { X509Certificate } from 'node:crypto';
import { BlockList, isIP, type Socket } from 'node:net';
import { LRUCache } from 'lru-cache';
import { isInnerList, parseItem, parseList, type BareItem } from 'structured-headers';
import { AgentwardError } from '../errors.ts';
import { certificateFacts, tlsCertificateOf, type PresentedCertificate } from './client-certificate.ts';
import { buildChain, MAX_CHAIN_LENGTH, type Chain } from './x509-svid.ts';

export interface TrustedProxiesOptions {
  /** Peers trusted by source address: CIDRs or single addresses, IPv4 or IPv6 (checked by the config loader). */
  addresses: readonly string[];
  /** Peers trusted by their handshake-verified TLS client certificate: URI SANs (exact) or DNS SANs (any case). */
  peerNames: readonly string[];
  /**
   * The anchors a forwarded chain must reach. It must return the same array until they change
   * (the built chain is kept per array).
   */
  anchors: () => readonly X509Certificate[];
  /** Milliseconds since the epoch. */
  now: () => number;
  /** Distinct `Client-Cert` values kept parsed. Default 1024. */
  cacheSize?: number;
}

/** How the peer of a connection is trusted to forward a client certificate. */
export type HopTrust = 'address' | 'certificate' | undefined;

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

interface Forwarded {
  presented: PresentedCertificate;
  built: { anchors: readonly X509Certificate[]; outcome: Chain | { detail: string } } | undefined;
}

export class TrustedProxies {
  private readonly addresses = new BlockList();
  private readonly uris: ReadonlySet<string>;
  private readonly dnsNames: ReadonlySet<string>;
  private readonly byConnection = new WeakMap<Socket, HopTrust>();
  private readonly cache: LRUCache<string, Forwarded>;
  private readonly options: TrustedProxiesOptions;

  constructor(options: TrustedProxiesOptions) {
    this.options = options;
    for (const entry of options.addresses) {
      const [address, prefix] = entry.split('/') as [string, string | undefined];
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      // An IPv4 rule also matches the IPv4-mapped IPv6 form Node reports on a dual-stack listener.
      this.addresses.addSubnet(address, prefix === undefined ? (family === 'ipv6' ? 128 : 32) : Number(prefix), family);
    }
    this.uris = new Set(options.peerNames.filter((n) => n.includes(':')));
    this.dnsNames = new Set(options.peerNames.filter((n) => !n.includes(':')).map((n) => n.toLowerCase()));
    this.cache = new LRUCache({ max: options.cacheSize ?? 1024 });
  }

  /**
   * Whether the peer of `socket` may forward a client certificate, and why: its TLS client
   * certificate (verified in the handshake) names a listed peer, or its address is listed. A
   * connection's peer cannot change, so this is computed once per connection.
   */
  trustOf(socket: Socket): HopTrust {
    if (this.byConnection.has(socket)) return this.byConnection.get(socket);
    const trust = this.byCertificate(socket) ? 'certificate' : this.byAddress(socket) ? 'address' : undefined;
    this.byConnection.set(socket, trust);
    return trust;
  }

  private byCertificate(socket: Socket): boolean {
    if (this.uris.size === 0 && this.dnsNames.size === 0) return false;
    const facts = tlsCertificateOf(socket)?.facts;
    if (!facts?.verified) return false;
    return facts.sans.uri.some((u) => this.uris.has(u)) || facts.sans.dns.some((d) => this.dnsNames.has(d.toLowerCase()));
  }

  private byAddress(socket: Socket): boolean {
    const address = socket.remoteAddress;
    if (address === undefined) return false;
    return this.addresses.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }

  /**
   * The client certificate a trusted hop forwarded, verified as the module comment says. Throws
   * ERR_CLIENT_CERT_HEADER_MALFORMED (fields that are not what RFC 9440 §2 defines) or
   * ERR_CLIENT_CERT_HEADER_UNVERIFIED (a chain agentward cannot verify).
   *
   * @param clientCert the `Client-Cert` field lines, undefined when absent
   * @param chain the `Client-Cert-Chain` field lines, undefined when absent
   */
  certificateFrom(clientCert: readonly string[] | undefined, chain: readonly string[] | undefined): PresentedCertificate {
    // RFC 9440 §2.3: the chain accompanies a certificate; alone it is meaningless.
    if (clientCert === undefined) throw malformed('Client-Cert-Chain was sent without Client-Cert (RFC 9440 section 2.3).');
    // Field lines of one name combine with commas (RFC 9110 §5.3): two Client-Cert lines then
    // fail to parse as one Item, and are refused rather than one of them chosen.
    const certText = clientCert.join(', ');
    const chainText = chain?.join(', ');
    const key = chainText === undefined ? certText : `${certText}\n${chainText}`;
    let forwarded = this.cache.get(key);
    if (forwarded === undefined) {
      forwarded = parseForwarded(certText, chainText);
      this.cache.set(key, forwarded);
    }
    const anchors = this.options.anchors();
    if (forwarded.built?.anchors !== anchors) forwarded.built = { anchors, outcome: verifyChain(forwarded.presented, anchors) };
    const outcome = forwarded.built.outcome;
    if ('detail' in outcome) throw new AgentwardError('ERR_CLIENT_CERT_HEADER_UNVERIFIED', outcome.detail);
    const now = this.options.now();
    if (now < outcome.notBefore) throw new AgentwardError('ERR_CLIENT_CERT_HEADER_UNVERIFIED', `The ${outcome.notBeforeOf} of the forwarded client certificate chain is not valid yet.`);
    if (now > outcome.notAfter) throw new AgentwardError('ERR_CLIENT_CERT_HEADER_UNVERIFIED', `The ${outcome.notAfterOf} of the forwarded client certificate chain has expired.`);
    return forwarded.presented;
  }
}

function malformed(detail: string): AgentwardError {
  return new AgentwardError('ERR_CLIENT_CERT_HEADER_MALFORMED', detail);
}

/** RFC 9440 §2.2, §2.3. Parameters are ignored: none are defined, and RFC 8941 §3.1.2 says unknown ones are. */
function parseForwarded(certText: string, chainText: string | undefined): Forwarded {
  let item: BareItem;
  try {
    item = parseItem(certText)[0];
  } catch {
    throw malformed('Client-Cert is not one Structured Field Item (RFC 9440 section 2.2; RFC 8941).');
  }
  const leaf = certificate(item, 'Client-Cert');
  const issuers: X509Certificate[] = [];
  if (chainText !== undefined) {
    let list: ReturnType<typeof parseList>;
    try {
      list = parseList(chainText);
    } catch {
      throw malformed('Client-Cert-Chain is not a Structured Field List (RFC 9440 section 2.3; RFC 8941).');
    }
    if (list.length > MAX_CHAIN_LENGTH - 1) throw malformed(`Client-Cert-Chain has more than ${MAX_CHAIN_LENGTH - 1} certificates.`);
    for (const member of list) {
      if (isInnerList(member)) throw malformed('Client-Cert-Chain members must be Byte Sequences, not inner lists (RFC 9440 section 2.3).');
      issuers.push(certificate(member[0], 'Client-Cert-Chain'));
    }
  }
  return {
    presented: { via: 'header', leaf, facts: certificateFacts(leaf, true), issuers: (max) => issuers.slice(0, max), verifyError: undefined },
    built: undefined,
  };
}

function certificate(item: BareItem, field: string): X509Certificate {
  if (!(item instanceof ArrayBuffer)) throw malformed(`${field} must hold Byte Sequences, :base64 DER: (RFC 9440 section 2).`);
  if (item.byteLength === 0) throw malformed(`${field} holds an empty Byte Sequence.`);
  try {
    return new X509Certificate(Buffer.from(item));
  } catch {
    throw malformed(`${field} holds a Byte Sequence that is not a DER X.509 certificate (RFC 9440 section 2).`);
  }
}

/** The chain to an anchor, with its validity window; or why there is none. */
function verifyChain(presented: PresentedCertificate, anchors: readonly X509Certificate[]): Chain | { detail: string } {
  const eku = presented.leaf.keyUsage as string[] | undefined;
  if (eku !== undefined && !eku.includes(CLIENT_AUTH)) return { detail: 'The forwarded client certificate extended key usage lacks clientAuth (RFC 5280 section 4.2.1.12).' };
  const chain = buildChain(presented.leaf, presented.issuers(MAX_CHAIN_LENGTH - 1), anchors);
  if ('code' in chain) {
    // The builder's words for a missing anchor speak of SPIFFE trust domains; here the anchors are broader.
    return { detail: chain.noAnchor ? 'The forwarded client certificate does not chain to listen.trustedProxies.clientCaFile or a trust bundle authority.' : chain.detail };
  }
  return chain;
}
