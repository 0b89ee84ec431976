/**
 * The insert body the product sends: one compact Native block (compactFormat.ts, format
 * id `CompactNative1`), rows sorted first.
 *
 * Sorting by URL puts URLs that share a directory and a prefix next to each other, which
 * the codec then stores as short back-references; it costs the timestamp column its
 * order (about 1 B a row: a batch spans a few minutes of seconds), and pays back more
 * than that on both datasets (docs/performance.md, "Rows per request").
 * Row order inside a block means nothing to ClickHouse: the table sorts by its own key.
 *
 * Bodies written by earlier versions (format `Native`, nativeFormat.ts) may still sit in
 * a spool: `decodeInsertBody` reads both, and the HTTP client sends each with its own
 * statement (clickhouseHttp.ts).
 */
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { COMPACT_FORMAT, compactRowSize, encodeCompact } from './compactFormat.ts';
import { decodeNative } from './nativeFormat.ts';

/** The `format` of a body `encodeInsertBody` makes (SealedBatch.format, the spool header). */
export const INSERT_FORMAT = COMPACT_FORMAT;

export function sortForCompression(rows: readonly HttpLogRow[]): HttpLogRow[] {
  return [...rows].sort((a, b) => (a.url === b.url ? a.timestamp - b.timestamp : a.url < b.url ? -1 : 1));
}

/** The uncompressed body for `rows`, in format `INSERT_FORMAT`. */
export function encodeInsertBody(rows: readonly HttpLogRow[]): Uint8Array {
  return encodeCompact(sortForCompression(rows));
}

/**
 * What a row adds to the uncompressed body, roughly: the sealer's running estimate.
 * The exact figure comes from encoding and compressing the batch.
 */
export function insertRowSize(row: HttpLogRow): number {
  return compactRowSize(row);
}

/**
 * The rows of an uncompressed body of either format, for splitting a batch the proxy
 * refused as too large. A Native block names its columns, so the body tells which it is.
 */
export function decodeInsertBody(body: Uint8Array): HttpLogRow[] {
  return decodeNative(body);
}
