/**
 * In-memory stand-ins for the pipeline's side effects (Kafka, the spool, ClickHouse, the
 * dead-letter topic), so the chains run in unit tests with no network, no disk and no
 * server. Each keeps the promises of the interface it stands for that the chains rely on:
 * the source hands over chunks and commits in order, the spool is a queue that survives
 * nothing, ClickHouse answers what the test scripts.
 */
import { BehaviorSubject, Observable, Subject } from 'rxjs';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { OffsetChunk, RejectedMessage, SealedBatch, SourceMessage } from '../domain/batch.ts';
import { encodeRecord, type SourceRecord } from '../domain/encodeRecord.ts';
import { decompress } from '../encode/compress.ts';
import { decodeInsertBody } from '../encode/insertBody.ts';
import type { ClickHouseClient, InsertBody } from '../io/clickhouseHttp.ts';
import type { DeadLetterSink } from '../io/deadLetterSink.ts';
import type { CommittableBatch, KafkaSource } from '../io/kafkaSource.ts';
import type { BatchSpool, SpooledBatch, SpoolHeader, StagedBatch } from '../io/spool.ts';
import { headerFor } from '../io/spoolFile.ts';
import { ProxySlots } from '../pacing/proxySlots.ts';
import type { PipelineDeps } from './anonymizerPipeline.ts';
import { createPipelineMetrics } from './pipelineMetrics.ts';

/** A source of scripted chunks; `end()` completes it like a drain that reached its targets. */
export class FakeSource implements KafkaSource {
  readonly maxOutstanding = 200_000;
  readonly commits: Array<{ token: string; offsets: Array<[number, number]> }> = [];
  readonly pauses: string[] = [];
  readonly #chunks = new Subject<OffsetChunk<SourceMessage>>();
  readonly #caughtUp = new BehaviorSubject(true);
  readonly chunks$ = this.#chunks.asObservable();
  readonly caughtUp$ = this.#caughtUp.asObservable();
  stopped = false;

  /** Hands over `records` (and `garbage` values) of `partition` from `firstOffset` on, as one chunk. */
  fetch(partition: number, firstOffset: number, values: readonly Uint8Array[]): void {
    const items = values.map((value, i) => ({ partition, offset: firstOffset + i, key: null, value }));
    this.#chunks.next({ partition, items, lastOffset: firstOffset + values.length - 1, generation: 1 });
  }

  end(): void {
    this.#chunks.complete();
  }

  async commit(batch: CommittableBatch): Promise<boolean> {
    this.commits.push({ token: batch.token, offsets: [...batch.offsets] });
    return true;
  }

  isCaughtUp(): boolean {
    return this.#caughtUp.value;
  }
  setCaughtUp(value: boolean): void {
    this.#caughtUp.next(value);
  }
  joined = (): boolean => true;
  lag = (): ReadonlyMap<number, number> => new Map();
  outstanding = (): number => 0;
  discarded = (): number => 0;
  pause(reason: string): void {
    this.pauses.push(`pause:${reason}`);
  }
  resume(reason: string): void {
    this.pauses.push(`resume:${reason}`);
  }
  stop(): void {
    this.stopped = true;
    this.#chunks.complete();
  }
  async close(): Promise<void> {}
}

/** A spool in memory: stage, publish, send queue, quarantine. */
export class MemorySpool implements BatchSpool {
  readonly instanceId = 'memory-spool';
  readonly quarantined: Array<{ token: string; code: string }> = [];
  readonly #queue = new Map<string, { spooled: SpooledBatch; body: Uint8Array }>();
  readonly #staged = new Map<string, Uint8Array>();
  readonly #written = new Subject<SpooledBatch>();
  readonly #changed = new Subject<void>();
  readonly changed$ = this.#changed.asObservable();
  #seq = 0;
  #ended = false;
  #complete?: () => void;

  stats(): { batches: number; bytes: number } {
    let bytes = 0;
    for (const { spooled } of this.#queue.values()) bytes += spooled.bodyBytes;
    return { batches: this.#queue.size, bytes };
  }

  /** Rows waiting in the send queue. */
  rows(): number {
    let rows = 0;
    for (const { spooled } of this.#queue.values()) rows += spooled.rowCount;
    return rows;
  }

  pending(): Observable<SpooledBatch> {
    return new Observable<SpooledBatch>((subscriber) => {
      for (const { spooled } of [...this.#queue.values()]) subscriber.next(spooled);
      const subscription = this.#written.subscribe((batch) => subscriber.next(batch));
      this.#complete = () => subscriber.complete();
      this.#checkDone();
      return () => subscription.unsubscribe();
    });
  }

  endOfInput(): void {
    this.#ended = true;
    this.#checkDone();
  }

  async stage(batch: SealedBatch, parent?: SpoolHeader['parent']): Promise<StagedBatch | undefined> {
    if (batch.rowCount === 0) return undefined;
    this.#staged.set(batch.token, batch.body);
    return { file: batch.token, header: headerFor(batch, 'http_log', parent) };
  }

  async publish(staged: StagedBatch): Promise<SpooledBatch> {
    const body = this.#staged.get(staged.header.token)!;
    this.#staged.delete(staged.header.token);
    const { header } = staged;
    const spooled: SpooledBatch = { seq: ++this.#seq, file: header.token, token: header.token, format: header.format, codec: header.codec, rowCount: header.rowCount, uncompressedBytes: header.uncompressedBytes, bodyBytes: header.bodyBytes, offsets: new Map(header.offsets), header };
    this.#queue.set(spooled.token, { spooled, body });
    this.#changed.next();
    this.#written.next(spooled);
    return spooled;
  }

  async discard(staged: StagedBatch): Promise<void> {
    this.#staged.delete(staged.header.token);
  }

  async write(batch: SealedBatch, parent?: SpoolHeader['parent']): Promise<SpooledBatch | undefined> {
    const staged = await this.stage(batch, parent);
    return staged && this.publish(staged);
  }

  async readBody(batch: SpooledBatch): Promise<Uint8Array> {
    return this.#queue.get(batch.token)!.body;
  }

  async remove(batch: SpooledBatch): Promise<void> {
    this.#forget(batch);
  }

  async quarantine(batch: SpooledBatch, error: { code: string; message: string }): Promise<void> {
    this.quarantined.push({ token: batch.token, code: error.code });
    this.#forget(batch);
  }

  async replace(batch: SpooledBatch, parts: readonly SealedBatch[]): Promise<SpooledBatch[]> {
    const written: SpooledBatch[] = [];
    for (const [index, part] of parts.entries()) {
      const spooled = await this.write(part, { token: batch.token, parts: parts.length, index });
      if (spooled) written.push(spooled);
    }
    this.#forget(batch);
    return written;
  }

  async close(): Promise<void> {}

  #forget(batch: SpooledBatch): void {
    this.#queue.delete(batch.token);
    this.#changed.next();
    this.#checkDone();
  }

  #checkDone(): void {
    if (this.#ended && this.#queue.size === 0) this.#complete?.();
  }
}


/** What ClickHouse answers each insert: `undefined` stores it, an error refuses it. */
export type InsertScript = (insert: InsertBody, attempt: number) => Error | undefined;

/** ClickHouse in memory: the rows of every stored insert, deduplicated by token as the real tables are. */
export class FakeClickHouse implements ClickHouseClient {
  readonly stored = new Map<string, ReadonlyArray<{ url: string; remoteAddr: string }>>();
  readonly attempts: string[] = [];
  readonly #script: InsertScript;

  constructor(script: InsertScript = () => undefined) {
    this.#script = script;
  }

  async insert(batch: InsertBody): Promise<void> {
    this.attempts.push(batch.token);
    const failure = this.#script(batch, this.attempts.filter((token) => token === batch.token).length);
    if (failure) throw failure;
    if (!this.stored.has(batch.token)) this.stored.set(batch.token, decodeInsertBody(await decompress(batch.codec, batch.body)));
  }

  /** Every stored row's URL (each record of the tests has its own). */
  urls(): string[] {
    return [...this.stored.values()].flat().map((row) => row.url);
  }

  async query(): Promise<string> {
    return '';
  }
  async close(): Promise<void> {}
}

export class FakeDeadLetters implements DeadLetterSink {
  readonly sent: RejectedMessage[] = [];
  /** How long each send takes, in ms (a slow broker). */
  delayMs = 0;
  async send(rejected: readonly RejectedMessage[]): Promise<void> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.sent.push(...rejected);
  }
  async close(): Promise<void> {}
}

export interface FakeWorld {
  readonly deps: PipelineDeps;
  readonly source: FakeSource;
  readonly spool: MemorySpool;
  readonly clickhouse: FakeClickHouse;
  readonly deadLetters: FakeDeadLetters;
  readonly registry: Registry;
}

/** The pipeline's dependencies, all in memory; a fast proxy (an interval of `intervalMs`). */
export function fakeWorld(options: { script?: InsertScript; intervalMs?: number; maxBodyBytes?: number; spoolMaxBytes?: number } = {}): FakeWorld {
  const source = new FakeSource();
  const spool = new MemorySpool();
  const clickhouse = new FakeClickHouse(options.script);
  const deadLetters = new FakeDeadLetters();
  const registry = new Registry();
  const deps: PipelineDeps = {
    source,
    deadLetters,
    spool,
    clickhouse,
    slots: new ProxySlots({ minIntervalMs: options.intervalMs ?? 20, marginMs: 0 }),
    compress: async (body) => body,
    codec: 'none',
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
    spoolMaxBytes: options.spoolMaxBytes ?? 1 << 30,
    logger: pino({ level: 'silent' }),
    metrics: createPipelineMetrics(registry),
  };
  return { deps, source, spool, clickhouse, deadLetters, registry };
}

/** Cap'n Proto messages of `records`, as Kafka would hand them over. */
export function messagesOf(records: readonly SourceRecord[]): Uint8Array[] {
  return records.map((record) => new Uint8Array(encodeRecord(record)));
}
