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

/** More segments than any sane writer produces; a larger count means the stream is garbage. */
const MAX_SEGMENTS = 512;

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
