import { describe, expect, it } from 'vitest';
import {
  UNIFORM_CACHE_STATUS_COUNT,
  UNIFORM_FRAGMENT_LENGTHS,
  UNIFORM_METHOD_COUNT,
  UNIFORM_STATUS_COUNT,
  binaryBits,
  discretizedLogNormalBits,
  pmfBits,
  realisticDatasetBound,
  shannonBits,
  uniformDatasetBound,
  zipfBits,
} from './entropy.ts';
import { uniformRecords } from './uniformDataset.ts';

/** Differential entropy of a log-normal, in bits: (μ + ½ + ln(σ√(2π))) / ln 2. */
function logNormalDifferentialBits(mu: number, sigma: number): number {
  return (mu + 0.5 + Math.log(sigma * Math.sqrt(2 * Math.PI))) / Math.LN2;
}

describe('Shannon entropy of discrete distributions', () => {
  it('matches known small cases', () => {
    expect(shannonBits([0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125])).toBeCloseTo(3, 12);
    expect(shannonBits([0.5, 0.25, 0.25])).toBeCloseTo(1.5, 12);
    expect(shannonBits([1, 0, 0])).toBe(0);
    expect(pmfBits([['a', 0.5], ['b', 0.5]])).toBeCloseTo(1, 12);
    expect(binaryBits(0.5)).toBeCloseTo(1, 12);
    expect(binaryBits(0.11)).toBeCloseTo(0.4999, 3);
  });

  it('gives a Zipf law its closed form', () => {
    // Exponent 0 is uniform.
    expect(zipfBits({ count: 1024, exponent: 0 })).toBeCloseTo(10, 9);
    // Two ranks with s = 1: P = (2/3, 1/3), H = log2 3 − 2/3.
    expect(zipfBits({ count: 2, exponent: 1 })).toBeCloseTo(Math.log2(3) - 2 / 3, 12);
    // Skew lowers the entropy below log2(count).
    expect(zipfBits({ count: 1000, exponent: 1 })).toBeLessThan(Math.log2(1000) - 2);
  });
});

describe('rounded log-normal integers', () => {
  it('approaches the differential entropy when values are large', () => {
    // Median 1e6, σ = 0.5: the density is flat over each integer, so H ≈ h (step 1).
    const mu = Math.log(1e6);
    expect(discretizedLogNormalBits({ mu, sigma: 0.5, max: 1e12 })).toBeCloseTo(logNormalDifferentialBits(mu, 0.5), 3);
  });

  it('sums small values exactly, where the continuous formula is wrong', () => {
    // Median 30, σ = 1: the exact sum over every integer, and the split at 100 into exact
    // sum + integral, agree; the plain differential entropy does not (mass piles up at 0..2).
    const law = { mu: Math.log(30), sigma: 1, max: 1_000_000 };
    const exact = discretizedLogNormalBits(law, law.max);
    expect(discretizedLogNormalBits(law, 100)).toBeCloseTo(exact, 3);
    // With σ = 2 and median 2, much of the mass falls on 0, 1, 2: the continuous formula is off.
    const skewed = { mu: Math.log(2), sigma: 2, max: 1_000_000 };
    expect(Math.abs(discretizedLogNormalBits(skewed, skewed.max) - logNormalDifferentialBits(skewed.mu, skewed.sigma))).toBeGreaterThan(0.1);
  });

  it('is 0 bits when all mass sits on one integer or on the cap', () => {
    expect(discretizedLogNormalBits({ mu: Math.log(7), sigma: 1e-4, max: 100 })).toBeCloseTo(0, 6);
    expect(discretizedLogNormalBits({ mu: Math.log(1e6), sigma: 0.1, max: 10 })).toBeCloseTo(0, 6);
  });

  it('counts the cap as one value', () => {
    // Half the mass above the cap: the result is about half the uncapped one plus 1 bit.
    const mu = Math.log(1e6);
    const uncapped = discretizedLogNormalBits({ mu, sigma: 0.5, max: 1e12 });
    const capped = discretizedLogNormalBits({ mu, sigma: 0.5, max: 1e6 });
    expect(capped).toBeLessThan(uncapped);
    expect(capped).toBeGreaterThan(uncapped / 2);
  });
});

describe('dataset bounds', () => {
  it('adds up the uniform generator term by term', () => {
    const bound = uniformDatasetBound();
    const expected =
      Math.log2(1e9) + Math.log2(5e6) + Math.log2(5e4) + 3 + Math.log2(7) + 1 + 24 + Math.log2(9) + (4 * 165) / 9;
    expect(bound.bitsPerRow).toBeCloseTo(expected, 9);
    expect(bound.bytesPerRow).toBeCloseTo(expected / 8, 9);
    // The strict figure caps the 20- and 25-digit fragments at their 64-bit seed.
    expect(uniformDatasetBound({ capFragmentAtSeed: true }).bitsPerRow).toBeCloseTo(expected - (4 * 165) / 9 + 540 / 9, 9);
  });

  it('describes what uniformRecords really draws', () => {
    // uniformDataset.ts keeps its tables private: check the constants against its output.
    const records = uniformRecords({ seed: 3n, startMillis: 0, rate: 1000 });
    const statuses = new Set<number>();
    const cacheStatuses = new Set<string>();
    const methods = new Set<string>();
    const fragmentLengthByTemplate = new Map<string, Set<number>>();
    for (let i = 0; i < 20_000; i++) {
      const record = records.next().value!;
      statuses.add(record.responseStatus);
      cacheStatuses.add(record.cacheStatus);
      methods.add(record.method);
      // prefix/ + hex fragment + optional .suffix
      const match = /^(.*\/)([0-9a-f]+)(\.[a-z0-9]+)?$/.exec(record.url)!;
      const template = `${match[1]}…${match[3] ?? ''}`;
      const lengths = fragmentLengthByTemplate.get(template) ?? new Set<number>();
      lengths.add(match[2]!.length);
      fragmentLengthByTemplate.set(template, lengths);
    }
    expect(statuses.size).toBe(UNIFORM_STATUS_COUNT);
    expect(cacheStatuses.size).toBe(UNIFORM_CACHE_STATUS_COUNT);
    expect(methods.size).toBe(UNIFORM_METHOD_COUNT);
    expect(fragmentLengthByTemplate.size).toBe(UNIFORM_FRAGMENT_LENGTHS.length);
    for (const lengths of fragmentLengthByTemplate.values()) expect(lengths.size).toBe(1);
    const lengths = [...fragmentLengthByTemplate.values()].map((set) => [...set][0]!);
    expect(lengths.sort((a, b) => a - b)).toEqual([...UNIFORM_FRAGMENT_LENGTHS].sort((a, b) => a - b));
  });

  it('sums the realistic terms, with host parts and timestamps counting nothing', () => {
    const bound = realisticDatasetBound();
    expect(bound.bitsPerRow).toBeCloseTo(bound.terms.reduce((sum, term) => sum + term.bits, 0), 9);
    expect(bound.terms.find((term) => term.field === 'timestamp')!.bits).toBe(0);
    // Each term stays within what its support allows.
    const bits = Object.fromEntries(bound.terms.map((term) => [term.field, term.bits]));
    expect(bits['resource_id']).toBeLessThan(Math.log2(10_000));
    expect(bits['url path']).toBeLessThan(Math.log2(1_000));
    expect(bits['response_status']).toBeLessThan(1);
    expect(bits['bytes_sent']).toBeGreaterThan(10);
    expect(bound.bytesPerRow).toBeGreaterThan(5);
    expect(bound.bytesPerRow).toBeLessThan(uniformDatasetBound().bytesPerRow);
  });
});
