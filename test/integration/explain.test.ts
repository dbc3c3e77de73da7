/**
 * `agentward explain` as a real child process (issue 5 item 7): a described request goes through
 * the pipeline up to the decision and the CLI prints the policy input, the decision and the answer,
 * forwarding nothing. Offline: the issuer is down and its keys come from a file (--jwks, --offline).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { REPO } from '../helpers/agentward.ts';
import { cli } from '../helpers/cli.ts';

const RESOURCE = 'https://tools.example.com/mcp';
let issuer: TestIssuer;
let dir: string;
let config: string;
let keysFile: string;

beforeAll(async () => {
  issuer = await startIssuer({ audience: RESOURCE });
  dir = mkdtempSync(join(tmpdir(), 'agentward-explain-'));
  keysFile = join(dir, 'jwks.json');
  writeFileSync(keysFile, JSON.stringify({ keys: issuer.keys.map((k) => k.publicJwk) }));
  config = join(dir, 'agentward.yaml');
  writeFileSync(
    config,
    stringify({
      listen: { address: '127.0.0.1:0' },
      admin: { address: '127.0.0.1:0' },
      upstream: { url: 'http://127.0.0.1:9' },
      resource: { id: RESOURCE },
      oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
      policy: { source: join(REPO, 'test/fixtures/policies/mcp'), watch: false },
      mcp: { paths: ['/mcp'] },
      audit: { sink: 'file', file: join(dir, 'audit.jsonl') },
    }),
  );
});
afterAll(async () => {
  await issuer?.setMode('down');
  await issuer?.close();
});

async function explain(request: Record<string, unknown>, extra: string[] = []) {
  const file = join(dir, `request-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify(request));
  const run = await cli(['explain', '--config', config, '--request', file, ...extra]);
  return { ...run, result: run.stdout ? (JSON.parse(run.stdout) as Record<string, any>) : undefined };
}

describe('agentward explain', () => {
  test('an allowed MCP call: the input (subject, mcp with arguments) and the decision; exit 0', async () => {
    const token = await issuer.mint({ scope: 'tools.read' });
    const { code, result, stderr } = await explain({
      method: 'POST',
      url: 'https://tools.example.com/mcp',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search_docs', arguments: { query: 'dpop' } } },
    });
    expect(code, stderr).toBe(0);
    expect(result!.input).toMatchObject({ subject: { sub: 'user-42', scopes: ['tools.read'] }, mcp: { method: 'tools/call', name: 'search_docs', arguments: { query: 'dpop' } }, request: { path: '/mcp' } });
    expect(result!.decision).toMatchObject({ allow: true });
    expect(result!.answer).toEqual({ action: 'forward' });
  });

  test('offline, with the issuer down: keys from a file; a denied call shows the reason and the JSON-RPC answer; exit 1', async () => {
    const token = await issuer.mint({ scope: 'tools.read tools.write' });
    await issuer.setMode('down');
    const { code, result, stderr } = await explain(
      {
        method: 'POST',
        url: '/mcp',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{"jsonrpc":"2.0","id":"d-1","method":"tools/call","params":{"name":"delete_repo","arguments":{"repo":"x"}}}',
      },
      ['--jwks', `${issuer.jwksUri}=${keysFile}`, '--offline'],
    );
    expect(code, stderr).toBe(1);
    expect(result!.decision).toMatchObject({ allow: false, reason: 'delete_repo is never allowed' });
    expect(result!.answer).toMatchObject({ action: 'refuse', status: 200, code: 'ERR_POLICY_DENIED', body: { jsonrpc: '2.0', id: 'd-1', error: { code: -32003 } } });
    await issuer.setMode('up');
  });

  test('an authentication failure: no input, the 401 and its challenge', async () => {
    const { code, result } = await explain({ url: '/mcp', headers: { authorization: 'Bearer not-a-jwt.x.y' } }, ['--jwks', `${issuer.jwksUri}=${keysFile}`, '--offline']);
    expect(code).toBe(1);
    expect(result!.input).toBeNull();
    expect(result!.answer).toMatchObject({ action: 'refuse', status: 401, code: 'ERR_TOKEN_MALFORMED' });
    expect(JSON.stringify(result!.answer.headers['www-authenticate'])).toContain('error=\\"invalid_token\\"');
  });

  test('oauth.anonymous: policy: an anonymous request shows its input (subject, agent null) and the 401 a deny becomes; a method override the 400', async () => {
    const anonymousConfig = join(dir, 'anonymous.yaml');
    writeFileSync(
      anonymousConfig,
      stringify({
        upstream: { url: 'http://127.0.0.1:9' },
        resource: { id: RESOURCE },
        oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }], anonymous: 'policy' },
        policy: { source: join(REPO, 'test/fixtures/policies/hygiene'), watch: false },
        audit: { sink: 'off' },
      }),
    );
    const run = async (request: Record<string, unknown>) => {
      const file = join(dir, `request-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, stringify(request));
      const out = await cli(['explain', '--config', anonymousConfig, '--request', file, '--jwks', `${issuer.jwksUri}=${keysFile}`, '--offline']);
      return { code: out.code, result: JSON.parse(out.stdout) as Record<string, any> };
    };
    const open = await run({ url: '/public' });
    expect(open.code).toBe(0);
    expect(open.result.input).toMatchObject({ subject: null, agent: null, credentials: { presented: [] } });
    const closed = await run({ url: '/private' });
    expect(closed.code).toBe(1);
    expect(closed.result.decision).toMatchObject({ allow: false });
    expect(closed.result.answer).toMatchObject({ action: 'refuse', status: 401, code: 'ERR_CREDENTIALS_MISSING' });
    expect(JSON.stringify(closed.result.answer.headers['www-authenticate'])).toContain('resource_metadata=');
    const override = await run({ url: '/public', headers: { 'X-HTTP-Method-Override': 'DELETE' } });
    expect(override.result.answer).toMatchObject({ action: 'refuse', status: 400, code: 'ERR_METHOD_OVERRIDE' });
  });

  test('a request file that is not a request is refused with the reason', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'method: post\n');
    const run = await cli(['explain', '--config', config, '--request', file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('url is required');
  });
});
