import { describe, expect, it } from 'vitest';
import type { DecodedChunk, RejectedMessage } from '../domain/batch.ts';
import { DecodeError } from '../errors.ts';
import { deadLetter } from './deadLetter.ts';
import { newTestScheduler } from './testing.ts';

const reject = (offset: number): RejectedMessage => ({ message: { partition: 0, offset, value: Uint8Array.of(offset) }, error: new DecodeError('bad') });
const chunk = (lastOffset: number, rejected: RejectedMessage[] = []): DecodedChunk<string> => ({ partition: 0, items: ['row'], lastOffset, rejected });
const a = chunk(1);
const b = chunk(3, [reject(2), reject(3)]);
const c = chunk(4);

describe('deadLetter', () => {
  it('holds a chunk until its rejected messages are kept, and keeps the order', () => {
    const sent: number[][] = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b---c-|', { a, b, c });
      const send = (rejected: readonly RejectedMessage[]) => {
        sent.push(rejected.map((r) => r.message.offset));
        return cold('--|');
      };
      expectObservable(source.pipe(deadLetter({ send }))).toBe('-a---b-c-|', { a, b, c });
    });
    expect(sent).toEqual([[2, 3]]);
  });

  it('a failure to keep them errors the stream: their offsets are never committed', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-b-c-|', { b, c });
      expectObservable(source.pipe(deadLetter({ send: () => cold('-#') }))).toBe('--#');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  it('never, and early unsubscribe', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<DecodedChunk<string>>('-');
      expectObservable(source.pipe(deadLetter({ send: () => cold('|') })), '^-!').toBe('-');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });
});
