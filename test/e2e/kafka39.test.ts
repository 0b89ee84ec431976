/**
 * The product against the older broker line (COMPAT_KAFKA_VERSION in etc/kafka/pom.xml,
 * 3.9.1), for users who have not moved to 4.x: `anonymizer produce` then `anonymizer run
 * --drain` through the real proxy into the real ClickHouse engine, on a broker started
 * from the 3.9.1 jars (KAFKA_VERSION's stack). Exactly N rows stored, offsets committed to
 * the high-water marks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPAT_KAFKA_VERSION, readPidFile } from '../../stack/index.ts';
import { chQuery, createTopic, offsetsOf, readAccessLog, runCli, startE2EStack, type E2EStack } from '../support/e2eStack.ts';

const COUNT = 4_000;
let stack: E2EStack;

beforeAll(async () => {
  stack = await startE2EStack('kafka39', { kafkaVersion: COMPAT_KAFKA_VERSION });
});

afterAll(async () => {
  await stack?.stop();
});

describe(`anonymizer against Kafka ${COMPAT_KAFKA_VERSION}`, () => {
  it('the broker really runs the older jars', () => {
    const pid = readPidFile(join(stack.dir, 'kafka', 'kafka.pid'))!;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline.some((arg) => arg.endsWith(`/.tools/kafka/${COMPAT_KAFKA_VERSION}/libs/*`))).toBe(true);
    expect(stack.kafkaVersion).toBe(COMPAT_KAFKA_VERSION);
  });

  it(`produce, then run --drain: exactly ${COUNT} rows, offsets at the high-water marks`, async () => {
    const topic = 'k39_http_log';
    const database = 'k39';
    const startMillis = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
    await createTopic(stack, topic);
    await createTopic(stack, `${topic}_dlq`, 1);
    await chQuery(stack, `CREATE DATABASE IF NOT EXISTS ${database}`);
    const migrate = await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: database });
    expect(migrate.status, migrate.stderr).toBe(0);

    const produce = await runCli(['produce', '--count', String(COUNT), '--rate', '100000', '--seed', '39', '--start', String(startMillis)], { KAFKA_BROKERS: stack.brokers, KAFKA_TOPIC: topic });
    expect(produce.status, produce.stderr).toBe(0);

    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '64k' });
    const run = await runCli(['run', '--drain'], {
      KAFKA_BROKERS: stack.brokers,
      KAFKA_TOPIC: topic,
      KAFKA_GROUP_ID: 'k39',
      KAFKA_DLQ_TOPIC: `${topic}_dlq`,
      CLICKHOUSE_URL: proxy.url,
      CLICKHOUSE_DATABASE: database,
      SPOOL_DIR: join(stack.dir, 'spool'),
      PROXY_MIN_INTERVAL_MS: '1000',
      PROXY_MARGIN_MS: '150',
      PROXY_MAX_BODY_BYTES: String(64 * 1024),
    });
    expect(run.status, run.stderr.slice(-3000)).toBe(0);

    const [count, distinct] = (await chQuery(stack, 'SELECT count(), uniqExact(url) FROM http_log FORMAT TSV', database)).trim().split('\t').map(Number);
    expect([count, distinct]).toEqual([COUNT, COUNT]);
    const offsets = await offsetsOf(stack, 'k39', topic);
    expect([...offsets.values()].reduce((sum, [, high]) => sum + high, 0)).toBe(COUNT);
    for (const [partition, [committed, high]] of offsets) expect(committed, `partition ${partition}`).toBe(high);
    // More than one request: the drain paced itself through the proxy on this broker too.
    const requests = readAccessLog(proxy.accessLog);
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests.every((request) => request.status === 200)).toBe(true);
    console.info(`e2e kafka ${COMPAT_KAFKA_VERSION}: ${COUNT} records, ${requests.length} requests, ${run.seconds.toFixed(1)} s for run --drain`);
  });
});
