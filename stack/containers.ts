// The integration stack on testcontainers (docs/architecture.md, "The local stack"; the with-Docker column): the same three
// services as the local stack, from the images docker-compose.yml uses, on the same
// 127.0.0.1 ports the caller chose, so tests cannot tell them apart. Selected with
// STACK=containers (test/support/e2eStack.ts); loaded only then, so the local stack and
// `npm run stack:*` never load testcontainers.
//
// Each service is a container bound to a fixed host port: Kafka advertises that port, a
// ClickHouse stopped and started again (an outage in a fault test) comes back on it with
// its data, which lives in a bind-mounted host directory, and nginx writes its access log
// into a bind-mounted directory the tests read. nginx reaches its upstream, a port on the
// host (ClickHouse, or a fault-injecting proxy in front of it), through testcontainers'
// host port forwarding.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GenericContainer, getContainerRuntimeClient, TestContainers, Wait, type StartedTestContainer } from 'testcontainers';
import { kafkaVersion } from './kafka.ts';
import { NGINX_TEMPLATE, renderTemplate } from './proxy.ts';

// The images of docker-compose.yml, so both "with Docker" setups run the same versions;
// Kafka's follows KAFKA_VERSION like the local stack's jars (default: the pinned one).
export const KAFKA_IMAGE = `apache/kafka:${kafkaVersion()}`;
export const CLICKHOUSE_IMAGE = 'clickhouse/clickhouse-server:26.7';
export const NGINX_IMAGE = 'nginx:1.28.0-alpine';

/** A service running in a container. */
export interface ContainerService {
  readonly name: string;
  /** Stops and removes the container. Idempotent. */
  stop(): Promise<void>;
}

export type EngineProbe = { readonly ok: true; readonly engine: string } | { readonly ok: false; readonly reason: string };

/** Whether a container engine answers, as testcontainers finds one (DOCKER_HOST, the socket, ~/.testcontainers.properties). */
export async function probeContainerEngine(): Promise<EngineProbe> {
  try {
    const client = await getContainerRuntimeClient();
    return { ok: true, engine: `${client.info.containerRuntime.operatingSystem} ${client.info.containerRuntime.serverVersion} at ${client.info.containerRuntime.host}` };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

function handle(name: string, container: StartedTestContainer): ContainerService {
  let stopped: Promise<unknown> | undefined;
  return {
    name,
    stop: async () => {
      stopped ??= container.stop({ timeout: 10_000 });
      await stopped;
    },
  };
}

/** Kafka in KRaft mode, one node, configured as stack/kafka.ts configures the local broker. */
export async function startKafkaContainer(opts: { port: number }): Promise<ContainerService & { brokers: string }> {
  const container = await new GenericContainer(KAFKA_IMAGE)
    .withExposedPorts({ container: 9092, host: opts.port })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      // As in docker-compose.yml: any fixed base64url id; the storage is formatted with it.
      CLUSTER_ID: 'MkU3OEVBNTcwNTJENDM2Qk',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${opts.port}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'PLAINTEXT',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      KAFKA_NUM_PARTITIONS: '3',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(120_000)
    .start();
  return { ...handle('kafka', container), brokers: `127.0.0.1:${opts.port}` };
}

/** The ClickHouse server; its data directory is `dir` on the host, so a restart keeps the tables. */
export async function startClickHouseContainer(opts: { dir: string; port: number }): Promise<ContainerService & { url: string }> {
  const data = resolve(opts.dir, 'data');
  mkdirSync(data, { recursive: true });
  const container = await new GenericContainer(CLICKHOUSE_IMAGE)
    .withExposedPorts({ container: 8123, host: opts.port })
    // The default user without a password, reachable from outside the container: a test server.
    .withEnvironment({ CLICKHOUSE_SKIP_USER_SETUP: '1' })
    .withBindMounts([{ source: data, target: '/var/lib/clickhouse' }])
    .withWaitStrategy(Wait.forHttp('/ping', 8123).forStatusCode(200))
    .withStartupTimeout(120_000)
    .start();
  return { ...handle('clickhouse', container), url: `http://127.0.0.1:${opts.port}` };
}

/** The ch-proxy: the nginx image running etc/ch-proxy/nginx.conf, with its logs in `dir` on the host. */
export async function startProxyContainer(opts: {
  dir: string;
  port: number;
  upstreamPort: number;
  rate?: string;
  maxBody?: string;
}): Promise<ContainerService & { url: string; accessLog: string }> {
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true });
  const prefix = '/ch-proxy';
  // The upstream is a port on the host: ClickHouse's, or a fault proxy's in front of it.
  await TestContainers.exposeHostPorts(opts.upstreamPort);
  writeFileSync(
    join(dir, 'nginx.conf'),
    renderTemplate(readFileSync(NGINX_TEMPLATE, 'utf8'), {
      PROXY_RATE: opts.rate ?? '1r/m',
      PROXY_MAX_BODY: opts.maxBody ?? '1m',
      PROXY_LISTEN: '0.0.0.0',
      PROXY_PORT: '8124',
      UPSTREAM: `host.testcontainers.internal:${opts.upstreamPort}`,
      PREFIX: prefix,
    }),
  );
  const container = await new GenericContainer(NGINX_IMAGE)
    .withExposedPorts({ container: 8124, host: opts.port })
    .withBindMounts([{ source: dir, target: prefix }])
    .withCommand(['nginx', '-p', prefix, '-c', `${prefix}/nginx.conf`, '-e', `${prefix}/error.log`, '-g', 'daemon off;'])
    .withWaitStrategy(Wait.forListeningPorts())
    .withStartupTimeout(60_000)
    .start();
  return { ...handle('proxy', container), url: `http://127.0.0.1:${opts.port}`, accessLog: join(dir, 'access.log') };
}
