/**
 * `npm run bench:wire`: how many rows one request through the proxy carries, for our
 * encoding and the ones it is compared with, on both synthetic datasets, in one run.
 *
 * The proxy passes one request a minute of at most 1 MiB, so rows per full body ÷ 60 s
 * is the whole product's sustainable input rate. For each dataset and encoding this
 * fills a 1 MiB body the way the product does (a prefix of the row stream, as long as
 * the compressed body fits), reports bytes per row and rows per request, compares them
 * with our encoding and with the dataset's entropy bound (src/synthetic/entropy.ts),
 * and checks in ClickHouse itself (chdb, in-process) that every compared body is
 * accepted and holds exactly the rows it was made from.
 *
 * A benchmark, not a test: it prints a markdown table to stdout, progress to stderr.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Session } from 'chdb';
import type { Codec } from '../src/domain/batch.ts';
import type { SourceRecord } from '../src/domain/encodeRecord.ts';
import type { HttpLogRow } from '../src/domain/httpLogRow.ts';
import { compress } from '../src/encode/compress.ts';
import { compactInsertQuery } from '../src/encode/compactFormat.ts';
import { encodeInsertBody, INSERT_FORMAT } from '../src/encode/insertBody.ts';
import { encodeNative } from '../src/encode/nativeFormat.ts';
import { realisticDatasetBound, uniformDatasetBound } from '../src/synthetic/entropy.ts';
import type { EntropyBound } from '../src/synthetic/entropy.ts';
import { realisticRecords } from '../src/synthetic/realisticDataset.ts';
import { uniformRecords } from '../src/synthetic/uniformDataset.ts';
import type { DatasetOptions } from '../src/synthetic/uniformDataset.ts';
import { encodeJsonEachRow, encodeRowBinary } from './formats.ts';
import { renderWireChart, type WireChartInput } from './wireChart.ts';
import { storedRowOf } from '../src/synthetic/storedRow.ts';

/** The proxy's `client_max_body_size`. */
const BODY_LIMIT = 1_048_576;
/** The proxy passes one request a minute. */
const SECONDS_PER_REQUEST = 60;
/** The reference producer's default rate: timestamps advance as they would at it. */
const PRODUCE_RATE = 200;
const SEED = 1n;
const START_MILLIS = Date.UTC(2026, 10, 1);
/** Rows compressed to estimate bytes per row before the first full-size attempt. */
const SAMPLE_ROWS = 20_000;
/**
 * Full-size compressions per fill, at most. brotli-11 takes seconds on a few MB, so the
 * search interpolates instead of bisecting, and stops once it brackets the limit within
 * `TOLERANCE` of the row count: brotli's size is not monotonic in the row count (seen:
 * 63,321 rows 1,057,725 B, 63,389 rows 1,051,856 B), so a ±1 row bracket would mean
 * nothing more than a 0.1% one and cost several more compressions.
 */
const MAX_ATTEMPTS = 8;
const TOLERANCE = 0.001;

interface Encoding {
  readonly name: string;
  readonly ours: boolean;
  readonly format: typeof INSERT_FORMAT | 'Native' | 'RowBinary' | 'JSONEachRow';
  readonly codec: Codec;
  readonly level: number;
  readonly encode: (rows: readonly HttpLogRow[]) => Uint8Array;
}

const ENCODINGS: readonly Encoding[] = [
  { name: `ours: ${INSERT_FORMAT} + brotli-11`, ours: true, format: INSERT_FORMAT, codec: 'br', level: 11, encode: encodeInsertBody },
  { name: `ours: ${INSERT_FORMAT} + zstd-19`, ours: true, format: INSERT_FORMAT, codec: 'zstd', level: 19, encode: encodeInsertBody },
  {
    name: 'before: Native + brotli-11, rows sorted by status',
    ours: false,
    format: 'Native',
    codec: 'br',
    level: 11,
    encode: (rows) => encodeNative(sortByStatus(rows)),
  },
  { name: 'RowBinary, uncompressed (prior art)', ours: false, format: 'RowBinary', codec: 'none', level: 0, encode: encodeRowBinary },
  { name: 'JSONEachRow + gzip-9 (sink default)', ours: false, format: 'JSONEachRow', codec: 'gzip', level: 9, encode: encodeJsonEachRow },
  { name: 'RowBinary + zstd-19', ours: false, format: 'RowBinary', codec: 'zstd', level: 19, encode: encodeRowBinary },
];

/** The row order the plain Native body used before the compact one (cache status, status, method, time). */
function sortByStatus(rows: readonly HttpLogRow[]): HttpLogRow[] {
  const text = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...rows].sort(
    (a, b) => text(a.cacheStatus, b.cacheStatus) || a.responseStatus - b.responseStatus || text(a.method, b.method) || a.timestamp - b.timestamp || text(a.url, b.url),
  );
}

interface Dataset {
  readonly name: string;
  readonly records: (options: DatasetOptions) => Generator<SourceRecord>;
  readonly bound: EntropyBound;
  readonly note?: string;
  /**
   * What the bound leaves out for an encoder that sees one batch at a time, in bits for
   * the batch `rows`: the dataset's fixed maps (rank → id, rank → network, (resource, rank)
   * → path) are known to the bound but must be spelled out once per batch for each value
   * the batch holds.
   */
  readonly novelty?: (rows: readonly HttpLogRow[]) => { bits: number; model: string };
}

const strictUniform = uniformDatasetBound({ capFragmentAtSeed: true });
const DATASETS: readonly Dataset[] = [
  {
    name: 'uniform',
    records: uniformRecords,
    bound: uniformDatasetBound(),
    note:
      `uniform's bound counts 4 bits per MD5-hex digit; capped at the 64-bit draw each fragment is the MD5 of, ` +
      `it would be ${strictUniform.bytesPerRow.toFixed(2)} B/row, which only an encoder inverting MD5 could approach.`,
  },
  { name: 'realistic', records: realisticRecords, bound: realisticDatasetBound(), novelty: realisticNovelty },
];

/**
 * Per distinct value in the batch: a resource id costs log2(1e9) bits (its rank is already
 * in the bound), an IPv4 /24 log2(223 × 2^16) (the generator's unicast range), an IPv6 /48
 * 32 bits, and a path at least 40 bits: each path shape carries ≥ 10 hex digits of its hash
 * (src/synthetic/realisticDataset.ts, KINDS), and only its first use in a batch pays them.
 */
function realisticNovelty(rows: readonly HttpLogRow[]): { bits: number; model: string } {
  const distinct = (pick: (row: HttpLogRow) => string | bigint): number => new Set(rows.map(pick)).size;
  const paths = distinct((row) => row.url.split('?')[0]!);
  const resources = distinct((row) => row.resourceId);
  const v4 = new Set(rows.map((row) => row.remoteAddr).filter((a) => a.endsWith('.X'))).size;
  const v6 = new Set(rows.map((row) => row.remoteAddr).filter((a) => a.endsWith('::X'))).size;
  const bits = paths * 40 + resources * Math.log2(1e9) + v4 * Math.log2(223 * 65_536) + v6 * 32;
  return {
    bits,
    model:
      `${paths.toLocaleString('en-US')} distinct paths × ≥ 40 bits, ${resources.toLocaleString('en-US')} resource ids × log2(1e9), ` +
      `${v4.toLocaleString('en-US')} /24s × log2(223·2^16), ${v6} /48s × 32 bits`,
  };
}

const started = Date.now();
function progress(message: string): void {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
}

/** The dataset's rows as the product would encode them: anonymized, timestamps in whole seconds. */
class RowStream {
  readonly rows: HttpLogRow[] = [];
  readonly #records: Generator<SourceRecord>;
  constructor(dataset: Dataset) {
    this.#records = dataset.records({ seed: SEED, startMillis: START_MILLIS, rate: PRODUCE_RATE });
  }
  /** The first `count` rows, generating more as the search asks for them. */
  take(count: number): HttpLogRow[] {
    while (this.rows.length < count) {
      this.rows.push(storedRowOf(this.#records.next().value!));
    }
    return this.rows.slice(0, count);
  }
}

interface Fill {
  /** The most rows found whose body fits. */
  readonly rows: number;
  readonly body: Uint8Array;
  /** Rows from this count to the nearest larger count tried that did not fit. */
  readonly gap: number;
  /** Whether the gap is within TOLERANCE (the search did not run out of attempts). */
  readonly bracketed: boolean;
  readonly attempts: number;
}

async function bodyOf(encoding: Encoding, rows: readonly HttpLogRow[]): Promise<Uint8Array> {
  return compress(encoding.codec, encoding.level, encoding.encode(rows));
}

/**
 * The longest prefix of the stream whose body is ≤ BODY_LIMIT. The body's size grows
 * almost linearly with the row count, so each guess interpolates between the largest
 * count known to fit and the smallest known not to (Illinois-style: a side that stays
 * put twice gets pulled in, so a curved size function cannot stall the search).
 */
async function fill(encoding: Encoding, stream: RowStream): Promise<Fill> {
  const sample = await bodyOf(encoding, stream.take(SAMPLE_ROWS));
  let lo: { rows: number; size: number; body: Uint8Array } = { rows: 0, size: 0, body: new Uint8Array() };
  let hi: { rows: number; size: number } | undefined;
  if (sample.byteLength <= BODY_LIMIT) lo = { rows: SAMPLE_ROWS, size: sample.byteLength, body: sample };
  else hi = { rows: SAMPLE_ROWS, size: sample.byteLength };
  // A larger batch compresses a little better per row than the sample: aim just past the
  // sample's estimate so that the first attempt is likely to bracket the answer.
  let guess = Math.round((BODY_LIMIT / sample.byteLength) * SAMPLE_ROWS * 1.01);
  let attempts = 0;
  let lastSide: 'lo' | 'hi' | undefined;
  let sameSide = 0;
  const bracketed = (): boolean => hi !== undefined && hi.rows - lo.rows <= Math.max(1, Math.floor(lo.rows * TOLERANCE));
  while (attempts < MAX_ATTEMPTS && !bracketed()) {
    if (hi !== undefined) guess = Math.min(hi.rows - 1, Math.max(lo.rows + 1, guess));
    else guess = Math.max(lo.rows + 1, guess);
    const body = await bodyOf(encoding, stream.take(guess));
    attempts++;
    const side = body.byteLength <= BODY_LIMIT ? 'lo' : 'hi';
    if (side === 'lo') lo = { rows: guess, size: body.byteLength, body };
    else hi = { rows: guess, size: body.byteLength };
    sameSide = side === lastSide ? sameSide + 1 : 0;
    lastSide = side;
    progress(`  ${encoding.name}: ${guess} rows → ${body.byteLength} B ${side === 'lo' ? 'fits' : 'too big'}`);
    if (hi === undefined) {
      // Still below the limit: extrapolate from the origin and overshoot slightly.
      guess = Math.round((BODY_LIMIT / lo.size) * lo.rows * 1.002) + 1;
      continue;
    }
    if (lo.rows === 0) {
      guess = Math.round((BODY_LIMIT / hi.size) * hi.rows * 0.998);
      continue;
    }
    // Interpolate where the body reaches the limit; after two steps on one side, aim at
    // the middle of the target's remaining uncertainty on the other side instead.
    const slope = (hi.size - lo.size) / (hi.rows - lo.rows);
    guess = lo.rows + Math.floor((BODY_LIMIT - lo.size) / Math.max(slope, 1e-9));
    if (sameSide >= 2) guess = side === 'lo' ? Math.ceil((guess + hi.rows) / 2) : Math.floor((guess + lo.rows) / 2);
  }
  if (lo.rows === 0) throw new Error(`${encoding.name}: not even one row fits in ${BODY_LIMIT} B`);
  return { rows: lo.rows, body: lo.body, gap: hi === undefined ? Infinity : hi.rows - lo.rows, bracketed: bracketed(), attempts };
}

/** Per row, the same fields ClickHouse's check query concatenates. */
function fingerprint(rows: readonly HttpLogRow[]): number {
  let sum = 0; // ≤ rows × 2^32: exact in a double for anything under 2^21 rows
  for (const row of rows) {
    sum += crc32(
      `${row.timestamp}|${row.resourceId}|${row.bytesSent}|${row.requestTimeMilli}|${row.responseStatus}|` +
        `${row.cacheStatus}|${row.method}|${row.remoteAddr}|${row.url}`,
    );
  }
  return sum;
}

const CHECK_QUERY = `SELECT count(), sum(CRC32(concat(
    toString(toUnixTimestamp(timestamp)), '|', toString(resource_id), '|', toString(bytes_sent), '|',
    toString(request_time_milli), '|', toString(response_status), '|', cache_status, '|', method, '|',
    remote_addr, '|', url))) FROM http_log`;

/** ClickHouse, in-process, with the product's `http_log` table. */
class ClickHouseCheck {
  readonly #dir = mkdtempSync(join(tmpdir(), 'bench-wire-'));
  readonly #session = new Session(join(this.#dir, 'data'));
  constructor() {
    // The table exactly as `anonymizer migrate` creates it.
    const schema = readFileSync(new URL('../etc/clickhouse/schema.sql', import.meta.url), 'utf8');
    const create = schema
      .split(/;\s*$/m)
      .map((statement) => statement.replace(/^\s*--.*$/gm, '').trim())
      .find((statement) => /^CREATE TABLE IF NOT EXISTS http_log\s*\(/.test(statement));
    if (create === undefined) throw new Error('etc/clickhouse/schema.sql has no CREATE TABLE http_log');
    // Without its TTL: the rows are dated from START_MILLIS, and a TTL applied at insert
    // would drop them once that is more than the raw retention ago (the check found 0 rows).
    this.#session.query(create.replace(/^TTL .*$/m, ''));
  }
  /** Inserts the body as the HTTP interface would take it, and compares what is stored. */
  verify(encoding: Encoding, body: Uint8Array, rows: readonly HttpLogRow[]): string {
    const file = join(this.#dir, 'body');
    writeFileSync(file, body);
    this.#session.query('TRUNCATE TABLE http_log');
    if (encoding.format === INSERT_FORMAT) {
      // The product's statement, with the body read by file() where the server reads it with input().
      const query = compactInsertQuery('http_log')
        .replace(/input\(('[^']*')\)/, (_, structure: string) => `file('${file}', 'Native', ${structure}, '${encoding.codec}')`)
        .replace(/ FORMAT Native$/, ' SETTINGS async_insert=0, input_format_native_allow_types_conversion=1');
      this.#session.query(query);
    } else {
      this.#session.query(
        `INSERT INTO http_log FROM INFILE '${file}' COMPRESSION '${encoding.codec}' SETTINGS async_insert=0 FORMAT ${encoding.format}`,
      );
    }
    const [count, sum] = this.#session.query(CHECK_QUERY, 'TabSeparated').trim().split('\t').map(Number);
    const expected = fingerprint(rows);
    if (count !== rows.length || sum !== expected) {
      throw new Error(`${encoding.name}: ClickHouse holds ${count} rows (checksum ${sum}), expected ${rows.length} (${expected})`);
    }
    return `✓ ${count} rows`;
  }
  close(): void {
    this.#session.cleanup();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

interface Line {
  readonly dataset: string;
  readonly body: string;
  readonly bytesPerRow: number;
  readonly rowsPerRequest: number;
  readonly exact: boolean;
  readonly check: string;
}

const fixed = (value: number, digits: number): string => value.toFixed(digits);
const thousands = (value: number): string => Math.round(value).toLocaleString('en-US');

/** The chart in docs/performance.md, and its figures, written by every run (`npm run bench:wire`). */
function writeChart(lines: readonly Line[]): void {
  const figures: WireChartInput = {
    title: 'Rows per 1 MiB insert request (npm run bench:wire)',
    bars: lines
      .filter((line) => !line.body.startsWith('entropy bound') && !line.body.startsWith('per-batch floor'))
      .map((line) => ({ dataset: line.dataset, encoding: line.body, rowsPerRequest: line.rowsPerRequest, ours: line.body.startsWith('ours') })),
    bounds: Object.fromEntries(lines.filter((line) => line.body === 'entropy bound').map((line) => [line.dataset, line.rowsPerRequest])),
  };
  const docs = new URL('../docs/', import.meta.url);
  writeFileSync(new URL('rows-per-request.json', docs), `${JSON.stringify(figures, null, 2)}\n`);
  writeFileSync(new URL('rows-per-request.svg', docs), renderWireChart(figures));
  progress('wrote docs/rows-per-request.svg and .json');
}

async function main(): Promise<void> {
  const clickhouse = new ClickHouseCheck();
  const lines: Line[] = [];
  const notes: string[] = [];
  try {
    for (const dataset of DATASETS) {
      progress(`${dataset.name}: entropy bound ${dataset.bound.bytesPerRow.toFixed(2)} B/row`);
      for (const term of dataset.bound.terms) progress(`  ${term.field.padEnd(20)} ${term.bits.toFixed(2).padStart(6)} bits  ${term.model}`);
      const stream = new RowStream(dataset);
      for (const encoding of ENCODINGS) {
        const result = await fill(encoding, stream);
        const rows = stream.take(result.rows);
        const check = clickhouse.verify(encoding, result.body, rows);
        progress(
          `${dataset.name} / ${encoding.name}: ${result.rows} rows in ${result.body.byteLength} B ` +
            `(${result.attempts} attempts, gap ${result.gap}); ClickHouse ${check}`,
        );
        lines.push({
          dataset: dataset.name,
          body: encoding.name,
          bytesPerRow: result.body.byteLength / result.rows,
          rowsPerRequest: result.rows,
          exact: result.bracketed,
          check,
        });
      }
      const bound = dataset.bound.bytesPerRow;
      lines.push({ dataset: dataset.name, body: 'entropy bound', bytesPerRow: bound, rowsPerRequest: BODY_LIMIT / bound, exact: true, check: '' });
      if (dataset.novelty !== undefined) {
        // At the row count ours reaches: the floor depends on the batch size.
        const ours = lines.find((line) => line.dataset === dataset.name)!;
        const novelty = dataset.novelty(stream.take(ours.rowsPerRequest));
        const floor = bound + novelty.bits / 8 / ours.rowsPerRequest;
        lines.push({ dataset: dataset.name, body: 'per-batch floor (bound + first uses in the batch)', bytesPerRow: floor, rowsPerRequest: BODY_LIMIT / floor, exact: true, check: '' });
        notes.push(
          `${dataset.name}'s per-batch floor adds to the bound what an encoder that sees one batch of ${thousands(ours.rowsPerRequest)} rows must spell out once ` +
            `for each value it holds: ${novelty.model}; ours is ${fixed(ours.bytesPerRow / floor, 2)}× that floor.`,
        );
      }
      if (dataset.note !== undefined) notes.push(dataset.note);
    }
  } finally {
    clickhouse.close();
  }

  const out: string[] = [
    `| dataset | body | B/row on the wire | rows per 1 MiB request | sustainable rows/s (1 r/m × 1 MiB) | ours carries × this's rows | B/row ÷ bound | accepted by ClickHouse, same rows |`,
    '|---|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const dataset of DATASETS) {
    const mine = lines.filter((line) => line.dataset === dataset.name);
    const ours = mine[0]!;
    for (const line of mine) {
      out.push(
        `| ${line.dataset} | ${line.body} | ${fixed(line.bytesPerRow, 2)} | ${thousands(line.rowsPerRequest)}${line.exact ? '' : ' (±)'} | ` +
          `${thousands(line.rowsPerRequest / SECONDS_PER_REQUEST)} | ${fixed(line.bytesPerRow / ours.bytesPerRow, 2)}× | ` +
          `${fixed(line.bytesPerRow / dataset.bound.bytesPerRow, 2)}× | ${line.check} |`,
      );
    }
  }
  out.push(
    '',
    `Bodies are the longest prefix of each dataset's row stream (seed ${SEED}, ${PRODUCE_RATE} rows/s, anonymized, timestamps in seconds) ` +
      `that fits in ${BODY_LIMIT.toLocaleString('en-US')} B, found to within ${TOLERANCE * 100}% of the row count ` +
      `("(±)": the search ran out of attempts first). "ours carries × this's rows" is this B/row ÷ ours; ` +
      `on the bound's line it is the share of the bound's rows ours reaches. "B/row ÷ bound" on ours' line is its distance from the bound.`,
    ...notes,
  );
  process.stdout.write(`${out.join('\n')}\n`);
  writeChart(lines);
  progress('done');
}

await main();
