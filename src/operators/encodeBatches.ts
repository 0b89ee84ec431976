import { randomUUID } from 'node:crypto';
import { concat, concatMap, defer, from, mergeMap, of, tap, throwError, toArray, type Observable, type ObservableInput, type OperatorFunction } from 'rxjs';
import { mergeOffsets, type Codec, type PartitionOffsets, type RowBatch, type SealedBatch, type SealReason } from '../domain/batch.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';

export interface EncodeBatchesConfig {
  /** Rows → uncompressed insert body (e.g. `encodeNative`). */
  readonly encode: (rows: readonly HttpLogRow[]) => Uint8Array;
  /** Uncompressed body → compressed body, off the event loop. */
  readonly compress: (body: Uint8Array) => ObservableInput<Uint8Array>;
  readonly codec: Codec;
  /**
   * The format `encode` writes, sent with the body so ClickHouse gets the matching
   * statement (`INSERT_FORMAT` for `encodeInsertBody`, `Native` for `encodeNative`). No
   * default: a format that does not match the encoder would be refused by ClickHouse.
   */
  readonly format: SealedBatch['format'];
  /** The proxy's body limit, in bytes. No body over it is ever emitted. */
  readonly maxBodyBytes: number;
  /** A fresh dedup token; default `randomUUID`. Injected so tests are deterministic. */
  readonly newToken?: () => string;
  /** Told each time a body came out over the limit and its rows were split in two. */
  readonly onOversize?: (rowCount: number, bodyBytes: number) => void;
  /** Told about every part encoded, with what sealed its batch (to learn the compression ratio). */
  readonly onEncoded?: (batch: SealedBatch, reason: SealReason) => void;
}

interface Part {
  readonly body: Uint8Array;
  /** The rows it holds: `rows.slice(start, end)` of its batch. */
  readonly start: number;
  readonly end: number;
  readonly raw: number;
}

/**
 * Encodes and compresses each batch into a sealed insert body, in order; a batch that
 * comes with its body (`prepared`, measured while sealing) keeps it. A body that
 * comes out over `maxBodyBytes` is split in halves until every part fits. When the batch
 * knows where each row came from (`rowOffsets`), each part claims exactly the offsets of
 * its own rows and the last part the rest of the batch's span; otherwise only the last
 * part carries the batch's offsets.
 *
 * ```
 * batches:  -a-----b-------|
 * result:   -A-----(B1 B2)-|     (b compressed past the limit: two parts)
 * ```
 *
 * @example
 * batches$.pipe(encodeBatches({ encode: encodeInsertBody, format: INSERT_FORMAT, compress: (b) => compress('br', 11, b), codec: 'br', maxBodyBytes: 1 << 20 }))
 */
export function encodeBatches(config: EncodeBatchesConfig): OperatorFunction<RowBatch, SealedBatch> {
  const newToken = config.newToken ?? randomUUID;

  const encodeFitting = (rows: readonly HttpLogRow[], start: number, end: number): Observable<Part> =>
    defer(() => {
      const raw = config.encode(rows.slice(start, end));
      return from(config.compress(raw)).pipe(
        mergeMap((body): Observable<Part> => {
          if (body.byteLength <= config.maxBodyBytes) return of({ body, start, end, raw: raw.byteLength });
          if (end - start <= 1) {
            return throwError(() => new RangeError(`one row compresses to ${body.byteLength} bytes, over the proxy's body limit of ${config.maxBodyBytes}`));
          }
          config.onOversize?.(end - start, body.byteLength);
          const middle = start + Math.ceil((end - start) / 2);
          return concat(encodeFitting(rows, start, middle), encodeFitting(rows, middle, end));
        }),
      );
    });

  /** The offsets part `part` may claim: its own rows' when known, and the batch's whole span for the last part. */
  const offsetsOf = (batch: RowBatch, part: Part, last: boolean): PartitionOffsets => {
    if (last) return batch.offsets;
    if (!batch.rowOffsets) return new Map();
    const claimed = new Map<number, number>();
    for (let i = part.start; i < part.end; i++) mergeOffsets(claimed, batch.rowOffsets.partitions[i]!, batch.rowOffsets.offsets[i]!);
    return claimed;
  };

  return concatMap((batch) => {
    if (batch.rows.length === 0) {
      return of<SealedBatch>({ token: newToken(), body: new Uint8Array(0), format: config.format, codec: config.codec, rowCount: 0, uncompressedBytes: 0, offsets: batch.offsets, ...generationOf(batch) });
    }
    // Sealed with its body already measured to fit (sealBatches' `fit`): send it as it is.
    const parts$: Observable<Part> =
      batch.prepared !== undefined && batch.prepared.body.byteLength <= config.maxBodyBytes
        ? of({ body: batch.prepared.body, start: 0, end: batch.rows.length, raw: batch.prepared.uncompressedBytes })
        : encodeFitting(batch.rows, 0, batch.rows.length);
    return parts$.pipe(
      toArray(),
      concatMap((parts) =>
        parts.map(
          (part, index): SealedBatch => ({
            token: newToken(),
            body: part.body,
            format: config.format,
            codec: config.codec,
            rowCount: part.end - part.start,
            uncompressedBytes: part.raw,
            offsets: offsetsOf(batch, part, index === parts.length - 1),
            ...generationOf(batch),
            ...eventTimeOf(batch.rows, part),
            sealReason: batch.reason,
          }),
        ),
      ),
      tap((part) => config.onEncoded?.(part, batch.reason)),
    );
  });
}

function eventTimeOf(rows: readonly HttpLogRow[], part: Part): { eventTime?: readonly [number, number] } {
  if (part.end <= part.start) return {};
  let oldest = Number.POSITIVE_INFINITY;
  let newest = Number.NEGATIVE_INFINITY;
  for (let i = part.start; i < part.end; i++) {
    const { timestamp } = rows[i]!;
    if (timestamp < oldest) oldest = timestamp;
    if (timestamp > newest) newest = timestamp;
  }
  return { eventTime: [oldest, newest] };
}

function generationOf(batch: RowBatch): { generation?: number } {
  return batch.generation === undefined ? {} : { generation: batch.generation };
}
