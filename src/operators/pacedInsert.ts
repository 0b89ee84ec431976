import { concatMap, defer, from, last, map, of, retry, tap, throwError, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { SealedBatch } from '../domain/batch.ts';
import type { ProxySlots } from '../domain/proxySlots.ts';
import { classifyInsertFailure, NetworkError, ProxyRateLimitedError, type InsertFailureAction } from '../errors.ts';

export interface PacedInsertConfig {
  /** Sends one batch; completes (or resolves) on 2xx, errors with an `AnonymizerError` otherwise. */
  readonly send: (batch: SealedBatch) => ObservableInput<unknown>;
  /** The shared pacing state: when the next request may go. */
  readonly slots: ProxySlots;
  /** What to do about a failure. Default: `classifyInsertFailure`. */
  readonly classify?: (error: unknown) => InsertFailureAction;
  /** Told about every failed attempt and what happens next. */
  readonly onFailure?: (batch: SealedBatch, error: unknown, action: InsertFailureAction) => void;
  /** Told about every stored batch, with how long the successful request took (ms). */
  readonly onStored?: (batch: SealedBatch, elapsedMs: number) => void;
}

/**
 * Sends each batch through the proxy, one request per slot, in order, retrying each
 * batch at the next slot until it is stored; emits each batch once it is stored.
 *
 * Batches that carry no rows (a span of poison messages) are passed on without a request,
 * in order, so their offsets still get committed.
 *
 * A failure the classifier does not call `retry` (a 413 that calls for a split, bad data,
 * a fatal configuration error) errors the stream, with nothing committed past it.
 *
 * ```
 * batches:  -a-b-------|
 * slots:    -^----^----^     (one per interval; a failure waits for the next)
 * result:   -a----b----|
 * ```
 *
 * @example
 * sealed$.pipe(pacedInsert({ send: (b) => clickhouse.insert(b), slots }))
 */
export function pacedInsert(config: PacedInsertConfig): OperatorFunction<SealedBatch, SealedBatch> {
  const { slots } = config;
  const classify = config.classify ?? classifyInsertFailure;
  return (source) =>
    source.pipe(
      tap((batch) => batch.rowCount > 0 && slots.enqueue()),
      concatMap((batch) => {
        if (batch.rowCount === 0) return of(batch);
        const attempt = defer(() => slots.whenOpen()).pipe(
          concatMap(() => {
            const startedAt = slots.scheduler.now();
            return from(config.send(batch)).pipe(
              last(null, null),
              tap({
                next: () => {
                  slots.used(startedAt);
                  config.onStored?.(batch, slots.scheduler.now() - startedAt);
                },
                error: (error: unknown) => {
                  if (error instanceof ProxyRateLimitedError || (error instanceof NetworkError && error.neverSent)) slots.notUsed();
                  else slots.used(startedAt);
                },
              }),
            );
          }),
        );
        return attempt.pipe(
          retry({
            delay: (error: unknown) => {
              const action = classify(error);
              config.onFailure?.(batch, error, action);
              return action === 'retry' ? of(true) : throwError(() => error);
            },
          }),
          map(() => batch),
          tap({ finalize: () => slots.dequeue() }),
        );
      }),
    );
}
