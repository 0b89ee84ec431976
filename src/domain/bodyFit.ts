/**
 * How many rows the next insert body should hold, from what a measured body weighed.
 *
 * A compressed body's size is close to proportional to its row count for a given stream
 * (the codec's dictionary warms up over the first few thousand rows, then bytes per row
 * settle), so a single measurement predicts the fitting count to within about a percent.
 * We aim a little under the limit (`aim`) so that the prediction's error lands between the
 * floor and the limit instead of over it; a body measured over the limit is never sent.
 */
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
