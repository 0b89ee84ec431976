import { describe, expect, it } from 'vitest';
import type { OffsetChunk, SourceMessage } from '../domain/batch.ts';
import type { DecodedRecord } from '../domain/httpLogRow.ts';
import { DecodeError, type AnonymizerError } from '../errors.ts';
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
  it('decodes every message, keeps the offset span, and reports the ones that cannot be rows', () => {
    const rejected: Array<[number, string]> = [];
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-b-|', { a: chunk([message(10, 200), message(11, 0), message(12, 404)]), b: chunk([message(13, null)]) });
      const result = source.pipe(decodeRecords({ decode, onRejected: (m, e: AnonymizerError) => rejected.push([m.offset, e.code]) }));
      expectObservable(result).toBe('-x-y-|', {
        x: { partition: 3, lastOffset: 12, items: [decode(Uint8Array.of(200)), decode(Uint8Array.of(404))] },
        y: { partition: 3, lastOffset: 13, items: [] },
      });
      expectSubscriptions(source.subscriptions).toBe('^----!');
    });
    // The side channel saw exactly the two bad messages, with their codes.
    expect(rejected).toEqual([[11, 'ANON_DECODE'], [13, 'ANON_DECODE']]);
  });

  it('wraps a non-AnonymizerError from the decoder as a DecodeError', () => {
    const seen: AnonymizerError[] = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a|', { a: chunk([message(1, 1)]) });
      expectObservable(source.pipe(decodeRecords({ decode: () => { throw new TypeError('boom'); }, onRejected: (_m, e) => seen.push(e) }))).toBe('-x|', {
        x: { partition: 3, lastOffset: 1, items: [] },
      });
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(DecodeError);
  });

  it('passes errors and completion through, and unsubscribes early', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const failing = cold<OffsetChunk<SourceMessage>>('--#');
      expectObservable(failing.pipe(decodeRecords({ decode, onRejected: () => {} }))).toBe('--#');
      const endless = cold<OffsetChunk<SourceMessage>>('-');
      expectObservable(endless.pipe(decodeRecords({ decode, onRejected: () => {} })), '^--!').toBe('-');
      expectSubscriptions(endless.subscriptions).toBe('^--!');
    });
  });
});
