import { concatMap, from, last, map, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { PartitionOffsets } from '../domain/batch.ts';

export interface CommitOffsetsConfig {
  /** Commits `offset + 1` for each partition; completes (or resolves) once the broker has it. */
  readonly commit: (offsets: PartitionOffsets) => ObservableInput<unknown>;
}

/**
 * Commits each stored batch's offsets, strictly in order, and emits the batch after its
 * commit. Because it only ever sees batches that are already stored, a commit can never
 * run ahead of the data (at-least-once from Kafka).
 *
 * ```
 * stored:  -a--b-|
 * result:  -a--b-|      (each after its commit resolved)
 * ```
 *
 * @example
 * stored$.pipe(commitOffsets({ commit: (offsets) => source.commit(offsets) }))
 */
export function commitOffsets<T extends { readonly offsets: PartitionOffsets }>(config: CommitOffsetsConfig): OperatorFunction<T, T> {
  return concatMap((batch) => (batch.offsets.size === 0 ? [batch] : from(config.commit(batch.offsets)).pipe(last(null, null), map(() => batch))));
}
