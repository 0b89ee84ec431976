/**
 * Cap'n Proto → `DecodedRecord`, with capnp-ts and the generated `HttpLogRecord` reader.
 *
 * capnp-ts reads lazily: a corrupt pointer only throws when its field is read. Every field
 * is therefore read here, inside one try, so a bad message fails as a `DecodeError` at
 * decode time and never later in the pipeline.
 */
import { Message } from 'capnp-ts';
import { HttpLogRecord } from '../../schema/http_log.capnp.js';
import { DecodeError, TimestampRangeError } from '../errors.ts';
import { MAX_DATETIME_SECONDS, type DecodedRecord } from './httpLogRow.ts';

/** Decodes one message in standard (unpacked) framing. Throws `DecodeError` or `TimestampRangeError`. */
export function decodeRecord(bytes: Uint8Array): DecodedRecord {
  let record: DecodedRecord;
  try {
    if (bytes.byteLength < 8) throw new Error(`${bytes.byteLength} bytes is shorter than a Cap'n Proto segment table`);
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const root = new Message(buffer, false, false).getRoot(HttpLogRecord);
    const millis = root.getTimestampEpochMilli();
    record = {
      timestamp: Number(millis / 1000n),
      resourceId: root.getResourceId(),
      bytesSent: root.getBytesSent(),
      requestTimeMilli: root.getRequestTimeMilli(),
      responseStatus: root.getResponseStatus(),
      cacheStatus: root.getCacheStatus(),
      method: root.getMethod(),
      rawRemoteAddr: root.getRemoteAddr(),
      url: root.getUrl(),
    };
    // The bigint division above is exact; `Number` only loses precision far past the range check.
    if (millis / 1000n > BigInt(MAX_DATETIME_SECONDS)) {
      throw new TimestampRangeError(`timestampEpochMilli ${millis} is after 2106-02-07 06:28:15 UTC, the end of ClickHouse DateTime`);
    }
  } catch (error) {
    if (error instanceof TimestampRangeError) throw error;
    throw new DecodeError(`not a valid Cap'n Proto HttpLogRecord: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return record;
}
