/**
 * The compact insert body (format id `CompactNative1`): one `Native` block whose columns
 * are shaped for the codec, not for the table, and that ClickHouse turns back into
 * `http_log` rows itself, with `INSERT INTO http_log (…) SELECT … FROM input('…') ORDER BY
 * ALL FORMAT Native` (`compactInsertQuery`).
 *
 * Why: the body is compressed, and what costs bytes after compression is what the codec
 * cannot predict. The plain layout (nativeFormat.ts) spends them on the zero high bytes
 * of 8-byte integers, on interleaved bytes of different significance, and on text the
 * codec can only partly model. Here (docs/performance.md, "Rows per request", has the
 * measurements):
 *
 * - timestamp (4), bytes_sent (8), request_time_milli (8): byte planes. `b0` holds the
 *   low byte of every row, `b1` the next, …; ClickHouse rebuilds Σ b_k · 256^k. Each
 *   plane holds bytes of one significance, which the codec models on its own; planes the
 *   batch does not use are all zeros and cost next to nothing.
 * - resource_id: at the narrowest width the batch's largest id needs (UInt8…UInt64), so
 *   repeated ids stay whole for the codec to match; ClickHouse widens it
 *   (`input_format_native_allow_types_conversion`).
 * - remote_addr: an anonymized IPv4 `a.b.c.X` travels as the integer 1 + a·2¹⁶ + b·2⁸ + c
 *   (3 bytes of information instead of 8–12 characters), formatted back by ClickHouse:
 *   whole, in `v`, or as byte planes `v0…v3`, whichever the batch
 *   compresses better (see the encoder); the other form is all zeros. Any other value
 *   (IPv6, `X`, anything at all) travels as itself in `a`, with the code 0.
 * - url: split into `ud` (up to the last `/` before the query), `uf` and `uq` (from the
 *   first `?`, a LowCardinality dictionary: a batch holds few);
 *   ClickHouse concatenates the three.
 * - response_status, cache_status, method: LowCardinality (the status as decimal text:
 *   LowCardinality(UInt16) would need allow_suspicious_low_cardinality_types).
 *
 * Every transform is exact for any value: only the exact spelling ClickHouse's
 * `toString` gives back maps to a number, anything else takes the fallback column, and
 * the URL's parts concatenate back to the same bytes. Rows are sorted by URL
 * (insertBody.ts), which puts URLs that share a prefix next to each other.
 */
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { BlockReader, BlockWriter } from './nativeBlock.ts';

export const COMPACT_FORMAT = 'CompactNative1' as const;

const planeNames = (column: string, count: number): string[] => Array.from({ length: count }, (_, k) => `${column}${k}`);
// Short column names: the statement that declares them travels in the request line
// (nginx counts it in $request_length, and keeps it in its access log).
const TIMESTAMP_PLANES = planeNames('t', 4);
const BYTES_SENT_PLANES = planeNames('b', 8);
const REQUEST_TIME_PLANES = planeNames('d', 8);
const ADDRESS_PLANES = planeNames('v', 4);

/**
 * The block's columns, as `input()` declares them (`r`, the resource id, may arrive
 * narrower): t0–t3 timestamp planes, r resource_id, b0–b7 bytes_sent planes, d0–d7
 * request_time_milli planes, s response_status, c cache_status, m method, v and v0–v3 the
 * IPv4 code whole or in planes, a remote_addr otherwise, ud/uf/uq the URL's directory,
 * file and query.
 */
export const COMPACT_STRUCTURE: ReadonlyArray<readonly [string, string]> = [
  ...TIMESTAMP_PLANES.map((name): [string, string] => [name, 'UInt8']),
  ['r', 'UInt64'],
  ...BYTES_SENT_PLANES.map((name): [string, string] => [name, 'UInt8']),
  ...REQUEST_TIME_PLANES.map((name): [string, string] => [name, 'UInt8']),
  ['s', 'LowCardinality(String)'],
  ['c', 'LowCardinality(String)'],
  ['m', 'LowCardinality(String)'],
  ['v', 'UInt32'],
  ...ADDRESS_PLANES.map((name): [string, string] => [name, 'UInt8']),
  ['a', 'String'],
  ['ud', 'String'],
  ['uf', 'String'],
  ['uq', 'LowCardinality(String)'],
];

/** Planes back to the integer: their bytes, little-endian, read as one (`char` makes bytes of numbers). */
const planesExpression = (names: readonly string[], type: 'UInt32' | 'UInt64'): string => `reinterpretAs${type}(char(${names.join(',')}))`;

/**
 * The table's columns from the block's, in the table's order. The IPv4 code is the sum of
 * its two forms (one is all zeros); `x` names it inside the expression.
 * `ORDER BY ALL` makes the SELECT's output a fixed function of the body: ClickHouse then
 * treats the INSERT SELECT as stable and deduplicates it like a plain INSERT on every
 * version (its `deduplicate_insert_select`).
 */
const TABLE_COLUMNS = ['timestamp', 'resource_id', 'bytes_sent', 'request_time_milli', 'response_status', 'cache_status', 'method', 'remote_addr', 'url'];
const SELECT_LIST: readonly string[] = [
  `toDateTime(${planesExpression(TIMESTAMP_PLANES, 'UInt32')})`,
  'r',
  planesExpression(BYTES_SENT_PLANES, 'UInt64'),
  planesExpression(REQUEST_TIME_PLANES, 'UInt64'),
  'toUInt16(s)',
  'c',
  'm',
  `if((v+${planesExpression(ADDRESS_PLANES, 'UInt32')} AS x)=0,a,` +
    `concat(toString(intDiv(x-1,65536)),'.',toString(intDiv(x-1,256)%256),'.',toString((x-1)%256),'.X'))`,
  'concat(ud,uf,uq)',
];

/** The statement a `CompactNative1` body is sent with; `table` is a plain identifier. */
export function compactInsertQuery(table: string): string {
  const structure = COMPACT_STRUCTURE.map(([name, type]) => `${name} ${type}`).join(',');
  return `INSERT INTO ${table}(${TABLE_COLUMNS.join(',')})SELECT ${SELECT_LIST.join(',')} FROM input('${structure}')ORDER BY ALL FORMAT Native`;
}

/**
 * `a.b.c.X` with a, b, c in 0–255 written as `String(n)` writes them (no leading zeros,
 * no sign) → 1 + a·2¹⁶ + b·2⁸ + c; anything else → 0. Only that exact spelling maps to a
 * number, because only it comes back byte for byte from ClickHouse's `toString`.
 */
export function ipv4PrefixCode(value: string): number {
  const length = value.length;
  if (length < 7 || length > 13 || value.charCodeAt(length - 1) !== 88 /* X */ || value.charCodeAt(length - 2) !== 46 /* . */) return 0;
  let code = 0;
  let p = 0;
  for (let octet = 0; octet < 3; octet++) {
    const start = p;
    let n = 0;
    while (p < length - 2) {
      const c = value.charCodeAt(p);
      if (c < 48 || c > 57) break;
      n = n * 10 + (c - 48);
      p++;
    }
    const digits = p - start;
    if (digits === 0 || digits > 3 || n > 255 || (digits > 1 && value.charCodeAt(start) === 48)) return 0;
    code = code * 256 + n;
    if (octet < 2) {
      if (value.charCodeAt(p) !== 46) return 0;
      p++;
    }
  }
  return p === length - 2 ? code + 1 : 0;
}

/** The status a `response_status` key spells: exactly the decimal `String(n)` writes for 0–65535. */
function statusOf(text: string): number {
  const n = Number(text);
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text) || n > 0xffff) throw new RangeError(`compact block status ${JSON.stringify(text)} is not a UInt16`);
  return n;
}

function ipv4PrefixOf(code: number): string {
  const v = code - 1;
  return `${v >>> 16}.${(v >>> 8) & 0xff}.${v & 0xff}.X`;
}

/** Where a URL's query starts: its first `?`, or its end. */
function queryAt(url: string): number {
  const at = url.indexOf('?');
  return at < 0 ? url.length : at;
}

/** Where a URL's file name starts: after the last `/` before the query (0 if none). */
function fileAt(url: string, query: number): number {
  return url.lastIndexOf('/', query - 1) + 1;
}

/**
 * Uncompressed bytes a row adds to a compact body, roughly: cheap enough to call per row.
 * Fixed columns take about 38 B (4 timestamp planes, ≤ 8 resource id, 16 planes, 8 for
 * the IPv4 code in both forms, dictionary indexes, string lengths); then the text.
 */
export function compactRowSize(row: HttpLogRow): number {
  const addr = ipv4PrefixCode(row.remoteAddr) === 0 ? row.remoteAddr.length : 0;
  return 38 + addr + queryAt(row.url);
}

/** One compact block holding `rows` in the order given. */
export function encodeCompact(rows: readonly HttpLogRow[]): Uint8Array {
  const n = rows.length;
  const w = new BlockWriter(n * 64 + 1024);
  w.varint(COMPACT_STRUCTURE.length);
  w.varint(n);

  const planes = (names: readonly string[], pick: (row: HttpLogRow) => bigint | number): void => {
    const out = Array.from({ length: 8 }, () => new Uint8Array(n));
    const [p0, p1, p2, p3, p4, p5, p6, p7] = out as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    for (let i = 0; i < n; i++) {
      const value = pick(rows[i]!);
      // Two 32-bit halves as plain numbers: far cheaper than BigInt shifts per byte, and
      // most values need one conversion only.
      let lo: number;
      let hi = 0;
      if (typeof value === 'number') lo = value >>> 0;
      else if (value < 0x1_0000_0000n) lo = Number(value);
      else {
        lo = Number(value & 0xffff_ffffn);
        hi = Number(value >> 32n);
      }
      p0[i] = lo & 0xff;
      p1[i] = (lo >>> 8) & 0xff;
      p2[i] = (lo >>> 16) & 0xff;
      p3[i] = lo >>> 24;
      p4[i] = hi & 0xff;
      p5[i] = (hi >>> 8) & 0xff;
      p6[i] = (hi >>> 16) & 0xff;
      p7[i] = hi >>> 24;
    }
    names.forEach((name, k) => {
      w.column(name, 'UInt8');
      w.raw(out[k]!);
    });
  };
  planes(TIMESTAMP_PLANES, (row) => row.timestamp);

  let maxResource = 0n;
  for (const row of rows) if (row.resourceId > maxResource) maxResource = row.resourceId;
  const width = maxResource < 0x100n ? 1 : maxResource < 0x10000n ? 2 : maxResource < 0x1_0000_0000n ? 4 : 8;
  w.column('r', `UInt${width * 8}`);
  w.uints(width === 8 ? rows.map((row) => row.resourceId) : rows.map((row) => Number(row.resourceId)), width);

  planes(BYTES_SENT_PLANES, (row) => row.bytesSent);
  planes(REQUEST_TIME_PLANES, (row) => row.requestTimeMilli);

  // Decimal text: LowCardinality of an integer type needs allow_suspicious_low_cardinality_types.
  w.column('s', 'LowCardinality(String)');
  const statusText: string[] = [];
  w.lowCardinality(rows.map((row) => (statusText[row.responseStatus] ??= String(row.responseStatus))));
  w.column('c', 'LowCardinality(String)');
  w.lowCardinality(rows.map((row) => row.cacheStatus));
  w.column('m', 'LowCardinality(String)');
  w.lowCardinality(rows.map((row) => row.method));

  // Whole 4-byte codes let the codec match a network that repeats (real traffic comes from
  // few networks); byte planes cost less when nearly every network is new (spread-out
  // clients, the uniform dataset: 3.0 instead of 3.25 B a row). The batch picks by how
  // often its networks repeat, and sends the other form as zeros.
  const v4 = rows.map((row) => ipv4PrefixCode(row.remoteAddr));
  const networks = new Set(v4);
  networks.delete(0);
  const asPlanes = networks.size * 2 > n;
  w.column('v', 'UInt32');
  w.uints(asPlanes ? new Uint32Array(n) : v4, 4);
  planes(ADDRESS_PLANES, asPlanes ? (row) => ipv4PrefixCode(row.remoteAddr) : () => 0);
  w.column('a', 'String');
  w.strings(rows.map((row, i) => (v4[i] === 0 ? row.remoteAddr : '')));

  const dirs = new Array<string>(n);
  const files = new Array<string>(n);
  const queries = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const url = rows[i]!.url;
    const query = queryAt(url);
    const file = fileAt(url, query);
    dirs[i] = url.slice(0, file);
    files[i] = url.slice(file, query);
    queries[i] = query === url.length ? '' : url.slice(query);
  }
  // Plain text, not a dictionary: rows sorted by URL put equal directories side by side,
  // which the codec repeats for less than a dictionary index costs.
  w.column('ud', 'String');
  w.strings(dirs);
  w.column('uf', 'String');
  w.strings(files);
  w.column('uq', 'LowCardinality(String)');
  w.lowCardinality(queries);
  return w.finish();
}

/** True when `block` starts like a compact block: its column count and first two headers. */
export function isCompactBlock(block: Uint8Array): boolean {
  try {
    const r = new BlockReader(block);
    if (r.varint() !== COMPACT_STRUCTURE.length) return false;
    r.varint();
    if (r.string() !== 't0' || r.string() !== 'UInt8') return false;
    return true;
  } catch {
    return false;
  }
}

/** Reads back a block `encodeCompact` wrote: the rows, in the block's order. */
export function decodeCompact(block: Uint8Array): HttpLogRow[] {
  const r = new BlockReader(block);
  const columnCount = r.varint();
  const n = r.varint();
  if (columnCount !== COMPACT_STRUCTURE.length) throw new RangeError(`compact block has ${columnCount} columns, expected ${COMPACT_STRUCTURE.length}`);
  const header = (name: string, types: readonly string[]): string => {
    const gotName = r.string();
    const gotType = r.string();
    if (gotName !== name || !types.includes(gotType)) throw new RangeError(`compact block column ${gotName} ${gotType}, expected ${name} ${types.join('|')}`);
    return gotType;
  };
  const planes = (names: readonly string[]): Float64Array[] => {
    const lo = new Float64Array(n);
    const hi = new Float64Array(n);
    names.forEach((name, k) => {
      header(name, ['UInt8']);
      const bytes = r.uints(n, 1);
      const scale = 2 ** (8 * (k % 4));
      const into = k < 4 ? lo : hi;
      for (let i = 0; i < n; i++) into[i]! += bytes[i]! * scale;
    });
    return [lo, hi];
  };
  const bigints = ([lo, hi]: Float64Array[]): bigint[] =>
    Array.from({ length: n }, (_, i) => (hi![i] === 0 ? BigInt(lo![i]!) : (BigInt(hi![i]!) << 32n) | BigInt(lo![i]!)));
  const [timestamp] = planes(TIMESTAMP_PLANES) as [Float64Array];
  const resourceType = header('r', ['UInt8', 'UInt16', 'UInt32', 'UInt64']);
  const resourceWidth = (Number(resourceType.slice(4)) / 8) as 1 | 2 | 4 | 8;
  const resourceId = resourceWidth === 8 ? r.uints(n, 8) : r.uints(n, resourceWidth).map(BigInt);
  const bytesSent = bigints(planes(BYTES_SENT_PLANES));
  const requestTimeMilli = bigints(planes(REQUEST_TIME_PLANES));
  header('s', ['LowCardinality(String)']);
  const responseStatus = r.lowCardinality(n).map(statusOf);
  header('c', ['LowCardinality(String)']);
  const cacheStatus = r.lowCardinality(n);
  header('m', ['LowCardinality(String)']);
  const method = r.lowCardinality(n);
  header('v', ['UInt32']);
  const whole = r.uints(n, 4);
  const [split] = planes(ADDRESS_PLANES) as [Float64Array];
  const v4 = whole.map((code, i) => code + split[i]!);
  header('a', ['String']);
  const remoteAddr = r.strings(n);
  header('ud', ['String']);
  const urlDir = r.strings(n);
  header('uf', ['String']);
  const urlFile = r.strings(n);
  header('uq', ['LowCardinality(String)']);
  const urlQuery = r.lowCardinality(n);
  if (!r.atEnd) throw new RangeError('compact block has bytes after its last column');
  return Array.from({ length: n }, (_, i) => ({
    timestamp: timestamp[i]!,
    resourceId: resourceId[i]!,
    bytesSent: bytesSent[i]!,
    requestTimeMilli: requestTimeMilli[i]!,
    responseStatus: responseStatus[i]!,
    cacheStatus: cacheStatus[i]!,
    method: method[i]!,
    remoteAddr: v4[i] === 0 ? remoteAddr[i]! : ipv4PrefixOf(v4[i]!),
    url: urlDir[i]! + urlFile[i]! + urlQuery[i]!,
  }));
}
