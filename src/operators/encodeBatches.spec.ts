import { describe, expect, it } from 'vitest';
import type { RowBatch } from '../domain/batch.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { encodeBatches, type EncodeBatchesConfig } from './encodeBatches.ts';
import { newTestScheduler, row } from './testing.ts';

/** Stand-in encoding: one byte per row, the url's length, so sizes are easy to reason about. */
const encode = (rows: readonly HttpLogRow[]): Uint8Array => Uint8Array.from(rows.map((r) => r.url.length));
const batch = (urls: string[], offsets: Array<[number, number]>): RowBatch => ({ rows: urls.map((u) => row(u)), offsets: new Map(offsets), reason: 'size' });

function config(overrides: Partial<EncodeBatchesConfig>, cold: (marbles: string, values?: Record<string, Uint8Array>) => import('rxjs').Observable<Uint8Array>): EncodeBatchesConfig {
  let token = 0;
  return {
    encode,
    format: 'Native',
    // "Compression" takes two frames and keeps the bytes as they are.
    compress: (body) => cold('--(b|)', { b: body }),
    codec: 'none',
    maxBodyBytes: 4,
    newToken: () => `t${++token}`,
    ...overrides,
  };
}

/** Every `row()` has the same timestamp: oldest and newest are it. */
const ET = [1_700_000_000, 1_700_000_000];

describe('encodeBatches', () => {
  it('tells each part the oldest and newest record timestamps it holds', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      const rows = [30, 10, 20, 50].map((t) => ({ ...row('/x'), timestamp: t }));
      const source = cold('a|', { a: { rows, offsets: new Map([[0, 3]]), reason: 'size' } satisfies RowBatch });
      // 4 rows → 4 bytes: fits in one body.
      expectObservable(source.pipe(encodeBatches(config({}, cold)))).toBe('--(x|)', {
        x: { token: 't1', body: Uint8Array.of(2, 2, 2, 2), format: 'Native', codec: 'none', rowCount: 4, uncompressedBytes: 4, eventTime: [10, 50], sealReason: 'size', offsets: new Map([[0, 3]]) },
      });
    });
  });

  it('encodes and compresses each batch in order, off the caller (async compress)', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-b|', { a: batch(['/1', '/2'], [[0, 5]]), b: batch(['/3'], [[0, 6]]) });
      expectObservable(source.pipe(encodeBatches(config({}, cold)))).toBe('---x-(y|)', {
        x: { token: 't1', body: Uint8Array.of(2, 2), format: 'Native', codec: 'none', rowCount: 2, uncompressedBytes: 2, eventTime: ET, sealReason: 'size', offsets: new Map([[0, 5]]) },
        y: { token: 't2', body: Uint8Array.of(2), format: 'Native', codec: 'none', rowCount: 1, uncompressedBytes: 1, eventTime: ET, sealReason: 'size', offsets: new Map([[0, 6]]) },
      });
      expectSubscriptions(source.subscriptions).toBe('^---!');
    });
  });

  it('splits a body over the limit in halves; only the last part carries the offsets', () => {
    const oversize: number[] = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a|', { a: batch(['/a', '/b', '/c', '/d', '/e', '/f'], [[1, 9]]) });
      const result = source.pipe(encodeBatches(config({ onOversize: (rows) => oversize.push(rows) }, cold)));
      // 6 rows → 6 bytes > 4: compress once (2 frames), then each half of 3 (2 frames each, in turn).
      expectObservable(result).toBe('------(xy|)', {
        x: { token: 't1', body: Uint8Array.of(2, 2, 2), format: 'Native', codec: 'none', rowCount: 3, uncompressedBytes: 3, eventTime: ET, sealReason: 'size', offsets: new Map() },
        y: { token: 't2', body: Uint8Array.of(2, 2, 2), format: 'Native', codec: 'none', rowCount: 3, uncompressedBytes: 3, eventTime: ET, sealReason: 'size', offsets: new Map([[1, 9]]) },
      });
    });
    expect(oversize).toEqual([6]);
  });

  it('with row offsets, each part of a split claims its own rows, the last part the rest of the span', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      const withOffsets: RowBatch = {
        ...batch(['/a', '/b', '/c', '/d', '/e', '/f'], [[0, 30], [1, 9]]),
        rowOffsets: { partitions: [0, 1, 0, 0, 1, 0], offsets: [10, 5, 11, 12, 6, 20] },
      };
      const result = cold('a|', { a: withOffsets }).pipe(encodeBatches(config({}, cold)));
      expectObservable(result).toBe('------(xy|)', {
        x: { token: 't1', body: Uint8Array.of(2, 2, 2), format: 'Native', codec: 'none', rowCount: 3, uncompressedBytes: 3, eventTime: ET, sealReason: 'size', offsets: new Map([[0, 11], [1, 5]]) },
        y: { token: 't2', body: Uint8Array.of(2, 2, 2), format: 'Native', codec: 'none', rowCount: 3, uncompressedBytes: 3, eventTime: ET, sealReason: 'size', offsets: new Map([[0, 30], [1, 9]]) },
      });
    });
  });

  it('a batch sealed with its body (prepared) is sent as it is, without compressing again', () => {
    let compressions = 0;
    newTestScheduler().run(({ cold, expectObservable }) => {
      const prepared: RowBatch = { ...batch(['/a', '/b', '/c'], [[0, 7]]), prepared: { body: Uint8Array.of(9, 9), uncompressedBytes: 6 } };
      // A prepared body over the limit is not trusted: it is encoded again (and split).
      const tooBig: RowBatch = { ...batch(['/d', '/e'], [[0, 9]]), prepared: { body: new Uint8Array(5), uncompressedBytes: 5 } };
      const compress = (body: Uint8Array) => {
        compressions++;
        return cold('--(b|)', { b: body });
      };
      const result = cold('a-b|', { a: prepared, b: tooBig }).pipe(encodeBatches(config({ compress }, cold)));
      expectObservable(result).toBe('a---(y|)', {
        a: { token: 't1', body: Uint8Array.of(9, 9), format: 'Native', codec: 'none', rowCount: 3, uncompressedBytes: 6, eventTime: ET, sealReason: 'size', offsets: new Map([[0, 7]]) },
        y: { token: 't2', body: Uint8Array.of(2, 2), format: 'Native', codec: 'none', rowCount: 2, uncompressedBytes: 2, eventTime: ET, sealReason: 'size', offsets: new Map([[0, 9]]) },
      });
    });
    expect(compressions).toBe(1);
  });

  it('a batch with no rows becomes an empty sealed batch at once, keeping its offsets', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a|', { a: batch([], [[2, 4]]) });
      expectObservable(source.pipe(encodeBatches(config({}, cold)))).toBe('a|', {
        a: { token: 't1', body: new Uint8Array(0), format: 'Native', codec: 'none', rowCount: 0, uncompressedBytes: 0, offsets: new Map([[2, 4]]) },
      });
    });
  });

  it('a single row over the limit is an error, never a body over the limit', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a|', { a: batch(['/a-very-long-url'], [[0, 1]]) });
      const result = source.pipe(encodeBatches(config({ encode: (rows) => new Uint8Array(rows.length * 10) }, cold)));
      expectObservable(result).toBe('--#', undefined, new RangeError("one row compresses to 10 bytes, over the proxy's body limit of 4"));
    });
  });

  it('a failing compression errors the stream; early unsubscribe tears down', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a|', { a: batch(['/1'], []) });
      expectObservable(source.pipe(encodeBatches(config({ compress: () => cold('-#') }, cold)))).toBe('-#');
      const endless = cold<RowBatch>('-');
      expectObservable(endless.pipe(encodeBatches(config({}, cold))), '^-!').toBe('-');
      expectSubscriptions(endless.subscriptions).toBe('^-!');
    });
  });
});
