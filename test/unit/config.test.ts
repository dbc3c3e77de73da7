/**
 * The config loader (conventions §7, docs/configuration.md): strict (unknown keys are errors with a "did you
 * mean"), every problem reported together with its YAML path, line and a fix, defaults from one
 * place, secrets resolved at load, the result frozen. Checking touches no network.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cli } from '../helpers/cli.ts';
import { parseConfig, loadConfig, relaxations, ConfigError, type ConfigProblem, type LoadedConfig } from '../../src/config/load.ts';
import { checkFiles } from '../../src/app/file-checks.ts';
import { readSigningKey } from '../../src/credentials/txn-mint.ts';
import { effectiveProfile } from '../../src/identity/issuer-profiles.ts';
import { ASYMMETRIC_ALGORITHMS } from '../../src/jose/algorithms.ts';

const REPO = resolve(import.meta.dirname, '../..');
const POLICIES = join(REPO, 'policies');

/** The smallest valid file: the three sections without defaults. */
const MINIMAL = `upstream:
  url: http://127.0.0.1:3000
resource:
  id: https://tools.example.com/mcp
policy:
  source: ${POLICIES}
`;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'agentward-config-'));
}

function parse(text: string, env: NodeJS.ProcessEnv = {}, file = join(tempDir(), 'agentward.yaml')): LoadedConfig {
  return parseConfig(text, file, env);
}

/** The problems a text produces; fails the test if it loads. */
function problems(text: string, env: NodeJS.ProcessEnv = {}, file?: string): readonly ConfigProblem[] {
  let caught: unknown;
  try {
    parse(text, env, file);
  } catch (err) {
    caught = err;
  }
  expect(caught, 'the config was accepted').toBeInstanceOf(ConfigError);
  expect((caught as ConfigError).code).toBe('ERR_CONFIG_INVALID');
  return (caught as ConfigError).problems;
}

/** The one problem a text produces. */
function problem(text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem {
  const all = problems(text, env);
  expect(all, JSON.stringify(all)).toHaveLength(1);
  return all[0]!;
}

/** MINIMAL plus extra sections (appended, so line numbers below count from line 7). */
function withExtra(extra: string): string {
  return MINIMAL + extra;
}

/** Three mistakes, each on a known line: a bad duration (3), an unknown key (6), resource.id missing (resource block at 7-8). */
const THREE_MISTAKES = `listen:
  address: 127.0.0.1:8080
  requestTimeout: 30 seconds
upstream:
  url: http://127.0.0.1:3000
  timout: 5s
resource:
  name: tools
policy:
  source: ${POLICIES}
`;

describe('defaults', () => {
  test('a minimal valid config gets every default', () => {
    const { config, file, baseDir } = parse(MINIMAL, {}, '/srv/agentward/agentward.yaml');
    expect(file).toBe('/srv/agentward/agentward.yaml');
    expect(baseDir).toBe('/srv/agentward');
    expect(config.listen).toEqual({ address: '0.0.0.0:8080', maxHeaderBytes: 16384, maxBodyBytes: 1048576, requestTimeout: '60s', shutdownTimeout: '15s', maxInFlight: 512, maxQueued: 512, queueTimeout: '1s' });
    expect(config.admin.address).toBe('127.0.0.1:9901');
    expect(config.upstream).toEqual({ url: 'http://127.0.0.1:3000', timeout: '30s', connectTimeout: '5s', maxSockets: 256 });
    expect(config.oauth).toEqual({
      issuers: [],
      requireToken: true,
      anonymous: 'refuse',
      clockSkew: '30s',
      maxDelegationDepth: 4,
      tokenCacheSize: 10000,
      dpop: { mode: 'allowed', algorithms: ['ES256', 'EdDSA', 'PS256', 'RS256'], maxAge: '60s', nonce: { enabled: false, lifetime: '5m' }, replayCacheSize: 200000 },
      keys: { maxAge: '5m', cooldown: '5s', timeout: '2s' },
    });
    expect(config.policy).toEqual({
      source: POLICIES,
      entrypoint: 'agentward/decision',
      mode: 'enforce',
      watch: true,
      maxMemoryBytes: 134217728,
      exposeReason: false,
      poll: { interval: '30s', timeout: '10s', maxBytes: 33554432 },
    });
    expect(config.forward).toEqual({ stripCredentials: true, identityHeaders: {}, requestIdHeader: 'x-request-id', methodOverride: 'reject' });
    expect(config.audit).toEqual({ sink: 'stdout', hashChain: true, fsync: 'deny', fsyncInterval: '1s' });
    expect(config.log.level).toBe('info');
  });

  test('issuer defaults: discovery auto, asymmetric algorithms, the rfc9068 profile and its claims', () => {
    const { config } = parse(withExtra('oauth:\n  issuers:\n    - issuer: https://as.example.com\n'));
    expect(config.oauth.issuers).toEqual([
      {
        issuer: 'https://as.example.com',
        discovery: 'auto',
        algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
        profile: 'rfc9068',
      },
    ]);
    // The profile supplies the rest (identity/issuer-profiles.ts): strict RFC 9068.
    const profile = effectiveProfile(config.oauth.issuers[0]!);
    expect(profile.requiredClaims).toEqual(['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti']);
    expect(profile).toMatchObject({ typ: ['at+jwt'], typRequired: true, clientIdClaims: ['client_id'], scopeClaims: ['scope'], subjectClaim: 'sub', audienceClaims: ['aud'] });
  });

  test('defaults are not shared between two loads', () => {
    const a = parse(withExtra('oauth:\n  issuers:\n    - issuer: https://as.example.com\n')).config;
    const b = parse(withExtra('oauth:\n  issuers:\n    - issuer: https://as.example.com\n')).config;
    expect(a.oauth.issuers[0]!.algorithms).not.toBe(b.oauth.issuers[0]!.algorithms);
  });

  test('the result is deeply frozen', () => {
    const loaded = parse(withExtra('oauth:\n  issuers:\n    - issuer: https://as.example.com\nforward:\n  identityHeaders:\n    X-Agent-Id: subject.clientId\n'));
    const walk = (value: unknown, path: string): void => {
      if (value === null || typeof value !== 'object') return;
      expect(Object.isFrozen(value), path).toBe(true);
      for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`);
    };
    expect(Object.isFrozen(loaded)).toBe(true);
    walk(loaded.config, 'config');
    expect(() => (loaded.config.oauth.issuers[0]!.algorithms as string[]).push('HS256')).toThrow(TypeError);
    expect(() => {
      (loaded.config.upstream as { url: string }).url = 'http://evil.example';
    }).toThrow(TypeError);
  });
});

describe('unknown keys', () => {
  test('at the top level: path, line and a "did you mean"', () => {
    const p = problem(withExtra('upsteam:\n  url: http://127.0.0.1:3000\n'));
    expect(p).toMatchObject({ path: 'upsteam', line: 7, message: 'unknown key "upsteam"' });
    expect(p.fix).toContain('did you mean "upstream"?');
  });

  test('nested in an array item: oauth.issuers[0].audiance', () => {
    const p = problem(withExtra('oauth:\n  issuers:\n    - issuer: https://as.example.com\n      audiance: [https://tools.example.com/mcp]\n'));
    expect(p).toMatchObject({ path: 'oauth.issuers[0].audiance', line: 10, message: 'unknown key "audiance"' });
    expect(p.fix).toContain('did you mean "audiences"?');
  });

  test('nothing close: the fix lists the known keys', () => {
    const p = problem(withExtra('log:\n  level: info\n  colour: true\n'));
    expect(p).toMatchObject({ path: 'log.colour', line: 9 });
    expect(p.fix).toBe('remove it; known keys here: level');
  });
});

describe('every problem at once', () => {
  test('a schema problem and a check the schema cannot make are reported together', () => {
    const all = problems(`upstream:
  url: http://127.0.0.1:3000/with/path
  timout: 5s
resource:
  id: https://tools.example.com/mcp#frag
policy:
  source: ./does-not-exist
`);
    expect(all.map((p) => [p.path, p.line])).toEqual([
      ['upstream.url', 2],
      ['upstream.timout', 3],
      ['resource.id', 5],
      ['policy.source', 7],
    ]);
  });

  test('three mistakes → one ConfigError listing all three with paths and lines', () => {
    const all = problems(THREE_MISTAKES);
    expect(all.map((p) => [p.path, p.line])).toEqual([
      ['listen.requestTimeout', 3],
      ['upstream.timout', 6],
      ['resource.id', 8],
    ]);
    expect(all[0]!.message).toBe('is not a duration above zero');
    expect(all[1]!.fix).toContain('did you mean "timeout"?');
    expect(all[2]!.message).toBe('is required');
  });

  test('the message names the file, the count, and each path with its line', () => {
    const file = join(tempDir(), 'agentward.yaml');
    let message = '';
    try {
      parse(THREE_MISTAKES, {}, file);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n')[0]).toBe(`${file}: 3 problems`);
    expect(message).toContain(`${file}:3  listen.requestTimeout: is not a duration`);
    expect(message).toContain(`${file}:6  upstream.timout: unknown key "timout"`);
    expect(message).toContain(`${file}:8  resource.id: is required`);
  });
});

describe('YAML', () => {
  test('a syntax error names its line', () => {
    const p = problem('upstream:\n  url: http://127.0.0.1:3000\nresource:\n\tid: https://tools.example.com/mcp\n');
    expect(p).toMatchObject({ path: '', line: 4 });
    expect(p.message).toMatch(/^YAML syntax: .*[Tt]ab/);
  });

  test('a duplicate key is an error at the second occurrence', () => {
    const p = problem('upstream:\n  url: http://127.0.0.1:3000\n  url: http://127.0.0.1:3001\n');
    expect(p).toMatchObject({ path: '', line: 3 });
    expect(p.message).toContain('unique');
  });

  test('a document that is not a mapping', () => {
    expect(problem('- upstream\n- resource\n')).toMatchObject({ path: '', line: 1, message: 'the file is not a YAML mapping' });
  });
});

describe('types and values', () => {
  test.each([
    ['a string for an integer', 'listen:\n  maxHeaderBytes: big\n', 'listen.maxHeaderBytes', 8, 'must be an integer'],
    ['a number for a string', 'forward:\n  requestIdHeader: 3\n', 'forward.requestIdHeader', 8, 'must be a string'],
    ['a mapping for an array', 'oauth:\n  issuers:\n    issuer: https://as.example.com\n', 'oauth.issuers', 9, 'must be an array'],
    ['a string for a boolean', 'forward:\n  stripCredentials: "no"\n', 'forward.stripCredentials', 8, 'must be a boolean'],
    ['a string for a section', 'listen: 0.0.0.0:8080\n', 'listen', 7, 'must be an object'],
    ['a bad duration', 'oauth:\n  clockSkew: 30 seconds\n', 'oauth.clockSkew', 8, 'is not a duration'],
    ['a bad address', 'listen:\n  address: localhost\n', 'listen.address', 8, 'is not a host:port address'],
    ['a number below the minimum', 'listen:\n  maxHeaderBytes: 10\n', 'listen.maxHeaderBytes', 8, 'must be at least 1024'],
    ['a number above the maximum', 'oauth:\n  maxDelegationDepth: 33\n', 'oauth.maxDelegationDepth', 8, 'must be at most 32'],
  ])('%s', (_name, extra, path, line, message) => {
    expect(problem(withExtra(extra))).toMatchObject({ path, line, message });
  });

  test('enum: a value outside the list names the allowed ones', () => {
    const p = problem(withExtra('log:\n  level: verbose\n'));
    expect(p).toMatchObject({ path: 'log.level', line: 8, message: '"verbose" is not an allowed value' });
    expect(p.fix).toBe('use one of: fatal, error, warn, info, debug, trace, silent');
  });

  test('enum: HS256 is not an algorithm an issuer may list', () => {
    const p = problem(withExtra('oauth:\n  issuers:\n    - issuer: https://as.example.com\n      algorithms: [ES256, HS256]\n'));
    expect(p).toMatchObject({ path: 'oauth.issuers[0].algorithms[1]', line: 10, message: '"HS256" is not an allowed value' });
  });
});

describe('secrets', () => {
  const hashKey = (secret: string) => withExtra(`audit:\n  hashKey:\n${secret}`);

  test('value', () => {
    expect(parse(hashKey('    value: s3cret\n')).secrets.get('audit.hashKey')).toBe('s3cret');
  });

  test('fromEnv, set', () => {
    expect(parse(hashKey('    fromEnv: AUDIT_KEY\n'), { AUDIT_KEY: 'from-env' }).secrets.get('audit.hashKey')).toBe('from-env');
  });

  test('fromEnv, unset or empty → problem naming the variable', () => {
    for (const env of [{}, { AUDIT_KEY: '' }]) {
      const p = problem(hashKey('    fromEnv: AUDIT_KEY\n'), env);
      expect(p).toMatchObject({ path: 'audit.hashKey.fromEnv', line: 9, message: 'environment variable AUDIT_KEY is not set' });
    }
  });

  test('fromFile, relative to the config file, trailing newline removed', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'audit.key'), 'from-file\n');
    const loaded = parse(hashKey('    fromFile: audit.key\n'), {}, join(dir, 'agentward.yaml'));
    expect(loaded.secrets.get('audit.hashKey')).toBe('from-file');
  });

  test('fromFile, missing → problem', () => {
    const dir = tempDir();
    const all = problems(hashKey('    fromFile: missing.key\n'), {}, join(dir, 'agentward.yaml'));
    expect(all).toEqual([{ path: 'audit.hashKey.fromFile', line: 9, message: `${join(dir, 'missing.key')} cannot be read`, fix: expect.any(String) }]);
  });

  test('fromFile, empty → problem', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'empty.key'), '\n');
    expect(problems(hashKey('    fromFile: empty.key\n'), {}, join(dir, 'agentward.yaml'))[0]).toMatchObject({ path: 'audit.hashKey.fromFile', message: expect.stringContaining('is empty') });
  });

  test('two sources at once → problem', () => {
    const p = problem(hashKey('    value: a\n    fromEnv: AUDIT_KEY\n'), { AUDIT_KEY: 'b' });
    expect(p).toMatchObject({ path: 'audit.hashKey', line: 9, message: 'must name exactly one source' });
  });

  test('no source → problem', () => {
    expect(problem(withExtra('audit:\n  hashKey: {}\n'))).toMatchObject({ path: 'audit.hashKey', message: 'must name exactly one source' });
  });
});

describe('checks beyond the schema', () => {
  test('policy.source that does not exist', () => {
    const p = problem(MINIMAL.replace(POLICIES, './no-such-policies'));
    expect(p).toMatchObject({ path: 'policy.source', line: 6 });
    expect(p.message).toContain('"./no-such-policies" does not exist');
  });

  test('policy.source that is a plain file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'policy.rego'), 'package x\n');
    const p = problems(MINIMAL.replace(POLICIES, 'policy.rego'), {}, join(dir, 'agentward.yaml'))[0]!;
    expect(p).toMatchObject({ path: 'policy.source', message: expect.stringContaining('is neither a folder nor a .tar.gz bundle nor a .wasm file') });
  });

  test('identityHeaders to an unknown input field', () => {
    const p = problem(withExtra('forward:\n  identityHeaders:\n    X-Agent-Id: agent.name\n'));
    expect(p).toMatchObject({ path: 'forward.identityHeaders.X-Agent-Id', line: 9, message: '"agent.name" is not a policy input field that can be forwarded' });
    expect(p.fix).toContain('subject.clientId');
  });

  test.each(['Authorization', 'DPoP', 'Host', 'Content-Length'])('identityHeaders to the reserved header %s', (name) => {
    const p = problem(withExtra(`forward:\n  identityHeaders:\n    ${name}: subject.sub\n`));
    expect(p).toMatchObject({ path: `forward.identityHeaders.${name}`, line: 9, message: `"${name}" cannot be an identity header` });
  });

  test('identityHeaders with two names differing only in case', () => {
    const p = problem(withExtra('forward:\n  identityHeaders:\n    X-Agent-Id: subject.clientId\n    x-agent-id: subject.sub\n'));
    expect(p).toMatchObject({ path: 'forward.identityHeaders.x-agent-id', line: 10 });
    expect(p.message).toContain('listed twice');
  });

  test.each([
    ['ftp://as.example.com', 'is not an http(s) URL'],
    ['as.example.com', 'is not an absolute URL'],
    ['https://user:pw@as.example.com', 'has a fragment or user info'],
  ])('issuer %s', (issuer, message) => {
    const p = problem(withExtra(`oauth:\n  issuers:\n    - issuer: ${issuer}\n`));
    expect(p).toMatchObject({ path: 'oauth.issuers[0].issuer', line: 9 });
    expect(p.message).toContain(message);
  });

  test('the same issuer twice', () => {
    const p = problem(withExtra('oauth:\n  issuers:\n    - issuer: https://as.example.com\n    - issuer: https://as.example.com\n'));
    expect(p).toMatchObject({ path: 'oauth.issuers[1].issuer', line: 10 });
    expect(p.message).toContain('listed twice');
  });

  test('resource.id with a fragment (RFC 8707 §2)', () => {
    const p = problem(MINIMAL.replace('https://tools.example.com/mcp', 'https://tools.example.com/mcp#frag'));
    expect(p).toMatchObject({ path: 'resource.id', line: 4, message: 'must not have a fragment (RFC 8707 §2)' });
  });

  test('upstream.url with a path', () => {
    const p = problem(MINIMAL.replace('http://127.0.0.1:3000', 'http://127.0.0.1:3000/api'));
    expect(p).toMatchObject({ path: 'upstream.url', line: 2 });
    expect(p.message).toContain('has a path');
  });

  test('audit sink file without audit.file → problem pointing into the audit block', () => {
    const p = problem(withExtra('audit:\n  sink: file\n'));
    expect(p).toMatchObject({ path: 'audit.file', message: 'is required when audit.sink is "file"' });
    // Like a schema `required` problem, it should carry the line of the block it belongs in.
    expect(p.line).toBe(8);
  });

  test('semantic problems are reported together', () => {
    const all = problems(
      MINIMAL.replace('https://tools.example.com/mcp', 'https://tools.example.com/mcp#x').replace(POLICIES, './nope') +
        'oauth:\n  issuers:\n    - issuer: ftp://as.example.com\n',
    );
    expect(all.map((p) => p.path)).toEqual(['resource.id', 'policy.source', 'oauth.issuers[0].issuer']);
  });
});

describe('workload', () => {
  const domains = (entries: string) => withExtra(`workload:\n  trustDomains:\n${entries}`);

  test('BND-N06: a trust domain listed twice is refused (bundles of one domain are never merged)', () => {
    const p = problem(domains('    - name: agents.example.com\n      bundle: { url: https://a.example/b }\n    - name: agents.example.com\n      bundle: { url: https://c.example/d }\n'));
    expect(p).toMatchObject({ path: 'workload.trustDomains[1].name', message: 'trust domain "agents.example.com" is listed twice' });
  });

  test('a bundle needs exactly one of file and url; a file must exist; an endpoint must be https off loopback', () => {
    const all = problems(
      domains(
        '    - name: a.example\n      bundle: {}\n' +
          '    - name: b.example\n      bundle: { file: ./missing.json, url: https://b.example/bundle }\n' +
          '    - name: c.example\n      bundle: { url: http://c.example/bundle }\n',
      ),
    );
    expect(all.map((p) => [p.path, p.message])).toEqual([
      ['workload.trustDomains[0].bundle', 'has neither file nor url'],
      ['workload.trustDomains[1].bundle', 'has both file and url'],
      ['workload.trustDomains[1].bundle.file', expect.stringContaining('"./missing.json" is not a file') as unknown as string],
      ['workload.trustDomains[2].bundle.url', 'uses plain http to a non-loopback host'],
    ]);
  });

  test('trust domain names are SPIFFE trust domain names', () => {
    const p = problem(domains('    - name: Agents.Example.com:8443\n      bundle: { url: https://a.example/b }\n'));
    expect(p).toMatchObject({ path: 'workload.trustDomains[0].name', fix: expect.stringContaining('lower-case') as unknown as string });
  });

  test('workload.witIssuers: exactly one of jwksUri and jwksFile, the file exists, https off loopback, listed once, trust domain names', () => {
    const all = problems(
      withExtra(
        'workload:\n  witIssuers:\n' +
          '    - { issuer: https://a.example, trustDomains: [a.example] }\n' +
          '    - { issuer: https://b.example, jwksUri: https://b.example/jwks, jwksFile: ./missing.json, trustDomains: [b.example] }\n' +
          '    - { issuer: https://c.example, jwksUri: http://c.example/jwks, trustDomains: [C.Example] }\n' +
          '    - { issuer: https://c.example, jwksUri: https://c.example/jwks, trustDomains: [c.example] }\n',
      ),
    );
    expect(all.map((p) => [p.path, p.message])).toEqual([
      ['workload.witIssuers[0]', 'has neither jwksUri nor jwksFile'],
      ['workload.witIssuers[1]', 'has both jwksUri and jwksFile'],
      ['workload.witIssuers[1].jwksFile', expect.stringContaining('"./missing.json" is not a file') as unknown as string],
      ['workload.witIssuers[2].jwksUri', 'uses plain http to a non-loopback host'],
      ['workload.witIssuers[2].trustDomains[0]', '"C.Example" is not a trust domain name'],
      ['workload.witIssuers[3].issuer', 'WIT issuer "https://c.example" is listed twice'],
    ]);
  });

  test('a workload section needs a trust domain or a WIT issuer; an issuer alone will do, and its domains count for binding.clients', () => {
    expect(problem(withExtra('workload:\n  require: true\n'))).toMatchObject({ path: 'workload.trustDomains', message: 'is empty, and so is witIssuers' });
    const { config } = parse(
      withExtra('workload:\n  witIssuers:\n    - { issuer: https://wit.example, jwksUri: https://wit.example/jwks, trustDomains: [agents.example.com] }\n  binding:\n    clients: { bot: wimse://agents.example.com/bot }\n'),
    );
    expect(config.workload!.trustDomains).toEqual([]);
    expect(config.workload!.witIssuers[0]).toMatchObject({ algorithms: [...ASYMMETRIC_ALGORITHMS], maxLifetime: '24h' });
  });

  test('binding.clients values must be identifiers of configured trust domains', () => {
    const p = problem(domains('    - name: agents.example.com\n      bundle: { url: https://a.example/b }\n  binding:\n    rule: client_id\n    clients:\n      research-bot: spiffe://elsewhere.example/bot\n'));
    expect(p).toMatchObject({ path: 'workload.binding.clients.research-bot' });
    expect(p.message).toContain('not a workload identifier of a configured trust domain');
  });

  test('defaults: no requirement, no binding rule, JWT-SVIDs and X.509-SVIDs on', () => {
    const { config } = parse(domains('    - name: agents.example.com\n      bundle: { url: https://a.example/b }\n'));
    expect(config.workload).toMatchObject({
      require: false,
      wimse: { audiences: [], maxProofLifetime: '5m', strictAudience: false, contextTokenHeaders: [], replayCacheSize: 200000 },
      jwtSvid: { enabled: true, requireKid: true },
      x509Svid: { enabled: true },
      binding: { rule: 'none', clients: {} },
    });
    expect(config.workload!.trustDomains[0]).toMatchObject({ algorithms: [...ASYMMETRIC_ALGORITHMS], witProfile: 'wimse', maxLifetime: '24h', bundle: { maxStale: '1h', timeout: '5s' } });
  });
});

describe('listen.trustedProxies', () => {
  function proxies(section: string, extra = ''): string {
    return `listen:\n${extra}  trustedProxies:\n${section}${MINIMAL}`;
  }
  const caFile = (): string => {
    const file = join(tempDir(), 'agents-ca.pem');
    writeFileSync(file, 'not read by the loader');
    return file;
  };

  test('addresses with a client CA file load, with their defaults', () => {
    const { config } = parse(proxies(`    addresses: [10.20.0.0/16, "fd00::/8", 127.0.0.1]\n    clientCertHeaders: true\n    clientCaFile: ${caFile()}\n`));
    expect(config.listen.trustedProxies).toMatchObject({ addresses: ['10.20.0.0/16', 'fd00::/8', '127.0.0.1'], peerNames: [], clientCertHeaders: true });
    // Trust by network location is named at startup (conventions §8).
    expect(relaxations(config)).toContain('listen.trustedProxies trusts whoever connects from 10.20.0.0/16, fd00::/8, 127.0.0.1 to forward client certificates (Client-Cert): make sure only the ingress can');
  });

  test.each([['10.0.0.0/33'], ['10.0.0/8'], ['fd00::/129'], ['localhost'], ['10.0.0.0/8/1'], ['10.0.0.0/08']])('%s is not an address or CIDR', (entry) => {
    const p = problem(proxies(`    addresses: ["${entry}"]\n    clientCertHeaders: true\n    clientCaFile: ${caFile()}\n`));
    expect(p.path).toBe('listen.trustedProxies.addresses[0]');
  });

  test('no peer, no purpose, no CA: each reported', () => {
    const all = problems(proxies('    clientCertHeaders: false\n'));
    expect(all.map((p) => p.path)).toEqual(['listen.trustedProxies', 'listen.trustedProxies.clientCertHeaders', 'listen.trustedProxies.clientCaFile']);
  });

  test('peerNames needs a listener that asks for client certificates', () => {
    const p = problem(proxies(`    peerNames: [spiffe://infra.example.com/ingress]\n    clientCertHeaders: true\n    clientCaFile: ${caFile()}\n`));
    expect(p.path).toBe('listen.trustedProxies.peerNames');
  });

  test('a clientCaFile that is not a file', () => {
    const p = problem(proxies('    addresses: [10.0.0.0/8]\n    clientCertHeaders: true\n    clientCaFile: /nonexistent/ca.pem\n'));
    expect(p.path).toBe('listen.trustedProxies.clientCaFile');
  });
});

describe('mcp and a2a paths', () => {
  test('a path is listed once, under one protocol; an entry may carry its own settings', () => {
    const all = problems(withExtra('mcp:\n  paths: [/mcp, { path: /mcp-raw, filterLists: false }, /mcp]\na2a:\n  paths: [/mcp-raw]\n'));
    expect(all.map((p) => [p.path, p.message])).toEqual([
      ['mcp.paths[2]', '"/mcp" is also in mcp.paths'],
      ['a2a.paths[0]', '"/mcp-raw" is also in mcp.paths'],
    ]);
    const { config } = parse(withExtra('mcp:\n  paths: [/mcp, { path: /raw, maxBodyBytes: 10 }]\n'));
    expect(config.mcp).toEqual({ paths: ['/mcp', { path: '/raw', maxBodyBytes: 10 }], maxBodyBytes: 1048576, filterLists: true });
  });
});

describe('relaxations (conventions §8: loosening is named)', () => {
  test('the defaults loosen nothing', () => {
    expect(relaxations(parse(withExtra('oauth:\n  issuers:\n    - issuer: http://127.0.0.1:9000\n')).config)).toEqual([]);
  });

  test('each loosened setting is named once', () => {
    const text = `upstream:
  url: http://127.0.0.1:3000
resource:
  id: https://tools.example.com/mcp
policy:
  source: ${POLICIES}
  exposeReason: true
forward:
  stripCredentials: false
oauth:
  clockSkew: 10m
  issuers:
    - issuer: http://as.internal.example
      jwksUri: http://as.internal.example/jwks
      requiredClaims: [iss, exp, aud, sub]
`;
    const warnings = relaxations(parse(text).config);
    expect(warnings).toHaveLength(6);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^forward\.stripCredentials is off/),
        expect.stringMatching(/^policy\.exposeReason is on/),
        expect.stringMatching(/^oauth\.clockSkew is 10m/),
        'oauth.issuers[0].requiredClaims leaves out client_id, iat, jti (RFC 9068 §2.2 requires them)',
        expect.stringMatching(/^oauth\.issuers\[0\]\.issuer uses plain http to a non-loopback host/),
        expect.stringMatching(/^oauth\.issuers\[0\]\.jwksUri uses plain http to a non-loopback host/),
      ]),
    );
  });

  test('oauth.anonymous: policy and forward.methodOverride: pass are named; strip is not a relaxation', () => {
    const warnings = relaxations(parse(withExtra('oauth:\n  anonymous: policy\nforward:\n  methodOverride: pass\n')).config);
    expect(warnings).toEqual([expect.stringMatching(/^forward\.methodOverride is pass: /), expect.stringMatching(/^oauth\.anonymous is policy: requests that present no credential reach the policy/)]);
    expect(relaxations(parse(withExtra('forward:\n  methodOverride: strip\n')).config)).toEqual([]);
  });

  test('the defaults: oauth.anonymous refuse, forward.methodOverride reject; other values are errors', () => {
    const { config } = parse(MINIMAL);
    expect(config.oauth.anonymous).toBe('refuse');
    expect(config.forward.methodOverride).toBe('reject');
    const all = problems(withExtra('oauth:\n  anonymous: allow\nforward:\n  methodOverride: ignore\n'));
    expect(all.map((p) => p.path)).toEqual(expect.arrayContaining(['oauth.anonymous', 'forward.methodOverride']));
  });

  test('a clock skew of exactly 5m is not yet a relaxation', () => {
    expect(relaxations(parse(withExtra('oauth:\n  clockSkew: 5m\n')).config)).toEqual([]);
  });

  test.each(['http://localhost:9000', 'http://127.0.0.1:9000', 'http://[::1]:9000'])('plain http to loopback (%s) is not named', (issuer) => {
    expect(relaxations(parse(withExtra(`oauth:\n  issuers:\n    - issuer: "${issuer}"\n`)).config)).toEqual([]);
  });
});

describe('loadConfig', () => {
  test('reads the file and resolves relative paths against its folder', () => {
    const dir = tempDir();
    const file = join(dir, 'agentward.yaml');
    writeFileSync(file, MINIMAL);
    const loaded = loadConfig(file, {});
    expect(loaded.file).toBe(file);
    expect(loaded.baseDir).toBe(dir);
  });

  test('a missing file is one problem, not a crash', () => {
    const file = join(tempDir(), 'absent.yaml');
    let caught: unknown;
    try {
      loadConfig(file, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([{ path: '', message: 'the file does not exist', fix: expect.any(String) }]);
  });
});

describe('forward.txnToken', () => {
  const mint = (fields: string, extra = '') => withExtra(`${extra}forward:\n  txnToken:\n    keyFile: signing.pem\n    audience: trust-domain.example\n${fields}`);

  test('defaults: mint, ES256, 60s, an overlap of 5m, iss from resource.id at build time', () => {
    expect(parse(mint('')).config.forward.txnToken).toEqual({ mode: 'mint', keyFile: 'signing.pem', algorithm: 'ES256', audience: 'trust-domain.example', lifetime: '60s', rotationOverlap: '5m' });
  });

  test.each([
    ['a lifetime in milliseconds', '    lifetime: 1500ms\n', 'forward.txnToken.lifetime', 'is not a whole number of seconds'],
    ['a lifetime over 10 minutes', '    lifetime: 11m\n    rotationOverlap: 1h\n', 'forward.txnToken.lifetime', 'is longer than 10 minutes'],
    ['an overlap shorter than the lifetime', '    lifetime: 2m\n    rotationOverlap: 60s\n', 'forward.txnToken.rotationOverlap', 'is shorter than the lifetime'],
    ['pass-through-or-mint without txnTokens', '    mode: pass-through-or-mint\n', 'forward.txnToken.mode', 'needs a txnTokens section'],
    ['a misspelt key', '    audiance: x\n', 'forward.txnToken.audiance', 'audience'],
  ])('%s', (_name, fields, path, message) => {
    const p = problem(mint(fields));
    expect(p.path).toBe(path);
    expect(`${p.message} ${p.fix}`).toContain(message);
  });

  test('pass-through-or-mint: the audience must be the trust domain incoming Txn-Tokens are verified for', () => {
    const txn = 'txnTokens:\n  trustDomain: other.example\n  jwksUri: http://127.0.0.1:1/jwks\n';
    const p = problem(mint('    mode: pass-through-or-mint\n', txn));
    expect(p).toMatchObject({ path: 'forward.txnToken.audience', message: '"trust-domain.example" differs from txnTokens.trustDomain "other.example"' });
    expect(parse(mint('    mode: pass-through-or-mint\n', txn.replace('other.example', 'trust-domain.example'))).config.forward.txnToken?.mode).toBe('pass-through-or-mint');
  });

  test('the key file is read by the file checks (serve and check): a missing or unfitting key is a problem with its path', () => {
    const dir = tempDir();
    const loaded = parse(mint('    algorithm: RS256\n'), {}, join(dir, 'agentward.yaml'));
    expect(checkFiles(loaded)).toEqual([{ path: 'forward.txnToken.keyFile', message: expect.stringContaining('signing.pem cannot be read (ENOENT)'), fix: expect.stringContaining('signs RS256') }]);
    writeFileSync(join(dir, 'signing.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(checkFiles(loaded)[0]?.message).toContain('(EC P-256) that cannot sign RS256');
    expect(checkFiles(parse(mint(''), {}, join(dir, 'agentward.yaml')))).toEqual([]);
    expect(checkFiles(parse(mint('    mode: "off"\n'), {}, join(tempDir(), 'agentward.yaml')))).toEqual([]);
  });
});

describe('agentward check', () => {
  test('three mistakes → exit 1, stderr lists the three paths with their lines', async () => {
    const file = join(tempDir(), 'agentward.yaml');
    writeFileSync(file, THREE_MISTAKES);
    const { code, stdout, stderr } = await cli(['check', '--config', file]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain(`${file}: 3 problems`);
    expect(stderr).toContain(`${file}:3  listen.requestTimeout`);
    expect(stderr).toContain(`${file}:6  upstream.timout`);
    expect(stderr).toContain(`${file}:8  resource.id`);
  });

  test('a valid config with the repository policies → exit 0, OK and its relaxations', async () => {
    const dir = tempDir();
    const file = join(dir, 'agentward.yaml');
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    writeFileSync(join(dir, 'signing.pem'), key.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(file, withExtra('forward:\n  stripCredentials: false\n  txnToken:\n    keyFile: signing.pem\n    audience: trust-domain.example\n'));
    const { code, stdout, stderr } = await cli(['check', '--config', file]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe(`${file}: OK`);
    expect(stdout).toContain(`txnToken   mint ES256 kid ${readSigningKey(join(dir, 'signing.pem'), 'ES256').kid}, aud trust-domain.example, lifetime 60s`);
    expect(stdout).toContain('resource   https://tools.example.com/mcp');
    expect(stdout).toContain('entrypoint agentward/decision (enforce)');
    // A valid but loosened setting is still named.
    expect(stdout).toContain("  warning    forward.stripCredentials is off: the upstream receives the callers' credentials");
  }, 120_000);

  test('oauth.anonymous: policy is named by check as a warning', async () => {
    const file = join(tempDir(), 'agentward.yaml');
    writeFileSync(file, withExtra('oauth:\n  anonymous: policy\n'));
    const { code, stdout } = await cli(['check', '--config', file]);
    expect(code).toBe(0);
    expect(stdout).toContain('  warning    oauth.anonymous is policy: requests that present no credential reach the policy');
  }, 120_000);
});

describe('metrics and tracing', () => {
  test('defaults: metrics on with 100 tool labels and process metrics; no tracing', () => {
    const { config } = parse(MINIMAL);
    expect(config.metrics).toEqual({ enabled: true, mcpToolLabelLimit: 100, processMetrics: true });
    expect(config.tracing).toBeUndefined();
  });

  test('tracing: defaults filled in, each export header a secret resolved at load', () => {
    const loaded = parse(withExtra('tracing:\n  otlp:\n    endpoint: http://127.0.0.1:4318/v1/traces\n    headers:\n      authorization:\n        fromEnv: OTLP_AUTH\n'), { OTLP_AUTH: 'Bearer abc' });
    expect(loaded.config.tracing).toEqual({ serviceName: 'agentward', sampleRatio: 1, otlp: { endpoint: 'http://127.0.0.1:4318/v1/traces', headers: { authorization: { fromEnv: 'OTLP_AUTH' } }, timeout: '10s' } });
    expect(loaded.secrets.get('tracing.otlp.headers.authorization')).toBe('Bearer abc');
  });

  test('tracing: a header secret whose variable is unset, a bad endpoint, a ratio above 1 → every problem with its path', () => {
    const all = problems(withExtra('tracing:\n  sampleRatio: 2\n  otlp:\n    endpoint: grpc://collector:4317\n    headers:\n      x-api-key:\n        fromEnv: OTLP_KEY\n'));
    expect(all.map((p) => p.path).sort()).toEqual(['tracing.otlp.endpoint', 'tracing.otlp.headers.x-api-key.fromEnv', 'tracing.sampleRatio']);
  });

  test('tracing without otlp.endpoint, an unknown key → problems', () => {
    expect(problems(withExtra('tracing:\n  otlp: {}\n')).map((p) => p.path)).toEqual(['tracing.otlp.endpoint']);
    expect(problems(withExtra('metrics:\n  enable: false\n')).map((p) => p.path)).toEqual(['metrics.enable']);
  });
});

describe('state (docs/operations.md "Shared state")', () => {
  test('defaults to memory; redis with a URL, the password from a file, and the defaults of the section', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'redis.pw'), 's3cret\n');
    const loaded = parse(withExtra('state:\n  backend: redis\n  redis:\n    url: rediss://redis.internal:6380/2\n    username: agentward\n    password: { fromFile: redis.pw }\n'), {}, join(dir, 'agentward.yaml'));
    expect(loaded.config.state).toEqual({ backend: 'redis', redis: { url: 'rediss://redis.internal:6380/2', username: 'agentward', password: { fromFile: 'redis.pw' }, keyPrefix: 'agentward:', connectTimeout: '2s', commandTimeout: '500ms' } });
    expect(loaded.secrets.get('state.redis.password')).toBe('s3cret');
    expect(parse(MINIMAL).config.state).toEqual({ backend: 'memory' });
  });

  test('backend redis without its section, and a section with backend memory, are errors', () => {
    expect(problem(withExtra('state:\n  backend: redis\n'))).toMatchObject({ path: 'state.redis', message: 'is required with state.backend "redis"' });
    expect(problem(withExtra('state:\n  redis:\n    url: redis://127.0.0.1:6379\n'))).toMatchObject({ path: 'state.redis', message: 'is not used with state.backend "memory"' });
  });

  test('credentials in the URL, another scheme, and TLS settings with redis:// are errors', () => {
    expect(problem(withExtra('state:\n  backend: redis\n  redis:\n    url: redis://:pw@127.0.0.1:6379\n')).path).toBe('state.redis.url');
    expect(problem(withExtra('state:\n  backend: redis\n  redis:\n    url: http://127.0.0.1:6379\n')).path).toBe('state.redis.url');
    expect(problem(withExtra('state:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:6379\n    tls: { caFile: ca.pem }\n'))).toMatchObject({ path: 'state.redis.tls', message: 'needs a rediss:// url (TLS)' });
  });

  test('an unreadable Redis CA file is reported by the file checks', () => {
    const loaded = parse(withExtra('state:\n  backend: redis\n  redis:\n    url: rediss://127.0.0.1:6379\n    tls: { caFile: missing-ca.pem }\n'));
    expect(checkFiles(loaded)).toEqual([expect.objectContaining({ path: 'state.redis.tls.caFile', message: expect.stringContaining('cannot be read') })]);
  });

  test('plain redis:// to another host is named as a relaxation; loopback is not', () => {
    const remote = parse(withExtra('state:\n  backend: redis\n  redis:\n    url: redis://redis.internal:6379\n')).config;
    expect(relaxations(remote).some((r) => r.startsWith('state.redis.url uses plain redis://'))).toBe(true);
    const local = parse(withExtra('state:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:6379\n')).config;
    expect(relaxations(local).some((r) => r.startsWith('state.redis.url'))).toBe(false);
  });
});
