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
});
