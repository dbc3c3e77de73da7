/**
 * Memoized decisions are the decisions (issue 12): for the default policy and every worked
 * policy, a decision the engine answers from its memo equals the decision a fresh evaluation of
 * the same input gives, over generated inputs that reach the rules (scopes, methods, paths, MCP
 * tools, A2A operations, agents, delegation chains, step-up, authorization details). The fresh
 * side is opa-wasm's own LoadedPolicy.evaluate on the input object, as the engine did before the
 * memo, so the property also covers the engine's new encoding (src/policy/wasm-eval.ts).
 *
 * Each pair of inputs shares most fields, so the second often hits the memo entry of the first
 * while differing where the policy does not look; the test checks the memo was really used.
 * Seed and runs are fixed; a long run:
 *   AGENTWARD_PROPERTY_RUNS=20000 npx vitest run test/unit/policy-memo.test.ts
 * (AGENTWARD_PROPERTY_SEED picks another seed.)
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadPolicy } from '@open-policy-agent/opa-wasm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { compileRego, opaBinary } from '../../src/policy/compile.ts';
import { readBundle } from '../../src/policy/bundle.ts';
import { parseDecision, type Decision } from '../../src/policy/decision.ts';
import { PolicyEngine } from '../../src/policy/engine.ts';
import type { InputRead } from '../../src/policy/input-reads.ts';
import type { PolicyInput } from '../../src/policy/input.ts';
import { DecisionMemo } from '../../src/policy/memo.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { REPO } from '../helpers/agentward.ts';
import { withFile } from '../helpers/bundle-server.ts';

const RUNS = Number(process.env.AGENTWARD_PROPERTY_RUNS ?? 300);
const SEED = Number(process.env.AGENTWARD_PROPERTY_SEED ?? 20261206);
const ENTRYPOINT = 'agentward/decision';
const opa = opaBinary(undefined);

// ---- Generated inputs: small pools drawn from the policies' own names, so that rules fire.

const RESOURCE = 'https://tools.example.com/mcp';
const NOW = 1764460800;
const TOOLS = ['search', 'fetch_page', 'get_issue', 'list_issues', 'search_issues', 'create_issue', 'comment_on_issue', 'delete_repo', 'tool-0', 'tool-49', 'tool-50', 'search_docs', 'admin_console', 'needs_write', 'summarize', 'docs://public/a', 'unknown'];
const MCP_METHODS = ['initialize', 'notifications/initialized', 'ping', 'tools/list', 'tools/call', 'prompts/get', 'prompts/list', 'resources/read', 'resources/list', 'completion/complete', 'notifications/cancelled', 'sampling/createMessage'];
const A2A_OPERATIONS = ['SendMessage', 'SendStreamingMessage', 'GetTask', 'ListTasks', 'SubscribeToTask', 'CancelTask', 'CreateTaskPushNotificationConfig', 'GetTaskPushNotificationConfig', 'ListTaskPushNotificationConfigs', 'DeleteTaskPushNotificationConfig', 'GetExtendedAgentCard', 'Unknown'];
const SCOPES = ['tools.read', 'tools.write', 'issues.read', 'issues.write', 'repo.admin', 'a2a.message', 'a2a.tasks.read', 'a2a.tasks.write', 'a2a.push', 'a2a.card', 'other'];
const CLIENTS = ['research-bot', 'issue-bot', 'ops-bot', 'bench-client', 'spiffe://agents.example.com/planner', 'x'];
const AGENTS = ['spiffe://agents.example.com/planner', 'spiffe://agents.example.com/legacy-crawler', 'spiffe://partners.example.org/helper', 'spiffe://evil.example/bot', 'spiffe://agents.bench.test/bot', 'spiffe://agents.bench.test/revoked'];
const ACTORS = ['planner', 'root', 'ops-bot', 'spiffe://agents.example.com/legacy-crawler', 'spiffe://agents.example.com/planner'];
const METHODS = ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'DELETE', 'get', 'TRACE'];
const PATHS = ['/', '/mcp', '/mcp/x', '/mcpx', '/docs', '/x', '/deny', '/hidden', '/step-up', '/.well-known/agent-card.json'];

const detail = fc.record(
  { type: fc.constantFrom('tool_call', 'other'), actions: fc.subarray(TOOLS.slice(0, 8)), locations: fc.subarray([RESOURCE, 'https://elsewhere.example']), identifier: fc.constantFrom('acme/repo', 'other/repo', null) },
  { requiredKeys: ['type'] },
);

const subject = fc.record({
  iss: fc.constant('https://as.example.com'),
  sub: fc.constantFrom('user-42', 'user-7', null),
  clientId: fc.constantFrom(...CLIENTS, null),
  scopes: fc.subarray(SCOPES),
  aud: fc.constant([RESOURCE]),
  acr: fc.constantFrom(null, 'mfa', 'pwd'),
  amr: fc.constantFrom([], ['mfa']),
  authTime: fc.constantFrom(null, NOW, NOW - 299, NOW - 300, NOW - 301, NOW - 5000),
  authorizationDetails: fc.array(detail, { maxLength: 2 }),
  jti: fc.string({ maxLength: 6 }),
  expiresAt: fc.constant(NOW + 3600),
  format: fc.constantFrom('jwt' as const, 'opaque' as const),
  binding: fc.constantFrom('bearer' as const, 'dpop' as const, 'mtls' as const),
  mayAct: fc.constantFrom(null, { sub: 'planner' }),
  claims: fc.dictionary(fc.constantFrom('tenant', 'email'), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
});

const agent = fc.record({
  id: fc.constantFrom(...AGENTS),
  via: fc.constantFrom('wit+wpt' as const, 'wit+http_signature' as const, 'x509_svid' as const, 'jwt_svid' as const),
  token: fc.option(fc.record({ clientId: fc.constantFrom(true, false, null), actor: fc.constantFrom(true, false, null) }), { nil: null }),
}).map(({ id, via, token }) => ({ id, trustDomain: new URL(id).host, path: new URL(id).pathname, via, expiresAt: NOW + 600, claims: {}, token }));

const delegation = fc.tuple(fc.array(fc.constantFrom(...ACTORS), { maxLength: 3 }), fc.option(fc.nat(4), { freq: 5 })).map(([subs, depth]) => ({
  chain: subs.map((sub) => ({ sub, iss: null, claims: {} })),
  depth: depth ?? subs.length,
}));

const mcp = fc.record({
  method: fc.constantFrom(...MCP_METHODS),
  name: fc.constantFrom(...TOOLS, null),
  arguments: fc.constantFrom(null, {}, { repo: 'acme/repo' }, { repo: 'other/repo' }),
  id: fc.constantFrom(1, 'a', null),
  listFilter: fc.boolean(),
});

const a2a = fc.record({ method: fc.constantFrom('SendMessage', 'message/send', 'tasks/get'), operation: fc.constantFrom(...A2A_OPERATIONS), id: fc.constantFrom(1, null), arguments: fc.constantFrom(null, {}) });

const input: fc.Arbitrary<PolicyInput> = fc.record({
  now: fc.constantFrom(NOW, NOW + 1),
  id: fc.uuid(),
  method: fc.constantFrom(...METHODS),
  path: fc.constantFrom(...PATHS),
  headers: fc.dictionary(fc.constantFrom('accept', 'user-agent', 'x-trace'), fc.string({ maxLength: 6 }), { maxKeys: 2 }),
  resource: fc.constantFrom(RESOURCE, 'https://other.example/mcp'),
  agent: fc.option(agent, { nil: null }),
  subject: fc.option(subject, { nil: null, freq: 6 }),
  delegation,
  call: fc.oneof(fc.constant({ mcp: null, a2a: null }), mcp.map((m) => ({ mcp: m, a2a: null })), a2a.map((a) => ({ mcp: null, a2a: a }))),
  presented: fc.subarray(['bearer', 'dpop', 'wit', 'txn_token']),
}).map((x) => ({
  version: 1,
  now: x.now,
  request: { id: x.id, method: x.method, scheme: 'https', host: 'tools.example.com', path: x.path, query: {}, headers: x.headers, clientCertificate: null, methodOverride: null },
  resource: { id: x.resource },
  agent: x.agent,
  subject: x.subject,
  delegation: x.delegation,
  txn: null,
  mcp: x.call.mcp,
  a2a: x.call.a2a,
  credentials: { presented: x.presented },
}) as PolicyInput);

/** Fields a second input may take from another one; the rest it shares with the first. */
const SLOTS: string[][] = [
  ['now'], ['request', 'id'], ['request', 'method'], ['request', 'path'], ['request', 'headers'], ['resource'], ['agent'],
  ['subject'], ['subject', 'clientId'], ['subject', 'scopes'], ['subject', 'sub'], ['subject', 'acr'], ['subject', 'authTime'],
  ['subject', 'authorizationDetails'], ['subject', 'jti'], ['subject', 'claims'], ['delegation'], ['mcp'], ['mcp', 'name'],
  ['mcp', 'method'], ['mcp', 'arguments'], ['mcp', 'listFilter'], ['a2a'], ['a2a', 'operation'], ['credentials'],
];

/** `a` with each field whose pick is set taken from `c` (where both have the parent object). */
function mix(a: PolicyInput, c: PolicyInput, picks: boolean[], slots: string[][] = SLOTS): PolicyInput {
  const b = structuredClone(a) as unknown as Record<string, unknown>;
  slots.forEach((path, i) => {
    if (!picks[i]) return;
    const from = path.slice(0, -1).reduce<unknown>((o, k) => (o as Record<string, unknown> | null)?.[k], c);
    const to = path.slice(0, -1).reduce<unknown>((o, k) => (o as Record<string, unknown> | null)?.[k], b);
    if (from === null || typeof from !== 'object' || to === null || typeof to !== 'object') return;
    (to as Record<string, unknown>)[path.at(-1)!] = structuredClone((from as Record<string, unknown>)[path.at(-1)!]);
  });
  return b as unknown as PolicyInput;
}

/** About one field in eight comes from the other input. */
const picks = fc.array(fc.nat(7).map((n) => n === 0), { minLength: SLOTS.length, maxLength: SLOTS.length });

/**
 * A method override (forward.methodOverride strip or pass), which the default policy's
 * request.is_read reads when forwarded. Drawn after the inputs and picks above (each run has its
 * own random stream, so appending arbitraries leaves theirs unchanged), with slots of its own.
 */
const someMethodOverride: fc.Arbitrary<PolicyInput['request']['methodOverride']> = fc.record({
  action: fc.constantFrom('stripped' as const, 'forwarded' as const),
  fields: fc.array(fc.record({ source: fc.constant('header' as const), name: fc.constant('x-http-method-override'), value: fc.constantFrom('GET', 'head', 'DELETE') }), { minLength: 1, maxLength: 2 }),
});
/** Mostly none, as in traffic. */
const methodOverride = fc.oneof({ arbitrary: fc.constant(null), weight: 3 }, { arbitrary: someMethodOverride, weight: 1 });
const OVERRIDE_SLOTS: string[][] = [['request', 'methodOverride'], ['request', 'methodOverride', 'action'], ['request', 'methodOverride', 'fields']];
const overridePicks = fc.array(fc.nat(3).map((n) => n === 0), { minLength: OVERRIDE_SLOTS.length, maxLength: OVERRIDE_SLOTS.length });

/** `a` and `c` with their overrides, and `b`: `a` with some fields, and some override fields, of `c`. */
function pair(a0: PolicyInput, c0: PolicyInput, p: boolean[], ma: PolicyInput['request']['methodOverride'], mc: PolicyInput['request']['methodOverride'], op: boolean[]): { a: PolicyInput; b: PolicyInput } {
  const a = { ...a0, request: { ...a0.request, methodOverride: ma } };
  const c = { ...c0, request: { ...c0.request, methodOverride: mc } };
  return { a, b: mix(mix(a, c, p), c, op, OVERRIDE_SLOTS) };
}

// ---- The policies, each with the engine under test and a fresh evaluator beside it.

type Outcome = Decision | { code: string };

function outcome(decide: () => Decision): Outcome {
  try {
    return decide();
  } catch (err) {
    return { code: (err as { code?: string }).code ?? 'ERR_POLICY_EVALUATION' };
  }
}

interface Case {
  name: string;
  engine: PolicyEngine;
  fresh: (input: PolicyInput) => Decision;
}

/** opa-wasm's own evaluate on the input object, as the engine did before the memo. */
async function freshEvaluator(dir: string, dataFile: string | undefined): Promise<(input: PolicyInput) => Decision> {
  const bundle = readBundle(await compileRego(dir, { opa, entrypoint: ENTRYPOINT }));
  const wasm = await loadPolicy(bundle.wasm, { initial: 5, maximum: 1024 });
  wasm.setData(dataFile ? { ...bundle.data, ...(JSON.parse(readFileSync(dataFile, 'utf8')) as object) } : bundle.data);
  return (x) => {
    const rs = wasm.evaluate(x, ENTRYPOINT) as { result: unknown }[];
    if (rs.length !== 1) throw Object.assign(new Error('not one result'), { code: rs.length === 0 ? 'ERR_POLICY_UNDEFINED' : 'ERR_POLICY_DECISION_INVALID' });
    return parseDecision(rs[0]!.result);
  };
}

async function policyCase(name: string, dir: string, dataFile?: string): Promise<Case> {
  const engine = new PolicyEngine({ source: dir, entrypoint: ENTRYPOINT, opa, maxMemoryBytes: 64 << 20, logger: createLogger('silent'), dataFile });
  await engine.load();
  return { name, engine, fresh: await freshEvaluator(dir, dataFile) };
}

function withLibrary(example: string): string {
  const dir = mkdtempSync(join(tmpdir(), `agentward-memo-${example}-`));
  cpSync(join(REPO, 'policies/lib'), join(dir, 'lib'), { recursive: true });
  cpSync(join(REPO, 'examples/policies', example), dir, { recursive: true });
  return dir;
}

/** The default policy with settings that make every check bite (deny lists, client list, depth 1). */
function strictSettings(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'agentward-memo-data-')), 'settings.json');
  writeFileSync(file, JSON.stringify({ agentward: { settings: { readScopes: ['tools.read'], writeScopes: ['tools.write', 'issues.write'], maxDelegationDepth: 1, deniedActors: ['spiffe://agents.example.com/legacy-crawler', 'root'], allowedClients: ['research-bot', 'ops-bot', 'issue-bot'] } } }));
  return file;
}

const cases: Case[] = [];
beforeAll(async () => {
  cases.push(
    await policyCase('default', join(REPO, 'policies')),
    await policyCase('default, strict settings', join(REPO, 'policies'), strictSettings()),
    await policyCase('research-agent', withLibrary('research-agent')),
    await policyCase('user-delegated-tools', withLibrary('user-delegated-tools')),
    await policyCase('agent-to-agent', withLibrary('agent-to-agent')),
    await policyCase('bench mcp', join(REPO, 'bench/policies/mcp')),
    await policyCase('test fixture mcp', join(REPO, 'test/fixtures/policies/mcp')),
    await policyCase('test fixture echo', join(REPO, 'test/fixtures/policies/echo')),
  );
}, 120_000);
afterAll(() => {
  for (const c of cases) c.engine.close();
});

describe('memoized decisions equal fresh ones', () => {
  const NAMES = ['default', 'default, strict settings', 'research-agent', 'user-delegated-tools', 'agent-to-agent', 'bench mcp', 'test fixture mcp', 'test fixture echo'];

  // The long run (AGENTWARD_PROPERTY_RUNS) takes about 1 ms per run.
  const timeout = Math.max(30_000, RUNS * 5);

  test.each(NAMES)('%s: evaluate, over pairs of inputs that share most fields', (name) => {
    const { engine, fresh } = cases.find((c) => c.name === name)!;
    expect(engine.memoStatus()).toMatchObject({ memoized: true });
    fc.assert(
      fc.property(input, input, picks, methodOverride, methodOverride, overridePicks, (a0, c0, p, ma, mc, op) => {
        const { a, b } = pair(a0, c0, p, ma, mc, op);
        // Twice: the memo keeps a decision the second time its key misses.
        expect(outcome(() => engine.evaluate(a))).toEqual(outcome(() => fresh(a)));
        expect(outcome(() => engine.evaluate(a))).toEqual(outcome(() => fresh(a)));
        expect(outcome(() => engine.evaluate(b))).toEqual(outcome(() => fresh(b)));
      }),
      { seed: SEED, numRuns: RUNS },
    );
    const status = engine.memoStatus() as { hits: number; misses: number };
    // Not vacuous: a good share of the second inputs were answered from the memo.
    expect(status.hits).toBeGreaterThan(RUNS / 4);
  }, timeout);

  test.each(NAMES)('%s: list filtering (prepare), each item as the call it stands for', (name) => {
    const { engine, fresh } = cases.find((c) => c.name === name)!;
    fc.assert(
      fc.property(input, fc.array(mcp, { minLength: 1, maxLength: 6 }), (base, items) => {
        const decide = engine.prepare({ ...base, a2a: null }, 'mcp');
        for (const item of [...items, ...items]) {
          expect(outcome(() => decide(item))).toEqual(outcome(() => fresh({ ...base, a2a: null, mcp: item })));
        }
      }),
      { seed: SEED, numRuns: Math.ceil(RUNS / 3) },
    );
  }, timeout);
});

/** evaluate through a DecisionMemo over `reads`, with the fresh evaluator behind it. */
function memoizedBy(reads: readonly InputRead[], fresh: (x: PolicyInput) => Decision): (x: PolicyInput) => Decision {
  const memo = new DecisionMemo(reads);
  return (x) => {
    const key = memo.key(x);
    const hit = key === undefined ? undefined : memo.get(key);
    return hit ?? (key === undefined ? fresh(x) : memo.set(key, fresh(x)));
  };
}

test('the property is not vacuous: dropping any whole-value read of the default policy is caught', () => {
  const { engine, fresh } = cases.find((c) => c.name === 'default, strict settings')!;
  const reads = (engine.memoStatus() as { reads: readonly InputRead[] }).reads;
  for (const dropped of reads.filter((r) => r.kind === 'value')) {
    const decide = memoizedBy(reads.filter((r) => r !== dropped), fresh);
    // A read of the method override is caught with overrides on every input; the others without
    // (a forwarded override to a write makes every request a write, hiding what they decide).
    const overrides = dropped.path[0] === 'request' && dropped.path[1] === 'methodOverride' ? someMethodOverride : fc.constant(null);
    const run = fc.check(
      fc.property(input, input, picks, overrides, overrides, overridePicks, (a0, c0, p, ma, mc, op) => {
        const { a, b } = pair(a0, c0, p, ma, mc, op);
        decide(a);
        decide(a);
        expect(outcome(() => decide(b))).toEqual(outcome(() => fresh(b)));
      }),
      { seed: SEED, numRuns: 5000 },
    );
    expect(run.failed, `dropping ${dropped.path.join('.')} went unnoticed`).toBe(true);
  }
});

describe('one memo per loaded policy', () => {
  const echo = (path: string): PolicyInput => ({ ...fc.sample(input, { seed: 1, numRuns: 1 })[0]!, request: { id: 'r', method: 'GET', scheme: 'https', host: 'h', path, query: {}, headers: {}, clientCertificate: null, methodOverride: null } });

  test('an edit of the policy, and of its data file, is decided by the new policy (the memo starts empty)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-memo-reload-'));
    const rule = (reason: string) => `package agentward\n\ndecision := {"allow": false, "reason": concat(" ", ["${reason}", data.suffix])} if input.request.path == "/x"\n\ndecision := {"allow": true} if input.request.path != "/x"\n`;
    writeFileSync(join(dir, 'policy.rego'), rule('first'));
    const dataFile = join(mkdtempSync(join(tmpdir(), 'agentward-memo-reload-data-')), 'data.json');
    writeFileSync(dataFile, JSON.stringify({ suffix: 'a' }));
    const engine = new PolicyEngine({ source: dir, entrypoint: ENTRYPOINT, opa, maxMemoryBytes: 16 << 20, logger: createLogger('silent'), dataFile });
    await engine.load();
    for (let i = 0; i < 3; i++) expect(engine.evaluate(echo('/x')).reason).toBe('first a');
    // Kept at its second miss, used at the third evaluation.
    expect(engine.memoStatus()).toMatchObject({ memoized: true, hits: 1, misses: 2, size: 1 });

    writeFileSync(join(dir, 'policy.rego'), rule('second'));
    await engine.reload();
    expect(engine.memoStatus()).toMatchObject({ hits: 0, size: 0 });
    expect(engine.evaluate(echo('/x')).reason).toBe('second a');

    writeFileSync(dataFile, JSON.stringify({ suffix: 'b' }));
    await engine.reload();
    expect(engine.evaluate(echo('/x')).reason).toBe('second b');
    engine.close();
  });

  test('a list filter prepared before a reload decides its next items with the new policy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentward-memo-prepare-'));
    const rule = (tool: string) => `package agentward\n\ndefault decision := {"allow": false}\n\ndecision := {"allow": true} if input.mcp.name == "${tool}"\n`;
    writeFileSync(join(dir, 'policy.rego'), rule('a'));
    const engine = new PolicyEngine({ source: dir, entrypoint: ENTRYPOINT, opa, maxMemoryBytes: 16 << 20, logger: createLogger('silent') });
    await engine.load();
    const decide = engine.prepare(echo('/mcp'), 'mcp');
    const item = (name: string) => ({ method: 'tools/call', name, arguments: null, id: null, listFilter: true });
    expect([decide(item('a')).allow, decide(item('b')).allow]).toEqual([true, false]);
    writeFileSync(join(dir, 'policy.rego'), rule('b'));
    await engine.reload();
    expect([decide(item('a')).allow, decide(item('b')).allow]).toEqual([false, true]);
    engine.close();
  });

  test('a bundle from `agentward policy build` is memoized on its embedded plan, only when the plan is for its very module', async () => {
    const engineFor = async (gz: Buffer, entrypoint = ENTRYPOINT) => {
      const file = join(mkdtempSync(join(tmpdir(), 'agentward-memo-bundle-')), 'bundle.tar.gz');
      writeFileSync(file, gz);
      const engine = new PolicyEngine({ source: file, entrypoint, opa, maxMemoryBytes: 16 << 20, logger: createLogger('silent') });
      await engine.load().catch(() => undefined);
      return engine;
    };
    const committed = readFileSync(join(REPO, 'bundles/default-policy.tar.gz'));
    const folder = new PolicyEngine({ source: join(REPO, 'policies'), entrypoint: ENTRYPOINT, opa, maxMemoryBytes: 16 << 20, logger: createLogger('silent') });
    await folder.load();
    const fromBundle = await engineFor(committed);
    const status = fromBundle.memoStatus();
    // The same reads as the folder's own plan: the same analysis of the same plan.
    expect(status).toMatchObject({ memoized: true });
    expect((status as { reads: unknown }).reads).toEqual((folder.memoStatus() as { reads: unknown }).reads);
    for (const c of cases.filter((k) => k.name === 'default')) {
      // Kept at its second miss, used from the third evaluation on.
      for (const path of ['/mcp', '/x', '/admin']) for (let i = 0; i < 3; i++) expect(fromBundle.evaluate(echo(path))).toEqual(c.fresh(echo(path)));
    }
    expect((fromBundle.memoStatus() as { hits: number }).hits).toBeGreaterThan(0);

    // No plan; a plan for another module (policy.wasm swapped after the build); another entrypoint.
    const other = await compileRego(join(REPO, 'test/fixtures/policies/echo'), { opa, entrypoint: ENTRYPOINT });
    expect((await engineFor(withFile(committed, 'agentward.plan.json', undefined))).memoStatus()).toEqual({
      memoized: false,
      reason: 'the bundle carries no plan (/agentward.plan.json); build it with `agentward policy build` to memoize decisions',
    });
    const swapped = withFile(committed, 'policy.wasm', readBundle(other).wasm);
    expect((await engineFor(swapped)).memoStatus()).toEqual({ memoized: false, reason: 'the embedded plan was made for another policy.wasm (the module was replaced after the build)' });
    const plan = JSON.parse(readBundle(committed).plan!.toString('utf8')) as Record<string, unknown>;
    const otherEntry = withFile(committed, 'agentward.plan.json', JSON.stringify({ ...plan, entrypoint: 'agentward/other' }));
    expect((await engineFor(otherEntry)).memoStatus()).toEqual({ memoized: false, reason: 'the embedded plan is for the entrypoint "agentward/other", not agentward/decision' });
    folder.close();
    fromBundle.close();
  });

  test('.wasm modules, policies that read input.request.id, and memo: false are evaluated every time', async () => {
    const wasmFile = join(mkdtempSync(join(tmpdir(), 'agentward-memo-wasm-')), 'policy.wasm');
    writeFileSync(wasmFile, readBundle(readFileSync(join(REPO, 'bundles/default-policy.tar.gz'))).wasm);
    const bundle = new PolicyEngine({ source: wasmFile, entrypoint: ENTRYPOINT, opa, maxMemoryBytes: 16 << 20, logger: createLogger('silent') });
    await bundle.load();
    expect(bundle.memoStatus()).toEqual({ memoized: false, reason: 'a .wasm module carries no plan to analyse' });

    const dir = mkdtempSync(join(tmpdir(), 'agentward-memo-id-'));
    writeFileSync(join(dir, 'policy.rego'), 'package agentward\n\ndecision := {"allow": input.request.id != "x"}\n');
    const byId = new PolicyEngine({ source: dir, entrypoint: ENTRYPOINT, opa, maxMemoryBytes: 16 << 20, logger: createLogger('silent') });
    await byId.load();
    expect(byId.memoStatus()).toEqual({ memoized: false, reason: 'the policy reads input.request.id, which is new on every request' });

    const off = new PolicyEngine({ source: join(REPO, 'policies'), entrypoint: ENTRYPOINT, opa, maxMemoryBytes: 16 << 20, logger: createLogger('silent'), memo: false });
    await off.load();
    expect(off.memoStatus()).toEqual({ memoized: false, reason: 'memoization is turned off' });
    expect(off.evaluate(echo('/x'))).toEqual(cases[0]!.fresh(echo('/x')));
    expect(new PolicyEngine({ source: dir, entrypoint: ENTRYPOINT, opa, maxMemoryBytes: 16 << 20, logger: createLogger('silent') }).memoStatus()).toBeUndefined();
  });
});

describe('memo keys', () => {
  const reads = (...paths: [string, InputRead['kind']][]): InputRead[] => paths.map(([p, kind]) => ({ path: p.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s)), kind }));

  test('follow the JSON view: absent, null and undefined members; array indexes; types', () => {
    const memo = new DecisionMemo(reads(['a', 'value'], ['b', 'type'], ['c.0.sub', 'value'], ['d', 'presence']));
    const key = (x: unknown) => memo.key(x);
    expect(key({})).toBe('~\nu\n~\n0\n');
    expect(key({ a: undefined, b: undefined, d: () => 1 })).toBe(key({}));
    expect(key({ a: null })).not.toBe(key({}));
    expect(key({ b: Number.NaN })).toBe(key({ b: null }));
    expect(key({ c: [{ sub: 'x' }] })).toBe('~\nu\n"x"\n0\n');
    expect(key({ c: { 0: { sub: 'x' } } })).toBe(key({}));
    expect(key({ c: [undefined] })).toBe(key({ c: [null] }));
    expect(key({ a: 'x\ny' })).toBe('"x\\ny"\nu\n~\n0\n');
  });

  test('are not made for what is not plain JSON data', () => {
    const memo = new DecisionMemo(reads(['a.x', 'value'], ['b', 'value']));
    expect(memo.key({ a: new Date(0) })).toBeUndefined();
    expect(memo.key({ a: new Map() })).toBeUndefined();
    expect(memo.key({ b: 1n })).toBeUndefined();
    expect(memo.key({ b: { deep: 1n } })).toBeUndefined();
    expect(memo.key(Object.create(null))).toBe('~\n~\n');
  });

  test('of a prepared base are the keys of the whole input', () => {
    const memo = new DecisionMemo(reads(['a2a', 'type'], ['mcp', 'type'], ['mcp.name', 'value'], ['request.path', 'value'], ['subject.scopes', 'value']));
    fc.assert(
      fc.property(input, fc.option(mcp, { nil: null }), (base, item) => {
        expect(memo.prepare(base, 'mcp')!.key(item)).toBe(memo.key({ ...base, mcp: item }));
      }),
      { seed: SEED, numRuns: 200 },
    );
    expect(new DecisionMemo(reads(['request.path', 'value'])).prepare({ request: { path: '/' } }, 'mcp')!.key({ name: 'x' })).toBe('"/"\n');
  });

  test('are bounded in length and number; decisions kept are frozen', () => {
    const memo = new DecisionMemo(reads(['a', 'value']), { maxEntries: 2, maxKeyLength: 10 });
    expect(memo.key({ a: 'x'.repeat(20) })).toBeUndefined();
    const allow = (): Decision => ({ allow: true, reason: undefined, status: undefined, requiredScopes: [], stepUp: undefined, headers: {}, scopes: undefined, context: undefined });
    const keep = (m: DecisionMemo, a: string) => {
      const first = m.set(m.key({ a })!, allow());
      const second = m.set(m.key({ a })!, allow());
      return [first, second];
    };
    const [once, twice] = keep(memo, '1');
    expect(Object.isFrozen(once)).toBe(false);
    expect(Object.isFrozen(twice) && Object.isFrozen(twice!.headers) && Object.isFrozen(twice!.requiredScopes)).toBe(true);
    for (const a of ['2', '3']) keep(memo, a);
    expect(memo.size).toBe(2);
    expect(memo.get(memo.key({ a: '1' })!)).toBeUndefined();
    const bySize = new DecisionMemo(reads(['a', 'value']), { maxChars: 3 * (102 + 1 + 256) });
    for (let i = 0; i < 10; i++) keep(bySize, String(i).repeat(100));
    expect(bySize.size).toBe(3);
    const header: Decision = { ...allow(), headers: { 'x-a': '1' }, stepUp: { acrValues: 'mfa', maxAge: undefined } };
    bySize.set('k', header);
    const frozen = bySize.set('k', header);
    expect(Object.isFrozen(frozen.headers) && Object.isFrozen(frozen.stepUp)).toBe(true);
  });
});
