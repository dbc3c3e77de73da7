/**
 * Turns the Kubernetes OpenAPI v2 document (api/openapi-spec/swagger.json of a Kubernetes release)
 * into the JSON Schema folder kubeconform reads: one file per kind, `<kind>-<group>-<version>.json`
 * (kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}`), each referring to one shared
 * `_definitions.json`.
 *
 *   node scripts/kube-schemas.ts SWAGGER_JSON OUT_DIR
 *
 * Used by scripts/kube-tools.sh; the manifests under deploy/ are validated against the result.
 * The schemas are strict, like kubectl's client-side validation and kubeconform's `-strict`
 * schemas: an object with declared properties refuses any other key, so a misspelt field
 * (`readOnlyRootFileSystem`) fails instead of being dropped by the API server.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type Schema = Record<string, unknown>;

const INT_OR_STRING = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString';
const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';

/**
 * Rewrites one schema node, recursing through the keywords OpenAPI v2 uses for sub-schemas.
 * `refPrefix` is what `#/definitions/` becomes (kept in _definitions.json, a file path in a kind).
 */
function rewrite(node: unknown, refPrefix: string): unknown {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return node;
  const s = { ...(node as Schema) };
  if (typeof s.$ref === 'string') return { $ref: s.$ref.replace('#/definitions/', refPrefix) };
  // OpenAPI v2 spells "string or integer" as a string with a format; YAML writes `port: 8080`
  // and `maxUnavailable: 25%` alike (the same rewrite kubeconform's openapi2jsonschema does).
  if (s.format === 'int-or-string') return { oneOf: [{ type: 'string' }, { type: 'integer' }], ...(s.description ? { description: s.description } : {}) };
  if (s.properties && typeof s.properties === 'object') {
    const props: Schema = {};
    for (const [k, v] of Object.entries(s.properties as Schema)) props[k] = rewrite(v, refPrefix);
    s.properties = props;
    if (!('additionalProperties' in s)) s.additionalProperties = false;
  }
  if (s.additionalProperties && typeof s.additionalProperties === 'object') s.additionalProperties = rewrite(s.additionalProperties, refPrefix);
  if (s.items) s.items = rewrite(s.items, refPrefix);
  for (const k of ['allOf', 'anyOf', 'oneOf']) if (Array.isArray(s[k])) s[k] = (s[k] as unknown[]).map((x) => rewrite(x, refPrefix));
  return s;
}

function main(): void {
  const [swaggerPath, outDir] = process.argv.slice(2);
  if (!swaggerPath || !outDir) {
    console.error('usage: node scripts/kube-schemas.ts SWAGGER_JSON OUT_DIR');
    process.exit(2);
  }
  const swagger = JSON.parse(readFileSync(swaggerPath, 'utf8')) as { definitions: Record<string, Schema> };
  const defs: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(swagger.definitions)) defs[name] = rewrite(def, '#/definitions/');
  // resource.Quantity is `type: string` in v2 but accepts numbers (`cpu: 1`, `cpu: 0.5`).
  defs[QUANTITY] = { oneOf: [{ type: 'string' }, { type: 'number' }] };
  defs[INT_OR_STRING] = { oneOf: [{ type: 'string' }, { type: 'integer' }] };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, '_definitions.json'), JSON.stringify({ definitions: defs }));

  let kinds = 0;
  for (const def of Object.values(swagger.definitions)) {
    const gvks = def['x-kubernetes-group-version-kind'] as { group: string; version: string; kind: string }[] | undefined;
    if (!gvks) continue;
    for (const { group, version, kind } of gvks) {
      // Only top-level objects (those with apiVersion and kind), not e.g. DeleteOptions copies.
      const props = def.properties as Schema | undefined;
      if (!props?.apiVersion || !props.kind) continue;
      const apiVersion = group ? `${group}/${version}` : version;
      const schema = rewrite(def, '_definitions.json#/definitions/') as Schema;
      const p = schema.properties as Schema;
      p.apiVersion = { type: 'string', enum: [apiVersion] };
      p.kind = { type: 'string', enum: [kind] };
      // kubeconform's KindSuffix: the first label of the group, then the version.
      const suffix = group ? `-${group.split('.')[0]!.toLowerCase()}-${version}` : `-${version}`;
      writeFileSync(join(outDir, `${kind.toLowerCase()}${suffix}.json`), JSON.stringify(schema));
      kinds++;
    }
  }
  if (kinds === 0) {
    console.error(`${swaggerPath}: no kinds found (not a Kubernetes swagger.json?)`);
    process.exit(1);
  }
  console.error(`kube-schemas: ${kinds} kinds written to ${outDir}`);
}

main();
