/**
 * A private local stack for one integration test file: a real Kafka broker and the real
 * ClickHouse engine (chdb behind the HTTP endpoint), on free 127.0.0.1 ports in a temp
 * dir, stopped by PID when the file is done. Proxies are started per test, at the rate
 * and body limit that test needs.
 *
 * With STACK=containers and a container engine that answers (test/support/stackSelection.ts
 * decides, once per run), the same services are containers instead (stack/containers.ts):
 * the official Kafka, ClickHouse server and nginx images, on the same kind of ports.
 *
 * `startE2EStack(name, { security: 'tls' })` (local stack only) gives the broker its
 * SASL_SSL (SCRAM-SHA-512) and SSL (mTLS) listeners and returns their addresses and the
 * CA, client certificate and password files in `secured`; `startProxy({ tls: true })`
 * gives an https proxy and its CA. `kafkaVersion` (or KAFKA_VERSION) picks the broker.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { inject } from 'vitest';
import { createTopicsAndWait, ensureStackTls, freePort, kafkaVersion, startClickHouse, startKafka, startProxy, type KafkaSecurity, type ServiceHandle, type StackTls } from '../../stack/index.ts';
import type { StackKind } from './stackSelection.ts';

export const BIN = fileURLToPath(new URL('../../bin/anonymizer.js', import.meta.url));
// Every CLI a test starts has its metrics endpoint off (METRICS_PORT=0) unless the test
// asks for one: several run at once, and 9464 may be taken by a local stack.

type Stoppable = Pick<ServiceHandle, 'stop'>;
/** A proxy; with `tls: true` its url is https:// and `caFile` is the CA that signed it. */
export type Proxy = Stoppable & { url: string; accessLog: string; caFile?: string };

type KafkaStartOptions = { dir: string; port: number; controllerPort: number; version?: string; security?: KafkaSecurity };
type ProxyStartOptions = { dir: string; port: number; upstreamPort: number; rate: string; maxBody: string; tls?: { certFile: string; keyFile: string } };

/** How a stack's services start: as local processes, or as containers. */
export interface StackServices {
  readonly kind: StackKind;
  startKafka(options: KafkaStartOptions): Promise<Stoppable & { brokers: string; saslSslBrokers?: string; sslBrokers?: string }>;
  startClickHouse(options: { dir: string; port: number }): Promise<Stoppable & { url: string }>;
  startProxy(options: ProxyStartOptions): Promise<Proxy>;
}

const LOCAL_SERVICES: StackServices = {
  kind: 'local',
  startKafka: (options) => startKafka({ ...options, topics: [] }),
  startClickHouse,
  startProxy,
};

/** What a secured stack's clients need: the secured listeners and the files to reach them. */
export interface SecuredKafka {
  /** SASL_SSL, SCRAM-SHA-512 (and PLAIN) for `username`. */
  readonly saslSslBrokers: string;
  /** SSL with `ssl.client.auth=required`: needs clientCertFile/clientKeyFile. */
  readonly sslBrokers: string;
  readonly caFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly username: string;
  readonly passwordFile: string;
  /** Holds a password that is not the user's. */
  readonly wrongPasswordFile: string;
}

export interface E2EStackOptions {
  /** `tls`: add the SASL_SSL and SSL listeners (local stack only). */
  readonly security?: 'none' | 'tls';
  /** Broker version (default: KAFKA_VERSION, else the pinned one). Local stack only. */
  readonly kafkaVersion?: string;
}

function securedOf(kafka: { saslSslBrokers?: string; sslBrokers?: string }, tls: StackTls): SecuredKafka {
  if (kafka.saslSslBrokers === undefined || kafka.sslBrokers === undefined) throw new Error('the broker started without its secured listeners');
  return {
    saslSslBrokers: kafka.saslSslBrokers, sslBrokers: kafka.sslBrokers, caFile: tls.caFile,
    clientCertFile: tls.clientCertFile, clientKeyFile: tls.clientKeyFile, username: tls.username,
    passwordFile: tls.passwordFile, wrongPasswordFile: tls.wrongPasswordFile,
  };
}

/** The services of the stack this run selected (local unless STACK=containers found an engine). */
export async function stackServices(kind: StackKind = inject('stack') ?? 'local'): Promise<StackServices> {
  if (kind === 'local') return LOCAL_SERVICES;
  const containers = await import('../../stack/containers.ts');
  return {
    kind,
    startKafka: ({ port }) => containers.startKafkaContainer({ port }),
    startClickHouse: containers.startClickHouseContainer,
    startProxy: containers.startProxyContainer,
  };
}

export interface E2EStack {
  readonly dir: string;
  /** The PLAINTEXT listener (also on a secured stack: topic creation, offsets). */
  readonly brokers: string;
  /** The broker's version (local stack). */
  readonly kafkaVersion: string;
  /** With `security: 'tls'`. */
  readonly secured?: SecuredKafka;
  readonly clickhouseUrl: string;
  readonly clickhousePort: number;
  /** A proxy in front of ClickHouse; `port`/`dir` given again restart one that was stopped. */
  startProxy(options: { rate: string; maxBody: string; port?: number; dir?: string; tls?: boolean }): Promise<Proxy>;
  /** Stops the broker (its storage stays on disk). */
  stopKafka(): Promise<void>;
  /** Starts it again on the same ports and storage. */
  startKafka(): Promise<void>;
  /** Stops the ClickHouse endpoint (its data stays on disk). */
  stopClickHouse(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  startClickHouse(): Promise<void>;
  stop(): Promise<void>;
}

export async function startE2EStack(name: string, options: E2EStackOptions = {}): Promise<E2EStack> {
  const dir = mkdtempSync(join(tmpdir(), `e2e-${name}-`));
  const services: Stoppable[] = [];
  const chosen = await stackServices();
  if (chosen.kind !== 'local' && (options.security === 'tls' || options.kafkaVersion !== undefined)) {
    throw new Error(`startE2EStack(${name}): security and kafkaVersion need the local stack, not ${chosen.kind}`);
  }
  // Made on first use: the broker's listeners or a TLS proxy.
  let tlsMaterial: StackTls | undefined;
  const tls = (): StackTls => (tlsMaterial ??= ensureStackTls(join(dir, 'tls')));
  const version = options.kafkaVersion ?? kafkaVersion();
  try {
    const kafkaOptions = {
      dir: join(dir, 'kafka'), port: await freePort(), controllerPort: await freePort(), version,
      ...(options.security === 'tls' ? { security: { tls: tls(), saslSslPort: await freePort(), sslPort: await freePort() } } : {}),
    };
    let kafka = await chosen.startKafka(kafkaOptions);
    services.push(kafka);
    const clickhousePort = await freePort();
    let clickhouse = await chosen.startClickHouse({ dir: join(dir, 'clickhouse'), port: clickhousePort });
    services.push(clickhouse);
    let proxies = 0;
    return {
      dir,
      brokers: kafka.brokers,
      kafkaVersion: version,
      ...(options.security === 'tls' ? { secured: securedOf(kafka, tls()) } : {}),
      clickhouseUrl: clickhouse.url,
      clickhousePort,
      async startProxy(proxyOptions) {
        if (proxyOptions.tls && chosen.kind !== 'local') throw new Error(`a TLS proxy needs the local stack, not ${chosen.kind}`);
        const material = proxyOptions.tls ? tls() : undefined;
        const proxy = await chosen.startProxy({
          dir: proxyOptions.dir ?? join(dir, `proxy-${++proxies}`),
          port: proxyOptions.port ?? (await freePort()),
          upstreamPort: clickhousePort,
          rate: proxyOptions.rate,
          maxBody: proxyOptions.maxBody,
          ...(material ? { tls: { certFile: material.proxyCertFile, keyFile: material.proxyKeyFile } } : {}),
        });
        services.push(proxy);
        return material ? { ...proxy, caFile: material.caFile } : proxy;
      },
      async stopKafka() {
        await kafka.stop();
      },
      async startKafka() {
        kafka = await chosen.startKafka(kafkaOptions);
        services.push(kafka);
      },
      async stopClickHouse() {
        await clickhouse.stop();
      },
      async startClickHouse() {
        clickhouse = await chosen.startClickHouse({ dir: join(dir, 'clickhouse'), port: clickhousePort });
        services.push(clickhouse);
      },
      async stop() {
        await Promise.allSettled(services.reverse().map((service) => service.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.allSettled(services.map((service) => service.stop()));
    throw error;
  }
}

/** A query straight to the ClickHouse endpoint (not through the proxy). */
export async function chQuery(stack: E2EStack, sql: string, database = 'default'): Promise<string> {
  const response = await fetch(`${stack.clickhouseUrl}/?database=${database}`, { method: 'POST', body: sql });
  const text = await response.text();
  if (!response.ok) throw new Error(`ClickHouse ${response.status}: ${text}`);
  return text;
}

export async function createTopic(stack: E2EStack, topic: string, partitions = 3): Promise<void> {
  const admin = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await createTopicsAndWait(admin, [{ topic, numPartitions: partitions, replicationFactor: 1 }]);
  } finally {
    await admin.disconnect();
  }
}

/** Per partition: [committed offset of the group, high-water mark]. */
export async function offsetsOf(stack: E2EStack, group: string, topic: string): Promise<Map<number, [number, number]>> {
  const admin = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const [high, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
    const byPartition = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    return new Map(high.map((p) => [p.partition, [byPartition.get(p.partition) ?? -1, Number(p.high)]]));
  } finally {
    await admin.disconnect();
  }
}

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** A background `anonymizer …` the test controls. */
export interface CliProcess {
  readonly pid: number;
  output(): string;
  /** Resolves with the exit code (or the signal's name) when it ends. */
  readonly exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

export function startCli(args: readonly string[], env: Readonly<Record<string, string>>): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { METRICS_PORT: '0', ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  return {
    pid: child.pid!,
    output: () => output,
    exited,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Runs `anonymizer …` to its end, killed (and failed) past `timeoutMs`. */
export function runCli(args: readonly string[], env: Readonly<Record<string, string>>, timeoutMs = 120_000): Promise<CliResult> {
  return runScript(BIN, args, env, timeoutMs, { METRICS_PORT: '0' });
}

/**
 * Runs a Node script to its end with our Node, bounded in time (killed with SIGKILL past
 * `timeoutMs`). Its environment: `defaults`, then this process's, then `env`.
 */
export function runScript(script: string, args: readonly string[], env: Readonly<Record<string, string>>, timeoutMs = 120_000, defaults: Readonly<Record<string, string>> = {}): Promise<CliResult> {
  const started = Date.now();
  const name = `${script.split('/').at(-1)} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { env: { ...defaults, ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not finish within ${timeoutMs} ms; stderr:\n${stderr.slice(-3000)}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

export interface AccessLogLine {
  /** When nginx received the request, in ms since the epoch ($msec − $request_time). */
  readonly startMs: number;
  readonly status: number;
  readonly method: string;
  readonly requestLength: number;
  readonly uri: string;
}

export function readAccessLog(path: string): AccessLogLine[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const match = /^(\d+\.\d+) (\d+\.\d+) (\d+) (\S+) (\d+) (\d+) "(.*)"$/.exec(line);
      if (!match) throw new Error(`unexpected access log line: ${line}`);
      return { startMs: (Number(match[1]) - Number(match[2])) * 1000, status: Number(match[3]), method: match[4]!, requestLength: Number(match[5]), uri: match[7]! };
    });
}
