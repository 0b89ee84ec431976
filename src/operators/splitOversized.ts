import { catchError, concatMap, map, of, throwError, toArray, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { Codec, SealedBatch, SealReason } from '../domain/batch.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { encodeBatches } from './encodeBatches.ts';

export interface SplitOversizedConfig {
  /** Rows → uncompressed insert body: the encoder the refused batch was made with (e.g. `encodeInsertBody`). */
  readonly encode: (rows: readonly HttpLogRow[]) => Uint8Array;
  /** The format `encode` writes (`INSERT_FORMAT` for `encodeInsertBody`). */
  readonly format: SealedBatch['format'];
  /** Uncompressed body → compressed body, off the event loop. */
  readonly compress: (body: Uint8Array) => ObservableInput<Uint8Array>;
  readonly codec: Codec;
  /** Told each time a part still came out over its limit and was split again. */
  readonly onOversize?: (rowCount: number, bodyBytes: number) => void;
}

/** A batch the proxy refused as too large (413), with its rows decoded again. */
export interface OversizedBatch {
  /** The refused batch's dedup token: each part's token is derived from it. */
  readonly token: string;
  readonly rows: readonly HttpLogRow[];
  /** The refused body's size in bytes: every part is at most half of it. */
  readonly bodyBytes: number;
  readonly reason?: SealReason;
}

/** What became of one oversized batch. */
export interface SplitParts {
  readonly batch: OversizedBatch;
  /**
   * The parts that replace it, in row order, every row in exactly one of them. Empty when
   * it cannot be split: a single row, or a row whose body alone is over half the limit
   * (set the batch aside: no smaller body can carry it).
   */
  readonly parts: readonly SealedBatch[];
}

/**
 * Splits each batch the proxy refused as too large (413) into parts of at most half its body.
 *
 * <span class="informal">`encodeBatches`' own split, run again with half the refused body as
 * its limit, so a part is never over that limit whatever its rows compress to.</span>
 *
 * The parts' tokens are derived from the refused batch's (`<token>-0`, `<token>-1`, …), not
 * random: a split redone after a crash (the batch is still in the spool) sends the same
 * parts with the same tokens, which ClickHouse deduplicates. A part that is still refused
 * is split again in its turn; a batch that cannot get smaller comes out with no parts.
 * The parts carry no Kafka offsets: the refused batch's offsets were committed when it
 * was spooled. A failing `compress` errors the stream.
 *
 * ```
 * batches:  -a-b|            a: 6 rows of 1 byte, refused at 6 bytes; b: 1 row
 * result:   -A-B|            A = { parts: [a-0 (3 rows), a-1 (3 rows)] }, B = { parts: [] }
 * ```
 *
 * @param config the encoder, format and codec of the refused batches.
 * @returns An operator from oversized batches to their `SplitParts`, one each, in order.
 * @see {@link encodeBatches} whose split it reuses; `splitInHalves` applies it to a spooled batch.
 *
 * @example
 * ```ts
 * import { compress, encodeInsertBody, INSERT_FORMAT, splitOversized } from 'http-log-anonymizer';
 *
 * of({ token, rows, bodyBytes }).pipe(
 *   splitOversized({ encode: encodeInsertBody, format: INSERT_FORMAT, compress: (body) => compress('br', 11, body), codec: 'br' }),
 * );
 * ```
 */
export function splitOversized(config: SplitOversizedConfig): OperatorFunction<OversizedBatch, SplitParts> {
  return concatMap((batch) => {
    if (batch.rows.length < 2) return of<SplitParts>({ batch, parts: [] });
    let index = 0;
    return of({ rows: batch.rows, offsets: new Map<number, number>(), reason: batch.reason ?? 'size' }).pipe(
      encodeBatches({
        encode: config.encode,
        format: config.format,
        compress: config.compress,
        codec: config.codec,
        maxBodyBytes: Math.floor(batch.bodyBytes / 2),
        newToken: () => `${batch.token}-${index++}`,
        ...(config.onOversize ? { onOversize: config.onOversize } : {}),
      }),
      toArray(),
      map((parts): SplitParts => ({ batch, parts })),
      // encodeBatches' RangeError: one row alone is over half the limit.
      catchError((error: unknown) => (error instanceof RangeError ? of<SplitParts>({ batch, parts: [] }) : throwError(() => error))),
    );
  });
}
