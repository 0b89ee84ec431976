/**
 * Reading and writing one block of ClickHouse's `Native` format, column by column, for the
 * insert bodies (nativeFormat.ts, compactFormat.ts):
 *
 *   varint columns, varint rows, then per column: String name, String type, the values.
 *   String = varint length + UTF-8 bytes; integers little-endian at their width.
 *   LowCardinality(String) = UInt64 key version (1, "shared dictionaries with additional
 *   keys"), UInt64 index type (the index width code, with the "has additional keys" and
 *   "update dictionary" bits), UInt64 key count, the keys as Strings, UInt64 row count,
 *   then one index a row into the keys, at the width the index type names.
 *
 * (ClickHouse's NativeWriter and SerializationLowCardinality; clickhouse-go writes
 * LowCardinality the same way.)
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes of ClickHouse's unsigned LEB128 varint for `value` (string lengths, counts). */
export function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

/** LowCardinality's index type: width code 0–3 (UInt8…UInt64) | HasAdditionalKeys | NeedUpdateDictionary. */
const LC_HAS_ADDITIONAL_KEYS = 1 << 9;
const LC_NEED_UPDATE_DICTIONARY = 1 << 10;
const LC_SHARED_DICTIONARIES_WITH_ADDITIONAL_KEYS = 1;

/** A growable byte buffer: the writer does not need the body's size up front. */
export class BlockWriter {
  #bytes: Uint8Array;
  #view: DataView;
  #offset = 0;

  constructor(initialSize = 1 << 16) {
    this.#bytes = new Uint8Array(initialSize);
    this.#view = new DataView(this.#bytes.buffer);
  }

  /** Makes room for `size` more bytes and returns the offset to write them at. */
  reserve(size: number): number {
    const need = this.#offset + size;
    if (need > this.#bytes.byteLength) {
      const grown = new Uint8Array(Math.max(need, this.#bytes.byteLength * 2));
      grown.set(this.#bytes.subarray(0, this.#offset));
      this.#bytes = grown;
      this.#view = new DataView(grown.buffer);
    }
    const at = this.#offset;
    this.#offset = need;
    return at;
  }

  get bytes(): Uint8Array {
    return this.#bytes;
  }
  get view(): DataView {
    return this.#view;
  }

  varint(value: number): void {
    const at = this.reserve(varintLength(value));
    let i = at;
    while (value >= 0x80) {
      this.#bytes[i++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.#bytes[i] = value;
  }

  uint64(value: number): void {
    const at = this.reserve(8);
    this.#view.setUint32(at, value >>> 0, true);
    this.#view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
  }

  raw(value: Uint8Array): void {
    const at = this.reserve(value.byteLength);
    this.#bytes.set(value, at);
  }

  string(value: string): void {
    // ASCII, the common case, needs no TextEncoder allocation.
    const length = value.length;
    let ascii = true;
    for (let i = 0; i < length; i++) {
      if (value.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (!ascii) {
      const bytes = encoder.encode(value);
      this.varint(bytes.byteLength);
      this.raw(bytes);
      return;
    }
    this.varint(length);
    const at = this.reserve(length);
    const bytes = this.#bytes;
    for (let i = 0; i < length; i++) bytes[at + i] = value.charCodeAt(i);
  }

  /** A column header: its name and type. */
  column(name: string, type: string): void {
    this.string(name);
    this.string(type);
  }

  /** A `String` column. */
  strings(values: readonly string[]): void {
    for (const value of values) this.string(value);
  }

  /** A column of unsigned integers `width` bytes wide (1, 2, 4 or 8), little-endian. */
  uints(values: ArrayLike<number | bigint>, width: 1 | 2 | 4 | 8): void {
    const at = this.reserve(values.length * width);
    const view = this.#view;
    const n = values.length;
    // One loop per width: the per-value branch would cost more than the write.
    if (width === 8) for (let i = 0; i < n; i++) view.setBigUint64(at + i * 8, BigInt(values[i]!), true);
    else if (width === 4) for (let i = 0; i < n; i++) view.setUint32(at + i * 4, Number(values[i]!), true);
    else if (width === 2) for (let i = 0; i < n; i++) view.setUint16(at + i * 2, Number(values[i]!), true);
    else for (let i = 0; i < n; i++) this.#bytes[at + i] = Number(values[i]!);
  }

  /**
   * A `LowCardinality(String)` column (or, with `keyWidth`, `LowCardinality(UInt16)` and
   * the like): the distinct values once, in order of first appearance, then one index a
   * row at the narrowest width that holds them.
   */
  lowCardinality(values: readonly string[]): void;
  lowCardinality(values: readonly number[], keyWidth: 1 | 2 | 4): void;
  lowCardinality(values: readonly (string | number)[], keyWidth?: 1 | 2 | 4): void {
    const keys: (string | number)[] = [];
    const indexOf = new Map<string | number, number>();
    const indexes = new Uint32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const value = values[i]!;
      let index = indexOf.get(value);
      if (index === undefined) {
        index = keys.length;
        keys.push(value);
        indexOf.set(value, index);
      }
      indexes[i] = index;
    }
    const code = keys.length <= 0x100 ? 0 : keys.length <= 0x10000 ? 1 : 2;
    this.uint64(LC_SHARED_DICTIONARIES_WITH_ADDITIONAL_KEYS);
    this.uint64(code | LC_HAS_ADDITIONAL_KEYS | LC_NEED_UPDATE_DICTIONARY);
    this.uint64(keys.length);
    if (keyWidth === undefined) this.strings(keys as string[]);
    else this.uints(keys as number[], keyWidth);
    this.uint64(values.length);
    this.uints(indexes, code === 0 ? 1 : code === 1 ? 2 : 4);
  }

  finish(): Uint8Array {
    return this.#bytes.subarray(0, this.#offset);
  }
}

/** The reading side: every read is bounds-checked, so a truncated body is an error. */
export class BlockReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get atEnd(): boolean {
    return this.#offset === this.#bytes.byteLength;
  }

  take(length: number): number {
    if (length < 0 || this.#offset + length > this.#bytes.byteLength) throw new RangeError('Native block ends inside a value');
    const at = this.#offset;
    this.#offset += length;
    return at;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (this.#offset >= this.#bytes.byteLength) throw new RangeError('Native block ends inside a varint');
      const byte = this.#bytes[this.#offset++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
  }

  uint64(): number {
    const at = this.take(8);
    const value = this.#view.getBigUint64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`Native block count ${value} is out of range`);
    return Number(value);
  }

  string(): string {
    const length = this.varint();
    const at = this.take(length);
    return decoder.decode(this.#bytes.subarray(at, at + length));
  }

  strings(count: number): string[] {
    const values = new Array<string>(count);
    for (let i = 0; i < count; i++) values[i] = this.string();
    return values;
  }

  /** `count` unsigned integers `width` bytes wide; 8-byte ones as bigint. */
  uints(count: number, width: 1 | 2 | 4): number[];
  uints(count: number, width: 8): bigint[];
  uints(count: number, width: 1 | 2 | 4 | 8): number[] | bigint[] {
    const at = this.take(count * width);
    const view = this.#view;
    if (width === 8) return Array.from({ length: count }, (_, i) => view.getBigUint64(at + i * 8, true));
    const values = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const o = at + i * width;
      values[i] = width === 4 ? view.getUint32(o, true) : width === 2 ? view.getUint16(o, true) : view.getUint8(o);
    }
    return values;
  }

  /** A `LowCardinality(String)` column (or, with `keyWidth`, of integers) as `lowCardinality` writes it, and ClickHouse does for Native. */
  lowCardinality(count: number): string[];
  lowCardinality(count: number, keyWidth: 1 | 2 | 4): number[];
  lowCardinality(count: number, keyWidth?: 1 | 2 | 4): (string | number)[] {
    const version = this.uint64();
    if (version !== LC_SHARED_DICTIONARIES_WITH_ADDITIONAL_KEYS) throw new RangeError(`LowCardinality key version ${version} is not supported`);
    const type = this.uint64();
    if ((type & LC_HAS_ADDITIONAL_KEYS) === 0 || (type & 0xff) > 3) throw new RangeError(`LowCardinality index type ${type} is not supported`);
    const keyCount = this.uint64();
    const keys: (string | number)[] = keyWidth === undefined ? this.strings(keyCount) : this.uints(keyCount, keyWidth);
    const rows = this.uint64();
    if (rows !== count) throw new RangeError(`LowCardinality column has ${rows} rows, the block ${count}`);
    const width = (1 << (type & 0xff)) as 1 | 2 | 4 | 8;
    const indexes = width === 8 ? this.uints(count, 8).map(Number) : this.uints(count, width);
    return indexes.map((index) => {
      const key = keys[index];
      if (key === undefined) throw new RangeError(`LowCardinality index ${index} is past its ${keys.length} keys`);
      return key;
    });
  }
}
