/**
 * How many rows the next insert body should hold, from what a measured body weighed.
 *
 * A compressed body's size is close to proportional to its row count for a given stream
 * (the codec's dictionary warms up over the first few thousand rows, then bytes per row
 * settle), so a single measurement predicts the fitting count to within about a percent.
 * We aim a little under the limit (`aim`) so that the prediction's error lands between the
 * floor and the limit instead of over it; a body measured over the limit is never sent.
 */
import type { PreparedBody } from './batch.ts';

export interface BodyFitPolicy {
  /** The proxy's body limit, in bytes. No body over it is ever sent. */
  readonly limit: number;
  /** A measured body at or above `floor × limit` (and ≤ limit) is full enough to send. Default 0.95. */
  readonly floor?: number;
  /** The share of the limit a new count aims at. Default 0.975: the middle of [floor, 1], since a body's size scatters both ways around the estimate. */
  readonly aim?: number;
}

export const DEFAULT_FIT_FLOOR = 0.95;
export const DEFAULT_FIT_AIM = 0.975;

export type FitVerdict =
  /** Send these rows: the body is within [floor, 1] × limit. */
  | { readonly kind: 'fits' }
  /** Over the limit: measure this smaller count (≥ 1, < the measured count). */
  | { readonly kind: 'shrink'; readonly count: number }
  /** Under the floor: this many rows should fill it (> the measured count). */
  | { readonly kind: 'grow'; readonly count: number }
  /** Not even one row fits. */
  | { readonly kind: 'too-large' };

/** What to do after `count` rows compressed to `bytes`. */
export function judgeFit(policy: BodyFitPolicy, count: number, bytes: number): FitVerdict {
  const floor = (policy.floor ?? DEFAULT_FIT_FLOOR) * policy.limit;
  const target = (policy.aim ?? DEFAULT_FIT_AIM) * policy.limit;
  if (bytes <= policy.limit && bytes >= floor) return { kind: 'fits' };
  if (bytes > policy.limit) {
    if (count <= 1) return { kind: 'too-large' };
    return { kind: 'shrink', count: Math.max(1, Math.min(count - 1, Math.floor((count * target) / bytes))) };
  }
  return { kind: 'grow', count: Math.max(count + 1, Math.ceil((count * target) / Math.max(bytes, 1))) };
}

/** What the search decides after a measurement. */
export type FitDecision =
  /** Seal the first `count` open rows with this measured body. */
  | { readonly kind: 'seal'; readonly count: number; readonly prepared: PreparedBody; readonly reason: 'size' | 'proxy-ready' }
  /** Measure the first `count` open rows next. */
  | { readonly kind: 'measure'; readonly count: number }
  /** Fewer rows are open than a full body needs: measure `count` once that many are. */
  | { readonly kind: 'wait'; readonly count: number }
  /** Nothing to do now (the input has ended: what is open is sealed as it is). */
  | { readonly kind: 'none' }
  /** A single row's body is over the limit. */
  | { readonly kind: 'too-large'; readonly bytes: number };

export interface BodyFitSearchConfig extends BodyFitPolicy {
  /** Compressed bytes per estimated byte assumed before the first measurement. Default 0.5. */
  readonly initialRatio?: number;
  /** Measurements per body before the fullest fitting one is sent as it is. Default 8. */
  readonly maxAttempts?: number;
}

/**
 * The search for the fullest body under the limit, one body at a time: a state machine fed
 * each measurement (rows → compressed bytes) that answers what to do next. Pure: the
 * operator (sealBatches) runs the measurements and applies the decisions.
 *
 * Bytes grow with rows in steps, not on a line (a chunk of another partition, a codec
 * block boundary): once a count that fits and one that does not are known, it
 * interpolates between them rather than from zero, and stops when no count lies between.
 */
export class BodyFitSearch {
  readonly #policy: BodyFitSearchConfig;
  /** Compressed bytes per estimated byte, learned from every measurement (kept across bodies). */
  #ratio: number;
  #attempts = 0;
  /** The fullest measured prefix whose body fits, in case growing it never reaches the floor. */
  #best: { count: number; prepared: PreparedBody } | undefined;
  /** The smallest measured prefix whose body is over the limit: with `best`, it brackets the answer. */
  #over: { count: number; bytes: number } | undefined;
  #tried = new Set<number>();
  #probes = 0;
  #readyWhileMeasuring = false;
  #waitFor: number | undefined;

  constructor(policy: BodyFitSearchConfig) {
    this.#policy = policy;
    this.#ratio = policy.initialRatio ?? 0.5;
  }

  get limit(): number {
    return this.#policy.limit;
  }

  /** The body size the search aims at, in bytes. */
  get aimBytes(): number {
    return (this.#policy.aim ?? DEFAULT_FIT_AIM) * this.#policy.limit;
  }

  /** The compressed size an estimate of `estimatedBytes` is expected to make. */
  estimate(estimatedBytes: number): number {
    return estimatedBytes * this.#ratio;
  }

  /** The estimated bytes (the unit of `sizeOf`) expected to compress to `bodyBytes`. */
  estimatedFor(bodyBytes: number): number {
    return bodyBytes / this.#ratio;
  }

  /** The row count to measure once that many rows are open, if a measurement asked to wait. */
  get waitingFor(): number | undefined {
    return this.#waitFor;
  }

  /** The fullest body measured so far that fits. */
  get best(): { readonly count: number; readonly prepared: PreparedBody } | undefined {
    return this.#best;
  }

  /** A new body: forget the measurements of the last one (the ratio stays). */
  reset(): void {
    this.#attempts = 0;
    this.#best = undefined;
    this.#over = undefined;
    this.#tried = new Set();
    this.#probes = 0;
    this.#readyWhileMeasuring = false;
    this.#waitFor = undefined;
  }

  /** A measurement starts. */
  started(): void {
    this.#attempts++;
    this.#waitFor = undefined;
  }

  /** The proxy became ready while a measurement ran: send what fits as soon as it is known. */
  proxyReady(): void {
    this.#readyWhileMeasuring = true;
  }

  /** The input ended: no more rows will come to wait for. */
  ended(): void {
    this.#waitFor = undefined;
  }

  /**
   * `count` rows, estimated at `estimatedBytes`, made `prepared`; `open` rows are open now
   * and `ending` says whether the input has ended. Returns the verdict (for metrics) and
   * what to do next.
   */
  measured(count: number, estimatedBytes: number, prepared: PreparedBody, open: { readonly rows: number; readonly ending: boolean }): { verdict: FitVerdict['kind']; decision: FitDecision } {
    const bytes = prepared.body.byteLength;
    if (estimatedBytes > 0) this.#ratio = bytes / estimatedBytes;
    const verdict = judgeFit(this.#policy, count, bytes);
    this.#tried.add(count);
    // The fullest body that fits (bytes are not monotonic in rows: a count can beat a larger one).
    if (bytes <= this.#policy.limit && (this.#best === undefined || bytes > this.#best.prepared.body.byteLength)) this.#best = { count, prepared };
    if (bytes > this.#policy.limit && (this.#over === undefined || count < this.#over.count)) this.#over = { count, bytes };
    return { verdict: verdict.kind, decision: this.#decide(verdict, count, prepared, open) };
  }

  #decide(verdict: FitVerdict, count: number, prepared: PreparedBody, open: { readonly rows: number; readonly ending: boolean }): FitDecision {
    const bestReason = this.#readyWhileMeasuring ? 'proxy-ready' : 'size';
    if (verdict.kind === 'fits') return { kind: 'seal', count, prepared, reason: 'size' };
    if (verdict.kind === 'too-large') return { kind: 'too-large', bytes: prepared.body.byteLength };
    const next = this.#nextCount(verdict.count, open.rows);
    // No row count between the fullest fitting body and the smallest one over: send it.
    if (next === 'bracketed') return this.#sealBest(bestReason);
    if (verdict.kind === 'shrink') return { kind: 'measure', count: next };
    // Growing keeps missing the window: send the fullest body measured.
    if (this.#attempts >= (this.#policy.maxAttempts ?? 8)) return this.#sealBest(bestReason);
    // Enough rows are open to fill it: measure them, even if the proxy is waiting.
    if (open.rows >= next) return { kind: 'measure', count: next };
    // The proxy is waiting and no more rows are open: send them all (they are estimated to
    // fit), once measured; then the fullest body measured. Sending the measured prefix alone
    // left the rest for the next slot: a backlog that arrived at once went out in two
    // half-full bodies instead of one.
    if (this.#readyWhileMeasuring) return open.rows > count ? { kind: 'measure', count: open.rows } : this.#sealBest('proxy-ready');
    // The input has ended and all that is open fits one body: it is sealed as it is.
    if (open.ending) return { kind: 'none' };
    this.#waitFor = next;
    return { kind: 'wait', count: next };
  }

  #sealBest(reason: 'size' | 'proxy-ready'): FitDecision {
    const best = this.#best!;
    return { kind: 'seal', count: best.count, prepared: best.prepared, reason };
  }

  #nextCount(proportional: number, openRows: number): number | 'bracketed' {
    const best = this.#best;
    const over = this.#over;
    if (best === undefined || over === undefined || over.count <= best.count) return proportional;
    const maxAttempts = this.#policy.maxAttempts ?? 8;
    if (over.count - best.count <= 1) {
      // Adjacent counts straddle the window. A compressor's output jumps by a few percent
      // from one row to the next on small bodies, so a neighbour may land inside it: try a
      // few (one fewer than the fullest fitting, one more than the oversize, …).
      while (this.#attempts < maxAttempts && this.#probes < 6) {
        this.#probes++;
        const step = Math.ceil(this.#probes / 2);
        const count = this.#probes % 2 === 1 ? best.count - step : over.count + step;
        if (count >= 1 && count <= openRows && !this.#tried.has(count)) return count;
      }
      return 'bracketed';
    }
    const bestBytes = best.prepared.body.byteLength;
    const slope = (over.bytes - bestBytes) / (over.count - best.count);
    const guess = best.count + Math.round((this.aimBytes - bestBytes) / Math.max(slope, 1e-9));
    return Math.min(over.count - 1, Math.max(best.count + 1, guess));
  }
}
