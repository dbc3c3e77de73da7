/**
 * The access-token verifier remembers tokens whose signature failed (AccessTokenVerifier.forged):
 * a repeated forged token gets the same refusal without a signature check, and the memory is
 * dropped when the issuer's key set changes, so a token signed by a key that arrives later is
 * judged again.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AccessTokenVerifier } from '../../src/credentials/access-token.ts';
import { IssuerKeys } from '../../src/keys/issuer-keys.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { newKey, startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { expectCode } from '../helpers/expect-code.ts';

const RESOURCE = 'https://tools.example.com/mcp';
let issuer: TestIssuer;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
});
afterAll(() => issuer.close());

test('a forged token is refused the same way every time, and judged again after the key set changes', async () => {
  const keys = new IssuerKeys({ issuer: issuer.issuer, jwksUri: issuer.jwksUri, discovery: 'auto' }, { maxAgeMs: 3_600_000, cooldownMs: 0, timeoutMs: 2000, logger: createLogger('silent') });
  await keys.start();
  const verifier = new AccessTokenVerifier({
    issuers: [{ config: { issuer: issuer.issuer, algorithms: ['ES256'] }, keys }],
    resourceId: RESOURCE,
    clockSkewSeconds: 30,
    maxDelegationDepth: 4,
    cacheSize: 100,
    dpopBinding: false,
  });
  try {
    // Signed by a key the issuer does not publish yet, under the kid of the one it does.
    const published = issuer.keys[0]!;
    const other = await newKey('ES256', published.kid);
    const token = await issuer.mint({}, { key: other });
    const first = await expectCode(verifier.verify(token), 'ERR_TOKEN_SIGNATURE');
    const again = await expectCode(verifier.verify(token), 'ERR_TOKEN_SIGNATURE');
    expect(again.detail).toBe(first.detail);
    // The issuer replaces its key with the one that signed the token: no longer a forgery.
    issuer.keys.splice(0, issuer.keys.length, other);
    // A token with a kid nobody publishes makes the key set refetch (cooldown 0), which sees the change.
    await expectCode(verifier.verify(await issuer.mint({}, { key: await newKey('ES256', 'unknown-kid') })), 'ERR_TOKEN_KEY_UNKNOWN');
    await expect(verifier.verify(token)).resolves.toMatchObject({ issuer: issuer.issuer });
  } finally {
    keys.close();
  }
});
