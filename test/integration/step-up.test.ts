/**
 * Step-up authentication (RFC 9470) end to end: a policy written with the Rego library's step-up
 * helpers, compiled by opa, asks for a stronger or fresher user authentication, and the proxy
 * answers 401 `insufficient_user_authentication` with `acr_values` / `max_age`. The SU-Nxx cases
 * SU-Nxx of docs/negative-cases.md, each asserting the upstream saw nothing.
 */
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIssuer, type TestIssuer } from '../helpers/issuer.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, challengeParams, type RawResponse } from '../helpers/http.ts';

const RESOURCE = 'https://tools.example.com/mcp';

/** Destructive tools need acr "mfa" (or "phr") within the last 5 minutes, and the admin scope. */
const POLICY = `package agentward

import data.agentward.lib.scopes
import data.agentward.lib.stepup

default decision := {"allow": false, "reason": "not allowed"}

destructive if input.request.method == "DELETE"

decision := {"allow": true} if not destructive

decision := {"allow": false, "reason": "deleting needs tools.admin", "requiredScopes": ["tools.admin"]} if {
	destructive
	not scopes.has_all(["tools.admin"])
}

decision := {"allow": false, "reason": "deleting needs a recent multi-factor login", "stepUp": {"acrValues": "mfa phr", "maxAge": 300}} if {
	destructive
	scopes.has_all(["tools.admin"])
	not strong_and_recent
}

decision := {"allow": true} if {
	destructive
	scopes.has_all(["tools.admin"])
	strong_and_recent
}

strong_and_recent if {
	stepup.acr_in({"mfa", "phr"})
	stepup.authenticated_within(300)
}
`;

let issuer: TestIssuer;
let upstream: TestUpstream;
let aw: RunningAgentward;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentward-stepup-'));
  cpSync(join(REPO, 'policies', 'lib'), join(dir, 'lib'), { recursive: true });
  writeFileSync(join(dir, 'policy.rego'), POLICY);
  issuer = await startIssuer({ audience: RESOURCE });
  upstream = await startUpstream();
  aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { issuers: [{ issuer: issuer.issuer, jwksUri: issuer.jwksUri }] },
    policy: { source: dir },
  });
});
afterAll(async () => {
  await aw?.stop();
  await Promise.all([upstream?.close(), issuer?.close()]);
});
beforeEach(() => {
  upstream.seen.length = 0;
});

const now = () => Math.floor(Date.now() / 1000);

async function del(claims: Record<string, unknown>): Promise<RawResponse> {
  return rawRequest(`${aw.url}/mcp/repos/x`, { method: 'DELETE', headers: { authorization: `Bearer ${await issuer.mint({ scope: 'tools.admin', ...claims })}` } });
}

function expectStepUp(res: RawResponse) {
  expect(res.status, res.body).toBe(401);
  expect(res.json().code).toBe('ERR_POLICY_STEP_UP');
  const params = challengeParams(res.headers['www-authenticate']);
  expect(params).toMatchObject({ error: 'insufficient_user_authentication', acr_values: 'mfa phr', max_age: '300' });
  expect(upstream.seen).toHaveLength(0);
}

test('a recent multi-factor login passes', async () => {
  const res = await del({ acr: 'mfa', auth_time: now() - 60, amr: ['pwd', 'otp'] });
  expect(res.status, res.body).toBe(200);
});

test('SU-N01 no acr when the policy needs one', async () => expectStepUp(await del({ auth_time: now() - 60 })));
test('SU-N02 an acr outside the required set', async () => expectStepUp(await del({ acr: 'pwd', auth_time: now() - 60 })));
test('SU-N03 auth_time older than max_age', async () => expectStepUp(await del({ acr: 'mfa', auth_time: now() - 3600 })));
test('SU-N04 no auth_time with a max_age policy counts as too old', async () => expectStepUp(await del({ acr: 'mfa' })));

test('SU-N05 a missing scope is 403 insufficient_scope, not step-up', async () => {
  const res = await rawRequest(`${aw.url}/mcp/repos/x`, { method: 'DELETE', headers: { authorization: `Bearer ${await issuer.mint({ scope: 'tools.read', acr: 'mfa', auth_time: now() })}` } });
  expect(res.status).toBe(403);
  expect(res.json().code).toBe('ERR_POLICY_INSUFFICIENT_SCOPE');
  expect(challengeParams(res.headers['www-authenticate'])).toMatchObject({ error: 'insufficient_scope', scope: 'tools.admin' });
  expect(upstream.seen).toHaveLength(0);
});

test('an acr that is not a string rejects the token before policy (claim types are checked)', async () => {
  const res = await del({ acr: ['mfa'], auth_time: now() });
  expect(res.status).toBe(401);
  expect(res.json().code).toBe('ERR_TOKEN_CLAIM_INVALID');
});
