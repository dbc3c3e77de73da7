/**
 * Writes config/agentward.schema.json from the TypeBox schema (src/config/schema.ts).
 * `--check` exits 1 instead when the committed file differs (CI runs the same comparison as a test).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { jsonSchemaDocument } from '../src/config/schema.ts';

export const SCHEMA_FILE = resolve(import.meta.dirname, '../config/agentward.schema.json');

export function renderSchema(): string {
  return `${JSON.stringify(jsonSchemaDocument(), null, 2)}\n`;
}

if (import.meta.main) {
  const text = renderSchema();
  if (process.argv.includes('--check')) {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    if (committed !== text) {
      console.error(`${SCHEMA_FILE} is out of date: run npm run schema`);
      process.exit(1);
    }
  } else {
    writeFileSync(SCHEMA_FILE, text);
    console.log(`wrote ${SCHEMA_FILE}`);
  }
}
