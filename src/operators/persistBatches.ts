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
 * Writes each sealed batch durably and emits it, without its body, once it is safe to commit its offsets.
 *
 * <span class="informal">A `concatMap` over `write`: persist, then commit.</span>
 *
 * The design's rule 2: a batch's Kafka offsets may be committed only once the batch is on
 * disk (written and fsynced). Writes run one at a time, in order; a write that completes
 * without a value (a batch without rows stores nothing) still counts as done. A failed
 * write errors the stream, so nothing is committed for it.
 *
 * ```
 * sealed:  -a-b-----|     each write takes 2 frames
 * result:  ---A-B---|     A = { token, rowCount, offsets, stored } of a
 * ```
 *
 * @param config `write`: writes one batch durably and emits the handle of its copy.
 * @returns An operator from sealed batches to `PersistedBatch`es, in order.
 * @see {@link commitOffsets} comes next; {@link publishBatches} after it.
 *
 * @example
 * ```ts
 * import { commitOffsets, persistBatches, Spool } from 'http-log-anonymizer';
 *
 * const spool = await Spool.open({ dir: './var/spool', topic: 'http_log', logger });
 * sealed$.pipe(
 *   persistBatches({ write: (batch) => spool.stage(batch) }),
 *   commitOffsets({ commit: (batch) => source.commit(batch, spool.instanceId) }),
 * );
 * ```
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
