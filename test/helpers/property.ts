/**
 * Shared pieces of the property-based tests of the parsers that take caller bytes
 * (test/unit/*.property.test.ts, issue 13 item 5a): the fixed seed and bounded run count of CI,
 * the check that a parser refuses only with its typed error, and mutations that turn a valid
 * input into a near miss, so that generated cases reach the deep checks and not only the first.
 *
 * AGENTWARD_PROPERTY_RUNS (default 200) and AGENTWARD_PROPERTY_SEED (default 20261206) change the
 * runs; scripts/property-long-run.sh runs every property suite long.
 */
import fc from 'fast-check';

export const RUNS = Number(process.env.AGENTWARD_PROPERTY_RUNS ?? 200);
export const SEED = Number(process.env.AGENTWARD_PROPERTY_SEED ?? 20261206);

/** fast-check parameters: the fixed seed and `share` of RUNS (an expensive property runs fewer). */
export function runs(share = 1): { seed: number; numRuns: number } {
  return { seed: SEED, numRuns: Math.max(1, Math.round(RUNS * share)) };
}

/** What a parser did with one input: accepted it (with its result) or refused it with its typed error. */
export type Outcome<T, E> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

/**
 * Runs `parse` and returns its outcome; anything thrown that is not an instance of `errorClass`
 * (a TypeError, a RangeError, a string) is rethrown, which fails the property.
 */
export function outcome<T, E extends Error>(errorClass: abstract new (...args: never[]) => E, parse: () => T): Outcome<T, E> {
  try {
    return { ok: true, value: parse() };
  } catch (err) {
    if (err instanceof errorClass) return { ok: false, error: err };
    throw err;
  }
}

/** `outcome` for an async parser. */
export async function outcomeAsync<T, E extends Error>(errorClass: abstract new (...args: never[]) => E, parse: () => Promise<T>): Promise<Outcome<T, E>> {
  try {
    return { ok: true, value: await parse() };
  } catch (err) {
    if (err instanceof errorClass) return { ok: false, error: err };
    throw err;
  }
}

/**
 * Characters that parsers of header fields, compact JWS and JSON trip on: separators, quotes,
 * whitespace that is and is not OWS, controls, a BOM, non-ASCII, an astral character and a lone
 * surrogate.
 */
export const NASTY_CHARS = [
  '.', '=', '+', '/', '-', '_', ' ', '\t', '\r', '\n', '"', "'", ',', ';', ':', '(', ')', '\\', '%', '?', '#', '*', '@',
  '\0', '\x01', '\x7f', '\u00a0', '\u00e9', '\u00ff', '\u0100', '\u2028', '\ufeff', '\u{1f600}', '\ud800', 'A', 'z', '0',
] as const;

/** One character: mostly a nasty one, sometimes any code point. */
export const nastyChar: fc.Arbitrary<string> = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NASTY_CHARS) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) });

type Mutation = (s: string) => string;

/** One edit at a position chosen by fast-check (taken modulo the length, so every edit applies). */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat().map((i): Mutation => (s) => s.slice(0, i % (s.length + 1))),
  fc.nat().map((i): Mutation => (s) => s.slice(0, i % (s.length + 1)) + s.slice((i % (s.length + 1)) + 1)),
  fc.tuple(fc.nat(), nastyChar).map(([i, c]): Mutation => (s) => s.slice(0, i % (s.length + 1)) + c + s.slice((i % (s.length + 1)) + 1)),
  fc.tuple(fc.nat(), nastyChar).map(([i, c]): Mutation => (s) => s.slice(0, i % (s.length + 1)) + c + s.slice(i % (s.length + 1))),
  fc.tuple(fc.nat(), fc.nat()).map(([i, j]): Mutation => (s) => {
    const a = i % (s.length + 1);
    const b = j % (s.length + 1);
    return s.slice(0, Math.max(a, b)) + s.slice(Math.min(a, b));
  }),
  fc.integer({ min: 2, max: 50 }).map((n): Mutation => (s) => s.repeat(n)),
  fc.constant<Mutation>((s) => s.toUpperCase()),
  fc.constant<Mutation>((s) => ` ${s} `),
);

/** One to three edits, applied in order: truncation, deletion, a replaced or inserted character, a duplicated slice, repetition, case, surrounding spaces. */
export const edits: fc.Arbitrary<Mutation> = fc.array(mutation, { minLength: 1, maxLength: 3 }).map((list) => (s: string) => list.reduce((acc, edit) => edit(acc), s));

/** `valid`, or `valid` after `edits`. */
export function nearMiss(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof({ weight: 1, arbitrary: valid }, { weight: 4, arbitrary: fc.tuple(valid, edits).map(([s, edit]) => edit(s)) });
}

/** Names that an object literal inherits from Object.prototype: a lookup by a caller's string must not find them. */
export const PROTOTYPE_NAMES = ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__defineGetter__'] as const;
