import { concatMap, from, last, map, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { PartitionOffsets, SealedBatch } from '../domain/batch.ts';

/** What is left of a batch once it is on disk: what to commit. Its body is no longer held in memory. */
export interface PersistedBatch {
  readonly token: string;
  readonly rowCount: number;
  readonly offsets: PartitionOffsets;
}

export interface PersistBatchesConfig {
  /** Writes the batch durably (written, fsynced, renamed); completes once it is safe to commit its offsets. */
  readonly write: (batch: SealedBatch) => ObservableInput<unknown>;
}

/**
 * Persists each sealed batch, in order, and emits it once it is durable — which is what
 * makes committing its offsets safe (persist, then commit).
 *
 * ```
 * sealed:  -a-b-----|     (each write takes 2 frames)
 * result:  ---A-B---|
 * ```
 *
 * @example
 * sealed$.pipe(persistBatches({ write: (batch) => spool.write(batch) }), commitOffsets({ commit }))
 */
export function persistBatches(config: PersistBatchesConfig): OperatorFunction<SealedBatch, PersistedBatch> {
  return concatMap((batch) =>
    from(config.write(batch)).pipe(
      last(null, null),
      map((): PersistedBatch => ({ token: batch.token, rowCount: batch.rowCount, offsets: batch.offsets })),
    ),
  );
}
