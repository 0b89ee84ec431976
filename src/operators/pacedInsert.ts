import { catchError, concatMap, defer, from, last, map, of, retry, tap, throwError, type Observable, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { ProxySlots } from '../domain/proxySlots.ts';
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
 * Sends each batch through the proxy, one request per slot, in order, retrying a batch at
 * the next slot until it is stored. It never gives up on a retriable failure: the data
 * must get in. A batch the proxy refuses as too large (413) comes out as `split`, one
 * ClickHouse refuses as bad data as `quarantine`, and the stream goes on with the next.
 * Only a `fatal` failure (an unknown table, bad credentials) errors the stream.
 *
 * A 503 from the proxy or a refused connection used no slot, so the retry comes after
 * the probe delay; any failure that reached ClickHouse waits for the next slot.
 *
 * ```
 * batches:  -a-b-------------|
 * slots:    -^-----^-----^         (one per interval; a failure waits for the next)
 * result:   -A-----x-----B---|     A = stored(a); b failed once (x), then B = stored(b)
 * ```
 *
 * @example
 * spool.pending().pipe(pacedInsert({ send: (b) => clickhouse.insert(b), slots }))
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
