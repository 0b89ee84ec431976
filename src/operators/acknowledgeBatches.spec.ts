import { describe, expect, it } from 'vitest';
import { acknowledgeBatches } from './acknowledgeBatches.ts';
import type { InsertOutcome } from './pacedInsert.ts';
import { newTestScheduler } from './testing.ts';

const s: InsertOutcome<string> = { batch: 'one', kind: 'stored' };
const p: InsertOutcome<string> = { batch: 'two', kind: 'split', error: 'too large' };
const q: InsertOutcome<string> = { batch: 'three', kind: 'quarantine', error: 'bad data' };

describe('acknowledgeBatches', () => {
  it('settles each outcome with its own handler, in order, and emits it once settled', () => {
    const calls: string[] = [];
    newTestScheduler().run(({ cold, expectObservable }) => {
      const source = cold('-s-p-q-|', { s, p, q });
      const step = (label: string) => (batch: string, error?: unknown) => {
        calls.push(`${label}:${batch}${error ? `:${String(error)}` : ''}`);
        return cold('-|');
      };
      expectObservable(source.pipe(acknowledgeBatches({ stored: step('stored'), split: step('split'), quarantine: step('quarantine') }))).toBe('--s-p-q|', { s, p, q });
    });
    expect(calls).toEqual(['stored:one', 'split:two:too large', 'quarantine:three:bad data']);
  });

  it('a failure to settle errors the stream (the batch stays in the spool and is sent again next run)', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-s-s-|', { s });
      expectObservable(source.pipe(acknowledgeBatches<string>({ stored: () => cold('#'), split: () => cold('|'), quarantine: () => cold('|') }))).toBe('-#');
      expectSubscriptions(source.subscriptions).toBe('^!');
    });
  });

  it('never, and early unsubscribe', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold<InsertOutcome<string>>('-');
      expectObservable(source.pipe(acknowledgeBatches<string>({ stored: () => cold('|'), split: () => cold('|'), quarantine: () => cold('|') })), '^-!').toBe('-');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });
});
