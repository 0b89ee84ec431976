// Single-node Kafka (KRaft, broker+controller in one JVM) from the Maven jars in
// `.tools/kafka/libs`, for machines without Docker. Same role as the `apache/kafka`
// image in docker-compose: PLAINTEXT on 127.0.0.1:<port>, no auto topic creation, so
// topics exist only because we create them here.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import {
  REPO_ROOT, assertNotRunning, makeHandle, spawnDetached, waitReady, writeServiceFiles,
} from './service.ts';
import type { ServiceHandle } from './service.ts';
import { createTopicsAndWait } from './topics.ts';

export const KAFKA_NAME = 'kafka';
/** Appears in the JVM's command line; used to recognise our pid in a pid file. */
export const KAFKA_MARKER = 'kafka.Kafka';
export const DEFAULT_TOPICS: Array<{ name: string; partitions: number }> = [
  { name: 'http_log', partitions: 3 },
  { name: 'http_log_dlq', partitions: 1 },
];
export const DEFAULT_KAFKA_LIBS = join(REPO_ROOT, '.tools', 'kafka', 'libs');
const STARTUP_TIMEOUT_MS = 60_000;

export interface StartKafkaOptions {
  dir: string;
  port: number;
  controllerPort: number;
  topics?: Array<{ name: string; partitions: number }>;
  /** Directory holding the broker jars (default `<repo>/.tools/kafka/libs`). */
  libsDir?: string;
}

/** True when `libsDir` holds the broker jar (what `scripts/ensure-tools.sh` installs). */
export function hasKafkaLibs(libsDir: string = DEFAULT_KAFKA_LIBS): boolean {
  return existsSync(libsDir) && readdirSync(libsDir).some((f) => /^kafka_2\.13-.*\.jar$/.test(f));
}

function serverProperties(dataDir: string, port: number, controllerPort: number): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
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

/** Start the broker (formatting its storage on first use) and create missing topics. */
export async function startKafka(
  opts: StartKafkaOptions,
): Promise<ServiceHandle & { brokers: string }> {
  const dir = resolve(opts.dir);
  const libs = opts.libsDir ?? DEFAULT_KAFKA_LIBS;
  if (!hasKafkaLibs(libs)) {
    throw new Error(`Kafka jars missing in ${libs}; run: bash scripts/ensure-tools.sh`);
  }
  assertNotRunning(dir, KAFKA_NAME, KAFKA_MARKER);
  mkdirSync(dir, { recursive: true });
  const dataDir = join(dir, 'data');
  const propsFile = join(dir, 'server.properties');
  const log4jFile = join(dir, 'log4j.properties');
  const logFile = join(dir, 'kafka.log'); // JVM stdout/stderr
  const serverLog = join(dir, 'server.log'); // log4j, WARN and above
  const classpath = `${libs}/*`;

  // Rewritten every start: ports may change between runs; the storage does not care.
  writeFileSync(propsFile, serverProperties(dataDir, opts.port, opts.controllerPort));
  writeFileSync(log4jFile, log4jProperties(serverLog));
  const jvmLog = [`-Dlog4j.configuration=file:${log4jFile}`, `-Dkafka.logs.dir=${dir}`];

  if (!existsSync(join(dataDir, 'meta.properties'))) {
    const uuid = runTool(classpath, jvmLog, ['random-uuid']).trim();
    runTool(classpath, jvmLog, ['format', '-t', uuid, '-c', propsFile]);
  }

  const pid = spawnDetached('java', [
    '-Xms256m', '-Xmx512m', '-XX:+UseSerialGC', '-Djava.awt.headless=true',
    ...jvmLog, '-cp', classpath, 'kafka.Kafka', propsFile,
  ], { logFile, cwd: dir });
  const brokers = `127.0.0.1:${opts.port}`;
  writeServiceFiles(dir, {
    name: KAFKA_NAME, pid, address: brokers, logFile, startedAt: new Date().toISOString(),
  });
  const handle = makeHandle(KAFKA_NAME, pid, logFile, dir);

  const kafka = new Kafka({
    clientId: 'stack',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 0 },
  });
  const topics = opts.topics ?? DEFAULT_TOPICS;
  try {
    // Ready means: the broker answers metadata and the topics exist (creating them
    // needs the controller, which is the slower half of startup).
    await waitReady({
      name: KAFKA_NAME, pid, logFile: `${logFile} / ${serverLog}`, timeoutMs: STARTUP_TIMEOUT_MS,
      intervalMs: 500,
      ready: async () => {
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
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return { ...handle, brokers };
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
