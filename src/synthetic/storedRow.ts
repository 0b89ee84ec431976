import { anonymizeAddress } from '../domain/anonymizeAddress.ts';
import type { SourceRecord } from '../domain/encodeRecord.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';

/**
 * The row a synthetic record becomes in ClickHouse, without the Kafka round trip: for
 * benchmarks that measure encodings on exactly what the product would send.
 */
export function storedRowOf(record: SourceRecord): HttpLogRow {
  const { timestampEpochMilli, remoteAddr, ...fields } = record;
  return { ...fields, timestamp: Number(timestampEpochMilli / 1000n), remoteAddr: anonymizeAddress(remoteAddr).value };
}
