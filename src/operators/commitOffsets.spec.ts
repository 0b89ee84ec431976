import { describe, expect, it } from 'vitest';
import type { PartitionOffsets, SealedBatch } from '../domain/batch.ts';
import { commitOffsets } from './commitOffsets.ts';
import { newTestScheduler, sealed } from './testing.ts';

describe('commitOffsets', () => {
  it('commits each batch in order and emits it once its commit is done', () => {
    const commits: Array<Array<[number, number]>> = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a-b|', { a: sealed('a', 1, [[0, 4]]), b: sealed('b', 1, [[0, 9], [1, 2]]) });
      const commit = (offsets: PartitionOffsets) => {
        commits.push([...offsets]);
        return cold('---|');
      };
      // b arrives while a's commit is running; its commit starts only after a's ends.
      expectObservable(source.pipe(commitOffsets<SealedBatch>({ commit }))).toBe('----a--(b|)', { a: sealed('a', 1, [[0, 4]]), b: sealed('b', 1, [[0, 9], [1, 2]]) });
    });
    expect(commits).toEqual([[[0, 4]], [[0, 9], [1, 2]]]);
  });

  it('a batch with no offsets (a non-final part of a split) passes without a commit', () => {
    let calls = 0;
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-a|', { a: sealed('a', 3) });
      expectObservable(source.pipe(commitOffsets<SealedBatch>({ commit: () => { calls++; return cold('|'); } }))).toBe('-a|', { a: sealed('a', 3) });
    });
    expect(calls).toBe(0);
  });

  it('a failed commit errors the stream: nothing after it is committed', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-b|', { a: sealed('a', 1, [[0, 1]]), b: sealed('b', 1, [[0, 2]]) });
      expectObservable(source.pipe(commitOffsets<SealedBatch>({ commit: () => cold('-#') }))).toBe('--#');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  it('never completing source, early unsubscribe', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<SealedBatch>('-');
      expectObservable(source.pipe(commitOffsets<SealedBatch>({ commit: () => cold('|') })), '^--!').toBe('-');
      expectSubscriptions(source.subscriptions).toBe('^--!');
    });
  });
});
