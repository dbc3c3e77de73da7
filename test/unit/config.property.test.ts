/**
 * Property-based tests of the config loader (src/config/load.ts), issue 13 item 5a. The strict
 * reference is the committed JSON Schema (config/agentward.schema.json) checked by a separate Ajv
 * without defaults, over YAML read with unique keys. Properties:
 *
 * - any text (the example and a minimal file, edited; arbitrary text): loaded, or refused with
 *   ConfigError whose every problem names a path, a message and a fix; never another throw;
 * - generated files (the minimal one with members set to values of any type, unknown keys,
 *   members of Object.prototype as keys): accepted only when the schema accepts the result;
 * - round trip: a loaded config written back as YAML loads to the same config.
 *
 * Seed and runs are fixed (test/helpers/property.ts); scripts/property-long-run.sh runs them long.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { parse as parseYaml, stringify } from 'yaml';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { PROTOTYPE_NAMES, nearMiss, outcome, runs } from '../helpers/property.ts';

const REPO = resolve(import.meta.dirname, '../..');
const FILE = join(mkdtempSync(join(tmpdir(), 'agentward-config-property-')), 'agentward.yaml');
const MINIMAL = { upstream: { url: 'http://127.0.0.1:3000' }, resource: { id: 'https://tools.example.com/mcp' }, policy: { source: join(REPO, 'policies') } };
const EXAMPLE = readFileSync(join(REPO, 'config/agentward.example.yaml'), 'utf8');

const schema = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(join(REPO, 'config/agentward.schema.json'), 'utf8')) as object);

function load(text: string) {
  const result = outcome(ConfigError, () => parseConfig(text, FILE, {}));
  if (!result.ok) {
    expect(result.error.code).toBe('ERR_CONFIG_INVALID');
    expect(result.error.problems.length).toBeGreaterThan(0);
    for (const p of result.error.problems) {
      expect(typeof p.path).toBe('string');
      expect(p.message.length).toBeGreaterThan(0);
      expect(p.fix.length).toBeGreaterThan(0);
    }
  }
  return result;
}

/** Paths into the minimal file and the example's sections, where a generated value is put. */
const PATHS = [
  ['upstream', 'url'], ['upstream', 'timeout'], ['resource', 'id'], ['resource', 'audiences'], ['policy', 'source'], ['policy', 'entrypoint'],
  ['listen', 'address'], ['oauth', 'issuers'], ['oauth', 'dpop', 'mode'], ['oauth', 'dpop', 'maxAge'], ['mcp', 'paths'], ['forward', 'maxBodyBytes'],
  ['log', 'level'], ['audit'], ['workload'], ['txnTokens'], ['resource', 'audiance'], ['upstream'], [],
] as const;

const valueArb = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom<unknown>('5s', '0s', '-1s', '1h', 'http://[::1]:80', 'https://a.example', '127.0.0.1:0', 'disabled', 'required', 2 ** 53, -1, 1.5, '', null, [], {}),
  fc.dictionary(fc.constantFrom('url', 'issuer', 'audiences', 'mode', ...PROTOTYPE_NAMES), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
);

function setIn(target: Record<string, unknown>, path: readonly string[], name: string, value: unknown): void {
  let node: Record<string, unknown> = target;
  for (const key of path) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) Object.defineProperty(node, key, { value: {}, enumerable: true, writable: true, configurable: true });
    node = node[key] as Record<string, unknown>;
  }
  Object.defineProperty(node, name, { value, enumerable: true, writable: true, configurable: true });
}

const fileArb = fc
  .array(fc.tuple(fc.constantFrom(...PATHS), fc.oneof(fc.constantFrom('url', 'mode', 'level', 'x', ...PROTOTYPE_NAMES), fc.constant('')), valueArb), { maxLength: 3 })
  .map((edits) => {
    const config = structuredClone(MINIMAL) as Record<string, unknown>;
    for (const [path, name, value] of edits) {
      if (name === '' && path.length > 0) setIn(config, path.slice(0, -1), path.at(-1)!, value);
      else if (name !== '') setIn(config, path, name, value);
    }
    return stringify(config);
  });

describe('parseConfig', () => {
  test('regression: an alias without its anchor is a ConfigError, not the ReferenceError yaml throws', () => {
    const result = load(`${stringify(MINIMAL)}x: [a, *missing]\n`);
    expect(result.ok).toBe(false);
  });

  test('any text: loaded, or ConfigError with a path, message and fix for every problem', () => {
    fc.assert(
      fc.property(fc.oneof(nearMiss(fc.constantFrom(EXAMPLE, stringify(MINIMAL))), fc.string({ unit: 'binary', maxLength: 80 }), fileArb.map((t) => `${t}\n${t}`)), (text) => {
        load(text);
      }),
      runs(0.5),
    );
  });

  test('generated files: accepted only when the JSON Schema (and YAML with unique keys) accepts them', () => {
    fc.assert(
      fc.property(fileArb, (text) => {
        const result = load(text);
        if (!result.ok) return;
        const data: unknown = parseYaml(text, { uniqueKeys: true });
        expect(schema(data), JSON.stringify(schema.errors)).toBe(true);
        expect(schema(JSON.parse(JSON.stringify(result.value.config))), JSON.stringify(schema.errors)).toBe(true);
      }),
      runs(),
    );
  });

  test('round trip: a loaded config written back as YAML loads to the same config', () => {
    fc.assert(
      fc.property(fileArb, (text) => {
        const first = load(text);
        if (!first.ok) return;
        const second = parseConfig(stringify(first.value.config), FILE, {});
        expect(second.config).toStrictEqual(first.value.config);
      }),
      runs(),
    );
  });
});
