import type { ObservableInput, OperatorFunction } from 'rxjs';
import { awaitEach } from './awaitEach.ts';

export interface PublishBatchesConfig<T> {
  /** The commit landed: make the durable copy sendable. */
  readonly publish: (batch: T) => ObservableInput<unknown>;
  /** The commit was refused: the records will be read again, so the copy goes. */
  readonly discard: (batch: T) => ObservableInput<unknown>;
}

/**
 * Queues each committed batch for sending, and drops each batch whose commit was refused.
 *
 * <span class="informal">The last step of ingestion: a `concatMap` over `publish` or
 * `discard`, chosen by `committed`.</span>
 *
 * A committed batch joins the send queue; one whose commit was refused is discarded, since
 * its records will be read again from Kafka. Each batch is emitted once that is done, in
 * order. A failing `publish` or `discard` errors the stream.
 *
 * ```
 * committed:  -a-b-|      a committed, b refused; each step takes 1 frame
 * result:     --a-b|      publish(a), then discard(b)
 * ```
 *
 * @param config `publish`: makes the durable copy sendable; `discard`: removes it.
 * @returns An operator that re-emits every batch, in order, once it is published or discarded.
 * @see {@link commitOffsets} before it; `spool.pending()` and {@link pacedInsert} take it from there.
 *
 * @example
 * ```ts
 * import { publishBatches } from 'http-log-anonymizer';
 *
 * committed$.pipe(
 *   publishBatches({
 *     publish: (batch) => spool.publish(batch.stored!),
 *     discard: (batch) => spool.discard(batch.stored!),
 *   }),
 * );
 * ```
 */
export function publishBatches<T extends { readonly committed: boolean }>(config: PublishBatchesConfig<T>): OperatorFunction<T, T> {
  return awaitEach(
    (batch: T) => (batch.committed ? config.publish(batch) : config.discard(batch)),
    (batch) => batch,
  );
}
