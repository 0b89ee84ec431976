// Single-node Kafka (KRaft, broker+controller in one JVM) from the Maven jars in
// `.tools/kafka/<version>/libs`, for machines without Docker. Same role as the `apache/kafka`
// image in docker-compose: PLAINTEXT on 127.0.0.1:<port>, no auto topic creation, so
// topics exist only because we create them here.
//
// The version is the one pinned in etc/kafka/pom.xml unless KAFKA_VERSION (or the
// `version` option) names another that ensure-tools installed. With `security`, the broker
// also has a SASL_SSL listener (SCRAM-SHA-512, the user created at format time) and an SSL
// listener that requires a client certificate; PLAINTEXT stays for the stack's own admin.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import {
  REPO_ROOT, assertNotRunning, listensOn, makeHandle, spawnDetached, waitReady, writeServiceFiles,
} from './service.ts';
import type { ServiceHandle } from './service.ts';
import { SCRAM_MECHANISM, readSecret } from './tls.ts';
import type { StackTls } from './tls.ts';
import { createTopicsAndWait } from './topics.ts';

export const KAFKA_NAME = 'kafka';
/** Appears in the JVM's command line; used to recognise our pid in a pid file. */
export const KAFKA_MARKER = 'kafka.Kafka';
export const DEFAULT_TOPICS: Array<{ name: string; partitions: number }> = [
  { name: 'http_log', partitions: 3 },
  { name: 'http_log_dlq', partitions: 1 },
];
export const KAFKA_POM = join(REPO_ROOT, 'etc', 'kafka', 'pom.xml');

/** A `<name>` property of etc/kafka/pom.xml, the one place the versions are pinned. */
function pomProperty(name: string): string {
  const value = new RegExp(`<${name.replaceAll('.', '\\.')}>([^<]+)</`).exec(readFileSync(KAFKA_POM, 'utf8'))?.[1];
  if (value === undefined) throw new Error(`${KAFKA_POM} has no <${name}>`);
  return value.trim();
}

/** The stack's broker version (pom's kafka.version). */
export const PINNED_KAFKA_VERSION = pomProperty('kafka.version');
/** The older line ensure-tools also installs, for the compatibility check. */
export const COMPAT_KAFKA_VERSION = pomProperty('kafka.compat.version');

/** KAFKA_VERSION when set, else the pinned version. */
export function kafkaVersion(env: NodeJS.ProcessEnv = process.env): string {
  const version = env.KAFKA_VERSION?.trim() || PINNED_KAFKA_VERSION;
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`KAFKA_VERSION must look like 4.4.0, got '${version}'`);
  return version;
}

/** Where ensure-tools puts the jars of `version`. */
export function kafkaLibsDir(version: string = kafkaVersion()): string {
  return join(REPO_ROOT, '.tools', 'kafka', version, 'libs');
}

export const DEFAULT_KAFKA_LIBS = kafkaLibsDir(PINNED_KAFKA_VERSION);
const STARTUP_TIMEOUT_MS = 60_000;

export interface StartKafkaOptions {
  dir: string;
  port: number;
  controllerPort: number;
  topics?: Array<{ name: string; partitions: number }>;
  /** Broker version (default: KAFKA_VERSION, else the pinned one); picks the jars. */
  version?: string;
  /** Directory holding the broker jars (default `kafkaLibsDir(version)`). */
  libsDir?: string;
  /** Add the SASL_SSL (SCRAM-SHA-512) and SSL (mTLS) listeners, with this material. */
  security?: KafkaSecurity;
}

export interface KafkaSecurity {
  tls: StackTls;
  saslSslPort: number;
  sslPort: number;
}

export type KafkaHandle = ServiceHandle & {
  brokers: string;
  version: string;
  /** With `security`: the SASL_SSL and SSL bootstrap addresses. */
  saslSslBrokers?: string;
  sslBrokers?: string;
};

/** True when `libsDir` holds the broker jar (what `scripts/ensure-tools.sh` installs). */
export function hasKafkaLibs(libsDir: string = DEFAULT_KAFKA_LIBS): boolean {
  return existsSync(libsDir) && readdirSync(libsDir).some((f) => /^kafka_2\.13-.*\.jar$/.test(f));
}

/**
 * The secured listeners: TLS from PEM files, SCRAM on SASL_SSL, client certs on SSL.
 * SASL_SSL takes PLAIN as well, for the same user: librdkafka before 2.6.1 (Debian's kcat
 * links 2.0.2) fails SCRAM against Kafka 4.x (it repeats the client nonce, which 4.x
 * rejects), so an independent librdkafka client can only check this listener with PLAIN.
 */
function securityProperties(sec: KafkaSecurity): string[] {
  const user = sec.tls.username;
  return [
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${sec.tls.brokerKeystoreFile}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${sec.tls.caFile}`,
    `listener.name.sasl_ssl.sasl.enabled.mechanisms=${SCRAM_MECHANISM},PLAIN`,
    `listener.name.sasl_ssl.${SCRAM_MECHANISM.toLowerCase()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${user}="${readSecret(sec.tls.passwordFile)}";`,
    'listener.name.ssl.ssl.client.auth=required',
  ];
}

function serverProperties(dataDir: string, port: number, controllerPort: number, sec?: KafkaSecurity): string {
  const listeners = [`PLAINTEXT://127.0.0.1:${port}`];
  if (sec) listeners.push(`SASL_SSL://127.0.0.1:${sec.saslSslPort}`, `SSL://127.0.0.1:${sec.sslPort}`);
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=${[...listeners, `CONTROLLER://127.0.0.1:${controllerPort}`].join(',')}`,
    `advertised.listeners=${listeners.join(',')}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL',
    ...(sec ? securityProperties(sec) : []),
    `log.dirs=${dataDir}`,
    'num.partitions=3',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // A test that sets a short retention on its topic sees the broker delete within seconds
    // (the defaults check every 5 min, the first time 30 s after start).
    'log.retention.check.interval.ms=2000',
    'log.initial.task.delay.ms=2000',
    // Topics come from startKafka (and the app's own checks), never from a typo.
    'auto.create.topics.enable=false',
    '',
  ].join('\n');
}

/**
 * log4j2 config for the log4j-core that Kafka 4.x has on its classpath (its own logging
 * still goes through slf4j to reload4j): without one it prints `Reconfiguration failed: No
 * configuration found` at start. Same level and file format as the reload4j config.
 */
function log4j2Properties(logFile: string): string {
  return [
    'status=warn',
    'appender.file.type=File',
    'appender.file.name=file',
    `appender.file.fileName=${logFile}`,
    'appender.file.layout.type=PatternLayout',
    'appender.file.layout.pattern=[%d] %p %m (%c)%n',
    'rootLogger.level=warn',
    'rootLogger.appenderRef.file.ref=file',
    '',
  ].join('\n');
}

/** log4j 1.x (reload4j) config: warnings only, to a file, instead of INFO on stdout. */
function log4jProperties(logFile: string): string {
  return [
    'log4j.rootLogger=WARN, file',
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${logFile}`,
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    '',
  ].join('\n');
}

/** The SCRAM users a storage was formatted with (a stamp written at format time). */
const scramStamp = (dir: string): string => join(dir, 'scram-users');

/** Format the storage on first use; with security, create the SCRAM user in the same step. */
function formatStorage(dir: string, classpath: string, jvmLog: string[], propsFile: string, sec?: KafkaSecurity): void {
  const dataDir = join(dir, 'data');
  if (existsSync(join(dataDir, 'meta.properties'))) {
    const formattedWith = existsSync(scramStamp(dir)) ? readFileSync(scramStamp(dir), 'utf8').split('\n') : [];
    if (sec && !formattedWith.includes(sec.tls.username)) {
      throw new Error(`the Kafka storage in ${dataDir} was formatted without the SCRAM user '${sec.tls.username}'; `
        + 'stop the stack and remove that directory to start it secured');
    }
    return;
  }
  const uuid = runTool(classpath, jvmLog, ['random-uuid']).trim();
  const scram = sec
    ? ['--add-scram', `${SCRAM_MECHANISM}=[name=${sec.tls.username},password=${readSecret(sec.tls.passwordFile)}]`]
    : [];
  runTool(classpath, jvmLog, ['format', '-t', uuid, '-c', propsFile, ...scram]);
  writeFileSync(scramStamp(dir), sec ? `${sec.tls.username}\n` : '');
}

/**
 * Ready means: this JVM holds its ports (another broker on the port would answer the same
 * questions), the broker answers metadata, and the topics exist (creating them needs the
 * controller, which is the slower half of startup).
 */
async function waitBrokerReady(opts: {
  pid: number; brokers: string; ports: number[]; topics: Array<{ name: string; partitions: number }>; logFile: string;
}): Promise<void> {
  const kafka = new Kafka({
    clientId: 'stack',
    brokers: [opts.brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 0 },
  });
  const { topics } = opts;
  await waitReady({
    name: KAFKA_NAME, pid: opts.pid, logFile: opts.logFile, timeoutMs: STARTUP_TIMEOUT_MS,
    intervalMs: 500,
    ready: async () => {
      if (!listensOn(opts.pid, opts.ports)) return false;
      const admin = kafka.admin();
      try {
        await admin.connect();
        const existing = new Set(await admin.listTopics());
        const missing = topics.filter((t) => !existing.has(t.name));
        if (missing.length > 0) {
          await createTopicsAndWait(admin, missing.map((t) => ({ topic: t.name, numPartitions: t.partitions, replicationFactor: 1 })));
        }
        const now = new Set(await admin.listTopics());
        return topics.every((t) => now.has(t.name));
      } finally {
        await admin.disconnect().catch(() => {});
      }
    },
  });
}

/** Start the broker (formatting its storage on first use) and create missing topics. */
export async function startKafka(opts: StartKafkaOptions): Promise<KafkaHandle> {
  const dir = resolve(opts.dir);
  const version = opts.version ?? kafkaVersion();
  const libs = opts.libsDir ?? kafkaLibsDir(version);
  if (!hasKafkaLibs(libs)) {
    throw new Error(`Kafka ${version} jars missing in ${libs}; run: ${opts.version || process.env.KAFKA_VERSION ? `KAFKA_VERSION=${version} ` : ''}bash scripts/ensure-tools.sh`);
  }
  assertNotRunning(dir, KAFKA_NAME, KAFKA_MARKER);
  mkdirSync(dir, { recursive: true });
  const sec = opts.security;
  const dataDir = join(dir, 'data');
  const propsFile = join(dir, 'server.properties');
  const log4jFile = join(dir, 'log4j.properties');
  const log4j2File = join(dir, 'log4j2.properties');
  const logFile = join(dir, 'kafka.log'); // JVM stdout/stderr
  const serverLog = join(dir, 'server.log'); // log4j, WARN and above
  const classpath = `${libs}/*`;

  // Rewritten every start: ports may change between runs; the storage does not care.
  // 0600: with security it holds the PLAIN password.
  writeFileSync(propsFile, serverProperties(dataDir, opts.port, opts.controllerPort, sec), { mode: 0o600 });
  writeFileSync(log4jFile, log4jProperties(serverLog));
  writeFileSync(log4j2File, log4j2Properties(serverLog));
  const jvmLog = [`-Dlog4j.configuration=file:${log4jFile}`, `-Dlog4j2.configurationFile=${log4j2File}`, `-Dkafka.logs.dir=${dir}`];
  formatStorage(dir, classpath, jvmLog, propsFile, sec);

  const pid = spawnDetached('java', [
    '-Xms256m', '-Xmx512m', '-XX:+UseSerialGC', '-Djava.awt.headless=true',
    ...jvmLog, '-cp', classpath, 'kafka.Kafka', propsFile,
  ], { logFile, cwd: dir });
  const brokers = `127.0.0.1:${opts.port}`;
  writeServiceFiles(dir, {
    name: KAFKA_NAME, pid, address: brokers, logFile, startedAt: new Date().toISOString(),
  });
  const handle = makeHandle(KAFKA_NAME, pid, logFile, dir);
  const ports = [opts.port, opts.controllerPort, ...(sec ? [sec.saslSslPort, sec.sslPort] : [])];

  try {
    await waitBrokerReady({ pid, brokers, ports, topics: opts.topics ?? DEFAULT_TOPICS, logFile: `${logFile} / ${serverLog}` });
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return {
    ...handle, brokers, version,
    ...(sec ? { saslSslBrokers: `127.0.0.1:${sec.saslSslPort}`, sslBrokers: `127.0.0.1:${sec.sslPort}` } : {}),
  };
}

/** Run a kafka.tools.StorageTool subcommand synchronously; throw with its output on failure. */
function runTool(classpath: string, jvmLog: string[], args: string[]): string {
  const r = spawnSync('java', [...jvmLog, '-cp', classpath, 'kafka.tools.StorageTool', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.error) throw new Error(`kafka StorageTool ${args[0]} failed: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`kafka StorageTool ${args[0]} failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}
