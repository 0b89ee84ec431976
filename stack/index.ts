// The local development/test stack without Docker (docs/architecture.md, "The local stack"): Kafka on the JVM, the
// ClickHouse engine via chdb behind a ClickHouse-compatible HTTP endpoint, and the real
// nginx ch-proxy. Used by stack/cli.ts and by integration tests.

export type { ServiceHandle, ServiceState } from './service.ts';
export {
  REPO_ROOT, freePort, isAlive, isRunning, listensOn, pidFileOf, portAccepts, portOwnedBy, readPidFile,
  readState, stateFileOf, stopPid,
} from './service.ts';
export {
  COMPAT_KAFKA_VERSION, DEFAULT_KAFKA_LIBS, DEFAULT_TOPICS, KAFKA_MARKER, KAFKA_NAME, PINNED_KAFKA_VERSION,
  hasKafkaLibs, kafkaLibsDir, kafkaVersion, startKafka,
} from './kafka.ts';
export type { KafkaHandle, KafkaSecurity, StartKafkaOptions } from './kafka.ts';
export { SCRAM_MECHANISM, SCRAM_USERNAME, ensureStackTls, readSecret } from './tls.ts';
export type { StackTls } from './tls.ts';
export { createTopicsAndWait } from './topics.ts';
export { CLICKHOUSE_MARKER, CLICKHOUSE_NAME, startClickHouse } from './clickhouse.ts';
export type { StartClickHouseOptions } from './clickhouse.ts';
export { NGINX_TEMPLATE, PROXY_MARKER, PROXY_NAME, nginxBin, renderTemplate, startProxy, withTls } from './proxy.ts';
export type { StartProxyOptions } from './proxy.ts';
