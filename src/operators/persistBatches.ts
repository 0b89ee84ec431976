import { defer, from, retry, tap, throwError, timer, type Observable, type ObservableInput, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { awaitEach } from './awaitEach.ts';
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

/** Waiting out a write failure that time can fix (a full disk), with the same batch. */
export interface PersistRetryConfig {
  /** True for a failure worth waiting out; any other error errors the stream. */
  readonly when: (error: unknown) => boolean;
  /** Milliseconds before the same batch is written again. */
  readonly delayMs: number;
  /** Before each wait: the failure, and how many writes of this batch failed so far (1, 2, …). */
  readonly onRetry?: (error: unknown, failures: number, batch: SealedBatch) => void;
  /** Once a write succeeds after failures: how many there were. */
  readonly onRecovered?: (failures: number, batch: SealedBatch) => void;
}

export interface PersistBatchesConfig<S> {
  /** Writes the batch durably (written, fsynced and verified); emits its handle once it is safe to commit its offsets. */
  readonly write: (batch: SealedBatch) => ObservableInput<S | undefined>;
  /** Retries the same batch after failures `retry.when` accepts. Default: none, every failure errors the stream. */
  readonly retry?: PersistRetryConfig;
  /** Schedules the wait between retries. Default: RxJS's async scheduler. */
  readonly scheduler?: SchedulerLike;
}

/**
 * Writes each sealed batch durably and emits it, without its body, once it is safe to commit its offsets.
 *
 * <span class="informal">A `concatMap` over `write`: persist, then commit; a full disk waits.</span>
 *
 * The rule: a batch's Kafka offsets may be committed only once the batch is on
 * disk (written, fsynced and verified). Writes run one at a time, in order; a write that
 * completes without a value (a batch without rows stores nothing) still counts as done.
 * A failed write errors the stream, so nothing is committed for it, unless `retry.when`
 * accepts the failure (the disk is full): then the same batch is written again every
 * `retry.delayMs` until it succeeds, and nothing behind it moves meanwhile. That is one
 * batch held in memory; the caller pauses the source from `onRetry` so nothing piles up
 * upstream. An exception thrown by any callback errors the stream.
 *
 * ```
 * sealed:  -a-b-----|     each write takes 2 frames
 * result:  ---A-B---|     A = { token, rowCount, offsets, stored } of a
 *
 * sealed:  -a-------|     the first write of a fails (disk full), retry after 3 frames
 * write:    -#   --x
 * result:  -------A-|
 * ```
 *
 * @param config `write`: writes one batch durably and emits the handle of its copy;
 *   `retry`: which failures to wait out, and how long.
 * @returns An operator from sealed batches to `PersistedBatch`es, in order.
 * @see {@link commitOffsets} comes next; {@link publishBatches} after it.
 *
 * @example
 * ```ts
 * import { commitOffsets, persistBatches, Spool } from 'http-log-anonymizer';
 *
 * const spool = await Spool.open({ dir: './var/spool', topic: 'http_log', logger });
 * sealed$.pipe(
 *   persistBatches({
 *     write: (batch) => spool.stage(batch),
 *     // ANON_SPOOL_DISK: the disk refused the write (SpoolDiskError); wait for space.
 *     retry: { when: (error) => (error as { code?: string }).code === 'ANON_SPOOL_DISK', delayMs: 5_000, onRetry: () => source.pause('spool-disk'), onRecovered: () => source.resume('spool-disk') },
 *   }),
 *   commitOffsets({ commit: (batch) => source.commit(batch, spool.instanceId) }),
 * );
 * ```
 */
export function persistBatches<S>(config: PersistBatchesConfig<S>): OperatorFunction<SealedBatch, PersistedBatch<S>> {
  const retryConfig = config.retry;
  const writeWithRetry = (batch: SealedBatch): Observable<S | undefined> => {
    let failures = 0;
    return defer(() => from(config.write(batch))).pipe(
      retry({
        delay: (error: unknown) => {
          if (!retryConfig?.when(error)) return throwError(() => error);
          failures++;
          retryConfig.onRetry?.(error, failures, batch);
          return timer(retryConfig.delayMs, config.scheduler);
        },
      }),
      tap({ complete: () => failures > 0 && retryConfig?.onRecovered?.(failures, batch) }),
    );
  };
  return awaitEach(
    writeWithRetry,
    (batch, stored): PersistedBatch<S> => ({
      token: batch.token,
      rowCount: batch.rowCount,
      offsets: batch.offsets,
      ...(batch.generation === undefined ? {} : { generation: batch.generation }),
      stored,
    }),
  );
}
