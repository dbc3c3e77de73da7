/**
 * docs/errors.md is the table users read; src/errors.ts is the truth. These tests keep the two
 * in step (conventions §4): every code has exactly one row, the row's status and challenge match
 * the code's, and the page names no code that does not exist.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.ts';

const ERRORS_MD = readFileSync(resolve(import.meta.dirname, '../../docs/errors.md'), 'utf8');
/** Config problems are not HTTP errors, so ERR_CONFIG_INVALID lives in src/config/load.ts. */
const EXTRA_CODES = new Set(['ERR_CONFIG_INVALID']);
const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

interface Row {
  code: string;
  cells: string[];
}

/** Table rows whose first cell is a code in backquotes. */
function codeRows(markdown: string): Row[] {
  const rows: Row[] = [];
  for (const line of markdown.split('\n')) {
    const match = /^\|\s*`(ERR_[A-Z0-9_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (match) rows.push({ code: match[1]!, cells: match[2]!.split('|').map((c) => c.trim()) });
  }
  return rows;
}

describe('docs/errors.md', () => {
  const rows = codeRows(ERRORS_MD);

  it('has exactly one table row for every code in ERROR_CODES', () => {
    for (const code of CODES) {
      expect(rows.filter((r) => r.code === code).length, `rows for ${code}`).toBe(1);
    }
  });

  it('names only codes that exist', () => {
    const mentioned = new Set(ERRORS_MD.match(/ERR_[A-Z0-9_]+/g) ?? []);
    const unknown = [...mentioned].filter((c) => !(c in ERROR_CODES) && !EXTRA_CODES.has(c));
    expect(unknown).toEqual([]);
  });

  it('gives each code its real status and challenge error', () => {
    for (const row of rows) {
      if (!(row.code in ERROR_CODES)) continue;
      const info: { status: number; oauthError?: string } = ERROR_CODES[row.code as ErrorCode];
      const [status, challenge] = row.cells;
      expect(status, `status of ${row.code}`).toBe(String(info.status));
      const documented = /`([a-z_]+)`/.exec(challenge ?? '')?.[1];
      expect(documented, `error= of ${row.code}`).toBe(info.oauthError);
    }
  });

  it('lists ERR_CONFIG_INVALID', () => {
    expect(rows.filter((r) => r.code === 'ERR_CONFIG_INVALID').length).toBe(1);
  });
});
