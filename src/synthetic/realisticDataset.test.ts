import { describe, expect, it } from 'vitest';
import { anonymizeAddress } from '../domain/anonymizeAddress.ts';
import type { SourceRecord } from '../domain/encodeRecord.ts';
import {
  BYTES_SENT_LAW,
  CACHE_STATUS_PMF,
  IPV4_PREFIX_LAW,
  IPV6_SHARE,
  METHOD_PMF,
  QUERY_STRING_PMF,
  REQUEST_TIME_LAW,
  RESOURCE_LAW,
  STATUS_PMF,
  URL_LAW,
  realisticRecords,
  resourceIdOfRank,
  zipfPmf,
} from './realisticDataset.ts';
import type { Pmf } from './realisticDataset.ts';

const START = Date.UTC(2026, 10, 1);

function take(count: number, seed = 1n, rate = 200): SourceRecord[] {
  const records = realisticRecords({ seed, startMillis: START, rate });
  return Array.from({ length: count }, () => records.next().value!);
}

const DRAWS = 100_000;
const sample = take(DRAWS);

/**
 * A share seen in DRAWS independent draws, against its probability: within 5 standard
 * deviations of the binomial, so a correct generator fails about once in 3 million and a
 * wrong probability (a swapped or missing value) fails for sure.
 */
function expectShare(observed: number, p: number): void {
  const sd = Math.sqrt((p * (1 - p)) / DRAWS);
  expect(Math.abs(observed / DRAWS - p)).toBeLessThanOrEqual(5 * sd + 1e-12);
}

function counts<T>(values: readonly T[]): Map<T, number> {
  const map = new Map<T, number>();
  for (const value of values) map.set(value, (map.get(value) ?? 0) + 1);
  return map;
}

function expectPmf<T>(values: readonly T[], pmf: Pmf<T>): void {
  const seen = counts(values);
  expect(new Set(seen.keys())).toEqual(new Set(pmf.map(([value]) => value)));
  for (const [value, p] of pmf) expectShare(seen.get(value) ?? 0, p);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('realisticRecords', () => {
  it('is deterministic for a seed, and another seed gives other records', () => {
    const first = take(500, 7n);
    expect(take(500, 7n)).toEqual(first);
    const other = take(500, 8n);
    expect(other.filter((record, i) => record.url === first[i]!.url).length).toBeLessThan(250);
  });

  it('moves timestamps forward at the produce rate', () => {
    const records = take(1_000, 1n, 250);
    records.forEach((record, i) => expect(record.timestampEpochMilli).toBe(BigInt(START + i * 4)));
  });

  it('draws status, cache status, method and query string with the declared shares', () => {
    expectPmf(sample.map((record) => record.responseStatus), STATUS_PMF);
    expectPmf(sample.map((record) => record.cacheStatus), CACHE_STATUS_PMF);
    expectPmf(sample.map((record) => record.method), METHOD_PMF);
    expectPmf(sample.map((record) => /\?.*$/.exec(record.url)?.[0] ?? ''), QUERY_STRING_PMF);
  });

  it('draws resources by Zipf rank, and URLs per resource by Zipf rank', () => {
    const byResource = counts(sample.map((record) => record.resourceId));
    const resourcePmf = zipfPmf(RESOURCE_LAW);
    for (const rank of [1, 2, 10]) expectShare(byResource.get(resourceIdOfRank(rank)) ?? 0, resourcePmf[rank - 1]!);

    // Within the hottest resource, the most requested path has URL rank 1's share.
    const hottest = sample.filter((record) => record.resourceId === resourceIdOfRank(1));
    const paths = [...counts(hottest.map((record) => record.url.replace(/\?.*$/, ''))).values()].sort((a, b) => b - a);
    const urlPmf = zipfPmf(URL_LAW);
    const n = hottest.length;
    const sd = Math.sqrt((urlPmf[0]! * (1 - urlPmf[0]!)) / n);
    expect(Math.abs(paths[0]! / n - urlPmf[0]!)).toBeLessThan(5 * sd);
    // One resource's paths all have that resource's shape (the kind follows the resource).
    expect(new Set(hottest.map((record) => record.url.split('/')[1])).size).toBe(1);
  });

  it('clusters clients in /24 networks, with a small share of IPv6', () => {
    const anonymized = sample.map((record) => anonymizeAddress(record.remoteAddr));
    const ipv6 = anonymized.filter((address) => address.kind === 'ipv6').length;
    expectShare(ipv6, IPV6_SHARE);
    const networks = counts(anonymized.filter((address) => address.kind === 'ipv4').map((address) => address.value));
    expect(networks.size).toBeLessThanOrEqual(IPV4_PREFIX_LAW.count);
    const [topNetwork, top] = [...networks].reduce((best, entry) => (entry[1] > best[1] ? entry : best));
    expectShare(top, (1 - IPV6_SHARE) * zipfPmf(IPV4_PREFIX_LAW)[0]!);
    // The host octet varies within a network: the clustering is by /24, not by address.
    const hostsOfTop = new Set(sample.filter((record, i) => anonymized[i]!.value === topNetwork).map((record) => record.remoteAddr));
    expect(hostsOfTop.size).toBeGreaterThan(100);
  });

  it('draws log-normal sizes and times with the declared medians and spreads', () => {
    // The median of round(X) is round(e^mu) up to sampling noise. The sample median of
    // ln X has a standard deviation of 1.25 σ / √n: 0.8% for σ = 2 and 0.5% for σ = 1.2
    // at 100k draws, so ±4% (bytes) and ±2 ms of 40 ms (time) are 5 standard deviations.
    const bytes = median(sample.map((record) => Number(record.bytesSent)));
    expect(Math.abs(bytes / Math.exp(BYTES_SENT_LAW.mu) - 1)).toBeLessThan(0.04);
    const time = median(sample.map((record) => Number(record.requestTimeMilli)));
    expect(Math.abs(time - Math.exp(REQUEST_TIME_LAW.mu))).toBeLessThanOrEqual(2);
    // The spread: for a log-normal, ln(Q3 / Q1) = 2 × 0.6745 σ. The sample quartiles pin σ
    // to about ±0.6% here; rounding the times to whole ms moves their Q1 (≈ 18 ms) by ≤ 3%.
    const sigmaOf = (values: number[]): number => {
      const sorted = [...values].sort((a, b) => a - b);
      return Math.log(sorted[Math.floor(0.75 * sorted.length)]! / sorted[Math.floor(0.25 * sorted.length)]!) / (2 * 0.6745);
    };
    expect(Math.abs(sigmaOf(sample.map((record) => Number(record.bytesSent))) / BYTES_SENT_LAW.sigma - 1)).toBeLessThan(0.03);
    expect(Math.abs(sigmaOf(sample.map((record) => Number(record.requestTimeMilli))) / REQUEST_TIME_LAW.sigma - 1)).toBeLessThan(0.05);
  });

  it('keeps every field within the http_log column types', () => {
    // Collected, then compared once: a million separate expect() calls would take seconds.
    const outOfRange = sample.filter(
      (record) =>
        record.timestampEpochMilli < 0n ||
        record.timestampEpochMilli / 1000n > 0xffff_ffffn || // DateTime
        record.resourceId < 0n ||
        record.resourceId >= 1_000_000_000n ||
        record.bytesSent < 0n ||
        record.bytesSent > BigInt(BYTES_SENT_LAW.max) ||
        record.requestTimeMilli < 0n ||
        record.requestTimeMilli > BigInt(REQUEST_TIME_LAW.max) ||
        !Number.isInteger(record.responseStatus) ||
        record.responseStatus < 0 ||
        record.responseStatus > 0xffff || // UInt16
        anonymizeAddress(record.remoteAddr).kind === 'invalid' ||
        !/^\/[\x21-\x7e]+$/.test(record.url),
    );
    expect(outOfRange).toEqual([]);
  });

  it('maps resource ranks to distinct ids', () => {
    const ids = new Set(Array.from({ length: RESOURCE_LAW.count }, (_, i) => resourceIdOfRank(i + 1)));
    expect(ids.size).toBe(RESOURCE_LAW.count);
  });
});
