/**
 * RFC 8693 §4.1 `act` flattening (ACT-Nxx in docs/negative-cases.md): current actor first, earliest last; non-identity
 * members inside `act` carry no meaning (ACT-N03); a malformed `act` rejects the token (ACT-N02);
 * a chain longer than configured rejects it with its own code.
 */
import { describe, expect, test } from 'vitest';
import { flattenDelegation, NO_DELEGATION } from '../../src/identity/delegation.ts';
import { AgentwardError, type ErrorCode } from '../../src/errors.ts';

/** `{ sub: subs[0], act: { sub: subs[1], act: ... } }`. */
function nested(subs: string[]): Record<string, unknown> {
  let act: Record<string, unknown> | undefined;
  for (const sub of [...subs].reverse()) act = act === undefined ? { sub } : { sub, act };
  return act!;
}

function expectCode(fn: () => unknown, code: ErrorCode): AgentwardError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(AgentwardError);
  expect((caught as AgentwardError).code).toBe(code);
  expect((caught as AgentwardError).status).toBe(401);
  expect((caught as AgentwardError).oauthError).toBe('invalid_token');
  return caught as AgentwardError;
}

describe('flattening', () => {
  test('absent act: empty chain, depth 0', () => {
    const d = flattenDelegation(undefined, 4);
    expect(d).toBe(NO_DELEGATION);
    expect(d.chain).toEqual([]);
    expect(d.depth).toBe(0);
  });

  test('nested act is flattened current actor first, earliest last, with iss captured', () => {
    const act = {
      sub: 'spiffe://agents.example.com/planner',
      iss: 'https://as.example.com',
      act: { sub: 'spiffe://agents.example.com/router', act: { sub: 'user-agent-1', iss: 'https://other.example.com' } },
    };
    const d = flattenDelegation(act, 4);
    expect(d.depth).toBe(3);
    expect(d.chain.map((a) => a.sub)).toEqual(['spiffe://agents.example.com/planner', 'spiffe://agents.example.com/router', 'user-agent-1']);
    expect(d.chain.map((a) => a.iss)).toEqual(['https://as.example.com', null, 'https://other.example.com']);
  });

  test('ACT-N03: exp, nbf, iat and aud inside act are dropped; other identity claims are kept', () => {
    const d = flattenDelegation({ sub: 'agent', exp: 1, nbf: 1, iat: 1, aud: 'https://elsewhere.example', client_id: 'bot', may_act: { sub: 'x' } }, 4);
    expect(d.chain).toEqual([{ sub: 'agent', iss: null, claims: { client_id: 'bot', may_act: { sub: 'x' } } }]);
  });

  test('nested act and sub/iss are not repeated in claims', () => {
    const d = flattenDelegation(nested(['a', 'b']), 4);
    expect(d.chain[0]!.claims).toEqual({});
    expect(d.chain[1]!.claims).toEqual({});
  });
});

describe('malformed act (ACT-N02)', () => {
  test.each([
    ['a string', 'agent'],
    ['an array', [{ sub: 'agent' }]],
    ['null', null],
    ['a number', 7],
    ['a boolean', true],
  ])('act is %s → ERR_TOKEN_CLAIM_INVALID', (_name, act) => {
    expectCode(() => flattenDelegation(act, 4), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('a nested act that is a string → ERR_TOKEN_CLAIM_INVALID', () => {
    expectCode(() => flattenDelegation({ sub: 'a', act: 'b' }, 4), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test.each([
    ['no sub', { iss: 'https://as.example.com' }],
    ['an empty sub', { sub: '' }],
    ['a numeric sub', { sub: 42 }],
  ])('actor with %s → ERR_TOKEN_CLAIM_INVALID', (_name, act) => {
    expectCode(() => flattenDelegation(act, 4), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('a prior actor without sub → ERR_TOKEN_CLAIM_INVALID', () => {
    expectCode(() => flattenDelegation({ sub: 'a', act: { iss: 'https://as.example.com' } }, 4), 'ERR_TOKEN_CLAIM_INVALID');
  });

  test('actor iss that is not a string → ERR_TOKEN_CLAIM_INVALID', () => {
    expectCode(() => flattenDelegation({ sub: 'a', iss: 1 }, 4), 'ERR_TOKEN_CLAIM_INVALID');
  });
});

describe('depth limit', () => {
  test('a chain of exactly maxDepth actors is accepted', () => {
    const d = flattenDelegation(nested(['a1', 'a2', 'a3', 'a4']), 4);
    expect(d.depth).toBe(4);
    expect(d.chain.map((a) => a.sub)).toEqual(['a1', 'a2', 'a3', 'a4']);
  });

  test('maxDepth + 1 actors → ERR_DELEGATION_TOO_DEEP', () => {
    const err = expectCode(() => flattenDelegation(nested(['a1', 'a2', 'a3', 'a4', 'a5']), 4), 'ERR_DELEGATION_TOO_DEEP');
    expect(err.detail).toContain('4');
  });

  test('maxDepth 0 with any act → ERR_DELEGATION_TOO_DEEP; without act → empty chain', () => {
    expectCode(() => flattenDelegation({ sub: 'a' }, 0), 'ERR_DELEGATION_TOO_DEEP');
    expect(flattenDelegation(undefined, 0).depth).toBe(0);
  });

  test('a hostile nesting is only walked to maxDepth + 1 actors', () => {
    // An endless chain built lazily: record the deepest actor the walk asked for.
    let deepest = 0;
    const level = (n: number): Record<string, unknown> => {
      deepest = Math.max(deepest, n);
      return {
        sub: `a${n}`,
        get act() {
          return level(n + 1);
        },
      };
    };
    expectCode(() => flattenDelegation(level(0), 32), 'ERR_DELEGATION_TOO_DEEP');
    // Actors 0..32 (33 = maxDepth + 1) were looked at, none beyond.
    expect(deepest).toBe(32);
  });
});
