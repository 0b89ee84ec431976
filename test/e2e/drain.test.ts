/**
 * The walking skeleton end to end, on real components only: `anonymizer produce` writes
 * Cap'n Proto records to a real Kafka broker, `anonymizer run --drain` takes them through
 * the real nginx ch-proxy (etc/ch-proxy/nginx.conf) into the real ClickHouse engine, and
 * every assertion is made by querying ClickHouse directly, reading the group's committed
 * offsets from the broker, and reading nginx's own access log.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitStatements } from '../../src/cli/migrate.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniformRecords } from '../../src/synthetic/uniformDataset.ts';
import { anonymizeAddress } from '../../src/domain/anonymizeAddress.ts';
import { freePort } from '../../stack/index.ts';
import { chQuery, createTopic, offsetsOf, readAccessLog, runCli, startCli, startE2EStack, type E2EStack } from '../support/e2eStack.ts';

let stack: E2EStack;

beforeAll(async () => {
  stack = await startE2EStack('drain');
});

afterAll(async () => {
  await stack?.stop();
});

interface Scenario {
  readonly name: string;
  readonly count: number;
  readonly seed: number;
  readonly proxyRate: string;
  readonly proxyMaxBody: string;
  readonly env: Readonly<Record<string, string>>;
}

/** What the producer wrote for a seed: the same generator, run again. */
function expectedRecords(seed: number, count: number, startMillis: number) {
  const records = uniformRecords({ seed: BigInt(seed), startMillis, rate: 100_000 });
  return Array.from({ length: count }, () => records.next().value!);
}

async function produceAndDrain(scenario: Scenario) {
  const topic = `e2e_${scenario.name}`;
  const group = `e2e-${scenario.name}`;
  const database = `e2e_${scenario.name}`;
  // An hour ago: the tables' retention TTLs would drop rows dated long ago.
  const startMillis = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
  await createTopic(stack, topic);
  await createTopic(stack, `${topic}_dlq`, 1);
  await chQuery(stack, `CREATE DATABASE IF NOT EXISTS ${database}`);
  const migrate = await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: database });
  expect(migrate.status, migrate.stderr).toBe(0);

  const produce = await runCli(['produce', '--count', String(scenario.count), '--rate', '100000', '--seed', String(scenario.seed), '--start', String(startMillis)], {
    KAFKA_BROKERS: stack.brokers,
    KAFKA_TOPIC: topic,
  });
  expect(produce.status, produce.stderr).toBe(0);

  const proxy = await stack.startProxy({ rate: scenario.proxyRate, maxBody: scenario.proxyMaxBody });
  const run = await runCli(['run', '--drain'], {
    KAFKA_BROKERS: stack.brokers,
    KAFKA_TOPIC: topic,
    KAFKA_GROUP_ID: group,
    CLICKHOUSE_URL: proxy.url,
    CLICKHOUSE_DATABASE: database,
    KAFKA_DLQ_TOPIC: `${topic}_dlq`,
    SPOOL_DIR: join(stack.dir, `spool-${scenario.name}`),
    LOG_LEVEL: 'info',
    ...scenario.env,
  });
  expect(run.status, run.stderr.slice(-3000)).toBe(0);
  const expected = expectedRecords(scenario.seed, scenario.count, startMillis);
  return { topic, group, database, proxy, run, expected };
}

describe('anonymizer run --drain through the real proxy', () => {
  it('takes a backlog of 2,000 records into ClickHouse with one request at 1r/m', async () => {
    const { topic, group, database, proxy, run, expected } = await produceAndDrain({
      name: 'one_request',
      count: 2_000,
      seed: 11,
      proxyRate: '1r/m',
      proxyMaxBody: '1m',
      env: {},
    });

    // The precondition the test relies on: every produced record has its own URL.
    const expectedUrls = expected.map((record) => record.url).sort();
    expect(new Set(expectedUrls).size).toBe(2_000);

    // Exactly N rows, every URL exactly once, and each row is the record it came from.
    const stored = (await chQuery(stack, 'SELECT url, remote_addr, toUnixTimestamp(timestamp), resource_id, bytes_sent, request_time_milli, response_status, cache_status, method FROM http_log ORDER BY url FORMAT TSV', database))
      .trim()
      .split('\n')
      .map((line) => line.split('\t'));
    expect(stored).toHaveLength(2_000);
    const byUrl = new Map(expected.map((record) => [record.url, record]));
    expect(stored.map((row) => row[0])).toEqual(expectedUrls);
    for (const [url, remoteAddr, timestamp, resourceId, bytesSent, requestTime, status, cache, method] of stored) {
      const source = byUrl.get(url!)!;
      expect([remoteAddr, timestamp, resourceId, bytesSent, requestTime, status, cache, method]).toEqual([
        anonymizeAddress(source.remoteAddr).value,
        String(source.timestampEpochMilli / 1000n),
        String(source.resourceId),
        String(source.bytesSent),
        String(source.requestTimeMilli),
        String(source.responseStatus),
        source.cacheStatus,
        source.method,
      ]);
      expect(remoteAddr).toMatch(/^\d{1,3}\.\d{1,3}\.\d{1,3}\.X$/);
    }

    // Offsets committed up to the end of every partition.
    const offsets = await offsetsOf(stack, group, topic);
    expect([...offsets.values()].reduce((sum, [, high]) => sum + high, 0)).toBe(2_000);
    for (const [partition, [committed, high]] of offsets) expect(committed, `partition ${partition}`).toBe(high);

    // One request went through nginx, and it was accepted.
    const requests = readAccessLog(proxy.accessLog);
    expect(requests.map((request) => [request.method, request.status])).toEqual([['POST', 200]]);

    // No raw address anywhere in what the run printed.
    const output = run.stdout + run.stderr;
    for (const record of expected) expect(output.includes(record.remoteAddr), record.remoteAddr).toBe(false);
    console.info(`e2e one_request: 2000 records, 1 request, ${run.seconds.toFixed(1)} s for run --drain`);
  });

  it('paces a larger backlog across several requests, never two closer than the interval', async () => {
    const intervalMs = 1_000;
    const { topic, group, database, proxy, run, expected } = await produceAndDrain({
      name: 'paced',
      count: 6_000,
      seed: 12,
      proxyRate: '60r/m',
      proxyMaxBody: '48k',
      env: { PROXY_MIN_INTERVAL_MS: String(intervalMs), PROXY_MARGIN_MS: '150', PROXY_MAX_BODY_BYTES: String(48 * 1024), INSERT_CODEC: 'zstd', INSERT_LEVEL: '9' },
    });

    const [count, distinct, anonymized] = (await chQuery(stack, "SELECT count(), uniqExact(url), countIf(match(remote_addr, '^\\\\d+\\\\.\\\\d+\\\\.\\\\d+\\\\.X$')) FROM http_log FORMAT TSV", database))
      .trim()
      .split('\t')
      .map(Number);
    expect([count, distinct, anonymized]).toEqual([6_000, 6_000, 6_000]);
    const storedUrls = new Set((await chQuery(stack, 'SELECT url FROM http_log FORMAT TSV', database)).trim().split('\n'));
    for (const record of expected) expect(storedUrls.has(record.url)).toBe(true);

    const offsets = await offsetsOf(stack, group, topic);
    for (const [partition, [committed, high]] of offsets) expect(committed, `partition ${partition}`).toBe(high);

    const requests = readAccessLog(proxy.accessLog);
    // 6,000 uniform rows take ~180 kB compressed: at 48 kB a body, at least four requests.
    expect(requests.length).toBeGreaterThanOrEqual(4);
    expect(requests.every((request) => request.status === 200 && request.method === 'POST')).toBe(true);
    for (let i = 1; i < requests.length; i++) {
      expect(requests[i]!.startMs - requests[i - 1]!.startMs, `gap before request ${i}`).toBeGreaterThanOrEqual(intervalMs);
    }
    // Never over the body limit: nginx would have answered 413.
    expect(requests.every((request) => request.requestLength <= 48 * 1024 + 2_048)).toBe(true);
    console.info(`e2e paced: 6000 records, ${requests.length} requests, ${(6000 / requests.length).toFixed(0)} rows/request, ${run.seconds.toFixed(1)} s for run --drain`);
  });

  it('migrate through the proxy takes one slot per statement, waiting for each', async () => {
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '1m' });
    await chQuery(stack, 'CREATE DATABASE IF NOT EXISTS e2e_migrate');
    const migrate = await runCli(['migrate'], { CLICKHOUSE_URL: proxy.url, CLICKHOUSE_DATABASE: 'e2e_migrate', PROXY_MIN_INTERVAL_MS: '1000', PROXY_MARGIN_MS: '100' });
    expect(migrate.status, migrate.stderr).toBe(0);
    // One table per statement of the schema, as migrate itself splits it.
    const statements = splitStatements(readFileSync(new URL('../../etc/clickhouse/schema.sql', import.meta.url), 'utf8')).length;
    expect(statements).toBeGreaterThanOrEqual(3);
    const tables = (await chQuery(stack, "SELECT name FROM system.tables WHERE database = 'e2e_migrate' ORDER BY name FORMAT TSV")).trim().split('\n');
    expect(tables).toContain('http_log');
    expect(tables).toContain('http_log_totals_1m');
    expect(tables).toHaveLength(statements);
    const accepted = readAccessLog(proxy.accessLog).filter((line) => line.status === 200);
    expect(accepted).toHaveLength(statements);
    for (let i = 1; i < accepted.length; i++) expect(accepted[i]!.startMs - accepted[i - 1]!.startMs).toBeGreaterThanOrEqual(1_000);
    // Idempotent: a second run changes nothing and succeeds.
    const again = await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: 'e2e_migrate' });
    expect(again.status, again.stderr).toBe(0);
  });

  it('metrics and health: /metrics moves as records flow, /healthz and /readyz answer', async () => {
    const topic = 'e2e_metrics';
    await createTopic(stack, topic);
    await createTopic(stack, `${topic}_dlq`, 1);
    await chQuery(stack, 'CREATE DATABASE IF NOT EXISTS e2e_metrics');
    expect((await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: 'e2e_metrics' })).status).toBe(0);
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '1m' });
    const port = await freePort();
    const run = startCli(['run'], {
      KAFKA_BROKERS: stack.brokers,
      KAFKA_TOPIC: topic,
      KAFKA_DLQ_TOPIC: `${topic}_dlq`,
      KAFKA_GROUP_ID: 'e2e-metrics',
      CLICKHOUSE_URL: proxy.url,
      CLICKHOUSE_DATABASE: 'e2e_metrics',
      SPOOL_DIR: join(stack.dir, 'spool-metrics'),
      PROXY_MIN_INTERVAL_MS: '1000',
      PROXY_MARGIN_MS: '150',
      METRICS_PORT: String(port),
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      const metric = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
      let ready = 0;
      for (let i = 0; i < 150 && ready !== 200; i++) {
        ready = await fetch(`${base}/readyz`).then((response) => response.status, () => 0);
        if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(ready).toBe(200);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const before = await (await fetch(`${base}/metrics`)).text();
      expect(metric(before, 'anonymizer_rows_stored_total')).toBe(0);

      const produce = await runCli(['produce', '--count', '1500', '--rate', '100000', '--seed', '41'], { KAFKA_BROKERS: stack.brokers, KAFKA_TOPIC: topic });
      expect(produce.status).toBe(0);
      let after = before;
      for (let i = 0; i < 100 && metric(after, 'anonymizer_rows_stored_total') < 1500; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        after = await (await fetch(`${base}/metrics`)).text();
      }
      expect(metric(after, 'anonymizer_rows_stored_total')).toBe(1500);
      expect(metric(after, 'anonymizer_records_consumed_total')).toBe(1500);
      expect(metric(after, 'anonymizer_insert_requests_total')).toBeGreaterThanOrEqual(1);
      expect(metric(after, 'anonymizer_stored_body_bytes_total')).toBeGreaterThan(0);
      for (const partition of [0, 1, 2]) expect(after).toMatch(new RegExp(`^anonymizer_consumer_lag_messages\\{topic="${topic}",partition="${partition}"\\} 0$`, 'm'));
      expect(after).toMatch(/^anonymizer_next_slot_seconds \d/m);
      // The standard process and Node.js metrics, under their standard names.
      expect(after).toMatch(/^process_resident_memory_bytes \d+/m);
      expect(after).toMatch(/^nodejs_heap_size_used_bytes \d+/m);
      expect(after).not.toMatch(/^anonymizer_(process|nodejs)_/m);
    } finally {
      run.kill('SIGTERM');
      await Promise.race([run.exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      run.kill('SIGKILL');
    }
  });
});
