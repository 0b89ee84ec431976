/**
 * `npm run soak -- --minutes 30`: a soak benchmark, not a test.
 *
 * On a private local stack (Kafka, the ClickHouse engine, the real nginx proxy at 1r/m and
 * 1 MiB by default), it feeds `anonymizer run` with `--factor` (2) times what the proxy can
 * carry for `--minutes`, then waits for the spool to drain. It reads the app's resident
 * memory every second, and every 10 s reports it with the V8 heap, the spool and
 * ClickHouse. At the end it prints the peak RSS and the kernel's high-water mark, how flat RSS stayed while the backlog grew, and whether anything was lost or stored
 * twice. Every process it starts is stopped by PID; every wait is bounded.
 *
 * Options: --minutes N (30)  --factor F (2)  --proxy-rate R (1r/m)  --interval-ms MS (from R)
 *          --margin-ms MS (the app's default)  --max-body B (1m)  --codec C / --level L (the
 *          app's defaults)  --dataset uniform|realistic  --app-delay S (0: start the app S
 *          seconds after the producer, so it starts on a backlog)
 *          --no-drain: stop the app when feeding ends (for memory at high factors, where
 *          draining would take hours) and account for every record instead: stored + in
 *          the spool + not yet consumed must equal what was fed.
 *          --launch node|npx (node): how the app is started. `node` runs bin/anonymizer.js with
 *          the memory settings `npm start` sets; `npx` packs this checkout, installs the
 *          tarball into a fresh project and runs `npx anonymizer run` there with none of them
 *          in the environment, as a user would (the app must set them itself). RSS is the
 *          app's process (npm's own wrapper process is reported apart).
 *          --check-fill: also judge every request (the accelerated end-to-end check of docs/performance.md):
 *          each body but the last ≥ 95 % of the limit, no 413, the backlog drained, nothing
 *          lost or duplicated; exit 1 otherwise.
 *
 * `npm run check:fill` runs the accelerated check: the real nginx at 60r/m, the app's
 * interval matched, 1.5× the sustainable rate for 5 minutes. The body limit is 32 KiB there,
 * not 1 MiB: at 60 requests a minute, 1.5× a 1 MiB body's rows (~56,000 rows/s) is more
 * than this 2-core machine can produce, consume and compress; the fill logic does not
 * depend on the body size.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { freePort, startClickHouse, startKafka, startProxy, type ServiceHandle } from '../stack/index.ts';
import { compress, DEFAULT_LEVEL } from '../src/encode/compress.ts';
import { HEAP_FLAGS } from '../src/cli/memoryBound.ts';
import { encodeInsertBody } from '../src/encode/insertBody.ts';
import { storedRowOf } from '../src/synthetic/storedRow.ts';
import { uniformRecords } from '../src/synthetic/uniformDataset.ts';
import { realisticRecords } from '../src/synthetic/realisticDataset.ts';
import { DEFAULT_FIT_FLOOR } from '../src/domain/bodyFit.ts';
import { parseBatchFile } from '../src/io/spool.ts';
import type { Codec } from '../src/domain/batch.ts';
import type { HttpLogRow } from '../src/domain/httpLogRow.ts';
import { packAndInstall, USER_ENV } from '../test/support/packageInstall.ts';

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
    'margin-ms': { type: 'string' },
    dataset: { type: 'string', default: 'uniform' },
    'app-delay': { type: 'string', default: '0' },
    'check-fill': { type: 'boolean', default: false },
    'no-drain': { type: 'boolean', default: false },
    launch: { type: 'string', default: 'node' },
    json: { type: 'string' },
  },
});
const dataset = values.dataset!;
const appDelaySeconds = Number(values['app-delay']);
const marginMs = values['margin-ms'] === undefined ? undefined : Number(values['margin-ms']);
if ((dataset !== 'uniform' && dataset !== 'realistic') || !(appDelaySeconds >= 0) || (marginMs !== undefined && !(marginMs >= 0))) {
  process.stderr.write('soak: --dataset is uniform or realistic; --app-delay and --margin-ms are ≥ 0\n');
  process.exit(2);
}
const launch = values.launch!;
if (launch !== 'node' && launch !== 'npx') {
  process.stderr.write('soak: --launch is node or npx\n');
  process.exit(2);
}
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
  const generator = (dataset === 'realistic' ? realisticRecords : uniformRecords)({ seed: 99n, startMillis: Date.now(), rate: 1_000 });
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

/** A process's resident memory now (VmRSS), or its high-water mark since it started (VmHWM), in MiB. */
function rssMiB(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | undefined {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The V8 heap in use and Node's external memory (buffers, zlib), from the app's own metrics, in MiB. */
async function heapOf(metricsUrl: string): Promise<{ heap: number; external: number } | undefined> {
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(2_000) })).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]) / 2 ** 20;
    return { heap: value('nodejs_heap_size_used_bytes'), external: value('nodejs_external_memory_bytes') };
  } catch {
    return undefined;
  }
}

/** The pids below `root` (children, grandchildren…), from /proc. */
function descendants(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The parent pid is the 4th field, after the command in parentheses (which may hold spaces).
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  for (let queue = [root]; queue.length > 0; ) {
    const children = parents.get(queue.shift()!) ?? [];
    found.push(...children);
    queue.push(...children);
  }
  return found;
}

/** The process that runs `anonymizer run` under `npx` (not npm's own, nor a shell). */
function appProcessUnder(root: number): number | undefined {
  return descendants(root).find((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return /anonymizer(?:\.js)?$/.test(argv.find((arg, i) => i > 0 && !arg.startsWith('-')) ?? '') && argv.includes('run');
    } catch {
      return false;
    }
  });
}

function environOf(pid: number): Map<string, string> {
  return new Map(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)] as [string, string]));
}

function dirBytes(dir: string): number {
  try {
    return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
  } catch {
    return 0;
  }
}

/**
 * The fill verdict on every request: from the app's "batch stored" log lines (the body
 * bytes it sent) and nginx's access log (what the proxy answered).
 */
/** What --check-fill found, for the table and for --json. */
interface FillVerdict {
  readonly passed: boolean;
  readonly lines: string[];
  readonly requestsStored: number;
  readonly status413: number;
  readonly bodiesUnderFloor: number;
  readonly bodiesOverLimit: number;
}

function judgeFill(appLogFile: string, accessLogFile: string): FillVerdict {
  // SOAK_KEEP_APP_LOG=<file> keeps the app's log for a closer look (the run's directory is removed).
  if (process.env.SOAK_KEEP_APP_LOG) copyFileSync(appLogFile, process.env.SOAK_KEEP_APP_LOG);
  const stored = readFileSync(appLogFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes('"batch stored"'))
    .map((line) => JSON.parse(line) as { bytes: number; rows: number; sealReason?: string; time?: number })
    // Which request it was: an under-filled body's place in the run says whether it came at the start or mid-run.
    .map((batch, index) => ({ ...batch, index }));
  const statuses = readFileSync(accessLogFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => Number(line.split(' ')[2]));
  const tooLarge = statuses.filter((status) => status === 413).length;
  const accepted = statuses.filter((status) => status === 200).length;
  const floor = DEFAULT_FIT_FLOOR * maxBodyBytes;
  // The last body holds what was left when input stopped: it is sent as it is.
  const allButLast = stored.slice(0, -1);
  const underFilled = allButLast.filter((batch) => batch.bytes < floor);
  const fills = allButLast.map((batch) => batch.bytes / maxBodyBytes).sort((a, b) => a - b);
  const over = stored.filter((batch) => batch.bytes > maxBodyBytes).length;
  const passed = stored.length > 1 && underFilled.length === 0 && tooLarge === 0 && over === 0 && accepted === stored.length;
  const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(x * 100).toFixed(1)} %`);
  return {
    passed,
    requestsStored: stored.length,
    status413: tooLarge,
    bodiesUnderFloor: underFilled.length,
    bodiesOverLimit: over,
    lines: [
      `| requests stored | ${stored.length} (nginx answered 200 to ${accepted}, 413 to ${tooLarge}, other ${statuses.length - accepted - tooLarge}) |`,
      `| body fill, all but the last | min ${pct(fills[0])}, median ${pct(fills[Math.floor(fills.length / 2)])}, max ${pct(fills.at(-1))} of ${maxBodyBytes} B |`,
      `| bodies under ${pct(DEFAULT_FIT_FLOOR)} (all but the last) | ${underFilled.length}${underFilled.length ? ` (${underFilled.map((b) => `${pct(b.bytes / maxBodyBytes)} ${b.sealReason ?? '?'} at request ${b.index + 1} of ${stored.length}${b.time ? `, ${new Date(b.time).toISOString().slice(11, 19)}` : ''}`).join(', ')})` : ''} |`,
      `| last body | ${stored.at(-1)?.rows ?? 0} rows, ${pct((stored.at(-1)?.bytes ?? 0) / maxBodyBytes)} |`,
      `| rows per request, all but the last (mean) | ${(allButLast.reduce((sum, batch) => sum + batch.rows, 0) / Math.max(1, allButLast.length)).toFixed(0)} |`,
    ],
  };
}

const dir = mkdtempSync(join(tmpdir(), 'soak-'));
const services: ServiceHandle[] = [];
const children: ChildProcess[] = [];
/** The app's pid when npx started it (a grandchild, not in `children`). */
const appPids: number[] = [];
let exitCode = 0;
/** Stops what this run started, by PID, and removes its files. */
async function cleanUp(): Promise<void> {
  for (const pid of appPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.allSettled(services.reverse().map((service) => service.stop()));
  services.length = 0;
  rmSync(dir, { recursive: true, force: true });
}
// Ctrl-C or a kill stops the servers too, not only the script.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`soak: ${signal}: stopping what it started\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}
try {
  const perRequest = await rowsPerRequest();
  // The app's slot period is the interval plus its safety margin (PROXY_MARGIN_MS).
  const slotMs = intervalMs + (marginMs ?? 3_000);
  const capacity = perRequest / (slotMs / 1000);
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

  const metricsPort = await freePort();
  const env = {
    ...process.env,
    KAFKA_BROKERS: kafka.brokers,
    CLICKHOUSE_URL: proxy.url,
    SPOOL_DIR: join(dir, 'spool'),
    PROXY_MIN_INTERVAL_MS: String(intervalMs),
    PROXY_MAX_BODY_BYTES: String(maxBodyBytes),
    INSERT_CODEC: codec,
    INSERT_LEVEL: String(level),
    LOG_LEVEL: process.env.SOAK_APP_LOG_LEVEL ?? (values['check-fill'] ? 'info' : 'warn'),
    // A free port: the default 9464 may be another run's.
    METRICS_PORT: String(metricsPort),
    ...(marginMs === undefined ? {} : { PROXY_MARGIN_MS: String(marginMs) }),
  };
  // The app runs as `npm start` runs it: with the heap cap the README recommends (kept if
  // the caller set NODE_OPTIONS). The producer and migrate need no cap.
  const appEnv = {
    ...env,
    NODE_OPTIONS: process.env.NODE_OPTIONS ?? HEAP_FLAGS.join(' '),
    MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
    MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? '131072',
  };
  const migrate = spawn(process.execPath, [BIN, 'migrate', '--clickhouse-url', clickhouse.url], { env, stdio: 'ignore' });
  await new Promise((resolve) => migrate.on('close', resolve));

  // --launch npx: the packed package in a fresh project, started by npx with none of the memory settings set.
  const installed = launch === 'npx' ? packAndInstall(dir) : undefined;
  if (installed) log(`launch: npx anonymizer run, from ${installed.packed.filename} installed in a fresh project`);
  const npxEnv: NodeJS.ProcessEnv = { ...USER_ENV, ...env };
  for (const name of ['NODE_OPTIONS', 'MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'ANONYMIZER_RELAUNCHED']) delete npxEnv[name];

  const appLog = join(dir, 'app.log');
  const startApp = (): ChildProcess => {
    // The app's log (JSON lines on stderr) goes to a file: --check-fill reads every "batch stored" from it.
    const stdio = ['ignore', 'ignore', openSync(appLog, 'w')] as const;
    const app = installed
      ? spawn('npx', ['--no-install', 'anonymizer', 'run'], { cwd: installed.project, env: npxEnv, stdio: [...stdio] })
      : spawn(process.execPath, [BIN, 'run'], { env: appEnv, stdio: [...stdio] });
    children.push(app);
    return app;
  };
  /** The pid whose memory counts: the app's own, below npm's wrapper when started by npx. */
  let appPid: number | undefined;
  let wrapperPeak = 0;
  const findAppPid = async (app: ChildProcess): Promise<number> => {
    if (!installed) return app.pid!;
    for (let i = 0; i < 100; i++) {
      const pid = appProcessUnder(app.pid!);
      if (pid !== undefined) {
        appPids.push(pid);
        return pid;
      }
      await sleep(100);
    }
    throw new Error(`no anonymizer process under npx: ${appErrors()}`);
  };
  const appErrors = (): string => readFileSync(appLog, 'utf8').slice(-4000);
  let app = appDelaySeconds > 0 ? undefined : startApp();
  if (app) appPid = await findAppPid(app);
  if (app) await sleep(3_000);
  const feedStart = Date.now();
  const producer = spawn(process.execPath, [BIN, 'produce', '--rate', String(feedRate), '--count', String(total), '--seed', '1', '--dataset', dataset], { env, stdio: 'ignore' });
  children.push(producer);
  let producing = true;
  producer.on('close', () => (producing = false));
  if (!app) {
    await sleep(appDelaySeconds * 1000);
    log(`starting the app on a backlog of ~${Math.round(appDelaySeconds * feedRate)} records`);
    app = startApp();
    appPid = await findAppPid(app);
  }

  const samples: Array<{ t: number; rss: number; phase: 'feed' | 'drain' }> = [];
  // RSS read every second (a 10 s sample missed short peaks); each 10 s line gives the highest of its window.
  let windowPeak = 0;
  const sampler = setInterval(() => (windowPeak = Math.max(windowPeak, rssMiB(appPid!) ?? 0)), 1_000);
  let highWater = 0;
  let stored = 0;
  const deadline = feedStart + minutes * 60_000 * (1 + factor) + appDelaySeconds * 1000 + 300_000;
  while (Date.now() < deadline) {
    await sleep(10_000);
    const now = rssMiB(appPid!);
    if (now === undefined) throw new Error(`the app exited: ${appErrors()}`);
    const rss = Math.max(windowPeak, now);
    windowPeak = 0;
    highWater = rssMiB(appPid!, 'VmHWM') ?? highWater;
    const memory = await heapOf(`http://127.0.0.1:${metricsPort}/metrics`);
    if (installed) wrapperPeak = Math.max(wrapperPeak, rssMiB(app.pid!) ?? 0);
    if (installed && samples.length === 0) {
      // By now the app has re-executed itself (same pid): what it runs with.
      const environ = environOf(appPid!);
      log(`app pid ${appPid} under npx ${app.pid}: MALLOC_ARENA_MAX=${environ.get('MALLOC_ARENA_MAX')} MALLOC_MMAP_THRESHOLD_=${environ.get('MALLOC_MMAP_THRESHOLD_')}; ${readFileSync(`/proc/${appPid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`);
    }
    stored = Number(await query('SELECT count() FROM http_log'));
    samples.push({ t: (Date.now() - feedStart) / 1000, rss, phase: producing ? 'feed' : 'drain' });
    log(`${producing ? 'feeding' : 'draining'}: RSS ${rss.toFixed(0)} MiB${memory ? ` (heap ${memory.heap.toFixed(0)}, external ${memory.external.toFixed(0)})` : ''}, spool ${(dirBytes(join(dir, 'spool', 'batches')) / 1e6).toFixed(1)} MB, stored ${stored}/${total}`);
    if (!producing && (stored >= total || values['no-drain'])) break;
  }
  clearInterval(sampler);
  highWater = rssMiB(appPid!, 'VmHWM') ?? highWater;
  const drainedAfter = (Date.now() - feedStart) / 1000;
  // SIGTERM to the app itself, as a supervisor would send it (npm's wrapper then exits with it).
  const closed = new Promise((resolve) => app.on('close', resolve));
  process.kill(appPid!, 'SIGTERM');
  await closed;

  const [count = 0, distinct = 0] = (await query('SELECT count(), uniqExact(url) FROM http_log FORMAT TSV')).split('\t').map(Number);
  const dlq = await new Kafka({ brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).admin();
  await dlq.connect();
  const dead = (await dlq.fetchTopicOffsets('http_log_dlq')).reduce((sum, p) => sum + Number(p.high), 0);
  // Without a drain: what the app stopped with is in the spool or still in Kafka, uncommitted.
  let accounted: { spooled: number; unconsumed: number } | undefined;
  if (values['no-drain']) {
    const batchesDir = join(dir, 'spool', 'batches');
    const spooled = readdirSync(batchesDir).reduce((sum, name) => sum + parseBatchFile(readFileSync(join(batchesDir, name)), name).header.rowCount, 0);
    const high = await dlq.fetchTopicOffsets('http_log');
    const [group] = await dlq.fetchOffsets({ groupId: 'http-log-anonymizer', topics: ['http_log'] });
    const committed = new Map(group!.partitions.map((p) => [p.partition, Math.max(0, Number(p.offset))]));
    const unconsumed = high.reduce((sum, p) => sum + Number(p.high) - (committed.get(p.partition) ?? 0), 0);
    accounted = { spooled, unconsumed };
  }
  await dlq.disconnect();
  const feed = samples.filter((s) => s.phase === 'feed');
  const tenth = Math.max(1, Math.floor(feed.length / 10));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const early = median(feed.slice(0, tenth).map((s) => s.rss));
  const late = median(feed.slice(-tenth).map((s) => s.rss));
  const peak = Math.max(...samples.map((s) => s.rss));
  const fill = values['check-fill'] ? judgeFill(appLog, proxy.accessLog) : undefined;
  process.stdout.write(
    [
      '',
      '| soak result | value |',
      '|---|---|',
      `| fed | ${total} records at ${feedRate}/s for ${minutes} min (${factor}× the proxy's ${capacity.toFixed(1)} rows/s) |`,
      `| stored | ${count} rows, ${distinct} distinct |`,
      ...(accounted ? [] : [`| lost | ${total - distinct} |`]),
      `| duplicated | ${count - distinct} |`,
      `| dead-lettered | ${dead} |`,
      accounted ? '| drained after | not drained (--no-drain) |' : `| drained after | ${drainedAfter.toFixed(0)} s from the start of feeding |`,
      `| peak RSS | ${peak.toFixed(0)} MiB (launched by ${installed ? 'npx anonymizer run, from the installed tarball, no memory settings in its environment' : 'node bin/anonymizer.js run, with the memory settings of npm start'}) |`,
      `| RSS high-water mark (the kernel's VmHWM, every page ever resident at once) | ${highWater.toFixed(0)} MiB |`,
      ...(installed ? [`| npm's npx wrapper process, peak RSS (not the app) | ${wrapperPeak.toFixed(0)} MiB |`] : []),
      `| RSS, first vs last tenth of feeding (median) | ${early.toFixed(0)} → ${late.toFixed(0)} MiB (×${(late / early).toFixed(2)}) |`,
      ...(fill?.lines ?? []),
      ...(accounted
        ? [`| accounted for without draining | ${count} stored + ${accounted.spooled} in the spool + ${accounted.unconsumed} not yet consumed = ${count + accounted.spooled + accounted.unconsumed} of ${total} |`]
        : []),
      '',
    ].join('\n'),
  );
  if (accounted ? count + accounted.spooled + accounted.unconsumed !== total || distinct !== count : count !== total || distinct !== total) exitCode = 1;
  if (fill && !fill.passed) exitCode = 1;
  if (fill) log(`accelerated end-to-end check: ${fill.passed && exitCode === 0 ? 'PASSED' : 'FAILED'}`);
  // --json FILE: the same figures for a program to read (test/e2e/fill.test.ts).
  if (values.json) {
    const { lines: _table, ...checked } = fill ?? { lines: [] };
    writeFileSync(
      values.json,
      JSON.stringify({ fed: total, stored: count, distinct, lost: accounted ? undefined : total - distinct, duplicated: count - distinct, deadLettered: dead, peakRssMiB: peak, highWaterRssMiB: highWater, fill: fill ? checked : undefined, passed: exitCode === 0 }, null, 2),
    );
  }
} catch (error) {
  process.stderr.write(`soak: ${(error as Error).message}\n`);
  exitCode = 1;
} finally {
  await cleanUp();
}
process.exit(exitCode);
