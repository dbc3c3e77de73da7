/**
 * `--help` and `-h` on every command of the real CLI (issue 13 item 4): the command's own usage
 * on stdout, exit 0, nothing run (no configuration is read, no policy compiled, no port opened).
 */
import { describe, expect, test } from 'vitest';
import { cli } from '../helpers/cli.ts';

const COMMANDS: [string[], string][] = [
  [['serve'], 'usage: agentward serve [--config FILE]'],
  [['check'], 'usage: agentward check [--config FILE]'],
  [['explain'], 'usage: agentward explain [--config FILE] --request FILE'],
  [['policy', 'build'], 'usage: agentward policy build [DIR]'],
  [['audit', 'verify'], 'usage: agentward audit verify FILE'],
  [['revoke'], 'usage: agentward revoke'],
];

describe('COMMAND --help / -h', () => {
  for (const [command, usage] of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      test(`agentward ${command.join(' ')} ${flag}: its own usage on stdout, exit 0`, async () => {
        // A config path that does not exist: help must not try to read it.
        const { code, stdout, stderr } = await cli([...command, flag], { AGENTWARD_CONFIG: '/nonexistent/agentward.yaml' });
        expect(stderr).toBe('');
        expect(code).toBe(0);
        expect(stdout.startsWith(usage)).toBe(true);
        expect(stdout).toContain('-h, --help');
      });
    }
  }

  test('help comes first: explain --help without --request still answers the usage', async () => {
    const { code, stdout } = await cli(['explain', '--config', '/nonexistent.yaml', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('-r, --request FILE');
  });

  test('agentward help COMMAND is COMMAND --help; policy --help and audit --help name their one subcommand', async () => {
    for (const [args, usage] of [
      [['help', 'explain'], 'usage: agentward explain'],
      [['help', 'policy', 'build'], 'usage: agentward policy build'],
      [['policy', '--help'], 'usage: agentward policy build'],
      [['audit', '-h'], 'usage: agentward audit verify'],
    ] as const) {
      const { code, stdout } = await cli([...args]);
      expect(code, args.join(' ')).toBe(0);
      expect(stdout.startsWith(usage), args.join(' ')).toBe(true);
    }
  });

  test('agentward --help: the overview on stdout, exit 0; an unknown option is still a usage error (exit 2)', async () => {
    const overview = await cli(['--help']);
    expect(overview.code).toBe(0);
    expect(overview.stdout).toContain('agentward COMMAND --help');
    const wrong = await cli(['explain', '--bogus']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("Unknown option '--bogus'");
    const unknown = await cli(['help', 'nonsense']);
    expect(unknown.code).toBe(2);
  });
});
