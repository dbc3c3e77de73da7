/**
 * deploy/ (issue 16 item 3, docs/operations.md "Kubernetes"): every manifest, plain or rendered
 * from the Helm chart with each example values file, validates against the JSON Schemas of the
 * pinned Kubernetes release (kubeconform with strict schemas: an unknown field fails); the pods
 * have the shape the issue asks for (only agentward's port exposed, probes on /healthz and
 * /readyz, read-only root filesystem, non-root, measured requests and limits, a NetworkPolicy);
 * and every agentward.yaml embedded in a ConfigMap passes `agentward check` in the pod's file
 * layout (the files it names laid out next to it, as the volumes mount them under
 * /etc/agentward/). Nothing here touches the network.
 *
 * helm, kubeconform and the schemas come from scripts/kube-tools.sh (scripts/run test sources it).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { parseAllDocuments, parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { checkFiles } from '../../src/app/file-checks.ts';
import { cli } from '../helpers/cli.ts';
import { bundleDocument } from '../helpers/workload-tokens.ts';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
const DEPLOY = join(REPO, 'deploy');
const CHART = join(DEPLOY, 'helm/agentward');
const EXAMPLES = join(DEPLOY, 'helm/examples');

interface Tools {
  helm: string;
  kubeconform: string;
  schemas: string;
}

function tools(): Tools {
  const { AGENTWARD_HELM: helm, AGENTWARD_KUBECONFORM: kubeconform, AGENTWARD_KUBE_SCHEMAS: schemas } = process.env;
  if (!helm || !kubeconform || !schemas) {
    throw new Error('AGENTWARD_HELM, AGENTWARD_KUBECONFORM and AGENTWARD_KUBE_SCHEMAS are unset: run `. scripts/kube-tools.sh` first (scripts/run test does)');
  }
  return { helm, kubeconform, schemas };
}

type Doc = Record<string, any>;

function docsOf(text: string): Doc[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

async function helmTemplate(valuesFile?: string): Promise<string> {
  const args = ['template', 'tools', CHART, ...(valuesFile ? ['-f', valuesFile] : [])];
  const { stdout } = await run(tools().helm, args, { maxBuffer: 16 << 20 });
  return stdout;
}

/** kubeconform on files; resolves with its summary, rejects with its report of each invalid resource. */
async function kubeconform(files: string[]): Promise<string> {
  const { kubeconform: bin, schemas } = tools();
  try {
    const { stdout } = await run(bin, ['-strict', '-summary', '-schema-location', schemas, ...files]);
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`kubeconform refused:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

function writeTemp(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'agentward-deploy-')), name);
  writeFileSync(file, text);
  return file;
}

/**
 * Lays out the files an agentward.yaml names, relative to its folder, as the pod's volumes
 * mount them; returns the config's path. Paths must be relative: /etc/agentward/ is the config's
 * folder in the container, so only relative paths mean the same thing here and there.
 */
function layOut(configText: string): { file: string; urlPolicy: boolean } {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-deploy-config-'));
  const file = join(dir, 'agentward.yaml');
  writeFileSync(file, configText);
  const config = parse(configText) as Doc;
  const put = (path: string, write: (to: string) => void) => {
    expect(path, 'paths in a deployed agentward.yaml are relative to /etc/agentward/').toMatch(/^\.\//);
    const to = join(dir, path);
    mkdirSync(dirname(to), { recursive: true });
    write(to);
  };
  const source = config.policy?.source as string;
  const urlPolicy = /^https?:/.test(source);
  if (!urlPolicy) put(source, (to) => copyFileSync(join(REPO, 'bundles/default-policy.tar.gz'), to));
  if (config.policy?.verification?.keyFile) {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    put(config.policy.verification.keyFile, (to) => writeFileSync(to, publicKey.export({ type: 'spki', format: 'pem' })));
  }
  if (config.audit?.hashKey?.fromFile) put(config.audit.hashKey.fromFile, (to) => writeFileSync(to, 'test-only-audit-key\n'));
  for (const td of config.workload?.trustDomains ?? []) {
    if (td.bundle?.file) put(td.bundle.file, (to) => writeFileSync(to, JSON.stringify(bundleDocument())));
  }
  return { file, urlPolicy };
}

/** `agentward check` (which also loads the policy bundle); the loader alone for a bundle server URL, which check would download. */
async function checkConfig(configText: string): Promise<void> {
  const { file, urlPolicy } = layOut(configText);
  if (urlPolicy) {
    const loaded = loadConfig(file, {});
    expect(checkFiles(loaded)).toEqual([]);
    return;
  }
  const result = await cli(['check', '--config', file]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout).toContain(`${file}: OK`);
}

function embeddedConfigs(docs: Doc[]): string[] {
  return docs.filter((d) => d.kind === 'ConfigMap' && typeof d.data?.['agentward.yaml'] === 'string').map((d) => d.data['agentward.yaml'] as string);
}

/** The pod shape issue 16 item 3 asks for, on a set of manifests holding one tool with agentward. */
function expectSidecarShape(docs: Doc[]): void {
  const deployment = docs.find((d) => d.kind === 'Deployment');
  expect(deployment).toBeDefined();
  const pod = deployment!.spec.template.spec;
  expect(pod.securityContext.runAsNonRoot).toBe(true);
  expect(pod.securityContext.runAsUser).not.toBe(0);
  for (const c of pod.containers) {
    expect(c.securityContext.readOnlyRootFilesystem, c.name).toBe(true);
    expect(c.securityContext.allowPrivilegeEscalation, c.name).toBe(false);
  }
  const aw = pod.containers.find((c: Doc) => c.name === 'agentward');
  expect(aw.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
  expect(aw.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
  expect(aw.ports).toEqual([
    { name: 'http', containerPort: 8080 },
    { name: 'admin', containerPort: 9901 },
  ]);
  expect(aw.resources).toEqual({ requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '384Mi' } });
  // The config file is mounted alone, so the image's /etc/agentward/policy.tar.gz stays visible.
  expect(aw.volumeMounts).toContainEqual(expect.objectContaining({ mountPath: '/etc/agentward/agentward.yaml', subPath: 'agentward.yaml' }));
  // Above the preStop sleep plus listen.shutdownTimeout (15s): docs/operations.md "Graceful shutdown".
  expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(aw.lifecycle.preStop.sleep.seconds + 15);

  const services = docs.filter((d) => d.kind === 'Service');
  expect(services).toHaveLength(1);
  expect(services[0]!.spec.ports.map((p: Doc) => p.targetPort)).toEqual(['http']);

  const policy = docs.find((d) => d.kind === 'NetworkPolicy');
  expect(policy?.spec.policyTypes).toEqual(['Ingress', 'Egress']);
  expect(policy!.spec.ingress.flatMap((r: Doc) => r.ports.map((p: Doc) => p.port))).toEqual([8080]);

  const [configText] = embeddedConfigs(docs);
  const config = parse(configText!) as Doc;
  expect(config.admin.address).toBe('0.0.0.0:9901');
  expect(config.listen.address).toBe('0.0.0.0:8080');
  expect(config.upstream.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
}

describe('the Kubernetes schemas (scripts/kube-schemas.ts)', () => {
  // A misspelt field is dropped by the API server without a word; strict schemas make it fail here.
  it('refuse a field the API does not have', async () => {
    const deployment = readFileSync(join(DEPLOY, 'sidecar/deployment.yaml'), 'utf8').replaceAll('readOnlyRootFilesystem', 'readOnlyRootFileSystem');
    await expect(kubeconform([writeTemp('deployment.yaml', deployment)])).rejects.toThrow(/additional properties 'readOnlyRootFileSystem' not allowed/);
  });

  it('accept numbers and strings where Kubernetes does (int-or-string, quantities)', async () => {
    const deployment = readFileSync(join(DEPLOY, 'sidecar/deployment.yaml'), 'utf8').replace('port: admin }', 'port: 9901 }').replace('cpu: "1"', 'cpu: 1');
    expect(await kubeconform([writeTemp('deployment.yaml', deployment)])).toContain('Invalid: 0, Errors: 0, Skipped: 0');
  });
});

describe('deploy/sidecar (plain manifests)', () => {
  const files = readdirSync(join(DEPLOY, 'sidecar'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(DEPLOY, 'sidecar', f));
  const docs = files.flatMap((f) => docsOf(readFileSync(f, 'utf8')));

  it('validates against the Kubernetes schemas', async () => {
    expect(await kubeconform(files)).toContain('Invalid: 0, Errors: 0, Skipped: 0');
  });

  it('has the sidecar shape', () => {
    expectSidecarShape(docs);
  });

  it('embeds an agentward.yaml that passes agentward check', async () => {
    const configs = embeddedConfigs(docs);
    expect(configs).toHaveLength(1);
    await checkConfig(configs[0]!);
  });
});

describe('deploy/bundle-server', () => {
  it('validates against the Kubernetes schemas', async () => {
    const dir = join(DEPLOY, 'bundle-server');
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join(dir, f));
    expect(await kubeconform(files)).toContain('Invalid: 0, Errors: 0, Skipped: 0');
  });
});

describe('deploy/helm/agentward', () => {
  const cases: [string, string | undefined][] = [
    ['values.yaml (defaults)', undefined],
    ...readdirSync(EXAMPLES)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f): [string, string] => [`examples/${f}`, join(EXAMPLES, f)]),
  ];

  it('has the example values files docs/operations.md names', () => {
    expect(cases.map(([name]) => name)).toEqual([
      'values.yaml (defaults)',
      'examples/bundle-server.yaml',
      'examples/dpop.yaml',
      'examples/jwt.yaml',
      'examples/redis.yaml',
      'examples/spiffe.yaml',
    ]);
  });

  it('passes helm lint --strict', async () => {
    const { stdout } = await run(tools().helm, ['lint', '--strict', CHART]);
    expect(stdout).toContain('0 chart(s) failed');
  });

  describe.each(cases)('%s', (_name, valuesFile) => {
    it('renders, validates against the Kubernetes schemas and has the sidecar shape', async () => {
      const rendered = await helmTemplate(valuesFile);
      expect(await kubeconform([writeTemp('rendered.yaml', rendered)])).toContain('Invalid: 0, Errors: 0, Skipped: 0');
      expectSidecarShape(docsOf(rendered));
    });

    it('embeds an agentward.yaml that passes agentward check', async () => {
      const configs = embeddedConfigs(docsOf(await helmTemplate(valuesFile)));
      expect(configs).toHaveLength(1);
      await checkConfig(configs[0]!);
    });
  });

  it('renders a SPIFFE bundle written by a native sidecar into an emptyDir', async () => {
    const values = writeTemp(
      'values.yaml',
      [
        'spiffe: { enabled: true, trustDomain: agents.example.com, volume: { emptyDir: { sizeLimit: 1Mi } } }',
        'initContainers:',
        '  - name: bundle-writer',
        '    image: registry.example.com/bundle-writer:1.0.0',
        '    restartPolicy: Always',
        '    startupProbe: { exec: { command: [test, -s, /spiffe/bundle.spiffe] }, periodSeconds: 1, failureThreshold: 60 }',
        '    volumeMounts: [ { name: spiffe, mountPath: /spiffe }, { name: workload-api, mountPath: /spiffe-workload-api, readOnly: true } ]',
        'tool:',
        '  extraVolumes: [ { name: workload-api, csi: { driver: csi.spiffe.io, readOnly: true } } ]',
        '',
      ].join('\n'),
    );
    const rendered = await helmTemplate(values);
    expect(await kubeconform([writeTemp('rendered.yaml', rendered)])).toContain('Invalid: 0, Errors: 0, Skipped: 0');
    const pod = docsOf(rendered).find((d) => d.kind === 'Deployment')!.spec.template.spec;
    expect(pod.initContainers[0].restartPolicy).toBe('Always');
    expect(pod.volumes).toContainEqual({ name: 'spiffe', emptyDir: { sizeLimit: '1Mi' } });
  });

  it('refuses a misspelt value (values.schema.json)', async () => {
    const values = writeTemp('values.yaml', 'auditHashKey: { secretNmae: tools-audit-key }\n');
    await expect(helmTemplate(values)).rejects.toThrow(/secretNmae/);
  });

  it('refuses two policy sources', async () => {
    const values = writeTemp('values.yaml', 'policy: { url: "https://bundles.example.com/b.tar.gz", configMap: p }\n');
    await expect(helmTemplate(values)).rejects.toThrow(/policy.url and policy.configMap are exclusive/);
  });
});
