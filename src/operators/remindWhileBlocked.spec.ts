import { describe, it } from 'vitest';
import { DELIVERY_OK, type DeliveryState } from './deliveryState.ts';
import { remindWhileBlocked } from './remindWhileBlocked.ts';
import { newTestScheduler } from './testing.ts';

const B: DeliveryState = { kind: 'blocked', reason: 'authentication', since: 2, message: 'Code: 516' };
const T: DeliveryState = { kind: 'blocked', reason: 'unknown_table', since: 4, message: 'Code: 60' };

describe('remindWhileBlocked', () => {
  it('repeats a blocked state every interval while it lasts; ok stops it', () => {
    const scheduler = newTestScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      expectObservable(cold('o-B------o--|', { o: DELIVERY_OK, B }).pipe(remindWhileBlocked({ everyMs: 3 }))).toBe('-----B--B---|', { B });
    });
  });
  it('a new reason restarts the reminders; errors pass; early unsubscribe stops the timer', () => {
    const scheduler = newTestScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      expectObservable(cold('B-T----', { B, T }).pipe(remindWhileBlocked({ everyMs: 3 })), '^--------!').toBe('-----T--T-', { T });
      expectObservable(cold('B--#', { B }).pipe(remindWhileBlocked({ everyMs: 5 }))).toBe('---#');
      const source = cold('B------', { B });
      expectObservable(source.pipe(remindWhileBlocked({ everyMs: 2 })), '^----!').toBe('--B-B-', { B });
      expectSubscriptions(source.subscriptions).toBe('^----!');
    });
  });
});
