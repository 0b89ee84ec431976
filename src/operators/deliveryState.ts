import { distinctUntilChanged, scan, startWith, type OperatorFunction } from 'rxjs';
import type { BlockedReason } from '../errors.ts';
import type { InsertAttempt } from './pacedInsert.ts';

/** Whether batches can get into ClickHouse: `ok`, or `blocked` by an answer that would fail every batch. */
export type DeliveryState = DeliveryOk | DeliveryBlocked;

export interface DeliveryOk {
  readonly kind: 'ok';
}

export interface DeliveryBlocked {
  readonly kind: 'blocked';
  readonly reason: BlockedReason;
  /** When the first attempt with this reason failed (the scheduler's clock, ms). */
  readonly since: number;
  /** That attempt's error message (ClickHouse's `Code: N. DB::Exception: …`), for logs and /readyz. */
  readonly message: string;
}

export const DELIVERY_OK: DeliveryOk = { kind: 'ok' };

/**
 * The next delivery state after one attempt. Pure: tested as a table.
 *
 * Stored or quarantined means ClickHouse took the request as far as the data: whatever
 * blocked delivery is gone. A blocked answer blocks (a new reason restarts `since`). A
 * retry or a split says nothing about the cause (a 503 or a 413 from the proxy, a 5xx, a
 * reset): the state stays as it was.
 */
export function nextDeliveryState(state: DeliveryState, attempt: InsertAttempt<unknown>): DeliveryState {
  switch (attempt.action) {
    case 'stored':
    case 'quarantine':
      return DELIVERY_OK;
    case 'blocked': {
      const reason = attempt.reason ?? 'http_0';
      if (state.kind === 'blocked' && state.reason === reason) return state;
      return { kind: 'blocked', reason, since: attempt.at, message: messageOf(attempt.error) };
    }
    default:
      return state;
  }
}

/**
 * Derives whether delivery is blocked from the attempts `pacedInsert` reports.
 *
 * <span class="informal">A `scan` over {@link nextDeliveryState}, starting `ok`, that emits
 * only changes.</span>
 *
 * ```
 * attempts:  -r-b-b-r-s-|      r retry, b blocked (same reason), s stored
 * result:    o--B-----o-|      o ok (at subscription), B blocked since frame 3
 * ```
 *
 * @returns An operator from `InsertAttempt`s to `DeliveryState` changes; the first value is `ok`.
 * @see {@link pacedInsert} which reports the attempts (`onAttempt`).
 *
 * @example
 * ```ts
 * const attempts = new Subject<InsertAttempt<SpooledBatch>>();
 * attempts.pipe(deliveryState()).subscribe((state) => metrics.blocked.set(state.kind === 'blocked' ? 1 : 0));
 * spool.pending().pipe(pacedInsert({ send, slots, onAttempt: (a) => attempts.next(a) }));
 * ```
 */
export function deliveryState(): OperatorFunction<InsertAttempt<unknown>, DeliveryState> {
  return (source) => source.pipe(scan(nextDeliveryState, DELIVERY_OK as DeliveryState), startWith(DELIVERY_OK), distinctUntilChanged());
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
