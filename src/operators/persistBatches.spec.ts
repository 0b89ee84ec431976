import { describe, expect, it } from 'vitest';
import type { SealedBatch } from '../domain/batch.ts';
import { persistBatches } from './persistBatches.ts';
import { newTestScheduler, sealed } from './testing.ts';

const a = sealed('a', 2, [[0, 5]]);
const b = sealed('b', 1, [[1, 7]]);

describe('persistBatches', () => {
  it('emits each batch, in order, only once its write is done, without its body', () => {
    const writes: string[] = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b-----|', { a, b });
      const write = (batch: SealedBatch) => {
        writes.push(batch.token);
        return cold('--(x|)', { x: 'file' });
      };
      expectObservable(source.pipe(persistBatches({ write }))).toBe('---A-B---|', {
        A: { token: 'a', rowCount: 2, offsets: new Map([[0, 5]]), stored: 'file' },
        B: { token: 'b', rowCount: 1, offsets: new Map([[1, 7]]), stored: 'file' },
      });
    });
    expect(writes).toEqual(['a', 'b']);
  });

  it('a write that completes without a value (nothing to store) still counts as done', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('a|', { a }).pipe(persistBatches({ write: () => cold<string>('-|') }))).toBe('-(A|)', { A: { token: 'a', rowCount: 2, offsets: new Map([[0, 5]]), stored: undefined } });
    });
  });

  it('a failed write errors the stream: nothing is committed for it', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-b-|', { a, b });
      expectObservable(source.pipe(persistBatches({ write: () => cold('-#') }))).toBe('--#');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  it('never, and early unsubscribe', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<SealedBatch>('-');
      expectObservable(source.pipe(persistBatches({ write: () => cold('|') })), '^-!').toBe('-');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });
});
