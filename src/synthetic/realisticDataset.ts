/**
 * The `realistic` dataset: skewed traffic as a CDN sees it, so that compression and
 * throughput are measured on data that repeats the way real logs do (a few hot
 * resources, URLs and networks; mostly 200 and HIT), not only on uniform noise.
 *
 * Every field is drawn independently of the others from one of the distributions
 * declared below as named constants. `entropy.ts` computes the dataset's entropy bound
 * from these very constants, so the bound and the generator cannot drift apart.
 *
 * - resource_id: Zipf(s = 1.1) over 10,000 resources; the rank is mapped to an id in
 *   [0, 1e9) by a fixed bijection, so ids look arbitrary but carry only the rank's entropy.
 * - url: per resource, Zipf(s = 1.0) over 1,000 URLs (the same popularity law for every
 *   resource, different URLs), a CDN-like path chosen by the resource's kind (video
 *   segments, images, static assets, downloads), plus a query string drawn from
 *   `QUERY_STRINGS` (70% none).
 * - remote_addr: 95% IPv4 in one of 4,000 /24 networks, Zipf(s = 1.0), host octet
 *   uniform; 5% IPv6 in one of 500 /48 networks, Zipf(s = 1.0), the lower 80 bits uniform.
 * - response_status, cache_status, method: the categorical pmfs below (mostly 200, HIT, GET).
 * - bytes_sent, request_time_milli: log-normal, rounded to integers and capped.
 * - timestamps move forward at the produce rate from `startMillis`, as in `uniform`.
 *
 * Deterministic for a given seed.
 */
import type { SourceRecord } from '../domain/encodeRecord.ts';
import { SplitMix64 } from './uniformDataset.ts';
import type { DatasetOptions } from './uniformDataset.ts';

/** A categorical distribution: each value with its probability (they sum to 1). */
export type Pmf<T> = ReadonlyArray<readonly [T, number]>;

/** Zipf over ranks 1..count: P(k) ∝ k^-exponent. */
export interface ZipfLaw {
  readonly count: number;
  readonly exponent: number;
}

/** Log-normal: ln X ~ Normal(mu, sigma); the value is round(X), capped at `max`. */
export interface LogNormalLaw {
  readonly mu: number;
  readonly sigma: number;
  readonly max: number;
}

/** Hot resources: a few sites take most of the traffic. */
export const RESOURCE_LAW: ZipfLaw = { count: 10_000, exponent: 1.1 };
/** Within a resource, a few URLs (the landing page, the current video) take most requests. */
export const URL_LAW: ZipfLaw = { count: 1_000, exponent: 1.0 };
/** Client networks: a few ISPs' NATs and offices send most of the requests. */
export const IPV4_PREFIX_LAW: ZipfLaw = { count: 4_000, exponent: 1.0 };
export const IPV6_PREFIX_LAW: ZipfLaw = { count: 500, exponent: 1.0 };
/** Share of IPv6 clients. */
export const IPV6_SHARE = 0.05;

export const STATUS_PMF: Pmf<number> = [
  [200, 0.9],
  [206, 0.03],
  [304, 0.03],
  [301, 0.01],
  [404, 0.015],
  [500, 0.005],
  [502, 0.005],
  [503, 0.005],
];

export const CACHE_STATUS_PMF: Pmf<string> = [
  ['HIT', 0.86],
  ['MISS', 0.08],
  ['REVALIDATED', 0.02],
  ['STALE', 0.015],
  ['UPDATING', 0.01],
  ['BYPASS', 0.01],
  ['SCARCE', 0.005],
];

export const METHOD_PMF: Pmf<string> = [
  ['GET', 0.95],
  ['HEAD', 0.03],
  ['POST', 0.015],
  ['OPTIONS', 0.005],
];

/** Appended to the path. A path never contains `?`, so path + query stays unambiguous. */
export const QUERY_STRING_PMF: Pmf<string> = [
  ['', 0.7],
  ['?v=1', 0.08],
  ['?v=2', 0.04],
  ['?w=320', 0.04],
  ['?w=640', 0.04],
  ['?w=1280', 0.03],
  ['?quality=auto', 0.03],
  ['?format=webp', 0.03],
  ['?utm_source=newsletter', 0.01],
];

/** Median e^9.9 ≈ 20 KB, a long tail of video segments and downloads; capped at 1 GB. */
export const BYTES_SENT_LAW: LogNormalLaw = { mu: Math.log(20_000), sigma: 2, max: 1_000_000_000 };
/** Median 40 ms; capped at the 60 s upstream timeout. */
export const REQUEST_TIME_LAW: LogNormalLaw = { mu: Math.log(40), sigma: 1.2, max: 60_000 };

/** Path shapes by resource kind; `{a}`… are filled from the URL's own hash. */
const KINDS: ReadonlyArray<(resource: string, h: bigint) => string> = [
  (r, h) => `/vod/${r}/${hex(h, 10)}/720p/seg-${Number(h >> 40n) % 2000}.ts`,
  (r, h) => `/hls/${r}/${hex(h, 12)}/index.m3u8`,
  (r, h) => `/images/${r}/products/${Number(h % 1_000_000n)}/${hex(h >> 20n, 8)}.jpg`,
  (r, h) => `/static/${r}/js/app.${hex(h, 12)}.js`,
  (r, h) => `/static/${r}/css/${hex(h, 12)}.css`,
  (r, h) => `/downloads/${r}/releases/v${Number(h % 40n)}.${Number((h >> 8n) % 10n)}/${hex(h >> 16n, 10)}.zip`,
];

/** `length` hex digits of `h` (its low bits), zero-padded. */
function hex(h: bigint, length: number): string {
  return BigInt.asUintN(length * 4, h).toString(16).padStart(length, '0');
}

/** splitmix64's finalizer: a fixed, well-mixed 64-bit hash of an integer. */
export function mix64(value: bigint): bigint {
  let z = BigInt.asUintN(64, value + 0x9e3779b97f4a7c15n);
  z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
  z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
  return z ^ (z >> 31n);
}

/** The rank → id bijection of [0, 1e9): multiplying by a number coprime to 1e9 permutes it. */
export function resourceIdOfRank(rank: number): bigint {
  return BigInt((rank * 618_033_989 + 1_000_003) % 1_000_000_000);
}

/** P(k) for k = 1..count, as an array indexed k - 1. */
export function zipfPmf(law: ZipfLaw): Float64Array {
  const pmf = new Float64Array(law.count);
  let total = 0;
  for (let k = 1; k <= law.count; k++) total += (pmf[k - 1] = k ** -law.exponent);
  for (let i = 0; i < law.count; i++) pmf[i]! /= total;
  return pmf;
}

/** Draws by inverting a cumulative table: one uniform draw and a binary search. */
class Sampler<T> {
  readonly #cumulative: Float64Array;
  readonly #values: readonly T[];
  constructor(values: readonly T[], probabilities: ArrayLike<number>) {
    this.#values = values;
    this.#cumulative = new Float64Array(values.length);
    let sum = 0;
    for (let i = 0; i < values.length; i++) this.#cumulative[i] = sum += probabilities[i]!;
    // Rounding can leave the total a hair under 1; the last bucket takes the rest.
    this.#cumulative[values.length - 1] = Infinity;
  }
  draw(u: number): T {
    const c = this.#cumulative;
    let lo = 0;
    let hi = c.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (u < c[mid]!) hi = mid;
      else lo = mid + 1;
    }
    return this.#values[lo]!;
  }
}

function ranks(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i + 1);
}
function categorical<T>(pmf: Pmf<T>): Sampler<T> {
  return new Sampler(pmf.map(([value]) => value), pmf.map(([, p]) => p));
}

/** Uniform in [0, 1) with 53 random bits. */
function unit(random: SplitMix64): number {
  return Number(random.next64() >> 11n) / 2 ** 53;
}

/** Box–Muller on two uniform draws; 1 - u keeps the logarithm's argument in (0, 1]. */
function logNormal(random: SplitMix64, law: LogNormalLaw): bigint {
  const z = Math.sqrt(-2 * Math.log(1 - unit(random))) * Math.cos(2 * Math.PI * unit(random));
  return BigInt(Math.min(law.max, Math.round(Math.exp(law.mu + law.sigma * z))));
}

/**
 * The network of a given popularity rank: fixed, so the same rank is always the same
 * network. Both maps are bijections (multiplying by a number coprime to the modulus), so
 * two ranks never share a network and the anonymized address carries exactly the
 * rank's entropy.
 */
export function ipv4Network(rank: number): string {
  // 223 × 65,536 /24s with a first octet of 1..223 (unicast); 2,654,435,761 is odd and not a multiple of 223.
  const v = (rank * 2_654_435_761 + 12_345) % (223 * 65_536);
  return `${1 + Math.floor(v / 65_536)}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}
export function ipv6Network(rank: number): string {
  const v = (rank * 2_654_435_761) % 2 ** 32;
  return `2001:${(v >>> 16).toString(16).padStart(4, '0')}:${(v & 0xffff).toString(16).padStart(4, '0')}`;
}

export function* realisticRecords(options: DatasetOptions): Generator<SourceRecord> {
  const random = new SplitMix64(options.seed);
  const resources = new Sampler(ranks(RESOURCE_LAW.count), zipfPmf(RESOURCE_LAW));
  const urls = new Sampler(ranks(URL_LAW.count), zipfPmf(URL_LAW));
  const ipv4Prefixes = new Sampler(ranks(IPV4_PREFIX_LAW.count), zipfPmf(IPV4_PREFIX_LAW));
  const ipv6Prefixes = new Sampler(ranks(IPV6_PREFIX_LAW.count), zipfPmf(IPV6_PREFIX_LAW));
  const statuses = categorical(STATUS_PMF);
  const cacheStatuses = categorical(CACHE_STATUS_PMF);
  const methods = categorical(METHOD_PMF);
  const queries = categorical(QUERY_STRING_PMF);
  const stepMillis = 1000 / options.rate;
  for (let i = 0; ; i++) {
    const resourceRank = resources.draw(unit(random));
    const resourceId = resourceIdOfRank(resourceRank);
    const urlRank = urls.draw(unit(random));
    const resourceHash = mix64(BigInt(resourceRank));
    // The URL is a fixed function of (resource, URL rank): the same rank of the same
    // resource is always the same path. 48 hash bits make two ranks of one resource
    // collide with negligible probability, so the path identifies the rank.
    const urlHash = mix64((BigInt(resourceRank) << 20n) | BigInt(urlRank));
    const kind = KINDS[Number(resourceHash % BigInt(KINDS.length))]!;
    const path = kind(resourceId.toString(36), urlHash);
    const remoteAddr =
      unit(random) < IPV6_SHARE
        ? `${ipv6Network(ipv6Prefixes.draw(unit(random)))}:${hex(random.next64(), 4)}:${hex(random.next64(), 4)}:${hex(random.next64(), 4)}:${hex(random.next64(), 4)}:${hex(random.next64(), 4)}`
        : `${ipv4Network(ipv4Prefixes.draw(unit(random)))}.${random.below(256)}`;
    yield {
      timestampEpochMilli: BigInt(Math.floor(options.startMillis + i * stepMillis)),
      resourceId,
      bytesSent: logNormal(random, BYTES_SENT_LAW),
      requestTimeMilli: logNormal(random, REQUEST_TIME_LAW),
      responseStatus: statuses.draw(unit(random)),
      cacheStatus: cacheStatuses.draw(unit(random)),
      method: methods.draw(unit(random)),
      remoteAddr,
      url: path + queries.draw(unit(random)),
    };
  }
}
