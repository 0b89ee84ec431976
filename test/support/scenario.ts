/**
 * What the real-stack fault suites share: recent timestamps, one isolated scenario per
 * test, synthetic records, and the exactly-once check against ClickHouse itself.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import type { SourceRecord } from '../../src/domain/encodeRecord.ts';
import { uniformRecords } from '../../src/synthetic/uniformDataset.ts';
import { ALLOCATOR_ENV, HEAP_FLAGS } from '../../src/cli/memoryBound.ts';
import { chQuery, createTopic, runCli, type E2EStack, type Proxy } from './e2eStack.ts';
import { readMetricsFile, type Samples } from './metrics.ts';

// Recent timestamps (an hour ago, on a whole minute): the tables' retention TTLs would
// drop rows dated long ago before a test could count them.
export const START_MILLIS = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
export const INTERVAL_MS = 1_000;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One scenario's own topic, dead-letter topic, database, group and spool. */
export interface Scenario {
  readonly name: string;
  readonly topic: string;
  readonly dlq: string;
  readonly database: string;
  readonly spoolDir: string;
  env(clickhouseUrl: string, extra?: Record<string, string>): Record<string, string>;
}


export function records(seed: number, count: number): SourceRecord[] {
  const generator = uniformRecords({ seed: BigInt(seed), startMillis: START_MILLIS, rate: 100_000 });
  return Array.from({ length: count }, () => generator.next().value!);
}

export function produceArgs(seed: number, count: number, rate: number): string[] {
  return ['produce', '--count', String(count), '--rate', String(rate), '--seed', String(seed), '--start', String(START_MILLIS)];
}




export function expectNoRawAddress(text: string, expected: readonly SourceRecord[]): void {
  const leaked = expected.filter((record) => text.includes(record.remoteAddr)).map((record) => record.remoteAddr);
  expect(leaked).toEqual([]);
}

/** A small seeded PRNG, so the crash moments are the same on every run. */
export function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** What one scenario's `anonymizer run` is started with: its own topic, group, database and spool, a fast proxy pace, small bodies. */
export function scenarioEnv(options: {
  readonly brokers: string;
  readonly topic: string;
  readonly group: string;
  readonly clickhouseUrl: string;
  readonly database: string;
  readonly spoolDir: string;
  readonly marginMs?: number;
  readonly logLevel?: string;
}): Record<string, string> {
  return {
    KAFKA_BROKERS: options.brokers,
    KAFKA_TOPIC: options.topic,
    KAFKA_DLQ_TOPIC: `${options.topic}_dlq`,
    KAFKA_GROUP_ID: options.group,
    CLICKHOUSE_URL: options.clickhouseUrl,
    CLICKHOUSE_DATABASE: options.database,
    SPOOL_DIR: options.spoolDir,
    PROXY_MIN_INTERVAL_MS: String(INTERVAL_MS),
    PROXY_MARGIN_MS: String(options.marginMs ?? 150),
    PROXY_MAX_BODY_BYTES: String(32 * 1024),
    INSERT_CODEC: 'zstd',
    INSERT_LEVEL: '3',
    LOG_LEVEL: options.logLevel ?? 'info',
    // Started as `npm start` and the image start it, with the memory settings already set,
    // so `run` does not re-execute itself (src/cli/memoryBound.ts; tested on its own in
    // test/cli/memoryBound.test.ts): the kill -9 moments are measured from a start that
    // does the work.
    ...ALLOCATOR_ENV,
    NODE_OPTIONS: HEAP_FLAGS.join(' '),
  };
}

/**
 * The scenario helpers bound to one test file's stack: each scenario has its own topic,
 * dead-letter topic, database, group and spool, so the tests of a file never see each
 * other's records.
 */
export function scenarioHelpers(stackOf: () => E2EStack) {
  let drains = 0;
  async function scenario(name: string): Promise<Scenario> {
    const topic = `faults_${name}`;
    const database = `faults_${name}`;
    await createTopic(stackOf(), topic, 3);
    await createTopic(stackOf(), `${topic}_dlq`, 1);
    await chQuery(stackOf(), `CREATE DATABASE IF NOT EXISTS ${database}`);
    const migrate = await runCli(['migrate'], { CLICKHOUSE_URL: stackOf().clickhouseUrl, CLICKHOUSE_DATABASE: database });
    expect(migrate.status, migrate.stderr).toBe(0);
    const spoolDir = join(stackOf().dir, `spool-${name}`);
    return {
      name,
      topic,
      dlq: `${topic}_dlq`,
      database,
      spoolDir,
      env: (clickhouseUrl, extra = {}) => ({
        ...scenarioEnv({ brokers: stackOf().brokers, topic, group: `faults-${name}`, clickhouseUrl, database, spoolDir }),
        ...extra,
      }),
    };
  }
  async function produce(s: Scenario, seed: number, count: number, rate = 100_000): Promise<SourceRecord[]> {
    const result = await runCli(produceArgs(seed, count, rate), { KAFKA_BROKERS: stackOf().brokers, KAFKA_TOPIC: s.topic });
    expect(result.status, result.stderr).toBe(0);
    return records(seed, count);
  }
  /** A `run --drain` that must exit 0: its output, and the metrics it wrote when it ended. */
  async function drain(s: Scenario, proxy: Proxy, extra: Record<string, string> = {}): Promise<{ output: string; metrics: Samples }> {
    const metricsFile = join(stackOf().dir, `metrics-${s.name}-${++drains}.prom`);
    const result = await runCli(['run', '--drain'], s.env(proxy.url, { METRICS_FILE: metricsFile, ...extra }), 120_000);
    expect(result.status, result.stderr.slice(-4000)).toBe(0);
    return { output: result.stdout + result.stderr, metrics: readMetricsFile(metricsFile) };
  }
  /** Exactly the expected rows, once each, anonymized, and the per-minute totals agree. */
  async function expectExactlyOnce(s: Scenario, expected: readonly SourceRecord[]): Promise<void> {
    const n = expected.length;
    const [count, distinct, anonymized] = (await chQuery(stackOf(), "SELECT count(), uniqExact(url), countIf(match(remote_addr, '^\\\\d+\\\\.\\\\d+\\\\.\\\\d+\\\\.X$')) FROM http_log FORMAT TSV", s.database))
      .trim()
      .split('\t')
      .map(Number);
    expect({ count, distinct, anonymized }).toEqual({ count: n, distinct: n, anonymized: n });
    const stored = new Set((await chQuery(stackOf(), 'SELECT url FROM http_log FORMAT TSV', s.database)).trim().split('\n'));
    expect(expected.filter((record) => !stored.has(record.url)).map((record) => record.url)).toEqual([]);
    const [requests, bytes] = (await chQuery(stackOf(), 'SELECT sum(requests), sum(bytes_sent) FROM http_log_totals_1m FORMAT TSV', s.database)).trim().split('\t');
    expect(Number(requests)).toBe(n);
    expect(BigInt(bytes!)).toBe(expected.reduce((sum, record) => sum + record.bytesSent, 0n));
    const [rawBytes] = (await chQuery(stackOf(), 'SELECT sum(bytes_sent) FROM http_log FORMAT TSV', s.database)).trim().split('\t');
    expect(BigInt(rawBytes!)).toBe(BigInt(bytes!));
  }

  return { scenario, produce, drain, expectExactlyOnce };
}
