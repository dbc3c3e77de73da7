/**
 * The policy input reference: docs/policy-input.md is rendered from src/policy/input-schema.ts and
 * must never lag behind it (conventions §12), and the schema must accept the documents the proxy
 * builds (inputs assembled here with the same builders the pipeline uses) and refuse other shapes.
 * That the schema and the PolicyInput type agree is checked by the compiler (SCHEMA_MATCHES_POLICY_INPUT).
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, test } from 'vitest';
import { POLICY_INPUT_DOC, renderPolicyInputDoc } from '../../scripts/gen-policy-input-doc.ts';
import type { VerifiedAccessToken } from '../../src/credentials/access-token.ts';
import type { VerifiedTxnToken } from '../../src/credentials/txn-token.ts';
import { PolicyInputSchema, SCHEMA_MATCHES_POLICY_INPUT } from '../../src/policy/input-schema.ts';
import type { PolicyInput } from '../../src/policy/input.ts';
import { agentInput, subjectInput, txnInput } from '../../src/proxy/input.ts';

const NOW = 1764460800;

const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true });
const validate = ajv.compile(PolicyInputSchema);

function errors(input: unknown): string[] {
  return validate(input) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
}

/** A verified JWT access token as the verifier returns it (DPoP-bound, delegated, with RAR details). */
const token: VerifiedAccessToken = {
  issuer: 'https://as.example.com',
  claims: {
    iss: 'https://as.example.com',
    sub: 'user-42',
    client_id: 'research-bot',
    scope: 'tools.read tools.write',
    aud: 'https://tools.example.com/mcp',
    acr: 'mfa',
    amr: ['pwd', 'otp'],
    auth_time: NOW - 120,
    authorization_details: [{ type: 'tool_call', actions: ['create_issue'], locations: ['https://tools.example.com/mcp'], identifier: 'acme/website' }],
    jti: 'jti-gptuz7hfoc8',
    iat: NOW,
    exp: NOW + 300,
    cnf: { jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs' },
    act: { sub: 'spiffe://agents.example.com/planner' },
    may_act: { sub: 'spiffe://agents.example.com/planner' },
    tenant: 'acme',
  },
  subject: 'user-42',
  clientId: 'research-bot',
  scopes: ['tools.read', 'tools.write'],
  audiences: ['https://tools.example.com/mcp'],
  expiresAt: NOW + 300,
  kid: 'k1',
  jkt: 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs',
  delegation: { chain: [{ sub: 'spiffe://agents.example.com/planner', iss: null, claims: {} }], depth: 1 },
  hashPrefix: 'abcdefghijklmnop',
  format: 'jwt',
};

/** An opaque token described by introspection: only what RFC 7662 requires, no optional claims. */
const introspected: VerifiedAccessToken = {
  issuer: 'https://as.example.com',
  claims: { active: true, token_type: 'Bearer', aud: 'https://tools.example.com/mcp', exp: NOW + 60 },
  subject: null,
  clientId: null,
  scopes: [],
  audiences: ['https://tools.example.com/mcp'],
  expiresAt: NOW + 60,
  kid: undefined,
  jkt: undefined,
  delegation: { chain: [], depth: 0 },
  hashPrefix: 'qrstuvwxyzabcdef',
  format: 'opaque',
};

const txn: VerifiedTxnToken = {
  txn: '97053963-771d-49cc-a4e3-20aad399c312',
  sub: 'd084sdrt234fsaw34tr23t',
  scopes: ['trade.stocks'],
  tctx: { action: 'BUY', ticker: 'MSFT', quantity: '100' },
  rctx: null,
  reqWl: 'apigateway.trust-domain.example',
  iss: null,
  issuedAt: NOW - 5,
  expiresAt: NOW + 55,
  claims: { purpose: 'trade' },
  hashPrefix: 'abcdabcdabcdabcd',
};

function base(overrides: Partial<PolicyInput> = {}): PolicyInput {
  return {
    version: 1,
    now: NOW,
    request: {
      id: '475b2e03-9c8f-4455-bde8-5ed685afe337',
      method: 'POST',
      scheme: 'https',
      host: 'tools.example.com',
      path: '/mcp',
      query: { a: ['1', '2'], b: [''] },
      headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
      clientCertificate: null,
      methodOverride: null,
    },
    resource: { id: 'https://tools.example.com/mcp' },
    agent: null,
    subject: subjectInput(token),
    delegation: token.delegation,
    txn: null,
    mcp: null,
    a2a: null,
    credentials: { presented: ['access_token', 'dpop'] },
    ...overrides,
  };
}

describe('docs/policy-input.md', () => {
  test('matches the schema (run `npm run policy:input-doc`)', () => {
    expect(readFileSync(POLICY_INPUT_DOC, 'utf8'), `${POLICY_INPUT_DOC} is out of date: run npm run policy:input-doc`).toBe(renderPolicyInputDoc());
  });

  test('has a table for every object of the input, mcp and a2a included', () => {
    const headings = renderPolicyInputDoc().match(/^## `[^`]+`$/gm);
    expect(headings).toEqual(
      [
        'input',
        'input.request',
        'input.request.clientCertificate',
        'input.request.clientCertificate.sans',
        'input.request.methodOverride',
        'input.request.methodOverride.fields[]',
        'input.resource',
        'input.agent',
        'input.agent.token',
        'input.subject',
        'input.delegation',
        'input.delegation.chain[]',
        'input.txn',
        'input.mcp',
        'input.a2a',
        'input.credentials',
      ].map((h) => `## \`${h}\``),
    );
  });
});

describe('the input schema', () => {
  test('agrees with the PolicyInput type (compile-time check)', () => {
    expect(SCHEMA_MATCHES_POLICY_INPUT).toBe(true);
  });

  test('accepts a delegated, DPoP-bound JWT with RAR details on an MCP tools/call', () => {
    const input = base({ mcp: { method: 'tools/call', name: 'create_issue', arguments: { repo: 'acme/website', title: 'Broken link' }, id: 7, listFilter: false } });
    expect(input.subject?.binding).toBe('dpop');
    expect(input.subject?.authorizationDetails).toEqual(token.claims.authorization_details);
    expect(errors(input)).toEqual([]);
  });

  test('accepts a proven agent with a client certificate, a Txn-Token and an A2A 0.3 call', () => {
    const agent = agentInput(
      { id: 'spiffe://agents.example.com/research-bot', trustDomain: 'agents.example.com', path: '/research-bot', via: 'x509_svid', expiresAt: NOW + 3600, claims: { serialNumber: '01AF' } },
      { clientId: true, actor: null },
    );
    const input = base({
      agent,
      txn: txnInput(txn),
      a2a: { method: 'message/send', operation: 'SendMessage', id: 'req-1', arguments: { message: { role: 'ROLE_USER', parts: [] } } },
      credentials: { presented: ['access_token', 'txn_token', 'client_certificate'] },
      request: {
        ...base().request,
        clientCertificate: {
          subject: 'CN=research-bot,O=Acme\\, Inc.',
          issuer: 'CN=Agents CA,O=Acme\\, Inc.',
          sans: { uri: ['spiffe://agents.example.com/research-bot'], dns: [], email: [], ip: ['2001:db8::7'] },
          thumbprint: 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2',
          notBefore: NOW - 86400,
          notAfter: NOW + 86400,
          verified: true,
        },
      },
    });
    expect(errors(input)).toEqual([]);
  });

  test('accepts an introspected token without optional claims, and a workload-only request (subject null)', () => {
    expect(errors(base({ subject: subjectInput(introspected), delegation: introspected.delegation, mcp: { method: 'notifications/initialized', name: null, arguments: null, id: null, listFilter: false } }))).toEqual([]);
    const agent = agentInput({ id: 'spiffe://agents.example.com/bot', trustDomain: 'agents.example.com', path: '/bot', via: 'wit+wpt', expiresAt: NOW + 60, claims: {} }, null);
    expect(errors(base({ subject: null, agent, delegation: { chain: [], depth: 0 }, credentials: { presented: ['wpt', 'wit'] } }))).toEqual([]);
  });

  test('accepts a stripped method override and an anonymous request (oauth.anonymous: policy)', () => {
    const methodOverride = { action: 'stripped' as const, fields: [{ source: 'header' as const, name: 'x-http-method-override', value: 'DELETE' }, { source: 'query' as const, name: '_method', value: 'PUT' }] };
    expect(errors(base({ request: { ...base().request, methodOverride } }))).toEqual([]);
    expect(errors(base({ subject: null, agent: null, delegation: { chain: [], depth: 0 }, credentials: { presented: [] } }))).toEqual([]);
    const wrong = { ...methodOverride, action: 'ignored' as 'stripped' };
    expect(errors(base({ request: { ...base().request, methodOverride: wrong } })).join()).toMatch(/\/request\/methodOverride\/action/);
  });

  test('refuses other shapes: a missing key, an unknown key, a wrong type', () => {
    const { mcp: _dropped, ...withoutMcp } = base();
    expect(errors(withoutMcp)).toContain(" must have required property 'mcp'");
    expect(errors({ ...base(), extra: 1 }).join()).toMatch(/must NOT have additional properties/);
    expect(errors(base({ version: 2 as 1 })).join()).toMatch(/\/version must be equal to constant/);
    expect(errors(base({ mcp: { method: 'tools/call', name: 'x', arguments: null, id: 1, listFilter: 'yes' as unknown as boolean } })).join()).toMatch(/\/mcp/);
    const subject = { ...subjectInput(token), authorizationDetails: [{ actions: ['read'] }] };
    expect(errors(base({ subject })).join()).toMatch(/\/subject\/authorizationDetails\/0 must have required property 'type'/);
  });
});
