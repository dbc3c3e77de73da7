/**
 * The OAuth side of the composition root: the access-token side (a key set per issuer, the JWT
 * verifier, introspection), DPoP and Txn-Tokens, each built by its own module from its section.
 */
import type { LoadedConfig } from '../config/load.ts';
import { buildDpop, type DpopCheck } from '../credentials/dpop.ts';
import type { RevocationList } from '../credentials/revocation.ts';
import { buildAccessTokens, type AccessTokenParts } from '../credentials/tokens.ts';
import { buildTxnTokens, type TxnTokenCheck } from '../credentials/txn-token.ts';
import type { Services } from '../services.ts';
import type { ReplayStore } from '../state/replay.ts';

export interface OAuthParts extends AccessTokenParts {
  dpop: DpopCheck | undefined;
  txn: TxnTokenCheck | undefined;
}

/** The key bindings whose proof this resource can check (RFC 7800): the same for every token path. */
export interface Bindings {
  dpopBinding: boolean;
  certificateBinding: boolean;
}

export function buildOAuth(loaded: LoadedConfig, services: Services, bindings: Bindings, revocations?: RevocationList, replay?: ReplayStore): OAuthParts {
  const { config } = loaded;
  const oauth = config.oauth;
  const tokens = buildAccessTokens(
    {
      ...oauth,
      resourceId: config.resource.id,
      ...bindings,
      secret: (index, name) => loaded.secrets.get(`oauth.issuers[${index}].introspection.${name}`)!,
    },
    services,
    revocations,
  );
  return { ...tokens, dpop: buildDpop(oauth.dpop, services, replay), txn: config.txnTokens && buildTxnTokens(config.txnTokens, services) };
}
