/**
 * `node bench/rawCodecs.ts [rows] [rows/s] [dataset]`: bytes on disk per raw row, column by
 * column, for the raw table's codec and sort-order candidates (docs/schema.md, "The raw
 * table"). Rows come from the same server-side generator as bench:queries, with
 * timestamps advancing at `rows/s` (default 165: 100M rows a week, the reference
 * producer's 200/s in round figures), because the rows sharing a second are what the
 * second sort column orders. Each candidate codec is a copy of the column in one table,
 * so all candidates see the same rows in the same order; one table per sort order.
 * Defaults: 1,000,000 rows, 165 rows/s, uniform.
 */
import { Session } from 'chdb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { datasetSelect } from './datasetSql.ts';
import type { DatasetName } from './datasetSql.ts';

const rows = Number(process.argv[2] ?? 1e6);
const rate = Number(process.argv[3] ?? 165);
const dataset = (process.argv[4] ?? 'uniform') as DatasetName;
const dir = mkdtempSync(join(tmpdir(), 'raw-codecs-'));
const session = new Session(dir);
session.query('SET max_query_size = 100000000');
const q = (sql: string): string => session.query(sql, 'TSV');

/** Column name → definition; the `select` expression copies the generated column. */
const COLUMNS: ReadonlyArray<readonly [string, string, string]> = [
  ['timestamp', 'DateTime CODEC(DoubleDelta, ZSTD(1))', 'timestamp'],
  ['resource_id', 'UInt64 CODEC(T64, ZSTD(1))', 'resource_id'],
  ['resource_id_delta', 'UInt64 CODEC(Delta, ZSTD(1))', 'resource_id'],
  ['resource_id_zstd', 'UInt64 CODEC(ZSTD(3))', 'resource_id'],
  ['bytes_sent', 'UInt64 CODEC(T64, ZSTD(1))', 'bytes_sent'],
  ['request_time_milli', 'UInt64 CODEC(T64, ZSTD(1))', 'request_time_milli'],
  ['response_status', 'UInt16 CODEC(T64, ZSTD(1))', 'response_status'],
  ['cache_status', 'LowCardinality(String) CODEC(ZSTD(1))', 'cache_status'],
  ['method', 'LowCardinality(String) CODEC(ZSTD(1))', 'method'],
  ['remote_addr', 'String CODEC(ZSTD(3))', 'remote_addr'],
  ['remote_addr_zstd9', 'String CODEC(ZSTD(9))', 'remote_addr'],
  ['url_zstd3', 'String CODEC(ZSTD(3))', 'url'],
  ['url', 'String CODEC(ZSTD(9))', 'url'],
  ['url_zstd19', 'String CODEC(ZSTD(19))', 'url'],
  ['url_lz4', 'String CODEC(LZ4)', 'url'],
];
const ORDERS: Readonly<Record<string, string>> = {
  by_time_resource: '(timestamp, resource_id)',
  by_time_url: '(timestamp, url)',
};

try {
  const select = datasetSelect(dataset, { rows, start: 1_764_000_000, span: Math.max(1, Math.round(rows / rate)), seed: 1 });
  for (const [name, order] of Object.entries(ORDERS)) {
    q(`CREATE TABLE ${name} (${COLUMNS.map(([c, type]) => `${c} ${type}`).join(', ')}) ENGINE = MergeTree PARTITION BY toYYYYMMDD(timestamp) ORDER BY ${order}`);
    q(`INSERT INTO ${name} SELECT ${COLUMNS.map(([, , from]) => from).join(', ')} FROM (${select})`);
    q(`OPTIMIZE TABLE ${name} FINAL`);
    process.stdout.write(`\nORDER BY ${order}: ${rows} ${dataset} rows at ${rate} rows/s, B per row per column\n`);
    process.stdout.write(q(`SELECT name, round(data_compressed_bytes / ${rows}, 2) FROM system.columns WHERE table = '${name}' ORDER BY name`));
  }
} finally {
  session.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
