// The compact insert body (src/encode/compactFormat.ts) on the real engine (chdb behind
// the local HTTP endpoint), sent by the product's own HTTP client exactly as the pipeline
// sends a sealed batch (`INSERT … SELECT … FROM input('…') FORMAT Native`, pinned settings,
// insert_deduplication_token), into the schema `anonymizer migrate` applies:
// - every row comes back exactly: arbitrary strings, UTF-8, empty strings, IPv6, `X`,
//   UInt64 extremes, 0;
// - a retried body with the same token is stored once, in http_log AND in every totals
//   table its materialized views fill; the same body with a new token is stored again
//   (the control that lets the dedup assertions fail);
// - LowCardinality indexes of each width (UInt8, UInt16, UInt32) are read right, and IPv4
//   codes in both forms (whole, byte planes);
// - a plain Native body, as spooled before an upgrade, still inserts, and so does a compact
//   body a sealer still labels `Native`.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, REPO_ROOT, startClickHouse } from '../../stack/index.ts';
import type { ServiceHandle } from '../../stack/index.ts';
import { splitStatements } from '../../src/cli/migrate.ts';
import type { HttpLogRow } from '../../src/domain/httpLogRow.ts';
import { compress } from '../../src/encode/compress.ts';
import { encodeInsertBody, INSERT_FORMAT } from '../../src/encode/insertBody.ts';
import { encodeNative } from '../../src/encode/nativeFormat.ts';
import { createClickHouseHttp } from '../../src/io/clickhouseHttp.ts';
import type { ClickHouseClient } from '../../src/io/clickhouseHttp.ts';
import { realisticRecords } from '../../src/synthetic/realisticDataset.ts';
import { storedRowOf } from '../../src/synthetic/storedRow.ts';

const DB = 'compact_test';
const TOTALS = ['http_log_totals_1m', 'http_log_totals_1h', 'http_log_totals_1d'];

/** Rows that exercise every fallback and extreme, plus realistic traffic. */
function testRows(): HttpLogRow[] {
  const now = Math.floor(Date.now() / 1000);
  const edge: HttpLogRow[] = [
    { timestamp: now, resourceId: 2n ** 64n - 1n, bytesSent: 2n ** 64n - 1n, requestTimeMilli: 2n ** 53n + 1n, responseStatus: 65_535, cacheStatus: 'HIT', method: 'GET', remoteAddr: '255.255.255.X', url: '/é/☃?q=😀' },
    { timestamp: now, resourceId: 0n, bytesSent: 0n, requestTimeMilli: 0n, responseStatus: 0, cacheStatus: '', method: '', remoteAddr: '', url: '' },
    { timestamp: now, resourceId: 1n, bytesSent: 2n ** 32n, requestTimeMilli: 255n, responseStatus: 200, cacheStatus: 'MISS', method: 'POST', remoteAddr: '2001:db8:85a3::X', url: 'no-slash' },
    { timestamp: now, resourceId: 1n, bytesSent: 1n, requestTimeMilli: 256n, responseStatus: 404, cacheStatus: "it's", method: 'a\tb\nc\\', remoteAddr: 'X', url: "/a/b?x=/y/z'\u0000" },
    { timestamp: now, resourceId: 1n, bytesSent: 1n, requestTimeMilli: 1n, responseStatus: 200, cacheStatus: 'HIT', method: 'GET', remoteAddr: '01.2.3.X', url: '/' },
    { timestamp: now, resourceId: 1n, bytesSent: 1n, requestTimeMilli: 1n, responseStatus: 200, cacheStatus: 'HIT', method: 'GET', remoteAddr: '0.0.0.X', url: '?only=query' },
  ];
  const source = realisticRecords({ seed: 9n, startMillis: now * 1000, rate: 200 });
  return [...edge, ...Array.from({ length: 3000 }, () => storedRowOf(source.next().value!))];
}

/** A row as ClickHouse's JSONEachRow prints it (64-bit integers quoted). */
const asJson = (row: HttpLogRow): string =>
  JSON.stringify({
    t: String(row.timestamp), r: String(row.resourceId), b: String(row.bytesSent), q: String(row.requestTimeMilli), s: row.responseStatus,
    c: row.cacheStatus, m: row.method, a: row.remoteAddr, u: row.url,
  });

describe('schema: the compact insert body through the HTTP endpoint', () => {
  let dir: string;
  let ch: ServiceHandle & { url: string };
  let client: ClickHouseClient;
  const rows = testRows();

  const stored = async (): Promise<string[]> =>
    (await client.query(
      `SELECT toString(toUnixTimestamp(timestamp)) AS t, resource_id AS r, bytes_sent AS b, request_time_milli AS q, response_status AS s, ` +
        `cache_status AS c, method AS m, remote_addr AS a, url AS u FROM http_log FORMAT JSONEachRow`,
      { output_format_json_quote_64bit_integers: '1', output_format_json_escape_forward_slashes: '0' },
    )).trim().split('\n').filter(Boolean).map((line) => JSON.stringify(JSON.parse(line))).sort();
  const counts = async (): Promise<Record<string, string>> => {
    const out: Record<string, string> = { http_log: (await client.query('SELECT count(), sum(bytes_sent) FROM http_log')).trim() };
    for (const table of TOTALS) out[table] = (await client.query(`SELECT sum(requests), sum(bytes_sent) FROM ${table}`)).trim();
    return out;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'compact-insert-'));
    ch = await startClickHouse({ dir, port: await freePort() });
    const setup = createClickHouseHttp({ url: ch.url, user: 'default', password: '', database: 'default' });
    await setup.query(`CREATE DATABASE IF NOT EXISTS ${DB}`);
    await setup.close();
    client = createClickHouseHttp({ url: ch.url, user: 'default', password: '', database: DB });
    for (const statement of splitStatements(readFileSync(join(REPO_ROOT, 'etc/clickhouse/schema.sql'), 'utf8'))) await client.query(statement);
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    await ch?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stores every row exactly, once per token in http_log and in every totals table', async () => {
    const body = await compress('br', 11, encodeInsertBody(rows));
    const batch = { token: 'compact-1', format: INSERT_FORMAT, codec: 'br' as const, body };
    await client.insert(batch);
    expect(await stored()).toEqual(rows.map(asJson).sort());
    const once = await counts();
    const bytes = rows.reduce((sum, row) => sum + row.bytesSent, 0n);
    // sum(bytes_sent) wraps at 2^64 in ClickHouse, as UInt64 arithmetic does.
    const expected = `${rows.length}\t${BigInt.asUintN(64, bytes)}`;
    for (const table of Object.keys(once)) expect(once[table], table).toBe(expected);

    // A retry, as after a lost response: the same token and bytes. Stored once everywhere.
    await client.insert(batch);
    expect(await counts()).toEqual(once);

    // Control: the same body under a new token is stored again, so the check above can fail.
    await client.insert({ ...batch, token: 'compact-2' });
    const twice = `${rows.length * 2}\t${BigInt.asUintN(64, bytes * 2n)}`;
    for (const [table, value] of Object.entries(await counts())) expect(value, table).toBe(twice);
  }, 120_000);

  it('reads dictionaries of every index width (past 256 and past 65,536 keys) and IPv4 codes as byte planes; a retry of a multi-block body is stored once', async () => {
    await client.query('TRUNCATE TABLE http_log');
    const base = rows[0]!;
    const many = Array.from({ length: 70_000 }, (_, i): HttpLogRow => ({
      ...base, resourceId: BigInt(i), bytesSent: 1n, cacheStatus: `c${i % 300}`, method: `m${i % 70_000}`, url: `/d${i}/f${i % 7}?q=${i % 257}`,
      // Every row a new network, so the batch sends IPv4 codes as byte planes (the 3000
      // realistic rows above repeat networks and send them whole).
      remoteAddr: i % 11 === 0 ? '2001:db8::X' : `${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}.X`,
    }));
    const wide = { token: 'wide-1', format: INSERT_FORMAT, codec: 'zstd' as const, body: await compress('zstd', 3, encodeInsertBody(many)) };
    await client.insert(wide);
    expect(await stored()).toEqual(many.map(asJson).sort());
    // More rows than one block of the SELECT (max_block_size, 65,409): a retry is still
    // stored once, in every table.
    const once = await counts();
    expect(once['http_log']).toBe(`${many.length}\t${many.length}`);
    await client.insert(wide);
    expect(await counts()).toEqual(once);
  }, 120_000);

  it('still inserts a plain Native body spooled before an upgrade', async () => {
    await client.query('TRUNCATE TABLE http_log');
    const plain = await compress('zstd', 3, encodeNative(rows.slice(0, 100)));
    await client.insert({ token: 'plain-1', format: 'Native', codec: 'zstd', body: plain });
    expect(await stored()).toEqual(rows.slice(0, 100).map(asJson).sort());
  }, 120_000);
});
