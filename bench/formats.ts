/**
 * Encoders for the formats `bench:wire` compares ours against. Benchmark-only: the
 * product sends a compact Native block (src/encode/compactFormat.ts).
 *
 * Both write the `http_log` columns in table order and send the LowCardinality columns
 * as plain String, as the prior art does.
 */
import type { HttpLogRow } from '../src/domain/httpLogRow.ts';
import { varintLength } from '../src/encode/nativeFormat.ts';

const encoder = new TextEncoder();

/**
 * RowBinary, the prior art's body: row after row, each column's value back to back.
 * DateTime is UInt32 LE seconds, UInt64 and UInt16 little-endian, a String is a LEB128
 * varint length and its UTF-8 bytes.
 */
export function encodeRowBinary(rows: readonly HttpLogRow[]): Uint8Array {
  const strings = rows.map((row) => [row.cacheStatus, row.method, row.remoteAddr, row.url].map((value) => encoder.encode(value)));
  let size = 0;
  for (const row of strings) {
    size += 30; // 4 (DateTime) + 3 × 8 (UInt64) + 2 (UInt16)
    for (const value of row) size += varintLength(value.byteLength) + value.byteLength;
  }
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let offset = 0;
  rows.forEach((row, i) => {
    view.setUint32(offset, row.timestamp, true);
    view.setBigUint64(offset + 4, row.resourceId, true);
    view.setBigUint64(offset + 12, row.bytesSent, true);
    view.setBigUint64(offset + 20, row.requestTimeMilli, true);
    view.setUint16(offset + 28, row.responseStatus, true);
    offset += 30;
    for (const value of strings[i]!) {
      let length = value.byteLength;
      while (length >= 0x80) {
        bytes[offset++] = (length & 0x7f) | 0x80;
        length = Math.floor(length / 128);
      }
      bytes[offset++] = length;
      bytes.set(value, offset);
      offset += value.byteLength;
    }
  });
  return bytes;
}


/**
 * JSONEachRow, one object per line, as log shippers' ClickHouse sinks send it.
 *
 * - UInt64 columns are bare JSON numbers, written from the bigint's digits so that no
 *   value above 2^53 is rounded. ClickHouse parses them exactly (it reads integers from
 *   JSON text itself, not through doubles); a quoted "123" would also be accepted, but
 *   costs two bytes a value for nothing.
 * - DateTime is the Unix timestamp as a number, which ClickHouse accepts for DateTime
 *   and which, unlike 'YYYY-MM-DD hh:mm:ss', does not depend on the server's time zone.
 * - Strings go through JSON.stringify for escaping.
 */
export function encodeJsonEachRow(rows: readonly HttpLogRow[]): Uint8Array {
  const lines = rows.map(
    (row) =>
      `{"timestamp":${row.timestamp},"resource_id":${row.resourceId},"bytes_sent":${row.bytesSent},` +
      `"request_time_milli":${row.requestTimeMilli},"response_status":${row.responseStatus},` +
      `"cache_status":${JSON.stringify(row.cacheStatus)},"method":${JSON.stringify(row.method)},` +
      `"remote_addr":${JSON.stringify(row.remoteAddr)},"url":${JSON.stringify(row.url)}}\n`,
  );
  return encoder.encode(lines.join(''));
}
