/**
 * Fault tests on the real stack (Kafka, the ClickHouse engine, nginx): each produces N
 * records with a unique URL each, injects one kind of failure, ends with a clean
 * `run --drain` (or, with three instances, lets the group finish the work), and then checks by querying ClickHouse directly that exactly N distinct
 * rows exist, once each, and that the per-minute totals sum to N. Every run is bounded
 * in time, and every process a test starts is stopped by PID.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymizeAddress } from '../../src/domain/anonymizeAddress.ts';
import { decompress } from '../../src/encode/compress.ts';
import { decodeNative } from '../../src/encode/nativeFormat.ts';
import { parseBatchFile } from '../../src/io/spool.ts';
import { capnpEncode, capnpText } from '../support/capnpEncode.ts';
import { freePort } from '../../stack/index.ts';
import { chQuery, offsetsOf, readAccessLog, runCli, startCli, startE2EStack, type E2EStack, type Proxy } from '../support/e2eStack.ts';
import { startFaultProxy } from '../support/faultProxy.ts';
import { metricValue, readMetricsFile, scrapeMetrics } from '../support/metrics.ts';
import { expectNoRawAddress, INTERVAL_MS, lcg, produceArgs, records, scenarioHelpers, sleep } from '../support/scenario.ts';

let stack: E2EStack;

beforeAll(async () => {
  stack = await startE2EStack('faults');
});

afterAll(async () => {
  await stack?.stop();
});

const { scenario, produce, drain, expectExactlyOnce } = scenarioHelpers(() => stack);

/** Per member of the group: the partitions of `topic` the broker says it holds. */
async function groupAssignment(groupId: string, topic: string): Promise<number[][]> {
  const admin = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    if (groups[0]?.state !== 'Stable') return [];
    return groups[0].members.map((member) => AssignerProtocol.MemberAssignment.decode(member.memberAssignment)?.assignment[topic] ?? []);
  } finally {
    await admin.disconnect();
  }
}

describe('faults', () => {
  it('kill -9 at 12 moments while records stream in, then a drain: nothing lost, nothing twice', async () => {
    const s = await scenario('crash');
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    const n = 8_000;
    // 8,000 records over ~16 s: records stream in across several of the runs.
    const producer = startCli(produceArgs(21, n, 500), { KAFKA_BROKERS: stack.brokers, KAFKA_TOPIC: s.topic });
    const random = lcg(7);
    let output = '';
    let spoolScans = 0;
    for (let i = 0; i < 12; i++) {
      const port = await freePort();
      const run = startCli(['run'], s.env(proxy.url, { METRICS_PORT: String(port), METRICS_HOST: '127.0.0.1' }));
      // The first run is killed the moment a sealed batch sits in its spool (persisted, its
      // offsets being committed or its insert in flight), so at least one crash lands there
      // whatever the machine's speed: a batch is in the spool only for the ~100 ms of its
      // insert, which seeded moments alone may all miss. The later ones at seeded moments
      // from start (each may still be waiting for the group to drop the member killed before it).
      if (i === 0) {
        const batches = join(s.spoolDir, 'batches');
        const spooled = () => existsSync(batches) && readdirSync(batches).some((file) => file.endsWith('.batch'));
        for (const end = Date.now() + 30_000; Date.now() < end && !spooled(); await sleep(5));
        expect(spooled(), 'the first run spooled a batch within 30 s').toBe(true);
      } else {
        await sleep(400 + Math.floor(random() * 2_000));
      }
      run.kill('SIGKILL');
      expect(await run.exited).toBe('SIGKILL');
      output += run.output();
      // Privacy: whatever the crash left in the spool holds anonymized rows only.
      for (const sub of ['batches', 'tmp']) {
        // A run killed before it opened the spool left no directory yet.
        if (!existsSync(join(s.spoolDir, sub))) continue;
        for (const name of readdirSync(join(s.spoolDir, sub)).filter((file) => file.endsWith('.batch') || file.endsWith('.staged'))) {
          let parsed;
          try {
            parsed = parseBatchFile(readFileSync(join(s.spoolDir, sub, name)), name);
          } catch {
            continue; // a torn staged file: discarded at the next start
          }
          const rows = decodeNative(await decompress(parsed.header.codec, parsed.body));
          expect(rows.every((row) => /^(\d+\.\d+\.\d+\.X|X)$/.test(row.remoteAddr))).toBe(true);
          spoolScans++;
        }
      }
    }
    expect(await producer.exited).toBe(0);
    output += (await drain(s, proxy)).output;
    const expected = records(21, n);
    await expectExactlyOnce(s, expected);
    expectNoRawAddress(output, expected);
    // The crashes really interrupted work: some runs left batches behind that a later run sent.
    expect(spoolScans).toBeGreaterThan(0);
  }, 240_000);

  it('the proxy is down for several slots, then back: the drain waits and stores everything once', async () => {
    const s = await scenario('proxy_down');
    const expected = await produce(s, 22, 3_000);
    const proxyDir = mkdtempSync(join(stack.dir, 'proxy-down-'));
    let proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k', dir: proxyDir });
    const port = Number(new URL(proxy.url).port);
    await proxy.stop();
    const metricsFile = join(stack.dir, 'metrics-proxy-down.prom');
    const run = startCli(['run', '--drain'], s.env(proxy.url, { METRICS_FILE: metricsFile }));
    await sleep(4 * INTERVAL_MS);
    proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k', dir: proxyDir, port });
    const exit = await Promise.race([run.exited, sleep(90_000).then(() => 'timeout')]);
    run.kill('SIGKILL');
    expect(exit, run.output().slice(-3000)).toBe(0);
    // Refused connections while the proxy was down, each retried.
    expect(metricValue(readMetricsFile(metricsFile), 'anonymizer_insert_requests_total', { outcome: 'ANON_NETWORK' })).toBeGreaterThanOrEqual(1);
    await expectExactlyOnce(s, expected);
    expectNoRawAddress(run.output(), expected);
  });

  it('a forced 503 (the slot taken by someone else) is retried without losing the slot clock', async () => {
    const s = await scenario('forced_503');
    const expected = await produce(s, 23, 1_000);
    // 10r/m: one request per 6 s. Taking the slot just before the app starts forces its first request to get a 503.
    const proxy = await stack.startProxy({ rate: '10r/m', maxBody: '1m' });
    const taken = await fetch(`${proxy.url}/?query=SELECT+1`);
    expect(taken.status).toBe(200);
    await taken.text();
    const { metrics } = await drain(s, proxy, { PROXY_MIN_INTERVAL_MS: '6000', PROXY_MARGIN_MS: '200', PROXY_MAX_BODY_BYTES: String(1 << 20) });
    const posts = readAccessLog(proxy.accessLog).filter((line) => line.method === 'POST');
    expect(posts[0]!.status).toBe(503);
    expect(posts.at(-1)!.status).toBe(200);
    expect(posts.filter((line) => line.status === 200)).toHaveLength(1);
    // Every 503 nginx gave was seen as a rate limit (no slot used), and nothing else failed.
    expect(metricValue(metrics, 'anonymizer_insert_requests_total', { outcome: 'ANON_PROXY_RATE_LIMITED' })).toBe(posts.filter((line) => line.status === 503).length);
    expect(metricValue(metrics, 'anonymizer_insert_requests_total')).toBe(posts.length);
    await expectExactlyOnce(s, expected);
  });

  it('ClickHouse is down for several slots (the proxy answers 502): retried at each slot, stored once', async () => {
    const s = await scenario('clickhouse_down');
    const expected = await produce(s, 24, 3_000);
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    await stack.stopClickHouse();
    let restarted = false;
    try {
      const run = startCli(['run', '--drain'], s.env(proxy.url));
      await sleep(4 * INTERVAL_MS);
      await stack.startClickHouse();
      restarted = true;
      const exit = await Promise.race([run.exited, sleep(90_000).then(() => 'timeout')]);
      run.kill('SIGKILL');
      expect(exit, run.output().slice(-3000)).toBe(0);
    } finally {
      if (!restarted) await stack.startClickHouse();
    }
    const statuses = readAccessLog(proxy.accessLog).filter((line) => line.method === 'POST').map((line) => line.status);
    expect(statuses.filter((status) => status === 502).length).toBeGreaterThanOrEqual(2);
    await expectExactlyOnce(s, expected);
  });

  it('the connection is reset after the body was sent and stored: the retry is deduplicated', async () => {
    const s = await scenario('reset');
    const expected = await produce(s, 25, 3_000);
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    const fault = await startFaultProxy({ upstreamPort: Number(new URL(proxy.url).port), cutResponses: 3 });
    try {
      const { metrics } = await drain(s, proxy, { CLICKHOUSE_URL: `http://127.0.0.1:${fault.port}` });
      expect(fault.cuts()).toBe(3);
      expect(metricValue(metrics, 'anonymizer_insert_requests_total', { outcome: 'ANON_NETWORK' })).toBe(3);
    } finally {
      await fault.close();
    }
    // Every cut request reached ClickHouse: more accepted POSTs than batches, yet each row once.
    const accepted = readAccessLog(proxy.accessLog).filter((line) => line.method === 'POST' && line.status === 200);
    const [inserts] = (await chQuery(stack, `SELECT count() FROM system.parts WHERE database = '${s.database}' AND table = 'http_log'`)).trim().split('\t');
    expect(accepted.length).toBeGreaterThanOrEqual(Number(inserts) + 3);
    await expectExactlyOnce(s, expected);
  });

  it('a body over the proxy limit gets 413, is split durably, and the halves are stored', async () => {
    const s = await scenario('oversize');
    const expected = await produce(s, 26, 3_000);
    // The app believes bodies of 64 KiB are fine; the proxy allows 16 KiB.
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '16k' });
    const { metrics } = await drain(s, proxy, { PROXY_MAX_BODY_BYTES: String(64 * 1024), PROXY_MIN_INTERVAL_MS: '1000' });
    const statuses = readAccessLog(proxy.accessLog).filter((line) => line.method === 'POST').map((line) => line.status);
    expect(statuses).toContain(413);
    expect(statuses.at(-1)).toBe(200);
    expect(metricValue(metrics, 'anonymizer_batches_split_total')).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'anonymizer_insert_requests_total', { outcome: 'ANON_BODY_TOO_LARGE' })).toBe(statuses.filter((status) => status === 413).length);
    await expectExactlyOnce(s, expected);
    const list = await runCli(['spool', 'list', '--json'], { SPOOL_DIR: s.spoolDir });
    expect(list.stdout.trim()).toBe('');
  });

  it('poison: garbage and out-of-range timestamps go to the dead-letter topic, the rest to ClickHouse', async () => {
    const s = await scenario('poison');
    const expected = await produce(s, 27, 2_000);
    // Produced by kcat, an independent client; the out-of-range records by the official `capnp encode`.
    const dir = mkdtempSync(join(stack.dir, 'poison-'));
    const poison: Array<{ bytes: Buffer; reason: string }> = [
      { bytes: Buffer.from('not a capnp message at all'), reason: 'ANON_DECODE' },
      { bytes: Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8]), reason: 'ANON_DECODE' },
      { bytes: capnpEncode(capnpText({ url: '/x', remoteAddr: '1.2.3.4' })).subarray(0, 20), reason: 'ANON_DECODE' },
      { bytes: capnpEncode(capnpText({ timestampEpochMilli: 4_294_967_296_000n, url: '/late', remoteAddr: '1.2.3.4' })), reason: 'ANON_TIMESTAMP_RANGE' },
      { bytes: capnpEncode(capnpText({ timestampEpochMilli: 18_446_744_073_709_551_615n, url: '/later', remoteAddr: '5.6.7.8' })), reason: 'ANON_TIMESTAMP_RANGE' },
    ];
    const files = poison.map((item, i) => {
      const file = join(dir, `poison-${i}.bin`);
      writeFileSync(file, item.bytes);
      return file;
    });
    execFileSync('kcat', ['-P', '-b', stack.brokers, '-t', s.topic, ...files]);
    // A tombstone (null value), which kcat cannot send: through kafkajs directly.
    const tombstoneProducer = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).producer();
    await tombstoneProducer.connect();
    await tombstoneProducer.send({ topic: s.topic, messages: [{ key: 'k', value: null }] });
    await tombstoneProducer.disconnect();
    poison.push({ bytes: Buffer.alloc(0), reason: 'ANON_DECODE' });
    const more = await produce(s, 28, 500);
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    await drain(s, proxy);
    await expectExactlyOnce(s, [...expected, ...more]);

    const consumer = new Kafka({ brokers: [stack.brokers], logLevel: logLevel.NOTHING }).consumer({ groupId: `faults-poison-reader-${Date.now()}` });
    const got: Array<{ bytes: string; reason: string; source: string }> = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: s.dlq, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          got.push({
            bytes: (message.value ?? Buffer.alloc(0)).toString('hex'),
            reason: String(message.headers?.['x-dlq-reason']),
            source: `${String(message.headers?.['x-dlq-source-topic'])}/${String(message.headers?.['x-dlq-source-partition'])}/${String(message.headers?.['x-dlq-source-offset'])}`,
          });
        },
      });
      for (let i = 0; i < 100 && got.length < poison.length; i++) await sleep(100);
      await sleep(500); // anything beyond the poison would show up now
    } finally {
      await consumer.disconnect();
    }
    const sortKey = (item: { bytes: string; reason: string }) => `${item.reason}:${item.bytes}`;
    expect(got.map(({ bytes, reason }) => ({ bytes, reason })).sort((a, b) => sortKey(a).localeCompare(sortKey(b)))).toEqual(
      poison.map((item) => ({ bytes: item.bytes.toString('hex'), reason: item.reason })).sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
    );
    expect(got.every((item) => /^faults_poison\/[0-2]\/\d+$/.test(item.source))).toBe(true);
  });

  it('backpressure: a full spool pauses consumption, a drained one resumes it, nothing is lost', async () => {
    const s = await scenario('backpressure');
    const expected = await produce(s, 31, 120_000);
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '128k' });
    // The smallest spool allowed (1 MiB): ingestion outruns one 128 KiB request a second, and
    // the backlog (~3.5 MiB compressed, with the fast codec that keeps ingestion ahead on a
    // loaded machine) is well past the spool's limit: consumption must pause, then resume.
    const { metrics } = await drain(s, proxy, { SPOOL_MAX_BYTES: String(1 << 20), PROXY_MAX_BODY_BYTES: String(128 * 1024), INSERT_CODEC: 'zstd', INSERT_LEVEL: '3' });
    // Paused at least once for a full spool, and running again by the end.
    expect(metricValue(metrics, 'anonymizer_consumer_pauses_total', { reason: 'spool-full' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'anonymizer_consumer_paused')).toBe(0);
    await expectExactlyOnce(s, expected);
  });

  it('data ClickHouse refuses: the batch is quarantined, the rest flows; after a fix, spool replay sends it', async () => {
    const s = await scenario('quarantine');
    const expected = await produce(s, 32, 3_000);
    // A CHECK constraint that one record violates: ClickHouse refuses its whole batch (Code: 469).
    const victim = expected[1_234]!;
    await chQuery(stack, `ALTER TABLE http_log ADD CONSTRAINT no_victim CHECK resource_id != ${victim.resourceId}`, s.database);
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    const first = await runCli(['run', '--drain'], s.env(proxy.url), 120_000);
    expect(first.status, first.stderr.slice(-3000)).toBe(3);
    const [stored] = (await chQuery(stack, 'SELECT count() FROM http_log FORMAT TSV', s.database)).trim().split('\t').map(Number);
    expect(stored ?? 0).toBeGreaterThan(0);
    expect(stored ?? 0).toBeLessThan(3_000);

    const list = await runCli(['spool', 'list', '--json'], { SPOOL_DIR: s.spoolDir });
    const entries = list.stdout.trim().split('\n').map((line) => JSON.parse(line) as { state: string; rows: number; error: { code: string } });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ state: 'quarantined', error: { code: 'ANON_CLICKHOUSE_469' } });
    expect((stored ?? 0) + entries[0]!.rows).toBe(3_000);

    await chQuery(stack, 'ALTER TABLE http_log DROP CONSTRAINT no_victim', s.database);
    const replay = await runCli(['spool', 'replay'], { SPOOL_DIR: s.spoolDir, KAFKA_BROKERS: stack.brokers, KAFKA_TOPIC: s.topic, KAFKA_GROUP_ID: `faults-${s.name}` });
    expect(replay.status, replay.stderr).toBe(0);
    const afterReplay = (await runCli(['spool', 'list', '--json'], { SPOOL_DIR: s.spoolDir })).stdout.trim().split('\n').map((line) => JSON.parse(line) as { state: string; rows: number });
    expect(afterReplay).toEqual([expect.objectContaining({ state: 'waiting', rows: entries[0]!.rows })]);
    await drain(s, proxy);
    await expectExactlyOnce(s, expected);
  });

  it('SIGTERM: the open batch is persisted and committed, the run exits 0 within seconds, the next run sends it', async () => {
    const s = await scenario('sigterm');
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    const n = 4_000;
    const producer = startCli(produceArgs(29, n, 1_000), { KAFKA_BROKERS: stack.brokers, KAFKA_TOPIC: s.topic });
    // A long interval: during this run at most one request goes out, so most records wait in the spool.
    const run = startCli(['run'], s.env(proxy.url, { PROXY_MIN_INTERVAL_MS: '30000' }));
    await sleep(2_500);
    const stoppedAt = Date.now();
    run.kill('SIGTERM');
    const exit = await Promise.race([run.exited, sleep(15_000).then(() => 'timeout')]);
    run.kill('SIGKILL');
    expect(exit, run.output().slice(-3000)).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(8_000);
    expect(await producer.exited).toBe(0);
    await drain(s, proxy);
    await expectExactlyOnce(s, records(29, n));
  });

  it('three instances in one group on three partitions, one killed -9 mid-run and restarted: exactly N stored, offsets at the high-water marks', async () => {
    const s = await scenario('three_instances');
    const proxy = await stack.startProxy({ rate: '60r/m', maxBody: '32k' });
    const n = 12_000;
    const group = `faults-${s.name}`;
    // Each instance has its own spool and metrics port; all three share one address, so one proxy budget.
    const instances = await Promise.all(['a', 'b', 'c'].map(async (name) => ({ name, spoolDir: join(stack.dir, `spool-three-${name}`), port: await freePort() })));
    const start = (instance: (typeof instances)[number]) =>
      startCli(['run'], s.env(proxy.url, { SPOOL_DIR: instance.spoolDir, METRICS_PORT: String(instance.port), METRICS_HOST: '127.0.0.1' }));
    const runs = instances.map(start);
    const outputs: string[] = [];
    const until = async (what: string, condition: () => Promise<boolean>, ms = 60_000): Promise<void> => {
      for (const end = Date.now() + ms; !(await condition()); await sleep(250)) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}:\n${runs.map((run) => run.output().slice(-1500)).join('\n')}`);
      }
    };
    const storedBy = async (port: number) => metricValue(await scrapeMetrics(port).catch(() => []), 'anonymizer_rows_stored_total');
    try {
      // The group has settled with one partition per member (asked of the broker).
      await until('the three instances to hold one partition each', async () => {
        const shares = await groupAssignment(group, s.topic);
        return shares.length === 3 && shares.every((partitions) => partitions.length === 1);
      });
      // 12,000 records over ~20 s: the crash lands while they still stream in.
      const producer = startCli(produceArgs(30, n, 600), { KAFKA_BROKERS: stack.brokers, KAFKA_TOPIC: s.topic });
      const victim = 1;
      await until('the victim to store a batch', async () => (await storedBy(instances[victim]!.port)) > 0);
      runs[victim]!.kill('SIGKILL');
      expect(await runs[victim]!.exited).toBe('SIGKILL');
      // Records were still coming when it died (else the crash proved nothing about a live stream).
      const producing = await Promise.race([producer.exited.then(() => false), sleep(0).then(() => true)]);
      expect(producing).toBe(true);
      outputs.push(runs[victim]!.output());
      // Restarted on its own spool: it sends what it left there, and takes its share again.
      runs[victim] = start(instances[victim]!);
      expect(await producer.exited).toBe(0);
      // Every record stored, by the three of them together: no drain, the group itself finishes the work.
      await until('all records to be stored', async () => Number((await chQuery(stack, 'SELECT count() FROM http_log FORMAT TSV', s.database)).trim()) >= n, 75_000);
      // Everyone took part: each instance stored rows of its own.
      for (const instance of instances) expect(await storedBy(instance.port), instance.name).toBeGreaterThan(0);
    } finally {
      for (const run of runs) run.kill('SIGTERM');
      const exits = await Promise.all(runs.map((run) => Promise.race([run.exited, sleep(15_000).then(() => 'timeout')])));
      for (const run of runs) run.kill('SIGKILL');
      outputs.push(...runs.map((run) => run.output()));
      expect(exits).toEqual([0, 0, 0]);
    }
    const expected = records(30, n);
    await expectExactlyOnce(s, expected);
    // Committed to the high-water mark on every partition, and every spool empty.
    const offsets = await offsetsOf(stack, group, s.topic);
    expect([...offsets.values()].map(([committed, high]) => committed - high)).toEqual([0, 0, 0]);
    expect([...offsets.values()].reduce((sum, [, high]) => sum + high, 0)).toBe(n);
    for (const instance of instances) {
      const list = await runCli(['spool', 'list', '--json'], { SPOOL_DIR: instance.spoolDir });
      expect(list.stdout.trim(), instance.name).toBe('');
    }
    expectNoRawAddress(outputs.join(''), expected);
  }, 150_000);
});
