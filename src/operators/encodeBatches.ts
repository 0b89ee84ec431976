import { randomUUID } from 'node:crypto';
import { concat, concatMap, defer, from, mergeMap, of, tap, throwError, toArray, type Observable, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { Codec, RowBatch, SealedBatch, SealReason } from '../domain/batch.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';

export interface EncodeBatchesConfig {
  /** Rows → uncompressed insert body (e.g. `encodeNative`). */
  readonly encode: (rows: readonly HttpLogRow[]) => Uint8Array;
  /** Uncompressed body → compressed body, off the event loop. */
  readonly compress: (body: Uint8Array) => ObservableInput<Uint8Array>;
  readonly codec: Codec;
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
  readonly rows: number;
  readonly raw: number;
}

/**
 * Encodes and compresses each batch into a sealed insert body, in order. A body that
 * comes out over `maxBodyBytes` is split in halves until every part fits; only the last
 * part carries the batch's offsets, so commits wait until every part is stored.
 *
 * ```
 * batches:  -a-----b-------|
 * result:   -A-----(B1 B2)-|     (b compressed past the limit: two parts)
 * ```
 *
 * @example
 * batches$.pipe(encodeBatches({ encode: encodeNative, compress: (b) => compress('br', 11, b), codec: 'br', maxBodyBytes: 1 << 20 }))
 */
export function encodeBatches(config: EncodeBatchesConfig): OperatorFunction<RowBatch, SealedBatch> {
  const newToken = config.newToken ?? randomUUID;

  const encodeFitting = (rows: readonly HttpLogRow[]): Observable<Part> =>
    defer(() => {
      const raw = config.encode(rows);
      return from(config.compress(raw)).pipe(
        mergeMap((body): Observable<Part> => {
          if (body.byteLength <= config.maxBodyBytes) return of({ body, rows: rows.length, raw: raw.byteLength });
          if (rows.length <= 1) {
            return throwError(() => new RangeError(`one row compresses to ${body.byteLength} bytes, over the proxy's body limit of ${config.maxBodyBytes}`));
          }
          config.onOversize?.(rows.length, body.byteLength);
          const half = Math.ceil(rows.length / 2);
          return concat(encodeFitting(rows.slice(0, half)), encodeFitting(rows.slice(half)));
        }),
      );
    });

  return concatMap((batch) => {
    if (batch.rows.length === 0) {
      return of<SealedBatch>({ token: newToken(), body: new Uint8Array(0), format: 'Native', codec: config.codec, rowCount: 0, uncompressedBytes: 0, offsets: batch.offsets, ...generationOf(batch) });
    }
    return encodeFitting(batch.rows).pipe(
      toArray(),
      concatMap((parts) =>
        parts.map(
          (part, index): SealedBatch => ({
            token: newToken(),
            body: part.body,
            format: 'Native',
            codec: config.codec,
            rowCount: part.rows,
            uncompressedBytes: part.raw,
            offsets: index === parts.length - 1 ? batch.offsets : new Map(),
            ...generationOf(batch),
          }),
        ),
      ),
      tap((part) => config.onEncoded?.(part, batch.reason)),
    );
  });
}

function generationOf(batch: RowBatch): { generation?: number } {
  return batch.generation === undefined ? {} : { generation: batch.generation };
}
