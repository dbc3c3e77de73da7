/**
 * The revocation list (src/credentials/revocation.ts): what a mark matches, `iat <= before`, a
 * token without `iat` refused while a mark names it, retention, and the bounded memory that fails
 * closed when it forgets a mark.
 */
import { describe, expect, test } from 'vitest';
import { RevocationList } from '../../src/credentials/revocation.ts';
import type { VerifiedAccessToken } from '../../src/credentials/access-token.ts';

const ISS = 'https://as.example.com';

function token(claims: Record<string, unknown>, facts: { subject?: string | null; clientId?: string | null; issuer?: string } = {}): VerifiedAccessToken {
  return {
    issuer: facts.issuer ?? ISS,
    claims,
    subject: facts.subject === undefined ? ((claims.sub as string | undefined) ?? null) : facts.subject,
    clientId: facts.clientId === undefined ? ((claims.client_id as string | undefined) ?? null) : facts.clientId,
    scopes: [],
    audiences: [],
    expiresAt: 2_000_000_000,
    kid: undefined,
    jkt: undefined,
    delegation: { chain: [] } as unknown as VerifiedAccessToken['delegation'],
    hashPrefix: 'x',
    format: 'jwt',
  };
}

function list(options: { maxMarks?: number; retentionMs?: number } = {}) {
  let now = 1_000_000_000_000;
  const forgotten: unknown[] = [];
  const revocations = new RevocationList({ maxMarks: options.maxMarks ?? 100, retentionMs: options.retentionMs ?? 3_600_000, now: () => now, onForget: (m) => forgotten.push(m) });
  return { revocations, forgotten, advance: (ms: number) => (now += ms) };
}

describe('RevocationList', () => {
  test('no marks: nothing is revoked', () => {
    const { revocations } = list();
    expect(revocations.revoked(token({ sub: 'a', iat: 1 }))).toBe(false);
  });

  test('iss+sub: tokens of that subject issued at or before the event, not after, not of another issuer', () => {
    const { revocations } = list();
    revocations.add({ iss: ISS, sub: 'alice' }, 1000);
    expect(revocations.revoked(token({ sub: 'alice', iat: 999 }))).toBe(true);
    expect(revocations.revoked(token({ sub: 'alice', iat: 1000 }))).toBe(true);
    expect(revocations.revoked(token({ sub: 'alice', iat: 1001 }))).toBe(false);
    expect(revocations.revoked(token({ sub: 'alice', iat: 999 }, { issuer: 'https://other.example.com' }))).toBe(false);
    expect(revocations.revoked(token({ sub: 'bob', iat: 999 }))).toBe(false);
  });

  test('a token without iat is refused while a mark names it (it cannot be shown to be newer)', () => {
    const { revocations } = list();
    revocations.add({ sub: 'alice' }, 1000);
    expect(revocations.revoked(token({ sub: 'alice' }))).toBe(true);
    expect(revocations.revoked(token({ sub: 'bob' }))).toBe(false);
  });

  test('sid, client, jti and email (case-insensitive) each match; a compound mark needs all its fields', () => {
    const { revocations } = list();
    revocations.add({ sid: 's1' }, 1000);
    revocations.add({ clientId: 'bot' }, 1000);
    revocations.add({ jti: 'j1' }, 1000);
    revocations.add({ email: 'Alice@Example.com' }, 1000);
    revocations.add({ sub: 'carol', sid: 's9' }, 1000);
    expect(revocations.revoked(token({ sid: 's1', iat: 5 }))).toBe(true);
    expect(revocations.revoked(token({ client_id: 'bot', iat: 5 }))).toBe(true);
    expect(revocations.revoked(token({ jti: 'j1', iat: 5 }))).toBe(true);
    expect(revocations.revoked(token({ email: 'alice@example.COM', iat: 5 }))).toBe(true);
    expect(revocations.revoked(token({ sub: 'carol', sid: 's9', iat: 5 }))).toBe(true);
    expect(revocations.revoked(token({ sub: 'carol', sid: 's8', iat: 5 }))).toBe(false);
    expect(revocations.revoked(token({ sub: 'dave', sid: 's9', iat: 5 }))).toBe(false);
  });

  test('the same mark again keeps the later time', () => {
    const { revocations } = list();
    revocations.add({ sub: 'alice' }, 1000);
    expect(revocations.add({ sub: 'alice' }, 900).before).toBe(1000);
    expect(revocations.add({ sub: 'alice' }, 1100).before).toBe(1100);
    expect(revocations.status().marks).toBe(1);
  });

  test('a mark is kept for the retention (the longest token lifetime), then dropped', () => {
    const { revocations, advance } = list({ retentionMs: 60_000 });
    revocations.add({ sub: 'alice' }, 1000);
    advance(59_000);
    expect(revocations.revoked(token({ sub: 'alice', iat: 999 }))).toBe(true);
    advance(2_000);
    expect(revocations.revoked(token({ sub: 'alice', iat: 999 }))).toBe(false);
  });

  test('when full, the oldest mark is forgotten and every token issued at or before it is refused until it would have expired', () => {
    const { revocations, forgotten, advance } = list({ maxMarks: 100, retentionMs: 60_000 });
    for (let i = 0; i < 101; i++) revocations.add({ sub: `user-${i}` }, 1000 + i);
    expect(forgotten).toHaveLength(1);
    expect(revocations.status()).toMatchObject({ forgotten: 1, refusingIssuedBefore: 1000 });
    // Anyone's token issued at or before the forgotten mark's time; a newer one passes.
    expect(revocations.revoked(token({ sub: 'someone-else', iat: 1000 }))).toBe(true);
    expect(revocations.revoked(token({ sub: 'someone-else' }))).toBe(true);
    expect(revocations.revoked(token({ sub: 'someone-else', iat: 1001 }))).toBe(false);
    expect(revocations.revoked(token({ sub: 'user-0', iat: 999 }))).toBe(true);
    advance(61_000);
    expect(revocations.revoked(token({ sub: 'someone-else', iat: 1000 }))).toBe(false);
  });

  test('matcher: the predicate purges and stream closing use', () => {
    const { revocations } = list();
    const mark = revocations.add({ iss: ISS, sub: 'alice' }, 1000);
    const revoked = RevocationList.matcher([mark]);
    expect(revoked(token({ sub: 'alice', iat: 10 }))).toBe(true);
    expect(revoked(token({ sub: 'alice', iat: 2000 }))).toBe(false);
  });
});
