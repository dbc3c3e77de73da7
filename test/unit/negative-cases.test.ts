/**
 * docs/negative-cases.md is where a reader of this repository looks up a case id (`AT-N13`,
 * `WPT-N21`, `U3`) that a comment, test name or doc cites (conventions §18). These tests keep it
 * complete and honest: every id cited anywhere in the repository has its row, and every test the
 * page (or docs/conformance.md) names exists, with the quoted title fragment in it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const CASES_MD = 'docs/negative-cases.md';
const CONFORMANCE_MD = 'docs/conformance.md';
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Where ids are cited: code, tests, docs, policies and the example policies. */
const CITING_FOLDERS = ['src', 'test', 'docs', 'policies', 'examples'];
const CITING_FILES = ['README.md'];
const TEXT_FILE = /\.(ts|js|mjs|md|rego|json|yaml|yml)$/;

function files(folder: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, folder))) {
    const path = join(folder, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...files(path));
    else if (TEXT_FILE.test(name)) out.push(path);
  }
  return out;
}

/**
 * Case ids in a text, with the ranges and lists the sources write expanded: `AT-N02..N04`,
 * `TXN-N01/N02`, `WPT-N20 / N22`, `ID-N01..ID-N15`. Decisions: `U3`, `U4–U6`.
 */
function citedIds(text: string): Set<string> {
  const ids = new Set<string>();
  const caseId = /\b([A-Z][A-Z0-9]{0,6})-([NP])(\d{2})((?:\s*(?:\.\.|\/|–)\s*(?:[A-Z][A-Z0-9]{0,6}-)?[NP]?\d{2}\b)*)/g;
  for (const m of text.matchAll(caseId)) {
    const [, family, kind, first, rest] = m as unknown as [string, string, string, string, string];
    const id = (n: number) => `${family}-${kind}${String(n).padStart(2, '0')}`;
    let previous = Number(first);
    ids.add(id(previous));
    for (const part of rest.matchAll(/(\.\.|\/|–)\s*(?:[A-Z][A-Z0-9]*-)?[NP]?(\d{2})/g)) {
      const n = Number(part[2]);
      if (part[1] === '/') ids.add(id(n));
      else for (let i = previous + 1; i <= n; i++) ids.add(id(i));
      previous = n;
    }
  }
  for (const m of text.matchAll(/\bU(1[0-2]|[1-9])(?:\s*[–-]\s*U(1[0-2]|[1-9]))?\b/g)) {
    const last = Number(m[2] ?? m[1]);
    for (let i = Number(m[1]); i <= last; i++) ids.add(`U${i}`);
  }
  return ids;
}

/** The ids that have a row on the page: a table row whose first cell is the id in backquotes. */
function documentedIds(markdown: string): string[] {
  return [...markdown.matchAll(/^\|\s*`([A-Z][A-Z0-9]*-[NP]\d{2}|U\d{1,2})`\s*\|/gm)].map((m) => m[1]!);
}

/** Test references: a backquoted test file followed by a quoted title fragment or Rego rule name. */
function testReferences(markdown: string): { file: string; fragment: string }[] {
  return [...markdown.matchAll(/`((?:test|policies|examples)\/[^`\s]+(?:\.test\.ts|_test\.rego))`\s*"([^"]+)"/g)].map((m) => ({ file: m[1]!, fragment: m[2]! }));
}

describe('docs/negative-cases.md', () => {
  const page = read(CASES_MD);
  const documented = documentedIds(page);

  it('has a row for every case id cited in src/, test/, docs/, policies/, examples/ and README.md', () => {
    const citing = [...CITING_FOLDERS.flatMap(files), ...CITING_FILES].filter((f) => f !== CASES_MD);
    const missing: string[] = [];
    for (const file of citing) {
      for (const id of citedIds(read(file))) if (!documented.includes(id)) missing.push(`${id} (cited in ${file})`);
    }
    expect(missing).toEqual([]);
  });

  it('has one row per id', () => {
    const twice = documented.filter((id, i) => documented.indexOf(id) !== i);
    expect(twice).toEqual([]);
  });

  it('names only codes that exist', () => {
    const known = new Set([...Object.keys(ERROR_CODES), 'ERR_CONFIG_INVALID']);
    const unknown = [...page.matchAll(/\bERR_[A-Z0-9_]*[A-Z0-9]\b/g)].map((m) => m[0]).filter((c) => !known.has(c));
    expect(unknown).toEqual([]);
  });

  it('expands ranges and lists the way the sources write them', () => {
    expect([...citedIds('AT-N02..N04, TXN-N01/N02, WPT-N20 / N22, ID-N14..ID-N15, U4–U6, U10')].sort()).toEqual(
      ['AT-N02', 'AT-N03', 'AT-N04', 'ID-N14', 'ID-N15', 'TXN-N01', 'TXN-N02', 'U10', 'U4', 'U5', 'U6', 'WPT-N20', 'WPT-N22'].sort(),
    );
  });
});

describe.each([CASES_MD, CONFORMANCE_MD])('the tests %s names', (doc) => {
  const references = testReferences(read(doc));

  it('name at least one test', () => {
    expect(references.length).toBeGreaterThan(0);
  });

  it('exist, with the quoted title fragment or rule name in the file', () => {
    const broken = references.filter(({ file, fragment }) => !existsSync(join(ROOT, file)) || !read(file).includes(fragment));
    expect(broken.map((r) => `${r.file} "${r.fragment}"`)).toEqual([]);
  });

  it('name source files that exist', () => {
    const paths = [...read(doc).matchAll(/`((?:src|test|policies|scripts)\/[A-Za-z0-9_./-]+\.(?:ts|rego))`/g)].map((m) => m[1]!);
    expect(paths.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
  });
});
