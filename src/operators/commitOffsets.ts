import { concatMap, from, last, map, of, type ObservableInput, type OperatorFunction } from 'rxjs';
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
 * Commits each persisted batch's offsets, strictly in order, and emits the batch with
 * the outcome once the commit is settled. Batches without offsets pass as committed.
 *
 * ```
 * persisted:  -a--b-|
 * result:     -A--B-|      (A = { ...a, committed: true }, each after its commit)
 * ```
 *
 * @example
 * persisted$.pipe(commitOffsets({ commit: (batch) => source.commit(batch) }))
 */
export function commitOffsets<T extends { readonly offsets: PartitionOffsets }>(config: CommitOffsetsConfig<T>): OperatorFunction<T, T & { readonly committed: boolean }> {
  return concatMap((batch) =>
    batch.offsets.size === 0
      ? of({ ...batch, committed: true })
      : from(config.commit(batch)).pipe(
          last(),
          map((committed) => ({ ...batch, committed })),
        ),
  );
}
