/**
 * What every builder may use besides its own config section: built once by the composition root
 * (src/app/) and handed down, so that time and network stay injectable (conventions §10).
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';

export interface Services {
  logger: Logger;
  /** Milliseconds since the epoch; tests freeze it. */
  now: () => number;
  /** Outbound connection pool for key sets, introspection and bundles; undefined: undici's global one. */
  dispatcher: Dispatcher | undefined;
  /** Folder of the config file: relative paths in it start here. */
  baseDir: string;
  /** `oauth.clockSkew` in seconds: the leeway of every time check. */
  clockSkewSeconds: number;
  /** How every key set (issuers, the Txn-Token service) is fetched and refreshed (`oauth.keys`). */
  keySets: { maxAgeMs: number; cooldownMs: number; timeoutMs: number };
}
