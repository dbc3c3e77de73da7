/**
 * Subject identifiers (RFC 9493) and SSF complex subjects (SSF 1.0 §3.3), turned into what a
 * revocation mark matches in a verified access token (src/credentials/revocation.ts).
 *
 *   iss_sub            the token's iss and sub, exactly
 *   opaque             the token's sub, from any issuer (the transmitter and the receiver agree on it)
 *   email              the token's email claim, case-insensitively
 *   jwt_id             the token's iss and jti (a subject that is one JWT)
 *   aliases            each identifier on its own (any of them names the subject)
 *   complex  (SSF §3.3) every member at once: `user` as above, `session` (opaque id → the token's
 *                       `sid`; iss_sub → iss and sid), `application` (opaque id → the token's
 *                       client; iss_sub → iss and client). `device`, `tenant`, `org_unit` and
 *                       `group` cannot be read from a token: they are set aside, so the mark is
 *                       wider than the event (it never misses a token the event names).
 *
 * Any other format (account, phone_number, did, uri, ip addresses) is reported as unsupported:
 * the event is acknowledged and logged, and marks nothing.
 */
import { AgentwardError } from '../errors.ts';
import type { RevocationMatch } from '../credentials/revocation.ts';

export interface SubjectMatches {
  /** One mark each; empty when nothing in the subject can be matched in a token. */
  matches: RevocationMatch[];
  /** Why some or all of it matches nothing (members set aside, formats not supported). */
  notes: string[];
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

function invalid(detail: string): AgentwardError {
  return new AgentwardError('ERR_SET_CLAIMS', `The subject identifier is invalid: ${detail}.`);
}

function member(id: Json, name: string, format: string): string {
  const value = id[name];
  if (typeof value !== 'string' || value === '') throw invalid(`format ${format} needs a non-empty string ${name}`);
  return value;
}

/** Members of a complex subject that no token carries: set aside (the mark gets wider). */
const UNMATCHABLE_MEMBERS = new Set(['device', 'tenant', 'org_unit', 'group']);
const COMPLEX_MEMBERS = new Set(['user', 'session', 'application', ...UNMATCHABLE_MEMBERS]);

/** Reads a subject identifier; throws ERR_SET_CLAIMS when it is malformed. */
export function subjectMatches(subject: unknown): SubjectMatches {
  if (!isObject(subject) || typeof subject.format !== 'string') {
    // SSF 1.0 §3.3: a complex subject carries no `format` of its own, only its members.
    if (isObject(subject) && subject.format === undefined && Object.keys(subject).some((k) => COMPLEX_MEMBERS.has(k))) return complex(subject);
    throw invalid('it must be an object with a format');
  }
  if (subject.format === 'complex') return complex(subject);
  if (subject.format === 'aliases') {
    const identifiers = subject.identifiers;
    if (!Array.isArray(identifiers) || identifiers.length === 0) throw invalid('format aliases needs a non-empty identifiers array');
    const out: SubjectMatches = { matches: [], notes: [] };
    for (const alias of identifiers) {
      if (isObject(alias) && alias.format === 'aliases') throw invalid('an alias cannot be an aliases identifier (RFC 9493 section 3.2)');
      const one = simple(alias, 'alias');
      out.matches.push(...one.matches);
      out.notes.push(...one.notes);
    }
    return out;
  }
  return simple(subject, 'subject');
}

/** A simple subject identifier, as the subject or as a `user`. */
function simple(id: unknown, role: string): SubjectMatches {
  if (!isObject(id) || typeof id.format !== 'string') throw invalid(`the ${role} must be an object with a format`);
  switch (id.format) {
    case 'iss_sub':
      return one({ iss: member(id, 'iss', 'iss_sub'), sub: member(id, 'sub', 'iss_sub') });
    case 'opaque':
      return one({ sub: member(id, 'id', 'opaque') });
    case 'email':
      return one({ email: member(id, 'email', 'email') });
    case 'jwt_id':
      return one({ iss: member(id, 'iss', 'jwt_id'), jti: member(id, 'jti', 'jwt_id') });
    default:
      return { matches: [], notes: [`subject format ${JSON.stringify(id.format).slice(0, 40)} is not supported (${role})`] };
  }
}

function one(match: RevocationMatch): SubjectMatches {
  return { matches: [match], notes: [] };
}

/** SSF 1.0 §3.3: every member names the same subject at once (the mark needs all of them). */
function complex(subject: Json): SubjectMatches {
  const match: RevocationMatch = {};
  const notes: string[] = [];
  for (const [name, value] of Object.entries(subject)) {
    if (name === 'format') continue;
    if (UNMATCHABLE_MEMBERS.has(name)) {
      notes.push(`member ${name} cannot be matched in a token and was set aside (the mark is wider)`);
      continue;
    }
    if (!COMPLEX_MEMBERS.has(name)) {
      notes.push(`member ${JSON.stringify(name).slice(0, 40)} is not known and was set aside`);
      continue;
    }
    if (!isObject(value) || typeof value.format !== 'string') throw invalid(`member ${name} must be a subject identifier`);
    if (name === 'user') {
      const user = simple(value, 'user');
      if (user.matches.length === 0) return { matches: [], notes: user.notes };
      merge(match, user.matches[0]!, name);
    } else {
      // session and application: an opaque id is the token's sid or client; iss_sub adds the issuer.
      const field = name === 'session' ? 'sid' : 'clientId';
      if (value.format === 'opaque') merge(match, { [field]: member(value, 'id', 'opaque') }, name);
      else if (value.format === 'iss_sub') merge(match, { iss: member(value, 'iss', 'iss_sub'), [field]: member(value, 'sub', 'iss_sub') }, name);
      else return { matches: [], notes: [`member ${name} has format ${JSON.stringify(value.format).slice(0, 40)}, which is not supported`] };
    }
  }
  const named = Object.keys(match).some((k) => k !== 'iss');
  return named ? { matches: [match], notes } : { matches: [], notes: [...notes, 'nothing in the complex subject can be matched in a token'] };
}

function merge(into: RevocationMatch, from: RevocationMatch, name: string): void {
  for (const [key, value] of Object.entries(from) as [keyof RevocationMatch, string][]) {
    if (into[key] !== undefined && into[key] !== value) throw invalid(`member ${name} names another ${key} than the other members`);
    into[key] = value;
  }
}
