import { map, of } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { OffsetChunk, SourceMessage } from '../domain/batch.ts';
import type { DecodedRecord } from '../domain/httpLogRow.ts';
import { DecodeError, InvalidTextError } from '../errors.ts';
import { decodeRecords } from './decodeRecords.ts';
import { newTestScheduler } from './testing.ts';

/** A stand-in decoder: a value's first byte is the status, 0 means undecodable. */
const decode = (value: Uint8Array): DecodedRecord => {
  if (value[0] === 0) throw new DecodeError('bad');
  return { timestamp: 1, resourceId: 1n, bytesSent: 1n, requestTimeMilli: 1n, responseStatus: value[0]!, cacheStatus: 'HIT', method: 'GET', rawRemoteAddr: '1.2.3.4', url: '/' };
};
const message = (offset: number, first: number | null): SourceMessage => ({ partition: 3, offset, value: first === null ? null : Uint8Array.of(first) });
const chunk = (items: SourceMessage[]): OffsetChunk<SourceMessage> => ({ partition: 3, items, lastOffset: items.at(-1)?.offset ?? 0 });

describe('decodeRecords', () => {
  it('decodes every message, keeps the offset span, and lists the ones that cannot be rows with why', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const bad = message(11, 0);
      const tombstone = message(13, null);
      const a10 = message(10, 200);
      const a12 = message(12, 404);
      const source = cold('-a-b-|', { a: chunk([a10, bad, a12]), b: chunk([tombstone]) });
      expectObservable(source.pipe(decodeRecords({ decode }))).toBe('-x-y-|', {
        x: { partition: 3, lastOffset: 12, items: [decode(Uint8Array.of(200)), decode(Uint8Array.of(404))], itemOffsets: [10, 12], sources: [a10, a12], rejected: [{ message: bad, error: new DecodeError('bad') }] },
        y: { partition: 3, lastOffset: 13, items: [], itemOffsets: [], sources: [], rejected: [{ message: tombstone, error: new DecodeError('the message has no value (a tombstone)') }] },
      });
      expectSubscriptions(source.subscriptions).toBe('^----!');
    });
  });

  it('lists a record that validate refuses as rejected, with the validator\'s error', () => {
    const invalid = new InvalidTextError('method', 'method must be letters');
    newTestScheduler().run(({ cold, expectObservable }) => {
      const ok = message(20, 200);
      const refused = message(21, 201);
      const validate = (record: DecodedRecord): void => {
        if (record.responseStatus === 201) throw invalid;
      };
      expectObservable(cold('-a|', { a: chunk([ok, refused]) }).pipe(decodeRecords({ decode, validate }))).toBe('-x|', {
        x: { partition: 3, lastOffset: 21, items: [decode(Uint8Array.of(200))], itemOffsets: [20], sources: [ok], rejected: [{ message: refused, error: invalid }] },
      });
    });
    expect(invalid.code).toBe('invalid_text');
  });

  it('wraps a non-AnonymizerError from the decoder as a DecodeError', () => {
    const seen: unknown[] = [];
    newTestScheduler().run(({ cold }) => {
      cold('-a|', { a: chunk([message(1, 1)]) })
        .pipe(decodeRecords({ decode: () => { throw new TypeError('boom'); } }))
        .subscribe((out) => seen.push(...out.rejected.map((r) => r.error)));
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(DecodeError);
    expect((seen[0] as DecodeError).code).toBe('ANON_DECODE');
  });

  it('passes errors and completion through, and unsubscribes early', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const failing = cold<OffsetChunk<SourceMessage>>('--#');
      expectObservable(failing.pipe(decodeRecords({ decode }))).toBe('--#');
      const endless = cold<OffsetChunk<SourceMessage>>('-');
      expectObservable(endless.pipe(decodeRecords({ decode })), '^--!').toBe('-');
      expectSubscriptions(endless.subscriptions).toBe('^--!');
    });
  });

  it('with sliceMs, a chunk that takes too long comes out in consecutive slices, each claiming up to its last message', () => {
    let clock = 0;
    const messages = Array.from({ length: 150 }, (_, i) => message(100 + i, 1 + (i % 200)));
    const big: OffsetChunk<SourceMessage> = { partition: 3, items: messages, lastOffset: 260 };
    const scheduler = newTestScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      // The clock moves one ms per reading (one every 16 messages), so every 64 messages the 4 ms slice is over.
      const op = decodeRecords({ decode, sliceMs: 4, now: () => clock++, scheduler });
      const source = cold('-a------|', { a: big });
      const endless = cold('-a-', { a: big });
      expectObservable(source.pipe(op, map((chunk) => ({ lastOffset: chunk.lastOffset, items: chunk.items.length })))).toBe('-(xyz)--|', {
        x: { lastOffset: 163, items: 64 },
        y: { lastOffset: 227, items: 64 },
        z: { lastOffset: 260, items: 22 },
      });
      expectSubscriptions(source.subscriptions).toBe('^-------!');
      // Unsubscribing tears down the pending slice too.
      expectObservable(endless.pipe(op, map((chunk) => chunk.lastOffset)), '^-!').toBe('-(xyz)', { x: 163, y: 227, z: 260 });
      expectSubscriptions(endless.subscriptions).toBe('^-!');
    });
  });

  it('slices through the real event loop: other macrotasks run between slices, offsets stay consecutive', async () => {
    const slow = (value: Uint8Array): DecodedRecord => {
      const until = performance.now() + 0.05;
      while (performance.now() < until) {
        // a decode that takes 50 µs
      }
      return decode(value);
    };
    const messages = Array.from({ length: 400 }, (_, i) => message(i, i % 7 === 0 ? 0 : 200));
    const out: Array<{ lastOffset: number; items: number; rejected: number; tick: number }> = [];
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    await new Promise<void>((resolve, reject) => {
      of({ partition: 3, items: messages, lastOffset: 405 } as OffsetChunk<SourceMessage>)
        .pipe(decodeRecords({ decode: slow, sliceMs: 2 }))
        .subscribe({ next: (chunk) => out.push({ lastOffset: chunk.lastOffset, items: chunk.items.length, rejected: chunk.rejected.length, tick: ticks }), error: reject, complete: resolve });
    });
    clearInterval(ticker);
    expect(out.length).toBeGreaterThan(3);
    // Every message once, in order; the last slice claims the chunk's whole span.
    expect(out.reduce((sum, slice) => sum + slice.items + slice.rejected, 0)).toBe(400);
    expect(out.at(-1)!.lastOffset).toBe(405);
    for (let i = 1; i < out.length; i++) expect(out[i]!.lastOffset).toBeGreaterThan(out[i - 1]!.lastOffset);
    // A timer got to run while the chunk was being decoded.
    expect(out.at(-1)!.tick).toBeGreaterThan(out[0]!.tick);
  });
});
