import { of, type ObservableInput, type OperatorFunction } from 'rxjs';
import { awaitEach } from './awaitEach.ts';
import type { PartitionOffsets } from '../domain/batch.ts';

export interface CommitOffsetsConfig<T> {
  /**
   * Commits `offset + 1` for each partition of the batch. Emits `true` once the broker
   * has it, or `false` when the batch must not be committed any more (its partitions
   * moved to another consumer, or were read again after a rebalance): then the records
   * will be read again, and the caller drops its copy. Any other failure errors.
   */
  readonly commit: (batch: T) => ObservableInput<boolean>;
}

/**
 * Commits each persisted batch's Kafka offsets, strictly in order, and emits the batch with the outcome.
 *
 * <span class="informal">A `concatMap` over `commit`: the next commit starts only when the
 * previous one is settled.</span>
 *
 * `commit` emits `true` once the broker has the offsets, or `false` when the batch must not
 * be committed any more (its partitions moved after a rebalance): its records will be read
 * again, so the caller drops its copy. A batch without offsets (a non-final part of a split
 * batch) passes as committed, without a call. Any other failure errors the stream.
 *
 * ```
 * persisted:  -a-b|              each commit takes 3 frames; b's commit is refused
 * result:     ----A--(B|)        A = { ...a, committed: true }, B = { ...b, committed: false }
 * ```
 *
 * @param config `commit`: commits `offset + 1` for each partition of the batch.
 * @returns An operator that emits each batch with `committed`, in order.
 * @see {@link persistBatches} before it; {@link publishBatches} after it.
 *
 * @example
 * ```ts
 * import { commitOffsets, persistBatches, publishBatches } from 'http-log-anonymizer';
 *
 * sealed$.pipe(
 *   persistBatches({ write: (batch) => spool.stage(batch) }),
 *   commitOffsets({ commit: (batch) => source.commit(batch, spool.instanceId) }),
 *   publishBatches({ publish: (b) => spool.publish(b.stored!), discard: (b) => spool.discard(b.stored!) }),
 * );
 * ```
 */
export function commitOffsets<T extends { readonly offsets: PartitionOffsets }>(config: CommitOffsetsConfig<T>): OperatorFunction<T, T & { readonly committed: boolean }> {
  return awaitEach(
    // A batch that claims no offsets (a split part) has nothing to commit.
    (batch: T) => (batch.offsets.size === 0 ? of(true) : config.commit(batch)),
    (batch, committed) => {
      if (committed === undefined) throw new Error(`the commit of batch ${String((batch as { token?: unknown }).token ?? '')} completed without saying whether it landed`);
      return { ...batch, committed };
    },
  );
}
