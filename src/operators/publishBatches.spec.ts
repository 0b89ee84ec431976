import { describe, expect, it } from 'vitest';
import { publishBatches } from './publishBatches.ts';
import { newTestScheduler } from './testing.ts';

const a = { token: 'a', committed: true };
const b = { token: 'b', committed: false };

describe('publishBatches', () => {
  it('publishes committed batches and discards refused ones, in order', () => {
    const calls: string[] = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b-|', { a, b });
      const step = (label: string) => (batch: typeof a) => {
        calls.push(`${label}:${batch.token}`);
        return cold('-|');
      };
      expectObservable(source.pipe(publishBatches<typeof a>({ publish: step('publish'), discard: step('discard') }))).toBe('--a-b|', { a, b });
    });
    expect(calls).toEqual(['publish:a', 'discard:b']);
  });

  it('a failed publish errors the stream', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-a-|', { a });
      expectObservable(source.pipe(publishBatches({ publish: () => cold('#'), discard: () => cold('|') }))).toBe('-#');
      expectSubscriptions(source.subscriptions).toBe('^!');
    });
  });

  it('never, and early unsubscribe', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<typeof a>('-');
      expectObservable(source.pipe(publishBatches({ publish: () => cold('|'), discard: () => cold('|') })), '^-!').toBe('-');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });
});
