import { Observable, type OperatorFunction } from 'rxjs';
import { mergeOffsets, type OffsetChunk, type RowBatch, type SealReason } from '../domain/batch.ts';

export interface SealBatchesConfig<T> {
  /**
   * Seal the open batch now. Fires when the proxy can take a request and nothing sealed
   * is waiting for it (the design card's "proxy-ready timer"). An emission with an empty
   * open batch does nothing.
   */
  readonly proxyReady$: Observable<unknown>;
  /**
   * Seal before the open batch's estimated size would pass this, in bytes (the unit of
   * `sizeOf`). A function is read again for every batch, so the cap can learn.
   */
  readonly maxBytes: number | (() => number);
  /** The estimated encoded size of one item, in bytes. */
  readonly sizeOf: (item: T) => number;
  /**
   * Seal at this many rows whatever their size. Keeps a batch of very compressible rows
   * from growing past what the source lets be outstanding (it would wait for a commit that
   * waits for the batch). Default: no limit.
   */
  readonly maxRows?: number;
}

/**
 * Gathers the rows of incoming chunks into batches, sealed when the proxy is ready for
 * one, when the next row would pass the size cap, or when the input ends.
 *
 * A batch claims the offsets of what it holds, so committing them after it is durable
 * never runs ahead of the data, and never leaves rows it holds to be read again. When the
 * cap splits a chunk, each part claims the offset of its last row if the chunk carries
 * `itemOffsets`; without them, only the part holding the chunk's end claims it.
 *
 * ```
 * chunks:      -a-b-c---d-|     (one row each, maxBytes 2)
 * proxyReady$: -------r--------
 * result:      -----x-y---z|    x=[a,b] (size), y=[c] (proxy-ready), z=[d] (end-of-input)
 * ```
 *
 * @example
 * rows$.pipe(sealBatches({ proxyReady$: slots.ready$, maxBytes: 3_000_000, sizeOf: nativeRowSize }))
 */
export function sealBatches<T>(config: SealBatchesConfig<T>): OperatorFunction<OffsetChunk<T>, RowBatch<T>> {
  type Batch = RowBatch<T>;
  return (source) =>
    new Observable<Batch>((subscriber) => {
      let rows: T[] = [];
      let bytes = 0;
      let offsets = new Map<number, number>();
      let generation: number | undefined;
      let rowPartitions: number[] = [];
      let rowOffsetValues: number[] = [];
      // Row offsets are kept only while every chunk so far carried them.
      let rowOffsetsKnown = true;
      const capOf = (): number => (typeof config.maxBytes === 'function' ? config.maxBytes() : config.maxBytes);
      let cap = capOf();
      const maxRows = config.maxRows ?? Number.POSITIVE_INFINITY;

      const seal = (reason: SealReason): void => {
        if (rows.length === 0 && offsets.size === 0) return;
        const batch: Batch = {
          rows,
          offsets,
          reason,
          ...(generation === undefined ? {} : { generation }),
          ...(rowOffsetsKnown && rows.length > 0 ? { rowOffsets: { partitions: rowPartitions, offsets: rowOffsetValues } } : {}),
        };
        rows = [];
        bytes = 0;
        offsets = new Map();
        generation = undefined;
        rowPartitions = [];
        rowOffsetValues = [];
        rowOffsetsKnown = true;
        cap = capOf();
        subscriber.next(batch);
      };

      const readySubscription = config.proxyReady$.subscribe({
        next: () => seal('proxy-ready'),
        error: (error: unknown) => subscriber.error(error),
      });

      const sourceSubscription = source.subscribe({
        next: (chunk) => {
          // After a rebalance the consumer reads again from the committed offsets, and a
          // batch of the old generation will be refused at commit: never let it take rows of
          // the new generation with it.
          if (chunk.generation !== undefined && generation !== undefined && chunk.generation !== generation) seal('rebalance');
          if (chunk.generation !== undefined) generation = chunk.generation;
          if (chunk.itemOffsets === undefined && chunk.items.length > 0) rowOffsetsKnown = false;
          chunk.items.forEach((item, index) => {
            const size = config.sizeOf(item);
            if (rows.length > 0 && (bytes + size > cap || rows.length >= maxRows)) seal('size');
            if (chunk.generation !== undefined) generation = chunk.generation;
            rows.push(item);
            bytes += size;
            const offset = chunk.itemOffsets?.[index];
            if (offset !== undefined) {
              mergeOffsets(offsets, chunk.partition, offset);
              rowPartitions.push(chunk.partition);
              rowOffsetValues.push(offset);
            } else if (rows.length === 1) {
              // A new batch that starts inside a chunk without item offsets.
              rowOffsetsKnown = false;
            }
          });
          mergeOffsets(offsets, chunk.partition, chunk.lastOffset);
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          seal('end-of-input');
          subscriber.complete();
        },
      });

      return () => {
        readySubscription.unsubscribe();
        sourceSubscription.unsubscribe();
      };
    });
}
