/** The command line as a user meets it: help, and one-line errors with exit code 2. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeSetting, SETTING_NAMES } from '../../src/config.ts';
import { BIN } from '../support/e2eStack.ts';

const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });

describe('anonymizer command line', () => {
  it('--help lists every command', () => {
    const result = run(['--help']);
    expect(result.status).toBe(0);
    for (const command of ['run', 'migrate', 'produce', 'inspect', 'spool']) expect(result.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it("--version and -V print the package's version", () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const result = run([flag]);
      expect(result.status).toBe(0);
      expect(result.stdout.trim()).toBe(version);
    }
  });

  it('every command and subcommand that main registers has --help with examples', () => {
    // Walk the tree from the help output itself, so a command added later is checked too.
    const seen: string[] = [];
    const visit = (path: string[]): void => {
      const result = run([...path, '--help']);
      expect(result.status, `${path.join(' ')} --help`).toBe(0);
      expect(result.stdout, `${path.join(' ')} --help`).toContain(`Usage: anonymizer${path.length ? ` ${path.join(' ')}` : ''}`);
      expect(result.stdout, `${path.join(' ')} --help`).toMatch(/\nExamples:\n {2}\S/);
      seen.push(path.join(' '));
      for (const sub of subcommandsIn(result.stdout)) visit([...path, sub]);
    };
    visit([]);
    // The walk really descended: the known commands and the spool's subcommands were reached.
    expect(seen).toEqual(expect.arrayContaining(['', 'run', 'migrate', 'produce', 'inspect', 'spool', 'spool list', 'spool replay']));
  });

  it.each([
    [['run'], { PROXY_MIN_INTERVAL_MS: 'soon' }, 'anonymizer: PROXY_MIN_INTERVAL_MS must be milliseconds, an integer from 0 to 86400000 (got "soon")'],
    [['run', '--kafka-brokers', 'nohost'], {}, 'anonymizer: KAFKA_BROKERS must be a comma-separated list of host:port (got "nohost")'],
    [['migrate'], { CLICKHOUSE_URL: 'localhost:8123' }, 'anonymizer: CLICKHOUSE_URL must be an http:// or https:// URL (got "localhost:8123")'],
    [['run'], { CLICKHOUSE_URL: '127.0.0.1:8124' }, 'anonymizer: CLICKHOUSE_URL must be an http:// or https:// URL (got "127.0.0.1:8124")'],
    [['produce', '--count', '5', '--seed', 'abc'], {}, 'anonymizer: --seed must be a non-negative integer (got "abc")'],
  ])('%o with %o: one line, exit code 2, no stack trace', (args, env, line) => {
    const result = run(args, env);
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe(line);
  });

  it("the README's configuration table lists exactly the settings, with their defaults", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.split('\n## Configuration\n')[1]!.split('\n## ')[0]!;
    const rows = new Map([...section.matchAll(/^\| `([A-Z_]+)` \| ([^|]*) \|/gm)].map((match) => [match[1]!, match[2]!.trim()]));
    expect([...rows.keys()].sort()).toEqual([...SETTING_NAMES].sort());
    for (const setting of SETTING_NAMES) {
      const byDefault = /; default (.*)$/.exec(describeSetting(setting))?.[1];
      // A default is shown as `value`; a setting without one is described in words.
      const shown = /^`(.*)`$/.exec(rows.get(setting)!)?.[1];
      expect(shown, setting).toBe(byDefault);
    }
  });

  it('a usage error (unknown option, bad choice) exits 2', () => {
    expect(run(['produce', '--count', '1', '--dataset', 'nope']).status).toBe(2);
    expect(run(['run', '--no-such-flag']).status).toBe(2);
  });
});

/** The names under `Commands:` in commander's help, without its own `help [command]`. */
function subcommandsIn(help: string): string[] {
  const section = /\nCommands:\n([\s\S]*?)(?:\n\n|$)/.exec(help)?.[1] ?? '';
  return section
    .split('\n')
    .map((line) => /^ {2}([a-z][\w-]*)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && name !== 'help');
}
