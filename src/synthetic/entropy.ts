/**
 * The entropy bound of each synthetic dataset: how many bits a row carries, on average,
 * once anonymized, computed from the distributions its generator draws from.
 *
 * Why from the distributions, not from the data: most values here (URLs, ids) are nearly
 * all distinct in a sample, so counting their empirical frequencies would say "every
 * value seen once" and give log2(sample size) bits, which understates what the values
 * carry. The generator's laws are known exactly, so the entropy is too.
 *
 * The generators draw every field independently of the others, so a row's entropy is the
 * sum of the fields' entropies. It is a bound for the rows as they go on the wire: no
 * lossless encoding can average fewer bits per row (Shannon's source coding theorem),
 * whatever format or codec it uses.
 *
 * Timestamps: both generators advance the timestamp by 1000 / rate ms per record from a
 * start time, and the wire holds it floored to the second. Within a batch the whole
 * column is a fixed function of the first timestamp and the rate, so it costs one start
 * time per batch (≤ 32 bits), which is < 0.001 B/row at the ≥ 10k rows a request holds.
 * We count it as 0 bits per row.
 */
import {
  BYTES_SENT_LAW,
  CACHE_STATUS_PMF,
  IPV4_PREFIX_LAW,
  IPV6_PREFIX_LAW,
  IPV6_SHARE,
  METHOD_PMF,
  QUERY_STRING_PMF,
  REQUEST_TIME_LAW,
  RESOURCE_LAW,
  STATUS_PMF,
  URL_LAW,
  zipfPmf,
} from './realisticDataset.ts';
import type { LogNormalLaw, Pmf, ZipfLaw } from './realisticDataset.ts';

export interface EntropyTerm {
  /** The column (or part of one) the term is about. */
  readonly field: string;
  readonly bits: number;
  /** How the term is computed, for the report. */
  readonly model: string;
}

export interface EntropyBound {
  readonly terms: readonly EntropyTerm[];
  readonly bitsPerRow: number;
  readonly bytesPerRow: number;
}

/** Shannon entropy, in bits, of a discrete distribution given by its probabilities. */
export function shannonBits(probabilities: ArrayLike<number>): number {
  let bits = 0;
  for (let i = 0; i < probabilities.length; i++) {
    const p = probabilities[i]!;
    if (p > 0) bits -= p * Math.log2(p);
  }
  return bits;
}

export function pmfBits<T>(pmf: Pmf<T>): number {
  return shannonBits(pmf.map(([, p]) => p));
}

export function zipfBits(law: ZipfLaw): number {
  return shannonBits(zipfPmf(law));
}

/** Entropy of a yes/no draw with probability p. */
export function binaryBits(p: number): number {
  return shannonBits([p, 1 - p]);
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
/** Standard normal arguments beyond ±40 carry no probability a double can hold. */
const T_LIMIT = 40;

/**
 * ∫ φ(t) dt over [t0, t1], by Simpson's rule with steps of ≤ 0.01 (error far below what
 * the entropy needs). Integrating avoids subtracting two nearly equal CDF values, which
 * would lose the small probabilities of single large integers.
 */
function normalMass(t0: number, t1: number): number {
  const a = Math.max(-T_LIMIT, t0);
  const b = Math.min(T_LIMIT, t1);
  if (!(b > a)) return 0;
  const steps = 2 * Math.max(4, Math.ceil((b - a) / 0.02));
  const h = (b - a) / steps;
  let sum = 0;
  for (let i = 0; i <= steps; i++) {
    const t = a + i * h;
    const weight = i === 0 || i === steps ? 1 : i % 2 === 1 ? 4 : 2;
    sum += weight * Math.exp(-0.5 * t * t);
  }
  return (sum * h * INV_SQRT_2PI) / 3;
}

/**
 * Entropy in bits of min(max, round(X)) for ln X ~ Normal(mu, sigma): the integers the
 * generators emit.
 *
 * - Below `exactBelow`, each integer's probability P(k − ½ < X < k + ½) is integrated
 *   and summed exactly: near 0 the density changes a lot within one unit, so the
 *   continuous formula would be wrong there.
 * - From `exactBelow` to the cap, the density is nearly constant over each unit, so
 *   Σ −p_k log2 p_k ≈ −∫ f log2 f dx: the differential entropy of that part, with a
 *   discretization step of 1 (which adds −log2 1 = 0). Integrated in u = ln x, where the
 *   log-normal is a plain normal.
 * - The mass at the cap is one value, P(X > max − ½).
 */
export function discretizedLogNormalBits(law: LogNormalLaw, exactBelow = 200_000): number {
  const { mu, sigma, max } = law;
  const t = (x: number): number => (x <= 0 ? -Infinity : (Math.log(x) - mu) / sigma);
  const split = Math.min(max, exactBelow);
  let bits = 0;
  const add = (p: number): void => {
    if (p > 0) bits -= p * Math.log2(p);
  };
  for (let k = 0; k < split; k++) add(normalMass(t(k - 0.5), t(k + 0.5)));

  if (split < max) {
    // −∫ f(x) log2 f(x) dx over [split − ½, max − ½], with f(x) = φ(s) / (σ x), s = (ln x − μ)/σ,
    // and dx = x du: the integrand in u is φ(s)/σ · −log2(φ(s) / (σ eᵘ)).
    const u0 = Math.log(split - 0.5);
    const u1 = Math.log(max - 0.5);
    const steps = 20_000;
    const h = (u1 - u0) / steps;
    let sum = 0;
    for (let i = 0; i <= steps; i++) {
      const u = u0 + i * h;
      const s = (u - mu) / sigma;
      if (Math.abs(s) > T_LIMIT) continue;
      const density = (INV_SQRT_2PI * Math.exp(-0.5 * s * s)) / sigma; // per unit of u
      const log2f = Math.log2(INV_SQRT_2PI / sigma) - (0.5 * s * s) / Math.LN2 - u / Math.LN2; // log2 f(x)
      const weight = i === 0 || i === steps ? 1 : i % 2 === 1 ? 4 : 2;
      sum += weight * density * -log2f;
    }
    bits += (sum * h) / 3;
  }
  add(normalMass(t(max - 0.5), Infinity));
  return bits;
}

function bound(terms: EntropyTerm[]): EntropyBound {
  const bitsPerRow = terms.reduce((sum, term) => sum + term.bits, 0);
  return { terms, bitsPerRow, bytesPerRow: bitsPerRow / 8 };
}

const TIMESTAMP_TERM: EntropyTerm = {
  field: 'timestamp',
  bits: 0,
  model: 'advances 1000/rate ms a record from the batch start: a fixed function of it (≤ 32 bits a batch)',
};

/**
 * What `uniformRecords` draws (src/synthetic/uniformDataset.ts keeps these private; the
 * test checks them against its output). MD5-hex fragment length of each of its nine URL
 * templates, in its order.
 */
export const UNIFORM_FRAGMENT_LENGTHS: readonly number[] = [20, 20, 15, 15, 25, 10, 15, 25, 20];
export const UNIFORM_STATUS_COUNT = 8;
export const UNIFORM_CACHE_STATUS_COUNT = 7;
export const UNIFORM_METHOD_COUNT = 2;
/** The fragment is the MD5 of one 64-bit draw. */
export const UNIFORM_FRAGMENT_SEED_BITS = 64;

export interface UniformBoundOptions {
  /**
   * Strictly, a fragment cannot carry more than the 64-bit draw it is the MD5 of, so
   * fragments of 20 and 25 hex digits carry 64 bits, not 80 or 100. Recovering that
   * would mean inverting MD5, which no compressor does: by default each hex digit counts
   * its 4 bits (the bound a real encoder faces, and the one docs/performance.md quotes). Set this to get
   * the strict information-theoretic figure.
   */
  readonly capFragmentAtSeed?: boolean;
}

/** The `uniform` dataset (the prior art's generator), anonymized. */
export function uniformDatasetBound(options: UniformBoundOptions = {}): EntropyBound {
  const fragmentBits =
    UNIFORM_FRAGMENT_LENGTHS.reduce(
      (sum, length) => sum + (options.capFragmentAtSeed ? Math.min(4 * length, UNIFORM_FRAGMENT_SEED_BITS) : 4 * length),
      0,
    ) / UNIFORM_FRAGMENT_LENGTHS.length;
  return bound([
    TIMESTAMP_TERM,
    { field: 'resource_id', bits: Math.log2(1e9), model: 'uniform in [0, 1e9): log2(1e9)' },
    { field: 'bytes_sent', bits: Math.log2(5e6), model: 'uniform in [0, 5e6): log2(5e6)' },
    { field: 'request_time_milli', bits: Math.log2(5e4), model: 'uniform in [0, 5e4): log2(5e4)' },
    { field: 'response_status', bits: Math.log2(UNIFORM_STATUS_COUNT), model: `uniform over ${UNIFORM_STATUS_COUNT} codes` },
    { field: 'cache_status', bits: Math.log2(UNIFORM_CACHE_STATUS_COUNT), model: `uniform over ${UNIFORM_CACHE_STATUS_COUNT} values` },
    { field: 'method', bits: Math.log2(UNIFORM_METHOD_COUNT), model: 'GET or HEAD' },
    { field: 'remote_addr', bits: 24, model: 'uniform IPv4; the anonymized /24 keeps 24 bits, the host octet is gone' },
    { field: 'url template', bits: Math.log2(UNIFORM_FRAGMENT_LENGTHS.length), model: `one of ${UNIFORM_FRAGMENT_LENGTHS.length} templates, uniform` },
    {
      field: 'url fragment',
      bits: fragmentBits,
      model: options.capFragmentAtSeed
        ? `mean over templates of min(4 × hex digits, ${UNIFORM_FRAGMENT_SEED_BITS}) bits`
        : '4 bits per MD5-hex digit, averaged over the templates',
    },
  ]);
}

/** The `realistic` dataset, anonymized. */
export function realisticDatasetBound(): EntropyBound {
  const ipv4 = zipfBits(IPV4_PREFIX_LAW);
  const ipv6 = zipfBits(IPV6_PREFIX_LAW);
  return bound([
    TIMESTAMP_TERM,
    {
      field: 'resource_id',
      bits: zipfBits(RESOURCE_LAW),
      model: `Zipf(s=${RESOURCE_LAW.exponent}) over ${RESOURCE_LAW.count} resources; the rank→id map is a bijection`,
    },
    {
      field: 'url path',
      bits: zipfBits(URL_LAW),
      model: `Zipf(s=${URL_LAW.exponent}) over ${URL_LAW.count} URLs of the resource; the path shape follows from the resource (0 bits)`,
    },
    { field: 'url query', bits: pmfBits(QUERY_STRING_PMF), model: `pmf over ${QUERY_STRING_PMF.length} query strings` },
    {
      field: 'remote_addr',
      bits: binaryBits(IPV6_SHARE) + (1 - IPV6_SHARE) * ipv4 + IPV6_SHARE * ipv6,
      model: `H(IPv6 share ${IPV6_SHARE}) + ${1 - IPV6_SHARE} × Zipf over ${IPV4_PREFIX_LAW.count} /24s + ${IPV6_SHARE} × Zipf over ${IPV6_PREFIX_LAW.count} /48s; host parts are anonymized away`,
    },
    { field: 'response_status', bits: pmfBits(STATUS_PMF), model: 'STATUS_PMF' },
    { field: 'cache_status', bits: pmfBits(CACHE_STATUS_PMF), model: 'CACHE_STATUS_PMF' },
    { field: 'method', bits: pmfBits(METHOD_PMF), model: 'METHOD_PMF' },
    { field: 'bytes_sent', bits: discretizedLogNormalBits(BYTES_SENT_LAW), model: 'rounded log-normal (median 20 KB, σ=2), capped at 1e9' },
    {
      field: 'request_time_milli',
      bits: discretizedLogNormalBits(REQUEST_TIME_LAW),
      model: 'rounded log-normal (median 40 ms, σ=1.2), capped at 60,000',
    },
  ]);
}
