/**
 * Every error the product raises, in one place (after undici's `errors.js`).
 *
 * Each carries a stable `code` that logs, metrics and tests can key on, whether a retry
 * can succeed (`retriable`), and the pipeline `stage` it came from. Callers decide what
 * to do from these fields through {@link classifyInsertFailure}, never from messages.
 */

export type Stage = 'receiving' | 'processing' | 'sending' | 'configuring';

export interface AnonymizerErrorOptions {
  readonly cause?: unknown;
}

export class AnonymizerError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  readonly stage: Stage;

  constructor(message: string, code: string, retriable: boolean, stage: Stage, options?: AnonymizerErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = retriable;
    this.stage = stage;
  }
}

/** Bad configuration: reported at start as one line, never as a stack trace. */
export class ConfigError extends AnonymizerError {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(message, 'ANON_CONFIG', false, 'configuring');
    this.setting = setting;
  }
}

/** A Kafka message that is not a valid Cap'n Proto HttpLogRecord. */
export class DecodeError extends AnonymizerError {
  constructor(message: string, options?: AnonymizerErrorOptions) {
    super(message, 'ANON_DECODE', false, 'processing', options);
  }
}

/** A record whose time does not fit ClickHouse `DateTime` (1970-01-01 … 2106-02-07 06:28:15 UTC). */
export class TimestampRangeError extends AnonymizerError {
  constructor(message: string) {
    super(message, 'ANON_TIMESTAMP_RANGE', false, 'processing');
  }
}

/** A byte stream of Cap'n Proto messages that ends in the middle of a message. */
export class FramingError extends AnonymizerError {
  constructor(message: string) {
    super(message, 'ANON_FRAMING', false, 'receiving');
  }
}

/** The proxy refused the request before forwarding it (nginx `limit_req`: 503). No slot was used. */
export class ProxyRateLimitedError extends AnonymizerError {
  constructor(message = 'the proxy refused the request: rate limit (503)') {
    super(message, 'ANON_PROXY_RATE_LIMITED', true, 'sending');
  }
}

/** The body exceeded the proxy's `client_max_body_size` (413). The batch must be split. */
export class BodyTooLargeError extends AnonymizerError {
  constructor(message = 'the proxy refused the body as too large (413)') {
    super(message, 'ANON_BODY_TOO_LARGE', false, 'sending');
  }
}

/** The connection failed or timed out; whether ClickHouse stored the batch is unknown. */
export class NetworkError extends AnonymizerError {
  /** True when the request cannot have reached the proxy (connection refused), so no slot was used. */
  readonly neverSent: boolean;
  constructor(message: string, neverSent: boolean, options?: AnonymizerErrorOptions) {
    super(message, 'ANON_NETWORK', true, 'sending', options);
    this.neverSent = neverSent;
  }
}

/** ClickHouse (or the proxy in front of it) answered with an error status. */
export class ClickHouseError extends AnonymizerError {
  readonly status: number;
  /** The `Code: N` ClickHouse reported, when it did. */
  readonly clickhouseCode: number | undefined;
  constructor(message: string, status: number, clickhouseCode: number | undefined, retriable: boolean) {
    super(message, clickhouseCode === undefined ? `ANON_HTTP_${status}` : `ANON_CLICKHOUSE_${clickhouseCode}`, retriable, 'sending');
    this.status = status;
    this.clickhouseCode = clickhouseCode;
  }
}

/** What the pipeline does about a failed insert. */
export type InsertFailureAction = 'retry' | 'split' | 'quarantine' | 'fatal';

/**
 * ClickHouse codes that mean the data itself is bad: sending the same bytes again can
 * never succeed, so the batch is set aside rather than retried forever.
 * 6 CANNOT_PARSE_TEXT, 26 CANNOT_PARSE_QUOTED_STRING, 27 CANNOT_PARSE_INPUT_ASSERTION_FAILED,
 * 32 ATTEMPT_TO_READ_AFTER_EOF, 33 CANNOT_READ_ALL_DATA, 38 CANNOT_PARSE_DATE,
 * 41 CANNOT_PARSE_DATETIME, 53 TYPE_MISMATCH, 69 ARGUMENT_OUT_OF_BOUND, 70 CANNOT_CONVERT_TYPE,
 * 72 CANNOT_PARSE_NUMBER, 117 INCORRECT_DATA, 128 TOO_LARGE_ARRAY_SIZE (a corrupt Native
 * length), 432 UNKNOWN_CODEC, 441 CANNOT_PARSE_UUID, 469 VIOLATED_CONSTRAINT (a row the
 * table's CHECK constraints refuse).
 */
const DATA_ERROR_CODES: ReadonlySet<number> = new Set([6, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 128, 432, 441, 469]);

/**
 * ClickHouse codes that mean the deployment is wrong (table or column missing, no
 * permission): no retry helps until an operator acts, and the data is fine.
 * 16 NO_SUCH_COLUMN_IN_TABLE, 60 UNKNOWN_TABLE, 81 UNKNOWN_DATABASE, 497 ACCESS_DENIED,
 * 516 AUTHENTICATION_FAILED.
 */
const FATAL_CODES: ReadonlySet<number> = new Set([16, 60, 81, 497, 516]);

/** Decides what to do about a failed insert. Pure, so it is tested as a table. */
export function classifyInsertFailure(error: unknown): InsertFailureAction {
  if (error instanceof BodyTooLargeError) return 'split';
  if (error instanceof ProxyRateLimitedError || error instanceof NetworkError) return 'retry';
  if (error instanceof ClickHouseError) {
    if (error.status === 413) return 'split';
    const code = error.clickhouseCode;
    if (code !== undefined && DATA_ERROR_CODES.has(code)) return 'quarantine';
    if (code !== undefined && FATAL_CODES.has(code)) return 'fatal';
    if (error.status === 401 || error.status === 403) return 'fatal';
    return 'retry';
  }
  if (error instanceof AnonymizerError) return error.retriable ? 'retry' : 'fatal';
  return 'fatal';
}

/** The spool directory cannot be used: held by another process, unwritable, or corrupt. */
export class SpoolError extends AnonymizerError {
  constructor(message: string, options?: AnonymizerErrorOptions) {
    super(message, 'ANON_SPOOL', false, 'processing', options);
  }
}

/** Why a spool file failed its check (`SpoolFileCorruptError.reason`). */
export type SpoolCorruption = 'foreign_name' | 'not_a_batch_file' | 'truncated' | 'header_checksum' | 'header_unreadable' | 'body_size' | 'body_checksum' | 'name_mismatch';

/**
 * A file in the spool that fails its check (name, header checksum, body checksum): disk
 * corruption, a file cut short, or a file that is not ours. It is quarantined, never sent.
 * `header` is what the batch claimed, when its header passed its own check.
 */
export class SpoolFileCorruptError extends SpoolError {
  readonly reason: SpoolCorruption;
  readonly header: { readonly token: string; readonly rowCount: number; readonly offsets: ReadonlyArray<readonly [number, number]> } | undefined;
  constructor(message: string, reason: SpoolCorruption, header?: SpoolFileCorruptError['header']) {
    super(message);
    this.reason = reason;
    this.header = header;
  }
}

/** errno codes that mean the spool's disk cannot take the write now (full, quota, I/O error). */
export const SPOOL_DISK_ERRNOS: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EIO']);

/**
 * The spool's disk refused a write (ENOSPC, EDQUOT, EIO). Nothing was published or
 * committed for the batch; the pipeline pauses consumption and retries the same batch.
 */
export class SpoolDiskError extends AnonymizerError {
  readonly dir: string;
  readonly errno: string;
  /** Bytes available to this process on the spool's filesystem when it happened (statfs), if known. */
  readonly freeBytes: number | undefined;
  constructor(dir: string, errno: string, freeBytes: number | undefined, options?: AnonymizerErrorOptions) {
    super(`the spool's disk refused a write (${errno}) in ${dir}: ${freeBytes === undefined ? 'free space unknown' : `${freeBytes} bytes free`}`, 'ANON_SPOOL_DISK', true, 'processing', options);
    this.dir = dir;
    this.errno = errno;
    this.freeBytes = freeBytes;
  }
}
