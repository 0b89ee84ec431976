/**
 * Splits a byte stream of concatenated Cap'n Proto messages in standard framing
 * (https://capnproto.org/encoding.html#serialization-over-a-stream):
 *
 *   u32 LE  segment count − 1
 *   u32 LE  size of each segment, in 8-byte words
 *   padding to an 8-byte boundary
 *   the segments
 *
 * It only reads the segment table, so it can find message boundaries in a stream whose
 * messages are themselves corrupt.
 */
import { FramingError } from '../errors.ts';

/**
 * More segments than any sane writer produces; a larger count means the stream is garbage.
 * (The C++ reader refuses 512 and more too.)
 */
export const MAX_SEGMENTS = 512;

/**
 * Why `bytes` cannot be one Cap'n Proto message in standard framing, judged from its
 * segment table alone, or undefined when the table is consistent with its length.
 *
 * This runs before capnp-ts sees a message: capnp-ts allocates an array as long as the
 * segment count the message *claims* (a 16-byte message claiming 2²⁵ segments took
 * ~137 ms to reject). Here the count is checked against the bytes really there before
 * anything is read, so the loop is bounded by `min(count, MAX_SEGMENTS, length / 4)` and
 * nothing is allocated: rejecting a malformed message costs nanoseconds.
 */
export function messageFramingProblem(bytes: Uint8Array): string | undefined {
  const length = bytes.byteLength;
  if (length < 8) return `${length} bytes is shorter than a Cap'n Proto segment table`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  const segmentCount = view.getUint32(0, true) + 1;
  if (segmentCount > MAX_SEGMENTS) return `the segment table claims ${segmentCount} segments (at most ${MAX_SEGMENTS})`;
  const headerBytes = Math.ceil((4 + 4 * segmentCount) / 8) * 8;
  if (headerBytes > length) return `the segment table claims ${segmentCount} segments, more than ${length} bytes can hold`;
  let total = headerBytes;
  for (let i = 0; i < segmentCount; i++) {
    total += view.getUint32(4 + 4 * i, true) * 8;
    if (total > length) return `the segment table claims ${total}+ bytes, the message has ${length}`;
  }
  return undefined;
}

export interface Frame {
  readonly bytes: Uint8Array;
  /** Byte offset of the frame in the stream, for error messages. */
  readonly offset: number;
}

/** Yields each whole message; throws `FramingError` when the stream ends inside one. */
export function* splitFrames(stream: Uint8Array): Generator<Frame> {
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  let offset = 0;
  while (offset < stream.byteLength) {
    if (stream.byteLength - offset < 8) {
      throw new FramingError(`stream ends inside a segment table at byte ${offset}`);
    }
    const segmentCount = view.getUint32(offset, true) + 1;
    if (segmentCount > MAX_SEGMENTS) {
      throw new FramingError(`segment count ${segmentCount} at byte ${offset} is not a Cap'n Proto message`);
    }
    const headerBytes = Math.ceil((4 + 4 * segmentCount) / 8) * 8;
    if (stream.byteLength - offset < headerBytes) {
      throw new FramingError(`stream ends inside a segment table at byte ${offset}`);
    }
    let bodyWords = 0;
    for (let i = 0; i < segmentCount; i++) bodyWords += view.getUint32(offset + 4 + 4 * i, true);
    const total = headerBytes + bodyWords * 8;
    if (stream.byteLength - offset < total) {
      throw new FramingError(`stream ends inside a message at byte ${offset}: it declares ${total} bytes, ${stream.byteLength - offset} remain`);
    }
    yield { bytes: stream.subarray(offset, offset + total), offset };
    offset += total;
  }
}
