// etc/clickhouse/schema.sql on the real engine (chdb behind the local HTTP endpoint):
// - `anonymizer migrate` applies it, and applies it again without change (idempotent),
//   keeping a TTL an operator set with ALTER … MODIFY TTL;
// - for seeded random rows inserted in blocks with the pipeline's pinned dedup settings,
//   every aggregate table (1m, 1h, 1d) holds exactly the same GROUP BY as the raw table,
//   for all 16 subsets of (resource_id, response_status, cache_status, remote_addr), with
//   and without the projections: before merges, after a retried block (deduplicated),
//   after OPTIMIZE … FINAL, and after retrying every block once more;
// - a control: the same block with a NEW token is counted again, so the dedup assertions
//   can fail.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { freePort, REPO_ROOT, startClickHouse } from '../../stack/index.ts';
import type { ServiceHandle } from '../../stack/index.ts';
import { splitStatements } from '../../src/cli/migrate.ts';
import { generateRows, toTsv } from './data.ts';
import type { Row } from './data.ts';

const DB = 'schema_test';
const ROWS = 20_000;
const BLOCKS = 5;
const DAYS = 4;
const DIMENSIONS = ['resource_id', 'response_status', 'cache_status', 'remote_addr'] as const;
const TABLES = [
  { table: 'http_log_totals_1m', bucket: 'minute', of: 'toStartOfMinute(timestamp)' },
  { table: 'http_log_totals_1h', bucket: 'hour', of: 'toStartOfHour(timestamp)' },
  { table: 'http_log_totals_1d', bucket: 'day', of: 'toStartOfDay(timestamp)' },
] as const;
/** The product's pinned insert settings (docs/guarantees.md). */
const PINNED = { async_insert: '0', insert_deduplicate: '1', deduplicate_blocks_in_dependent_materialized_views: '1' };

/** Every subset of the four dimensions, the empty one included. */
const SUBSETS: string[][] = Array.from({ length: 1 << DIMENSIONS.length }, (_, mask) =>
  DIMENSIONS.filter((_, bit) => mask & (1 << bit)));

describe('schema: totals tables', () => {
  let dir: string;
  let ch: ServiceHandle & { url: string };
  let blocks: Row[][];

  const post = async (sql: string, params: Record<string, string> = {}, body?: string): Promise<string> => {
    const url = new URL(ch.url);
    if (!sql.startsWith('CREATE DATABASE')) url.searchParams.set('database', DB);
    if (body !== undefined) url.searchParams.set('query', sql);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const res = await fetch(url, { method: 'POST', body: body ?? sql });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${res.status} ${text} (${sql.slice(0, 200)})`);
    return text;
  };
  const insertBlock = (rows: readonly Row[], token: string): Promise<string> =>
    post('INSERT INTO http_log FORMAT TabSeparated', { ...PINNED, insert_deduplication_token: token }, toTsv(rows));
  const migrate = (): void => {
    const run = spawnSync(process.execPath, ['bin/anonymizer.js', 'migrate'], {
      cwd: REPO_ROOT,
      env: { ...process.env, CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: DB },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr.match(/migrate: applied/g)?.length).toBe(7);
  };
  const showCreates = async (): Promise<string[]> => {
    const names = (await post(`SELECT name FROM system.tables WHERE database = '${DB}' ORDER BY name`)).trim().split('\n');
    return Promise.all(names.map((name) => post(`SHOW CREATE TABLE ${name}`)));
  };

  /** Totals of every table, requests and bytes, as one comparable string. */
  const grandTotals = async (): Promise<Record<string, string>> => {
    const out: Record<string, string> = {
      http_log: (await post('SELECT count(), sum(bytes_sent) FROM http_log')).trim(),
    };
    for (const { table } of TABLES) out[table] = (await post(`SELECT sum(requests), sum(bytes_sent) FROM ${table}`)).trim();
    return out;
  };

  /**
   * For each table, each subset of dimensions, with projections allowed and forbidden:
   * the table's sums per (bucket, subset) must equal the raw table's count() and
   * sum(bytes_sent) per the same key. Returns how many comparisons and groups it checked.
   */
  const assertTotalsMatchRaw = async (phase: string): Promise<{ comparisons: number; groups: number }> => {
    let comparisons = 0;
    let groups = 0;
    for (const { table, bucket, of } of TABLES) {
      for (const dims of SUBSETS) {
        const keys = ['b', ...dims].join(', ');
        const select = dims.length ? `, ${dims.join(', ')}` : '';
        const raw = await post(
          `SELECT ${of} AS b${select}, count() AS requests, sum(bytes_sent) AS bytes FROM http_log GROUP BY ${keys} ORDER BY ${keys}`);
        for (const projections of ['1', '0']) {
          const totals = await post(
            `SELECT ${bucket} AS b${select}, sum(requests) AS requests, sum(bytes_sent) AS bytes FROM ${table} GROUP BY ${keys} ORDER BY ${keys}`,
            { optimize_use_projections: projections });
          if (totals !== raw) {
            const a = raw.split('\n');
            const b = totals.split('\n');
            const first = a.findIndex((line, i) => line !== b[i]);
            throw new Error(`${phase}: ${table} by (${['bucket', ...dims].join(', ')}), projections=${projections}: ` +
              `${b.length - 1} groups vs ${a.length - 1} in raw; first difference at ${first}: raw ${a[first]} / totals ${b[first]}`);
          }
          comparisons++;
        }
        groups += raw.split('\n').length - 1;
      }
    }
    return { comparisons, groups };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'schema-test-'));
    ch = await startClickHouse({ dir, port: await freePort() });
    await post(`CREATE DATABASE IF NOT EXISTS ${DB}`);
    // Recent data, so that no default TTL deletes it during OPTIMIZE … FINAL.
    const today = Math.floor(Date.now() / 86_400_000) * 86_400;
    const rows = generateRows(20_260_501, ROWS, today - (DAYS - 1) * 86_400, DAYS);
    // Each block holds rows from every day (several partitions per insert).
    blocks = Array.from({ length: BLOCKS }, (_, b) => rows.filter((_, i) => i % BLOCKS === b));
  }, 60_000);

  afterAll(async () => {
    await ch?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('has few statements, each idempotent', () => {
    const statements = splitStatements(readFileSync(join(REPO_ROOT, 'etc/clickhouse/schema.sql'), 'utf8'));
    expect(statements.length).toBe(7);
    for (const statement of statements) {
      const sql = statement.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('--')).join('\n');
      expect(sql).toMatch(/^CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS /);
    }
  });

  it('migrates, migrates again without change, and keeps an operator-set TTL', async () => {
    migrate();
    const first = await showCreates();
    expect(first.length).toBe(7);
    migrate();
    expect(await showCreates()).toEqual(first);

    // Every table that receives inserts has its dedup window.
    for (const table of ['http_log', ...TABLES.map((t) => t.table)]) {
      const create = first.find((c) => c.includes(`${DB}.${table}\\n`));
      expect(create, table).toMatch(/non_replicated_deduplication_window = 10000/);
    }

    // Retention is configured with ALTER … MODIFY TTL; a later migrate keeps it.
    await post('ALTER TABLE http_log MODIFY TTL timestamp + toIntervalDay(60)', { materialize_ttl_after_modify: '0' });
    migrate();
    expect(await post('SHOW CREATE TABLE http_log')).toMatch(/TTL timestamp \+ toIntervalDay\(60\)/);
  });

  it('keeps every rollup equal to the raw table, through retries and merges', async () => {
    const started = Date.now();
    let folded = '';
    const expected = { rows: ROWS, bytes: blocks.flat().reduce((s, r) => s + BigInt(r.bytes_sent), 0n) };
    for (const [i, block] of blocks.entries()) await insertBlock(block, `block-${i}`);
    expect((await post('SELECT count(), sum(bytes_sent) FROM http_log')).trim()).toBe(`${expected.rows}\t${expected.bytes}`);
    const before = await grandTotals();
    for (const { table } of TABLES) expect(before[table], table).toBe(`${expected.rows}\t${expected.bytes}`);
    const inserted = await assertTotalsMatchRaw('after the inserts');

    // A retried block (same bytes, same token) is stored once, everywhere.
    await insertBlock(blocks[2] as Row[], 'block-2');
    expect(await grandTotals()).toEqual(before);
    await assertTotalsMatchRaw('after a retried block');

    // Merges fold rows with equal keys and rebuild projections; sums do not change.
    const partsBefore = Number(await post(`SELECT count() FROM system.parts WHERE database = '${DB}' AND active`));
    const rowsBefore = Number(await post('SELECT count() FROM http_log_totals_1m'));
    for (const table of ['http_log', ...TABLES.map((t) => t.table)]) await post(`OPTIMIZE TABLE ${table} FINAL`);
    for (const { table, bucket } of TABLES) {
      const keys = [bucket, ...DIMENSIONS].join(', ');
      const [rowsInTable, distinctKeys] = (await post(`SELECT count(), uniqExact(${keys}) FROM ${table}`)).trim().split('\t');
      expect(rowsInTable, `${table}: one row per key after OPTIMIZE FINAL`).toBe(distinctKeys);
      if (table === 'http_log_totals_1m') {
        // The blocks share keys, so the merges did fold rows (the sums above were not trivial).
        expect(rowsBefore).toBeGreaterThan(Number(distinctKeys));
        folded = `${table}: ${rowsBefore} rows folded into ${distinctKeys}`;
      }
    }
    expect(await grandTotals()).toEqual(before);
    const merged = await assertTotalsMatchRaw('after OPTIMIZE FINAL');

    // Retrying every block after the merges: still deduplicated.
    for (const [i, block] of blocks.entries()) await insertBlock(block, `block-${i}`);
    expect(await grandTotals()).toEqual(before);
    await assertTotalsMatchRaw('after retrying every block after the merges');

    // Control: the same block with a new token is a new insert and counts again, so the
    // assertions above would have failed had dedup not worked.
    const again = blocks[2] as Row[];
    await insertBlock(again, 'block-2-new-token');
    const againBytes = again.reduce((s, r) => s + BigInt(r.bytes_sent), 0n);
    const after = await grandTotals();
    for (const table of ['http_log', ...TABLES.map((t) => t.table)]) {
      expect(after[table], table).toBe(`${expected.rows + again.length}\t${expected.bytes + againBytes}`);
    }
    await assertTotalsMatchRaw('after the control insert');

    // Second control: a retry of a stored block WITHOUT
    // deduplicate_blocks_in_dependent_materialized_views is dropped by the raw table but
    // counted again by every view: the pinned setting is what keeps the rollups exact.
    const unpinned = blocks[3] as Row[];
    await post('INSERT INTO http_log FORMAT TabSeparated',
      { ...PINNED, deduplicate_blocks_in_dependent_materialized_views: '0', insert_deduplication_token: 'block-3' }, toTsv(unpinned));
    const unpinnedBytes = unpinned.reduce((s, r) => s + BigInt(r.bytes_sent), 0n);
    const last = await grandTotals();
    expect(last.http_log).toBe(after.http_log);
    for (const { table } of TABLES) {
      expect(last[table], table).toBe(`${expected.rows + again.length + unpinned.length}\t${expected.bytes + againBytes + unpinnedBytes}`);
    }

    process.stdout.write(
      `schema totals: ${ROWS} rows in ${BLOCKS} blocks over ${DAYS} days; ${inserted.comparisons} comparisons per phase ` +
      `(${inserted.groups} groups before merges, ${merged.groups} after); ${partsBefore} active parts before OPTIMIZE; ${folded}; ` +
      `${Date.now() - started} ms\n`);
  });

  it('answers subsets of dimensions from the projections', async () => {
    // Which projection ClickHouse reads, from EXPLAIN. It picks the one with the fewest
    // marks to read, so on this small data set a tie may go to another that also covers
    // the query: each case lists the acceptable ones.
    const readFrom = async (sql: string): Promise<string> =>
      /ReadFromMergeTree \(([^)]+)\)/.exec(await post(`EXPLAIN projections = 1 ${sql}`))?.[1] ?? '?';
    for (const { table, bucket } of TABLES) {
      const cases: Array<[string, string[]]> = [
        [`SELECT ${bucket}, sum(requests), sum(bytes_sent) FROM ${table} GROUP BY ${bucket}`, ['by_time']],
        [`SELECT ${bucket}, cache_status, sum(requests) FROM ${table} WHERE response_status = 200 GROUP BY ${bucket}, cache_status`, ['by_status']],
        [`SELECT response_status, sum(requests), sum(bytes_sent) FROM ${table} WHERE ${bucket} >= now() - INTERVAL 30 DAY GROUP BY response_status`, ['by_status']],
        [`SELECT ${bucket}, resource_id, sum(bytes_sent) FROM ${table} WHERE cache_status = 'MISS' GROUP BY ${bucket}, resource_id`, ['by_dims', 'by_resource']],
        [`SELECT response_status, sum(bytes_sent) FROM ${table} WHERE resource_id = 42 GROUP BY response_status`, ['by_resource', 'by_dims']],
        [`SELECT remote_addr, sum(bytes_sent) AS b FROM ${table} WHERE ${bucket} >= now() - INTERVAL 7 DAY GROUP BY remote_addr ORDER BY b DESC LIMIT 10`, ['by_addr']],
        // All four dimensions: the table itself, whose key starts with the address and the resource.
        [`SELECT ${bucket}, sum(requests) FROM ${table} WHERE resource_id = 42 AND response_status = 200 AND cache_status = 'HIT' AND remote_addr = '1.2.3.X' GROUP BY ${bucket}`, [`${DB}.${table}`]],
      ];
      for (const [sql, acceptable] of cases) expect(acceptable, sql).toContain(await readFrom(sql));
    }
  });
});
