import { concatMap, defaultIfEmpty, from, last, map, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { PartitionOffsets, SealedBatch } from '../domain/batch.ts';

/**
 * What is left of a batch once it is on disk: what to commit, and the handle of its
 * durable copy. Its body is no longer held in memory.
 */
export interface PersistedBatch<S> {
  readonly token: string;
  readonly rowCount: number;
  readonly offsets: PartitionOffsets;
  readonly generation?: number;
  /** The durable copy (e.g. a staged spool file); undefined for a batch without rows. */
  readonly stored: S | undefined;
}

export interface PersistBatchesConfig<S> {
  /** Writes the batch durably (written and fsynced); emits its handle once it is safe to commit its offsets. */
  readonly write: (batch: SealedBatch) => ObservableInput<S | undefined>;
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
 * sealed$.pipe(persistBatches({ write: (batch) => spool.stage(batch) }), commitOffsets({ commit }))
 */
export function persistBatches<S>(config: PersistBatchesConfig<S>): OperatorFunction<SealedBatch, PersistedBatch<S>> {
  return concatMap((batch) =>
    from(config.write(batch)).pipe(
      defaultIfEmpty(undefined),
      last(),
      map(
        (stored): PersistedBatch<S> => ({
          token: batch.token,
          rowCount: batch.rowCount,
          offsets: batch.offsets,
          ...(batch.generation === undefined ? {} : { generation: batch.generation }),
          stored,
        }),
      ),
    ),
  );
}
