import { describe, expect, it } from 'vitest';
import { of } from 'rxjs';
import type { DecodedChunk, SourceMessage } from '../domain/batch.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { DecodeError, RowTooLargeError } from '../errors.ts';
import { rejectOversizedRows } from './rejectOversizedRows.ts';
import { newTestScheduler, row } from './testing.ts';

type Chunk = DecodedChunk<HttpLogRow> & { sources?: SourceMessage[] };

const source = (offset: number): SourceMessage => ({ partition: 1, offset, value: Uint8Array.of(offset) });
/** Rows whose URL length stands for their size: the bound is the length, the measured body half of it. */
const sized = (length: number): HttpLogRow => row('/'.padEnd(length, 'x'));
const chunkOf = (lengths: number[], first = 10): Chunk => ({
  partition: 1,
  lastOffset: first + lengths.length - 1,
  items: lengths.map(sized),
  itemOffsets: lengths.map((_, i) => first + i),
  sources: lengths.map((_, i) => source(first + i)),
  rejected: [],
});
const bound = (r: HttpLogRow): number => r.url.length;

describe('rejectOversizedRows', () => {
  it('passes chunks whose rows are all within the bound at once, without measuring, and drops sources', () => {
    let measured = 0;
    newTestScheduler().run(({ cold, expectObservable }) => {
      const op = rejectOversizedRows({ limit: 100, bound, measure: () => (measured++, of(0)) });
      const { sources: _s, ...plain } = chunkOf([10, 20]);
      expectObservable(cold('-a|', { a: chunkOf([10, 20]) }).pipe(op)).toBe('-a|', { a: plain });
    });
    expect(measured).toBe(0);
  });

  it('measures only the suspects, and lists the ones over the limit as row_too_large with their message', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      // 150: bound over 100, measured 75 (fits); 400: measured 200 (over); measuring takes 2 frames.
      const op = rejectOversizedRows({ limit: 100, bound, measure: (r) => cold('--(m|)', { m: r.url.length / 2 }) });
      const input = cold('-a-b|', { a: chunkOf([10]), b: chunkOf([10, 150, 400, 20], 20) });
      const { sources: _a, ...first } = chunkOf([10]);
      expectObservable(input.pipe(op)).toBe('-a-----(y|)', {
        a: first,
        y: {
          partition: 1,
          lastOffset: 23,
          items: [sized(10), sized(150), sized(20)],
          itemOffsets: [20, 21, 23],
          rejected: [{ message: source(22), error: new RowTooLargeError(200, 100) }],
        },
      });
      expectSubscriptions(input.subscriptions).toBe('^---!');
    });
  });

  it('keeps the rejected messages listed before it, and the error code is the x-dlq-reason row_too_large', () => {
    const seen: Chunk[] = [];
    const earlier = { message: source(9), error: new DecodeError('bad') };
    of({ ...chunkOf([500]), rejected: [earlier] })
      .pipe(rejectOversizedRows({ limit: 100, bound, measure: () => of(101) }))
      .subscribe((chunk) => seen.push(chunk as Chunk));
    expect(seen[0]!.items).toEqual([]);
    expect(seen[0]!.rejected.map((r) => r.error.code)).toEqual(['ANON_DECODE', 'row_too_large']);
  });

  it('without sources nothing can be dead-lettered: the chunk passes unmeasured', () => {
    const { sources: _s, ...bare } = chunkOf([500]);
    const seen: Chunk[] = [];
    of(bare as Chunk).pipe(rejectOversizedRows({ limit: 100, bound, measure: () => of(1_000) })).subscribe((chunk) => seen.push(chunk as Chunk));
    expect(seen).toEqual([bare]);
  });

  it('a failing measurement errors the stream; errors and completion pass; early unsubscribe tears down', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const failing = rejectOversizedRows({ limit: 100, bound, measure: () => cold('-#') });
      expectObservable(cold('a|', { a: chunkOf([500]) }).pipe(failing)).toBe('-#');
      const op = rejectOversizedRows({ limit: 100, bound, measure: () => of(1) });
      expectObservable(cold<Chunk>('--#').pipe(op)).toBe('--#');
      const endless = cold<Chunk>('-');
      expectObservable(endless.pipe(op), '^--!').toBe('-');
      expectSubscriptions(endless.subscriptions).toBe('^--!');
    });
  });

  it('a measure callback that throws reaches subscriber.error', () => {
    const errors: unknown[] = [];
    of(chunkOf([500]))
      .pipe(rejectOversizedRows({ limit: 100, bound, measure: () => { throw new TypeError('boom'); } }))
      .subscribe({ error: (error) => errors.push(error) });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TypeError);
  });
});
