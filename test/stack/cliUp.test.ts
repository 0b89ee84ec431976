// `node stack/cli.ts up` as a user runs it (npm run stack:up): a service that cannot come
// up (its port is taken) makes `up` fail with a non-zero exit and leaves nothing running;
// STACK_SECURITY=tls brings up the secured stack and prints settings that work, without
// the password.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Agent, fetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, freePort, isRunning, pidFileOf, portAccepts, readPidFile, stopPid } from '../../stack/index.ts';
import { runScript, type CliResult } from '../support/e2eStack.ts';

const CLI = join(REPO_ROOT, 'stack', 'cli.ts');
const dirs: string[] = [];

/** Runs `node stack/cli.ts <command>` to its end (bounded), with the stack's env. */
function stackCli(command: string, env: Record<string, string>, timeoutMs = 120_000): Promise<CliResult> {
  return runScript(CLI, [command], env, timeoutMs);
}

async function stackEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'stack-cli-'));
  dirs.push(dir);
  return {
    STACK_DIR: dir,
    KAFKA_PORT: String(await freePort()),
    KAFKA_CONTROLLER_PORT: String(await freePort()),
    KAFKA_SASL_SSL_PORT: String(await freePort()),
    KAFKA_SSL_PORT: String(await freePort()),
    CLICKHOUSE_PORT: String(await freePort()),
    PROXY_PORT: String(await freePort()),
    ...extra,
  };
}

const SERVICES = [['kafka', 'kafka.Kafka'], ['clickhouse', 'clickhouse-endpoint'], ['proxy', 'nginx']] as const;

afterAll(async () => {
  // Whatever a failed assertion left behind: stop it by its pid file, then drop the dirs.
  for (const dir of dirs) {
    for (const [name, marker] of SERVICES) {
      const pid = isRunning(pidFileOf(join(dir, name), name), marker);
      if (pid !== undefined) await stopPid(pid);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('stack:up', () => {
  it('fails with a non-zero exit when a port is taken, and stops the services it had started', async () => {
    const env = await stackEnv();
    const squatter: Server = createServer((socket) => socket.end());
    await new Promise<void>((resolve) => squatter.listen(Number(env.PROXY_PORT), '127.0.0.1', resolve));
    try {
      const up = await stackCli('up', env);
      expect(up.status, up.stdout + up.stderr).toBe(1);
      expect(up.stderr).toMatch(/^proxy: FAILED/m);
      expect(up.stdout).not.toMatch(/: up \(pid/);
      // Kafka and ClickHouse came up, then were stopped again: no process, no port.
      for (const [name, marker] of SERVICES) {
        expect(isRunning(pidFileOf(join(env.STACK_DIR!, name), name), marker), name).toBeUndefined();
      }
      expect(await portAccepts(Number(env.KAFKA_PORT))).toBe(false);
      expect(await portAccepts(Number(env.CLICKHOUSE_PORT))).toBe(false);
      const status = await stackCli('status', env);
      expect(status.status).toBe(3);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('STACK_SECURITY=tls: prints settings (no password) that reach the secured broker and the https proxy', async () => {
    const env = await stackEnv({ STACK_SECURITY: 'tls', PROXY_RATE: '600r/m' });
    try {
      const up = await stackCli('up', env);
      expect(up.status, up.stdout + up.stderr).toBe(0);
      const settings = Object.fromEntries(up.stdout.split('\n').filter((line) => /^[A-Z_]+=/.test(line)).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
      expect(settings).toMatchObject({
        KAFKA_BROKERS: `127.0.0.1:${env.KAFKA_SASL_SSL_PORT}`,
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        CLICKHOUSE_URL: `https://127.0.0.1:${env.PROXY_PORT}`,
      });
      const password = readFileSync(settings.KAFKA_SASL_PASSWORD_FILE!, 'utf8');
      expect(password.length).toBeGreaterThanOrEqual(16);
      expect(up.stdout + up.stderr).not.toContain(password);
      expect(settings.KAFKA_SASL_PASSWORD).toBeUndefined();

      const kafka = new Kafka({
        brokers: [settings.KAFKA_BROKERS!], logLevel: logLevel.NOTHING, retry: { retries: 0 },
        ssl: { ca: [readFileSync(settings.KAFKA_SSL_CA_FILE!)] },
        sasl: { mechanism: 'scram-sha-512', username: settings.KAFKA_SASL_USERNAME!, password },
      });
      const admin = kafka.admin();
      await admin.connect();
      expect(await admin.listTopics()).toEqual(expect.arrayContaining(['http_log', 'http_log_dlq']));
      await admin.disconnect();

      const dispatcher = new Agent({ connect: { ca: readFileSync(settings.CLICKHOUSE_CA_FILE!) } });
      const response = await fetch(`${settings.CLICKHOUSE_URL}/?query=SELECT+1`, { dispatcher });
      expect([response.status, await response.text()]).toEqual([200, '1\n']);
      await dispatcher.close();

      // Run twice: the certificates and the SCRAM user are reused, and it reports "already up".
      const again = await stackCli('up', env);
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/^kafka: already up/m);
      expect(readFileSync(settings.KAFKA_SASL_PASSWORD_FILE!, 'utf8')).toBe(password);
    } finally {
      const down = await stackCli('down', env);
      expect(down.status).toBe(0);
      for (const [name] of SERVICES) expect(existsSync(pidFileOf(join(env.STACK_DIR!, name), name)) && readPidFile(pidFileOf(join(env.STACK_DIR!, name), name)), name).toBeFalsy();
    }
  });
});
