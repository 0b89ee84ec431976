// ClickHouse-compatible HTTP endpoint in front of one in-process chdb Session, for the
// local stack on machines without Docker (docs/architecture.md, "The local stack").
//
// Wire protocol (the subset of ClickHouse's HTTP interface, port 8123, that our clients use):
// - `GET /` and `GET /ping` answer `Ok.\n`.
// - A query comes from the `query` URL parameter or, without one, from the request body.
//   With a `query` parameter, a non-INSERT query gets the body appended after a newline;
//   an `INSERT INTO t [(cols)] [SETTINGS ...] FORMAT F` takes the body as its data.
//   Without one, a body `INSERT ... FORMAT F\n<data>` is split the way ClickHouse does:
//   the data starts after the first newline following the format name.
// - `INSERT INTO t ... SELECT ... FROM input('<structure>') ... FORMAT F` in the `query`
//   parameter takes the body as the data `input()` reads: it runs as the same statement
//   over `file('<tmp>', 'F', '<structure>', '<codec>')`, with the URL's settings.
// - The data body may be compressed per `Content-Encoding` (gzip, deflate, br, zstd, xz,
//   lz4). It is written to a temp file and inserted with
//   `INSERT ... FROM INFILE '<tmp>' COMPRESSION '<codec>' SETTINGS ... FORMAT F`, so the
//   engine itself decompresses and parses it: binary formats (Native, RowBinary) work and
//   behave as in the real server.
// - Every URL parameter other than the reserved ones (query, database, default_format,
//   user, password, query_id, session_id, param_*, and ClickHouse's other HTTP-only
//   parameters) is a setting. INSERTs get them in their SETTINGS clause; other queries
//   get them with `SET` before and have them restored after.
// - `database` parameter or `X-ClickHouse-Database` header selects the database.
// - Credentials: `X-ClickHouse-User`/`X-ClickHouse-Key`, HTTP Basic, or `user`/`password`
//   parameters, checked against one configured user.
// - Errors: the status ClickHouse's exceptionCodeToHTTPStatus gives the code (500 by
//   default), header `X-ClickHouse-Exception-Code: N`, body `Code: N. DB::Exception: ...\n`.
// - Results: the query's FORMAT clause, else `default_format`, else TabSeparated; headers
//   `X-ClickHouse-Format`, `X-ClickHouse-Query-Id`, `X-ClickHouse-Summary`. With
//   `enable_http_compression=1` the response is compressed per `Accept-Encoding`.
//
// All queries run one at a time through a single queue: a chdb Session is one
// connection, and per-request `USE`/`SET` state must not leak between requests.
//
// Usage: node stack/clickhouse-endpoint.ts --port 8123 --data <dir>
//        (CLICKHOUSE_ENDPOINT_USER, default `default`; CLICKHOUSE_ENDPOINT_PASSWORD, default empty)

import { randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import { Session } from 'chdb';
import type { ChdbResult } from 'chdb';

// ---------------------------------------------------------------------------------------
// Configuration

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8123' },
    data: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (args.data === undefined) {
  process.stderr.write('usage: node stack/clickhouse-endpoint.ts --port 8123 --data <dir>\n');
  process.exit(2);
}
const PORT = Number.parseInt(args.port, 10);
const HOST = args.host;
const DATA_DIR = resolve(args.data);
const USER = process.env.CLICKHOUSE_ENDPOINT_USER || 'default';
const PASSWORD = process.env.CLICKHOUSE_ENDPOINT_PASSWORD ?? '';

/** Upper bound on a request body held in memory; far above the proxy's 1–2 MiB. */
const MAX_BODY_BYTES = 256 * 1024 * 1024;

/** URL parameters that are not settings (ClickHouse's HTTPHandler reserved names). */
const RESERVED_PARAMS = new Set([
  'query', 'database', 'default_format', 'user', 'password', 'query_id', 'session_id',
  'session_timeout', 'session_check', 'close_session', 'compress', 'decompress', 'quota_key',
  'stacktrace', 'role', 'buffer_size', 'wait_end_of_query', 'client_protocol_version',
]);

/** HTTP Content-Encoding → the name `FROM INFILE ... COMPRESSION` expects. */
const CODECS: Record<string, string> = {
  gzip: 'gzip', 'x-gzip': 'gzip', deflate: 'deflate', br: 'br', zstd: 'zstd', xz: 'xz',
  lz4: 'lz4', bz2: 'bz2', snappy: 'snappy',
};

// Error codes (from the engine's own system.errors) and the HTTP status ClickHouse maps
// them to in src/Server/HTTP/exceptionCodeToHTTPStatus.cpp, so clients that branch on
// 4xx vs 5xx behave here as against the real server.
const AUTHENTICATION_FAILED = 516;
const STATUS_BY_CODE = new Map<number, number>([
  [194, 401], // REQUIRED_PASSWORD
  ...[192, 193, 516, 512, 497].map((c): [number, number] => [c, 403]), // auth / access
  ...[36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168,
    223, 62, 117, 53, 321].map((c): [number, number] => [c, 400]), // bad request / parse
  ...[60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511].map(
    (c): [number, number] => [c, 404]), // UNKNOWN_*
  [229, 413], // QUERY_IS_TOO_LARGE
  [48, 501], // NOT_IMPLEMENTED
  [209, 503], [76, 503], [439, 503], // SOCKET_TIMEOUT, CANNOT_OPEN_FILE, CANNOT_SCHEDULE_TASK
  [381, 411], // HTTP_LENGTH_REQUIRED
  [159, 408], // TIMEOUT_EXCEEDED
  [779, 415], // UNSUPPORTED_MEDIA_TYPE
]);

/** An error that carries a ClickHouse exception code and a ready-made message. */
class ClickHouseError extends Error {
  code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------
// The engine: one session, one queue

mkdirSync(DATA_DIR, { recursive: true });
const session = new Session(DATA_DIR);
// Temp files for INSERT bodies: private to this process, removed at exit.
const TMP_DIR = mkdtempSync(join(tmpdir(), 'ch-endpoint-'));

let queue: Promise<unknown> = Promise.resolve();
/** Run `job` after every job queued before it; a failure does not stall the queue. */
function serial<T>(job: () => Promise<T>): Promise<T> {
  const run = queue.then(job, job);
  queue = run.catch(() => undefined);
  return run;
}

function exec(sql: string, format = 'TabSeparated'): Promise<ChdbResult> {
  return session.queryAsync(sql, { format });
}

/** chdb throws `Query failed: Code: N. DB::Exception: ...`; keep the ClickHouse part. */
function toClickHouseError(err: unknown): ClickHouseError {
  if (err instanceof ClickHouseError) return err;
  const raw = err instanceof Error ? err.message : String(err);
  const message = raw.replace(/^Query failed:\s*/, '').trim();
  const typed = (err as { clickhouseCode?: unknown }).clickhouseCode;
  const parsed = /Code: (\d+)\./.exec(message)?.[1];
  const code = typeof typed === 'number' ? typed : parsed !== undefined ? Number(parsed) : 1001;
  const text = message.startsWith('Code: ') ? message : `Code: ${code}. DB::Exception: ${message}`;
  return new ClickHouseError(code, text);
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const quoteIdent = (name: string): string => '`' + name.replaceAll('\\', '\\\\').replaceAll('`', '\\`') + '`';
const quoteString = (value: string): string =>
  "'" + value.replaceAll('\\', '\\\\').replaceAll("'", "\\'") + "'";

function settingsFrom(url: URL): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of url.searchParams) {
    if (RESERVED_PARAMS.has(name) || name.startsWith('param_')) continue;
    // Names go into SQL unquoted, so they must be plain identifiers.
    if (!IDENT.test(name)) throw new ClickHouseError(115, `Code: 115. DB::Exception: Unknown setting '${name}'. (UNKNOWN_SETTING)`);
    out.push([name, value]);
  }
  return out;
}

/**
 * Apply settings with `SET` and return a function that restores the session's previous
 * values: `SET k = DEFAULT` for those that were at their default, the saved value otherwise
 * (a client may have changed a setting session-wide with an explicit SET query).
 */
async function applySettings(settings: Array<[string, string]>): Promise<() => Promise<void>> {
  if (settings.length === 0) return async () => {};
  const names = settings.map(([n]) => quoteString(n)).join(',');
  const before = (await exec(
    `SELECT name, value, changed FROM system.settings WHERE name IN (${names})`,
    'JSONCompactEachRow',
  )).text().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as [string, string, number]);
  const applied: Array<[string, string, number]> = [];
  const restore = async (): Promise<void> => {
    for (const [name, value, changed] of applied) {
      await exec(changed ? `SET ${name} = ${quoteString(value)}` : `SET ${name} = DEFAULT`).catch(() => {});
    }
  };
  try {
    for (const [name, value] of settings) {
      const prev = before.find(([n]) => n === name);
      await exec(`SET ${name} = ${quoteString(value)}`); // throws UNKNOWN_SETTING itself
      if (prev) applied.push(prev);
    }
  } catch (err) {
    await restore();
    throw err;
  }
  return restore;
}

// ---------------------------------------------------------------------------------------
// Parsing the INSERT head

const Q_IDENT = String.raw`(?:\x60(?:[^\x60\\]|\\.)+\x60|"(?:[^"\\]|\\.)+"|[A-Za-z_][A-Za-z0-9_$]*)`;
// INSERT INTO [TABLE] [db.]table [(cols)] [SETTINGS ...] FORMAT Name
const INSERT_HEAD = new RegExp(
  String.raw`^\s*INSERT\s+INTO\s+(?:TABLE\s+)?(${Q_IDENT}(?:\s*\.\s*${Q_IDENT})?)\s*(\([^()]*\))?\s*` +
    String.raw`(?:SETTINGS\s+([\s\S]+?)\s+)?FORMAT\s+([A-Za-z0-9_]+)`,
  'i',
);

interface InsertHead {
  target: string;
  columns: string;
  inlineSettings: string | undefined;
  format: string;
  /** Offset just past the format name. */
  end: number;
}

function parseInsertHead(text: string): InsertHead | undefined {
  const m = INSERT_HEAD.exec(text);
  if (!m || m[1] === undefined || m[4] === undefined) return undefined;
  // The name must end at a word boundary (FORMAT Native, not FORMAT NativeX…).
  const end = m[0].length;
  if (end < text.length && /[A-Za-z0-9_]/.test(text[end] ?? '')) return undefined;
  return { target: m[1], columns: m[2] ?? '', inlineSettings: m[3], format: m[4], end };
}

/** Where inline data starts: after the first newline in the whitespace, else after it all. */
function dataStart(text: string, from: number): number {
  let i = from;
  while (i < text.length && /\s/.test(text[i] ?? '')) {
    if (text[i] === '\n') return i + 1;
    i++;
  }
  return i;
}

function decompress(body: Buffer, encoding: string): Buffer {
  switch (encoding) {
    case '':
    case 'identity':
      return body;
    case 'gzip':
    case 'x-gzip':
      return zlib.gunzipSync(body);
    case 'deflate':
      return zlib.inflateSync(body);
    case 'br':
      return zlib.brotliDecompressSync(body);
    case 'zstd':
      return zlib.zstdDecompressSync(body);
    default:
      throw new ClickHouseError(779, `Code: 779. DB::Exception: Content-Encoding '${encoding}' is only supported for INSERT data with a query parameter. (UNSUPPORTED_MEDIA_TYPE)`);
  }
}

// ---------------------------------------------------------------------------------------
// Request handling

interface Outcome {
  body: Buffer;
  format: string;
  summary: Record<string, string>;
}

// INSERT ... SELECT ... FROM input('structure') ... FORMAT Name: the data is the body.
const INPUT_INSERT = new RegExp(
  String.raw`^(\s*INSERT\s+INTO\s[\s\S]*?\bFROM\s+)input\(\s*('(?:[^'\\]|\\.)*')\s*\)([\s\S]*?)\s+FORMAT\s+([A-Za-z0-9_]+)\s*$`,
  'i',
);

/** Run `INSERT … SELECT … FROM input(…)` with the body's data in a temp file read by `file()`. */
async function runInputInsert(m: RegExpExecArray, data: Buffer, codec: string, settings: Array<[string, string]>): Promise<ChdbResult> {
  const file = join(TMP_DIR, `${randomUUID()}.bin`);
  await writeFile(file, data);
  const restore = await applySettings(settings);
  try {
    return await exec(`${m[1]}file(${quoteString(file)}, ${quoteString(m[4]!)}, ${m[2]}, ${quoteString(codec)})${m[3]}`);
  } finally {
    await restore();
    await unlink(file).catch(() => {});
  }
}

/** Run an INSERT whose data is `data`, compressed with `codec` ('none' if not). */
async function runInsert(head: InsertHead, data: Buffer, codec: string, settings: Array<[string, string]>): Promise<ChdbResult> {
  const file = join(TMP_DIR, `${randomUUID()}.bin`);
  await writeFile(file, data);
  try {
    const clauses = [
      ...(head.inlineSettings !== undefined ? [head.inlineSettings] : []),
      ...settings.map(([k, v]) => `${k}=${quoteString(v)}`),
    ];
    const sql =
      `INSERT INTO ${head.target} ${head.columns} FROM INFILE ${quoteString(file)} ` +
      `COMPRESSION ${quoteString(codec)}` +
      (clauses.length > 0 ? ` SETTINGS ${clauses.join(', ')}` : '') +
      ` FORMAT ${head.format}`;
    return await exec(sql);
  } finally {
    await unlink(file).catch(() => {});
  }
}

async function execute(url: URL, req: IncomingMessage, body: Buffer): Promise<Outcome> {
  const settings = settingsFrom(url);
  const database = url.searchParams.get('database') ?? header(req, 'x-clickhouse-database') ?? 'default';
  const defaultFormat = url.searchParams.get('default_format') ?? 'TabSeparated';
  const encoding = (header(req, 'content-encoding') ?? '').trim().toLowerCase();
  const queryParam = url.searchParams.get('query');

  // Work out what to run before queueing, so that parsing costs no queue time.
  let insert: { head: InsertHead; data: Buffer; codec: string } | undefined;
  let inputInsert: { match: RegExpExecArray; codec: string } | undefined;
  let sql: string;
  const inputMatch = queryParam === null ? null : INPUT_INSERT.exec(queryParam);
  if (inputMatch !== null) {
    const codec = encoding === '' || encoding === 'identity' ? 'none' : CODECS[encoding];
    if (codec === undefined) throw new ClickHouseError(779, `Code: 779. DB::Exception: Unknown Content-Encoding '${encoding}'. (UNSUPPORTED_MEDIA_TYPE)`);
    inputInsert = { match: inputMatch, codec };
    sql = '';
  } else if (queryParam !== null) {
    const head = parseInsertHead(queryParam);
    const rest = head ? queryParam.slice(dataStart(queryParam, head.end)) : '';
    if (head && (rest.length === 0 || encoding === '')) {
      const codec = encoding === '' || encoding === 'identity' ? 'none' : CODECS[encoding];
      if (codec === undefined) throw new ClickHouseError(779, `Code: 779. DB::Exception: Unknown Content-Encoding '${encoding}'. (UNSUPPORTED_MEDIA_TYPE)`);
      // Data that starts in the query parameter continues in the body (ClickHouse semantics).
      const data = rest.length > 0 ? Buffer.concat([Buffer.from(rest), body]) : body;
      insert = { head, data, codec };
      sql = '';
    } else {
      const extra = body.length > 0 ? decompress(body, encoding).toString('utf8') : '';
      sql = extra.length > 0 ? `${queryParam}\n${extra}` : queryParam;
    }
  } else {
    const plain = decompress(body, encoding);
    // latin1 maps bytes 1:1 to UTF-16 units, so offsets in the text are byte offsets.
    const text = plain.toString('latin1');
    const head = parseInsertHead(text);
    if (head) {
      insert = { head, data: plain.subarray(dataStart(text, head.end)), codec: 'none' };
      sql = '';
    } else {
      sql = plain.toString('utf8');
    }
  }
  if (insert === undefined && inputInsert === undefined && sql.trim() === '') {
    throw new ClickHouseError(62, 'Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)');
  }
  if (!IDENT.test(database)) {
    throw new ClickHouseError(81, `Code: 81. DB::Exception: Database ${database} does not exist. (UNKNOWN_DATABASE)`);
  }

  return serial(async () => {
    await exec(`USE ${quoteIdent(database)}`);
    if (inputInsert !== undefined) {
      const r = await runInputInsert(inputInsert.match, body, inputInsert.codec, settings);
      return { body: Buffer.alloc(0), format: inputInsert.match[4]!, summary: summaryOf(r, true) };
    }
    if (insert !== undefined) {
      const r = await runInsert(insert.head, insert.data, insert.codec, settings);
      // chdb reports the rows it read from the file; for an INSERT those are the rows
      // parsed (a deduplicated retry still reads them).
      return { body: Buffer.alloc(0), format: insert.head.format, summary: summaryOf(r, true) };
    }
    const restore = await applySettings(settings);
    try {
      const r = await exec(sql, defaultFormat);
      const format = /\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$/i.exec(sql)?.[1] ?? defaultFormat;
      return { body: Buffer.from(r.bytes()), format, summary: summaryOf(r, false) };
    } finally {
      await restore();
    }
  });
}

function summaryOf(r: ChdbResult, isInsert: boolean): Record<string, string> {
  return {
    read_rows: String(r.rowsRead),
    read_bytes: String(r.bytesRead),
    written_rows: String(isInsert ? r.rowsRead : 0),
    written_bytes: String(isInsert ? r.bytesRead : 0),
    total_rows_to_read: String(r.rowsRead),
    result_rows: String(isInsert ? 0 : r.rowsRead),
    elapsed_ns: String(Math.round(r.elapsed * 1e9)),
  };
}

function contentTypeOf(format: string): string {
  const f = format.toLowerCase();
  if (f.startsWith('json')) return 'application/json; charset=UTF-8';
  if (f.startsWith('tabseparated') || f.startsWith('tsv')) return 'text/tab-separated-values; charset=UTF-8';
  if (f.startsWith('csv')) return 'text/csv; charset=UTF-8; header=absent';
  if (/^(native|rowbinary|parquet|arrow|orc|avro|protobuf|capnproto|msgpack)/.test(f)) return 'application/octet-stream';
  return 'text/plain; charset=UTF-8';
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function credentials(req: IncomingMessage, url: URL): { user: string; password: string } {
  const hUser = header(req, 'x-clickhouse-user');
  if (hUser !== undefined) return { user: hUser, password: header(req, 'x-clickhouse-key') ?? '' };
  const auth = header(req, 'authorization');
  if (auth?.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? { user: decoded, password: '' } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return { user: url.searchParams.get('user') ?? 'default', password: url.searchParams.get('password') ?? '' };
}

/** Constant-time comparison, so response timing does not leak the password. */
function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ClickHouseError(229, `Code: 229. DB::Exception: Request body is larger than ${MAX_BODY_BYTES} bytes. (QUERY_IS_TOO_LARGE)`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolvePromise(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function compressResponse(req: IncomingMessage, url: URL, body: Buffer): { body: Buffer; encoding?: string } {
  if (url.searchParams.get('enable_http_compression') !== '1' || body.length === 0) return { body };
  const accept = (header(req, 'accept-encoding') ?? '').toLowerCase();
  const offered = new Set(accept.split(',').map((s) => s.split(';')[0]?.trim()));
  if (offered.has('zstd')) return { body: zlib.zstdCompressSync(body), encoding: 'zstd' };
  if (offered.has('br')) return { body: zlib.brotliCompressSync(body), encoding: 'br' };
  if (offered.has('gzip')) return { body: zlib.gzipSync(body), encoding: 'gzip' };
  if (offered.has('deflate')) return { body: zlib.deflateSync(body), encoding: 'deflate' };
  return { body };
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<{ status: number; bytesIn: number }> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const queryId = url.searchParams.get('query_id') ?? randomUUID();
  res.setHeader('X-ClickHouse-Query-Id', queryId);
  res.setHeader('X-ClickHouse-Server-Display-Name', 'chdb-endpoint');

  const hasQuery = url.searchParams.has('query');
  if ((req.method === 'GET' || req.method === 'HEAD') && !hasQuery && (url.pathname === '/' || url.pathname === '/ping')) {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' }).end('Ok.\n');
    return { status: 200, bytesIn: 0 };
  }
  if (url.pathname !== '/') {
    const msg = `Code: 1001. DB::Exception: There is no handle ${url.pathname}. (UNKNOWN_EXCEPTION)\n`;
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' }).end(msg);
    req.resume();
    return { status: 404, bytesIn: 0 };
  }

  const { user, password } = credentials(req, url);
  if (user !== USER || !sameSecret(password, PASSWORD)) {
    req.resume(); // discard the body without holding it
    return sendError(res, new ClickHouseError(
      AUTHENTICATION_FAILED,
      `Code: ${AUTHENTICATION_FAILED}. DB::Exception: ${user}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)`,
    ), 0);
  }

  let bytesIn = 0;
  try {
    const body = await readBody(req);
    bytesIn = body.length;
    const outcome = await execute(url, req, body);
    const out = compressResponse(req, url, outcome.body);
    res.writeHead(200, {
      'Content-Type': contentTypeOf(outcome.format),
      'X-ClickHouse-Format': outcome.format,
      'X-ClickHouse-Summary': JSON.stringify(outcome.summary),
      ...(out.encoding !== undefined ? { 'Content-Encoding': out.encoding } : {}),
    });
    res.end(out.body);
    return { status: 200, bytesIn };
  } catch (err) {
    return sendError(res, toClickHouseError(err), bytesIn);
  }
}

function sendError(res: ServerResponse, err: ClickHouseError, bytesIn: number): { status: number; bytesIn: number } {
  const status = STATUS_BY_CODE.get(err.code) ?? 500;
  if (!res.headersSent) {
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Exception-Code': String(err.code),
    });
  }
  res.end(`${err.message}\n`);
  return { status, bytesIn };
}

// ---------------------------------------------------------------------------------------
// Server lifecycle

const server = createServer((req, res) => {
  const started = performance.now();
  handle(req, res)
    .catch((err: unknown) => sendError(res, toClickHouseError(err), 0))
    .then(({ status, bytesIn }) => {
      // One line per request; never the query text or the body (they carry data).
      const ms = (performance.now() - started).toFixed(1);
      process.stderr.write(`${new Date().toISOString()} ${req.method} ${status} ${ms}ms in=${bytesIn}B\n`);
    });
});
server.keepAliveTimeout = 5_000;

server.listen(PORT, HOST, () => {
  process.stderr.write(`${new Date().toISOString()} clickhouse-endpoint listening on http://${HOST}:${PORT} data=${DATA_DIR}\n`);
});
server.on('error', (err) => {
  process.stderr.write(`${new Date().toISOString()} fatal: ${err.message}\n`);
  process.exit(1);
});

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  process.stderr.write(`${new Date().toISOString()} ${signal}: draining\n`);
  // Stop accepting; idle keep-alive sockets close now, busy ones after their response.
  const closed = new Promise<void>((r) => server.close(() => r()));
  server.closeIdleConnections();
  // Let the running query (and any already queued) finish before closing the engine,
  // bounded so that a stuck query cannot hold the process forever.
  await Promise.race([queue, new Promise((r) => setTimeout(r, 8_000))]);
  // Give the last responses a moment to flush before the process goes.
  await Promise.race([closed, new Promise((r) => setTimeout(r, 2_000))]);
  session.close();
  rmSync(TMP_DIR, { recursive: true, force: true });
  process.stderr.write(`${new Date().toISOString()} stopped\n`);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
