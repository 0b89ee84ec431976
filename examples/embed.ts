/**
 * Embedding the anonymizer's operators in an Rx app of your own.
 *
 * The app below is the product's chain in miniature, built only from the package's public
 * entry (`http-log-anonymizer`):
 *
 *   Cap'n Proto buffers ─► decodeRecords ─► deadLetter ─► anonymizeAddresses ─► sealBatches
 *     ─► encodeBatches ─► spool.write                  (ingestion: into a durable spool)
 *   spool.pending() ─► pacedInsert ─► acknowledgeBatches (delivery: one request per slot)
 *
 * The records are made here (a stand-in for Kafka), and the sink is an in-memory
 * implementation of `ClickHouseClient` that decodes each body as ClickHouse would and keeps
 * the rows, deduplicated by token. Give `--clickhouse-url` to insert into a real ClickHouse
 * (the table `http_log` of etc/clickhouse/schema.sql must exist) through `createClickHouseHttp`.
 *
 *   node examples/embed.ts [--records 1000] [--batch-bytes 16384] [--interval-ms 20] [--start ms] [--clickhouse-url URL]
 *
 * It prints one `row {…}` line per stored row (in-memory sink only) and a final
 * `summary {…}` line, then exits 0. It never prints a raw client address.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { concatMap, finalize, from, lastValueFrom, merge, mergeMap, tap, type Observable } from 'rxjs';
import {
  Spool,
  ProxySlots,
  acknowledgeBatches,
  anonymizeAddresses,
  compress,
  createClickHouseHttp,
  deadLetter,
  decodeInsertBody,
  decodeRecord,
  decodeRecords,
  decompress,
  encodeBatches,
  encodeInsertBody,
  encodeRecord,
  INSERT_FORMAT,
  insertRowSize,
  pacedInsert,
  sealBatches,
  toStoredRowJson,
  type ClickHouseClient,
  type HttpLogRow,
  type InsertBody,
  type OffsetChunk,
  type SourceMessage,
  type SourceRecord,
} from 'http-log-anonymizer';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000' },
    'batch-bytes': { type: 'string', default: '16384' },
    'interval-ms': { type: 'string', default: '20' },
    start: { type: 'string' },
    'clickhouse-url': { type: 'string' },
  },
});
const RECORDS = Number(args.records);
const BATCH_BYTES = Number(args['batch-bytes']);
const INTERVAL_MS = Number(args['interval-ms']);
// Recent by default: the schema's TTLs drop rows older than the raw table's retention.
const START_MS = args.start === undefined ? Date.now() : Number(args.start);
for (const [name, value] of [['--records', RECORDS], ['--batch-bytes', BATCH_BYTES], ['--interval-ms', INTERVAL_MS], ['--start', START_MS]] as const) {
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`embed: ${name} must be a non-negative integer\n`);
    process.exit(2);
  }
}

/** A stand-in for the edge servers: IPv4, IPv6 and one unparseable address, as Cap'n Proto. */
function sampleRecord(i: number): SourceRecord {
  const remoteAddr = i % 10 === 9 ? `2001:db8:${(i % 7).toString(16)}:${i.toString(16)}::${((i * 7919) % 65536).toString(16)}` : i === 3 ? 'not-an-address' : `198.51.${i % 4}.${(i % 250) + 1}`;
  return {
    timestampEpochMilli: BigInt(START_MS) + BigInt(i) * 5n,
    resourceId: BigInt(i % 13),
    bytesSent: BigInt(1000 + i),
    requestTimeMilli: BigInt(i % 97),
    responseStatus: i % 20 === 0 ? 404 : 200,
    cacheStatus: i % 3 === 0 ? 'MISS' : 'HIT',
    method: 'GET',
    remoteAddr,
    url: `/assets/${i % 50}.js`,
  };
}

/** Kafka hands over a partition's messages in chunks; here, chunks of 100, plus one poison message. */
function sourceChunks(count: number): OffsetChunk<SourceMessage>[] {
  const messages: SourceMessage[] = [];
  for (let i = 0; i < count; i++) messages.push({ partition: 0, offset: i, value: encodeRecord(sampleRecord(i)) });
  // Not Cap'n Proto: it becomes a dead letter, not a row.
  messages.push({ partition: 0, offset: count, value: new TextEncoder().encode('garbage') });
  const chunks: OffsetChunk<SourceMessage>[] = [];
  for (let start = 0; start < messages.length; start += 100) {
    const items = messages.slice(start, start + 100);
    chunks.push({ partition: 0, items, lastOffset: items.at(-1)!.offset });
  }
  return chunks;
}

/** The sink interface, in memory: decodes each body as ClickHouse would, and dedups by token as it does. */
class InMemoryClickHouse implements ClickHouseClient {
  readonly rows = new Map<string, HttpLogRow[]>();
  requests = 0;

  async insert(batch: InsertBody): Promise<void> {
    this.requests++;
    if (this.rows.has(batch.token)) return;
    this.rows.set(batch.token, decodeInsertBody(await decompress(batch.codec, batch.body)));
  }

  async query(): Promise<string> {
    throw new Error('the in-memory sink only takes inserts');
  }

  async close(): Promise<void> {}
}

const dir = await mkdtemp(join(tmpdir(), 'embed-spool-'));
const memory = args['clickhouse-url'] === undefined ? new InMemoryClickHouse() : undefined;
const sink: ClickHouseClient = memory ?? createClickHouseHttp({ url: args['clickhouse-url']!, user: 'default', password: '', database: 'default' });
const spool = await Spool.open({ dir, topic: 'http_log', logger: pino({ level: 'warn' }, process.stderr) });
const slots = new ProxySlots({ minIntervalMs: INTERVAL_MS, marginMs: 0 });
const counts = { records: RECORDS, deadLetters: 0, invalidAddresses: 0, batchesSealed: 0, batchesStored: 0, rowsStored: 0 };

const ingestion: Observable<unknown> = from(sourceChunks(RECORDS)).pipe(
  decodeRecords({ decode: decodeRecord }),
  deadLetter({ send: async (rejected) => void (counts.deadLetters += rejected.length) }),
  anonymizeAddresses({ onInvalidAddress: () => counts.invalidAddresses++ }),
  sealBatches({ proxyReady$: slots.ready$, maxBytes: BATCH_BYTES, sizeOf: insertRowSize }),
  encodeBatches({ encode: encodeInsertBody, format: INSERT_FORMAT, compress: (body) => compress('gzip', 6, body), codec: 'gzip', maxBodyBytes: 1 << 20 }),
  tap(() => counts.batchesSealed++),
  // No Kafka here, so no offsets to commit between stage and publish: write does both.
  concatMap((batch) => spool.write(batch)),
  finalize(() => spool.endOfInput()),
);

const delivery: Observable<unknown> = spool.pending().pipe(
  pacedInsert({
    send: (batch) => from(spool.readBody(batch)).pipe(mergeMap((body) => sink.insert({ token: batch.token, format: batch.format, codec: batch.codec, body }))),
    slots,
  }),
  acknowledgeBatches({
    stored: (batch) => {
      counts.batchesStored++;
      counts.rowsStored += batch.rowCount;
      return spool.remove(batch);
    },
    split: (batch, error) => spool.quarantine(batch, { code: 'split', message: String(error) }),
    quarantine: (batch, error) => spool.quarantine(batch, { code: 'quarantine', message: String(error) }),
  }),
);

try {
  await lastValueFrom(merge(ingestion, delivery), { defaultValue: undefined });
  for (const rows of memory?.rows.values() ?? []) {
    for (const row of rows) process.stdout.write(`row ${JSON.stringify(toStoredRowJson(row))}\n`);
  }
  const spooled = spool.stats();
  process.stdout.write(`summary ${JSON.stringify({ ...counts, requests: memory?.requests ?? counts.batchesStored, spooledAfter: spooled.batches })}\n`);
} finally {
  await spool.close();
  await sink.close();
  await rm(dir, { recursive: true, force: true });
}
