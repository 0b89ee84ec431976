import { concatMap, from, map, of, reduce, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { DecodedChunk, RejectedMessage, SourceMessage } from '../domain/batch.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { RowTooLargeError } from '../errors.ts';

export interface RejectOversizedRowsConfig {
  /** The proxy's body limit, in bytes (`PROXY_MAX_BODY_BYTES`). */
  readonly limit: number;
  /**
   * An upper bound on the compressed body of `row` alone, cheap to compute
   * (`singleRowBodyBound`). Rows whose bound is within the limit pass without measuring.
   */
  readonly bound: (row: HttpLogRow) => number;
  /** The compressed size of a body holding `row` alone, with the product's encoder and codec (off the event loop). */
  readonly measure: (row: HttpLogRow) => ObservableInput<number>;
}

type Sourced<T> = DecodedChunk<T> & { readonly sources?: readonly SourceMessage[] };

/**
 * Takes out of each chunk the rows that no insert body can carry, and lists them as
 * rejected (`RowTooLargeError`, `x-dlq-reason: row_too_large`) for `deadLetter`.
 *
 * <span class="informal">A `concatMap` that waits only for chunks holding a row whose
 * bound passes the limit; every other chunk passes at once, unchanged.</span>
 *
 * A row whose body alone compresses over the limit used to reach the sealer, which could
 * only fail (a `RangeError` that stopped ingestion, and every restart read it again).
 * Refused here, before sealing, such a row goes to the dead-letter topic with its
 * original bytes and its offset is committed past like any rejected message; the sealer's
 * own `too-large` error becomes unreachable (compression is deterministic: a row measured
 * to fit alone fits alone again). The chunk must say where each row came from
 * (`sources`, from `decodeRecords`) to dead-letter it; without `sources` nothing can be
 * refused and the chunk passes. `sources` is dropped from the output either way.
 *
 * ```
 * chunks:  -a--b-|      b = [r1, big, r3]; measuring big takes 2 frames
 * result:  -a----y|     y = [r1, r3], rejected [big: row_too_large]
 * ```
 *
 * @param config `limit`, `bound` (cheap upper bound), `measure` (the real compressed size).
 * @returns An operator from decoded chunks to decoded chunks, in order.
 * @see {@link deadLetter} which keeps the rejected rows' messages.
 */
export function rejectOversizedRows<C extends Sourced<HttpLogRow>>(config: RejectOversizedRowsConfig): OperatorFunction<C, Omit<C, 'sources'>> {
  const strip = ({ sources: _sources, ...chunk }: C): Omit<C, 'sources'> => chunk;
  return concatMap((chunk: C) => {
    const sources = chunk.sources;
    const suspects: number[] = [];
    if (sources !== undefined) {
      chunk.items.forEach((row, index) => {
        if (config.bound(row) > config.limit) suspects.push(index);
      });
    }
    if (suspects.length === 0) return of(strip(chunk));
    return from(suspects).pipe(
      concatMap((index) => from(config.measure(chunk.items[index]!)).pipe(map((bytes) => ({ index, bytes })))),
      reduce((over, { index, bytes }) => (bytes > config.limit ? over.set(index, bytes) : over), new Map<number, number>()),
      map((over) => {
        if (over.size === 0) return strip(chunk);
        const items: HttpLogRow[] = [];
        const itemOffsets: number[] = [];
        const rejected: RejectedMessage[] = [...chunk.rejected];
        chunk.items.forEach((row, index) => {
          const bytes = over.get(index);
          if (bytes === undefined) {
            items.push(row);
            const offset = chunk.itemOffsets?.[index];
            if (offset !== undefined) itemOffsets.push(offset);
          } else {
            rejected.push({ message: sources![index]!, error: new RowTooLargeError(bytes, config.limit) });
          }
        });
        return { ...strip(chunk), items, rejected, ...(chunk.itemOffsets === undefined ? {} : { itemOffsets }) };
      }),
    );
  });
}
