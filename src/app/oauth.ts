/**
 * The OAuth side of the composition root: one key set per issuer, the access-token verifier (JWT
 * and, for the one issuer that has it, introspection), DPoP, and the Txn-Token service's keys and
 * verifier. Built once; the request path only calls them.
 */
import type { JWK } from 'jose';
import type { LoadedConfig } from '../config/load.ts';
import type { IssuerConfig } from '../config/schema.ts';
import { durationMs } from '../duration.ts';
import { AccessTokenVerifier } from '../credentials/access-token.ts';
import { DpopNonces, DpopVerifier } from '../credentials/dpop.ts';
import { TokenIntrospector, type IntrospectionClientAuth } from '../credentials/introspection.ts';
import { AccessTokens } from '../credentials/tokens.ts';
import { TxnTokenVerifier } from '../credentials/txn-token.ts';
import { IssuerKeys, type IssuerKeysOptions } from '../keys/issuer-keys.ts';
import type { PipelineDeps } from '../proxy/pipeline.ts';
import type { Services } from '../services.ts';

export interface Issuer {
  config: IssuerConfig;
  keys: IssuerKeys;
}

/** The key bindings whose proof this resource can check (RFC 7800): the same for every token path. */
export interface Bindings {
  dpopBinding: boolean;
  certificateBinding: boolean;
}

export interface OAuthParts {
  issuers: Issuer[];
  verifier: AccessTokens;
  dpop: PipelineDeps['dpop'];
  txn: PipelineDeps['txn'];
  /** The Txn-Token service's key set, when `txnTokens` is configured. */
  txnKeys: IssuerKeys | undefined;
}

export function buildOAuth(loaded: LoadedConfig, services: Services, bindings: Bindings): OAuthParts {
  const { config } = loaded;
  const keyOptions = keySetOptions(services);
  const issuers = config.oauth.issuers.map((issuer) => ({ config: issuer, keys: new IssuerKeys(issuer, keyOptions) }));
  if (issuers.length === 0) services.logger.warn('no OAuth issuers are configured: every request with a token will be refused');
  const jwt = new AccessTokenVerifier({
    issuers,
    resourceId: config.resource.id,
    clockSkewSeconds: services.clockSkewSeconds,
    maxDelegationDepth: config.oauth.maxDelegationDepth,
    cacheSize: config.oauth.tokenCacheSize,
    ...bindings,
    now: services.now,
  });
  const introspecting = issuers.find((i) => i.config.introspection !== undefined);
  const verifier = new AccessTokens(jwt, introspecting && buildIntrospector(loaded, introspecting, bindings, services));
  const txnKeys = buildTxnKeys(config.txnTokens, keyOptions);
  return { issuers, verifier, dpop: buildDpop(config.oauth.dpop, services), txn: buildTxn(config.txnTokens, txnKeys, services), txnKeys };
}

/** Every key set (issuers, the Txn-Token service) is fetched and refreshed the same way. */
function keySetOptions(services: Services): IssuerKeysOptions {
  return { ...services.keySets, logger: services.logger, now: services.now, ...(services.dispatcher ? { dispatcher: services.dispatcher } : {}) };
}

/** RFC 7662 introspection for the one issuer that has it (config/load.ts allows one). */
function buildIntrospector(loaded: LoadedConfig, issuer: Issuer, bindings: Bindings, services: Services): TokenIntrospector {
  const { config } = loaded;
  const settings = issuer.config.introspection!;
  const index = config.oauth.issuers.indexOf(issuer.config);
  const secret = (name: string) => loaded.secrets.get(`oauth.issuers[${index}].introspection.${name}`)!;
  let clientAuth: IntrospectionClientAuth;
  if (settings.auth === 'private_key_jwt') {
    const privateKey = JSON.parse(secret('privateKey')) as JWK;
    clientAuth = { method: 'private_key_jwt', clientId: settings.clientId, privateKey, alg: settings.algorithm ?? privateKey.alg! };
  } else {
    clientAuth = { method: settings.auth, clientId: settings.clientId, clientSecret: secret('clientSecret') };
  }
  return new TokenIntrospector({
    issuer: issuer.config.issuer,
    endpoint: settings.endpoint,
    clientAuth,
    resourceId: config.resource.id,
    audiences: new Set(issuer.config.audiences ?? [config.resource.id]),
    clockSkewSeconds: services.clockSkewSeconds,
    maxDelegationDepth: config.oauth.maxDelegationDepth,
    cache: { maxEntries: settings.cacheSize, maxTtlMs: durationMs(settings.cacheTtl), negativeTtlMs: durationMs(settings.negativeCacheTtl) },
    timeoutMs: durationMs(config.oauth.keys.timeout),
    ...bindings,
    responseFormat: settings.format,
    responseKeys: (header, token) => issuer.keys.getKey(header, token),
    ...(services.dispatcher ? { dispatcher: services.dispatcher } : {}),
    now: services.now,
  });
}

/** DPoP (RFC 9449): the proof verifier, the server nonces when asked for, and whether it is required. */
function buildDpop(settings: LoadedConfig['config']['oauth']['dpop'], services: Services): PipelineDeps['dpop'] {
  if (settings.mode === 'disabled') return undefined;
  const nonces = settings.nonce.enabled ? new DpopNonces({ lifetimeMs: durationMs(settings.nonce.lifetime), now: services.now }) : undefined;
  const verifier = new DpopVerifier({
    algorithms: settings.algorithms,
    maxAgeSeconds: durationMs(settings.maxAge) / 1000,
    clockSkewSeconds: services.clockSkewSeconds,
    replayCacheSize: settings.replayCacheSize,
    nonces,
    now: services.now,
  });
  return { verifier, nonces, required: settings.mode === 'required' };
}

/** The trust domain's Txn-Token service keys, fetched and refreshed like an issuer's. */
function buildTxnKeys(settings: LoadedConfig['config']['txnTokens'], options: IssuerKeysOptions): IssuerKeys | undefined {
  return settings && new IssuerKeys({ issuer: settings.issuer ?? settings.trustDomain, jwksUri: settings.jwksUri, discovery: 'auto' }, options);
}

function buildTxn(settings: LoadedConfig['config']['txnTokens'], keys: IssuerKeys | undefined, services: Services): PipelineDeps['txn'] {
  if (settings === undefined || keys === undefined) return undefined;
  const verifier = new TxnTokenVerifier({
    trustDomain: settings.trustDomain,
    keys: (header, token) => keys.getKey(header, token),
    algorithms: settings.algorithms,
    clockSkewSeconds: services.clockSkewSeconds,
    maxLifetimeSeconds: durationMs(settings.maxLifetime) / 1000,
    now: services.now,
  });
  return { verifier, required: settings.mode === 'required' };
}
