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

describe('persistBatches with retry (a full disk)', () => {
  const diskFull = Object.assign(new Error('ENOSPC'), { code: 'ANON_SPOOL_DISK' });
  const when = (error: unknown) => (error as { code?: string }).code === 'ANON_SPOOL_DISK';
  const A = { token: 'a', rowCount: 2, offsets: new Map([[0, 5]]), stored: 'file' };
  const B = { token: 'b', rowCount: 1, offsets: new Map([[1, 7]]), stored: 'file' };

  it('retries the same batch after the configured delay until it is written; nothing behind it moves meanwhile', () => {
    const attempts: string[] = [];
    const retries: Array<[number, string]> = [];
    const recovered: Array<[number, string]> = [];
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-ab------------|', { a, b });
      let failuresLeft = 2;
      const write = (batch: SealedBatch) => {
        attempts.push(batch.token);
        return batch.token === 'a' && failuresLeft-- > 0 ? cold<string>('-#', undefined, diskFull) : cold('-(x|)', { x: 'file' });
      };
      // a: fails at 2, waits 3, fails at 6, waits 3, written at 10; b follows at 11.
      const result = source.pipe(persistBatches({ write, retry: { when, delayMs: 3, onRetry: (_e, n, batch) => retries.push([n, batch.token]), onRecovered: (n, batch) => recovered.push([n, batch.token]) } }));
      expectObservable(result).toBe('----------AB---|', { A, B });
      expectSubscriptions(source.subscriptions).toBe('^--------------!');
    });
    expect(attempts).toEqual(['a', 'a', 'a', 'b']);
    expect(retries).toEqual([[1, 'a'], [2, 'a']]);
    expect(recovered).toEqual([[2, 'a']]);
  });

  it('a failure `when` does not accept errors the stream at once', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      const other = new Error('EACCES');
      expectObservable(cold('-a-|', { a }).pipe(persistBatches({ write: () => cold('-#', undefined, other), retry: { when, delayMs: 3 } }))).toBe('--#', undefined, other);
    });
  });

  it('an exception thrown by write, when, onRetry or onRecovered reaches subscriber.error', () => {
    const boom = new Error('callback threw');
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-|', { a });
      const throwing = () => {
        throw boom;
      };
      expectObservable(source.pipe(persistBatches({ write: throwing }))).toBe('-#', undefined, boom);
      expectObservable(source.pipe(persistBatches({ write: () => cold('-#', undefined, diskFull), retry: { when: throwing, delayMs: 3 } }))).toBe('--#', undefined, boom);
      expectObservable(source.pipe(persistBatches({ write: () => cold('-#', undefined, diskFull), retry: { when, delayMs: 3, onRetry: throwing } }))).toBe('--#', undefined, boom);
      let failed = false;
      const failOnce = () => (failed ? cold('(x|)', { x: 'file' }) : ((failed = true), cold('#', undefined, diskFull)));
      expectObservable(source.pipe(persistBatches({ write: failOnce, retry: { when, delayMs: 2, onRecovered: throwing } }))).toBe('---#', undefined, boom);
      expectSubscriptions(source.subscriptions).toBe(['^!', '^-!', '^-!', '^--!']);
    });
  });

  it('unsubscribing while a batch waits for its retry cancels the wait: no further write', () => {
    let attempts = 0;
    newTestScheduler().run(({ cold, expectObservable }) => {
      const write = () => {
        attempts++;
        return cold<string>('-#', undefined, diskFull);
      };
      expectObservable(cold('a', { a }).pipe(persistBatches({ write, retry: { when, delayMs: 5 } })), '^---!').toBe('-');
    });
    expect(attempts).toBe(1);
  });
});
