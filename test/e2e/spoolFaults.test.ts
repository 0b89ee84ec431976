/**
 * The spool's own faults on the real stack (Kafka, the ClickHouse engine, nginx): a disk
 * that fills up (a tmpfs of a few MiB as SPOOL_DIR, mounted here and unmounted after), and
 * corrupt or foreign files in SPOOL_DIR/batches. Each asserts on stored rows (exactly the
 * expected ones, once each), committed offsets, metrics, /readyz and exit codes. Every wait
 * is bounded, and every process started here is stopped by PID.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../src/domain/encodeRecord.ts';
import { decompress } from '../../src/encode/compress.ts';
import { decodeInsertBody } from '../../src/encode/insertBody.ts';
import { decodeBatchFile } from '../../src/io/spoolFile.ts';
import { uniformRecords } from '../../src/synthetic/uniformDataset.ts';
import { freePort } from '../../stack/index.ts';
import { chQuery, createTopic, offsetsOf, runCli, startCli, startE2EStack, type CliProcess, type E2EStack, type Proxy } from '../support/e2eStack.ts';

let stack: E2EStack;
const mounts: string[] = [];

beforeAll(async () => {
  stack = await startE2EStack('spoolfaults');
});

afterAll(async () => {
  for (const dir of mounts) {
    try {
      execFileSync('umount', [dir]);
    } catch {
      execFileSync('umount', ['-l', dir]);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  await stack?.stop();
});

const START_MILLIS = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Mounts a tmpfs of `size` on a fresh directory; undefined when mounting is refused (not root, no CAP_SYS_ADMIN). */
function mountTmpfs(size: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'spoolfaults-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  mounts.push(dir);
  return dir;
}

interface Scenario {
  readonly topic: string;
  readonly group: string;
  readonly database: string;
  env(proxyUrl: string, extra?: Record<string, string>): Record<string, string>;
}

async function scenario(name: string, spoolDir: string): Promise<Scenario> {
  const topic = `spoolfaults_${name}`;
  const database = `spoolfaults_${name}`;
  const group = `spoolfaults-${name}`;
  await createTopic(stack, topic, 3);
  await createTopic(stack, `${topic}_dlq`, 1);
  await chQuery(stack, `CREATE DATABASE IF NOT EXISTS ${database}`);
  const migrate = await runCli(['migrate'], { CLICKHOUSE_URL: stack.clickhouseUrl, CLICKHOUSE_DATABASE: database });
  expect(migrate.status, migrate.stderr).toBe(0);
  return {
    topic,
    group,
    database,
    env: (proxyUrl, extra = {}) => ({
      KAFKA_BROKERS: stack.brokers,
      KAFKA_TOPIC: topic,
      KAFKA_DLQ_TOPIC: `${topic}_dlq`,
      KAFKA_GROUP_ID: group,
      CLICKHOUSE_URL: proxyUrl,
      CLICKHOUSE_DATABASE: database,
      SPOOL_DIR: spoolDir,
      PROXY_MIN_INTERVAL_MS: '200',
      PROXY_MARGIN_MS: '50',
      PROXY_MAX_BODY_BYTES: String(64 * 1024),
      INSERT_CODEC: 'zstd',
      INSERT_LEVEL: '3',
      LOG_LEVEL: 'info',
      ...extra,
    }),
  };
}

function records(seed: number, count: number): SourceRecord[] {
  const generator = uniformRecords({ seed: BigInt(seed), startMillis: START_MILLIS, rate: 100_000 });
  return Array.from({ length: count }, () => generator.next().value!);
}

async function produce(s: Scenario, seed: number, count: number): Promise<SourceRecord[]> {
  const result = await runCli(['produce', '--count', String(count), '--rate', '200000', '--seed', String(seed), '--start', String(START_MILLIS)], { KAFKA_BROKERS: stack.brokers, KAFKA_TOPIC: s.topic }, 240_000);
  expect(result.status, result.stderr).toBe(0);
  return records(seed, count);
}

/** A proxy that is down: its port is known, nothing listens on it. `up()` starts it there. */
async function downProxy(): Promise<{ url: string; up(): Promise<Proxy> }> {
  const dir = mkdtempSync(join(stack.dir, 'proxy-'));
  const first = await stack.startProxy({ rate: '300r/m', maxBody: '64k', dir });
  const port = Number(new URL(first.url).port);
  await first.stop();
  return { url: first.url, up: () => stack.startProxy({ rate: '300r/m', maxBody: '64k', dir, port }) };
}

/** Sum of a metric's samples (all label sets, or those matching `labels`), or undefined when absent. */
async function metric(port: number, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  let text: string;
  try {
    text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return undefined;
  }
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    if (!Object.entries(labels).every(([key, value]) => (match[2] ?? '').includes(`${key}="${value}"`))) continue;
    total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

async function readyz(port: number): Promise<number | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`);
    await response.text();
    return response.status;
  } catch {
    return undefined;
  }
}

async function until(what: string, condition: () => Promise<boolean> | boolean, ms: number, output?: () => string): Promise<number> {
  const started = Date.now();
  for (const end = started + ms; !(await condition()); await sleep(250)) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${output?.().slice(-3000) ?? ''}`);
  }
  return Date.now() - started;
}

/** Σ of the group's committed offsets: with no poison, exactly the records taken from Kafka. */
async function committedTotal(s: Scenario): Promise<number> {
  // The group's coordinator may not be elected yet ("not the correct coordinator"): ask again, a bounded number of times.
  for (let attempt = 1; ; attempt++) {
    try {
      let total = 0;
      for (const [committed] of (await offsetsOf(stack, s.group, s.topic)).values()) total += Math.max(0, committed);
      return total;
    } catch (error) {
      if (attempt >= 20) throw error;
      await sleep(500);
    }
  }
}

/** Σ rows of the files in batches/, each of which must pass its check (no torn file is ever queued). */
function spooledRows(spoolDir: string): { rows: number; files: number } {
  let rows = 0;
  let files = 0;
  for (const name of readdirSync(join(spoolDir, 'batches'))) {
    rows += decodeBatchFile(readFileSync(join(spoolDir, 'batches', name)), name).header.rowCount;
    files++;
  }
  return { rows, files };
}

async function expectExactly(s: Scenario, expected: readonly SourceRecord[]): Promise<void> {
  const [count, distinct] = (await chQuery(stack, 'SELECT count(), uniqExact(url) FROM http_log FORMAT TSV', s.database)).trim().split('\t').map(Number);
  expect({ count, distinct }).toEqual({ count: expected.length, distinct: expected.length });
  const stored = new Set((await chQuery(stack, 'SELECT url FROM http_log FORMAT TSV', s.database)).trim().split('\n'));
  expect(expected.filter((record) => !stored.has(record.url)).length).toBe(0);
}

async function storedCount(s: Scenario): Promise<number> {
  return Number((await chQuery(stack, 'SELECT count() FROM http_log FORMAT TSV', s.database)).trim());
}

async function stop(run: CliProcess): Promise<number | string> {
  run.kill('SIGTERM');
  const exit = await Promise.race([run.exited, sleep(20_000).then(() => 'timeout')]);
  run.kill('SIGKILL');
  return exit;
}

describe('spool faults', () => {
  it('a full disk pauses ingestion, publishes and commits nothing torn, survives a restart, and resumes by itself once space returns', async (context) => {
    const spoolDir = mountTmpfs('4m');
    if (!spoolDir) {
      console.log('skipped: mount -t tmpfs was refused (needs root or CAP_SYS_ADMIN)');
      context.skip();
      return;
    }
    const s = await scenario('disk_full', spoolDir);
    const n = 250_000;
    const expected = await produce(s, 41, n);
    const proxy = await downProxy();
    const ports = [await freePort(), await freePort(), await freePort()];

    // ClickHouse unreachable: the spool takes everything until its 4 MiB disk is full.
    const first = startCli(['run'], s.env(proxy.url, { METRICS_PORT: String(ports[0]) }));
    let second: CliProcess | undefined;
    let third: CliProcess | undefined;
    try {
      const detectMs = await until('the disk-full gauge', async () => (await metric(ports[0]!, 'anonymizer_spool_disk_full')) === 1, 240_000, first.output);
      expect(await readyz(ports[0]!)).toBe(503);
      expect(await metric(ports[0]!, 'anonymizer_spool_disk_errors_total', { errno: 'ENOSPC' })).toBeGreaterThanOrEqual(1);
      // Every offset committed is in a whole file in batches/ (the fault lost 47,338 rows here).
      let last = { committed: -1, spooled: -2 };
      await until('committed offsets to equal the spooled rows', async () => {
        last = { committed: await committedTotal(s), spooled: spooledRows(spoolDir).rows };
        return last.committed === last.spooled;
      }, 20_000);
      expect(last.committed).toBeGreaterThan(0);
      expect(last.committed).toBeLessThan(n);
      console.log(`disk full after ${detectMs} ms: ${last.spooled} rows in ${spooledRows(spoolDir).files} files spooled and committed, ${n - last.committed} still in Kafka`);

      // A crash, then a restart on the full disk: it starts (no exit 1, no crash loop) and reports the disk.
      first.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      second = startCli(['run'], s.env(proxy.url, { METRICS_PORT: String(ports[1]) }));
      const restarted = second;
      let exited: number | string | undefined;
      void restarted.exited.then((code) => (exited = code));
      await until('the restarted run to report the full disk', async () => exited !== undefined || (await metric(ports[1]!, 'anonymizer_spool_disk_full')) === 1, 120_000, restarted.output);
      expect(exited).toBeUndefined();
      expect(await readyz(ports[1]!)).toBe(503);
      for (const name of readdirSync(join(spoolDir, 'quarantine'))) expect(statSync(join(spoolDir, 'quarantine', name)).size).toBeGreaterThan(0);
      expect(readdirSync(join(spoolDir, 'quarantine'))).toEqual([]);
      await until('committed offsets to equal the spooled rows after the restart', async () => (await committedTotal(s)) === spooledRows(spoolDir).rows, 20_000);

      // SIGTERM on the full disk: the unwritten batch is given up (never committed), exit 0;
      // and a start after that graceful stop also comes up on the full disk.
      const stoppedAt = Date.now();
      expect(await stop(restarted)).toBe(0);
      const stopMs = Date.now() - stoppedAt;
      third = startCli(['run'], s.env(proxy.url, { METRICS_PORT: String(ports[2]) }));
      const latest = third;
      let thirdExited: number | string | undefined;
      void latest.exited.then((code) => (thirdExited = code));
      await until('the third run to report the full disk', async () => thirdExited !== undefined || (await metric(ports[2]!, 'anonymizer_spool_disk_full')) === 1, 120_000, latest.output);
      expect(thirdExited).toBeUndefined();
      expect(await readyz(ports[2]!)).toBe(503);
      console.log(`SIGTERM on the full disk: exit 0 after ${stopMs} ms; the next start came up and reported the disk`);

      // Space returns (delivery frees the spool): ingestion resumes by itself, everything is stored once.
      await proxy.up();
      const resumeMs = await until('the disk-full gauge to clear', async () => (await metric(ports[2]!, 'anonymizer_spool_disk_full')) === 0, 120_000, latest.output);
      const storeMs = await until(`all ${n} rows to be stored`, async () => (await storedCount(s)) >= n, 300_000, latest.output);
      expect(await readyz(ports[2]!)).toBe(200);
      console.log(`after the proxy came back: disk-full cleared in ${resumeMs} ms, all rows stored ${storeMs} ms later`);
      expect(await stop(latest)).toBe(0);
    } finally {
      for (const run of [first, second, third]) run?.kill('SIGKILL');
      for (const run of [first, second, third]) await run?.exited;
    }
    await expectExactly(s, expected);
    expect(await committedTotal(s)).toBe(n);
  }, 600_000);

  it('corrupt and foreign files in batches/ are quarantined visibly: listed with reasons, counted, run --drain exits 3, every valid batch stored once', async () => {
    const spoolDir = join(stack.dir, 'spool-corrupt');
    mkdirSync(join(spoolDir, 'batches'), { recursive: true });
    const s = await scenario('corrupt', spoolDir);
    const n = 3_000;
    const all = await produce(s, 42, n);
    const proxy = await downProxy();
    const small = { PROXY_MAX_BODY_BYTES: String(8 * 1024) };

    // Spool while ClickHouse is unreachable, then stop. (The last partial batch is sealed
    // only at a free proxy slot, so its records stay in Kafka: the next run reads them.)
    const filling = startCli(['run'], s.env(proxy.url, small));
    try {
      await until('six batches to be spooled and committed', async () => spooledRows(spoolDir).files >= 6 && (await committedTotal(s)) === spooledRows(spoolDir).rows, 120_000, filling.output);
      expect(await stop(filling)).toBe(0);
    } finally {
      filling.kill('SIGKILL');
    }
    const names = readdirSync(join(spoolDir, 'batches')).sort();
    expect(names.length).toBeGreaterThanOrEqual(6);

    // Damage three batches (remember their rows), and drop in a foreign file.
    const path = (name: string) => join(spoolDir, 'batches', name);
    const lostUrls = new Set<string>();
    const damaged: Record<string, { token: string; offsets: ReadonlyArray<readonly [number, number]> }> = {};
    for (const name of names.slice(0, 3)) {
      const { header, body } = decodeBatchFile(readFileSync(path(name)), name);
      for (const row of decodeInsertBody(await decompress(header.codec, body))) lostUrls.add(row.url);
      damaged[name] = { token: header.token, offsets: header.offsets };
    }
    const [cut, bodyFlip, headerFlip] = names as [string, string, string];
    const cutBytes = readFileSync(path(cut));
    writeFileSync(path(cut), cutBytes.subarray(0, cutBytes.length - Math.floor(cutBytes.length / 3)));
    const bodyBytes = readFileSync(path(bodyFlip));
    bodyBytes[bodyBytes.length - 100]! ^= 0x04;
    writeFileSync(path(bodyFlip), bodyBytes);
    const headerBytes = readFileSync(path(headerFlip));
    headerBytes[60]! ^= 0x01; // inside the header JSON (after magic, length and its checksum)
    writeFileSync(path(headerFlip), headerBytes);
    writeFileSync(path('junk.batch'), 'a file that is not ours');
    const kept = all.filter((record) => !lostUrls.has(record.url));
    expect(kept.length).toBeLessThan(n);

    const up = await proxy.up();
    const port = await freePort();
    const run = startCli(['run'], s.env(up.url, { ...small, METRICS_PORT: String(port) }));
    try {
      // The gauge reads 0 until the pipeline starts, then the number of quarantined files.
      await until('the quarantine gauge to count the 4 files', async () => (await metric(port, 'anonymizer_spool_quarantined_batches')) === 4, 60_000, run.output);
      for (const reason of ['truncated', 'body_checksum', 'header_checksum', 'foreign_name']) {
        expect(await metric(port, 'anonymizer_spool_corrupt_files_total', { reason }), reason).toBe(1);
      }
      await until(`the ${kept.length} valid rows to be stored`, async () => (await storedCount(s)) >= kept.length, 120_000, run.output);
      expect(await stop(run)).toBe(0);
    } finally {
      run.kill('SIGKILL');
    }

    const drain = await runCli(['run', '--drain'], s.env(up.url, small), 120_000);
    expect(drain.status, drain.stderr.slice(-3000)).toBe(3);
    const list = await runCli(['spool', 'list', '--json'], { SPOOL_DIR: spoolDir });
    expect(list.status, list.stderr).toBe(0);
    const entries = list.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { state: string; file: string; reason: string; token?: string; offsets: Array<{ partition: number; lastOffset: number }> });
    const quarantined = Object.fromEntries(entries.filter((entry) => entry.state === 'quarantined').map((entry) => [entry.file, entry]));
    expect(Object.fromEntries(Object.entries(quarantined).map(([file, entry]) => [file, entry.reason]))).toEqual({
      [cut]: 'truncated',
      [bodyFlip]: 'body_checksum',
      [headerFlip]: 'header_checksum',
      'junk.batch': 'foreign_name',
    });
    // Where the header is intact, the listing names the Kafka offsets the batch claimed.
    for (const file of [cut, bodyFlip]) {
      expect(quarantined[file]!.token).toBe(damaged[file]!.token);
      expect(quarantined[file]!.offsets).toEqual(damaged[file]!.offsets.map(([partition, lastOffset]) => ({ partition, lastOffset })));
    }
    expect(quarantined[headerFlip]!.offsets).toEqual([]);
    expect(entries.filter((entry) => entry.state === 'waiting')).toEqual([]);
    await expectExactly(s, kept);
    console.log(`corrupt files: ${names.length} batches spooled, 3 damaged (${n - kept.length} rows) + junk.batch quarantined; ${kept.length} of ${n} rows stored once`);
  }, 300_000);
});
