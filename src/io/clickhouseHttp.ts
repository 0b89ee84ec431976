/**
 * Wire protocol: ClickHouse's HTTP interface (https://clickhouse.com/docs/interfaces/http),
 * reached through the ch-proxy.
 *
 *   POST /?query=<insert statement>&database=<db>&<settings>
 *   Content-Encoding: br | zstd | gzip      (ClickHouse decompresses the body itself)
 *   X-ClickHouse-User / X-ClickHouse-Key    (credentials never go in the URL, so never in a proxy log)
 *   body: one Native block
 *
 * The statement follows the body's format (SealedBatch.format):
 *   Native           INSERT INTO <table> FORMAT Native   (bodies spooled by earlier versions)
 *   CompactNative1   INSERT INTO <table> (…) SELECT … FROM input('…') ORDER BY ALL FORMAT Native,
 *                    with input_format_native_allow_types_conversion=1 (src/encode/compactFormat.ts)
 *
 * Over https:// the connection is TLS (node:tls through undici's connector) with the
 * configured CA, and a client certificate for mTLS; `checkClickHouseTls` makes one TLS
 * handshake at start without sending a request, so it costs no proxy slot.
 *
 * Success is any 2xx. ClickHouse reports errors as a non-2xx status with
 * `X-ClickHouse-Exception-Code: N` and a body starting `Code: N. DB::Exception: …`.
 * The proxy's own refusals carry no such code: 503 is nginx `limit_req`, 413 is
 * `client_max_body_size`.
 *
 * Every insert pins the settings exactly-once depends on, since server defaults move
 * between versions (`async_insert` is on by default in ClickHouse 26):
 * async_insert=0, insert_deduplicate=1, deduplicate_blocks_in_dependent_materialized_views=1,
 * and the batch's insert_deduplication_token; and throw_on_max_partitions_per_insert_block=0,
 * so that a batch spanning many days is stored rather than refused.
 */
import { connect as tlsConnect } from 'node:tls';
import { isIP } from 'node:net';
import { request, errors as undiciErrors, Agent } from 'undici';
import type { TlsMaterial } from '../connections.ts';
import type { SealedBatch } from '../domain/batch.ts';
import { COMPACT_FORMAT, compactInsertQuery } from '../encode/compactFormat.ts';
import { BodyTooLargeError, ClickHouseError, NetworkError, PeerUnreachableError, ProxyRateLimitedError } from '../errors.ts';
import { describeConnectFailure, isTlsFailure } from './connectFailure.ts';

export interface ClickHouseHttpConfig {
  /** Base URL, e.g. `http://127.0.0.1:8124` (the proxy). */
  readonly url: string;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** The table inserts go to. Default `http_log`. */
  readonly table?: string;
  /** Give up on a request after this many ms without response headers or body progress. Default 120 000. */
  readonly timeoutMs?: number;
  /** For an https:// URL: the CA to trust (default: the system's) and a client certificate and key (mTLS). */
  readonly tls?: TlsMaterial;
}

/** What an insert sends: the body exactly as sealed, and the token every attempt repeats. */
export type InsertBody = Pick<SealedBatch, 'token' | 'format' | 'codec' | 'body'>;

export interface ClickHouseClient {
  /** Where requests go, without credentials: safe for logs and /readyz. */
  readonly endpoint?: string;
  /** Stores one sealed batch. Resolves on 2xx; rejects with a classified `AnonymizerError`. */
  insert(batch: InsertBody): Promise<void>;
  /** Runs one statement and returns the response body as text. */
  query(sql: string, settings?: Readonly<Record<string, string>>): Promise<string>;
  close(): Promise<void>;
}

export const PINNED_INSERT_SETTINGS: Readonly<Record<string, string>> = {
  async_insert: '0',
  insert_deduplicate: '1',
  deduplicate_blocks_in_dependent_materialized_views: '1',
  // A batch whose rows span more days than max_partitions_per_insert_block (100) would be
  // refused as a whole (Code: 252) however often it is sent. Each partition becomes its own
  // part either way, so splitting the batch by partition would cost more proxy slots for
  // the same parts; instead the limit only warns (docs/guarantees.md).
  throw_on_max_partitions_per_insert_block: '0',
};

/**
 * The statement and extra settings a body of `format` is inserted with. A compact body's
 * `resource_id` may be narrower than the table's: Native's type conversion widens it
 * (on by default; pinned, since the body depends on it).
 */
export function insertStatement(table: string, format: SealedBatch['format']): { query: string; settings: Readonly<Record<string, string>> } {
  if (format === COMPACT_FORMAT) return { query: compactInsertQuery(table), settings: { input_format_native_allow_types_conversion: '1' } };
  return { query: `INSERT INTO ${table} FORMAT Native`, settings: {} };
}

/** How much of an error body is kept in a message: enough for `Code: N. DB::Exception: …`. */
const MAX_ERROR_TEXT = 1_000;

export function createClickHouseHttp(config: ClickHouseHttpConfig): ClickHouseClient {
  const timeoutMs = config.timeoutMs ?? 120_000;
  const table = config.table ?? 'http_log';
  // One connection is all a paced client needs; keep-alive is short so a proxy restart
  // between slots never meets a stale socket.
  const dispatcher = new Agent({ connections: 1, keepAliveTimeout: 4_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, ...(config.tls && { connect: { ...config.tls } }) });
  const endpoint = redactedUrl(config.url);
  const headers = { 'x-clickhouse-user': config.user, 'x-clickhouse-key': config.password };

  const post = async (params: Record<string, string>, body: Uint8Array | string, extraHeaders: Record<string, string>): Promise<string> => {
    const url = new URL(config.url);
    url.pathname = '/';
    url.search = new URLSearchParams({ database: config.database, ...params }).toString();
    let response;
    try {
      response = await request(url, { method: 'POST', body, headers: { ...headers, ...extraHeaders }, dispatcher });
    } catch (error) {
      throw toNetworkError(error, endpoint);
    }
    let text: string;
    try {
      text = await response.body.text();
    } catch (error) {
      throw toNetworkError(error, endpoint);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return text;
    throw toHttpError(response.statusCode, response.headers['x-clickhouse-exception-code'], text, endpoint);
  };

  return {
    endpoint,
    async insert(batch) {
      const encoding: Record<string, string> = batch.codec === 'none' ? {} : { 'content-encoding': batch.codec };
      const statement = insertStatement(table, batch.format);
      await post(
        { query: statement.query, ...statement.settings, ...PINNED_INSERT_SETTINGS, insert_deduplication_token: batch.token },
        batch.body,
        { 'content-type': 'application/octet-stream', ...encoding },
      );
    },
    async query(sql, settings = {}) {
      return post({ ...settings }, sql, { 'content-type': 'text/plain; charset=utf-8' });
    },
    async close() {
      // Not close(), which waits for a request in flight: on shutdown an unanswered insert
      // is sent again, with the same token, by the next run.
      await dispatcher.destroy();
    },
  };
}

export function toHttpError(status: number, codeHeader: string | string[] | undefined, body: string, endpoint?: string): Error {
  const headerCode = Array.isArray(codeHeader) ? codeHeader[0] : codeHeader;
  const bodyCode = /Code: (\d+)\./.exec(body)?.[1];
  const codeText = headerCode ?? bodyCode;
  const code = codeText === undefined ? undefined : Number(codeText);
  if (status === 503 && code === undefined) return new ProxyRateLimitedError();
  if (status === 413) return new BodyTooLargeError();
  const text = body.trim().slice(0, MAX_ERROR_TEXT);
  return new ClickHouseError(`${endpoint ? `ClickHouse at ${endpoint} answered ` : ''}HTTP ${status}${text ? `: ${text}` : ''}`, status, code);
}

/** The URL without user, password, query or fragment: it may be logged. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    parsed.search = '';
    parsed.hash = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(an unparsable URL)';
  }
}

function toNetworkError(error: unknown, endpoint: string): NetworkError {
  const code = (error as { code?: string }).code;
  const refused = code === 'ECONNREFUSED';
  const timedOut = error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError;
  const tls = isTlsFailure(error);
  const what = timedOut ? 'timed out' : describeConnectFailure(error);
  // Refused, or TLS refused the certificate: the request never reached the proxy.
  return new NetworkError(`request to ClickHouse at ${endpoint} failed: ${what}`, refused || tls, { cause: error, tls });
}

/**
 * One TLS handshake with an https:// ClickHouse URL's host, and no request: resolves when
 * the certificate is trusted, throws a {@link PeerUnreachableError} naming the URL and the
 * cause otherwise (untrusted, wrong host name, refused, no answer within `timeoutMs`).
 */
export function checkClickHouseTls(url: string, tls: TlsMaterial = {}, timeoutMs = 10_000): Promise<void> {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const endpoint = redactedUrl(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port: Number(parsed.port || 443), ...(isIP(host) === 0 && { servername: host }), ...tls, ALPNProtocols: ['http/1.1'] });
    const fail = (error: unknown): void => {
      socket.destroy();
      reject(error instanceof PeerUnreachableError ? error : new PeerUnreachableError('ClickHouse', endpoint, describeConnectFailure(error), { cause: error }));
    };
    socket.setTimeout(timeoutMs, () => fail(new PeerUnreachableError('ClickHouse', endpoint, `no answer within ${Math.round(timeoutMs / 1000)} s`)));
    socket.once('secureConnect', () => {
      socket.end();
      resolve();
    });
    socket.once('error', fail);
  });
}
