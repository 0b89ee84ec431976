/**
 * The insert body the product sends: one Native block, rows sorted first.
 *
 * Sorting by the low-cardinality columns (cache status, status, method), then time, puts
 * equal values next to each other in every column, which the codec then stores as short
 * repeats: about 5 % fewer bytes a row on uniform data (facts.md), more on real traffic.
 * Row order inside a block means nothing to ClickHouse: the table sorts by its own key.
 */
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { encodeNative } from './nativeFormat.ts';

export function sortForCompression(rows: readonly HttpLogRow[]): HttpLogRow[] {
  return [...rows].sort(
    (a, b) =>
      compareStrings(a.cacheStatus, b.cacheStatus) ||
      a.responseStatus - b.responseStatus ||
      compareStrings(a.method, b.method) ||
      a.timestamp - b.timestamp ||
      compareStrings(a.url, b.url),
  );
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The uncompressed body for `rows`: what `INSERT … FORMAT Native` receives. */
export function encodeInsertBody(rows: readonly HttpLogRow[]): Uint8Array {
  return encodeNative(sortForCompression(rows));
}
