/**
 * Cap'n Proto → `DecodedRecord`, with capnp-ts and the generated `HttpLogRecord` reader.
 *
 * capnp-ts reads lazily: a corrupt pointer only throws when its field is read. Every field
 * is therefore read here, inside one try, so a bad message fails as a `DecodeError` at
 * decode time and never later in the pipeline.
 */
import { Data, Message, Pointer, Struct } from 'capnp-ts';
import { HttpLogRecord } from '../../schema/http_log.capnp.js';
import { DecodeError, InvalidTextError, TimestampRangeError } from '../errors.ts';
import { messageFramingProblem } from './capnpFraming.ts';
import { MAX_DATETIME_SECONDS, type DecodedRecord } from './httpLogRow.ts';

/**
 * Decodes one message in standard (unpacked) framing. Throws `DecodeError`,
 * `TimestampRangeError`, or `InvalidTextError` (a text that is not valid UTF-8 or lacks its
 * NUL terminator). The other text rules (control characters, lengths, token patterns) are
 * `validateRecord`'s.
 */
export function decodeRecord(bytes: Uint8Array): DecodedRecord {
  const fast = readPlainRecord(bytes);
  if (fast !== undefined) {
    if (fast.timestamp > MAX_DATETIME_SECONDS) throw timestampError(BigInt(fast.timestamp) * 1000n);
    return fast;
  }
  return decodeWithCapnpTs(bytes);
}

function timestampError(millis: bigint): TimestampRangeError {
  return new TimestampRangeError(`timestampEpochMilli ${millis} is after 2106-02-07 06:28:15 UTC, the end of ClickHouse DateTime`);
}

/** Field offsets of `HttpLogRecord` (schema/http_log.capnp), as capnpc-ts generated them. */
const DATA_WORDS = 5;
const POINTERS = 4;

/**
 * The common case, read straight off the bytes: one segment, a struct root with at least
 * this schema's data words and pointers, and four plain ASCII texts. capnp-ts builds a
 * Message, an arena and a pointer object per field, which caps decoding near 40,000
 * records a second on one core; this reads the same fields ~10× faster. Anything else
 * (several segments, far or null pointers, an older or odd layout, non-ASCII text, any
 * bound in doubt) returns undefined, and capnp-ts decodes it, with its own checks and
 * errors. src/domain/decodeRecord.test.ts checks that both agree on every message.
 */
function readPlainRecord(bytes: Uint8Array): DecodedRecord | undefined {
  const length = bytes.byteLength;
  if (length < 16) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  // Segment table: (segment count − 1), then each segment's size in words.
  if (view.getUint32(0, true) !== 0) return undefined;
  const words = view.getUint32(4, true);
  if (8 + words * 8 !== length) return undefined;
  const segment = 8;
  // The root pointer: a struct pointer (kind 0) at word 0.
  const rootLow = view.getUint32(segment, true);
  const dataWords = view.getUint16(segment + 4, true);
  const pointerCount = view.getUint16(segment + 6, true);
  // (All zero is a null root: capnp-ts gives it its default values.)
  if ((rootLow & 3) !== 0 || (rootLow === 0 && dataWords === 0 && pointerCount === 0)) return undefined;
  const structWord = 1 + (rootLow >> 2); // signed offset, in words, from the end of the pointer
  if (dataWords < DATA_WORDS || pointerCount < POINTERS) return undefined;
  if (structWord < 1 || structWord + dataWords + pointerCount > words) return undefined;
  const data = segment + structWord * 8;
  const pointers = data + dataWords * 8;
  const cacheStatus = readAsciiText(bytes, view, pointers, words, 0);
  const method = readAsciiText(bytes, view, pointers + 8, words, 1);
  const rawRemoteAddr = readAsciiText(bytes, view, pointers + 16, words, 2);
  const url = readAsciiText(bytes, view, pointers + 24, words, 3);
  if (cacheStatus === undefined || method === undefined || rawRemoteAddr === undefined || url === undefined) return undefined;
  checkNoOverlap(fastRanges);
  const millis = view.getBigUint64(data, true);
  if (millis > 0xffff_ffff_ffffn) return undefined; // far past DateTime: capnp-ts path reports it
  return {
    timestamp: Math.floor(Number(millis) / 1000),
    resourceId: view.getBigUint64(data + 8, true),
    bytesSent: view.getBigUint64(data + 16, true),
    requestTimeMilli: view.getBigUint64(data + 24, true),
    responseStatus: view.getUint16(data + 32, true),
    cacheStatus,
    method,
    rawRemoteAddr,
    url,
  };
}

/** A Text pointer at byte `at` of the (only) segment: a list of bytes ending in NUL, all ASCII. */
/**
 * Where each text's bytes are (start, end with the NUL), per field: a writer puts every
 * text in bytes of its own, so two texts that share bytes mean a corrupt pointer (a bit flip
 * that points `url` at the address, the fault fuzzing found): refused as `invalid_text`.
 * Module-level scratch, safe because decoding is synchronous and never re-entered.
 */
const fastRanges = new Float64Array(8);
const TEXT_FIELDS = ['cache_status', 'method', 'remote_addr', 'url'] as const;

/** Throws `InvalidTextError` when two non-empty texts share a byte; `buffers[i]` (when given) is the segment text i is in. */
function checkNoOverlap(ranges: Float64Array, buffers?: readonly unknown[]): void {
  for (let a = 0; a < 4; a++) {
    const aStart = ranges[2 * a]!;
    const aEnd = ranges[2 * a + 1]!;
    if (aEnd - aStart <= 1) continue; // empty: only a NUL (or a null pointer), no content to share
    for (let b = a + 1; b < 4; b++) {
      const bStart = ranges[2 * b]!;
      const bEnd = ranges[2 * b + 1]!;
      if (bEnd - bStart <= 1 || (buffers !== undefined && buffers[a] !== buffers[b])) continue;
      if (aStart < bEnd && bStart < aEnd) throw new InvalidTextError(TEXT_FIELDS[b]!, `${TEXT_FIELDS[b]} shares bytes with ${TEXT_FIELDS[a]}: a corrupt pointer`);
    }
  }
}

function readAsciiText(bytes: Uint8Array, view: DataView, at: number, words: number, field: number): string | undefined {
  const low = view.getUint32(at, true);
  const high = view.getUint32(at + 4, true);
  if ((low & 3) !== 1 || (high & 7) !== 2) return undefined; // a list pointer of bytes, nothing else
  const count = high >>> 3; // bytes, with the NUL
  const start = at + 8 + (low >> 2) * 8;
  if (count < 1 || start < 8 || start + count > 8 + words * 8 || bytes[start + count - 1] !== 0) return undefined;
  const end = start + count - 1;
  fastRanges[2 * field] = start;
  fastRanges[2 * field + 1] = start + count;
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (bytes[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (!ascii) return undefined;
  return end - start <= 64 ? String.fromCharCode(...bytes.subarray(start, end)) : latin1.decode(bytes.subarray(start, end));
}

const latin1 = new TextDecoder('latin1');

/** capnp-ts's reading of a message: every case the fast path declines. Exported for the test that compares them. */
export function decodeWithCapnpTs(bytes: Uint8Array): DecodedRecord {
  // Checked before capnp-ts allocates anything for the segments the message claims.
  const framing = messageFramingProblem(bytes);
  if (framing !== undefined) throw withoutStack(() => new DecodeError(`not a valid Cap'n Proto HttpLogRecord: ${framing}`));
  let record: DecodedRecord;
  try {
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const root = new Message(buffer, false, false).getRoot(HttpLogRecord);
    const millis = root.getTimestampEpochMilli();
    record = {
      timestamp: Number(millis / 1000n),
      resourceId: root.getResourceId(),
      bytesSent: root.getBytesSent(),
      requestTimeMilli: root.getRequestTimeMilli(),
      responseStatus: root.getResponseStatus(),
      cacheStatus: readText(root, 0),
      method: readText(root, 1),
      rawRemoteAddr: readText(root, 2),
      url: readText(root, 3),
    };
    checkNoOverlap(slowRanges, slowBuffers);
    // The bigint division above is exact; `Number` only loses precision far past the range check.
    if (millis / 1000n > BigInt(MAX_DATETIME_SECONDS)) {
      throw timestampError(millis);
    }
  } catch (error) {
    if (error instanceof TimestampRangeError || error instanceof InvalidTextError) throw error;
    throw new DecodeError(`not a valid Cap'n Proto HttpLogRecord: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return record;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * An error built without capturing a stack trace: most of what rejecting a malformed
 * message costs is V8 walking the stack for an `Error` whose stack nobody reads (the dead
 * letter carries its code and message). Rejecting stays cheap under a flood.
 */
function withoutStack<E extends Error>(make: () => E): E {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * Text field `index` of the root, from its bytes: capnp-ts's own `getText` decodes UTF-8
 * leniently (it never checks continuation bytes, so a corrupt text becomes some other
 * string) and ignores a missing NUL terminator. Both mean the pointer does not point at a
 * text: the message is refused as `invalid_text`. A null pointer is the empty text.
 */
const slowRanges = new Float64Array(8);
const slowBuffers: unknown[] = [undefined, undefined, undefined, undefined];

function readText(root: HttpLogRecord, index: number): string {
  const field = TEXT_FIELDS[index]!;
  slowRanges[2 * index] = 0;
  slowRanges[2 * index + 1] = 0;
  slowBuffers[index] = undefined;
  const pointer = Struct.getPointer(index, root);
  if (Pointer.isNull(pointer)) return '';
  const bytes = Data.fromPointer(pointer).toUint8Array();
  if (bytes.byteLength === 0 || bytes[bytes.byteLength - 1] !== 0) throw new InvalidTextError(field, `${field} is not NUL-terminated`);
  slowRanges[2 * index] = bytes.byteOffset;
  slowRanges[2 * index + 1] = bytes.byteOffset + bytes.byteLength;
  slowBuffers[index] = bytes.buffer;
  try {
    return utf8.decode(bytes.subarray(0, bytes.byteLength - 1));
  } catch {
    throw new InvalidTextError(field, `${field} is not valid UTF-8`);
  }
}
