/**
 * The body-fit search as tables: each row is a sequence of measurements (rows → compressed
 * bytes) and the decision expected after the last one.
 */
import { describe, expect, it } from 'vitest';
import { BodyFitSearch, judgeFit, type FitDecision } from './bodyFit.ts';

const LIMIT = 1_000;
const body = (bytes: number) => ({ body: new Uint8Array(bytes), uncompressedBytes: bytes * 3 });

describe('judgeFit', () => {
  const cases: Array<[string, number, number, string, number?]> = [
    ['within [floor, limit]', 100, 960, 'fits'],
    ['exactly the limit', 100, 1_000, 'fits'],
    ['exactly the floor', 100, 950, 'fits'],
    ['over: shrink proportionally, under the aim', 100, 1_100, 'shrink', 88],
    ['far over: never below one row', 100, 1_000_000, 'shrink', 1],
    ['under the floor: grow proportionally', 100, 500, 'grow', 195],
    ['one row over the limit', 1, 1_001, 'too-large'],
  ];
  it.each(cases)('%s', (_name, count, bytes, kind, next) => {
    const verdict = judgeFit({ limit: LIMIT }, count, bytes);
    expect(verdict.kind).toBe(kind);
    if (next !== undefined) expect((verdict as { count: number }).count).toBe(next);
  });
});

type Step = readonly [count: number, bytes: number];
interface Case {
  readonly name: string;
  readonly steps: readonly Step[];
  readonly open: number;
  readonly ending?: boolean;
  readonly readyWhileMeasuring?: boolean;
  readonly maxAttempts?: number;
  readonly expected: FitDecision['kind'];
  readonly count?: number;
  readonly reason?: 'size' | 'proxy-ready';
}

const cases: Case[] = [
  { name: 'a full body on the first try: seal it', steps: [[100, 970]], open: 150, expected: 'seal', count: 100, reason: 'size' },
  { name: 'over: measure fewer', steps: [[100, 1_100]], open: 150, expected: 'measure', count: 88 },
  { name: 'under, enough open: measure more', steps: [[100, 800]], open: 150, expected: 'measure', count: 122 },
  { name: 'under, not enough open: wait for the rows', steps: [[100, 800]], open: 110, expected: 'wait', count: 122 },
  { name: 'under, not enough open, the input ended: nothing to do (sealed as is)', steps: [[100, 800]], open: 110, ending: true, expected: 'none' },
  { name: 'under, not enough open, the proxy waits: measure all that is open', steps: [[100, 800]], open: 110, readyWhileMeasuring: true, expected: 'measure', count: 110 },
  { name: 'under, all that is open measured, the proxy waits: seal it', steps: [[100, 800], [110, 880]], open: 110, readyWhileMeasuring: true, expected: 'seal', count: 110, reason: 'proxy-ready' },
  { name: 'one row alone over the limit', steps: [[1, 1_200]], open: 5, expected: 'too-large' },
  // 100 rows fit at 900, 110 are over at 1,050: interpolate between them, not from zero.
  { name: 'bracketed: interpolate between fitting and over', steps: [[100, 900], [110, 1_050]], open: 200, expected: 'measure', count: 105 },
  // Adjacent counts straddle the window, and their neighbours were tried: send the fullest fitting.
  { name: 'adjacent counts straddle the window: probe neighbours, then seal the best', steps: [[100, 900], [101, 1_050], [99, 890], [102, 1_060], [98, 880], [103, 1_070], [97, 870], [104, 1_080]], open: 200, expected: 'seal', count: 100, reason: 'size' },
  { name: 'growing keeps missing: after maxAttempts seal the fullest fitting', steps: [[100, 500], [150, 600]], maxAttempts: 2, open: 1_000, expected: 'seal', count: 150, reason: 'size' },
];

describe('BodyFitSearch', () => {
  it.each(cases)('$name', (c) => {
    const search = new BodyFitSearch({ limit: LIMIT, ...(c.maxAttempts === undefined ? {} : { maxAttempts: c.maxAttempts }) });
    let decision: FitDecision | undefined;
    for (const [index, [count, bytes]] of c.steps.entries()) {
      search.started();
      if (c.readyWhileMeasuring && index === c.steps.length - 1) search.proxyReady();
      decision = search.measured(count, count * 10, body(bytes), { rows: c.open, ending: c.ending ?? false }).decision;
    }
    expect(decision!.kind).toBe(c.expected);
    if (c.count !== undefined) expect((decision as { count: number }).count).toBe(c.count);
    if (c.reason !== undefined) expect((decision as { reason: string }).reason).toBe(c.reason);
  });

  it('learns the ratio of compressed to estimated bytes and keeps it across bodies', () => {
    const search = new BodyFitSearch({ limit: LIMIT, initialRatio: 0.5 });
    expect(search.estimate(1_000)).toBe(500);
    search.started();
    search.measured(100, 4_000, body(1_000), { rows: 100, ending: false });
    expect(search.estimate(1_000)).toBe(250);
    search.reset();
    expect(search.estimate(1_000)).toBe(250);
    expect(search.best).toBeUndefined();
    expect(search.estimatedFor(250)).toBe(1_000);
  });

  it('a wait is forgotten when the input ends or a new body starts', () => {
    const search = new BodyFitSearch({ limit: LIMIT });
    search.started();
    search.measured(100, 1_000, body(800), { rows: 110, ending: false });
    expect(search.waitingFor).toBe(122);
    search.ended();
    expect(search.waitingFor).toBeUndefined();
  });
});
