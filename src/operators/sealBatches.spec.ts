import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import type { OffsetChunk, RowBatch } from '../domain/batch.ts';
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
