/**
 * The `uniform` dataset: the same draws as the prior art's generator (a public Go solution
 * of the same task), so results compare like for like (docs/performance.md, "Rows per request").
 *
 * - resource_id: uniform in [0, 1e9)
 * - bytes_sent < 5e6 and request_time_milli < 5e4, uniform
 * - response_status uniform over 200/301/400/403/404/500/502/504
 * - cache_status uniform over 7 values, method GET/HEAD
 * - remote_addr a uniform random IPv4 address
 * - url one of nine path templates with an MD5-hex fragment of the template's length
 * - timestamps move forward at the produce rate from `startMillis`
 *
 * Deterministic for a given seed, so a test can regenerate exactly what was produced.
 */
import { createHash } from 'node:crypto';
import type { SourceRecord } from '../domain/encodeRecord.ts';

export const STATUSES = [200, 301, 400, 403, 404, 500, 502, 504] as const;
export const CACHE_STATUSES = ['HIT', 'MISS', 'STALE', 'BYPASS', 'REVALIDATED', 'UPDATING', 'SCARCE'] as const;
export const METHODS = ['GET', 'HEAD'] as const;
/** Prefix, MD5-hex fragment length, suffix. */
export const URL_TEMPLATES: ReadonlyArray<readonly [string, number, string]> = [
  ['/cdn/js/static/data/', 20, '.jpeg'],
  ['/media/content/data/', 20, '.m3u8'],
  ['/vod/', 15, '.json'],
  ['/content/files/', 15, '.js'],
  ['/imgs/fetch/media/static/', 25, '.mpd'],
  ['/games/static/', 10, '.png'],
  ['/video/js/', 15, ''],
  ['/stream/content/', 25, '.jpg'],
  ['/images/preview/', 20, '.jpg'],
];

/** splitmix64: a small, well-distributed 64-bit PRNG; enough for synthetic data. */
export class SplitMix64 {
  #state: bigint;
  constructor(seed: bigint) {
    this.#state = BigInt.asUintN(64, seed);
  }
  next64(): bigint {
    this.#state = BigInt.asUintN(64, this.#state + 0x9e3779b97f4a7c15n);
    let z = this.#state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  }
  /** Uniform in [0, bound) for bound ≤ 2^32. */
  below(bound: number): number {
    return Number(this.next64() >> 32n) % bound;
  }
  pick<T>(values: readonly T[]): T {
    return values[this.below(values.length)]!;
  }
}

export interface DatasetOptions {
  readonly seed: bigint;
  /** Timestamp of the first record, in ms since the epoch. */
  readonly startMillis: number;
  /** Records per second the timestamps advance by. */
  readonly rate: number;
}

export function* uniformRecords(options: DatasetOptions): Generator<SourceRecord> {
  const random = new SplitMix64(options.seed);
  const stepMillis = 1000 / options.rate;
  for (let i = 0; ; i++) {
    const [prefix, fragmentLength, suffix] = random.pick(URL_TEMPLATES);
    const fragment = createHash('md5').update(random.next64().toString(16)).digest('hex').slice(0, fragmentLength);
    yield {
      timestampEpochMilli: BigInt(Math.floor(options.startMillis + i * stepMillis)),
      resourceId: (random.next64() / 1000n) % 1_000_000_000n,
      bytesSent: BigInt(random.below(5_000_000)),
      requestTimeMilli: BigInt(random.below(50_000)),
      responseStatus: random.pick(STATUSES),
      cacheStatus: random.pick(CACHE_STATUSES),
      method: random.pick(METHODS),
      remoteAddr: `${random.below(256)}.${random.below(256)}.${random.below(256)}.${random.below(256)}`,
      url: `${prefix}${fragment}${suffix}`,
    };
  }
}
