/**
 * The input reads a policy's plan shows (src/policy/input-reads.ts), on plans the real opa builds:
 * what each shape of Rego reads, and every shape that turns memoization off (impure builtins, the
 * whole input, a dynamic key at the top, `walk`, `object.get` over the input, `with`).
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { compileRegoWithPlan, opaBinary } from '../../src/policy/compile.ts';
import { unpackBundle } from '../../src/policy/bundle.ts';
import { comparePaths, inputReads, type InputReads } from '../../src/policy/input-reads.ts';
import { REPO } from '../helpers/agentward.ts';

async function readsOfDir(dir: string): Promise<InputReads> {
  const { plan } = await compileRegoWithPlan(dir, { opa: opaBinary(undefined), entrypoint: 'agentward/decision' });
  return inputReads(JSON.parse(unpackBundle(plan!).get('plan.json')!.toString('utf8')), 'agentward/decision');
}

/** The reads of a one-file policy (package agentward, with `data.k` = "x" and `data.h` = "accept"), as "path (kind)". */
async function reads(rego: string): Promise<string[] | string> {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-reads-'));
  writeFileSync(join(dir, 'policy.rego'), `package agentward\n\n${rego}\n`);
  writeFileSync(join(dir, 'data.json'), JSON.stringify({ k: 'x', h: 'accept' }));
  return shown(await readsOfDir(dir));
}

function shown(r: InputReads): string[] | string {
  return r.memoizable ? r.reads.map((x) => `${x.path.join('.')}${x.kind === 'value' ? '' : ` (${x.kind})`}`) : `off: ${r.reason}`;
}

async function example(name: string): Promise<string[] | string> {
  const dir = mkdtempSync(join(tmpdir(), `agentward-reads-${name}-`));
  cpSync(join(REPO, 'policies/lib'), join(dir, 'lib'), { recursive: true });
  cpSync(join(REPO, 'examples/policies', name), dir, { recursive: true });
  return shown(await readsOfDir(dir));
}

describe('the shipped policies', () => {
  test('the default policy reads the client, scopes, delegation, method (and a forwarded method override), path and the call kinds', async () => {
    expect(shown(await readsOfDir(join(REPO, 'policies')))).toEqual([
      'a2a (type)', 'a2a.operation', 'delegation (presence)', 'delegation.chain', 'delegation.depth', 'mcp (type)', 'mcp.method',
      'request (presence)', 'request.method', 'request.methodOverride (presence)', 'request.methodOverride.action', 'request.methodOverride.fields', 'request.path',
      'subject (type)', 'subject.clientId', 'subject.scopes',
    ]);
  });

  test('research-agent and agent-to-agent do not read the clock; user-delegated-tools does (step-up max age)', async () => {
    const research = await example('research-agent');
    const a2a = await example('agent-to-agent');
    const tools = await example('user-delegated-tools');
    for (const r of [research, a2a, tools]) expect(Array.isArray(r)).toBe(true);
    expect(research).not.toContain('now');
    expect(a2a).not.toContain('now');
    expect(tools).toContain('now');
    expect(tools).toEqual(expect.arrayContaining(['mcp.arguments.repo', 'mcp.listFilter', 'mcp.name', 'subject.authorizationDetails', 'subject.authTime', 'resource.id']));
  });
});

describe('what a rule reads', () => {
  test('a nested member: its presence on the way, its value at the end', async () => {
    expect(await reads('decision := {"allow": input.x.y == 1}')).toEqual(['x (presence)', 'x.y']);
  });

  test('a constant array index is followed like a member', async () => {
    expect(await reads('decision := {"allow": input.delegation.chain[0].sub == "a"}')).toEqual(['delegation (presence)', 'delegation.chain (presence)', 'delegation.chain.0 (presence)', 'delegation.chain.0.sub']);
  });

  test('a type test reads only the type', async () => {
    expect(await reads('decision := {"allow": is_object(input.agent)}')).toEqual(['agent (type)']);
  });

  test('a key computed at run time below the top reads that whole member', async () => {
    expect(await reads('decision := {"allow": input.request.headers[data.h] == "1"}')).toEqual(['request (presence)', 'request.headers']);
  });

  test('iterating a member reads it whole', async () => {
    expect(await reads('decision := {"allow": count([s | some s in input.subject.scopes; startswith(s, "a")]) > 0}')).toEqual(['subject (presence)', 'subject.scopes']);
  });

  test('a member passed to a function is followed into it', async () => {
    expect(await reads('f(v) := v.b\n\ndecision := {"allow": f(input.a) == 1}')).toEqual(['a (presence)', 'a.b']);
  });

  test('object.get on a member reads that member whole', async () => {
    expect(await reads('decision := {"allow": object.get(input.a, "b", 0) == 1}')).toEqual(['a']);
  });

  test('json.marshal of a member reads it whole', async () => {
    expect(await reads('decision := {"allow": json.marshal(input.request.clientCertificate) == "null"}')).toEqual(['request (presence)', 'request.clientCertificate']);
  });
});

describe('memoization turns off', () => {
  test.each([
    ['the whole input', 'decision := {"allow": count(input) > 0}', /whole input/],
    ['a key computed at run time at the top', 'decision := {"allow": input[data.k] == 1}', /whole input/],
    ['walk over the input', 'decision := {"allow": count([p | walk(input, [p, _])]) > 0}', /whole input/],
    ['object.get over the input with a computed path', 'decision := {"allow": object.get(input, ["a", data.k], 0) == 1}', /whole input/],
    ['time.now_ns', 'decision := {"allow": time.now_ns() > 0}', /time\.now_ns/],
    ['rand.intn', 'decision := {"allow": rand.intn("x", 10) > 5}', /rand\.intn/],
    ['uuid.rfc4122', 'decision := {"allow": uuid.rfc4122("x") != ""}', /uuid\.rfc4122/],
    ['http.send', 'decision := {"allow": http.send({"method": "GET", "url": "http://127.0.0.1:1/"}).status_code == 200}', /http\.send/],
    ['with replacing part of the input', 'r if input.x == 1\n\ndecision := {"allow": true} if {\n\tr with input.x as 1\n}', /`with` replaces part of the input/],
  ])('%s', async (_name, rego, reason) => {
    const r = await reads(rego);
    expect(r).toEqual(expect.stringMatching(reason));
  });

  test('a plan the analysis does not know is refused, not guessed', () => {
    const plan = { static: { strings: [] }, plans: { plans: [{ name: 'p', blocks: [{ stmts: [{ type: 'FutureStmt', stmt: {} }] }] }] }, funcs: { funcs: [] } };
    expect(inputReads(plan, 'p')).toEqual({ memoizable: false, reason: 'plan:p: unknown plan statement FutureStmt' });
    expect(inputReads(null, 'p').memoizable).toBe(false);
    expect(inputReads(plan, 'q')).toEqual({ memoizable: false, reason: 'the plan has no entrypoint q' });
  });
});

test('paths sort numbers first, then strings, a prefix before its extensions', () => {
  const paths = [['b'], ['a', 'x'], ['a'], ['a', 0], ['a', 'x', 1]];
  expect(paths.sort(comparePaths)).toEqual([['a'], ['a', 0], ['a', 'x'], ['a', 'x', 1], ['b']]);
});
