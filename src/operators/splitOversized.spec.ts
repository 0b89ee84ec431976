import { describe, expect, it } from 'vitest';
import { map, tap, type Observable } from 'rxjs';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { splitOversized, type OversizedBatch, type SplitOversizedConfig, type SplitParts } from './splitOversized.ts';
import { newTestScheduler, row } from './testing.ts';

/** Stand-in encoding: the urls, back to back, so a row's size is its url's length. */
const encode = (rows: readonly HttpLogRow[]): Uint8Array => new TextEncoder().encode(rows.map((r) => r.url).join(''));
const oversized = (token: string, urls: string[], bodyBytes: number): OversizedBatch => ({ token, rows: urls.map((u) => row(u)), bodyBytes, reason: 'size' });

/** "Compression" that takes one frame and keeps the bytes as they are. */
function config(cold: (marbles: string, values?: Record<string, Uint8Array>) => Observable<Uint8Array>, overrides: Partial<SplitOversizedConfig> = {}): SplitOversizedConfig {
  return { encode, format: 'Native', compress: (body) => cold('-(b|)', { b: body }), codec: 'none', ...overrides };
}

/** What the parts hold: token, row urls, body size. */
const summary = (split: SplitParts) => ({ token: split.batch.token, parts: split.parts.map((p) => ({ token: p.token, rows: p.rowCount, bytes: p.body.byteLength, offsets: p.offsets.size })) });

describe('splitOversized', () => {
  it('splits a refused body into parts of at most half its size, tokens derived from its own, every row once and in order', () => {
    const urls = ['/1', '/2', '/3', '/4', '/5', '/6'];
    const results: SplitParts[] = [];
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      // Refused at 12 bytes: parts of ≤ 6.
      const source = cold('-a|', { a: oversized('t', urls, 12) });
      const result$ = source.pipe(
        splitOversized(config(cold)),
        tap((split) => results.push(split)),
        map(summary),
      );
      // The whole batch is compressed once (12 > 6), then each half of 3 rows, one frame each.
      expectObservable(result$).toBe('----(x|)', { x: { token: 't', parts: [{ token: 't-0', rows: 3, bytes: 6, offsets: 0 }, { token: 't-1', rows: 3, bytes: 6, offsets: 0 }] } });
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
    expect(new TextDecoder().decode(Buffer.concat(results[0]!.parts.map((part) => part.body)))).toBe(urls.join(''));
  });

  it('splits again a part still over half the refused size (the split is recursive, as encodeBatches is)', () => {
    const results: SplitParts[] = [];
    newTestScheduler().run(({ cold }) => {
      // Refused at 8 bytes: parts must be ≤ 4, so 5 rows of 2 → 3 + 2 → 2 + 1 + 2.
      cold('a|', { a: oversized('u', ['/a', '/b', '/c', '/d', '/e'], 8) }).pipe(splitOversized(config(cold))).subscribe((split) => results.push(split));
    });
    expect(results.map(summary)).toEqual([{ token: 'u', parts: [{ token: 'u-0', rows: 2, bytes: 4, offsets: 0 }, { token: 'u-1', rows: 1, bytes: 2, offsets: 0 }, { token: 'u-2', rows: 2, bytes: 4, offsets: 0 }] }]);
  });

  it('gives no parts for what cannot get smaller: one row, or a row over half the refused size', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      // b's second row encodes to 6 bytes, over half of 8.
      const source = cold('a-b|', { a: oversized('one', ['/only'], 9), b: oversized('big', ['/x', '/long/', '/y'], 8) });
      // b: compressed whole at 3, its first half at 4, then /x at 5 and /long/ at 6, which cannot fit.
      expectObservable(source.pipe(splitOversized(config(cold)))).toBe('a-----(b|)', {
        a: { batch: oversized('one', ['/only'], 9), parts: [] },
        b: { batch: oversized('big', ['/x', '/long/', '/y'], 8), parts: [] },
      });
    });
  });

  it('errors when compression fails, and completes and stays silent with its source', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      const failing = config(cold, { compress: () => cold<Uint8Array>('-#') });
      expectObservable(cold('a|', { a: oversized('t', ['/1', '/2'], 2) }).pipe(splitOversized(failing))).toBe('-#');
      expectObservable(cold<OversizedBatch>('|').pipe(splitOversized(config(cold)))).toBe('|');
      expectObservable(cold<OversizedBatch>('-').pipe(splitOversized(config(cold)))).toBe('-');
    });
  });

  it('unsubscribes from its source and from a compression in flight when unsubscribed early', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const compression = cold<Uint8Array>('---(b|)', { b: Uint8Array.of(9, 9) });
      const source = cold('a-|', { a: oversized('t', ['/1', '/2'], 2) });
      expectObservable(source.pipe(splitOversized(config(cold, { compress: () => compression }))), '^-!').toBe('--');
      expectSubscriptions(source.subscriptions).toBe('^-!');
      expectSubscriptions(compression.subscriptions).toBe('^-!');
    });
  });
});
