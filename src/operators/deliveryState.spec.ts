import { describe, expect, it } from 'vitest';
import { BodyTooLargeError, ClickHouseError, ProxyRateLimitedError } from '../errors.ts';
import { DELIVERY_OK, deliveryState, nextDeliveryState, type DeliveryState } from './deliveryState.ts';
import type { InsertAttempt } from './pacedInsert.ts';
import { newTestScheduler } from './testing.ts';

const denied = new ClickHouseError('Code: 516. DB::Exception: Authentication failed', 403, 516);
const noTable = new ClickHouseError('Code: 60. DB::Exception: Unknown table', 404, 60);
const at = (action: InsertAttempt<unknown>['action'], time: number, error?: unknown, reason?: InsertAttempt<unknown>['reason']): InsertAttempt<unknown> => ({
  batch: 'x',
  action,
  at: time,
  ...(error === undefined ? {} : { error }),
  ...(reason === undefined ? {} : { reason }),
});
const blockedAuth: DeliveryState = { kind: 'blocked', reason: 'authentication', since: 5, message: denied.message };

describe('nextDeliveryState', () => {
  const cases: Array<[string, DeliveryState, InsertAttempt<unknown>, DeliveryState]> = [
    ['ok, stored → ok', DELIVERY_OK, at('stored', 9), DELIVERY_OK],
    ['ok, a retry → ok', DELIVERY_OK, at('retry', 9, new ProxyRateLimitedError()), DELIVERY_OK],
    ['ok, blocked → blocked since then', DELIVERY_OK, at('blocked', 5, denied, 'authentication'), blockedAuth],
    ['blocked, blocked for the same reason → unchanged (same since)', blockedAuth, at('blocked', 15, denied, 'authentication'), blockedAuth],
    ['blocked, another reason → blocked anew', blockedAuth, at('blocked', 15, noTable, 'unknown_table'), { kind: 'blocked', reason: 'unknown_table', since: 15, message: noTable.message }],
    ['blocked, a 503 (says nothing about the cause) → unchanged', blockedAuth, at('retry', 15, new ProxyRateLimitedError()), blockedAuth],
    ['blocked, a 413 → unchanged', blockedAuth, at('split', 15, new BodyTooLargeError()), blockedAuth],
    ['blocked, stored → ok', blockedAuth, at('stored', 25), DELIVERY_OK],
    ['blocked, quarantined (ClickHouse read the data) → ok', blockedAuth, at('quarantine', 25, new ClickHouseError('Code: 27', 400, 27)), DELIVERY_OK],
  ];
  it.each(cases)('%s', (_name, state, attempt, next) => {
    expect(nextDeliveryState(state, attempt)).toEqual(next);
  });
  it('keeps the same object when nothing changes, so only changes are emitted', () => {
    expect(nextDeliveryState(blockedAuth, at('blocked', 99, denied, 'authentication'))).toBe(blockedAuth);
  });
});

describe('deliveryState', () => {
  it('emits ok at subscription, then only changes', () => {
    const scheduler = newTestScheduler();
    scheduler.run(({ cold, expectObservable }) => {
      const attempts = cold('-r-b-b-r-s-|', { r: at('retry', 1), b: at('blocked', 3, denied, 'authentication'), s: at('stored', 9) });
      expectObservable(attempts.pipe(deliveryState())).toBe('o--B-----o-|', { o: DELIVERY_OK, B: { ...blockedAuth, since: 3 } });
    });
  });
  it('errors pass through; never emits only ok; early unsubscribe tears down', () => {
    const scheduler = newTestScheduler();
    scheduler.run(({ cold, expectObservable, expectSubscriptions }) => {
      expectObservable(cold<InsertAttempt<unknown>>('--#').pipe(deliveryState())).toBe('o-#', { o: DELIVERY_OK });
      expectObservable(cold<InsertAttempt<unknown>>('-').pipe(deliveryState())).toBe('o', { o: DELIVERY_OK });
      const source = cold('-b--s', { b: at('blocked', 1, noTable, 'unknown_table'), s: at('stored', 4) });
      expectObservable(source.pipe(deliveryState()), '^--!').toBe('oB-', { o: DELIVERY_OK, B: { kind: 'blocked', reason: 'unknown_table', since: 1, message: noTable.message } });
      expectSubscriptions(source.subscriptions).toBe('^--!');
    });
  });
});
