import { describe, expect, it } from 'vitest';
import type { SealedBatch } from '../domain/batch.ts';
import { commitOffsets } from './commitOffsets.ts';
import { newTestScheduler, sealed } from './testing.ts';

const a = sealed('a', 1, [[0, 4]]);
const b = sealed('b', 1, [[0, 9], [1, 2]]);

describe('commitOffsets', () => {
  it('commits each batch in order and emits it with the outcome once the commit is settled', () => {
    const commits: Array<Array<[number, number]>> = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b|', { a, b });
      const commit = (batch: SealedBatch) => {
        commits.push([...batch.offsets]);
        return cold('---(x|)', { x: batch.token === 'a' });
      };
      // b arrives while a's commit is running; its commit starts only after a's ends.
      expectObservable(source.pipe(commitOffsets({ commit }))).toBe('----A--(B|)', { A: { ...a, committed: true }, B: { ...b, committed: false } });
    });
    expect(commits).toEqual([[[0, 4]], [[0, 9], [1, 2]]]);
  });

  it('a batch with no offsets (a non-final part of a split) passes as committed, without a commit', () => {
    let calls = 0;
    newTestScheduler().run(({ cold, expectObservable }) => {
      const part = sealed('part', 3);
      const commit = () => {
        calls++;
        return cold('(x|)', { x: true });
      };
      expectObservable(cold('-p|', { p: part }).pipe(commitOffsets({ commit }))).toBe('-p|', { p: { ...part, committed: true } });
    });
    expect(calls).toBe(0);
  });

  it('a commit that errors errors the stream: nothing after it is committed', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-b|', { a, b });
      expectObservable(source.pipe(commitOffsets({ commit: () => cold<boolean>('-#') }))).toBe('--#');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  it('never completing source, early unsubscribe', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<SealedBatch>('-');
      expectObservable(source.pipe(commitOffsets({ commit: () => cold('(x|)', { x: true }) })), '^--!').toBe('-');
      expectSubscriptions(source.subscriptions).toBe('^--!');
    });
  });
});
