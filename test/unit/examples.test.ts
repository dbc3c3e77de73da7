/**
 * The worked policies (examples/policies) as agentward runs them: compiled to WebAssembly with the
 * library beside them and evaluated by the real engine. `opa test` (scripts/run) covers their
 * logic with the Rego interpreter; this catches what only the WebAssembly target can get wrong
 * (builtins it lacks, data loading, the decision shape).
 */
import { cpSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { PolicyEngine } from '../../src/policy/engine.ts';
import { opaBinary } from '../../src/policy/compile.ts';
import { createLogger } from '../../src/observability/logger.ts';
import type { PolicyInput } from '../../src/policy/input.ts';
import { REPO } from '../helpers/agentward.ts';

const EXAMPLES = join(REPO, 'examples/policies');

async function engineFor(name: string): Promise<PolicyEngine> {
  const dir = mkdtempSync(join(tmpdir(), `agentward-example-${name}-`));
  cpSync(join(REPO, 'policies/lib'), join(dir, 'lib'), { recursive: true });
  cpSync(join(EXAMPLES, name), dir, { recursive: true });
  const engine = new PolicyEngine({ source: dir, entrypoint: 'agentward/decision', opa: opaBinary(undefined), maxMemoryBytes: 64 * 1024 * 1024, logger: createLogger('silent') });
  await engine.load();
  return engine;
}

function input(overrides: Partial<PolicyInput> = {}): PolicyInput {
  return {
    version: 1,
    now: 1764460800,
    request: { id: 'r', method: 'GET', scheme: 'https', host: 'tools.example.com', path: '/docs', query: {}, headers: {}, clientCertificate: null, methodOverride: null },
    resource: { id: 'https://tools.example.com/mcp' },
    agent: null,
    subject: null,
    delegation: { chain: [], depth: 0 },
    txn: null,
    mcp: null,
    a2a: null,
    credentials: { presented: [] },
    ...overrides,
  };
}

const subject = (clientId: string, scopes: string[]) => ({
  iss: 'https://as.example.com',
  sub: 'user-42',
  clientId,
  scopes,
  aud: ['https://tools.example.com/mcp'],
  acr: null,
  amr: [],
  authTime: null,
  authorizationDetails: [],
  jti: 'j',
  expiresAt: 1764464400,
  format: 'jwt' as const,
  binding: 'bearer' as const,
  mayAct: null,
  claims: {},
});

describe('worked policies compiled to WebAssembly', () => {
  test.each(readdirSync(EXAMPLES))('%s compiles, loads its data, and denies a request without credentials with a reason', async (name) => {
    const engine = await engineFor(name);
    const decision = engine.evaluate(input());
    expect(decision.allow).toBe(false);
    expect(decision.reason).toEqual(expect.any(String));
    engine.close();
  });

  test('research-agent: a read tool is allowed and listed, a write tool is neither', async () => {
    const engine = await engineFor('research-agent');
    const base = { subject: subject('research-bot', ['tools.read']), request: { ...input().request, method: 'POST', path: '/mcp' } };
    const call = (name: string, listFilter = false) => engine.evaluate(input({ ...base, mcp: { method: 'tools/call', name, arguments: {}, id: listFilter ? null : 1, listFilter } })).allow;
    expect([call('search'), call('search', true), call('delete_repo'), call('delete_repo', true)]).toEqual([true, true, false, false]);
    engine.close();
  });
});
