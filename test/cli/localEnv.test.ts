// `npm run local` (scripts/local.sh): one set of port variables for everything it starts
// and runs. scripts/local-env.sh derives the producer's and run's KAFKA_BROKERS and
// CLICKHOUSE_URL from the stack's KAFKA_PORT and PROXY_PORT (and migrate's direct URL from
// CLICKHOUSE_PORT); here it is sourced by bash exactly as local.sh sources it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../stack/index.ts';

const NAMES = ['KAFKA_PORT', 'CLICKHOUSE_PORT', 'PROXY_PORT', 'KAFKA_BROKERS', 'CLICKHOUSE_URL', 'CLICKHOUSE_DIRECT_URL'] as const;

/** The variables after `source scripts/local-env.sh`, started from `given` alone. */
function derived(given: Record<string, string>): Record<string, string> {
  const script = `set -euo pipefail; source scripts/local-env.sh; ${NAMES.map((name) => `printf '%s=%s\\n' ${name} "$${name}"`).join('; ')}`;
  const result = spawnSync('bash', ['-c', script], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...given }, encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return Object.fromEntries(result.stdout.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

describe('npm run local: one set of ports', () => {
  it('defaults to the stack\'s usual ports, the anonymizer going through the proxy', () => {
    expect(derived({})).toEqual({
      KAFKA_PORT: '9092', CLICKHOUSE_PORT: '8123', PROXY_PORT: '8124',
      KAFKA_BROKERS: '127.0.0.1:9092', CLICKHOUSE_URL: 'http://127.0.0.1:8124', CLICKHOUSE_DIRECT_URL: 'http://127.0.0.1:8123',
    });
  });

  it('moves the producer and run with KAFKA_PORT and PROXY_PORT, migrate with CLICKHOUSE_PORT', () => {
    expect(derived({ KAFKA_PORT: '19092', CLICKHOUSE_PORT: '18123', PROXY_PORT: '18124' })).toMatchObject({
      KAFKA_BROKERS: '127.0.0.1:19092', CLICKHOUSE_URL: 'http://127.0.0.1:18124', CLICKHOUSE_DIRECT_URL: 'http://127.0.0.1:18123',
    });
  });

  it('keeps KAFKA_BROKERS and CLICKHOUSE_URL when they are set', () => {
    expect(derived({ KAFKA_PORT: '19092', KAFKA_BROKERS: 'kafka1:9092', CLICKHOUSE_URL: 'http://ch-proxy:8124' })).toMatchObject({
      KAFKA_BROKERS: 'kafka1:9092', CLICKHOUSE_URL: 'http://ch-proxy:8124',
    });
  });

  it('local.sh sources it before it starts anything, and names no port of its own', () => {
    const lines = readFileSync(resolve(REPO_ROOT, 'scripts/local.sh'), 'utf8').split('\n').filter((line) => !line.trimStart().startsWith('#'));
    const sourced = lines.findIndex((line) => /^source scripts\/local-env\.sh$/.test(line.trim()));
    const firstStart = lines.findIndex((line) => /\bnode (stack\/cli\.ts|bin\/anonymizer\.js)\b/.test(line));
    expect(sourced).toBeGreaterThanOrEqual(0);
    expect(sourced).toBeLessThan(firstStart);
    for (const line of lines) {
      expect(line, 'a fixed port').not.toMatch(/\b(9092|8123|8124)\b/);
      expect(line, 'overrides the derived brokers or URL').not.toMatch(/--(kafka-brokers|clickhouse-url)\s+(?!"?\$CLICKHOUSE_DIRECT_URL)/);
    }
    expect(lines.join('\n')).toContain('migrate --clickhouse-url "$CLICKHOUSE_DIRECT_URL"');
  });
});
