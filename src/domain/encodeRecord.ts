/**
 * `HttpLogRecord` → one Cap'n Proto message in standard framing, with the generated
 * capnp-ts builder. Used by `anonymizer produce` to stand in for the edge servers.
 */
import { Message } from 'capnp-ts';
import { HttpLogRecord } from '../../schema/http_log.capnp.js';

export interface SourceRecord {
  readonly timestampEpochMilli: bigint;
  readonly resourceId: bigint;
  readonly bytesSent: bigint;
  readonly requestTimeMilli: bigint;
  readonly responseStatus: number;
  readonly cacheStatus: string;
  readonly method: string;
  readonly remoteAddr: string;
  readonly url: string;
}

export function encodeRecord(record: SourceRecord): Buffer {
  const message = new Message();
  const root = message.initRoot(HttpLogRecord);
  root.setTimestampEpochMilli(record.timestampEpochMilli);
  root.setResourceId(record.resourceId);
  root.setBytesSent(record.bytesSent);
  root.setRequestTimeMilli(record.requestTimeMilli);
  root.setResponseStatus(record.responseStatus);
  root.setCacheStatus(record.cacheStatus);
  root.setMethod(record.method);
  root.setRemoteAddr(record.remoteAddr);
  root.setUrl(record.url);
  return Buffer.from(message.toArrayBuffer());
}
