import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import type { Observable } from 'rxjs';
import type { OffsetChunk, PreparedBody, RowBatch } from '../domain/batch.ts';
import { sealBatches } from './sealBatches.ts';

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

/** One chunk per letter: partition 0, one row (the letter), offset = its position in the alphabet. */
const chunk = (row: string, partition = 0): OffsetChunk<string> => ({ partition, items: [row], lastOffset: row.charCodeAt(0) - 97 });
const batch = (rows: string[], offsets: Array<[number, number]>, reason: RowBatch['reason']): RowBatch<string> => ({ rows, offsets: new Map(offsets), reason });
const chunks = { a: chunk('a'), b: chunk('b'), c: chunk('c'), d: chunk('d') };

describe('sealBatches', () => {
  it('seals on the size cap, on proxy-ready, and at the end of input', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-b-c---d-|', chunks);
      const ready = hot('  -------r-----');
      const expected = '   -----x-y---(z|)';
      expectObservable(source.pipe(sealBatches({ proxyReady$: ready, maxBytes: 2, sizeOf: () => 1 }))).toBe(expected, {
        x: batch(['a', 'b'], [[0, 1]], 'size'),
        y: batch(['c'], [[0, 2]], 'proxy-ready'),
        z: batch(['d'], [[0, 3]], 'end-of-input'),
      });
      expectSubscriptions(source.subscriptions).toBe('^----------!');
      expectSubscriptions(ready.subscriptions).toBe('^----------!');
    });
  });

  it('a proxy-ready signal with nothing open seals nothing', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const source = cold('----a-|', chunks);
      const ready = hot('  -r-r---');
      expectObservable(source.pipe(sealBatches({ proxyReady$: ready, maxBytes: 10, sizeOf: () => 1 }))).toBe('------(z|)', {
        z: batch(['a'], [[0, 0]], 'end-of-input'),
      });
    });
  });

  it('the size cap wins over a pending timer: a full batch goes at once', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-(abc)-|', chunks);
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), maxBytes: 1, sizeOf: () => 1 }))).toBe('-(xy)--(z|)', {
        x: batch(['a'], [[0, 0]], 'size'),
        y: batch(['b'], [[0, 1]], 'size'),
        z: batch(['c'], [[0, 2]], 'end-of-input'),
      });
    });
  });

  it('a chunk split by the cap gives its offset only to the batch that holds its last row', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const big: OffsetChunk<string> = { partition: 2, items: ['p', 'q', 'r'], lastOffset: 90 };
      const source = cold('-s-|', { s: big });
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), maxBytes: 2, sizeOf: () => 1 }))).toBe('-x-(y|)', {
        x: batch(['p', 'q'], [], 'size'),
        y: batch(['r'], [[2, 90]], 'end-of-input'),
      });
    });
  });

  it('with item offsets, each part of a split chunk claims exactly the rows it holds', () => {
    scheduler().run(({ cold, expectObservable }) => {
      // Offsets 11 and 13 were rejected (dead-lettered) before sealing.
      const big: OffsetChunk<string> = { partition: 2, items: ['p', 'q', 'r'], itemOffsets: [10, 12, 14], lastOffset: 15 };
      const source = cold('-s-|', { s: big });
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), maxBytes: 2, sizeOf: () => 1 }))).toBe('-x-(y|)', {
        x: { ...batch(['p', 'q'], [[2, 12]], 'size'), rowOffsets: { partitions: [2, 2], offsets: [10, 12] } },
        y: { ...batch(['r'], [[2, 15]], 'end-of-input'), rowOffsets: { partitions: [2], offsets: [14] } },
      });
    });
  });

  it('a chunk of nothing but rejected messages still carries its offsets to a batch', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const poison: OffsetChunk<string> = { partition: 1, items: [], lastOffset: 7 };
      const source = cold('-p---', { p: poison });
      const ready = hot('  ---r-');
      expectObservable(source.pipe(sealBatches({ proxyReady$: ready, maxBytes: 5, sizeOf: () => 1 }))).toBe('---y-', {
        y: batch([], [[1, 7]], 'proxy-ready'),
      });
    });
  });

  it('keeps the highest offset per partition across chunks', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b-|', { a: chunk('a', 0), b: { partition: 1, items: ['x'], lastOffset: 9 } });
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), maxBytes: 9, sizeOf: () => 1 }))).toBe('-----(z|)', {
        z: batch(['a', 'x'], [[0, 0], [1, 9]], 'end-of-input'),
      });
    });
  });

  it('seals at maxRows whatever the size', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-(abc)-|', chunks);
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), maxBytes: 100, sizeOf: () => 1, maxRows: 2 }))).toBe('-x-----(z|)', {
        x: batch(['a', 'b'], [[0, 1]], 'size'),
        z: batch(['c'], [[0, 2]], 'end-of-input'),
      });
    });
  });

  it('reads a function cap again for every batch', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const caps = [1, 3];
      const source = cold('-(abcd)-|', chunks);
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), maxBytes: () => caps.shift() ?? 3, sizeOf: () => 1 }))).toBe('-x------(z|)', {
        x: batch(['a'], [[0, 0]], 'size'),
        z: batch(['b', 'c', 'd'], [[0, 3]], 'end-of-input'),
      });
    });
  });

  it('passes an error on and drops the open batch (its offsets were never committed)', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-#', chunks);
      const ready = cold(' ----');
      expectObservable(source.pipe(sealBatches({ proxyReady$: ready, maxBytes: 9, sizeOf: () => 1 }))).toBe('---#');
      expectSubscriptions(ready.subscriptions).toBe('^--!');
    });
  });

  it('an error from proxyReady$ errors the stream', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a----', chunks);
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('--#'), maxBytes: 9, sizeOf: () => 1 }))).toBe('--#');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  it('a source that never emits seals nothing and never completes', () => {
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold<OffsetChunk<string>>('-').pipe(sealBatches({ proxyReady$: cold('-r-r-'), maxBytes: 9, sizeOf: () => 1 }))).toBe('-');
    });
  });

  it('early unsubscribe tears down the source and the notifier', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-b-c-d-|', chunks);
      const ready = hot('  ---------');
      expectObservable(source.pipe(sealBatches({ proxyReady$: ready, maxBytes: 9, sizeOf: () => 1 })), '^---!').toBe('-----');
      expectSubscriptions(source.subscriptions).toBe('^---!');
      expectSubscriptions(ready.subscriptions).toBe('^---!');
    });
  });
});

describe('sealBatches and consumer generations', () => {
  it('a chunk of a new generation seals the open batch first: a batch never mixes generations', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b-c-|', {
        a: { partition: 0, items: ['a'], lastOffset: 0, generation: 1 },
        b: { partition: 1, items: ['b'], lastOffset: 0, generation: 2 },
        c: { partition: 1, items: ['c'], lastOffset: 1, generation: 2 },
      });
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), maxBytes: 5, sizeOf: () => 1 }))).toBe('---x---(y|)', {
        x: { rows: ['a'], offsets: new Map([[0, 0]]), reason: 'rebalance', generation: 1 },
        y: { rows: ['b', 'c'], offsets: new Map([[1, 1]]), reason: 'end-of-input', generation: 2 },
      });
    });
  });

  it('keeps where each row came from when the chunks say', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b-|', {
        a: { partition: 0, items: ['a', 'b'], itemOffsets: [4, 6], lastOffset: 7 },
        b: { partition: 2, items: ['c'], itemOffsets: [9], lastOffset: 9 },
      });
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), maxBytes: 2, sizeOf: () => 1 }))).toBe('---x-(y|)', {
        x: { rows: ['a', 'b'], offsets: new Map([[0, 7]]), reason: 'size', rowOffsets: { partitions: [0, 0], offsets: [4, 6] } },
        y: { rows: ['c'], offsets: new Map([[2, 9]]), reason: 'end-of-input', rowOffsets: { partitions: [2], offsets: [9] } },
      });
    });
  });
});

describe('sealBatches with fit (measure, then seal exactly what fits)', () => {
  /** A stand-in "compressed body" of `perRow` bytes a row, ready after `frames` frames. */
  const measuring = (cold: (m: string, v?: Record<string, unknown>) => Observable<unknown>, perRow: number, frames = 3) => (rows: readonly string[]) =>
    cold(`${'-'.repeat(frames)}(m|)`, { m: body(rows.length * perRow) }) as Observable<PreparedBody>;
  const body = (n: number): PreparedBody => ({ body: new Uint8Array(n), uncompressedBytes: n * 2 });
  const one = (row: string, offset: number): OffsetChunk<string> => ({ partition: 0, items: [row], itemOffsets: [offset], lastOffset: offset });
  const letters = Object.fromEntries('abcdefgh'.split('').map((l, i) => [l, one(l, i)]));
  const rowOffsets = (offsets: number[]) => ({ partitions: offsets.map(() => 0), offsets });

  it('a body measured over the limit is shrunk; the fitting prefix is sealed with its body, the rest stays open', () => {
    const measured: Array<[number, number, string]> = [];
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b-c-d----|', letters);
      const fit = { limit: 100, aim: 0.9, floor: 0.5, initialRatio: 30, measure: measuring(cold, 40), onMeasured: (r: number, b: number, v: string) => void measured.push([r, b, v]) };
      // c (frame 5): estimate 3 × 30 = 90 ≥ aim → measure 3 rows → 120 B at 8 → shrink to 2 → 80 B at 11: fits.
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), sizeOf: () => 1, fit }))).toBe('-----------x(y|)', {
        x: { rows: ['a', 'b'], offsets: new Map([[0, 1]]), reason: 'size', rowOffsets: rowOffsets([0, 1]), prepared: body(80) },
        y: { rows: ['c', 'd'], offsets: new Map([[0, 3]]), reason: 'end-of-input', rowOffsets: rowOffsets([2, 3]) },
      });
    });
    expect(measured).toEqual([[3, 120, 'shrink'], [2, 80, 'fits']]);
  });

  it('a body measured under the floor waits for the rows that should fill it, then measures again', () => {
    const measured: number[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b-c-d-e-f-g--|', letters);
      // 3 rows → 60 B (< 95): grow to ⌈3 × 90 / 60⌉ = 5 rows; e arrives at 9 → 100 B at 12: fits.
      const fit = { limit: 100, aim: 0.9, initialRatio: 30, measure: measuring(cold, 20), onMeasured: (r: number) => void measured.push(r) };
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), sizeOf: () => 1, fit }))).toBe('------------x---(y|)', {
        x: { rows: ['a', 'b', 'c', 'd', 'e'], offsets: new Map([[0, 4]]), reason: 'size', rowOffsets: rowOffsets([0, 1, 2, 3, 4]), prepared: body(100) },
        y: { rows: ['f', 'g'], offsets: new Map([[0, 6]]), reason: 'end-of-input', rowOffsets: rowOffsets([5, 6]) },
      });
    });
    expect(measured).toEqual([3, 5]);
  });

  it('the proxy turning ready during a measurement sends every open row, once they are measured', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const source = cold('-a-b-c-d------', letters);
      const ready = hot('  -------r------');
      // Measures 3 rows at 5 → 60 B at 8 (under the floor); the proxy is waiting and 4 rows
      // are open, too few to fill a body: the 4 are measured (80 B at 11) and sent, not the 3.
      const fit = { limit: 100, aim: 0.9, initialRatio: 30, measure: measuring(cold, 20) };
      expectObservable(source.pipe(sealBatches({ proxyReady$: ready, sizeOf: () => 1, fit }))).toBe('-----------x--', {
        x: { rows: ['a', 'b', 'c', 'd'], offsets: new Map([[0, 3]]), reason: 'proxy-ready', rowOffsets: rowOffsets([0, 1, 2, 3]), prepared: body(80) },
      });
    });
  });

  it('the proxy turning ready does not cut a body short while open rows can fill it', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const source = cold('-(abcdef)----', letters);
      const ready = hot('  ---r---------');
      // 6 rows open; 3 measure 60 B (under the floor) while the proxy turns ready: 5 rows are
      // measured next (100 B) and sent, not the 3.
      const fit = { limit: 100, aim: 0.9, initialRatio: 30, measure: measuring(cold, 20) };
      expectObservable(source.pipe(sealBatches({ proxyReady$: ready, sizeOf: () => 1, fit }))).toBe('-------x-----', {
        x: { rows: ['a', 'b', 'c', 'd', 'e'], offsets: new Map([[0, 4]]), reason: 'size', rowOffsets: rowOffsets([0, 1, 2, 3, 4]), prepared: body(100) },
      });
    });
  });

  describe('bytes that do not grow in proportion to rows', () => {
    const eight: OffsetChunk<string> = { partition: 0, items: 'abcdefgh'.split(''), itemOffsets: [...Array(8).keys()], lastOffset: 7 };
    /** 18 B a row, plus 15 B from the 6th row on: 5 rows make 90 B, 6 make 123 B. `noise` overrides some counts. */
    const stepped = (cold: (m: string, v?: Record<string, unknown>) => Observable<unknown>, noise: Record<number, number> = {}) => (rows: readonly string[]) =>
      cold('-(m|)', { m: body(noise[rows.length] ?? rows.length * 18 + (rows.length >= 6 ? 15 : 0)) }) as Observable<PreparedBody>;

    it('bracketed between adjacent counts, it tries their neighbours, and sends one that lands in the window', () => {
      const measured: number[] = [];
      scheduler().run(({ cold, expectObservable }) => {
        // 7 rows happen to compress to 97 B (a compressor's jump), inside [95, 100].
        const fit = { limit: 100, initialRatio: 18, measure: stepped(cold, { 7: 97 }), onMeasured: (r: number) => void measured.push(r) };
        expectObservable(cold('-x-------', { x: eight }).pipe(sealBatches({ proxyReady$: cold('-'), sizeOf: () => 1, fit }))).toBe('-----x---', {
          x: { rows: 'abcdefg'.split(''), offsets: new Map([[0, 6]]), reason: 'size', rowOffsets: rowOffsets([0, 1, 2, 3, 4, 5, 6]), prepared: body(97) },
        });
      });
      // 6 → 123 B (shrink, in proportion), 4 → 72 B, 5 (interpolated) → 90 B: 5 and 6 bracket
      // the window; 4 was tried, so 7 next.
      expect(measured).toEqual([6, 4, 5, 7]);
    });

    it('when no neighbour lands in the window either, it sends the fullest fitting body', () => {
      const measured: number[] = [];
      scheduler().run(({ cold, expectObservable }) => {
        const fit = { limit: 100, initialRatio: 18, measure: stepped(cold), onMeasured: (r: number) => void measured.push(r) };
        expectObservable(cold('-x--------', { x: eight }).pipe(sealBatches({ proxyReady$: cold('-'), sizeOf: () => 1, fit }))).toBe('--------x-', {
          x: { rows: 'abcde'.split(''), offsets: new Map([[0, 4]]), reason: 'size', rowOffsets: rowOffsets([0, 1, 2, 3, 4]), prepared: body(90) },
        });
      });
      // Neighbours 7, 3, 8, 2 (9 is more than the 8 open rows), then the 90 B body goes.
      expect(measured).toEqual([6, 4, 5, 7, 3, 8, 2]);
    });
  });

  it('gives up growing after maxAttempts and sends the fullest fitting body', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-(abcdefgh)------', letters);
      // 10 B a row, and a ratio of 30 assumed: measures 3 (30 B), then ⌈3 × 80 / 30⌉ = 8 (80 B), then stops.
      const fit = { limit: 100, aim: 0.8, initialRatio: 30, maxAttempts: 2, measure: measuring(cold, 10, 1) };
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), sizeOf: () => 1, fit }))).toBe('---x-------------', {
        x: { rows: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], offsets: new Map([[0, 7]]), reason: 'size', rowOffsets: rowOffsets([0, 1, 2, 3, 4, 5, 6, 7]), prepared: body(80) },
      });
    });
  });

  it('at the end of input, rows open past one body are fitted into full bodies before the rest is sealed', () => {
    const measured: number[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const twelve: OffsetChunk<string> = { partition: 0, items: 'abcdefghijkl'.split(''), itemOffsets: [...Array(12).keys()], lastOffset: 11 };
      // 20 B a row: 5 rows make 100 B, a full body. The input ends while the first body is measured.
      const fit = { limit: 100, aim: 0.9, initialRatio: 20, measure: measuring(cold, 20, 1), onMeasured: (r: number) => void measured.push(r) };
      expectObservable(cold('-x|', { x: twelve }).pipe(sealBatches({ proxyReady$: cold('-'), sizeOf: () => 1, fit }))).toBe('--x(yz|)', {
        x: { rows: 'abcde'.split(''), offsets: new Map([[0, 4]]), reason: 'size', rowOffsets: rowOffsets([0, 1, 2, 3, 4]), prepared: body(100) },
        y: { rows: 'fghij'.split(''), offsets: new Map([[0, 9]]), reason: 'size', rowOffsets: rowOffsets([5, 6, 7, 8, 9]), prepared: body(100) },
        z: { rows: ['k', 'l'], offsets: new Map([[0, 11]]), reason: 'end-of-input', rowOffsets: rowOffsets([10, 11]) },
      });
    });
    expect(measured).toEqual([5, 5]);
  });

  it('a single row over the limit is an error (it could never be sent)', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a----', letters);
      const fit = { limit: 100, initialRatio: 200, measure: measuring(cold, 150, 1) };
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), sizeOf: () => 1, fit }))).toBe(
        '--#',
        undefined,
        new RangeError("one row compresses to 150 bytes, over the proxy's body limit of 100"),
      );
    });
  });

  it('a rebalance during a measurement seals the old generation at once and drops the measurement', () => {
    const measured: number[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const source = cold('-(ab)-c----|', {
        a: { ...one('a', 0), generation: 1 },
        b: { ...one('b', 1), generation: 1 },
        c: { ...one('c', 2), generation: 2 },
      });
      const fit = { limit: 100, aim: 0.9, initialRatio: 45, measure: measuring(cold, 40, 6), onMeasured: (r: number) => void measured.push(r) };
      expectObservable(source.pipe(sealBatches({ proxyReady$: cold('-'), sizeOf: () => 1, fit }))).toBe('------x----(y|)', {
        x: { rows: ['a', 'b'], offsets: new Map([[0, 1]]), reason: 'rebalance', generation: 1, rowOffsets: rowOffsets([0, 1]) },
        y: { rows: ['c'], offsets: new Map([[0, 2]]), reason: 'end-of-input', generation: 2, rowOffsets: rowOffsets([2]) },
      });
    });
    expect(measured).toEqual([]);
  });
});

