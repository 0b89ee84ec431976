/**
 * Embedding the whole anonymizer pipeline in an app of your own.
 *
 * `createPipeline(deps)` composes the product's chains exactly as `anonymizer run` does:
 *
 *   source ─► decodeRecords ─► deadLetter ─► anonymizeAddresses ─► sealBatches ─► encodeBatches
 *     ─► spool (stage) ─► commit ─► spool (publish)             (ingestion: into a durable spool)
 *   spool.pending() ─► pacedInsert ─► acknowledgeBatches        (delivery: one request per slot;
 *                                                                a 413 is split: splitInHalves)
 *
 * and every side effect comes in through `PipelineDeps`. Here, the source is a stand-in for
 * Kafka (records made here, one poison message, commits kept in memory), the spool is the
 * real one (`Spool`, in a temporary directory), and the sink is an in-memory
 * `ClickHouseClient` that decodes each body as ClickHouse would, keeps the rows
 * deduplicated by token, and refuses bodies over `--proxy-limit` bytes with a 413 as the
 * proxy would: those batches come back as `split` outcomes and their parts are stored.
 * Give `--clickhouse-url` to insert into a real ClickHouse instead (the table `http_log`
 * of etc/clickhouse/schema.sql must exist), through `createClickHouseHttp`.
 *
 * The app follows the pipeline with `for await (const outcome of pipeline.outcomes())`.
 *
 *   node examples/embed.ts [--records 1000] [--batch-bytes 16384] [--proxy-limit BYTES]
 *                          [--interval-ms 20] [--start ms] [--clickhouse-url URL]
 *
 * In a checkout, run it with `node --conditions=http-log-anonymizer-source examples/embed.ts`
 * (`npm run example:embed --`): the package's own name then resolves to its sources.
 *
 * It prints one `row {…}` line per stored row (in-memory sink only) and a final
 * `summary {…}` line, then exits 0. It never prints a raw client address.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { BehaviorSubject, from, type Observable } from 'rxjs';
import {
  BodyTooLargeError,
  ProxySlots,
  Spool,
  compress,
  createClickHouseHttp,
  createPipeline,
  createPipelineMetrics,
  decodeInsertBody,
  decompress,
  encodeRecord,
  toStoredRowJson,
  type ClickHouseClient,
  type CommittableBatch,
  type DeadLetterSink,
  type HttpLogRow,
  type InsertBody,
  type KafkaSource,
  type OffsetChunk,
  type PipelineDeps,
  type RejectedMessage,
  type SourceMessage,
  type SourceRecord,
} from 'http-log-anonymizer';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '1000' },
    'batch-bytes': { type: 'string', default: '16384' },
    'proxy-limit': { type: 'string' },
    'interval-ms': { type: 'string', default: '20' },
    start: { type: 'string' },
    'clickhouse-url': { type: 'string' },
  },
});
const RECORDS = Number(args.records);
const BATCH_BYTES = Number(args['batch-bytes']);
const PROXY_LIMIT = args['proxy-limit'] === undefined ? Number.POSITIVE_INFINITY : Number(args['proxy-limit']);
const INTERVAL_MS = Number(args['interval-ms']);
// Recent by default: the schema's TTLs drop rows older than the raw table's retention.
const START_MS = args.start === undefined ? Date.now() : Number(args.start);
for (const [name, value] of [['--records', RECORDS], ['--batch-bytes', BATCH_BYTES], ['--interval-ms', INTERVAL_MS], ['--start', START_MS], ['--proxy-limit', args['proxy-limit'] === undefined ? 0 : PROXY_LIMIT]] as const) {
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

/** The source interface over an array of chunks, like a drain: it completes after the last one. Commits are kept here. */
class ArraySource implements KafkaSource {
  readonly maxOutstanding = 200_000;
  readonly committed = new Map<number, number>();
  readonly chunks$: Observable<OffsetChunk<SourceMessage>>;
  readonly caughtUp$ = new BehaviorSubject(true);
  constructor(chunks: readonly OffsetChunk<SourceMessage>[]) {
    this.chunks$ = from(chunks);
  }
  async commit(batch: CommittableBatch): Promise<boolean> {
    for (const [partition, offset] of batch.offsets) this.committed.set(partition, Math.max(this.committed.get(partition) ?? -1, offset));
    return true;
  }
  isCaughtUp = (): boolean => true;
  joined = (): boolean => true;
  lag = (): ReadonlyMap<number, number> => new Map();
  outstanding = (): number => 0;
  discarded = (): number => 0;
  pause(): void {}
  resume(): void {}
  stop(): void {}
  async close(): Promise<void> {}
}

/** The sink interface, in memory: a proxy's body limit (413), then decoding as ClickHouse would, deduplicated by token. */
class InMemoryClickHouse implements ClickHouseClient {
  readonly rows = new Map<string, HttpLogRow[]>();
  requests = 0;
  refused = 0;

  async insert(batch: InsertBody): Promise<void> {
    this.requests++;
    if (batch.body.byteLength > PROXY_LIMIT) {
      this.refused++;
      throw new BodyTooLargeError();
    }
    if (this.rows.has(batch.token)) return;
    this.rows.set(batch.token, decodeInsertBody(await decompress(batch.codec, batch.body)));
  }

  async query(): Promise<string> {
    throw new Error('the in-memory sink only takes inserts');
  }

  async close(): Promise<void> {}
}

/** Dead letters, counted (the product sends them to a Kafka topic, http_log_dlq). */
class CountingDeadLetters implements DeadLetterSink {
  count = 0;
  async send(rejected: readonly RejectedMessage[]): Promise<void> {
    this.count += rejected.length;
  }
  async close(): Promise<void> {}
}

const dir = await mkdtemp(join(tmpdir(), 'embed-spool-'));
const logger = pino({ level: 'error' }, process.stderr);
const memory = args['clickhouse-url'] === undefined ? new InMemoryClickHouse() : undefined;
const clickhouse: ClickHouseClient = memory ?? createClickHouseHttp({ url: args['clickhouse-url']!, user: 'default', password: '', database: 'default' });
const source = new ArraySource(sourceChunks(RECORDS));
const deadLetters = new CountingDeadLetters();
const spool = await Spool.open({ dir, topic: 'http_log', logger });
const metrics = createPipelineMetrics();
const deps: PipelineDeps = {
  source,
  deadLetters,
  spool,
  clickhouse,
  slots: new ProxySlots({ minIntervalMs: INTERVAL_MS, marginMs: 0 }),
  compress: (body) => compress('gzip', 6, body),
  codec: 'gzip',
  maxBodyBytes: BATCH_BYTES,
  spoolMaxBytes: 64 << 20,
  logger,
  metrics,
};
const counts = { stored: 0, split: 0, quarantined: 0, rowsStored: 0 };

try {
  // drain: the pipeline ends once the source has ended and the spool is empty.
  const pipeline = createPipeline(deps, { drain: true });
  for await (const outcome of pipeline.outcomes()) {
    if (outcome.kind === 'stored') {
      counts.stored++;
      counts.rowsStored += outcome.batch.rowCount;
    } else if (outcome.kind === 'split') counts.split++;
    else counts.quarantined++;
  }
  for (const rows of memory?.rows.values() ?? []) {
    for (const row of rows) process.stdout.write(`row ${JSON.stringify(toStoredRowJson(row))}\n`);
  }
  const invalidAddresses = (await metrics.invalidAddresses.get()).values[0]?.value ?? 0;
  process.stdout.write(
    `summary ${JSON.stringify({
      records: RECORDS,
      deadLetters: deadLetters.count,
      invalidAddresses,
      batchesStored: counts.stored,
      rowsStored: counts.rowsStored,
      splits: counts.split,
      quarantined: counts.quarantined,
      requests: memory?.requests ?? counts.stored,
      refused413: memory?.refused ?? 0,
      committed: Object.fromEntries(source.committed),
      spooledAfter: spool.stats().batches,
    })}\n`,
  );
} finally {
  await spool.close();
  await clickhouse.close();
  await rm(dir, { recursive: true, force: true });
}
