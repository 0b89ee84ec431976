/**
 * The two shapes a record takes inside the process.
 *
 * A `DecodedRecord` still holds the client's raw address; an `HttpLogRow` holds only the
 * anonymized one. Only `HttpLogRow` is accepted by the encoders, so the type checker
 * enforces that a raw address cannot reach ClickHouse.
 */

export interface RecordFields {
  /** Seconds since the Unix epoch, UTC: `floor(timestampEpochMilli / 1000)`. Fits `DateTime`. */
  readonly timestamp: number;
  readonly resourceId: bigint;
  readonly bytesSent: bigint;
  readonly requestTimeMilli: bigint;
  readonly responseStatus: number;
  readonly cacheStatus: string;
  readonly method: string;
  readonly url: string;
}

export interface DecodedRecord extends RecordFields {
  /** The client address exactly as the edge logged it. Never leaves the process. */
  readonly rawRemoteAddr: string;
}

export interface HttpLogRow extends RecordFields {
  /** The anonymized address (`1.2.3.X`, `2001:db8:85a3::X` or `X`). */
  readonly remoteAddr: string;
}

/** The largest value of ClickHouse `DateTime` (UInt32 seconds): 2106-02-07 06:28:15 UTC. */
export const MAX_DATETIME_SECONDS = 0xffff_ffff;

/** `YYYY-MM-DD hh:mm:ss` in UTC, as ClickHouse prints a `DateTime` in the UTC time zone. */
export function formatDateTime(seconds: number): string {
  const iso = new Date(seconds * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

/** The row as it would be stored, with the table's column names (used by `inspect`). */
export interface StoredRowJson {
  readonly timestamp: string;
  readonly resource_id: string;
  readonly bytes_sent: string;
  readonly request_time_milli: string;
  readonly response_status: number;
  readonly cache_status: string;
  readonly method: string;
  readonly remote_addr: string;
  readonly url: string;
}

export function toStoredRowJson(row: HttpLogRow): StoredRowJson {
  return {
    timestamp: formatDateTime(row.timestamp),
    resource_id: row.resourceId.toString(),
    bytes_sent: row.bytesSent.toString(),
    request_time_milli: row.requestTimeMilli.toString(),
    response_status: row.responseStatus,
    cache_status: row.cacheStatus,
    method: row.method,
    remote_addr: row.remoteAddr,
    url: row.url,
  };
}
