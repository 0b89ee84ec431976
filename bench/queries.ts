/**
 * `npm run bench:queries`: how fast the Grafana panels' queries run on our schema
 * (etc/clickhouse/schema.sql) and on the prior art's, side by side on the same rows, and
 * how many bytes each table takes on disk.
 *
 * For each dataset (uniform, realistic) and size (1M, 10M, 100M raw rows over the same
 * 7 days), it generates the rows inside the engine (bench/datasetSql.ts), loads them into
 * both schemas in one in-process chdb session, merges every table (OPTIMIZE … FINAL, the
 * state background merges converge to), checks that both schemas give the same answer to
 * every query, then runs each query `--runs` times per schema and reports p50 and p95.
 * It also measures the capacity model's constants: bytes on disk per table, and distinct
 * totals keys among n rows (docs/capacity.md, src/capacity/model.ts).
 *
 * A benchmark, not a test: progress on stderr (when it is a TTY, a live line), the
 * markdown tables on stdout, and the tables, an SVG chart and the raw figures as JSON
 * in `--out`.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Session } from 'chdb';
import { splitStatements } from '../src/cli/migrate.ts';
import { DATASET_NAMES, datasetSelect, distinctKeysQuery, realisticHotKeys } from './datasetSql.ts';
import type { DatasetName } from './datasetSql.ts';
import { renderChart } from './queriesChart.ts';

const REPO = new URL('..', import.meta.url).pathname;
const DAY = 86_400;
/** Every size spreads its rows over the same week, so "last hour" is 1/168 of any size. */
const SPAN = 7 * DAY;
const SEED = 1;
/** Rows per INSERT … SELECT: bounds the memory of one load step and paces the progress line. */
const CHUNK = 10_000_000;

/**
 * The prior art's schema (a public Go solution of the same task): a raw MergeTree partitioned by
 * day, `ORDER BY (timestamp, resource_id)`, and a SummingMergeTree of per-minute totals filled by a
 * materialized view; default codecs, one totals table (docs/query-performance.md).
 */
const PRIOR_SCHEMA = [
  `CREATE TABLE http_log (
    timestamp DateTime, resource_id UInt64, bytes_sent UInt64, request_time_milli UInt64, response_status UInt16,
    cache_status LowCardinality(String), method LowCardinality(String), remote_addr String, url String)
  ENGINE = MergeTree PARTITION BY toYYYYMMDD(timestamp) ORDER BY (timestamp, resource_id)`,
  `CREATE TABLE http_log_totals (
    minute DateTime, resource_id UInt64, response_status UInt16, cache_status LowCardinality(String), remote_addr String,
    requests UInt64, bytes_sent UInt64)
  ENGINE = SummingMergeTree PARTITION BY toYYYYMMDD(minute) ORDER BY (minute, resource_id, response_status, cache_status, remote_addr)`,
  `CREATE MATERIALIZED VIEW http_log_totals_mv TO http_log_totals AS
  SELECT toStartOfMinute(timestamp) AS minute, resource_id, response_status, cache_status, remote_addr,
         count() AS requests, sum(bytes_sent) AS bytes_sent
  FROM http_log GROUP BY minute, resource_id, response_status, cache_status, remote_addr`,
];

interface Keys { resourceId: string; status: number; cache: string; addr: string }
interface Range { end: number }

/**
 * One panel's question, as our schema asks it (from the table a Grafana panel of that span
 * picks, docs/schema.md) and as the prior art's (its one per-minute totals table). Time
 * ranges end at a day boundary, so hour and day buckets cover exactly the same rows.
 */
interface QuerySpec {
  readonly id: string;
  readonly title: string;
  readonly ours: (r: Range, k: Keys) => string;
  readonly prior: (r: Range, k: Keys) => string;
}

const t = (unix: number): string => `toDateTime(${unix}, 'UTC')`;
const within = (column: string, from: number, to: number): string => `${column} >= ${t(from)} AND ${column} < ${t(to)}`;
const fourDims = (k: Keys): string =>
  `resource_id = ${k.resourceId} AND response_status = ${k.status} AND cache_status = '${k.cache}' AND remote_addr = '${k.addr}'`;

const trafficPerMinute = (id: string, title: string, seconds: number): QuerySpec => ({
  id, title,
  ours: (r) => `SELECT minute, sum(requests), sum(bytes_sent) FROM http_log_totals_1m WHERE ${within('minute', r.end - seconds, r.end)} GROUP BY minute ORDER BY minute`,
  prior: (r) => `SELECT minute, sum(requests), sum(bytes_sent) FROM http_log_totals WHERE ${within('minute', r.end - seconds, r.end)} GROUP BY minute ORDER BY minute`,
});

export const QUERIES: readonly QuerySpec[] = [
  trafficPerMinute('traffic_1h', 'traffic per minute, last 1 h', 3_600),
  trafficPerMinute('traffic_24h', 'traffic per minute, last 24 h', DAY),
  trafficPerMinute('traffic_7d', 'traffic per minute, last 7 d', 7 * DAY),
  {
    id: 'top_resources_1h', title: 'top 10 resources by bytes, last 1 h',
    ours: (r) => `SELECT resource_id, sum(bytes_sent) AS bytes, sum(requests) FROM http_log_totals_1m WHERE ${within('minute', r.end - 3_600, r.end)} GROUP BY resource_id ORDER BY bytes DESC, resource_id LIMIT 10`,
    prior: (r) => `SELECT resource_id, sum(bytes_sent) AS bytes, sum(requests) FROM http_log_totals WHERE ${within('minute', r.end - 3_600, r.end)} GROUP BY resource_id ORDER BY bytes DESC, resource_id LIMIT 10`,
  },
  {
    id: 'top_resources_1d', title: 'top 10 resources by bytes, last 24 h',
    ours: (r) => `SELECT resource_id, sum(bytes_sent) AS bytes, sum(requests) FROM http_log_totals_1h WHERE ${within('hour', r.end - DAY, r.end)} GROUP BY resource_id ORDER BY bytes DESC, resource_id LIMIT 10`,
    prior: (r) => `SELECT resource_id, sum(bytes_sent) AS bytes, sum(requests) FROM http_log_totals WHERE ${within('minute', r.end - DAY, r.end)} GROUP BY resource_id ORDER BY bytes DESC, resource_id LIMIT 10`,
  },
  {
    id: 'cache_per_minute_1d', title: 'requests per cache status per minute, last 24 h',
    ours: (r) => `SELECT minute, cache_status, sum(requests) FROM http_log_totals_1m WHERE ${within('minute', r.end - DAY, r.end)} GROUP BY minute, cache_status ORDER BY minute, cache_status`,
    prior: (r) => `SELECT minute, cache_status, sum(requests) FROM http_log_totals WHERE ${within('minute', r.end - DAY, r.end)} GROUP BY minute, cache_status ORDER BY minute, cache_status`,
  },
  {
    id: 'status_1d', title: 'requests per status, last 24 h',
    ours: (r) => `SELECT response_status, sum(requests), sum(bytes_sent) FROM http_log_totals_1h WHERE ${within('hour', r.end - DAY, r.end)} GROUP BY response_status ORDER BY response_status`,
    prior: (r) => `SELECT response_status, sum(requests), sum(bytes_sent) FROM http_log_totals WHERE ${within('minute', r.end - DAY, r.end)} GROUP BY response_status ORDER BY response_status`,
  },
  {
    id: 'resource_by_status_1d', title: 'one resource per hour by status, last 24 h',
    ours: (r, k) => `SELECT hour, response_status, sum(requests), sum(bytes_sent) FROM http_log_totals_1h WHERE resource_id = ${k.resourceId} AND ${within('hour', r.end - DAY, r.end)} GROUP BY hour, response_status ORDER BY hour, response_status`,
    prior: (r, k) => `SELECT toStartOfHour(minute) AS hour, response_status, sum(requests), sum(bytes_sent) FROM http_log_totals WHERE resource_id = ${k.resourceId} AND ${within('minute', r.end - DAY, r.end)} GROUP BY hour, response_status ORDER BY hour, response_status`,
  },
  {
    id: 'top_prefixes_1d', title: 'top 10 address prefixes by bytes, last 24 h',
    ours: (r) => `SELECT remote_addr, sum(bytes_sent) AS bytes, sum(requests) FROM http_log_totals_1h WHERE ${within('hour', r.end - DAY, r.end)} GROUP BY remote_addr ORDER BY bytes DESC, remote_addr LIMIT 10`,
    prior: (r) => `SELECT remote_addr, sum(bytes_sent) AS bytes, sum(requests) FROM http_log_totals WHERE ${within('minute', r.end - DAY, r.end)} GROUP BY remote_addr ORDER BY bytes DESC, remote_addr LIMIT 10`,
  },
  {
    id: 'four_dims_1d', title: 'all four dimensions filtered, per hour, last 24 h',
    ours: (r, k) => `SELECT hour, sum(requests), sum(bytes_sent) FROM http_log_totals_1h WHERE ${fourDims(k)} AND ${within('hour', r.end - DAY, r.end)} GROUP BY hour ORDER BY hour`,
    prior: (r, k) => `SELECT toStartOfHour(minute) AS hour, sum(requests), sum(bytes_sent) FROM http_log_totals WHERE ${fourDims(k)} AND ${within('minute', r.end - DAY, r.end)} GROUP BY hour ORDER BY hour`,
  },
  // The dashboard's time series over 24 h read the minute table (their points can be finer
  // than an hour: docs/schema.md), so these two are the per-minute forms of the two above.
  {
    id: 'resource_by_status_1d_1m', title: 'one resource per minute by status, last 24 h',
    ours: (r, k) => `SELECT minute, response_status, sum(requests), sum(bytes_sent) FROM http_log_totals_1m WHERE resource_id = ${k.resourceId} AND ${within('minute', r.end - DAY, r.end)} GROUP BY minute, response_status ORDER BY minute, response_status`,
    prior: (r, k) => `SELECT minute, response_status, sum(requests), sum(bytes_sent) FROM http_log_totals WHERE resource_id = ${k.resourceId} AND ${within('minute', r.end - DAY, r.end)} GROUP BY minute, response_status ORDER BY minute, response_status`,
  },
  {
    id: 'four_dims_1d_1m', title: 'all four dimensions filtered, per minute, last 24 h',
    ours: (r, k) => `SELECT minute, sum(requests), sum(bytes_sent) FROM http_log_totals_1m WHERE ${fourDims(k)} AND ${within('minute', r.end - DAY, r.end)} GROUP BY minute ORDER BY minute`,
    prior: (r, k) => `SELECT minute, sum(requests), sum(bytes_sent) FROM http_log_totals WHERE ${fourDims(k)} AND ${within('minute', r.end - DAY, r.end)} GROUP BY minute ORDER BY minute`,
  },
];

export interface Timing { p50: number; p95: number; runs: number[] }
export interface QueryResult {
  dataset: DatasetName; size: number; query: string;
  ours: Timing; prior: Timing; oursReads: string; resultRows: number;
}
export interface TableSize { dataset: DatasetName; size: number; schema: 'ours' | 'prior'; table: string; rows: number; bytes: number; parts?: number }
export interface DistinctKeys { dataset: DatasetName; n: number; windows: number; keys: number }
export interface LoadTiming { dataset: DatasetName; size: number; generateAndLoadMs: number; copyToPriorMs: number; optimizeMs: number; merge?: MergeMode }
export interface BenchReport {
  machine: string; command: string; startedAt: string; runs: number;
  queries: QueryResult[]; sizes: TableSize[]; distinct: DistinctKeys[]; loads: LoadTiming[];
}

// ---------------------------------------------------------------------------------------

function usageError(message: string): never {
  process.stderr.write(`bench:queries: ${message}\n`);
  process.exit(2);
}

type MergeMode = 'final' | 'background';

function parseOptions(): { sizes: number[]; datasets: DatasetName[]; queries: readonly QuerySpec[]; runs: number; out: string; data: string; merge: MergeMode; render?: string } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        sizes: { type: 'string', default: '1e6,1e7,1e8' },
        datasets: { type: 'string', default: DATASET_NAMES.join(',') },
        runs: { type: 'string', default: '10' },
        queries: { type: 'string', default: QUERIES.map((spec) => spec.id).join(',') },
        out: { type: 'string', default: join(REPO, 'var', 'bench-queries') },
        data: { type: 'string', default: '/tmp/bench-queries-chdb' },
        merge: { type: 'string', default: 'final' },
        render: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    usageError((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`Usage: npm run bench:queries -- [--sizes 1e6,1e7,1e8] [--datasets uniform,realistic] [--queries id,…] [--runs 10] [--out var/bench-queries] [--data /tmp/bench-queries-chdb] [--merge final|background]
       npm run bench:queries -- --render a.json,b.json [--out dir]   (tables and chart of earlier runs' queries.json, together)\n`);
    process.exit(0);
  }
  const sizes = values.sizes.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 10_000 || n > 1e9) usageError(`--sizes must be integers from 1e4 to 1e9, comma-separated (got "${values.sizes}")`);
    return n;
  });
  const datasets = values.datasets.split(',').map((d) => {
    const name = d.trim() as DatasetName;
    if (!DATASET_NAMES.includes(name)) usageError(`--datasets must be among ${DATASET_NAMES.join(', ')} (got "${values.datasets}")`);
    return name;
  });
  const queries = values.queries.split(',').map((id) => {
    const spec = QUERIES.find((q) => q.id === id.trim());
    if (!spec) usageError(`--queries must be among ${QUERIES.map((q) => q.id).join(', ')} (got "${id.trim()}")`);
    return spec;
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) usageError(`--runs must be an integer from 1 to 1000 (got "${values.runs}")`);
  if (values.merge !== 'final' && values.merge !== 'background') usageError(`--merge must be final or background (got "${values.merge}")`);
  return { sizes, datasets, queries, runs, out: values.out, data: values.data, merge: values.merge, ...(values.render ? { render: values.render } : {}) };
}

const tty = process.stderr.isTTY;
let lastLine = '';
let lastPrinted = 0;
/** On a TTY a live line; in a log, a line when the phase changes and at most every 30 s within it. */
function progress(line: string, final = false): void {
  if (tty) {
    process.stderr.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
  } else if (final || line.split(':')[0] !== lastLine.split(':')[0] || (line !== lastLine && performance.now() - lastPrinted >= 30_000)) {
    process.stderr.write(`${line}\n`);
    lastPrinted = performance.now();
  }
  lastLine = line;
}

/** Nearest-rank percentile: with 10 runs, p95 is the slowest run. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const human = (n: number): string => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));
const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

async function main(): Promise<void> {
  const options = parseOptions();
  if (options.render !== undefined) {
    // Runs of different sizes (a 100M load is long) shown as one table and one chart.
    const reports = options.render.split(',').map((file) => JSON.parse(readFileSync(file.trim(), 'utf8')) as BenchReport);
    const first = reports[0]!;
    const merged: BenchReport = {
      ...first,
      command: reports.map((r) => r.command).join('` and `'),
      startedAt: reports.map((r) => r.startedAt).join(', '),
      queries: reports.flatMap((r) => r.queries),
      sizes: reports.flatMap((r) => r.sizes),
      distinct: reports.flatMap((r) => r.distinct),
      loads: reports.flatMap((r) => r.loads),
    };
    writeOutputs(merged, options.out);
    return;
  }
  const command = `npm run bench:queries -- ${process.argv.slice(2).join(' ')}`.trim();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}`;
  mkdirSync(options.out, { recursive: true });
  rmSync(options.data, { recursive: true, force: true });
  const session = new Session(options.data);
  // The realistic generator carries its rank tables as array literals (≈ 300 kB of SQL).
  session.query('SET max_query_size = 100000000');
  const q = (sql: string): string => session.query(sql, 'TSV');
  const version = q('SELECT version()').trim();
  const report: BenchReport = {
    machine: `${machine}, ClickHouse ${version} (chdb)`, command, startedAt: new Date().toISOString(), runs: options.runs,
    queries: [], sizes: [], distinct: [], loads: [],
  };
  // The week ends at the last midnight (UTC), so the totals tables' TTLs keep every row.
  const end = Math.floor(Date.now() / 1000 / DAY) * DAY;
  const start = end - SPAN;
  const ourSchema = splitStatements(readFileSync(join(REPO, 'etc/clickhouse/schema.sql'), 'utf8'));

  try {
    for (const dataset of options.datasets) {
      for (const size of [...options.sizes].sort((a, b) => a - b)) {
        const label = `${dataset} ${human(size)}`;
        q('DROP DATABASE IF EXISTS ours SYNC');
        q('DROP DATABASE IF EXISTS prior SYNC');
        q('CREATE DATABASE ours');
        q('CREATE DATABASE prior');
        q('USE ours');
        for (const statement of ourSchema) q(statement);
        q('USE prior');
        for (const statement of PRIOR_SCHEMA) q(statement);

        // Load in chunks: generate into ours (its views fill the totals), then copy the same
        // rows into the prior art's raw table (its view fills its totals).
        let generateAndLoadMs = 0;
        let copyToPriorMs = 0;
        for (let offset = 0; offset < size; offset += CHUNK) {
          const count = Math.min(CHUNK, size - offset);
          progress(`load ${label}: ${human(offset)} of ${human(size)} rows, ${((generateAndLoadMs + copyToPriorMs) / 1000).toFixed(0)} s`);
          let t0 = performance.now();
          q(`INSERT INTO ours.http_log ${datasetSelect(dataset, { rows: size, start, span: SPAN, seed: SEED, offset, count })}`);
          generateAndLoadMs += performance.now() - t0;
          // The chunk's time range, from the generator's timestamp formula.
          const from = start + Math.floor((offset * SPAN) / size);
          const to = offset + count >= size ? end : start + Math.floor(((offset + count) * SPAN) / size);
          t0 = performance.now();
          const rangeOf = offset + count >= size ? `timestamp >= ${t(from)}` : `timestamp >= ${t(from)} AND timestamp < ${t(to)}`;
          q(`INSERT INTO prior.http_log SELECT * FROM ours.http_log WHERE ${rangeOf}`);
          copyToPriorMs += performance.now() - t0;
        }
        const loaded = q('SELECT (SELECT count() FROM ours.http_log), (SELECT count() FROM prior.http_log)').trim();
        if (loaded !== `${size}\t${size}`) throw new Error(`${label}: loaded ${loaded} rows, expected ${size} in each schema`);
        const t1 = performance.now();
        if (options.merge === 'final') {
          progress(`merge ${label}: OPTIMIZE … FINAL on every table`);
          for (const db of ['ours', 'prior']) {
            const tables = q(`SELECT name FROM system.tables WHERE database = '${db}' AND engine LIKE '%MergeTree' ORDER BY name`).trim().split('\n');
            for (const table of tables) q(`OPTIMIZE TABLE ${db}.${table} FINAL`);
          }
        } else {
          // What a live table looks like: whatever the background merges made of the
          // inserted parts once they go quiet (no merge running for 10 s, at most 20 min).
          let quiet = 0;
          while (quiet < 5 && performance.now() - t1 < 20 * 60_000) {
            const running = Number(q('SELECT count() FROM system.merges').trim());
            quiet = running === 0 ? quiet + 1 : 0;
            progress(`merge ${label}: waiting for background merges (${running} running, ${((performance.now() - t1) / 1000).toFixed(0)} s)`);
            await new Promise((resolve) => setTimeout(resolve, 2_000));
          }
        }
        const optimizeMs = performance.now() - t1;
        report.loads.push({ dataset, size, generateAndLoadMs, copyToPriorMs, optimizeMs, merge: options.merge });
        progress(`load ${label}: ${((generateAndLoadMs + copyToPriorMs) / 1000).toFixed(0)} s to load both schemas, ${(optimizeMs / 1000).toFixed(0)} s to merge`, true);

        for (const db of ['ours', 'prior'] as const) {
          const rows = q(`SELECT table, sum(rows), sum(bytes_on_disk), count() FROM system.parts WHERE database = '${db}' AND active GROUP BY table ORDER BY table`);
          for (const line of rows.trim().split('\n')) {
            const [table, r, b, p] = line.split('\t');
            report.sizes.push({ dataset, size, schema: db, table: table!, rows: Number(r), bytes: Number(b), parts: Number(p) });
          }
        }

        const keys = pickKeys(dataset, q, end);
        for (const [i, spec] of options.queries.entries()) {
          progress(`queries ${label}: ${i + 1}/${options.queries.length} ${spec.title}`);
          const oursSql = spec.ours({ end }, keys);
          const priorSql = spec.prior({ end }, keys);
          q('USE ours');
          const oursAnswer = q(oursSql);
          const reads = /ReadFromMergeTree \(([^)]+)\)/.exec(q(`EXPLAIN projections = 1 ${oursSql}`))?.[1] ?? '?';
          q('USE prior');
          const priorAnswer = q(priorSql);
          if (oursAnswer !== priorAnswer) {
            throw new Error(`${label}: ${spec.id} answers differ between the schemas:\n ours: ${oursAnswer.slice(0, 300)}\n prior: ${priorAnswer.slice(0, 300)}`);
          }
          const oursRuns: number[] = [];
          const priorRuns: number[] = [];
          for (let run = 0; run < options.runs; run++) {
            // Alternate the schemas, so that neither runs in a warmer moment than the other.
            q('USE ours');
            let t0 = performance.now();
            q(oursSql);
            oursRuns.push(performance.now() - t0);
            q('USE prior');
            t0 = performance.now();
            q(priorSql);
            priorRuns.push(performance.now() - t0);
          }
          report.queries.push({
            dataset, size, query: spec.id, ours: timing(oursRuns), prior: timing(priorRuns),
            oursReads: reads.replace(/^ours\./, ''), resultRows: oursAnswer.trim() === '' ? 0 : oursAnswer.trim().split('\n').length,
          });
        }
        progress(`queries ${label}: done`, true);
        q('USE default');
        q('DROP DATABASE ours SYNC');
        q('DROP DATABASE prior SYNC');
      }

      // The capacity model's distinct-keys curve: independent of the sizes loaded.
      const maxN = Math.max(...options.sizes) >= 1e8 ? 1e8 : 1e7;
      for (let n = 10; n <= maxN; n *= 10) {
        progress(`distinct keys ${dataset}: n = ${human(n)}`);
        const windows = Math.max(1, Math.min(100, Math.floor(1e7 / n)));
        const keys = Number(q(distinctKeysQuery(dataset, n, windows, SEED + 1)).trim());
        report.distinct.push({ dataset, n, windows, keys });
      }
      progress(`distinct keys ${dataset}: done`, true);
    }
  } finally {
    session.cleanup();
    rmSync(options.data, { recursive: true, force: true });
  }

  writeOutputs(report, options.out);
}

function writeOutputs(report: BenchReport, out: string): void {
  mkdirSync(out, { recursive: true });
  const markdown = renderMarkdown(report);
  process.stdout.write(markdown);
  writeFileSync(join(out, 'queries.md'), markdown);
  writeFileSync(join(out, 'queries.svg'), renderChart(report));
  writeFileSync(join(out, 'queries.json'), `${JSON.stringify(report, null, 1)}\n`);
  process.stderr.write(`bench:queries: wrote ${join(out, 'queries.{md,svg,json}')}\n`);
}

function timing(runs: number[]): Timing {
  const sorted = [...runs].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), runs };
}

/** The one resource, status, cache status and address the filtered queries ask about. */
function pickKeys(dataset: DatasetName, q: (sql: string) => string, end: number): Keys {
  if (dataset === 'realistic') {
    // The busiest resource and network, the commonest status and cache status: the panel a user opens first.
    const hot = realisticHotKeys();
    return { resourceId: hot.resourceId, status: 200, cache: 'HIT', addr: hot.network };
  }
  // Uniform: every key is rare, so take one that occurs in the last hour.
  const row = q(`SELECT resource_id, response_status, cache_status, remote_addr FROM ours.http_log
                 WHERE timestamp >= ${t(end - 3_600)} ORDER BY timestamp, resource_id LIMIT 1`).trim().split('\t');
  return { resourceId: row[0]!, status: Number(row[1]), cache: row[2]!, addr: row[3]! };
}

export function renderMarkdown(report: BenchReport): string {
  const out: string[] = [];
  out.push(`Machine: ${report.machine}. Command: \`${report.command}\`. ${report.runs} runs per query and schema, ${report.startedAt}.`, '');
  out.push('### Query times (ms; speed-up = prior p50 ÷ ours p50)', '');
  out.push('| dataset | rows | query | ours p50 | ours p95 | prior p50 | prior p95 | speed-up | ours reads | result rows |');
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of report.queries) {
    out.push(`| ${r.dataset} | ${human(r.size)} | ${r.query} | ${ms(r.ours.p50)} | ${ms(r.ours.p95)} | ${ms(r.prior.p50)} | ${ms(r.prior.p95)} | ${(r.prior.p50 / r.ours.p50).toFixed(1)}× | ${r.oursReads} | ${r.resultRows} |`);
  }
  out.push('', '### Disk (projections and indexes included; active parts after the merge step)', '');
  out.push('| dataset | rows | schema | table | table rows | parts | MiB | B per raw row | B per table row |');
  out.push('|---|---|---|---|---|---|---|---|---|');
  for (const s of report.sizes) {
    out.push(`| ${s.dataset} | ${human(s.size)} | ${s.schema} | ${s.table} | ${s.rows} | ${s.parts ?? '?'} | ${(s.bytes / 2 ** 20).toFixed(1)} | ${(s.bytes / s.size).toFixed(2)} | ${s.rows ? (s.bytes / s.rows).toFixed(2) : '—'} |`);
  }
  out.push('', '### Load', '');
  out.push('| dataset | rows | generate + load ours (s) | copy into prior (s) | merge step | merge, both schemas (s) |');
  out.push('|---|---|---|---|---|---|');
  for (const l of report.loads) {
    out.push(`| ${l.dataset} | ${human(l.size)} | ${(l.generateAndLoadMs / 1000).toFixed(1)} | ${(l.copyToPriorMs / 1000).toFixed(1)} | ${l.merge === 'background' ? 'background merges until quiet' : 'OPTIMIZE FINAL'} | ${(l.optimizeMs / 1000).toFixed(1)} |`);
  }
  out.push('', '### Distinct totals keys (resource, status, cache status, address) among n consecutive rows', '');
  out.push('| dataset | n | windows averaged | distinct keys | keys ÷ n |');
  out.push('|---|---|---|---|---|');
  for (const d of report.distinct) out.push(`| ${d.dataset} | ${human(d.n)} | ${d.windows} | ${d.keys.toFixed(1)} | ${(d.keys / d.n).toFixed(4)} |`);
  return `${out.join('\n')}\n`;
}

await main();
