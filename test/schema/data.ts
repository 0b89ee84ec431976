// Seeded random rows for the schema tests: a few resources, statuses, cache statuses and
// (anonymized) addresses, skewed so that keys repeat within a minute and across blocks.

/** mulberry32: a small, fast, seeded PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A resource id above 2^53 checks that no layer rounds UInt64 through a double.
export const RESOURCES = ['1', '42', '1000000007', '9007199254740993', '18446744073709551615'];
export const STATUSES = [200, 200, 301, 404, 500, 502];
export const CACHES = ['HIT', 'MISS', 'BYPASS', ''];
export const ADDRESSES = ['1.2.3.X', '10.0.0.X', '192.168.7.X', '2001:db8:85a3::X', '2a00:1450:4001::X', 'X'];
const METHODS = ['GET', 'GET', 'GET', 'POST', 'HEAD'];

export interface Row {
  timestamp: number; // unix seconds
  resource_id: string;
  bytes_sent: number;
  request_time_milli: number;
  response_status: number;
  cache_status: string;
  method: string;
  remote_addr: string;
  url: string;
}

/**
 * `count` rows between `start` and `start + days` days (unix seconds). Half of them fall in
 * one busy half hour, so minute keys repeat; dimension values are skewed towards the
 * first ones for the same reason.
 */
export function generateRows(seed: number, count: number, start: number, days: number): Row[] {
  const random = seededRandom(seed);
  const skewed = <T>(values: readonly T[]): T => values[Math.floor(random() ** 2 * values.length)] as T;
  const busy = start + Math.floor(days / 2) * 86_400 + 13 * 3_600;
  const rows: Row[] = [];
  for (let i = 0; i < count; i++) {
    const timestamp = random() < 0.5
      ? busy + Math.floor(random() * 1_800)
      : start + Math.floor(random() * days * 86_400);
    rows.push({
      timestamp,
      resource_id: skewed(RESOURCES),
      // Up to ~4 GiB per request, so sums leave 2^32 and the bytes are not all small.
      bytes_sent: random() < 0.01 ? Math.floor(random() * 4_294_967_296) : Math.floor(random() * 5_000_000),
      request_time_milli: Math.floor(random() * 50_000),
      response_status: skewed(STATUSES),
      cache_status: skewed(CACHES),
      method: skewed(METHODS),
      remote_addr: skewed(ADDRESSES),
      url: `/r/${Math.floor(random() * 1e9).toString(36)}?q=${i}`,
    });
  }
  return rows;
}

/** TabSeparated body for `INSERT INTO http_log FORMAT TabSeparated` (no value needs escaping). */
export function toTsv(rows: readonly Row[]): string {
  return rows
    .map((r) => [r.timestamp, r.resource_id, r.bytes_sent, r.request_time_milli, r.response_status, r.cache_status, r.method, r.remote_addr, r.url].join('\t'))
    .join('\n') + '\n';
}
