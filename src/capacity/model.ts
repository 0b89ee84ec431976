/**
 * The disk and proxy capacity model behind `anonymizer capacity` (docs/capacity.md).
 *
 * Disk per table = rows kept × bytes per row on disk, where
 * - the raw table keeps rate × retention rows;
 * - a totals table keeps one row per distinct (resource, status, cache status, address)
 *   per bucket, so (retention ÷ bucket) × distinctKeys(rate × bucket) rows;
 * - retention is rounded up by one partition: with `ttl_only_drop_parts = 1` a partition is
 *   dropped only once its newest row has expired (docs/schema.md, Retention).
 *
 * The proxy passes one request a minute of at most 1 MiB, so the input rate fits when a
 * minute's rows fit in one request's rows.
 *
 * Every constant below is measured, and names the command that measured it. Rerun it
 * and update the figures when the schema, the codecs or the generators change.
 */

export type Dataset = 'uniform' | 'realistic';
export const DATASETS: readonly Dataset[] = ['uniform', 'realistic'];

export type TableName = 'http_log' | 'http_log_totals_1m' | 'http_log_totals_1h' | 'http_log_totals_1d';
export const TOTALS_TABLES = ['http_log_totals_1m', 'http_log_totals_1h', 'http_log_totals_1d'] as const;
export type TotalsTable = (typeof TOTALS_TABLES)[number];

/** Seconds per bucket of each totals table. */
export const BUCKET_SECONDS: Readonly<Record<TotalsTable, number>> = {
  http_log_totals_1m: 60,
  http_log_totals_1h: 3_600,
  http_log_totals_1d: 86_400,
};

/** Partition length (etc/clickhouse/schema.sql): the most a TTL can overshoot by. */
export const PARTITION_SECONDS: Readonly<Record<TableName, number>> = {
  http_log: 86_400,
  http_log_totals_1m: 86_400,
  http_log_totals_1h: 31 * 86_400,
  http_log_totals_1d: 366 * 86_400,
};

/** The schema's default TTLs, used when no retention is given. */
export const DEFAULT_RETENTION_SECONDS: Readonly<Record<TableName, number>> = {
  http_log: 30 * 86_400,
  http_log_totals_1m: 30 * 86_400,
  http_log_totals_1h: 400 * 86_400,
  http_log_totals_1d: 1_830 * 86_400,
};

/**
 * Rows in one 1 MiB insert body of the uniform dataset.
 * Measured by `npm run bench:wire` (docs/performance.md).
 */
export const UNIFORM_ROWS_PER_REQUEST = 46_909;
/**
 * Rows in one 1 MiB insert body of the realistic dataset.
 * Measured by `npm run bench:wire` (docs/performance.md).
 */
export const REALISTIC_ROWS_PER_REQUEST = 100_300;

export const ROWS_PER_REQUEST: Readonly<Record<Dataset, number>> = {
  uniform: UNIFORM_ROWS_PER_REQUEST,
  realistic: REALISTIC_ROWS_PER_REQUEST,
};

/**
 * The proxy's nominal pace: one request a minute. The pipeline sends a little slower, one
 * per PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS (63 s by default, because nginx's `1r/m`
 * really passes one request per 62.5 s); `anonymizer capacity` checks against that.
 */
export const SECONDS_PER_REQUEST = 60;

/**
 * Bytes on disk per row of each table, projections and indexes included: for the raw
 * table per raw row, for a totals table per totals row.
 * - realistic: measured by `npm run bench:queries -- --sizes 1e8 --datasets realistic --merge background`
 *   (100M rows over 7 days, 165 rows/s: the reference producer's density; after the
 *   background merges went quiet, the minute table within 0.01% of the prior art's row
 *   count, so nearly fully folded);
 * - uniform: measured by `npm run bench:queries -- --sizes 1e8 --datasets uniform --merge background`
 *   (the same density; every row is its own key, so nothing is left to fold), before the
 *   totals' sort key became address-first; at 10M rows that change moved them by < 2%.
 * Both are in the "Disk" table of docs/query-performance.md.
 */
export const BYTES_PER_ROW: Readonly<Record<Dataset, Readonly<Record<TableName, number>>>> = {
  uniform: {
    http_log: 26.3,
    http_log_totals_1m: 54.56,
    http_log_totals_1h: 49.96,
    http_log_totals_1d: 44.47,
  },
  realistic: {
    http_log: 20.85,
    http_log_totals_1m: 17.81,
    http_log_totals_1h: 9.1,
    http_log_totals_1d: 7.26,
  },
};

/**
 * Distinct totals keys (resource, status, cache status, address) among n consecutive rows,
 * as [n, keys] points: a bucket that receives n rows keeps this many totals rows. The mean
 * over 100 windows of n rows (10 for n = 1M, 1 above).
 * - n ≤ 1e7: measured by `npm run bench:queries -- --sizes 1e6,1e7 --datasets uniform,realistic`;
 * - n = 1e8: measured by `npm run bench:queries -- --sizes 1e8 --datasets <dataset> --merge background`.
 * See "Distinct totals keys" in docs/query-performance.md.
 */
export const DISTINCT_KEYS: Readonly<Record<Dataset, ReadonlyArray<readonly [number, number]>>> = {
  uniform: [
    [10, 10], [100, 100], [1e3, 1e3], [1e4, 1e4], [1e5, 1e5], [1e6, 1e6], [1e7, 1e7], [1e8, 1e8],
  ],
  realistic: [
    [10, 9.98], [100, 98.31], [1e3, 927.36], [1e4, 8_155.03], [1e5, 65_180.83], [1e6, 458_646.5], [1e7, 2_816_455],
    [1e8, 14_806_380],
  ],
};

/**
 * Distinct keys among n rows: log-log interpolation between the measured points. Past
 * the last point the last segment's slope continues (the curve only flattens, so this
 * overestimates), never above n.
 */
export function distinctKeys(dataset: Dataset, n: number): number {
  if (n <= 0) return 0;
  const points = DISTINCT_KEYS[dataset];
  const [n0, k0] = points[0]!;
  if (n <= n0) return n * (k0 / n0);
  for (let i = 1; i < points.length; i++) {
    const [nb, kb] = points[i]!;
    if (n <= nb || i === points.length - 1) {
      const [na, ka] = points[i - 1]!;
      const slope = Math.log(kb / ka) / Math.log(nb / na);
      return Math.min(n, ka * Math.exp(slope * Math.log(n / na)));
    }
  }
  return n;
}

export interface CapacityInput {
  /** Average input rate, rows (messages) per second. */
  readonly rate: number;
  readonly dataset: Dataset;
  /** Retention per table, in seconds. */
  readonly retention: Readonly<Record<TableName, number>>;
  /** Seconds between two requests through the proxy (default SECONDS_PER_REQUEST). */
  readonly requestIntervalSeconds?: number;
}

export interface TableEstimate {
  readonly table: TableName;
  readonly retentionSeconds: number;
  /** Retention plus the partition a TTL drop can wait for. */
  readonly keptSeconds: number;
  /** Rows per bucket (totals) or per second (raw). */
  readonly rowsPerBucket: number;
  readonly rows: number;
  readonly bytesPerRow: number;
  readonly bytes: number;
}

export interface CapacityEstimate {
  readonly tables: readonly TableEstimate[];
  readonly totalBytes: number;
  readonly proxy: {
    readonly rowsPerRequestNeeded: number;
    readonly rowsPerRequest: number;
    readonly fits: boolean;
    readonly requestIntervalSeconds: number;
    /** Needed ÷ available. */
    readonly utilisation: number;
    readonly maxRate: number;
  };
}

export function estimate(input: CapacityInput): CapacityEstimate {
  const { rate, dataset, retention, requestIntervalSeconds = SECONDS_PER_REQUEST } = input;
  const tables: TableEstimate[] = [];
  const rawKept = retention.http_log + PARTITION_SECONDS.http_log;
  const rawRows = rate * rawKept;
  tables.push({
    table: 'http_log', retentionSeconds: retention.http_log, keptSeconds: rawKept, rowsPerBucket: rate,
    rows: rawRows, bytesPerRow: BYTES_PER_ROW[dataset].http_log, bytes: rawRows * BYTES_PER_ROW[dataset].http_log,
  });
  for (const table of TOTALS_TABLES) {
    const kept = retention[table] + PARTITION_SECONDS[table];
    const perBucket = distinctKeys(dataset, rate * BUCKET_SECONDS[table]);
    const rows = (kept / BUCKET_SECONDS[table]) * perBucket;
    tables.push({
      table, retentionSeconds: retention[table], keptSeconds: kept, rowsPerBucket: perBucket,
      rows, bytesPerRow: BYTES_PER_ROW[dataset][table], bytes: rows * BYTES_PER_ROW[dataset][table],
    });
  }
  const rowsPerRequest = ROWS_PER_REQUEST[dataset];
  const needed = rate * requestIntervalSeconds;
  return {
    tables,
    totalBytes: tables.reduce((sum, t) => sum + t.bytes, 0),
    proxy: {
      rowsPerRequestNeeded: needed,
      rowsPerRequest,
      fits: needed <= rowsPerRequest,
      requestIntervalSeconds,
      utilisation: needed / rowsPerRequest,
      maxRate: rowsPerRequest / requestIntervalSeconds,
    },
  };
}

const RATE_UNITS: Readonly<Record<string, number>> = { s: 1, sec: 1, min: 60, h: 3_600 };
const DURATION_UNITS: Readonly<Record<string, number>> = { h: 3_600, d: 86_400, w: 7 * 86_400 };

/** `200/s`, `12000/min`, `1e6/h`, or a bare number of rows per second. Null when malformed. */
export function parseRate(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*(?:\/\s*(s|sec|min|h))?\s*$/i.exec(text);
  if (!match) return null;
  const perSecond = Number(match[1]) / RATE_UNITS[(match[2] ?? 's').toLowerCase()]!;
  return Number.isFinite(perSecond) && perSecond > 0 ? perSecond : null;
}

/** `12h`, `7d`, `90d`, `2w`: seconds. Null when malformed or zero. */
export function parseRetention(text: string): number | null {
  const match = /^\s*(\d+)\s*(h|d|w)\s*$/i.exec(text);
  if (!match) return null;
  const seconds = Number(match[1]) * DURATION_UNITS[match[2]!.toLowerCase()]!;
  return seconds > 0 && seconds <= 100 * 366 * 86_400 ? seconds : null;
}
