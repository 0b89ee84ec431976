/**
 * `npm run soak -- --minutes 30`: a soak benchmark, not a test.
 *
 * On a private local stack (Kafka, the ClickHouse engine, the real nginx proxy at 1r/m and
 * 1 MiB by default), it feeds `anonymizer run` with `--factor` (2) times what the proxy can
 * carry for `--minutes`, then waits for the spool to drain. Every 10 s it samples the
 * app's resident memory, the spool and ClickHouse. At the end it prints the peak RSS,
 * how flat RSS stayed while the backlog grew, and whether anything was lost or stored
 * twice. Every process it starts is stopped by PID; every wait is bounded.
 *
 * Options: --minutes N (30)  --factor F (2)  --proxy-rate R (1r/m)  --interval-ms MS (from R)
 *          --max-body B (1m)  --codec C / --level L (the app's defaults)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { freePort, startClickHouse, startKafka, startProxy, type ServiceHandle } from '../stack/index.ts';
import { compress, DEFAULT_LEVEL } from '../src/encode/compress.ts';
import { encodeInsertBody } from '../src/encode/insertBody.ts';
import { storedRowOf } from '../src/synthetic/storedRow.ts';
import { uniformRecords } from '../src/synthetic/uniformDataset.ts';
import type { Codec } from '../src/domain/batch.ts';
import type { HttpLogRow } from '../src/domain/httpLogRow.ts';

// kafkajs 2.2 under Node ≥ 23: a harmless TimeoutNegativeWarning per client; keep the rest.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    factor: { type: 'string', default: '2' },
    'proxy-rate': { type: 'string', default: '1r/m' },
    'interval-ms': { type: 'string' },
    'max-body': { type: 'string', default: '1m' },
    codec: { type: 'string', default: 'br' },
    level: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const factor = Number(values.factor);
const proxyRate = values['proxy-rate']!;
const rateMatch = /^(\d+)r\/(s|m)$/.exec(proxyRate);
if (!rateMatch || !(minutes > 0) || !(factor > 0)) {
  process.stderr.write('soak: --minutes and --factor must be positive, --proxy-rate like 1r/m or 2r/s\n');
  process.exit(2);
}
const intervalMs = Number(values['interval-ms'] ?? (rateMatch[2] === 'm' ? 60_000 : 1_000) / Number(rateMatch[1]));
const maxBody = values['max-body']!;
const sizeMatch = /^(\d+)([km]?)$/.exec(maxBody);
if (!sizeMatch) {
  process.stderr.write('soak: --max-body must be like 1m, 64k or 65536 (nginx client_max_body_size)\n');
  process.exit(2);
}
const maxBodyBytes = Number(sizeMatch[1]) * (sizeMatch[2] === 'm' ? 1 << 20 : sizeMatch[2] === 'k' ? 1024 : 1);
const codec = values.codec as Codec;
const level = Number(values.level ?? DEFAULT_LEVEL[codec]);
const BIN = new URL('../bin/anonymizer.js', import.meta.url).pathname;

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How many rows of the dataset fit in one body: found by compressing real batches. */
async function rowsPerRequest(): Promise<number> {
  const generator = uniformRecords({ seed: 99n, startMillis: Date.now(), rate: 1_000 });
  const rows: HttpLogRow[] = [];
  for (let i = 0; i < 80_000; i++) rows.push(storedRowOf(generator.next().value!));
  let low = 1;
  let high = rows.length;
  while (high - low > Math.max(50, low / 200)) {
    const middle = Math.floor((low + high) / 2);
    const size = (await compress(codec, level, encodeInsertBody(rows.slice(0, middle)))).byteLength;
    if (size <= maxBodyBytes) low = middle;
    else high = middle;
  }
  return low;
}

function rssMiB(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function dirBytes(dir: string): number {
  try {
    return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
  } catch {
    return 0;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'soak-'));
const services: ServiceHandle[] = [];
const children: ChildProcess[] = [];
let exitCode = 0;
try {
  const perRequest = await rowsPerRequest();
  const capacity = perRequest / (intervalMs / 1000);
  const feedRate = Math.round(capacity * factor);
  const total = Math.round(feedRate * minutes * 60);
  log(`soak: ${perRequest} rows per ${maxBody} request (${codec}-${level}), proxy ${proxyRate} → capacity ${capacity.toFixed(1)} rows/s; feeding ${feedRate} rows/s (${factor}×) for ${minutes} min = ${total} records`);

  const kafka = await startKafka({ dir: join(dir, 'kafka'), port: await freePort(), controllerPort: await freePort(), topics: [{ name: 'http_log', partitions: 3 }, { name: 'http_log_dlq', partitions: 1 }] });
  services.push(kafka);
  const chPort = await freePort();
  const clickhouse = await startClickHouse({ dir: join(dir, 'clickhouse'), port: chPort });
  services.push(clickhouse);
  const proxy = await startProxy({ dir: join(dir, 'proxy'), port: await freePort(), upstreamPort: chPort, rate: proxyRate, maxBody });
  services.push(proxy);
  const query = async (sql: string) => (await (await fetch(`${clickhouse.url}/`, { method: 'POST', body: sql })).text()).trim();

  const env = {
    ...process.env,
    KAFKA_BROKERS: kafka.brokers,
    CLICKHOUSE_URL: proxy.url,
    SPOOL_DIR: join(dir, 'spool'),
    PROXY_MIN_INTERVAL_MS: String(intervalMs),
    PROXY_MAX_BODY_BYTES: String(maxBodyBytes),
    INSERT_CODEC: codec,
    INSERT_LEVEL: String(level),
    LOG_LEVEL: 'warn',
  };
  // The app runs as `npm start` runs it: with the heap cap the README recommends (kept if
  // the caller set NODE_OPTIONS). The producer and migrate need no cap.
  const appEnv = { ...env, NODE_OPTIONS: process.env.NODE_OPTIONS ?? '--max-old-space-size=192' };
  const migrate = spawn(process.execPath, [BIN, 'migrate', '--clickhouse-url', clickhouse.url], { env, stdio: 'ignore' });
  await new Promise((resolve) => migrate.on('close', resolve));

  const app = spawn(process.execPath, [BIN, 'run'], { env: appEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(app);
  let appErrors = '';
  app.stderr!.on('data', (chunk: Buffer) => (appErrors = (appErrors + chunk.toString()).slice(-4000)));
  await sleep(3_000);
  const feedStart = Date.now();
  const producer = spawn(process.execPath, [BIN, 'produce', '--rate', String(feedRate), '--count', String(total), '--seed', '1'], { env, stdio: 'ignore' });
  children.push(producer);
  let producing = true;
  producer.on('close', () => (producing = false));

  const samples: Array<{ t: number; rss: number; phase: 'feed' | 'drain' }> = [];
  let stored = 0;
  const deadline = feedStart + minutes * 60_000 * (1 + factor) + 300_000;
  while (Date.now() < deadline) {
    await sleep(10_000);
    const rss = rssMiB(app.pid!);
    if (rss === undefined) throw new Error(`the app exited: ${appErrors}`);
    stored = Number(await query('SELECT count() FROM http_log'));
    samples.push({ t: (Date.now() - feedStart) / 1000, rss, phase: producing ? 'feed' : 'drain' });
    log(`${producing ? 'feeding' : 'draining'}: RSS ${rss.toFixed(0)} MiB, spool ${(dirBytes(join(dir, 'spool', 'batches')) / 1e6).toFixed(1)} MB, stored ${stored}/${total}`);
    if (!producing && stored >= total) break;
  }
  const drainedAfter = (Date.now() - feedStart) / 1000;
  app.kill('SIGTERM');
  await new Promise((resolve) => app.on('close', resolve));

  const [count = 0, distinct = 0] = (await query('SELECT count(), uniqExact(url) FROM http_log FORMAT TSV')).split('\t').map(Number);
  const dlq = await new Kafka({ brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).admin();
  await dlq.connect();
  const dead = (await dlq.fetchTopicOffsets('http_log_dlq')).reduce((sum, p) => sum + Number(p.high), 0);
  await dlq.disconnect();
  const feed = samples.filter((s) => s.phase === 'feed');
  const tenth = Math.max(1, Math.floor(feed.length / 10));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const early = median(feed.slice(0, tenth).map((s) => s.rss));
  const late = median(feed.slice(-tenth).map((s) => s.rss));
  const peak = Math.max(...samples.map((s) => s.rss));
  process.stdout.write(
    [
      '',
      '| soak result | value |',
      '|---|---|',
      `| fed | ${total} records at ${feedRate}/s for ${minutes} min (${factor}× the proxy's ${capacity.toFixed(1)} rows/s) |`,
      `| stored | ${count} rows, ${distinct} distinct |`,
      `| lost | ${total - distinct} |`,
      `| duplicated | ${count - distinct} |`,
      `| dead-lettered | ${dead} |`,
      `| drained after | ${drainedAfter.toFixed(0)} s from the start of feeding |`,
      `| peak RSS | ${peak.toFixed(0)} MiB |`,
      `| RSS, first vs last tenth of feeding (median) | ${early.toFixed(0)} → ${late.toFixed(0)} MiB (×${(late / early).toFixed(2)}) |`,
      '',
    ].join('\n'),
  );
  if (count !== total || distinct !== total) exitCode = 1;
} catch (error) {
  process.stderr.write(`soak: ${(error as Error).message}\n`);
  exitCode = 1;
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.allSettled(services.reverse().map((service) => service.stop()));
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
