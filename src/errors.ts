/**
 * Every error the product raises, in one place (after undici's `errors.js`).
 *
 * Each carries a stable `code` that logs, metrics and tests can key on, whether a retry
 * can succeed (`retriable`), and the pipeline `stage` it came from. What an insert failure
 * leads to is decided in one place, the failure policy table below
 * ({@link insertFailurePolicy}); the `retriable` flag of the sending errors follows from it.
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
    super(message, 'ANON_PROXY_RATE_LIMITED', isResent(policyForAnswer({ status: 503 })), 'sending');
  }
}

/** The body exceeded the proxy's `client_max_body_size` (413). The batch must be split. */
export class BodyTooLargeError extends AnonymizerError {
  constructor(message = 'the proxy refused the body as too large (413)') {
    super(message, 'ANON_BODY_TOO_LARGE', isResent(policyForAnswer({ status: 413 })), 'sending');
  }
}

/** The connection failed or timed out; whether ClickHouse stored the batch is unknown. */
export class NetworkError extends AnonymizerError {
  /** True when the request cannot have reached the proxy (connection refused), so no slot was used. */
  readonly neverSent: boolean;
  /** True when TLS refused the peer (an untrusted or wrong certificate, a failed handshake): nothing was sent, and nothing will be until the certificate or CA changes. */
  readonly tls: boolean;
  constructor(message: string, neverSent: boolean, options?: AnonymizerErrorOptions & { readonly tls?: boolean }) {
    super(message, 'ANON_NETWORK', isResent(RETRY), 'sending', options);
    this.neverSent = neverSent;
    this.tls = options?.tls ?? false;
  }
}

/** ClickHouse (or the proxy in front of it) answered with an error status. */
export class ClickHouseError extends AnonymizerError {
  readonly status: number;
  /** The `Code: N` ClickHouse reported, when it did. */
  readonly clickhouseCode: number | undefined;
  constructor(message: string, status: number, clickhouseCode: number | undefined) {
    // Retriable follows from the failure policy below, never from a guess at the call site.
    super(message, clickhouseCode === undefined ? `ANON_HTTP_${status}` : `ANON_CLICKHOUSE_${clickhouseCode}`, isResent(policyForAnswer({ status, code: clickhouseCode, message })), 'sending');
    this.status = status;
    this.clickhouseCode = clickhouseCode;
  }
}

// ---------------------------------------------------------------------------------------
// The failure policy: what ClickHouse or the proxy answered → what happens.
// This section is the only place that decides; `retriable` on every error above follows
// from it, and docs/guarantees.md describes it.

/**
 * What the pipeline does about a failed insert:
 * - `retry`: the same batch, the same bytes and token, at the next slot (or soon, when the
 *   answer used no slot);
 * - `split`: the proxy refused the body as too large; the batch is replaced by two halves;
 * - `quarantine`: this batch's data can never be stored as it is; it is set aside and the
 *   next batch goes;
 * - `blocked`: an answer that would fail every batch (credentials, a missing table, no
 *   grant). The batch stays at the head of the queue and is retried once per slot, nothing
 *   is quarantined, ingestion goes on into the spool, and delivery is reported blocked
 *   (log, metric, /readyz) until an attempt gets through;
 * - `fatal`: not an answer at all (a bug, a spool file that cannot be read): the pipeline's
 *   error path stops the process.
 */
export type InsertFailureAction = 'retry' | 'split' | 'quarantine' | 'blocked' | 'fatal';

/** Why delivery is blocked: a stable label for the metric, /readyz and the logs. */
export type BlockedReason =
  | 'authentication'
  | 'access_denied'
  | 'readonly'
  | 'unknown_database'
  | 'unknown_table'
  | 'schema_mismatch'
  | 'setting_refused'
  /** TLS refused ClickHouse's (or the proxy's) certificate: CLICKHOUSE_CA_FILE, or the server's certificate, is wrong. */
  | 'tls'
  /** Any other answer below 500 that the table does not know, by status. */
  | `http_${number}`;

/** The blocked reasons that exist whatever the answer, so a dashboard sees them at 0. */
export const BLOCKED_REASONS: readonly BlockedReason[] = ['authentication', 'access_denied', 'readonly', 'unknown_database', 'unknown_table', 'schema_mismatch', 'setting_refused', 'tls'];

export interface InsertFailurePolicy {
  readonly action: InsertFailureAction;
  /**
   * Whether the failed request used up the proxy's slot. When it did (it reached
   * ClickHouse), the next attempt waits for the next slot; a 503 or a 413 from the proxy,
   * or a refused connection, did not, and the next attempt goes after the probe delay.
   */
  readonly usedSlot: boolean;
  /** With `blocked` only. */
  readonly reason?: BlockedReason;
}

/** An answer from ClickHouse or the proxy: the HTTP status and, when there was one, ClickHouse's code. */
export interface InsertAnswer {
  readonly status: number;
  readonly code?: number | undefined;
  /** The error text; only the codes whose meaning depends on it (252) read it. */
  readonly message?: string;
}

const RETRY: InsertFailurePolicy = { action: 'retry', usedSlot: true };
const RETRY_NO_SLOT: InsertFailurePolicy = { action: 'retry', usedSlot: false };
const SPLIT: InsertFailurePolicy = { action: 'split', usedSlot: false };
const QUARANTINE: InsertFailurePolicy = { action: 'quarantine', usedSlot: true };
const FATAL: InsertFailurePolicy = { action: 'fatal', usedSlot: true };
const blocked = (reason: BlockedReason): InsertFailurePolicy => ({ action: 'blocked', usedSlot: true, reason });

/** A code whose meaning depends on the message: the first rule whose pattern matches, else `otherwise`. */
interface MessageRule {
  readonly when: RegExp;
  readonly then: InsertFailurePolicy;
  readonly otherwise: InsertFailurePolicy;
}

/**
 * The table, by ClickHouse error code (names from the engine's `errorCodeToName`, 26.7).
 * A known code decides whatever the HTTP status, except 413 (always split).
 */
export const POLICY_BY_CLICKHOUSE_CODE: ReadonlyMap<number, InsertFailurePolicy | MessageRule> = new Map<number, InsertFailurePolicy | MessageRule>([
  // This batch's data: the same bytes can never succeed. 6 CANNOT_PARSE_TEXT,
  // 26 CANNOT_PARSE_QUOTED_STRING, 27 CANNOT_PARSE_INPUT_ASSERTION_FAILED,
  // 32 ATTEMPT_TO_READ_AFTER_EOF, 33 CANNOT_READ_ALL_DATA, 38 CANNOT_PARSE_DATE,
  // 41 CANNOT_PARSE_DATETIME, 53 TYPE_MISMATCH, 69 ARGUMENT_OUT_OF_BOUND,
  // 70 CANNOT_CONVERT_TYPE, 72 CANNOT_PARSE_NUMBER, 117 INCORRECT_DATA,
  // 128 TOO_LARGE_ARRAY_SIZE (a corrupt Native length), 432 UNKNOWN_CODEC,
  // 441 CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING, 469 VIOLATED_CONSTRAINT (a CHECK constraint).
  ...[6, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 128, 432, 441, 469].map((code): [number, InsertFailurePolicy] => [code, QUARANTINE]),
  // 252 TOO_MANY_PARTS names two answers. "Too many partitions for single INSERT block" is
  // this batch's (its rows span more partitions than max_partitions_per_insert_block); the
  // pinned throw_on_max_partitions_per_insert_block=0 makes it unreachable, and if a server
  // still says it, the batch is quarantined rather than retried forever. "Too many parts"
  // in a partition is the server's merges falling behind: it passes, so retry.
  [252, { when: /too many partitions for (a )?single insert block/i, then: QUARANTINE, otherwise: RETRY }],
  // Answers that would fail every batch: delivery is blocked until the cause is gone.
  // 192 UNKNOWN_USER, 193 WRONG_PASSWORD, 194 REQUIRED_PASSWORD, 195 IP_ADDRESS_NOT_ALLOWED,
  // 516 AUTHENTICATION_FAILED.
  ...[192, 193, 194, 195, 516].map((code): [number, InsertFailurePolicy] => [code, blocked('authentication')]),
  // 291 DATABASE_ACCESS_DENIED, 497 ACCESS_DENIED (no INSERT grant).
  ...[291, 497].map((code): [number, InsertFailurePolicy] => [code, blocked('access_denied')]),
  // 164 READONLY (a readonly user or profile), 242 TABLE_IS_READ_ONLY (a replica without Keeper).
  ...[164, 242].map((code): [number, InsertFailurePolicy] => [code, blocked('readonly')]),
  [81, blocked('unknown_database')], // UNKNOWN_DATABASE
  [60, blocked('unknown_table')], // UNKNOWN_TABLE: `anonymizer migrate` has not run, or the table was dropped
  // 8 THERE_IS_NO_COLUMN, 10 NOT_FOUND_COLUMN_IN_BLOCK, 16 NO_SUCH_COLUMN_IN_TABLE,
  // 47 UNKNOWN_IDENTIFIER: the table is not the shape our insert expects.
  ...[8, 10, 16, 47].map((code): [number, InsertFailurePolicy] => [code, blocked('schema_mismatch')]),
  // 115 UNKNOWN_SETTING, 452 SETTING_CONSTRAINT_VIOLATION: a pinned setting is refused.
  ...[115, 452].map((code): [number, InsertFailurePolicy] => [code, blocked('setting_refused')]),
  // Passing server trouble, whatever status it comes with: 159 TIMEOUT_EXCEEDED,
  // 201 QUOTA_EXCEEDED, 202 TOO_MANY_SIMULTANEOUS_QUERIES, 209 SOCKET_TIMEOUT,
  // 210 NETWORK_ERROR, 241 MEMORY_LIMIT_EXCEEDED, 319 UNKNOWN_STATUS_OF_INSERT, 394 QUERY_WAS_CANCELLED.
  ...[159, 201, 202, 209, 210, 241, 319, 394].map((code): [number, InsertFailurePolicy] => [code, RETRY]),
]);

/**
 * Decides what to do about one answer. Pure, and tested as a table (src/errors.test.ts).
 * Order: 413 splits; a known ClickHouse code decides; a 503 without a code is the proxy's
 * rate limit (no slot used); 408 and 429 pass; 401/403 are credentials; any other status
 * below 500 is an answer the table does not know, which would fail every batch: blocked;
 * 5xx is retried.
 */
export function policyForAnswer(answer: InsertAnswer): InsertFailurePolicy {
  const { status, code } = answer;
  if (status === 413) return SPLIT;
  const rule = code === undefined ? undefined : POLICY_BY_CLICKHOUSE_CODE.get(code);
  if (rule !== undefined) return 'when' in rule ? (rule.when.test(answer.message ?? '') ? rule.then : rule.otherwise) : rule;
  if (status === 503 && code === undefined) return RETRY_NO_SLOT;
  if (status === 408 || status === 429) return RETRY;
  if (status === 401) return blocked('authentication');
  if (status === 403) return blocked('access_denied');
  if (status < 500) return blocked(`http_${status}`);
  return RETRY;
}

/** The policy for any failure of an insert: an answer, a network failure, or something else. */
export function insertFailurePolicy(error: unknown): InsertFailurePolicy {
  if (error instanceof ClickHouseError) return policyForAnswer({ status: error.status, code: error.clickhouseCode, message: error.message });
  if (error instanceof BodyTooLargeError) return SPLIT;
  if (error instanceof ProxyRateLimitedError) return RETRY_NO_SLOT;
  // Whether ClickHouse stored it is unknown: the same token makes the retry safe.
  // A certificate refused would refuse every batch: blocked, retried once per slot, until the CA or certificate is fixed.
  if (error instanceof NetworkError && error.tls) return blocked('tls');
  if (error instanceof NetworkError) return error.neverSent ? RETRY_NO_SLOT : RETRY;
  if (error instanceof AnonymizerError && error.retriable) return RETRY;
  return FATAL;
}

/** What to do about a failed insert (the action of {@link insertFailurePolicy}). */
export function classifyInsertFailure(error: unknown): InsertFailureAction {
  return insertFailurePolicy(error).action;
}

/** `retriable` means: the same request is sent again (retried, or retried while delivery is blocked). */
function isResent(policy: InsertFailurePolicy): boolean {
  return policy.action === 'retry' || policy.action === 'blocked';
}

/** The spool directory cannot be used: held by another process, unwritable, or corrupt. */
export class SpoolError extends AnonymizerError {
  constructor(message: string, options?: AnonymizerErrorOptions) {
    super(message, 'ANON_SPOOL', false, 'processing', options);
  }
}

/**
 * A text field that cannot be stored as it is: not valid UTF-8, a control character (NUL
 * included), a field over its documented length, or a `method`/`cache_status` outside its
 * token pattern (src/domain/validateRecord.ts). The message is dead-lettered.
 *
 * The code is the `x-dlq-reason` value itself, `invalid_text` as docs/guarantees.md lists
 * it (the dead-letter sink writes `error.code` into that header), so it is lower case,
 * unlike the ANON_ codes before it.
 */
export class InvalidTextError extends AnonymizerError {
  /** The field at fault (`url`, `method`, `cache_status`, `remote_addr`). */
  readonly field: string;
  constructor(field: string, message: string) {
    super(message, 'invalid_text', false, 'processing');
    this.field = field;
  }
}

/**
 * A record whose row, alone in a body, compresses over `PROXY_MAX_BODY_BYTES`: no request
 * can ever carry it, so it is dead-lettered (`x-dlq-reason: row_too_large`, the code) before
 * sealing, instead of stopping ingestion.
 */
export class RowTooLargeError extends AnonymizerError {
  readonly bodyBytes: number;
  constructor(bodyBytes: number, limit: number) {
    super(`the row alone compresses to ${bodyBytes} bytes, over the proxy's body limit of ${limit}`, 'row_too_large', false, 'processing');
    this.bodyBytes = bodyBytes;
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

/**
 * A peer (the Kafka brokers, ClickHouse or its proxy) that cannot be reached or refuses us
 * at start: not resolvable, refusing, an untrusted certificate, wrong credentials. One line
 * naming the endpoint (never a credential) and the cause; the command exits non-zero.
 */
export class PeerUnreachableError extends AnonymizerError {
  readonly peer: 'Kafka' | 'ClickHouse';
  readonly endpoint: string;
  readonly reason: string;
  constructor(peer: 'Kafka' | 'ClickHouse', endpoint: string, reason: string, options?: AnonymizerErrorOptions) {
    super(`cannot connect to ${peer} at ${endpoint}: ${reason}`, peer === 'Kafka' ? 'ANON_KAFKA_UNREACHABLE' : 'ANON_CLICKHOUSE_UNREACHABLE', false, 'configuring', options);
    this.peer = peer;
    this.endpoint = endpoint;
    this.reason = reason;
  }
}

/**
 * The slot directory (PROXY_SLOT_DIR) could not be read or written (a full disk, a directory
 * removed or unwritable). Not an insert failure and never fatal: that request is paced on the
 * instance's own clock, as without the directory, and the next one tries the directory again.
 */
export class SlotDirError extends AnonymizerError {
  readonly dir: string;
  readonly errno: string;
  constructor(dir: string, errno: string, options?: AnonymizerErrorOptions) {
    super(`the slot directory ${dir} could not be used (${errno}): this request is paced on its own`, 'ANON_SLOT_DIR', true, 'sending', options);
    this.dir = dir;
    this.errno = errno;
  }
}
