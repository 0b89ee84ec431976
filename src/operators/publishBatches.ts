import { concatMap, from, last, map, type ObservableInput, type OperatorFunction } from 'rxjs';

export interface PublishBatchesConfig<T> {
  /** The commit landed: make the durable copy sendable. */
  readonly publish: (batch: T) => ObservableInput<unknown>;
  /** The commit was refused: the records will be read again, so the copy goes. */
  readonly discard: (batch: T) => ObservableInput<unknown>;
}

/**
 * The last step of ingestion: each committed batch joins the send queue, and each batch
 * whose commit was refused is dropped, in order. Emits each batch once that is done.
 *
 * ```
 * committed:  -a-b-|      (a committed, b refused)
 * result:     -a-b-|      (publish(a), discard(b))
 * ```
 *
 * @example
 * committed$.pipe(publishBatches({ publish: (b) => spool.publish(b.stored), discard: (b) => spool.discard(b.stored) }))
 */
export function publishBatches<T extends { readonly committed: boolean }>(config: PublishBatchesConfig<T>): OperatorFunction<T, T> {
  return concatMap((batch) =>
    from(batch.committed ? config.publish(batch) : config.discard(batch)).pipe(
      last(null, null),
      map(() => batch),
    ),
  );
}
