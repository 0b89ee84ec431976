/**
 * Hostile input on the real stack: the real Kafka broker, the
 * ClickHouse engine and nginx, and `anonymizer run` as a process. Each test produces its
 * messages with kafkajs (raw bytes, as an adversary would), runs the product, and then
 * checks by querying ClickHouse and reading the dead-letter topic that every message was
 * stored or dead-lettered exactly once, and that no raw address was stored anywhere.
 * Every run is bounded in time, and every process a test starts is stopped by PID.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymizeAddress } from '../../src/domain/anonymizeAddress.ts';
import { encodeRecord, type SourceRecord } from '../../src/domain/encodeRecord.ts';
import type { HttpLogRow } from '../../src/domain/httpLogRow.ts';
import { createTopicsAndWait, freePort } from '../../stack/index.ts';
import { expectedOutcome, hostileCorpus, leakedColumns, type Outcome } from '../support/hostileCorpus.ts';
import { chQuery, runCli, startCli, startE2EStack, type E2EStack, type Proxy } from '../support/e2eStack.ts';
import { scenarioEnv } from '../support/scenario.ts';

let stack: E2EStack;
let producer: Producer;

beforeAll(async () => {
  stack = await startE2EStack('hostile');
  producer = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
});

afterAll(async () => {
  await producer?.disconnect();
  await stack?.stop();
});

// Recent timestamps (an hour ago): the tables' retention TTLs would drop rows dated long ago.
const START_MILLIS = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
const PARTITIONS = 3;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Scenario {
  readonly topic: string;
  readonly dlq: string;
  readonly database: string;
  env(proxy: Proxy, extra?: Record<string, string>): Record<string, string>;
}

async function scenario(name: string): Promise<Scenario> {
  const topic = `hostile_${name}`;
  const database = `hostile_${name}`;
  const admin = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await createTopicsAndWait(admin, [
      { topic, numPartitions: PARTITIONS, replicationFactor: 1 },
      // The DLQ topic at the broker's default limits: thousands of dead letters from one
      // fetch are sent in calls under its max.message.bytes (src/io/deadLetterSink.ts).
      { topic: `${topic}_dlq`, numPartitions: 1, replicationFactor: 1 },
    ]);
  } finally {
    await admin.disconnect();
  }
  await chQuery(stack, `CREATE DATABASE IF NOT EXISTS ${database}`);
  const migrate = await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: database });
  expect(migrate.status, migrate.stderr).toBe(0);
  const spoolDir = join(stack.dir, `spool-${name}`);
  return {
    topic,
    dlq: `${topic}_dlq`,
    database,
    env: (proxy, extra = {}) => ({
      ...scenarioEnv({ brokers: stack.brokers, topic, group: `hostile-${name}`, clickhouseUrl: proxy.url, database, spoolDir, logLevel: 'warn' }),
      ...extra,
    }),
  };
}

/** Produces `values` in order, message i to partition i % PARTITIONS: its offset there is ⌊i / PARTITIONS⌋. */
async function produceRaw(topic: string, values: readonly Uint8Array[]): Promise<void> {
  for (let start = 0; start < values.length; start += 500) {
    const messages = values.slice(start, start + 500).map((value, i) => ({ partition: (start + i) % PARTITIONS, value: Buffer.from(value) }));
    await producer.send({ topic, acks: -1, messages });
  }
}

const sourceOf = (index: number): string => `${index % PARTITIONS}/${Math.floor(index / PARTITIONS)}`;

interface DeadLetter {
  readonly source: string;
  readonly reason: string;
  readonly value: string;
}

/** Everything in the DLQ topic: waits for `expected` messages (at most 60 s), then 1 s more for any extra. */
async function readDeadLetters(s: Scenario, expected: number): Promise<DeadLetter[]> {
  const consumer = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).consumer({ groupId: `reader-${s.topic}-${Date.now()}` });
  const got: DeadLetter[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: s.dlq, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push({
          source: `${String(message.headers?.['x-dlq-source-partition'])}/${String(message.headers?.['x-dlq-source-offset'])}`,
          reason: String(message.headers?.['x-dlq-reason']),
          value: (message.value ?? Buffer.alloc(0)).toString('hex'),
        });
      },
    });
    for (let i = 0; i < 600 && got.length < expected; i++) await sleep(100);
    await sleep(1_000);
  } finally {
    await consumer.disconnect();
  }
  return got;
}

/** The rows of http_log as comparable keys (a multiset: duplicates show). */
async function storedRowKeys(s: Scenario): Promise<string[]> {
  const sql = 'SELECT toUnixTimestamp(timestamp), toString(resource_id), toString(bytes_sent), toString(request_time_milli), response_status, cache_status, method, remote_addr, url FROM http_log FORMAT JSONCompactEachRow';
  // Parsed and written again: ClickHouse's JSON spacing and escapes (`\/`) differ from JSON.stringify's.
  return (await chQuery(stack, sql, s.database)).split('\n').filter(Boolean).map((line) => JSON.stringify(JSON.parse(line))).sort();
}

function rowKey(row: HttpLogRow): string {
  return JSON.stringify([row.timestamp, String(row.resourceId), String(row.bytesSent), String(row.requestTimeMilli), row.responseStatus, row.cacheStatus, row.method, row.remoteAddr, row.url]);
}

/** Every raw address of `addresses` found in any column of http_log or a totals table. */
async function leakedAddresses(s: Scenario, addresses: ReadonlySet<string>): Promise<string[]> {
  const leaks: string[] = [];
  for (const table of ['http_log', 'http_log_totals_1m', 'http_log_totals_1h', 'http_log_totals_1d']) {
    const dump = await chQuery(stack, `SELECT * FROM ${table} FORMAT TSV`, s.database);
    // Every position where an address could start (overlapping), and each shorter reading of it.
    for (const match of dump.matchAll(/(?=(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7}))/g)) {
      const candidate = match[1]!;
      for (let cut = 0; cut < 4 && cut < candidate.length; cut++) {
        const text = candidate.slice(0, candidate.length - cut);
        if (addresses.has(text)) leaks.push(`${table}: ${text}`);
      }
    }
  }
  return leaks;
}

async function scrape(port: number): Promise<string | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2_000) });
    return await response.text();
  } catch {
    return undefined;
  }
}

function metric(text: string | undefined, name: string, labels = ''): number {
  const line = text?.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

function validRecord(index: number, url = `/hostile/valid/${index}`): SourceRecord {
  return {
    timestampEpochMilli: BigInt(START_MILLIS + index * 10),
    resourceId: BigInt(1_000 + index),
    bytesSent: BigInt(index * 3),
    requestTimeMilli: 12n,
    responseStatus: 200,
    cacheStatus: 'HIT',
    method: 'GET',
    remoteAddr: `10.77.${index % 256}.${(index * 7) % 256}`,
    url,
  };
}

describe('hostile input', () => {
  it('one row too large for any body is dead-lettered (row_too_large, its original bytes); the others are stored once; the drain exits 0', async () => {
    const s = await scenario('oversize_row');
    const valid = Array.from({ length: 1_000 }, (_, i) => validRecord(i));
    // 60,000 random printable characters: valid text, but ~49 KB compressed, over the 32 KiB body limit.
    const noise = Array.from(randomBytes(60_000), (b) => String.fromCharCode(0x21 + (b % 94))).join('');
    const oversized = encodeRecord(validRecord(5_000, `/${noise}`));
    const values: Uint8Array[] = valid.map((r) => encodeRecord(r));
    const at = 500;
    values.splice(at, 0, oversized);
    await produceRaw(s.topic, values);
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    const metricsPort = await freePort();
    const run = startCli(['run', '--drain'], s.env(proxy, { METRICS_PORT: String(metricsPort) }));
    // The dead letter is sent long before the drain ends (delivery waits for proxy slots):
    // scrape while it runs, keeping the largest value seen.
    let exited = false;
    void run.exited.then(() => (exited = true));
    let deadLettered = 0;
    let exit: number | string;
    try {
      for (const end = Date.now() + 90_000; !exited && Date.now() < end; await sleep(100)) {
        deadLettered = Math.max(deadLettered, metric(await scrape(metricsPort), 'anonymizer_messages_dead_lettered_total', '{reason="row_too_large"}'));
      }
      exit = await Promise.race([run.exited, sleep(1_000).then(() => 'timeout')]);
    } finally {
      run.kill('SIGKILL');
    }
    expect(exit, run.output().slice(-3000)).toBe(0);
    expect(deadLettered).toBe(1);
    const expected = valid.map((r) => rowKey({ ...r, timestamp: Math.floor(Number(r.timestampEpochMilli) / 1000), remoteAddr: anonymizeAddress(r.remoteAddr).value }));
    expect(await storedRowKeys(s)).toEqual(expected.sort());
    const [requests] = (await chQuery(stack, 'SELECT sum(requests) FROM http_log_totals_1m FORMAT TSV', s.database)).trim().split('\t');
    expect(Number(requests)).toBe(1_000);
    const letters = await readDeadLetters(s, 1);
    expect(letters).toEqual([{ source: sourceOf(at), reason: 'row_too_large', value: Buffer.from(oversized).toString('hex') }]);
  }, 150_000);

  it('400 segment-count bombs among 200 valid rows: all 200 stored once, 400 dead letters once each, /healthz answers throughout, SIGTERM honoured', async () => {
    const s = await scenario('segment_bombs');
    const values: Uint8Array[] = [];
    const valid: SourceRecord[] = [];
    const bombIndexes: number[] = [];
    for (let i = 0; i < 600; i++) {
      if (i % 3 === 2) {
        const record = validRecord(i);
        valid.push(record);
        values.push(encodeRecord(record));
      } else {
        // 16 bytes claiming 0x02000000 segments.
        const bomb = new Uint8Array(16);
        new DataView(bomb.buffer).setUint32(0, 0x01ff_ffff, true);
        bomb[8] = i & 0xff;
        bombIndexes.push(i);
        values.push(bomb);
      }
    }
    await produceRaw(s.topic, values);
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    const metricsPort = await freePort();
    const run = startCli(['run'], s.env(proxy, { METRICS_PORT: String(metricsPort) }));
    let slowestHealthzMs = 0;
    let healthzFailures = 0;
    let healthzAnswers = 0;
    let done = false;
    try {
      const deadline = Date.now() + 90_000;
      while (!done && Date.now() < deadline) {
        const started = Date.now();
        try {
          const response = await fetch(`http://127.0.0.1:${metricsPort}/healthz`, { signal: AbortSignal.timeout(5_000) });
          if (response.status === 200) healthzAnswers++;
          else healthzFailures++;
          await response.text();
          slowestHealthzMs = Math.max(slowestHealthzMs, Date.now() - started);
        } catch {
          // Not listening yet (start-up): only a failure once it has answered.
          if (healthzAnswers > 0) healthzFailures++;
        }
        const metrics = await scrape(metricsPort);
        done = metric(metrics, 'anonymizer_rows_stored_total') === 200 && metric(metrics, 'anonymizer_messages_dead_lettered_total', '{reason="ANON_DECODE"}') === 400;
        await sleep(100);
      }
      expect(done, run.output().slice(-3000)).toBe(true);
      const stoppedAt = Date.now();
      run.kill('SIGTERM');
      const exit = await Promise.race([run.exited, sleep(15_000).then(() => 'timeout')]);
      expect(exit, run.output().slice(-3000)).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(8_000);
    } finally {
      run.kill('SIGKILL');
    }
    expect(healthzAnswers).toBeGreaterThan(5);
    expect(healthzFailures).toBe(0);
    expect(slowestHealthzMs).toBeLessThan(1_000);
    const expected = valid.map((r) => rowKey({ ...r, timestamp: Math.floor(Number(r.timestampEpochMilli) / 1000), remoteAddr: anonymizeAddress(r.remoteAddr).value }));
    expect(await storedRowKeys(s)).toEqual(expected.sort());
    const letters = await readDeadLetters(s, 400);
    expect(letters.map((l) => l.source).sort()).toEqual(bombIndexes.map(sourceOf).sort());
    expect(new Set(letters.map((l) => l.reason))).toEqual(new Set(['ANON_DECODE']));
  }, 150_000);

  it('20,000 fuzzed messages through the real engine: no raw address in any column of http_log or the totals tables, each message stored or dead-lettered exactly once', async () => {
    const s = await scenario('fuzz');
    const withinADay = (outcome: Outcome): boolean => !('row' in outcome) || Math.abs(outcome.row.timestamp * 1000 - START_MILLIS) < 86_400_000;
    const corpus = hostileCorpus({ seed: 11_062n, count: 20_000, startMillis: START_MILLIS, accept: withinADay });
    const outcomes = corpus.map((message) => expectedOutcome(message.bytes));
    const expectedRows = outcomes.flatMap((o) => ('row' in o ? [rowKey(o.row)] : [])).sort();
    const expectedLetters = outcomes.flatMap((o, i) => ('rejected' in o ? [`${sourceOf(i)} ${o.rejected}`] : [])).sort();
    // The corpus holds both kinds in numbers, and rows that a pointer aimed at the address.
    expect(expectedRows.length).toBeGreaterThan(2_000);
    expect(expectedLetters.length).toBeGreaterThan(10_000);
    await produceRaw(s.topic, corpus.map((m) => m.bytes));

    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '128k' });
    const result = await runCli(['run', '--drain'], s.env(proxy, { PROXY_MAX_BODY_BYTES: String(128 * 1024) }), 240_000);
    expect(result.status, result.stderr.slice(-3000)).toBe(0);

    // Exact, per message, on what must be stored (stored rows are compared to it below) ...
    const leakedRows = outcomes.flatMap((o, i) => ('row' in o ? leakedColumns(o.row, corpus[i]!.addresses).map((column) => `#${i} ${column}`) : []));
    expect(leakedRows).toEqual([]);
    // ... and in the engine: every column of every table, searched for every raw address.
    const addresses = new Set(corpus.flatMap((m) => m.addresses));
    expect(await leakedAddresses(s, addresses)).toEqual([]);
    expect(await storedRowKeys(s)).toEqual(expectedRows);
    const [requests] = (await chQuery(stack, 'SELECT sum(requests) FROM http_log_totals_1m FORMAT TSV', s.database)).trim().split('\t');
    expect(Number(requests)).toBe(expectedRows.length);
    const letters = await readDeadLetters(s, expectedLetters.length);
    // Exactly once: the multiset of (source offset, reason) equals the expected one, so no duplicate and none missing.
    expect(letters.map((l) => `${l.source} ${l.reason}`).sort()).toEqual(expectedLetters);
    expect(expectedRows.length + letters.length).toBe(corpus.length);
  }, 330_000);
});
