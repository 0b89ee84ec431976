import { describe, expect, it } from 'vitest';
import { awaitEach } from './awaitEach.ts';
import { newTestScheduler } from './testing.ts';

describe('awaitEach', () => {
  it('runs each effect after the previous one is done, and emits what project makes of its last value', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const effects = { a: cold('-1-(2|)'), b: cold('-(3|)') };
      const source = cold<'a' | 'b'>('ab|');
      const result = source.pipe(awaitEach((v) => effects[v], (v, r) => `${v}${r}`));
      expectObservable(result).toBe('---x(y|)', { x: 'a2', y: 'b3' });
      expectSubscriptions(effects.a.subscriptions).toBe('^--!');
      expectSubscriptions(effects.b.subscriptions).toBe('---^!');
    });
  });

  it('an effect that completes without a value gives project undefined', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('a|').pipe(awaitEach(() => cold('--|'), (v, r) => ({ v, r })))).toBe('--(x|)', { x: { v: 'a', r: undefined } });
    });
  });

  it('an error of the effect, or of project, errors the stream; the source is unsubscribed', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a-b|');
      expectObservable(source.pipe(awaitEach(() => cold('-#'), (v) => v))).toBe('-#');
      expectSubscriptions(source.subscriptions).toBe('^!');
      const boom = new Error('project threw');
      expectObservable(
        cold('a|').pipe(
          awaitEach(
            () => cold('(1|)'),
            () => {
              throw boom;
            },
          ),
        ),
      ).toBe('#', undefined, boom);
    });
  });

  it('never: an effect that never finishes holds the rest back; early unsubscribe tears it down', () => {
    newTestScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const effect = cold('-');
      expectObservable(cold('ab|').pipe(awaitEach(() => effect, (v) => v)), '^--!').toBe('---');
      expectSubscriptions(effect.subscriptions).toBe('^--!');
    });
  });

  it('complete: an empty source completes at once', () => {
    newTestScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('|').pipe(awaitEach(() => cold('(1|)'), (v) => v))).toBe('|');
    });
  });
});
