// `node stack/cli.ts up|down|status`: the local stack without Docker (docs/architecture.md, "The local stack").
//
// State lives in STACK_DIR (default ./var/stack) with one subdir per service. Services
// are found again only through their pid files, so `up` may be run twice (it reports
// "already up") and `down` works from any shell.
//
// Environment: STACK_DIR, KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
// CLICKHOUSE_PORT (8123), PROXY_PORT (8124), PROXY_RATE (1r/m), PROXY_MAX_BODY (1m),
// CLICKHOUSE_USER (default), CLICKHOUSE_PASSWORD (empty), KAFKA_VERSION (the pinned one).
// STACK_SECURITY=tls: the broker adds SASL_SSL (SCRAM-SHA-512) on KAFKA_SASL_SSL_PORT
// (9094) and SSL with client certificates on KAFKA_SSL_PORT (9095), the proxy serves
// https, certificates and the password go to STACK_DIR/tls, and `up` prints the settings.
//
// `up` fails (exit 1) when any service does not come up, and then stops the ones it
// started, so that a half stack is never left running.

import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CLICKHOUSE_MARKER, CLICKHOUSE_NAME, KAFKA_MARKER, KAFKA_NAME, PROXY_MARKER, PROXY_NAME,
  SCRAM_MECHANISM, ensureStackTls, hasKafkaLibs, isRunning, kafkaLibsDir, kafkaVersion, nginxBin, pidFileOf,
  portAccepts, readState, startClickHouse, startKafka, startProxy, stateFileOf, stopPid,
} from './index.ts';
import type { ServiceHandle, StackTls } from './index.ts';

// kafkajs 2.2.4 sets a timer from a negative duration on Node >= 23, which prints a
// TimeoutNegativeWarning; harmless, and noise in a CLI's output. Only that one is dropped.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const name = typeof warning === 'string' ? rest[0] : warning.name;
  const type = typeof name === 'object' && name !== null ? (name as { type?: string }).type : name;
  if (type === 'TimeoutNegativeWarning') return;
  (emitWarning as (...a: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

const env = process.env;
const STACK_DIR = resolve(env.STACK_DIR ?? './var/stack');
const port = (name: string, fallback: number): number => {
  const raw = env[name];
  const value = raw === undefined || raw === '' ? fallback : Number.parseInt(raw, 10);
  if (!Number.isInteger(value) || value <= 0 || value > 65535) {
    throw new Error(`${name} must be a TCP port, got '${raw}'`);
  }
  return value;
};

interface Service {
  name: string;
  marker: string;
  dir: string;
  port: number;
  address: string;
  start(): Promise<ServiceHandle>;
}

/** STACK_SECURITY: unset or `none` for the open stack, `tls` for the secured one. */
function secured(): boolean {
  const value = (env.STACK_SECURITY ?? '').trim().toLowerCase();
  if (value === '' || value === 'none') return false;
  if (value === 'tls') return true;
  throw new Error(`STACK_SECURITY must be 'tls' or 'none', got '${env.STACK_SECURITY}'`);
}

const tlsDir = (): string => join(STACK_DIR, 'tls');

function services(tls?: StackTls): Service[] {
  const kafkaPort = port('KAFKA_PORT', 9092);
  const controllerPort = port('KAFKA_CONTROLLER_PORT', 9093);
  const saslSslPort = port('KAFKA_SASL_SSL_PORT', 9094);
  const sslPort = port('KAFKA_SSL_PORT', 9095);
  const chPort = port('CLICKHOUSE_PORT', 8123);
  const proxyPort = port('PROXY_PORT', 8124);
  const dirOf = (sub: string): string => join(STACK_DIR, sub);
  return [
    {
      name: KAFKA_NAME, marker: KAFKA_MARKER, dir: dirOf('kafka'), port: kafkaPort,
      address: tls ? `127.0.0.1:${kafkaPort} (SASL_SSL 127.0.0.1:${saslSslPort}, SSL 127.0.0.1:${sslPort})` : `127.0.0.1:${kafkaPort}`,
      start: () => startKafka({
        dir: dirOf('kafka'), port: kafkaPort, controllerPort, version: kafkaVersion(),
        ...(tls ? { security: { tls, saslSslPort, sslPort } } : {}),
      }),
    },
    {
      name: CLICKHOUSE_NAME, marker: CLICKHOUSE_MARKER, dir: dirOf('clickhouse'), port: chPort,
      address: `http://127.0.0.1:${chPort}`,
      start: () => startClickHouse({
        dir: dirOf('clickhouse'), port: chPort,
        ...(env.CLICKHOUSE_USER ? { user: env.CLICKHOUSE_USER } : {}),
        ...(env.CLICKHOUSE_PASSWORD !== undefined ? { password: env.CLICKHOUSE_PASSWORD } : {}),
      }),
    },
    {
      name: PROXY_NAME, marker: PROXY_MARKER, dir: dirOf('proxy'), port: proxyPort,
      address: `${tls ? 'https' : 'http'}://127.0.0.1:${proxyPort}`,
      start: () => startProxy({
        dir: dirOf('proxy'), port: proxyPort, upstreamPort: chPort,
        rate: env.PROXY_RATE || '1r/m', maxBody: env.PROXY_MAX_BODY || '1m',
        ...(tls ? { tls: { certFile: tls.proxyCertFile, keyFile: tls.proxyKeyFile } } : {}),
      }),
    },
  ];
}

/** One line naming the first missing prerequisite and its fix, or undefined. */
function missingPrerequisite(): string | undefined {
  const fix = 'run: bash scripts/ensure-tools.sh';
  const java = spawnSync('java', ['-version'], { stdio: 'ignore', timeout: 10_000 });
  if (java.error || java.status !== 0) return 'java not found on PATH (install a JDK 17+; then ' + fix + ')';
  const nginx = nginxBin();
  if (nginx.includes('/') ? !existsSync(nginx) : spawnSync(nginx, ['-v'], { stdio: 'ignore' }).error) {
    return `nginx not found (${nginx}); ${fix}`;
  }
  const version = kafkaVersion();
  if (!hasKafkaLibs(kafkaLibsDir(version))) {
    return `Kafka ${version} jars missing in ${kafkaLibsDir(version)}; run: ${env.KAFKA_VERSION ? `KAFKA_VERSION=${version} ` : ''}bash scripts/ensure-tools.sh`;
  }
  if (secured() && spawnSync('openssl', ['version'], { stdio: 'ignore' }).error) {
    return 'openssl not found on PATH (STACK_SECURITY=tls makes its certificates with it)';
  }
  return undefined;
}

/** A value as a POSIX shell word, so that the printed settings can be pasted or eval'd. */
const shellWord = (value: string): string => (/^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`);

/** The product's settings for the secured stack; the password only as a file. */
function securedSettings(tls: StackTls): string[] {
  const saslSslPort = port('KAFKA_SASL_SSL_PORT', 9094);
  const sslPort = port('KAFKA_SSL_PORT', 9095);
  const settings = (pairs: Array<[string, string]>): string[] => pairs.map(([k, v]) => `${k}=${shellWord(v)}`);
  return [
    '# SASL_SSL with SCRAM-SHA-512 (the password is in the file, never printed):',
    ...settings([
      ['KAFKA_BROKERS', `127.0.0.1:${saslSslPort}`],
      ['KAFKA_SECURITY_PROTOCOL', 'SASL_SSL'],
      ['KAFKA_SASL_MECHANISM', SCRAM_MECHANISM],
      ['KAFKA_SASL_USERNAME', tls.username],
      ['KAFKA_SASL_PASSWORD_FILE', tls.passwordFile],
      ['KAFKA_SSL_CA_FILE', tls.caFile],
      ['CLICKHOUSE_URL', `https://127.0.0.1:${port('PROXY_PORT', 8124)}`],
      ['CLICKHOUSE_CA_FILE', tls.caFile],
    ]),
    '# or mTLS instead of SASL: a client certificate on the SSL listener',
    ...settings([
      ['# KAFKA_BROKERS', `127.0.0.1:${sslPort}`],
      ['# KAFKA_SECURITY_PROTOCOL', 'SSL'],
      ['# KAFKA_SSL_CERT_FILE', tls.clientCertFile],
      ['# KAFKA_SSL_KEY_FILE', tls.clientKeyFile],
    ]),
  ];
}

async function up(): Promise<number> {
  const missing = missingPrerequisite();
  if (missing !== undefined) {
    console.error(`stack: ${missing}`);
    return 1;
  }
  const tls = secured() ? ensureStackTls(tlsDir()) : undefined;
  // Kafka's JVM is the slow one; start all in parallel, report in a fixed order.
  const results = await Promise.all(services(tls).map(async (s) => {
    const pid = isRunning(pidFileOf(s.dir, s.name), s.marker);
    if (pid !== undefined) return { ok: true, line: `${s.name}: already up (pid ${pid}) ${s.address}` };
    try {
      const handle = await s.start();
      return { ok: true, started: handle, line: `${s.name}: up (pid ${handle.pid}) ${s.address}` };
    } catch (err) {
      return { ok: false, line: `${s.name}: FAILED: ${(err as Error).message}` };
    }
  }));
  const failed = results.filter((r) => !r.ok).length;
  for (const r of results) {
    if (r.ok && r.started && failed > 0) {
      // A half stack would look like a working one to the next `up` (and to `status`).
      await r.started.stop();
      console.error(`${r.started.name}: stopped again (pid ${r.started.pid}), as not every service came up`);
    } else {
      (r.ok ? console.log : console.error)(r.line);
    }
  }
  if (failed > 0) return 1;
  if (tls) for (const line of securedSettings(tls)) console.log(line);
  return 0;
}

async function down(): Promise<number> {
  // Proxy first, Kafka last: the reverse of the data path's dependencies.
  for (const s of services(undefined).reverse()) {
    const pid = isRunning(pidFileOf(s.dir, s.name), s.marker);
    if (pid === undefined) {
      console.log(`${s.name}: not running`);
      continue;
    }
    await stopPid(pid);
    rmSync(pidFileOf(s.dir, s.name), { force: true });
    rmSync(stateFileOf(s.dir, s.name), { force: true });
    console.log(`${s.name}: stopped (pid ${pid})`);
  }
  return 0;
}

async function status(): Promise<number> {
  let allUp = true;
  for (const s of services()) {
    const pid = isRunning(pidFileOf(s.dir, s.name), s.marker);
    // The address recorded at start wins over the env (the stack may run on other ports).
    const address = readState(s.dir, s.name)?.address ?? s.address;
    const portOf = Number(/:(\d+)$/.exec(address)?.[1] ?? s.port);
    if (pid === undefined) {
      allUp = false;
      console.log(`${s.name}: down`);
    } else if (!(await portAccepts(portOf))) {
      allUp = false;
      console.log(`${s.name}: not answering (pid ${pid}) ${address}`);
    } else {
      console.log(`${s.name}: up (pid ${pid}) ${address}`);
    }
  }
  return allUp ? 0 : 3;
}

const commands: Record<string, () => Promise<number>> = { up, down, status };
const command = commands[process.argv[2] ?? ''];
if (command === undefined) {
  console.error('usage: node stack/cli.ts up|down|status');
  process.exitCode = 2;
} else {
  command().then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      console.error(`stack: ${(err as Error).message}`);
      process.exitCode = 1;
    },
  );
}
