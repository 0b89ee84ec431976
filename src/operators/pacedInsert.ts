import { catchError, concatMap, defer, from, last, map, of, retry, tap, throwError, type Observable, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { ProxySlots } from '../pacing/proxySlots.ts';
import { BodyTooLargeError, classifyInsertFailure, NetworkError, ProxyRateLimitedError, type InsertFailureAction } from '../errors.ts';

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

export interface PacedInsertConfig<B extends InsertableBatch> {
  /** Sends one batch; completes (or resolves) on 2xx, errors with an `AnonymizerError` otherwise. */
  readonly send: (batch: B) => ObservableInput<unknown>;
  /** The shared pacing state: when the next request may go. */
  readonly slots: ProxySlots;
  /** What to do about a failure. Default: `classifyInsertFailure`. */
  readonly classify?: (error: unknown) => InsertFailureAction;
  /** Told about every failed attempt and what happens next. */
  readonly onFailure?: (batch: B, error: unknown, action: InsertFailureAction) => void;
  /** Told about every stored batch, with how long the successful request took (ms). */
  readonly onStored?: (batch: B, elapsedMs: number) => void;
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
 * the stream goes on with the next batch. Only a `fatal` failure (an unknown table, bad
 * credentials) errors the stream.
 *
 * ```
 * batches:  (abc|)                      interval 10 frames; each request takes 1 frame
 * result:   -a---------b---------(c|)   a, b, c = stored outcomes, one per interval
 *
 * batches:  a|                          a 503 at 0 (no slot used), probe delay 3
 * result:   -----(a|)                   retried at 4, stored at 5
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
  const classify = config.classify ?? classifyInsertFailure;
  return (source) =>
    source.pipe(
      tap((batch) => batch.rowCount > 0 && slots.enqueue()),
      concatMap((batch): Observable<InsertOutcome<B>> => {
        if (batch.rowCount === 0) return of({ batch, kind: 'stored' });
        let settled: InsertOutcome<B> | undefined;
        const attempt = defer(() => slots.whenOpen()).pipe(
          concatMap(() => {
            const startedAt = slots.scheduler.now();
            return from(config.send(batch)).pipe(
              last(null, null),
              tap(() => {
                slots.used(startedAt);
                config.onStored?.(batch, slots.scheduler.now() - startedAt);
              }),
              catchError((error: unknown) => {
                const usedNoSlot = error instanceof ProxyRateLimitedError || error instanceof BodyTooLargeError || (error instanceof NetworkError && error.neverSent);
                if (usedNoSlot) slots.notUsed();
                else slots.used(startedAt);
                return throwError(() => error);
              }),
            );
          }),
        );
        return attempt.pipe(
          retry({
            delay: (error: unknown) => {
              const action = classify(error);
              config.onFailure?.(batch, error, action);
              if (action === 'retry') return of(true);
              if (action === 'split' || action === 'quarantine') {
                settled = { batch, kind: action, error };
                return throwError(() => error);
              }
              return throwError(() => error);
            },
          }),
          map((): InsertOutcome<B> => ({ batch, kind: 'stored' })),
          catchError((error: unknown) => (settled ? of(settled) : throwError(() => error))),
          tap({ finalize: () => slots.dequeue() }),
        );
      }),
    );
}
