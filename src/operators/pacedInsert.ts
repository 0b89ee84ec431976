import { catchError, concatMap, defer, finalize, from, last, map, of, retry, tap, throwError, type Observable, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { ProxySlots } from '../pacing/proxySlots.ts';
import { insertFailurePolicy, type BlockedReason, type InsertFailureAction, type InsertFailurePolicy } from '../errors.ts';

/** What `pacedInsert` needs to know of a batch. */
export interface InsertableBatch {
  readonly token: string;
  readonly rowCount: number;
}

/** How a batch left `pacedInsert`: stored, or set aside for the next step to split or quarantine. */
export interface InsertOutcome<B> {
  readonly batch: B;
  readonly kind: 'stored' | 'split' | 'quarantine';
  /** The failure behind `split` or `quarantine`. */
  readonly error?: unknown;
}

/** One attempt at a batch and what came of it: the stream `deliveryState` is derived from. */
export interface InsertAttempt<B> {
  readonly batch: B;
  /** `stored` on a 2xx, else what the failure policy decided. */
  readonly action: 'stored' | InsertFailureAction;
  /** Why delivery is blocked, with `blocked`. */
  readonly reason?: BlockedReason;
  readonly error?: unknown;
  /** When the attempt ended (the scheduler's clock, ms). */
  readonly at: number;
}

export interface PacedInsertConfig<B extends InsertableBatch> {
  /** Sends one batch; completes (or resolves) on 2xx, errors with an `AnonymizerError` otherwise. */
  readonly send: (batch: B) => ObservableInput<unknown>;
  /** The shared pacing state: when the next request may go. */
  readonly slots: ProxySlots;
  /** What to do about a failure, and whether it used the slot. Default: `insertFailurePolicy` (src/errors.ts). */
  readonly classify?: (error: unknown) => InsertFailurePolicy;
  /** Told about every failed attempt and what happens next. */
  readonly onFailure?: (batch: B, error: unknown, action: InsertFailureAction) => void;
  /** Told about every stored batch, with how long the successful request took (ms). */
  readonly onStored?: (batch: B, elapsedMs: number) => void;
  /** Told about every attempt, stored or not, after the hooks above: feed it to `deliveryState`. */
  readonly onAttempt?: (attempt: InsertAttempt<B>) => void;
}

/**
 * Sends each batch through the proxy, one request per slot, in order, retrying it until it is stored.
 *
 * <span class="informal">A `concatMap` whose every attempt first waits for `slots.whenOpen()`,
 * with a `retry` that never gives up on a retriable failure: the data must get in.</span>
 *
 * Every attempt at a batch calls `send` with the same batch, so the same bytes and the same
 * dedup token go out each time. What a failure costs depends on what reached ClickHouse: a
 * 503 from the proxy or a refused connection used no slot, so the retry comes after the
 * probe delay; any failure that reached ClickHouse (a 5xx, a reset, a timeout) used the
 * slot, and the retry waits for the next one. A batch the proxy refuses as too large (413)
 * comes out as a `split` outcome, one ClickHouse refuses as bad data as `quarantine`, and
 * the stream goes on with the next batch. An answer that would fail every batch (bad
 * credentials, an unknown table: `blocked`) keeps the batch at the head and retries it once
 * per slot, like any retry; `onAttempt` reports it, so that `deliveryState` can say so.
 * Only a `fatal` failure (not an answer: a bug, an unreadable body) errors the stream.
 *
 * ```
 * batches:  (abc|)                      interval 10 frames; each request takes 1 frame
 * result:   -a---------b---------(c|)   a, b, c = stored outcomes, one per interval
 *
 * batches:  a|                          a 503 at 0 (no slot used), probe delay 3
 * result:   -----(a|)                   retried at 4, stored at 5
 *
 * batches:  (ab|)                       a: 516 at 1 and 11 (blocked), stored at 21
 * result:   ---------------------a---------(b|)
 * ```
 *
 * @param config `send`: one request for one batch; `slots`: the shared pacing state;
 * `classify`, `onFailure`, `onStored`: what a failure means, and hooks for logs and metrics.
 * @returns An operator from batches to their `InsertOutcome`s, in order.
 * @see {@link ProxySlots} the pacing state; {@link acknowledgeBatches} settles the outcomes.
 *
 * @example
 * ```ts
 * import { createClickHouseHttp, pacedInsert, ProxySlots } from 'http-log-anonymizer';
 *
 * const clickhouse = createClickHouseHttp({ url: 'http://127.0.0.1:8124', user: 'default', password: '', database: 'default' });
 * const slots = new ProxySlots({ minIntervalMs: 60_000, marginMs: 3_000 });
 * sealed$.pipe(
 *   pacedInsert({
 *     send: (batch) => clickhouse.insert(batch),
 *     slots,
 *     onFailure: (batch, error, action) => log.warn({ token: batch.token, action }, String(error)),
 *   }),
 * ).subscribe((outcome) => log.info({ token: outcome.batch.token, kind: outcome.kind }, 'settled'));
 * ```
 */
export function pacedInsert<B extends InsertableBatch>(config: PacedInsertConfig<B>): OperatorFunction<B, InsertOutcome<B>> {
  const { slots } = config;
  const classify = config.classify ?? insertFailurePolicy;
  return (source) =>
    source.pipe(
      concatMap((batch): Observable<InsertOutcome<B>> => {
        if (batch.rowCount === 0) return of({ batch, kind: 'stored' });
        // enqueue and dequeue pair inside one defer: a batch still buffered in concatMap at
        // unsubscribe was never counted, so it is never left counted either.
        return defer(() => {
          slots.enqueue();
          return insertOne(batch);
        }).pipe(finalize(() => slots.dequeue()));
      }),
    );

  function insertOne(batch: B): Observable<InsertOutcome<B>> {
    let settled: InsertOutcome<B> | undefined;
    // The policy of the latest failure: decided once, where the slot is accounted for.
    let policy: InsertFailurePolicy | undefined;
    const attempt = defer(() => slots.whenOpen()).pipe(
      concatMap(() => {
        const startedAt = slots.scheduler.now();
        return from(config.send(batch)).pipe(
          last(null, null),
          tap(() => {
            slots.used(startedAt);
            config.onStored?.(batch, slots.scheduler.now() - startedAt);
            config.onAttempt?.({ batch, action: 'stored', at: slots.scheduler.now() });
          }),
          catchError((error: unknown) => {
            policy = classify(error);
            if (policy.usedSlot) slots.used(startedAt);
            else slots.notUsed();
            return throwError(() => error);
          }),
        );
      }),
    );
    return attempt.pipe(
      retry({
        delay: (error: unknown) => {
          const { action, reason } = policy ?? classify(error);
          policy = undefined;
          config.onFailure?.(batch, error, action);
          config.onAttempt?.({ batch, action, ...(reason === undefined ? {} : { reason }), error, at: slots.scheduler.now() });
          // Blocked: the batch stays at the head, and the next slot tries again.
          if (action === 'retry' || action === 'blocked') return of(true);
          if (action === 'split' || action === 'quarantine') settled = { batch, kind: action, error };
          return throwError(() => error);
        },
      }),
      map((): InsertOutcome<B> => ({ batch, kind: 'stored' })),
      catchError((error: unknown) => (settled ? of(settled) : throwError(() => error))),
    );
  }
}
