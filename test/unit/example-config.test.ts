/**
 * config/agentward.example.yaml is what users copy. It must load exactly as `agentward serve`
 * would load it, use every section of the schema, and mention every key (set or commented out),
 * so a key added to src/config/schema.ts without an example fails here.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { ConfigSchema } from '../../src/config/schema.ts';

const EXAMPLE = resolve(import.meta.dirname, '../../config/agentward.example.yaml');
const text = readFileSync(EXAMPLE, 'utf8');

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

/** Every property path of the schema, e.g. `oauth.issuers[].jwksUri`. */
function keyPaths(node: SchemaNode, prefix = ''): string[] {
  const paths: string[] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    paths.push(path);
    paths.push(...keyPaths(child, path));
    if (child.items) paths.push(...keyPaths(child.items, `${path}[]`));
  }
  return paths;
}

describe('config/agentward.example.yaml', () => {
  it('passes loadConfig with no environment', () => {
    const loaded = loadConfig(EXAMPLE, {});
    expect(loaded.config.policy.source).toBe('../policies');
    expect(loaded.baseDir).toBe(resolve(import.meta.dirname, '../../config'));
  });

  it('sets every top-level section of the schema', () => {
    const doc = parse(text) as Record<string, unknown>;
    const sections = Object.keys(ConfigSchema.properties);
    expect(sections.length).toBeGreaterThan(0);
    for (const section of sections) expect(doc, `section ${section}`).toHaveProperty(section);
  });

  it('mentions every key of the schema, set or commented out', () => {
    const missing = keyPaths(ConfigSchema as unknown as SchemaNode).filter((path) => {
      const key = path.split('.').at(-1)!.replace('[]', '');
      return !new RegExp(`(^|[\\s#{,-])${key}:`, 'm').test(text);
    });
    expect(missing).toEqual([]);
  });

  it('points editors at the JSON Schema on its first line', () => {
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=./agentward.schema.json');
  });
});
