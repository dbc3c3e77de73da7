/** RFC 9493 subject identifiers and SSF complex subjects as revocation marks (src/signals/subject.ts). */
import { describe, expect, test } from 'vitest';
import { subjectMatches } from '../../src/signals/subject.ts';
import { AgentwardError } from '../../src/errors.ts';

describe('subjectMatches', () => {
  test.each([
    [{ format: 'iss_sub', iss: 'https://idp', sub: 'u' }, [{ iss: 'https://idp', sub: 'u' }]],
    [{ format: 'opaque', id: 'u' }, [{ sub: 'u' }]],
    [{ format: 'email', email: 'u@example.com' }, [{ email: 'u@example.com' }]],
    [{ format: 'jwt_id', iss: 'https://as', jti: 'j' }, [{ iss: 'https://as', jti: 'j' }]],
    [{ format: 'aliases', identifiers: [{ format: 'opaque', id: 'u' }, { format: 'email', email: 'u@e' }] }, [{ sub: 'u' }, { email: 'u@e' }]],
    [{ format: 'complex', user: { format: 'iss_sub', iss: 'https://idp', sub: 'u' }, session: { format: 'opaque', id: 's' } }, [{ iss: 'https://idp', sub: 'u', sid: 's' }]],
    [{ user: { format: 'opaque', id: 'u' }, application: { format: 'opaque', id: 'app' } }, [{ sub: 'u', clientId: 'app' }]],
  ])('%j', (subject, matches) => {
    expect(subjectMatches(subject).matches).toEqual(matches);
  });

  test('device is set aside (the mark is wider), and said so', () => {
    const result = subjectMatches({ format: 'complex', user: { format: 'opaque', id: 'u' }, device: { format: 'opaque', id: 'd' } });
    expect(result.matches).toEqual([{ sub: 'u' }]);
    expect(result.notes.join()).toContain('device');
  });

  test('an unsupported format marks nothing, with a note', () => {
    const result = subjectMatches({ format: 'phone_number', phone_number: '+1' });
    expect(result.matches).toEqual([]);
    expect(result.notes.join()).toContain('not supported');
  });

  test('a complex subject of only a device marks nothing', () => {
    expect(subjectMatches({ format: 'complex', device: { format: 'opaque', id: 'd' } }).matches).toEqual([]);
  });

  test.each([[{ format: 'email' }], [{ format: 'iss_sub', iss: 'x' }], ['string'], [{ format: 'aliases', identifiers: [] }], [{ format: 'complex', user: 'x' }]])('malformed %j: ERR_SET_CLAIMS', (subject) => {
    let caught: unknown;
    try {
      subjectMatches(subject);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AgentwardError);
    expect((caught as AgentwardError).code).toBe('ERR_SET_CLAIMS');
  });
});
