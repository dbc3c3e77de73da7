/**
 * The policy engine for a config; `agentward check` builds it alone. A bundle URL is polled through
 * the shared dispatcher (default: undici's global pool); a verification key is read here, once.
 */
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import { durationMs } from '../duration.ts';
import { PolicyEngine } from '../policy/engine.ts';
import { opaBinary } from '../policy/compile.ts';
import { BundleVerifier } from '../policy/bundle-signature.ts';
import { isUrlSource } from '../policy/bundle-source.ts';
import type { Services } from '../services.ts';

export function createPolicyEngine(loaded: LoadedConfig, services: Pick<Services, 'logger' | 'dispatcher'>, env?: NodeJS.ProcessEnv): PolicyEngine {
  const { config, baseDir } = loaded;
  const settings = config.policy;
  const url = isUrlSource(settings.source);
  const verification = settings.verification;
  return new PolicyEngine({
    source: url ? settings.source : resolve(baseDir, settings.source),
    entrypoint: settings.entrypoint,
    dataFile: settings.data === undefined ? undefined : resolve(baseDir, settings.data),
    // A configured opa path is relative to the config file, like every other path; a bare name is looked up on PATH.
    opa: opaBinary(settings.opa?.includes('/') ? resolve(baseDir, settings.opa) : settings.opa, env),
    maxMemoryBytes: settings.maxMemoryBytes,
    logger: services.logger,
    verifier:
      verification &&
      BundleVerifier.fromFile(resolve(baseDir, verification.keyFile), { algorithm: verification.algorithm, keyId: verification.keyId, scope: verification.scope }),
    poll: url
      ? { intervalMs: durationMs(settings.poll.interval), timeoutMs: durationMs(settings.poll.timeout), maxBytes: settings.poll.maxBytes, dispatcher: services.dispatcher }
      : undefined,
  });
}
