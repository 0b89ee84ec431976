/**
 * `npm run bench:shared-address -- --minutes 3`: instances that share one client address
 * share the proxy's `limit_req` budget. A benchmark, not a test.
 *
 * On a private local stack (Kafka, the ClickHouse engine, one real nginx from
 * etc/ch-proxy/nginx.conf at an accelerated rate), it runs, one configuration after the
 * other, 1, 2 and 3 `anonymizer run` instances on 127.0.0.1 in one consumer group, each with
 * its own spool, on a backlog large enough that every instance always has a full batch to
 * send. After every instance has stored something and ingested its share (so that the
 * measurement sees sending only), it measures `--minutes` per configuration: requests nginx
 * accepted and refused with 503 (its access log, by time), rows stored (ClickHouse's
 * count()), and each instance's rows (its /metrics), then prints one side-by-side table.
 *
 * Options: --minutes M (3, per configuration)  --proxy-rate R (60r/m)  --interval-ms MS (from
 *          R)  --margin-ms MS (150)  --max-body B (32k)  --instances LIST (1,2,3)
 *          --slot-dir shared|none (shared: the instances of a configuration get one fresh
 *          PROXY_SLOT_DIR; none: each paces alone, as before the directory existed)
 *          --json FILE (the same figures, for a program)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { createTopicsAndWait, freePort, startClickHouse, startKafka, startProxy, type ServiceHandle } from '../stack/index.ts';
import { compress } from '../src/encode/compress.ts';
import { encodeInsertBody } from '../src/encode/insertBody.ts';
import { storedRowOf } from '../src/synthetic/storedRow.ts';
import { uniformRecords } from '../src/synthetic/uniformDataset.ts';
import type { HttpLogRow } from '../src/domain/httpLogRow.ts';

process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    'proxy-rate': { type: 'string', default: '60r/m' },
    'interval-ms': { type: 'string' },
    'margin-ms': { type: 'string', default: '150' },
    'max-body': { type: 'string', default: '32k' },
    instances: { type: 'string', default: '1,2,3' },
    'slot-dir': { type: 'string', default: 'shared' },
    json: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const rateMatch = /^(\d+)r\/(s|m)$/.exec(values['proxy-rate']!);
const sizeMatch = /^(\d+)([km]?)$/.exec(values['max-body']!);
const counts = values.instances!.split(',').map(Number);
const marginMs = Number(values['margin-ms']);
if (!rateMatch || !sizeMatch || !(minutes > 0) || !(marginMs >= 0) || !counts.every((k) => Number.isInteger(k) && k >= 1 && k <= 6) || !['shared', 'none'].includes(values['slot-dir']!)) {
  process.stderr.write('bench:shared-address: --minutes > 0, --proxy-rate like 60r/m, --max-body like 32k, --margin-ms ≥ 0, --instances like 1,2,3 (each 1 to 6), --slot-dir shared or none\n');
  process.exit(2);
}
const proxyRate = values['proxy-rate']!;
const intervalMs = Number(values['interval-ms'] ?? (rateMatch[2] === 'm' ? 60_000 : 1_000) / Number(rateMatch[1]));
const maxBodyBytes = Number(sizeMatch[1]) * (sizeMatch[2] === 'm' ? 1 << 20 : sizeMatch[2] === 'k' ? 1024 : 1);
const PARTITIONS = Math.max(...counts);
const BIN = new URL('../bin/anonymizer.js', import.meta.url).pathname;
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How many uniform rows fit in one body with the codec the instances use (zstd-3). */
async function rowsPerRequest(): Promise<number> {
  const generator = uniformRecords({ seed: 99n, startMillis: Date.now(), rate: 1_000 });
  const rows: HttpLogRow[] = [];
  for (let i = 0; i < 20_000; i++) rows.push(storedRowOf(generator.next().value!));
  let low = 1;
  let high = rows.length;
  while (high - low > 20) {
    const middle = Math.floor((low + high) / 2);
    if ((await compress('zstd', 3, encodeInsertBody(rows.slice(0, middle)))).byteLength <= maxBodyBytes) low = middle;
    else high = middle;
  }
  return low;
}

function metricSum(text: string, name: string, label?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (label !== undefined && !line.includes(label)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function scrape(port: number): Promise<string> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    return response.ok ? await response.text() : '';
  } catch {
    return '';
  }
}

/** nginx's POSTs whose start lies in [from, to): accepted (200) and refused (503). */
function posts(accessLog: string, from: number, to: number): { accepted: number; refused: number } {
  let accepted = 0;
  let refused = 0;
  for (const line of readFileSync(accessLog, 'utf8').split('\n')) {
    const [msec, took, status, method] = line.split(' ');
    if (method !== 'POST') continue;
    const start = (Number(msec) - Number(took)) * 1000;
    if (start < from || start >= to) continue;
    if (status === '200') accepted++;
    else if (status === '503') refused++;
  }
  return { accepted, refused };
}

interface Row {
  readonly instances: number;
  readonly acceptedPerMin: number;
  readonly refusedPerMin: number;
  readonly rowsPerMin: number;
  /** Each instance's rows per minute, in the order they were started. */
  readonly perInstance: number[];
}

const dir = mkdtempSync(join(tmpdir(), 'shared-address-'));
const services: ServiceHandle[] = [];
const children: ChildProcess[] = [];
let exitCode = 0;
async function cleanUp(): Promise<void> {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.allSettled(services.reverse().map((service) => service.stop()));
  rmSync(dir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`bench:shared-address: ${signal}: stopping what it started\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}

try {
  const perRequest = await rowsPerRequest();
  const nginxPerMin = 60_000 / intervalMs;
  // Every instance alone could send every slot of the window: each gets that much backlog.
  const perInstanceBacklog = Math.ceil(perRequest * nginxPerMin * (minutes + 1) * 1.2);
  log(`${perRequest} rows per ${values['max-body']} body (zstd-3); nginx at ${proxyRate} (one per ${intervalMs} ms), the app's slot ${intervalMs}+${marginMs} ms; ${minutes} min per configuration`);

  const kafka = await startKafka({ dir: join(dir, 'kafka'), port: await freePort(), controllerPort: await freePort(), topics: [] });
  services.push(kafka);
  const chPort = await freePort();
  const clickhouse = await startClickHouse({ dir: join(dir, 'clickhouse'), port: chPort });
  services.push(clickhouse);
  const proxy = await startProxy({ dir: join(dir, 'proxy'), port: await freePort(), upstreamPort: chPort, rate: proxyRate, maxBody: values['max-body']! });
  services.push(proxy);
  const query = async (sql: string, database = 'default') => {
    const response = await fetch(`${clickhouse.url}/?database=${database}`, { method: 'POST', body: sql });
    const text = (await response.text()).trim();
    if (!response.ok) throw new Error(`ClickHouse ${response.status}: ${text}`);
    return text;
  };
  const admin = new Kafka({ brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const run = (args: string[], env: Record<string, string>) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`anonymizer ${args[0]} exited ${code}: ${stderr.slice(-2000)}`))));
    });

  const rows: Row[] = [];
  for (const k of counts) {
    const name = `shared_${k}`;
    await createTopicsAndWait(admin, [{ topic: name, numPartitions: PARTITIONS, replicationFactor: 1 }, { topic: `${name}_dlq`, numPartitions: 1, replicationFactor: 1 }]);
    await query(`CREATE DATABASE ${name}`);
    await run(['migrate'], { CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_DATABASE: name });
    const backlog = perInstanceBacklog * k;
    await run(['produce', '--count', String(backlog), '--rate', '200000', '--seed', String(k)], { KAFKA_BROKERS: kafka.brokers, KAFKA_TOPIC: name });
    log(`${k} instance(s): ${backlog} records produced`);
    const slotDir = join(dir, `slots-${k}`);
    mkdirSync(slotDir);
    const instances: Array<{ child: ChildProcess; port: number }> = [];
    for (let i = 0; i < k; i++) {
      const port = await freePort();
      const env = {
        KAFKA_BROKERS: kafka.brokers,
        KAFKA_TOPIC: name,
        KAFKA_DLQ_TOPIC: `${name}_dlq`,
        KAFKA_GROUP_ID: name,
        CLICKHOUSE_URL: proxy.url,
        CLICKHOUSE_DATABASE: name,
        SPOOL_DIR: join(dir, `spool-${k}-${i}`),
        PROXY_MIN_INTERVAL_MS: String(intervalMs),
        PROXY_MARGIN_MS: String(marginMs),
        PROXY_MAX_BODY_BYTES: String(maxBodyBytes),
        INSERT_CODEC: 'zstd',
        INSERT_LEVEL: '3',
        LOG_LEVEL: 'warn',
        METRICS_HOST: '127.0.0.1',
        METRICS_PORT: String(port),
        ...(values['slot-dir'] === 'shared' ? { PROXY_SLOT_DIR: slotDir } : {}),
      };
      const child = spawn(process.execPath, [BIN, 'run'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'ignore'] });
      children.push(child);
      instances.push({ child, port });
    }
    // Warm-up: the group holds k members that share the partitions, each has stored a batch
    // and ingested its whole share (lag 0), so the window measures sending only.
    for (const end = Date.now() + 180_000; ; await sleep(1_000)) {
      if (Date.now() > end) throw new Error(`${k} instance(s): no steady state within 180 s`);
      if (instances.some(({ child }) => child.exitCode !== null)) throw new Error(`${k} instance(s): an instance exited`);
      const { groups } = await admin.describeGroups([name]);
      const shares = groups[0]?.state === 'Stable' ? groups[0].members.map((m) => AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[name] ?? []) : [];
      if (shares.length !== k || shares.some((p) => p.length === 0)) continue;
      const texts = await Promise.all(instances.map(({ port }) => scrape(port)));
      if (texts.every((text) => metricSum(text, 'anonymizer_rows_stored_total') > 0 && text.includes('anonymizer_consumer_lag_messages{') && metricSum(text, 'anonymizer_consumer_lag_messages') === 0)) break;
    }
    const t0 = Date.now();
    const [stored0] = (await query('SELECT count() FROM http_log', name)).split('\t').map(Number);
    const mine0 = await Promise.all(instances.map(async ({ port }) => metricSum(await scrape(port), 'anonymizer_rows_stored_total')));
    log(`${k} instance(s): measuring for ${minutes} min`);
    await sleep(minutes * 60_000);
    const t1 = Date.now();
    const [stored1] = (await query('SELECT count() FROM http_log', name)).split('\t').map(Number);
    const mine1 = await Promise.all(instances.map(async ({ port }) => metricSum(await scrape(port), 'anonymizer_rows_stored_total')));
    const spoolsLeft = await Promise.all(instances.map(async ({ port }) => metricSum(await scrape(port), 'anonymizer_spool_batches')));
    for (const { child } of instances) child.kill('SIGTERM');
    await Promise.all(instances.map(({ child }) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.on('close', resolve)))));
    const span = (t1 - t0) / 60_000;
    const { accepted, refused } = posts(proxy.accessLog, t0, t1);
    rows.push({
      instances: k,
      acceptedPerMin: accepted / span,
      refusedPerMin: refused / span,
      rowsPerMin: (stored1! - stored0!) / span,
      perInstance: mine1.map((value, i) => (value - mine0[i]!) / span),
    });
    if (spoolsLeft.some((batches) => batches === 0)) log(`${k} instance(s): warning, an instance ran out of backlog (spool batches: ${spoolsLeft.join(', ')})`);
  }
  await admin.disconnect();

  const one = rows.find((row) => row.instances === 1)?.rowsPerMin;
  process.stdout.write(
    [
      '',
      `nginx ${proxyRate} (budget ${nginxPerMin.toFixed(1)} requests/min for the address), app interval ${intervalMs} + margin ${marginMs} ms, ${values['max-body']} bodies, ${minutes} min per configuration, slot dir: ${values['slot-dir'] === 'shared' ? 'shared' : 'none'}`,
      '',
      '| instances | accepted/min | budget unused/min | 503/min | rows/min | vs 1 instance | rows/min per instance |',
      '|---|---|---|---|---|---|---|',
      ...rows.map((row) =>
        `| ${row.instances} | ${row.acceptedPerMin.toFixed(1)} | ${Math.max(0, nginxPerMin - row.acceptedPerMin).toFixed(1)} | ${row.refusedPerMin.toFixed(1)} | ${Math.round(row.rowsPerMin)} | ${one ? `${((row.rowsPerMin / one) * 100).toFixed(1)} %` : 'n/a'} | ${row.perInstance.map((x) => Math.round(x)).join(' / ')} |`,
      ),
      '',
    ].join('\n'),
  );
  if (values.json) writeFileSync(values.json, JSON.stringify({ proxyRate, intervalMs, marginMs, maxBodyBytes, minutes, rows }, null, 2));
} catch (error) {
  process.stderr.write(`bench:shared-address: ${(error as Error).stack ?? String(error)}\n`);
  exitCode = 1;
} finally {
  await cleanUp();
}
process.exit(exitCode);
