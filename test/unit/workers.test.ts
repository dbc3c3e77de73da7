/**
 * `workers` (docs/operations.md "Workers"): the check refuses more than one worker where a
 * worker's own memory would be unsafe (DPoP, workload proofs, signals without shared state; audit
 * records on one pipe), accepts it otherwise; each worker's audit file; the restart back-off.
 * The processes themselves: test/integration/workers.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseConfig, type ConfigProblem } from '../../src/config/load.ts';
import { workerFile } from '../../src/observability/audit.ts';
import { restartDelayMs } from '../../src/app/workers.ts';

const BUNDLE = join(resolve(import.meta.dirname, '../..'), 'bundles', 'default-policy.tar.gz');
const BASE = `upstream:
  url: http://127.0.0.1:3000
resource:
  id: https://tools.example.com/mcp
policy:
  source: ${BUNDLE}
`;
const NO_DPOP = 'oauth:\n  dpop:\n    mode: disabled\naudit:\n  sink: file\n  file: audit.jsonl\n';

function parse(text: string) {
  return parseConfig(text, join(mkdtempSync(join(tmpdir(), 'agentward-workers-')), 'agentward.yaml'), { PUSH_AUTH: 'Bearer p' });
}

/** The problems at `path`; fails the test if the file loads. */
function problemsAt(text: string, path: string): ConfigProblem[] {
  let caught: unknown;
  try {
    parse(text);
  } catch (err) {
    caught = err;
  }
  expect(caught, 'the config was accepted').toBeInstanceOf(ConfigError);
  return (caught as ConfigError).problems.filter((p) => p.path === path);
}

describe('the check of workers', () => {
  test('one worker (the default) is one process, whatever else is configured', () => {
    expect(parse(BASE).config.workers).toBe(1);
  });

  test('two workers without proof-bearing credentials load', () => {
    expect(parse(`${BASE}${NO_DPOP}workers: 2\n`).config.workers).toBe(2);
    expect(parse(`${BASE}${NO_DPOP}workers: auto\n`).config.workers).toBe('auto');
  });

  test('DPoP (on by default: mode allowed) with two workers and no shared state is refused, naming workers and the fix', () => {
    const [p] = problemsAt(`${BASE}workers: 2\n`, 'workers');
    expect(p?.message).toContain('DPoP');
    expect(p?.fix).toContain('state.backend: redis');
    expect(p?.fix).toContain('workers: 1');
  });

  test('auto counts as more than one, whatever this machine has', () => {
    expect(problemsAt(`${BASE}workers: auto\n`, 'workers')).toHaveLength(1);
  });

  test('workload proofs (WPT ids, signature nonces) with two workers are refused', () => {
    const [p] = problemsAt(`${BASE}${NO_DPOP}workers: 2\nworkload:\n  trustDomains:\n    - name: agents.example.com\n      bundle: { url: https://agents.example.com/bundle }\n`, 'workers');
    expect(p?.message).toContain('workload');
  });

  test('signals (revocation marks, SET ids) with two workers are refused', () => {
    const [p] = problemsAt(`${BASE}${NO_DPOP}workers: 2\nsignals:\n  transmitters:\n    - issuer: https://idp.example.com\n      delivery: { method: push, path: /ssf/events, authorization: { fromEnv: PUSH_AUTH } }\n`, 'workers');
    expect(p?.message).toContain('signals');
  });

  test('with shared state, DPoP, workload proofs and signals load with two workers', () => {
    const redis = 'state:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:6379\naudit:\n  sink: file\n  file: audit.jsonl\n';
    const signals = 'signals:\n  transmitters:\n    - issuer: https://idp.example.com\n      delivery: { method: push, listener: main, path: /ssf/events, authorization: { fromEnv: PUSH_AUTH } }\n';
    expect(parse(`${BASE}${redis}workers: 2\n${signals}`).config.workers).toBe(2);
  });

  test('endpoints of the admin listener that act on the revocation list (SSF push there, admin.revoke) are refused with two workers: the primary holds no list', () => {
    const redis = 'state:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:6379\naudit:\n  sink: file\n  file: audit.jsonl\n';
    const signals = 'signals:\n  transmitters:\n    - issuer: https://idp.example.com\n      delivery: { method: push, path: /ssf/events, authorization: { fromEnv: PUSH_AUTH } }\n';
    const [push] = problemsAt(`${BASE}${redis}workers: 2\n${signals}`, 'signals.transmitters[0].delivery.listener');
    expect(push?.fix).toContain('delivery.listener: main');
    const [revoke] = problemsAt(`${BASE}${redis}workers: 2\nsignals: {}\nadmin:\n  revoke:\n    token: { fromEnv: PUSH_AUTH }\n`, 'admin.revoke');
    expect(revoke?.fix).toContain('workers: 1');
  });

  test('audit records on stdout (the default) from two workers are refused (they would tear on one pipe)', () => {
    const [p] = problemsAt(`${BASE}oauth:\n  dpop:\n    mode: disabled\nworkers: 2\n`, 'audit.sink');
    expect(p?.message).toContain('"stdout"');
    expect(p?.fix).toContain('audit.sink: file');
  });

  test('workers must be a whole number from 1, or auto', () => {
    for (const value of ['0', 'many', '1.5']) {
      const found = problemsAt(`${BASE}workers: ${value}\n`, 'workers');
      expect(found, JSON.stringify(found)).toHaveLength(1);
      expect(found[0]).toMatchObject({ line: 7, fix: 'write a whole number from 1 to 256, or auto (one per CPU)' });
    }
  });
});

test("each worker's audit file: the number before the extension; unchanged for one process", () => {
  expect(workerFile('/var/log/agentward/audit.jsonl', 2)).toBe('/var/log/agentward/audit.w2.jsonl');
  expect(workerFile('/var/log/agentward/audit', 1)).toBe('/var/log/agentward/audit.w1');
  expect(workerFile('/var/log/agentward/audit.jsonl', undefined)).toBe('/var/log/agentward/audit.jsonl');
});

test('a worker that keeps dying young is restarted later each time, at most every 30 s', () => {
  expect([0, 1, 2, 3, 10].map(restartDelayMs)).toEqual([0, 500, 1000, 2000, 30_000]);
});
