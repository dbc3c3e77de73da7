/**
 * The runtime surface of the library entry points (docs/library.md "Stable and internal"): a
 * name that leaves `agentward/verify` or `agentward/policy` breaks users, so removing one must be
 * a decision made here, not a side effect. test/integration/library.test.ts checks the packed
 * package; this checks the sources the package is built from.
 */
import { describe, expect, test } from 'vitest';
import * as verify from '../../src/lib/verify.ts';
import * as policy from '../../src/lib/policy.ts';
import { AgentwardError } from '../../src/errors.ts';

describe('library entry points', () => {
  test('agentward/verify exports the verifiers, key sources, errors and helpers', () => {
    expect(Object.keys(verify).sort()).toEqual([
      'AccessTokenVerifier',
      'AgentwardError',
      'CompactJws',
      'DpopNonces',
      'DpopVerifier',
      'ERROR_CODES',
      'HttpSignatureVerifier',
      'IssuerKeys',
      'JwtSvidVerifier',
      'MAX_CHAIN_LENGTH',
      'ReplayCache',
      'TrustBundle',
      'TxnTokenVerifier',
      'WIMSE_TAG',
      'WimseVerifier',
      'WorkloadIdError',
      'contentDigest',
      'createLogger',
      'explicitTyp',
      'jwkThumbprint',
      'metadataUrls',
      'normalizeHtu',
      'parseBundle',
      'parseWorkloadId',
      'presentedCertificate',
      'presentsX509Svid',
      'tlsCertificateOf',
      'txnTokenHash',
      'verifyCompactJws',
      'verifyX509Svid',
    ]);
  });

  test('agentward/policy exports the engine, the decision contract and bundle signatures', () => {
    expect(Object.keys(policy).sort()).toEqual(['AgentwardError', 'BundleVerifier', 'ERROR_CODES', 'PolicyEngine', 'createLogger', 'parseDecision', 'readVerificationKey']);
  });

  test('both entry points share one error class, so instanceof holds across them', () => {
    expect(verify.AgentwardError).toBe(AgentwardError);
    expect(policy.AgentwardError).toBe(AgentwardError);
  });

  test('ReplayCache keeps time by the injected clock, Date.now when none is given', async () => {
    let now = 1_000_000;
    const cache = new verify.ReplayCache({ max: 10, ttlMs: 1000, now: () => now });
    cache.add('jti-1', 1);
    expect(cache.has('jti-1')).toBe(true);
    now += 1001;
    // lru-cache reads the clock again only after its ttlResolution (1 ms) has passed in real time.
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(cache.has('jti-1')).toBe(false);
    const real = new verify.ReplayCache({ max: 10, ttlMs: 60_000 });
    real.add('jti-2', 1);
    expect(real.has('jti-2')).toBe(true);
  });
});
