/**
 * The two synthetic datasets as ClickHouse `SELECT … FROM numbers(n)`, so that the query
 * benchmark can load 100M rows server-side in minutes instead of generating them in
 * Node and sending them over a wire.
 *
 * Each SELECT yields the nine columns of `http_log` in table order, with the address
 * already anonymized (what the product stores). The distributions are the generators'
 * (src/synthetic/uniformDataset.ts, src/synthetic/realisticDataset.ts), read from the
 * same exported constants; the mapping is documented in docs/query-performance.md.
 * What differs:
 * - randomness: every draw is `cityHash64(number, seed, k)` (draw k of row `number`), so
 *   a load is deterministic and draws are independent, but the rows are not the ones the
 *   splitmix64 generators produce for the same seed;
 * - Zipf draws invert a 2^22-entry lookup table instead of an exact cumulative
 *   table: a rank's probability is exact to ±2^-22 (the rarest resource's is ≈ 3e-6);
 * - timestamps: `n` rows spread evenly over `[start, start + span)`, in order.
 */
import { anonymizeAddress } from '../src/domain/anonymizeAddress.ts';
import {
  BYTES_SENT_LAW, CACHE_STATUS_PMF, IPV4_PREFIX_LAW, IPV6_PREFIX_LAW, IPV6_SHARE, METHOD_PMF, QUERY_STRING_PMF,
  REQUEST_TIME_LAW, RESOURCE_LAW, STATUS_PMF, URL_LAW, ipv4Network, ipv6Network, mix64 as mix64Js, resourceIdOfRank,
} from '../src/synthetic/realisticDataset.ts';
import { CACHE_STATUSES, STATUSES, URL_TEMPLATES } from '../src/synthetic/uniformDataset.ts';
import type { LogNormalLaw, Pmf, ZipfLaw } from '../src/synthetic/realisticDataset.ts';

export type DatasetName = 'uniform' | 'realistic';
export const DATASET_NAMES: readonly DatasetName[] = ['uniform', 'realistic'];

export interface GenerateOptions {
  readonly rows: number;
  /** Unix seconds of the first row. */
  readonly start: number;
  /** Seconds the rows are spread over. */
  readonly span: number;
  readonly seed: number;
  /** Generate rows `[offset, offset + count)` of the `rows`: a load in chunks. Default: all. */
  readonly offset?: number;
  readonly count?: number;
}

/** `SELECT` of the nine `http_log` columns for `options.rows` rows of a dataset. */
export function datasetSelect(dataset: DatasetName, options: GenerateOptions): string {
  return dataset === 'uniform' ? uniformSelect(options) : realisticSelect(options);
}

/**
 * The mean number of distinct totals keys (resource, status, cache status, address) among
 * `n` consecutive rows, over `windows` disjoint windows: the rows a totals table keeps per
 * bucket when a bucket receives `n` rows.
 */
export function distinctKeysQuery(dataset: DatasetName, n: number, windows: number, seed: number): string {
  // Timestamps spread over `windows` seconds: second w holds exactly rows [w·n, (w+1)·n).
  const rows = datasetSelect(dataset, { rows: n * windows, start: 0, span: windows, seed });
  return `SELECT avg(keys) FROM (SELECT timestamp, uniqExact(resource_id, response_status, cache_status, remote_addr) AS keys FROM (${rows}) GROUP BY timestamp)`;
}

const draw = (seed: number, k: number): string => `cityHash64(number, ${seed}, ${k})`;
/** Uniform in [0, 1) from 53 bits of a draw. */
const unit = (seed: number, k: number): string => `(bitShiftRight(${draw(seed, k)}, 11) / 9007199254740992.)`;
const str = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const strArray = (values: readonly string[]): string => `[${values.map(str).join(',')}]`;
const timestamp = (o: GenerateOptions): string =>
  `toDateTime(${o.start} + intDiv(number * ${o.span}, ${o.rows}), 'UTC')`;

// --- uniform -------------------------------------------------------------------------

// The uniform generator's own value sets, so the SQL cannot drift from it.
const U_STATUSES = STATUSES;
const U_CACHE = CACHE_STATUSES;
const U_URLS = URL_TEMPLATES;

function uniformSelect(o: GenerateOptions): string {
  const s = o.seed;
  const addr = draw(s, 7);
  return `SELECT timestamp, resource_id, bytes_sent, request_time_milli, response_status, cache_status, method, remote_addr, url
  FROM (
    SELECT
      ${timestamp(o)} AS timestamp,
      intDiv(${draw(s, 1)}, 1000) % 1000000000 AS resource_id,
      ${draw(s, 2)} % 5000000 AS bytes_sent,
      ${draw(s, 3)} % 50000 AS request_time_milli,
      toUInt16([${U_STATUSES.join(',')}][1 + ${draw(s, 4)} % ${U_STATUSES.length}]) AS response_status,
      ${strArray(U_CACHE)}[1 + ${draw(s, 5)} % ${U_CACHE.length}] AS cache_status,
      ['GET', 'HEAD'][1 + ${draw(s, 6)} % 2] AS method,
      concat(toString(bitAnd(bitShiftRight(${addr}, 24), 255)), '.', toString(bitAnd(bitShiftRight(${addr}, 16), 255)), '.',
             toString(bitAnd(bitShiftRight(${addr}, 8), 255)), '.X') AS remote_addr,
      1 + ${draw(s, 8)} % ${U_URLS.length} AS template,
      concat(${strArray(U_URLS.map((u) => u[0]))}[template],
             substring(lower(hex(MD5(toString(${draw(s, 9)})))), 1, [${U_URLS.map((u) => u[1]).join(',')}][template]),
             ${strArray(U_URLS.map((u) => u[2]))}[template]) AS url
    FROM numbers(${o.offset ?? 0}, ${o.count ?? o.rows})
  )`;
}

// --- realistic -----------------------------------------------------------------------

const LUT_BITS = 22;

/** A Zipf law's inverse as a constant array: entry j is the rank whose cumulative interval holds j / 2^22. */
function zipfLut(law: ZipfLaw): string {
  const m = 2 ** LUT_BITS;
  return `(SELECT arrayFlatten(arrayMap((k, c) -> arrayWithConstant(c, toUInt16(k)), range(1, ${law.count + 1}), counts))
      FROM (SELECT arrayMap(x -> x / arraySum(w), arrayCumSum(w)) AS cum,
                   arrayMap((c, i) -> toUInt64(if(i = ${law.count}, ${m}, floor(c * ${m}))) - toUInt64(if(i = 1, 0, floor(cum[i - 1] * ${m}))),
                            cum, arrayEnumerate(cum)) AS counts
            FROM (SELECT arrayMap(k -> pow(k, -${law.exponent}), range(1, ${law.count + 1})) AS w)))`;
}

const zipfDraw = (lut: string, seed: number, k: number): string =>
  `${lut}[1 + bitShiftRight(${draw(seed, k)}, ${64 - LUT_BITS})]`;

function categorical<T extends string | number>(pmf: Pmf<T>, seed: number, k: number): string {
  let sum = 0;
  const cumulative = pmf.map(([, p], i) => (i === pmf.length - 1 ? 2 : (sum += p)));
  const values = pmf.map(([v]) => (typeof v === 'number' ? String(v) : str(v)));
  return `[${values.join(',')}][arrayFirstIndex(c -> ${unit(seed, k)} < c, [${cumulative.join(',')}])]`;
}

function logNormal(law: LogNormalLaw, seed: number, k: number): string {
  return `toUInt64(least(${law.max}, round(exp(${law.mu} + ${law.sigma} * sqrt(-2 * log(1 - ${unit(seed, k)})) * cos(2 * pi() * ${unit(seed, k + 1)})))))`;
}

/** splitmix64's finalizer in UInt64 arithmetic (wraps like BigInt.asUintN(64, …)). */
function mix64(x: string): string {
  const a = `(toUInt64(${x}) + 11400714819323198485)`;
  const b = `(bitXor(${a}, bitShiftRight(${a}, 30)) * 13787848793156543929)`;
  const c = `(bitXor(${b}, bitShiftRight(${b}, 27)) * 10723151780598845931)`;
  return `bitXor(${c}, bitShiftRight(${c}, 31))`;
}

const hexDigits = (h: string, length: number): string =>
  `right(concat('000000000000', lower(hex(bitAnd(${h}, ${2 ** (length * 4) - 1})))), ${length})`;

/** The resource and network tables the generator computes per rank, as constant arrays. */
function rankTables(): { ids: string; names: string; kinds: string; v4: string; v6: string } {
  const ranks = Array.from({ length: RESOURCE_LAW.count }, (_, i) => i + 1);
  return {
    ids: `[${ranks.map((r) => resourceIdOfRank(r).toString()).join(',')}]`,
    names: strArray(ranks.map((r) => resourceIdOfRank(r).toString(36))),
    kinds: `[${ranks.map((r) => Number(mix64Js(BigInt(r)) % 6n)).join(',')}]`,
    v4: strArray(Array.from({ length: IPV4_PREFIX_LAW.count }, (_, i) => anonymizeAddress(`${ipv4Network(i + 1)}.1`).value)),
    v6: strArray(Array.from({ length: IPV6_PREFIX_LAW.count }, (_, i) => anonymizeAddress(`${ipv6Network(i + 1)}:1:2:3:4:5`).value)),
  };
}

function realisticSelect(o: GenerateOptions): string {
  const s = o.seed;
  const t = rankTables();
  const h = 'url_hash';
  return `WITH
    ${zipfLut(RESOURCE_LAW)} AS resource_lut,
    ${zipfLut(URL_LAW)} AS url_lut,
    ${zipfLut(IPV4_PREFIX_LAW)} AS v4_lut,
    ${zipfLut(IPV6_PREFIX_LAW)} AS v6_lut
  SELECT timestamp, resource_id, bytes_sent, request_time_milli, response_status, cache_status, method, remote_addr, url
  FROM (
    SELECT
      ${timestamp(o)} AS timestamp,
      ${zipfDraw('resource_lut', s, 1)} AS resource_rank,
      toUInt64(${t.ids}[resource_rank]) AS resource_id,
      ${t.names}[resource_rank] AS r,
      ${mix64(`bitOr(bitShiftLeft(toUInt64(resource_rank), 20), ${zipfDraw('url_lut', s, 2)})`)} AS ${h},
      multiIf(
        ${t.kinds}[resource_rank] = 0, concat('/vod/', r, '/', ${hexDigits(h, 10)}, '/720p/seg-', toString(bitShiftRight(${h}, 40) % 2000), '.ts'),
        ${t.kinds}[resource_rank] = 1, concat('/hls/', r, '/', ${hexDigits(h, 12)}, '/index.m3u8'),
        ${t.kinds}[resource_rank] = 2, concat('/images/', r, '/products/', toString(${h} % 1000000), '/', ${hexDigits(`bitShiftRight(${h}, 20)`, 8)}, '.jpg'),
        ${t.kinds}[resource_rank] = 3, concat('/static/', r, '/js/app.', ${hexDigits(h, 12)}, '.js'),
        ${t.kinds}[resource_rank] = 4, concat('/static/', r, '/css/', ${hexDigits(h, 12)}, '.css'),
        concat('/downloads/', r, '/releases/v', toString(${h} % 40), '.', toString(bitShiftRight(${h}, 8) % 10), '/', ${hexDigits(`bitShiftRight(${h}, 16)`, 10)}, '.zip')
      ) AS path,
      if(${unit(s, 3)} < ${IPV6_SHARE}, ${t.v6}[${zipfDraw('v6_lut', s, 4)}], ${t.v4}[${zipfDraw('v4_lut', s, 5)}]) AS remote_addr,
      ${logNormal(BYTES_SENT_LAW, s, 6)} AS bytes_sent,
      ${logNormal(REQUEST_TIME_LAW, s, 8)} AS request_time_milli,
      toUInt16(${categorical(STATUS_PMF, s, 10)}) AS response_status,
      ${categorical(CACHE_STATUS_PMF, s, 11)} AS cache_status,
      ${categorical(METHOD_PMF, s, 12)} AS method,
      concat(path, ${categorical(QUERY_STRING_PMF, s, 13)}) AS url
    FROM numbers(${o.offset ?? 0}, ${o.count ?? o.rows})
  )`;
}

/** The realistic dataset's most popular resource and /24: what its one-resource queries look at. */
export function realisticHotKeys(): { resourceId: string; network: string } {
  return { resourceId: resourceIdOfRank(1).toString(), network: anonymizeAddress(`${ipv4Network(1)}.1`).value };
}

export const mix64ForTest = mix64;
