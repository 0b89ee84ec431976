/**
 * The product, as two declarative chains around the spool (design.md §1–§2):
 *
 *   ingestion:  kafkaSource ─► decodeRecords ─► deadLetter ─► anonymizeAddresses
 *                 ─► sealBatches(proxyReady$, size cap) ─► encodeBatches
 *                 ─► persistBatches(stage) ─► commitOffsets ─► publishBatches
 *
 *   delivery:   spool.pending() ─► pacedInsert(proxy slots, retry) ─► acknowledgeBatches
 *
 * Records leave Kafka as soon as they are durable in the spool (the reference broker
 * keeps data for a minute); the spool feeds the proxy one request per slot. Every side
 * effect comes in through `PipelineDeps`, so the chains run against the real stack, in
 * tests, or inside another Rx app.
 */
import { defer, filter, from, mergeMap, startWith, tap, type Observable } from 'rxjs';
import type { Logger } from 'pino';
import type { Codec, SealedBatch } from '../domain/batch.ts';
import { decodeRecord } from '../domain/decodeRecord.ts';
import type { ProxySlots } from '../domain/proxySlots.ts';
import { decompress } from '../encode/compress.ts';
import { decodeInsertBody, encodeInsertBody, INSERT_FORMAT, insertRowSize } from '../encode/insertBody.ts';
import { AnonymizerError, SpoolDiskError } from '../errors.ts';
import type { ClickHouseClient } from '../io/clickhouseHttp.ts';
import type { DeadLetterSink } from '../io/deadLetterSink.ts';
import type { KafkaSource } from '../io/kafkaSource.ts';
import type { BatchSpool, SpooledBatch, StagedBatch } from '../io/spool.ts';
import { acknowledgeBatches } from '../operators/acknowledgeBatches.ts';
import { anonymizeAddresses } from '../operators/anonymizeAddresses.ts';
import { commitOffsets } from '../operators/commitOffsets.ts';
import { deadLetter } from '../operators/deadLetter.ts';
import { decodeRecords } from '../operators/decodeRecords.ts';
import { encodeBatches } from '../operators/encodeBatches.ts';
import { pacedInsert, type InsertOutcome } from '../operators/pacedInsert.ts';
import { persistBatches, type PersistedBatch } from '../operators/persistBatches.ts';
import { publishBatches } from '../operators/publishBatches.ts';
import { sealBatches } from '../operators/sealBatches.ts';
import type { PipelineMetrics } from './pipelineMetrics.ts';

export interface PipelineDeps {
  readonly source: KafkaSource;
  readonly deadLetters: DeadLetterSink;
  readonly spool: BatchSpool;
  readonly clickhouse: ClickHouseClient;
  readonly slots: ProxySlots;
  readonly compress: (body: Uint8Array) => Promise<Uint8Array>;
  readonly codec: Codec;
  readonly maxBodyBytes: number;
  /** Pause consumption above this many spooled bytes; resume below 80 % of it. */
  readonly spoolMaxBytes: number;
  /** While the spool's disk refuses writes: milliseconds between attempts at the same batch. Default 5 000. */
  readonly spoolDiskRetryMs?: number;
  readonly logger: Logger;
  readonly metrics: PipelineMetrics;
}

/**
 * Compressed bytes per estimated byte (`insertRowSize`) assumed before the first body is
 * measured: about what the compact body + brotli-11 does on the uniform dataset (0.30;
 * realistic 0.14). A wrong guess only costs one more measurement of the first batch.
 */
const INITIAL_RATIO = 0.3;

/**
 * Rows the Kafka source may hand over before their batch is committed, and rows one batch
 * may hold. Decoded rows take ~350 B of heap each, so these bound the heap the backlog can
 * take (~70 MB) whatever the input rate: past them the source pauses and the rest waits in
 * Kafka. A batch must be able to fill before the source pauses, hence the margin; a body
 * that would hold more rows than MAX_ROWS_PER_BATCH (very repetitive traffic) is sent
 * with that many.
 */
export const MAX_OUTSTANDING_ROWS = 200_000;
export const MAX_ROWS_PER_BATCH = 150_000;

/** How often the same batch is written again while the spool's disk is full (one batch waits in memory). */
export const SPOOL_DISK_RETRY_MS = 5_000;

type Ingested = PersistedBatch<StagedBatch> & { readonly committed: boolean };

/** Kafka → spool. Completes when the source does (drain, shutdown), after the last batch is published. */
export function ingestion(deps: PipelineDeps, options: { readonly stopping?: () => boolean } = {}): Observable<Ingested> {
  const { source, spool, slots, metrics } = deps;
  const log = deps.logger;
  // Rows sealed and not yet in the send queue (encoding, staging, committing). While there
  // are any, the slot is already spoken for: sealing again would send a sliver first.
  let sealedRowsInFlight = 0;
  // Seal at a slot only when nothing is queued or on its way and the source has caught up:
  // a backlog fills whole bodies instead of sealing whatever the first fetch brought.
  const proxyReady$ = slots.ready$.pipe(filter(() => sealedRowsInFlight === 0 && spool.stats().batches === 0 && source.isCaughtUp()));

  const sealed$ = source.chunks$.pipe(
    tap((chunk) => metrics.consumed.inc(chunk.items.length)),
    decodeRecords({ decode: decodeRecord }),
    tap((chunk) => metrics.decoded.inc(chunk.items.length)),
    deadLetter({
      send: async (rejected) => {
        await deps.deadLetters.send(rejected);
        for (const { message, error } of rejected) {
          metrics.rejected.inc({ reason: error.code });
          log.warn({ partition: message.partition, offset: message.offset, code: error.code, err: error.message }, 'message sent to the dead-letter topic');
        }
      },
    }),
    anonymizeAddresses({ onInvalidAddress: () => metrics.invalidAddresses.inc() }),
    tap((chunk) => metrics.anonymized.inc(chunk.items.length)),
    // maxRows: less than the source lets be outstanding (MAX_OUTSTANDING_ROWS), so a batch can always fill.
    // fit: each full body is measured (encoded and compressed) before it is sealed, so it
    // fills the proxy's limit to within 5 % and never passes it.
    sealBatches({
      proxyReady$,
      sizeOf: insertRowSize,
      maxRows: MAX_ROWS_PER_BATCH,
      fit: {
        limit: deps.maxBodyBytes,
        initialRatio: INITIAL_RATIO,
        measure: async (rows) => {
          const raw = encodeInsertBody(rows);
          return { body: await deps.compress(raw), uncompressedBytes: raw.byteLength };
        },
        onMeasured: (rows, bytes, verdict) => {
          metrics.bodyMeasurements.inc({ verdict });
          log.debug({ rows, bytes, fill: round(bytes / deps.maxBodyBytes), verdict }, 'body measured');
        },
      },
    }),
    tap((batch) => (sealedRowsInFlight += batch.rows.length)),
  );
  return sealed$.pipe(
    encodeBatches({
      encode: encodeInsertBody,
      format: INSERT_FORMAT,
      compress: deps.compress,
      codec: deps.codec,
      maxBodyBytes: deps.maxBodyBytes,
      onOversize: (rows, bytes) => log.info({ rows, bytes }, 'body over the limit: split in two before sending'),
      onEncoded: (_batch, reason) => metrics.sealed.inc({ reason }),
    }),
    // A full disk (SpoolDiskError): nothing was published or committed; pause fetching and
    // write the same batch again until delivery (or the operator) has freed space.
    persistBatches({
      write: (batch: SealedBatch) => spool.stage(batch),
      retry: {
        // Stopping gives up: the batch was not committed, so its records are read again.
        when: (error) => error instanceof SpoolDiskError && !options.stopping?.(),
        delayMs: deps.spoolDiskRetryMs ?? SPOOL_DISK_RETRY_MS,
        onRetry: (error, failures, batch) => {
          const disk = error as SpoolDiskError;
          metrics.spoolDiskErrors.inc({ errno: disk.errno });
          if (failures > 1) return;
          source.pause('spool-disk');
          metrics.spoolDiskFull.set(1);
          log.error(
            { code: disk.code, errno: disk.errno, dir: disk.dir, freeBytes: disk.freeBytes, token: batch.token, rows: batch.rowCount, bodyBytes: batch.body.byteLength, retryInMs: deps.spoolDiskRetryMs ?? SPOOL_DISK_RETRY_MS },
            `the spool's disk refused a write (${disk.errno}) in ${disk.dir}, ${disk.freeBytes ?? 'unknown'} bytes free: consumption paused, nothing committed; the same batch is retried until there is room`,
          );
        },
        onRecovered: (failures, batch) => {
          source.resume('spool-disk');
          metrics.spoolDiskFull.set(0);
          log.info({ token: batch.token, failures }, "the spool's disk took the batch: consumption resumed");
        },
      },
    }),
    commitOffsets({ commit: (batch: PersistedBatch<StagedBatch>) => source.commit(batch, spool.instanceId) }),
    publishBatches({
      publish: (batch: Ingested) => (batch.stored ? spool.publish(batch.stored) : Promise.resolve()),
      discard: (batch: Ingested) => {
        metrics.discarded.inc();
        return batch.stored ? spool.discard(batch.stored) : Promise.resolve();
      },
    }),
    tap((batch) => (sealedRowsInFlight -= batch.rowCount)),
  );
}

/** Spool → ClickHouse, one request per proxy slot. Completes after `spool.endOfInput()` once the spool is empty. */
export function delivery(deps: PipelineDeps): Observable<InsertOutcome<SpooledBatch>> {
  const { spool, slots, metrics } = deps;
  const log = deps.logger;
  return spool.pending().pipe(
    pacedInsert<SpooledBatch>({
      send: (batch) => defer(() => {
        metrics.sent.inc();
        return from(spool.readBody(batch));
      }).pipe(mergeMap((body) => deps.clickhouse.insert({ token: batch.token, format: batch.format, codec: batch.codec, body }))),
      slots,
      onFailure: (batch, error, action) => {
        const code = error instanceof AnonymizerError ? error.code : 'unknown';
        metrics.requests.inc({ outcome: code });
        log.warn({ token: batch.token, rows: batch.rowCount, code, err: (error as Error).message, action, nextSlotInMs: slots.msUntilNext() }, 'insert failed');
      },
      onStored: (batch, elapsedMs) => {
        metrics.requests.inc({ outcome: 'stored' });
        metrics.rowsStored.inc(batch.rowCount);
        metrics.bodyBytes.inc(batch.bodyBytes);
        metrics.acknowledged.inc();
        metrics.requestRows.observe(batch.rowCount);
        metrics.requestBytes.observe(batch.bodyBytes);
        metrics.fillRatio.observe(batch.bodyBytes / deps.maxBodyBytes);
        const oldest = batch.header.eventTime?.[0];
        if (oldest !== undefined) metrics.latency.observe(Math.max(0, Date.now() / 1000 - oldest));
        log.info(
          { token: batch.token, rows: batch.rowCount, bytes: batch.bodyBytes, fill: round(batch.bodyBytes / deps.maxBodyBytes), sealReason: batch.header.sealReason, elapsedMs },
          'batch stored',
        );
      },
    }),
    acknowledgeBatches<SpooledBatch>({
      stored: (batch) => spool.remove(batch),
      split: (batch) => splitInHalves(deps, batch),
      quarantine: (batch, error) => {
        metrics.quarantined.inc();
        const failure = error instanceof AnonymizerError ? error : undefined;
        return spool.quarantine(batch, { code: failure?.code ?? 'unknown', message: (error as Error).message });
      },
    }),
  );
}

/** A 413: the body goes back to rows, and two halves replace the batch in the spool, durably. */
async function splitInHalves(deps: PipelineDeps, batch: SpooledBatch): Promise<void> {
  // Either format: a batch spooled by an earlier version is split into parts of today's.
  const rows = decodeInsertBody(await decompress(batch.codec, await deps.spool.readBody(batch)));
  if (rows.length < 2) {
    await deps.spool.quarantine(batch, { code: 'ANON_BODY_TOO_LARGE', message: 'a single row is over the proxy body limit' });
    return;
  }
  const half = Math.ceil(rows.length / 2);
  const parts: SealedBatch[] = [];
  for (const [index, slice] of [rows.slice(0, half), rows.slice(half)].entries()) {
    const raw = encodeInsertBody(slice);
    parts.push({
      // Derived, not random: a split redone after a crash sends the same tokens again.
      token: `${batch.token}-${index}`,
      body: await deps.compress(raw),
      format: INSERT_FORMAT,
      codec: deps.codec,
      rowCount: slice.length,
      uncompressedBytes: raw.byteLength,
      offsets: new Map(),
    });
  }
  deps.metrics.split.inc();
  deps.logger.warn({ token: batch.token, rows: rows.length, parts: parts.map((p) => p.body.byteLength) }, 'the proxy refused the body as too large (413): split in two');
  await deps.spool.replace(batch, parts);
}

export interface RunningPipeline {
  /** Resolves when both chains are done (drain), rejects on a fatal error. */
  readonly done: Promise<void>;
  /** Graceful stop: no more fetching; the open batch is sealed, persisted and committed; delivery stops now. */
  stop(): Promise<void>;
}

/** Runs both chains, with backpressure from the spool's size to the consumer. */
export function runPipeline(deps: PipelineDeps, options: { drain: boolean }): RunningPipeline {
  const { spool, source, metrics } = deps;
  const log = deps.logger;
  for (const { reason } of spool.corruptAtOpen?.() ?? []) metrics.spoolCorruptFiles.inc({ reason });
  const backpressure = spool.changed$.pipe(startWith(undefined)).subscribe(() => {
    const { bytes, batches } = spool.stats();
    metrics.spoolBytes.set(bytes);
    metrics.spoolBatches.set(batches);
    metrics.spoolQuarantined.set(spool.quarantineCount?.() ?? 0);
    if (bytes > deps.spoolMaxBytes) {
      source.pause('spool-full');
      metrics.paused.set(1);
    } else if (bytes < deps.spoolMaxBytes * 0.8) {
      source.resume('spool-full');
      metrics.paused.set(0);
    }
  });

  let ingestDone!: () => void;
  const ingested = new Promise<void>((resolve) => (ingestDone = resolve));
  let fail!: (error: unknown) => void;
  let finish!: () => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });

  let stopping = false;
  const ingestSubscription = defer(() => ingestion(deps, { stopping: () => stopping })).subscribe({
    error: (error: unknown) => {
      ingestDone();
      if (stopping && error instanceof SpoolDiskError) {
        log.warn({ code: error.code, dir: error.dir }, "stopped while the spool's disk was full: the last batch was not written nor committed, its records are read again");
        return;
      }
      fail(error);
    },
    complete: () => {
      ingestDone();
      if (options.drain) spool.endOfInput();
    },
  });
  const deliverySubscription = delivery(deps).subscribe({
    error: (error: unknown) => fail(error),
    complete: () => finish(),
  });

  const teardown = (): void => {
    backpressure.unsubscribe();
    ingestSubscription.unsubscribe();
    deliverySubscription.unsubscribe();
  };
  done.then(teardown, teardown);

  return {
    done,
    async stop() {
      // Delivery stops at once: a request cut mid-way is sent again, same token, next run.
      deliverySubscription.unsubscribe();
      log.info('stopping: sealing and persisting the open batch');
      stopping = true;
      source.stop();
      await ingested;
      teardown();
      finish();
    },
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
