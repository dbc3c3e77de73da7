/**
 * The committed JSON Schema (config/agentward.schema.json) is generated from src/config/schema.ts;
 * editors and users read the committed file, so it must never lag behind the loader (conventions §12).
 */
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { SCHEMA_FILE, renderSchema } from '../../scripts/gen-schema.ts';

test('config/agentward.schema.json matches the TypeBox schema', () => {
  const committed = readFileSync(SCHEMA_FILE, 'utf8');
  expect(committed, `${SCHEMA_FILE} is out of date: run npm run schema`).toBe(renderSchema());
});

test('the rendered schema is closed and keeps defaults out of `required`', () => {
  const schema = JSON.parse(renderSchema()) as {
    additionalProperties: boolean;
    required: string[];
    properties: Record<string, { additionalProperties?: boolean; required?: string[] }>;
  };
  expect(schema.additionalProperties).toBe(false);
  // listen, admin, oauth, forward, audit and log have defaults; upstream, resource and policy do not.
  expect([...schema.required].sort()).toEqual(['policy', 'resource', 'upstream']);
  expect(schema.properties.upstream!.required).toEqual(['url']);
  expect(schema.properties.listen!.required).toBeUndefined();
  // Every section is closed; `workers` is the one top-level scalar.
  for (const [name, section] of Object.entries(schema.properties)) if (name !== 'workers') expect(section.additionalProperties, name).toBe(false);
});
