/**
 * The `signals` and `admin.revoke` sections (docs/signals.md): what each delivery method needs is
 * required, what belongs to the other is refused, push paths do not collide, secrets resolve.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseConfig, relaxations, ConfigError, type ConfigProblem } from '../../src/config/load.ts';

const POLICIES = join(resolve(import.meta.dirname, '../..'), 'policies');
const BASE = `upstream:
  url: http://127.0.0.1:3000
resource:
  id: https://tools.example.com/mcp
policy:
  source: ${POLICIES}
`;

const file = () => join(mkdtempSync(join(tmpdir(), 'agentward-signals-')), 'agentward.yaml');

function problems(text: string, env: NodeJS.ProcessEnv = {}): readonly ConfigProblem[] {
  try {
    parseConfig(text, file(), env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('the config loaded');
}

describe('signals configuration', () => {
  test('a push and a poll transmitter load, with their secrets resolved and defaults applied', () => {
    const loaded = parseConfig(
      `${BASE}admin:
  revoke:
    token: { fromEnv: ADMIN_TOKEN }
signals:
  transmitters:
    - issuer: https://idp.example.com
      delivery: { method: push, path: /ssf/events, authorization: { fromEnv: PUSH_AUTH } }
    - issuer: https://risc.example.com
      transmitterAuthorization: { value: Bearer t }
      delivery: { method: poll }
`,
      file(),
      { ADMIN_TOKEN: 'a', PUSH_AUTH: 'Bearer p' },
    );
    expect(loaded.secrets.get('admin.revoke.token')).toBe('a');
    expect(loaded.secrets.get('signals.transmitters[0].delivery.authorization')).toBe('Bearer p');
    expect(loaded.secrets.get('signals.transmitters[1].transmitterAuthorization')).toBe('Bearer t');
    expect(loaded.config.signals).toMatchObject({ maxTokenLifetime: '24h', maxMarks: 100000, maxSetAge: '1h' });
    expect(loaded.config.signals!.transmitters[1]!.delivery).toMatchObject({ interval: '30s', maxEvents: 100 });
    expect(loaded.config.admin.revoke!.path).toBe('/revoke');
  });

  test('push needs a path and the Authorization value; poll needs transmitterAuthorization and refuses push fields', () => {
    const found = problems(`${BASE}signals:
  transmitters:
    - issuer: https://idp.example.com
      delivery: { method: push }
    - issuer: https://risc.example.com
      delivery: { method: poll, path: /x }
`);
    expect(found.map((p) => p.path)).toEqual(
      expect.arrayContaining(['signals.transmitters[0].delivery.path', 'signals.transmitters[0].delivery.authorization', 'signals.transmitters[1].transmitterAuthorization', 'signals.transmitters[1].delivery.path']),
    );
  });

  test('two push paths on one listener, or a push path on /readyz, are refused', () => {
    const found = problems(`${BASE}signals:
  transmitters:
    - issuer: https://a.example.com
      delivery: { method: push, path: /readyz, authorization: { value: x } }
    - issuer: https://b.example.com
      delivery: { method: push, path: /ssf, listener: main, authorization: { value: x } }
    - issuer: https://c.example.com
      delivery: { method: push, path: /ssf, listener: main, authorization: { value: x } }
`);
    expect(found.map((p) => p.path)).toEqual(['signals.transmitters[0].delivery.path', 'signals.transmitters[2].delivery.path']);
  });

  test('admin.revoke needs its token and a signals section', () => {
    const found = problems(`${BASE}admin:
  revoke: {}
`);
    expect(found.map((p) => p.path)).toEqual(expect.arrayContaining(['admin.revoke', 'admin.revoke.token']));
  });

  test('a typo in a transmitter is an error, not ignored', () => {
    const found = problems(`${BASE}signals:
  transmitters:
    - issuer: https://idp.example.com
      audiance: x
      delivery: { method: push, path: /ssf, authorization: { value: x } }
`);
    expect(found.some((p) => p.path.startsWith('signals.transmitters[0]'))).toBe(true);
  });

  test('a transmitter over plain http off the host is named as a relaxation', () => {
    const loaded = parseConfig(
      `${BASE}signals:
  transmitters:
    - issuer: http://idp.example.com
      delivery: { method: push, path: /ssf, authorization: { value: x } }
`,
      file(),
    );
    expect(relaxations(loaded.config).join('\n')).toContain('signals.transmitters[0].issuer uses plain http');
  });
});
