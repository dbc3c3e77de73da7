/**
 * WIT issuers trusted by `iss` (workload.witIssuers), beside trust-domain bundles, end to end:
 * one issuer whose JWK Set is served over (loopback) HTTP, one whose JWK Set is a file, and a
 * SPIFFE bundle for a trust domain one of them also vouches for. The real proxy, the opa-compiled
 * workload policy and a real upstream; nothing refused reaches the upstream.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startAgentward, REPO, type RunningAgentward } from '../helpers/agentward.ts';
import { rawRequest, type RawResponse } from '../helpers/http.ts';
import { bundleDocument, mintWit, mintWpt, newWorkloadKey, type SigningKey, type WorkloadKey } from '../helpers/workload-tokens.ts';

const RESOURCE = 'https://tools.example.com/api';
const TARGET = 'https://tools.example.com/orders';
/** Trusted through the SPIFFE bundle and, for `FILE_ISSUER`, through that issuer too. */
const DOMAIN = 'agents.example.com';
/** Trusted only through `URL_ISSUER`: no bundle. */
const ISSUED = 'issued.example.net';
const URL_ISSUER = 'https://wit.example.net';
const FILE_ISSUER = 'https://files.example.org/wit';
const POLICY = join(REPO, 'test/fixtures/policies/workload');

let upstream: TestUpstream;
let jwksServer: Server;
let urlIssuerKey: WorkloadKey;
let fileIssuerKey: WorkloadKey;
let bundleKey: WorkloadKey;
let workloadKey: WorkloadKey;
let aw: RunningAgentward;

beforeAll(async () => {
  upstream = await startUpstream();
  [urlIssuerKey, fileIssuerKey, bundleKey, workloadKey] = await Promise.all([newWorkloadKey('EdDSA', 'url-1'), newWorkloadKey('EdDSA', 'file-1'), newWorkloadKey('ES256', 'wit-1'), newWorkloadKey('ES256')]);
  jwksServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [urlIssuerKey.publicJwk] })));
  await new Promise<void>((done) => jwksServer.listen(0, '127.0.0.1', done));
  const dir = mkdtempSync(join(tmpdir(), 'agentward-wit-issuers-'));
  writeFileSync(join(dir, 'agents.json'), JSON.stringify(bundleDocument({ witSvid: [bundleKey.publicJwk] })));
  writeFileSync(join(dir, 'file-issuer.jwks.json'), JSON.stringify({ keys: [fileIssuerKey.publicJwk] }));
  aw = await startAgentward({
    upstream: { url: upstream.url },
    resource: { id: RESOURCE },
    oauth: { requireToken: false },
    policy: { source: POLICY },
    workload: {
      trustDomains: [{ name: DOMAIN, bundle: { file: join(dir, 'agents.json') } }],
      witIssuers: [
        { issuer: URL_ISSUER, jwksUri: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`, trustDomains: [ISSUED] },
        { issuer: FILE_ISSUER, jwksFile: join(dir, 'file-issuer.jwks.json'), trustDomains: ['files.example.org', DOMAIN], algorithms: ['EdDSA'] },
      ],
    },
  });
});
afterAll(async () => {
  await aw?.stop();
  await upstream?.close();
  jwksServer?.close();
});

/** A WIT with `iss`, signed by `key`, proved by a WPT of the workload key. */
async function send(options: { key: SigningKey; sub: string; iss?: string | undefined }): Promise<{ res: RawResponse; forwarded: number }> {
  const wit = await mintWit({ key: options.key, sub: options.sub, cnfJwk: workloadKey.publicJwk, claims: { iss: options.iss } });
  const wpt = await mintWpt({ wit, privateKey: workloadKey.privateKey, alg: workloadKey.alg, aud: TARGET });
  const before = upstream.seen.length;
  const res = await rawRequest(`${aw.url}/orders`, { headers: { 'workload-identity-token': wit, authorization: `WPT ${wpt}` } });
  return { res, forwarded: upstream.seen.length - before };
}

function expectRefused(result: { res: RawResponse; forwarded: number }, status: number, code: string): void {
  expect(result.res.json().code, result.res.body).toBe(code);
  expect(result.res.status).toBe(status);
  expect(result.forwarded).toBe(0);
}

describe('workload.witIssuers: WIT issuers trusted by iss', () => {
  test('a WIT whose iss is an issuer with a JWKS URI, for a trust domain it lists (and that has no bundle), is accepted', async () => {
    const sub = `wimse://${ISSUED}/billing-bot`;
    const { res } = await send({ key: urlIssuerKey, sub, iss: URL_ISSUER });
    expect(res.status, res.body).toBe(200);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe(sub);
    expect(upstream.seen.at(-1)!.headers['x-policy-agent-via']).toBe('wit+wpt');
  });

  test('a WIT of an issuer with a JWKS file is accepted; a spiffe:// sub with EdDSA follows the WIMSE drafts there', async () => {
    for (const sub of ['wimse://files.example.org/bot', `spiffe://${DOMAIN}/from-file-issuer`]) {
      const { res } = await send({ key: fileIssuerKey, sub, iss: FILE_ISSUER });
      expect(res.status, res.body).toBe(200);
      expect(upstream.seen.at(-1)!.headers['x-policy-agent']).toBe(sub);
    }
  });

  test('beside the bundle: a WIT of the same trust domain without the issuer iss is still verified with the bundle', async () => {
    const { res } = await send({ key: bundleKey, sub: `spiffe://${DOMAIN}/research-bot` });
    expect(res.status, res.body).toBe(200);
  });

  test('the issuer iss picks the issuer keys only: a bundle-signed WIT naming that iss is refused', async () => {
    expectRefused(await send({ key: { ...bundleKey, kid: 'file-1' }, sub: `spiffe://${DOMAIN}/research-bot`, iss: FILE_ISSUER }), 401, 'ERR_WIT_ALGORITHM');
    const edImpostor = await newWorkloadKey('EdDSA', 'file-1');
    expectRefused(await send({ key: edImpostor, sub: `spiffe://${DOMAIN}/research-bot`, iss: FILE_ISSUER }), 401, 'ERR_WIT_SIGNATURE');
  });

  test('iss is compared exactly: a trailing slash, another case or no iss is not the issuer (ERR_WIT_ISSUER)', async () => {
    for (const iss of [`${URL_ISSUER}/`, URL_ISSUER.toUpperCase(), undefined]) {
      expectRefused(await send({ key: urlIssuerKey, sub: `wimse://${ISSUED}/billing-bot`, iss }), 401, 'ERR_WIT_ISSUER');
    }
  });

  test('an issuer vouches only for the trust domains it lists', async () => {
    expectRefused(await send({ key: urlIssuerKey, sub: 'wimse://files.example.org/bot', iss: URL_ISSUER }), 401, 'ERR_WIT_ISSUER');
    expectRefused(await send({ key: urlIssuerKey, sub: 'wimse://unknown.example/bot', iss: 'https://unknown.example' }), 401, 'ERR_WIT_TRUST_DOMAIN');
  });

  test("a key the issuer's key set does not hold is refused", async () => {
    const stranger = await newWorkloadKey('EdDSA', 'url-2');
    expectRefused(await send({ key: stranger, sub: `wimse://${ISSUED}/billing-bot`, iss: URL_ISSUER }), 401, 'ERR_WIT_KEY_UNKNOWN');
  });

  test("the issuer's own algorithms: an ES256 WIT of the EdDSA-only issuer is refused", async () => {
    const es = await newWorkloadKey('ES256', 'file-1');
    expectRefused(await send({ key: es, sub: 'wimse://files.example.org/bot', iss: FILE_ISSUER }), 401, 'ERR_WIT_ALGORITHM');
  });

  test('/readyz shows the WIT issuers key sets', async () => {
    const detail = (await (await fetch(`${aw.adminUrl}/readyz`)).json()) as { witIssuers: { issuer: string; ready: boolean }[] };
    expect(detail.witIssuers.map((i) => [i.issuer, i.ready])).toEqual([
      [URL_ISSUER, true],
      [FILE_ISSUER, true],
    ]);
  });
});
