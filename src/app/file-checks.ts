/**
 * Checks that read the files a config names (the listener's TLS certificate and key, the trusted
 * proxies' client CA file, the Redis CA file, the policy bundle signer's key, the Txn-Token signing key) with the
 * parsers that will use them. They run after the config is loaded, before anything is built, for
 * `serve` and `check` alike, and report like config problems: the YAML path, what is wrong, the
 * fix. Config validation itself reads no key file and imports no
 * verifier (docs/architecture.md).
 */
import { resolve } from 'node:path';
import type { ConfigProblem, LoadedConfig } from '../config/load.ts';
import { readSigningKey, TxnKeyFileError } from '../credentials/txn-mint.ts';
import { readVerificationKey, VerificationKeyError } from '../policy/bundle-signature.ts';
import { readTlsFiles, TlsFileError } from '../proxy/tls.ts';
import { readCaCertificates } from './trusted-proxies.ts';

export function checkFiles(loaded: LoadedConfig): ConfigProblem[] {
  const { config, baseDir } = loaded;
  const problems: ConfigProblem[] = [];
  const tls = config.listen.tls;
  if (tls) {
    try {
      readTlsFiles({
        certFile: resolve(baseDir, tls.certFile),
        keyFile: resolve(baseDir, tls.keyFile),
        clientCaFile: tls.clientCaFile === undefined ? undefined : resolve(baseDir, tls.clientCaFile),
      });
    } catch (err) {
      if (!(err instanceof TlsFileError)) throw err;
      problems.push({ path: `listen.tls.${err.key}`, message: `${err.file} ${err.reason}`, fix: 'give a PEM certificate chain (leaf first), its unencrypted PEM private key, and PEM CA certificates' });
    }
  }
  const proxyCas = config.listen.trustedProxies?.clientCaFile;
  if (proxyCas !== undefined) {
    const file = resolve(baseDir, proxyCas);
    try {
      readCaCertificates(file);
    } catch (err) {
      problems.push({ path: 'listen.trustedProxies.clientCaFile', message: `${file} ${(err as Error).message}`, fix: 'give the PEM CA certificates your agents\' client certificates chain to' });
    }
  }
  const verification = config.policy.verification;
  if (verification) {
    try {
      readVerificationKey(resolve(baseDir, verification.keyFile), verification.algorithm);
    } catch (err) {
      if (!(err instanceof VerificationKeyError)) throw err;
      problems.push({ path: `policy.verification.${err.key}`, message: err.message, fix: "give the bundle signer's public key (PEM or JWK; relative paths start at this file's folder) and an algorithm that fits it" });
    }
  }
  const redisCa = config.state.backend === 'redis' ? config.state.redis?.tls?.caFile : undefined;
  if (redisCa !== undefined) {
    const file = resolve(baseDir, redisCa);
    try {
      readCaCertificates(file);
    } catch (err) {
      problems.push({ path: 'state.redis.tls.caFile', message: `${file} ${(err as Error).message}`, fix: "give the PEM CA certificates the Redis server's certificate chains to" });
    }
  }
  const mint = config.forward.txnToken;
  if (mint && mint.mode !== 'off') {
    try {
      readSigningKey(resolve(baseDir, mint.keyFile), mint.algorithm);
    } catch (err) {
      if (!(err instanceof TxnKeyFileError)) throw err;
      problems.push({ path: 'forward.txnToken.keyFile', message: `${err.file} ${err.reason}`, fix: `give an unencrypted PEM private key that signs ${mint.algorithm} (relative paths start at this file's folder), e.g. openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` });
    }
  }
  return problems;
}
