/**
 * Delivery faults on the real stack (Kafka, the ClickHouse engine, nginx): answers that no retry of the same batch fixes (a batch spanning 150 days), and answers
 * that would fail every batch (a wrong password, a dropped table) while the topic's retention
 * is shorter than the outage. Each test asserts on stored rows (exactly N, once each),
 * exit codes and /metrics, is bounded in time, and stops every process it starts by PID.
 */
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRecord, type SourceRecord } from '../../src/domain/encodeRecord.ts';
import { uniformRecords } from '../../src/synthetic/uniformDataset.ts';
import { createTopicsAndWait, freePort } from '../../stack/index.ts';
import { chQuery, readAccessLog, runCli, startCli, startE2EStack, type CliProcess, type E2EStack, type Proxy } from '../support/e2eStack.ts';
import { startFaultProxy } from '../support/faultProxy.ts';
import { INTERVAL_MS, scenarioEnv } from '../support/scenario.ts';

let stack: E2EStack;
let proxy: Proxy;

beforeAll(async () => {
  stack = await startE2EStack('delivery');
  proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
});

afterAll(async () => {
  await stack?.stop();
});

const DAY_MS = 86_400_000;
// Recent timestamps for the uniform records (an hour ago, on a whole minute): the raw TTL
// (30 days) must not drop them before they are counted.
const START_MILLIS = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
const MARGIN_MS = 150;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Short enough that the broker deletes the records during the outage. */
const SHORT_RETENTION = [
  { name: 'retention.ms', value: '2000' },
  { name: 'segment.ms', value: '500' },
  { name: 'segment.bytes', value: '1048576' },
];

interface Scenario {
  readonly name: string;
  readonly topic: string;
  readonly database: string;
  readonly spoolDir: string;
  env(extra?: Record<string, string>): Record<string, string>;
}

async function admin<T>(work: (client: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
  const client = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).admin();
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.disconnect();
  }
}

async function scenario(name: string, topicConfig: Array<{ name: string; value: string }> = []): Promise<Scenario> {
  const topic = `delivery_${name}`;
  const database = `delivery_${name}`;
  await admin((client) =>
    createTopicsAndWait(client, [
      { topic, numPartitions: 3, replicationFactor: 1, configEntries: topicConfig },
      { topic: `${topic}_dlq`, numPartitions: 1, replicationFactor: 1 },
    ]),
  );
  await chQuery(stack, `CREATE DATABASE IF NOT EXISTS ${database}`);
  const migrate = await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: database });
  expect(migrate.status, migrate.stderr).toBe(0);
  const spoolDir = join(stack.dir, `spool-${name}`);
  return {
    name,
    topic,
    database,
    spoolDir,
    env: (extra = {}) => ({
      ...scenarioEnv({ brokers: stack.brokers, topic, group: `delivery-${name}`, clickhouseUrl: proxy.url, database, spoolDir, marginMs: MARGIN_MS }),
      ...extra,
    }),
  };
}

async function send(s: Scenario, records: readonly SourceRecord[]): Promise<void> {
  const producer = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  try {
    await producer.send({ topic: s.topic, messages: records.map((record, i) => ({ key: String(i), value: encodeRecord(record) })) });
  } finally {
    await producer.disconnect();
  }
}

function uniform(seed: number, count: number): SourceRecord[] {
  const generator = uniformRecords({ seed: BigInt(seed), startMillis: START_MILLIS, rate: 100_000 });
  return Array.from({ length: count }, () => generator.next().value!);
}

/** `count` records, one a day: today (an hour ago), yesterday, … */
function oneADay(count: number, tag: string): SourceRecord[] {
  const base = Date.now() - 3_600_000;
  return Array.from({ length: count }, (_, i) => ({
    timestampEpochMilli: BigInt(base - i * DAY_MS),
    resourceId: BigInt(1_000 + i),
    bytesSent: BigInt(100 + i),
    requestTimeMilli: 5n,
    responseStatus: 200,
    cacheStatus: 'HIT',
    method: 'GET',
    remoteAddr: `10.${i % 200}.7.9`,
    url: `/${tag}/day/${i}`,
  }));
}

async function count(s: Scenario, sql: string): Promise<number> {
  return Number((await chQuery(stack, `${sql} FORMAT TSV`, s.database)).trim() || '0');
}

/** Exactly the expected rows, once each, anonymized; the minute, hour and day totals agree. */
async function expectExactlyOnce(s: Scenario, expected: readonly SourceRecord[]): Promise<void> {
  const n = expected.length;
  const [rows, distinct, anonymized] = (await chQuery(stack, "SELECT count(), uniqExact(url), countIf(match(remote_addr, '^\\\\d+\\\\.\\\\d+\\\\.\\\\d+\\\\.X$')) FROM http_log FORMAT TSV", s.database))
    .trim()
    .split('\t')
    .map(Number);
  expect({ rows, distinct, anonymized }).toEqual({ rows: n, distinct: n, anonymized: n });
  const stored = new Set((await chQuery(stack, 'SELECT url FROM http_log FORMAT TSV', s.database)).trim().split('\n'));
  expect(expected.filter((record) => !stored.has(record.url)).length).toBe(0);
  for (const table of ['http_log_totals_1m', 'http_log_totals_1h', 'http_log_totals_1d']) {
    expect([table, await count(s, `SELECT sum(requests) FROM ${table}`)]).toEqual([table, n]);
  }
}

/** Sum of a metric's samples whose labels include `labels`, from the Prometheus text. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => have[key] === value)) sum += Number(match[3]);
  }
  return sum;
}

interface Observed {
  readonly metrics: string;
  readonly ready: number;
  readonly readyText: string;
}

async function observe(port: number): Promise<Observed> {
  const [metrics, ready] = await Promise.all([fetch(`http://127.0.0.1:${port}/metrics`), fetch(`http://127.0.0.1:${port}/readyz`)]);
  return { metrics: await metrics.text(), ready: ready.status, readyText: await ready.text() };
}

/** Polls until `condition` holds (every 250 ms, at most `ms`); fails with the run's last output. */
async function until(what: string, run: CliProcess, port: number, condition: (o: Observed) => boolean | Promise<boolean>, ms = 60_000): Promise<Observed> {
  const end = Date.now() + ms;
  for (;;) {
    let observed: Observed | undefined;
    try {
      observed = await observe(port);
    } catch {
      // not listening yet
    }
    if (observed && (await condition(observed))) return observed;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${run.output().slice(-3000)}`);
    await sleep(250);
  }
}

/** Per partition: [low watermark, high watermark]. */
async function watermarks(topic: string): Promise<Array<[number, number]>> {
  return admin(async (client) => (await client.fetchTopicOffsets(topic)).map((p) => [Number(p.low), Number(p.high)] as [number, number]));
}

async function stop(run: CliProcess): Promise<number | string> {
  run.kill('SIGTERM');
  const exit = await Promise.race([run.exited, sleep(20_000).then(() => 'timeout')]);
  run.kill('SIGKILL');
  return exit;
}

function expectNoRawAddress(text: string, records: readonly SourceRecord[]): void {
  expect(records.filter((record) => text.includes(record.remoteAddr)).length).toBe(0);
}

describe('delivery faults', () => {
  it('wrong password while the broker deletes the topic: blocked (readyz 503, metric), spooled, then a restart with the right one stores exactly N', async () => {
    const s = await scenario('password', SHORT_RETENTION);
    const port = await freePort();
    const run = startCli(['run'], s.env({ CLICKHOUSE_PASSWORD: 'wrong', METRICS_PORT: String(port) }));
    try {
      // Joined, not blocked yet: ready.
      await until('the consumer to join', run, port, (o) => o.ready === 200);
      const expected = uniform(41, 3_000);
      await send(s, expected);
      const blockedAt = Date.now();
      const blocked = await until('delivery blocked by the password', run, port, (o) => metric(o.metrics, 'anonymizer_delivery_blocked', { reason: 'authentication' }) === 1);
      expect(blocked.ready).toBe(503);
      expect(blocked.readyText).toContain('authentication');
      expect(blocked.readyText).not.toContain('wrong');
      // Ingestion goes on: every record consumed, sealed batches in the spool, none quarantined.
      await until('every record consumed and batches spooled', run, port, (o) => metric(o.metrics, 'anonymizer_records_consumed_total') === expected.length && metric(o.metrics, 'anonymizer_spool_batches') >= 1);
      // The broker deletes what it held: the low watermark passes every record produced.
      const deletedBy = Date.now() + 60_000;
      for (let marks = await watermarks(s.topic); !marks.every(([low, high]) => high > 0 && low === high); marks = await watermarks(s.topic)) {
        if (Date.now() > deletedBy) throw new Error(`the broker did not delete the topic's data: ${JSON.stringify(marks)}`);
        await sleep(1_000);
      }
      const still = await observe(port);
      const elapsed = Date.now() - blockedAt;
      expect(metric(still.metrics, 'anonymizer_delivery_blocked', { reason: 'authentication' })).toBe(1);
      expect(still.ready).toBe(503);
      expect(metric(still.metrics, 'anonymizer_batches_quarantined_total')).toBe(0);
      expect(metric(still.metrics, 'anonymizer_rows_stored_total')).toBe(0);
      // Retried once per slot (1.15 s), not faster: the head batch is sent again at each slot.
      const attempts = metric(still.metrics, 'anonymizer_batches_sent_total');
      expect(attempts).toBeGreaterThanOrEqual(2);
      expect(attempts).toBeLessThanOrEqual(Math.floor(elapsed / (INTERVAL_MS + MARGIN_MS)) + 2);
      expect(await count(s, 'SELECT count() FROM http_log')).toBe(0);
      expect(await stop(run)).toBe(0);

      const restart = await runCli(['run', '--drain'], s.env(), 120_000);
      expect(restart.status, restart.stderr.slice(-3000)).toBe(0);
      await expectExactlyOnce(s, expected);
      expectNoRawAddress(run.output() + restart.stderr, expected);
    } finally {
      run.kill('SIGKILL');
    }
  }, 180_000);

  it('http_log dropped: blocked (readyz 503, metric), spooled; `migrate` direct to ClickHouse and delivery resumes without a restart: exactly N', async () => {
    const s = await scenario('dropped', SHORT_RETENTION);
    await chQuery(stack, 'DROP TABLE http_log', s.database);
    const port = await freePort();
    const run = startCli(['run'], s.env({ METRICS_PORT: String(port) }));
    try {
      await until('the consumer to join', run, port, (o) => o.ready === 200);
      const expected = uniform(42, 3_000);
      await send(s, expected);
      const blocked = await until('delivery blocked by the missing table', run, port, (o) => metric(o.metrics, 'anonymizer_delivery_blocked', { reason: 'unknown_table' }) === 1);
      expect(blocked.ready).toBe(503);
      expect(blocked.readyText).toContain('unknown_table');
      await until('every record consumed and batches spooled', run, port, (o) => metric(o.metrics, 'anonymizer_records_consumed_total') === expected.length && metric(o.metrics, 'anonymizer_spool_batches') >= 1);
      // A few more slots while blocked: the batch stays at the head, nothing is quarantined.
      await sleep(3 * (INTERVAL_MS + MARGIN_MS));
      const still = await observe(port);
      expect(metric(still.metrics, 'anonymizer_delivery_blocked', { reason: 'unknown_table' })).toBe(1);
      expect(metric(still.metrics, 'anonymizer_batches_quarantined_total')).toBe(0);
      expect(metric(still.metrics, 'anonymizer_batches_sent_total')).toBeGreaterThanOrEqual(3);

      const migrate = await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: s.database });
      expect(migrate.status, migrate.stderr).toBe(0);
      // The same process stores everything: no restart.
      const resumed = await until('every row stored by the same run', run, port, async (o) => metric(o.metrics, 'anonymizer_rows_stored_total') === expected.length && (await count(s, 'SELECT count() FROM http_log')) === expected.length, 90_000);
      expect(metric(resumed.metrics, 'anonymizer_delivery_blocked', { reason: 'unknown_table' })).toBe(0);
      expect(resumed.ready).toBe(200);
      expect(run.pid).toBeGreaterThan(0);
      expect(await stop(run)).toBe(0);
      await expectExactlyOnce(s, expected);
      expectNoRawAddress(run.output(), expected);
    } finally {
      run.kill('SIGKILL');
    }
  }, 240_000);

  it('150 records on 150 distinct days in one batch: stored once (150 rows in every table), even when the first response is lost', async () => {
    const s = await scenario('days');
    // Keep every day in the raw and minute tables for this test (the TTL test is below).
    await chQuery(stack, 'ALTER TABLE http_log MODIFY TTL timestamp + INTERVAL 400 DAY', s.database);
    await chQuery(stack, 'ALTER TABLE http_log_totals_1m MODIFY TTL minute + INTERVAL 400 DAY', s.database);
    const expected = oneADay(150, 'days');
    await send(s, expected);
    // The first response is cut after ClickHouse stored the batch: the retry (same token) must not store it twice.
    const fault = await startFaultProxy({ upstreamPort: Number(new URL(proxy.url).port), cutResponses: 1 });
    const before = readAccessLog(proxy.accessLog).length;
    try {
      const result = await runCli(['run', '--drain'], s.env({ CLICKHOUSE_URL: `http://127.0.0.1:${fault.port}` }), 120_000);
      expect(result.status, result.stderr.slice(-3000)).toBe(0);
      expect(fault.cuts()).toBe(1);
      expectNoRawAddress(result.stderr, expected);
    } finally {
      await fault.close();
    }
    // One batch of 150 days, accepted twice by the proxy (the cut one and its retry).
    const posts = readAccessLog(proxy.accessLog).slice(before).filter((line) => line.method === 'POST' && line.uri.includes(s.database));
    expect(posts.map((line) => line.status)).toEqual([200, 200]);
    expect(await count(s, "SELECT uniqExact(partition) FROM system.parts WHERE database = currentDatabase() AND table = 'http_log' AND active")).toBe(150);
    await expectExactlyOnce(s, expected);
    const list = await runCli(['spool', 'list', '--json'], { SPOOL_DIR: s.spoolDir });
    expect(list.stdout.trim()).toBe('');
  });

  it('TTL at insert: of 150 days, the raw and minute tables keep the last 30, the hourly and daily totals count all 150', async () => {
    const s = await scenario('ttl');
    const expected = oneADay(150, 'ttl');
    await send(s, expected);
    const result = await runCli(['run', '--drain'], s.env(), 120_000);
    expect(result.status, result.stderr.slice(-3000)).toBe(0);
    // Rows past the raw retention (30 days) are stored by the insert, then dropped by the
    // engine within seconds (their day parts are wholly expired).
    const kept = expected.filter((record) => Number(record.timestampEpochMilli) > Date.now() - 30 * DAY_MS).length;
    expect(kept).toBe(30);
    const end = Date.now() + 60_000;
    while ((await count(s, 'SELECT count() FROM http_log')) !== kept || (await count(s, 'SELECT sum(requests) FROM http_log_totals_1m')) !== kept) {
      if (Date.now() > end) break;
      await sleep(500);
    }
    expect(await count(s, 'SELECT count() FROM http_log')).toBe(kept);
    expect(await count(s, 'SELECT min(timestamp) >= now() - INTERVAL 30 DAY FROM http_log')).toBe(1);
    expect(await count(s, 'SELECT sum(requests) FROM http_log_totals_1m')).toBe(kept);
    expect(await count(s, 'SELECT sum(requests) FROM http_log_totals_1h')).toBe(150);
    expect(await count(s, 'SELECT sum(requests) FROM http_log_totals_1d')).toBe(150);
    expect(await count(s, 'SELECT sum(bytes_sent) FROM http_log_totals_1d')).toBe(expected.reduce((sum, record) => sum + Number(record.bytesSent), 0));
  });
});
