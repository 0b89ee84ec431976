/**
 * Encodes `HttpLogRow`s as one block of ClickHouse's `Native` format, the columnar
 * format ClickHouse reads fastest and that compresses best (each column's values sit
 * together):
 *
 *   varint columns, varint rows, then per column:
 *     String name, String type, then the column's values back to back
 *   (String = varint length + bytes; integers little-endian at their width)
 *
 * LowCardinality columns are sent as plain `String`: ClickHouse converts on insert
 * (`input_format_native_allow_types_conversion`, on by default), and the dictionary
 * form would not compress any smaller once the body is compressed.
 */
import { varintLength } from './nativeBlock.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { decodeCompact, isCompactBlock } from './compactFormat.ts';

export const HTTP_LOG_COLUMNS = [
  ['timestamp', 'DateTime'],
  ['resource_id', 'UInt64'],
  ['bytes_sent', 'UInt64'],
  ['request_time_milli', 'UInt64'],
  ['response_status', 'UInt16'],
  ['cache_status', 'String'],
  ['method', 'String'],
  ['remote_addr', 'String'],
  ['url', 'String'],
] as const;

const encoder = new TextEncoder();

export { varintLength };

class ByteWriter {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  offset = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  varint(value: number): void {
    while (value >= 0x80) {
      this.bytes[this.offset++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.bytes[this.offset++] = value;
  }
  string(value: Uint8Array): void {
    this.varint(value.byteLength);
    this.bytes.set(value, this.offset);
    this.offset += value.byteLength;
  }
}

/** Bytes a row takes in Native, without the block header: exact, and cheap enough to call per row. */
export function nativeRowSize(row: HttpLogRow): number {
  // 4 (DateTime) + 3 × 8 (UInt64) + 2 (UInt16), plus each string's varint length and bytes.
  // Strings are assumed ASCII-sized here; `encodeNative` measures exactly.
  return 30 + stringSize(row.cacheStatus) + stringSize(row.method) + stringSize(row.remoteAddr) + stringSize(row.url);
}

function stringSize(value: string): number {
  return varintLength(value.length) + value.length;
}

/** One Native block holding `rows`, columns in the order of the `http_log` table. */
export function encodeNative(rows: readonly HttpLogRow[]): Uint8Array {
  const columnStrings = (pick: (row: HttpLogRow) => string): Uint8Array[] => rows.map((row) => encoder.encode(pick(row)));
  const cacheStatus = columnStrings((row) => row.cacheStatus);
  const method = columnStrings((row) => row.method);
  const remoteAddr = columnStrings((row) => row.remoteAddr);
  const url = columnStrings((row) => row.url);
  const stringColumnsSize = [cacheStatus, method, remoteAddr, url].reduce(
    (sum, column) => column.reduce((inner, value) => inner + varintLength(value.byteLength) + value.byteLength, sum),
    0,
  );
  const headerSize = 20 + HTTP_LOG_COLUMNS.reduce((sum, [name, type]) => sum + 2 + name.length + type.length, 0);
  const writer = new ByteWriter(headerSize + rows.length * 30 + stringColumnsSize);

  writer.varint(HTTP_LOG_COLUMNS.length);
  writer.varint(rows.length);
  const header = (index: number): void => {
    const [name, type] = HTTP_LOG_COLUMNS[index]!;
    writer.string(encoder.encode(name));
    writer.string(encoder.encode(type));
  };
  const fixed = (index: number, width: number, put: (offset: number, row: HttpLogRow) => void): void => {
    header(index);
    for (const row of rows) {
      put(writer.offset, row);
      writer.offset += width;
    }
  };
  const { view } = writer;
  fixed(0, 4, (at, row) => view.setUint32(at, row.timestamp, true));
  fixed(1, 8, (at, row) => view.setBigUint64(at, row.resourceId, true));
  fixed(2, 8, (at, row) => view.setBigUint64(at, row.bytesSent, true));
  fixed(3, 8, (at, row) => view.setBigUint64(at, row.requestTimeMilli, true));
  fixed(4, 2, (at, row) => view.setUint16(at, row.responseStatus, true));
  [cacheStatus, method, remoteAddr, url].forEach((column, i) => {
    header(5 + i);
    for (const value of column) writer.string(value);
  });
  return writer.bytes.subarray(0, writer.offset);
}

const decoder = new TextDecoder();

/**
 * Reads back one block of either body format: the compact one (compactFormat.ts) or the
 * plain one `encodeNative` writes. The spool needs it to split a batch the proxy refused
 * as too large, since a sealed batch keeps only its encoded body, and a spool may still
 * hold plain bodies from before an upgrade. A Native block names its columns, so the
 * block itself tells which it is.
 */
export function decodeNative(block: Uint8Array): HttpLogRow[] {
  return isCompactBlock(block) ? decodeCompact(block) : decodePlainNative(block);
}

/** Reads back one block written by `encodeNative` (the same nine columns, in order). */
export function decodePlainNative(block: Uint8Array): HttpLogRow[] {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  let offset = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (offset >= block.byteLength) throw new RangeError('Native block ends inside a varint');
      const byte = block[offset++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
  };
  const bytes = (length: number): Uint8Array => {
    if (offset + length > block.byteLength) throw new RangeError('Native block ends inside a value');
    const slice = block.subarray(offset, offset + length);
    offset += length;
    return slice;
  };
  const string = (): string => decoder.decode(bytes(varint()));
  const columnCount = varint();
  const rowCount = varint();
  if (columnCount !== HTTP_LOG_COLUMNS.length) throw new RangeError(`Native block has ${columnCount} columns, expected ${HTTP_LOG_COLUMNS.length}`);
  const columns: unknown[][] = [];
  for (const [name, type] of HTTP_LOG_COLUMNS) {
    const gotName = string();
    const gotType = string();
    if (gotName !== name || gotType !== type) throw new RangeError(`Native column ${gotName} ${gotType}, expected ${name} ${type}`);
    const values: unknown[] = new Array(rowCount);
    const fixed = (width: number, read: (at: number) => unknown): void => {
      bytes(width * rowCount);
      for (let i = 0; i < rowCount; i++) values[i] = read(offset - width * (rowCount - i));
    };
    if (type === 'DateTime') fixed(4, (at) => view.getUint32(at, true));
    else if (type === 'UInt64') fixed(8, (at) => view.getBigUint64(at, true));
    else if (type === 'UInt16') fixed(2, (at) => view.getUint16(at, true));
    else for (let i = 0; i < rowCount; i++) values[i] = string();
    columns.push(values);
  }
  const [timestamp, resourceId, bytesSent, requestTimeMilli, responseStatus, cacheStatus, method, remoteAddr, url] = columns as [
    number[], bigint[], bigint[], bigint[], number[], string[], string[], string[], string[],
  ];
  return Array.from({ length: rowCount }, (_, i) => ({
    timestamp: timestamp[i]!,
    resourceId: resourceId[i]!,
    bytesSent: bytesSent[i]!,
    requestTimeMilli: requestTimeMilli[i]!,
    responseStatus: responseStatus[i]!,
    cacheStatus: cacheStatus[i]!,
    method: method[i]!,
    remoteAddr: remoteAddr[i]!,
    url: url[i]!,
  }));
}
