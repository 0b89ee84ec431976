// Apache ZooKeeper, standalone, on the JVM: the coordination service a ReplicatedMergeTree
// needs. Its server jar (org.apache.zookeeper:zookeeper 3.8.4) comes with the Kafka 3.9
// broker's runtime classpath of Kafka 3.9.1, which scripts/ensure-tools.sh installs in .tools/kafka/3.9.1/libs
// (etc/kafka/pom.xml says what to do on Kafka 4, which drops it). Used by test/schema/clusterDdl.test.ts to see how far chdb's engine
// gets with replicated tables (docs/schema.md, "What was tested").
//
// Wire protocol: ZooKeeper's own client protocol (jute over TCP) on 127.0.0.1:<port>; we
// only start it and wait for the port, the engine is the client.

import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { COMPAT_KAFKA_VERSION, kafkaLibsDir } from './kafka.ts';

/** Kafka 3.9's classpath holds ZooKeeper's server; Kafka 4's does not. */
const ZOOKEEPER_LIBS = kafkaLibsDir(COMPAT_KAFKA_VERSION);
import { makeHandle, portAccepts, spawnDetached, waitReady, writeServiceFiles } from './service.ts';
import type { ServiceHandle } from './service.ts';

export const ZOOKEEPER_NAME = 'zookeeper';
const STARTUP_TIMEOUT_MS = 60_000;

/** The ZooKeeper server jar in `libs`, or undefined. */
export function zooKeeperJar(libs: string = ZOOKEEPER_LIBS): string | undefined {
  try {
    return readdirSync(libs).find((name) => /^zookeeper-\d[\d.]*\.jar$/.test(name));
  } catch {
    return undefined;
  }
}

export async function startZooKeeper(opts: { dir: string; port: number; libs?: string }): Promise<ServiceHandle & { connect: string }> {
  const libs = opts.libs ?? ZOOKEEPER_LIBS;
  if (zooKeeperJar(libs) === undefined) throw new Error(`ZooKeeper's jar is missing in ${libs}; run: bash scripts/ensure-tools.sh`);
  const dir = resolve(opts.dir);
  mkdirSync(join(dir, 'data'), { recursive: true });
  const cfg = join(dir, 'zoo.cfg');
  writeFileSync(cfg, [
    'tickTime=2000',
    `dataDir=${join(dir, 'data')}`,
    `clientPort=${opts.port}`,
    'clientPortAddress=127.0.0.1',
    'admin.enableServer=false',
    '',
  ].join('\n'));
  const logFile = join(dir, 'zookeeper.log');
  const pid = spawnDetached('java', ['-Xmx256m', '-cp', `${libs}/*`, 'org.apache.zookeeper.server.ZooKeeperServerMain', cfg], { logFile });
  const connect = `127.0.0.1:${opts.port}`;
  writeServiceFiles(dir, { name: ZOOKEEPER_NAME, pid, address: connect, logFile, startedAt: new Date().toISOString() });
  const handle = makeHandle(ZOOKEEPER_NAME, pid, logFile, dir);
  await waitReady({ name: ZOOKEEPER_NAME, pid, logFile, timeoutMs: STARTUP_TIMEOUT_MS, ready: () => portAccepts(opts.port) });
  return { ...handle, connect };
}
