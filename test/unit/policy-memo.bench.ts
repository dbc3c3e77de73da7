/**
 * Micro-benchmark of one policy decision and of one filtered MCP tools/list (issue 12): the
 * opa-wasm path the engine used before (LoadedPolicy.evaluate with the input object), the engine
 * without memo (input encoded once, handed to opa_eval), and the engine with memo. A few seconds;
 * not a test (vitest does not collect *.bench.ts).
 *
 *   . scripts/toolchain.sh && node test/unit/policy-memo.bench.ts [seconds-per-case, default 1]
 *
 * "tight" evaluates one input again and again; "churn" is closer to traffic: every request has
 * its own id and trace headers, `now` moves every 1,000 requests, 50 tokens (clients, scopes,
 * delegation chains) call 20 paths with GET or POST; "new paths" gives every request a path never
 * seen (each one a memo miss: the memo's worst case).
 */
import { loadPolicy } from '@open-policy-agent/opa-wasm';
import { compileRego, opaBinary } from '../../src/policy/compile.ts';
import { readBundle } from '../../src/policy/bundle.ts';
import { parseDecision, type Decision } from '../../src/policy/decision.ts';
import { PolicyEngine } from '../../src/policy/engine.ts';
import type { McpInput, PolicyInput } from '../../src/policy/input.ts';
import { createLogger } from '../../src/observability/logger.ts';

const REPO = new URL('../../', import.meta.url).pathname;
const SECONDS = Number(process.argv[2] ?? 1);
const opa = opaBinary(undefined);

async function engine(source: string, memo: boolean): Promise<PolicyEngine> {
  const e = new PolicyEngine({ source, entrypoint: 'agentward/decision', opa, maxMemoryBytes: 64 << 20, logger: createLogger('silent'), ...(memo ? {} : { memo: false }) });
  await e.load();
  return e;
}

/** The engine's evaluate as it was before issue 12: opa-wasm stringifies the input object. */
async function before(source: string): Promise<(input: PolicyInput) => Decision> {
  const bundle = readBundle(await compileRego(source, { opa, entrypoint: 'agentward/decision' }));
  const wasm = await loadPolicy(bundle.wasm, { initial: 5, maximum: 1024 });
  wasm.setData(bundle.data);
  return (input) => parseDecision((wasm.evaluate(input, 'agentward/decision') as { result: unknown }[])[0]!.result);
}

const SUBJECTS = Array.from({ length: 50 }, (_, i) => ({
  iss: 'https://as.example.com', sub: `user-${i}`, clientId: `client-${i % 7}`, scopes: i % 3 ? ['tools.read', 'tools.write'] : ['tools.read'],
  aud: ['https://tools.example.com/api'], acr: null, amr: ['pwd'], authTime: null, authorizationDetails: [], jti: `jti-${i}`,
  expiresAt: 1764464400, format: 'jwt' as const, binding: 'bearer' as const, mayAct: null, claims: { iat: 1764460000 },
}));
const CHAINS = [{ chain: [], depth: 0 }, { chain: [{ sub: 'planner', iss: null, claims: {} }], depth: 1 }];

function request(i: number, path: string, method = 'GET'): PolicyInput {
  const id = `req-${i.toString(36)}-${(i * 2654435761 >>> 0).toString(16)}`;
  return {
    version: 1, now: 1764460800 + Math.floor(i / 1000),
    request: { id, method, scheme: 'https', host: 'tools.example.com', path, query: {}, headers: { accept: 'application/json', 'user-agent': 'bench/1', 'x-request-id': id, traceparent: `00-${id.padEnd(32, '0')}-00f067aa0ba902b7-01` }, clientCertificate: null, methodOverride: null },
    resource: { id: 'https://tools.example.com/api' }, agent: null,
    subject: SUBJECTS[i % SUBJECTS.length]!, delegation: CHAINS[i % 5 === 0 ? 1 : 0]!,
    txn: null, mcp: null, a2a: null, credentials: { presented: ['bearer'] },
  } as PolicyInput;
}

const tight = (): PolicyInput => request(1, '/api/items');
const churn = (i: number): PolicyInput => request(i, `/api/items/${i % 20}`, i % 4 === 0 ? 'POST' : 'GET');
const fresh = (i: number): PolicyInput => request(i, `/api/items/${i}`, 'GET');

/** µs per call over SECONDS, after a third of that to warm up; inputs are built before the clock starts. */
function measure(run: (i: number) => unknown, inputs: number): number {
  const loop = (seconds: number): [number, bigint] => {
    let n = 0;
    const start = process.hrtime.bigint();
    const until = start + BigInt(Math.round(seconds * 1e9));
    let now = start;
    while (now < until) {
      for (let k = 0; k < 10; k++) run(n++ % inputs);
      now = process.hrtime.bigint();
    }
    return [n, now - start];
  };
  loop(SECONDS / 3);
  const [n, ns] = loop(SECONDS);
  return Number(ns) / n / 1000;
}

async function decisions(): Promise<void> {
  const source = `${REPO}policies`;
  const old = await before(source);
  const plain = await engine(source, false);
  const memo = await engine(source, true);
  const N = 100_000;
  const sets = { tight: Array.from({ length: N }, tight), churn: Array.from({ length: N }, (_, i) => churn(i)), 'new paths': Array.from({ length: N }, (_, i) => fresh(i)) };
  console.log('default policy, µs per decision');
  for (const [name, inputs] of Object.entries(sets)) {
    const row = [old, (x: PolicyInput) => plain.evaluate(x), (x: PolicyInput) => memo.evaluate(x)].map((f) => measure((i) => f(inputs[i]!), N).toFixed(2));
    console.log(`  ${name.padEnd(10)} before ${row[0]}  engine without memo ${row[1]}  engine with memo ${row[2]}`);
  }
}

async function listFilter(): Promise<void> {
  const source = `${REPO}bench/policies/mcp`;
  const old = await before(source);
  const plain = await engine(source, false);
  const memo = await engine(source, true);
  const tools = Array.from({ length: 100 }, (_, i) => `tool-${i}`);
  const base = (i: number): PolicyInput => ({ ...request(i, '/mcp', 'POST'), mcp: { method: 'tools/list', name: null, arguments: null, id: 1, listFilter: false } });
  const item = (name: string): McpInput => ({ method: 'tools/call', name, arguments: null, id: null, listFilter: true });
  const check = (kept: number) => {
    if (kept !== 50) throw new Error(`the filter kept ${kept} tools, not 50`);
  };
  const runs = {
    before: (i: number) => check(tools.filter((t) => old({ ...base(i), mcp: item(t), a2a: null }).allow).length),
    'engine.evaluate per item': (i: number) => check(tools.filter((t) => plain.evaluate({ ...base(i), mcp: item(t), a2a: null }).allow).length),
    'prepare, no memo': (i: number) => {
      const decide = plain.prepare({ ...base(i), a2a: null }, 'mcp');
      check(tools.filter((t) => decide(item(t)).allow).length);
    },
    'prepare + memo': (i: number) => {
      const decide = memo.prepare({ ...base(i), a2a: null }, 'mcp');
      check(tools.filter((t) => decide(item(t)).allow).length);
    },
  };
  console.log('bench/policies/mcp, tools/list of 100 filtered to 50, µs per list');
  for (const [name, run] of Object.entries(runs)) console.log(`  ${name.padEnd(26)} ${measure(run, 1000).toFixed(1)}`);
}

await decisions();
await listFilter();
