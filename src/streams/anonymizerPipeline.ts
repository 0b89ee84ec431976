/**
 * The product, as two declarative chains around the spool (docs/architecture.md):
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
import { asapScheduler, auditTime, BehaviorSubject, catchError, combineLatest, defer, distinctUntilChanged, EMPTY, endWith, finalize, first, firstValueFrom, from, ignoreElements, interval, lastValueFrom, map, merge, mergeMap, observeOn, of, scan, share, shareReplay, startWith, Subject, switchMap, takeUntil, tap, throwError, type Observable, type OperatorFunction } from 'rxjs';
import type { Logger } from 'pino';
import type { Codec, SealedBatch } from '../domain/batch.ts';
import { decodeRecord } from '../domain/decodeRecord.ts';
import { singleRowBodyBound, validateRecord } from '../domain/validateRecord.ts';
import type { ProxySlots } from '../pacing/proxySlots.ts';
import { decompress } from '../encode/compress.ts';
import { decodeInsertBody, encodeInsertBody, INSERT_FORMAT, insertRowSize } from '../encode/insertBody.ts';
import { AnonymizerError, BLOCKED_REASONS, SpoolDiskError } from '../errors.ts';
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
import { DELIVERY_OK, deliveryState, type DeliveryBlocked, type DeliveryState } from '../operators/deliveryState.ts';
import { pacedInsert, type InsertAttempt, type InsertOutcome } from '../operators/pacedInsert.ts';
import { remindWhileBlocked } from '../operators/remindWhileBlocked.ts';
import { persistBatches, type PersistedBatch } from '../operators/persistBatches.ts';
import { publishBatches } from '../operators/publishBatches.ts';
import { rejectOversizedRows } from '../operators/rejectOversizedRows.ts';
import { sealBatches } from '../operators/sealBatches.ts';
import { splitOversized } from '../operators/splitOversized.ts';
import type { PipelineMetrics } from './pipelineMetrics.ts';
import { eachValueFrom } from 'rxjs-for-await';

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
  /** Told every change of the delivery state (ok | blocked), e.g. a BehaviorSubject that /readyz reads. */
  readonly deliveryState?: { next(state: DeliveryState): void };
  /** Anonymize IPv4/IPv6 literals inside `url` too (`ANONYMIZE_URL_ADDRESSES`). Default true. */
  readonly anonymizeUrlAddresses?: boolean;
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

/** A batch out of ingestion: staged, its offsets committed (or not: `committed`), published to the send queue. */
export type IngestedBatch = PersistedBatch<StagedBatch> & { readonly committed: boolean };
type Ingested = IngestedBatch;

/** How long rows that arrive while the seal gate is open wait for the rest of their fetch round. */
export const SETTLE_MS = 250;

/**
 * The two pause mechanisms must not deadlock: the source pauses once `maxOutstanding`
 * rows are handed over and not committed, and a batch is committed only once it is
 * sealed, so a batch must be able to seal before the source pauses.
 */
export function assertBatchCanSeal(maxRowsPerBatch: number, maxOutstanding: number): void {
  if (!(maxRowsPerBatch < maxOutstanding)) {
    throw new AnonymizerError(`a batch of ${maxRowsPerBatch} rows could never seal: the source pauses at ${maxOutstanding} uncommitted rows`, 'ANON_PIPELINE_INVARIANT', false, 'configuring');
  }
}

/**
 * When the open batch should be sealed without waiting to fill: the proxy is idle (a slot
 * is open, no batch waits for it), nothing is queued in the spool or on its way there, and
 * the source has caught up (a backlog fills whole bodies instead of sealing whatever the
 * first fetch brought). A level built from the four state streams, not a poll.
 */
export function sealGate(proxyIdle$: Observable<boolean>, spoolEmpty$: Observable<boolean>, rowsInFlight$: Observable<number>, caughtUp$: Observable<boolean>): Observable<boolean> {
  return combineLatest([proxyIdle$, spoolEmpty$, rowsInFlight$, caughtUp$]).pipe(
    map(([idle, empty, inFlight, caughtUp]) => idle && empty && inFlight === 0 && caughtUp),
    distinctUntilChanged(),
  );
}

/** Longest a decode runs before it yields to the event loop, in ms (decodeRecords' `sliceMs`). */
export const DECODE_SLICE_MS = 4;

/** The uncompressed body of one row with empty texts: the fixed part of `singleRowBodyBound`. */
const emptyRowBodyBytes = encodeInsertBody([
  { timestamp: 0xffff_ffff, resourceId: 2n ** 64n - 1n, bytesSent: 2n ** 64n - 1n, requestTimeMilli: 2n ** 64n - 1n, responseStatus: 0xffff, cacheStatus: '', method: '', remoteAddr: '', url: '' },
]).byteLength;

/** Kafka → spool. Completes when the source does (drain, shutdown), after the last batch is published. */
export function ingestion(deps: PipelineDeps, options: IngestionOptions = {}): Observable<Ingested> {
  return defer(() => ingestionChain(deps, options));
}

export interface IngestionOptions {
  /** True once a graceful stop was asked for: a batch the full disk refuses is then given up (its records are read again). */
  readonly stopping?: () => boolean;
  /**
   * Whether delivery is blocked. While it is, the spool is not empty, so the seal gate
   * never opens: the open batch is then sealed once per slot anyway, so its records reach
   * the spool and their offsets are committed instead of waiting in memory for a full body
   * while the broker's retention runs.
   */
  readonly deliveryBlocked$?: Observable<boolean>;
}

function ingestionChain(deps: PipelineDeps, options: IngestionOptions): Observable<Ingested> {
  const { source, spool, slots, metrics } = deps;
  const log = deps.logger;
  assertBatchCanSeal(MAX_ROWS_PER_BATCH, source.maxOutstanding);
  // Rows sealed and not yet in the send queue (encoding, staging, committing), as a stream
  // of changes summed: while there are any, the slot is already spoken for.
  const inFlightChanges = new Subject<number>();
  const rowsInFlight$ = runningTotal(inFlightChanges);
  // Rows arriving, for the seal trigger.
  const arrivals = new Subject<void>();
  // Messages fetched and not yet in the open batch (decoded in slices, held while the
  // dead-letter topic takes a chunk's rejects, measured by rejectOversizedRows): a seal at
  // an idle slot waits for them. Without this, a backlog fetched whole at start was sealed
  // while still decoding: a first body of 77 % in the fill check.
  const transitChanges = new Subject<number>();
  const inTransit$ = runningTotal(transitChanges).pipe(shareReplay({ bufferSize: 1, refCount: true }));
  const sealNow$ = sealTrigger(deps, rowsInFlight$, arrivals, inTransit$, options.deliveryBlocked$);

  const sealed$ = source.chunks$.pipe(
    tap((chunk) => {
      metrics.consumed.inc(chunk.items.length);
      transitChanges.next(chunk.items.length);
      arrivals.next();
    }),
    // Decode, validate the texts, anonymize (remote_addr and addresses inside url), and
    // refuse rows no body can carry: every message that cannot become a row is listed
    // in the chunk's `rejected`, and kept by deadLetter before anything is committed.
    // sliceMs: a fetch of 1 MB of 16-byte garbage is ~50,000 messages (~0.3 s to reject);
    // decoded in slices of a few ms, the event loop serves /healthz, timers, Kafka heartbeats
    // and SIGTERM between them.
    decodeRecords({ decode: decodeRecord, validate: validateRecord, sliceMs: DECODE_SLICE_MS }),
    tap((chunk) => metrics.decoded.inc(chunk.items.length)),
    anonymizeAddresses({
      onInvalidAddress: () => metrics.invalidAddresses.inc(),
      anonymizeUrls: deps.anonymizeUrlAddresses ?? true,
      onUrlAddress: () => metrics.urlAddresses.inc(),
    }),
    rejectOversizedRows({
      limit: deps.maxBodyBytes,
      bound: (row) => singleRowBodyBound(row, emptyRowBodyBytes),
      measure: async (row) => (await deps.compress(encodeInsertBody([row]))).byteLength,
    }),
    deadLetter({
      send: async (rejected) => {
        await deps.deadLetters.send(rejected);
        for (const { message, error } of rejected) {
          metrics.rejected.inc({ reason: error.code });
          log.warn({ partition: message.partition, offset: message.offset, code: error.code, err: error.message }, 'message sent to the dead-letter topic');
        }
      },
    }),
    tap((chunk) => {
      metrics.anonymized.inc(chunk.items.length);
      // Every message of the slice is a row here or one of its rejects (already kept).
      transitChanges.next(-(chunk.items.length + chunk.rejected.length));
    }),
    // maxRows: less than the source lets be outstanding (assertBatchCanSeal), so a batch can always fill.
    // fit: each full body is measured (encoded and compressed) before it is sealed, so it
    // fills the proxy's limit to within 5 % and never passes it.
    sealBatches({
      proxyReady$: sealNow$,
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
    tap((batch) => inFlightChanges.next(batch.rows.length)),
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
    persistWithDiskRetry(deps, options),
    commitOffsets({ commit: (batch: PersistedBatch<StagedBatch>) => source.commit(batch, spool.instanceId) }),
    publishBatches({
      publish: (batch: Ingested) => (batch.stored ? spool.publish(batch.stored) : Promise.resolve()),
      discard: (batch: Ingested) => {
        metrics.discarded.inc();
        return batch.stored ? spool.discard(batch.stored) : Promise.resolve();
      },
    }),
    tap((batch) => inFlightChanges.next(-batch.rowCount)),
  );
}

/** The sum of a stream of changes, starting at 0. */
function runningTotal(changes: Observable<number>): Observable<number> {
  return changes.pipe(
    scan((sum, change) => sum + change, 0),
    startWith(0),
  );
}

/**
 * When to seal the open batch without waiting for a full body. While the seal gate is
 * open: at once, and rows that arrive SETTLE_MS after the first of them, so the other
 * partitions' fetches of the same moment can say the source is behind (then the gate
 * closes and the rows wait to fill a body); either way only once every message fetched
 * so far has reached the open batch (`inTransit$` at 0), and after the event that
 * brought it there has been handled (asap), so the seal takes those rows too. While
 * delivery is blocked: at every slot.
 */
function sealTrigger(deps: PipelineDeps, rowsInFlight$: Observable<number>, arrivals: Observable<void>, inTransit$: Observable<number>, deliveryBlocked$: Observable<boolean> = EMPTY): Observable<unknown> {
  const { spool, slots, source } = deps;
  const spoolEmpty$ = spool.changed$.pipe(
    startWith(undefined),
    map(() => spool.stats().batches === 0),
  );
  const settled$ = inTransit$.pipe(
    first((messages) => messages === 0),
    observeOn(asapScheduler),
  );
  const gateOpen$ = sealGate(slots.idle$, spoolEmpty$, rowsInFlight$, source.caughtUp$).pipe(
    switchMap((open) => (open ? merge(of(undefined), arrivals.pipe(auditTime(SETTLE_MS))).pipe(switchMap(() => settled$)) : EMPTY)),
  );
  const whileBlocked$ = deliveryBlocked$.pipe(
    distinctUntilChanged(),
    switchMap((blocked) => (blocked ? interval(slots.minIntervalMs + slots.marginMs, slots.scheduler) : EMPTY)),
  );
  // inTransit$ is subscribed from the start (it counts every change, also while the gate is closed).
  return merge(inTransit$.pipe(ignoreElements()), gateOpen$, whileBlocked$);
}

/**
 * Stages each batch; a full disk (SpoolDiskError) published and committed nothing, so
 * fetching pauses and the same batch is written again until delivery (or the operator)
 * has freed space.
 */
function persistWithDiskRetry(deps: PipelineDeps, options: IngestionOptions): OperatorFunction<SealedBatch, PersistedBatch<StagedBatch>> {
  const { source, spool, metrics } = deps;
  const log = deps.logger;
  const delayMs = deps.spoolDiskRetryMs ?? SPOOL_DISK_RETRY_MS;
  return persistBatches({
    write: (batch: SealedBatch) => spool.stage(batch),
    retry: {
      // Stopping gives up: the batch was not committed, so its records are read again.
      when: (error) => error instanceof SpoolDiskError && !options.stopping?.(),
      delayMs,
      onRetry: (error, failures, batch) => {
        const disk = error as SpoolDiskError;
        metrics.spoolDiskErrors.inc({ errno: disk.errno });
        if (failures > 1) return;
        source.pause('spool-disk');
        metrics.spoolDiskFull.set(1);
        log.error(
          { code: disk.code, errno: disk.errno, dir: disk.dir, freeBytes: disk.freeBytes, token: batch.token, rows: batch.rowCount, bodyBytes: batch.body.byteLength, retryInMs: delayMs },
          `the spool's disk refused a write (${disk.errno}) in ${disk.dir}, ${disk.freeBytes ?? 'unknown'} bytes free: consumption paused, nothing committed; the same batch is retried until there is room`,
        );
      },
      onRecovered: (failures, batch) => {
        source.resume('spool-disk');
        metrics.spoolDiskFull.set(0);
        log.info({ token: batch.token, failures }, "the spool's disk took the batch: consumption resumed");
      },
    },
  });
}

/** How often a blocked delivery is logged again while it lasts. */
export const BLOCKED_REMINDER_MS = 5 * 60_000;

/** Spool → ClickHouse, one request per proxy slot. Completes after `spool.endOfInput()` once the spool is empty. */
export function delivery(deps: PipelineDeps): Observable<InsertOutcome<SpooledBatch>> {
  return defer(() => deliveryOnce(deps));
}

function deliveryOnce(deps: PipelineDeps): Observable<InsertOutcome<SpooledBatch>> {
  const { spool, slots, metrics } = deps;
  const log = deps.logger;
  // Every attempt's action, from which the delivery state is derived (ok | blocked).
  const attempts = new Subject<InsertAttempt<SpooledBatch>>();
  const done$ = new Subject<void>();
  const endpoint = deps.clickhouse.endpoint ?? '(ClickHouse)';
  const sinceIso = (state: DeliveryBlocked) => new Date(state.since).toISOString();
  let previous: DeliveryState = DELIVERY_OK;
  const watch$ = attempts.pipe(
    deliveryState(),
    tap((state) => {
      deps.deliveryState?.next(state);
      for (const reason of new Set([...BLOCKED_REASONS, ...(previous.kind === 'blocked' ? [previous.reason] : [])])) metrics.deliveryBlocked.set({ reason }, 0);
      if (state.kind === 'blocked') {
        metrics.deliveryBlocked.set({ reason: state.reason }, 1);
        log.error({ clickhouse: endpoint, reason: state.reason, err: state.message }, `delivery blocked (${state.reason}): every insert to ${endpoint} would fail; batches wait in the spool, retried at every slot`);
      } else if (previous.kind === 'blocked') {
        log.info({ clickhouse: endpoint, reason: previous.reason, blockedForMs: slots.scheduler.now() - previous.since }, 'delivery resumed');
      }
      previous = state;
    }),
    remindWhileBlocked({ everyMs: BLOCKED_REMINDER_MS, scheduler: slots.scheduler }),
    tap((state) => log.error({ clickhouse: endpoint, reason: state.reason, since: sinceIso(state), err: state.message, spooled: spool.stats() }, `delivery still blocked (${state.reason})`)),
  );
  const outcomes$ = spool.pending().pipe(
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
      onAttempt: (attempt) => attempts.next(attempt),
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
  // The state is watched for as long as delivery runs (an error in watching ends delivery
  // too); the watcher stops when the outcomes complete, so a drain still completes.
  return merge(watch$.pipe(takeUntil(done$), ignoreElements()), outcomes$.pipe(tap({ complete: () => done$.next() })));
}

/** What `splitInHalves` needs: the spool and the codec of the pipeline; logs and metrics when given. */
export type SplitDeps = Pick<PipelineDeps, 'spool' | 'compress' | 'codec'> & Partial<Pick<PipelineDeps, 'logger' | 'metrics'>>;

/**
 * A 413, settled against the spool: the refused body goes back to rows, and parts of at
 * most half its size (`splitOversized`, which is encodeBatches' own split) replace the
 * batch in the spool, durably, in one step. A batch that cannot get smaller (one row) is
 * quarantined. This is what `acknowledgeBatches`' `split` does in the pipeline; an
 * embedder's own delivery chain can use it the same way.
 *
 * @example
 * ```ts
 * acknowledgeBatches({ stored: (b) => spool.remove(b), split: (b) => splitInHalves({ spool, compress, codec: 'br' }, b), quarantine })
 * ```
 */
export async function splitInHalves(deps: SplitDeps, batch: SpooledBatch): Promise<void> {
  // Either format: a batch spooled by an earlier version is split into parts of today's.
  const rows = decodeInsertBody(await decompress(batch.codec, await deps.spool.readBody(batch)));
  const oversized = { token: batch.token, rows, bodyBytes: batch.bodyBytes, reason: batch.header.sealReason ?? 'size' } as const;
  const { parts } = await lastValueFrom(of(oversized).pipe(splitOversized({ encode: encodeInsertBody, format: INSERT_FORMAT, compress: deps.compress, codec: deps.codec })));
  if (parts.length === 0) return deps.spool.quarantine(batch, { code: 'ANON_BODY_TOO_LARGE', message: 'a single row is over the body limit the proxy enforces' });
  deps.metrics?.split.inc();
  deps.logger?.warn({ token: batch.token, rows: rows.length, parts: parts.map((p) => p.body.byteLength) }, 'the proxy refused the body as too large (413): split');
  await deps.spool.replace(batch, parts);
}

export interface RunningPipeline {
  /** Resolves when both chains are done (drain, or after `stop()`), rejects on a fatal error. */
  readonly done: Promise<void>;
  /** Graceful stop: no more fetching; the open batch is sealed, persisted and committed; delivery stops now. */
  stop(): Promise<void>;
  /**
   * A fatal error from outside the chains (an exception RxJS could not deliver, a crash of
   * a client): both chains stop now, the open batch stays uncommitted in Kafka, and `done`
   * rejects with the error.
   */
  abort(error: unknown): void;
}

/**
 * Pauses consumption while the spool holds more than `spoolMaxBytes`, resumes below 80 %
 * of it (hysteresis, so a spool at the mark does not flap), and keeps the spool gauges.
 * A stream of the spool's changes; it never completes by itself.
 */
export function backpressure(deps: Pick<PipelineDeps, 'spool' | 'source' | 'metrics' | 'spoolMaxBytes'>): Observable<never> {
  const { spool, source, metrics } = deps;
  return spool.changed$.pipe(
    startWith(undefined),
    map(() => spool.stats()),
    tap(({ bytes, batches }) => {
      metrics.spoolBytes.set(bytes);
      metrics.spoolBatches.set(batches);
      metrics.spoolQuarantined.set(spool.quarantineCount?.() ?? 0);
    }),
    scan((full, { bytes }) => (bytes > deps.spoolMaxBytes ? true : bytes < deps.spoolMaxBytes * 0.8 ? false : full), false),
    distinctUntilChanged(),
    tap((full) => {
      metrics.paused.set(full ? 1 : 0);
      if (full) {
        metrics.pauses.inc({ reason: 'spool-full' });
        source.pause('spool-full');
      } else source.resume('spool-full');
    }),
    ignoreElements(),
  );
}

/**
 * Both chains and the backpressure, as one stream: ingestion and delivery merged, with
 * backpressure for as long as they run. It completes when ingestion has completed (the
 * source ended: a drain's end, or `stop$`) and delivery has too: in a drain, delivery
 * completes once the spool is empty after the end of input; `stop$` ends delivery at once.
 * Any error in either chain errors it, which tears both down.
 */
export function pipeline$(deps: PipelineDeps, options: { drain: boolean }, stop$: Observable<unknown>): Observable<never> {
  return pipelineOutcomes$(deps, options, stop$).pipe(ignoreElements());
}

/** `pipeline$`, emitting every delivery outcome (stored, split, quarantined batch) as it is settled. */
export function pipelineOutcomes$(deps: PipelineDeps, options: { drain: boolean }, stop$: Observable<unknown>): Observable<InsertOutcome<SpooledBatch>> {
  let stopping = false;
  // The delivery state flows to ingestion (sealing while blocked) and to whoever the caller told.
  const deliveryState$ = new BehaviorSubject<DeliveryState>(DELIVERY_OK);
  const told = deps.deliveryState;
  deps = { ...deps, deliveryState: { next: (state) => (deliveryState$.next(state), told?.next(state)) } };
  const deliveryBlocked$ = deliveryState$.pipe(map((state) => state.kind === 'blocked'));
  const unsubscribed$ = new Subject<void>();
  const ingest$ = ingestion(deps, { stopping: () => stopping, deliveryBlocked$ }).pipe(
    // Stopped while the disk refused the last batch: it was neither written nor committed.
    catchError((error: unknown) => {
      if (!(stopping && error instanceof SpoolDiskError)) return throwError(() => error);
      deps.logger.warn({ code: error.code, dir: error.dir }, "stopped while the spool's disk was full: the last batch was not written nor committed, its records are read again");
      return EMPTY;
    }),
    tap({ complete: () => options.drain && deps.spool.endOfInput() }),
    // The shares below outlive their subscribers (resetOnRefCountZero: false): when the
    // caller unsubscribes (an early `break` out of `outcomes()`, an abort), this ends them.
    takeUntil(unsubscribed$),
    // One run of ingestion for both subscribers; one that subscribes after it ended sees the end, not a second run.
    share({ resetOnComplete: false, resetOnError: false, resetOnRefCountZero: false }),
  );
  const stopped$ = stop$.pipe(tap(() => (stopping = true)));
  const work$ = merge(ingest$.pipe(ignoreElements()), delivery(deps).pipe(takeUntil(stopped$))).pipe(
    takeUntil(unsubscribed$),
    share({ resetOnComplete: false, resetOnError: false, resetOnRefCountZero: false }),
  );
  // Backpressure (and the spool gauges) for as long as either chain runs: a drain's
  // delivery goes on emptying the spool after ingestion has ended.
  return defer(() => {
    for (const { reason } of deps.spool.corruptAtOpen?.() ?? []) deps.metrics.spoolCorruptFiles.inc({ reason });
    return merge(work$, backpressure(deps).pipe(takeUntil(work$.pipe(ignoreElements(), endWith(true))))).pipe(finalize(() => unsubscribed$.next()));
  });
}

/** Runs `pipeline$`: the product as a promise-shaped handle for the CLI and for embedders. */
export function runPipeline(deps: PipelineDeps, options: { drain: boolean }): RunningPipeline {
  return startPipeline(deps, options, new Subject<void>());
}

function startPipeline(deps: PipelineDeps, options: { drain: boolean }, stop$: Subject<void>): RunningPipeline {
  // abort(): takeUntil forwards its notifier's error, which tears the chains down.
  const abort$ = new Subject<never>();
  const done = new Promise<void>((resolve, reject) => {
    pipeline$(deps, options, stop$).pipe(takeUntil(abort$)).subscribe({ error: reject, complete: resolve });
  });
  return {
    done,
    async stop() {
      // Delivery stops at once: a request cut mid-way is sent again, same token, next run.
      deps.logger.info('stopping: sealing and persisting the open batch');
      stop$.next();
      deps.source.stop();
      await done;
    },
    abort(error) {
      abort$.error(error);
    },
  };
}

/** The composed pipeline of `createPipeline`: its two chains, the whole of it as one stream, and ways to run and stop it. */
export interface Pipeline {
  /** Kafka → spool, as `ingestion(deps)`: for an app that composes the chains itself. */
  readonly ingestion$: Observable<IngestedBatch>;
  /** Spool → ClickHouse, as `delivery(deps)`: every batch's outcome, once settled against the spool (413s split). */
  readonly delivery$: Observable<InsertOutcome<SpooledBatch>>;
  /**
   * The whole product as one cold stream (both chains, backpressure, sealing while delivery
   * is blocked, as `anonymizer run` composes them): every delivery outcome as it is settled.
   * It completes after a drain (`drain: true`) or `stop()`, and errors on a fatal error.
   * Subscribe to it once: it reads one Kafka source into one spool.
   */
  readonly outcomes$: Observable<InsertOutcome<SpooledBatch>>;
  /**
   * `outcomes$` for callers who do not use Rx: `for await (const outcome of pipeline.outcomes())`.
   * Every outcome comes out, none lost (rxjs-for-await's `eachValueFrom`: they are buffered
   * while the loop's body awaits). Leaving the loop early (`break`, `throw`) unsubscribes,
   * which stops the chains at once: nothing durable is lost, and records whose batch was
   * not committed are read again by the next run. `stop()` ends the loop gracefully.
   */
  outcomes(): AsyncIterableIterator<InsertOutcome<SpooledBatch>>;
  /** Runs `outcomes$` to its end, as the CLI does (`runPipeline`); `pipeline.stop()` stops it too. */
  run(): RunningPipeline;
  /**
   * Graceful stop of what runs (`outcomes$`, `outcomes()` or `run()`): no more fetching; the
   * open batch is sealed, persisted and committed; delivery stops now. Resolves once it has ended.
   */
  stop(): Promise<void>;
}

/**
 * The product's pipeline, composed from `deps` as `anonymizer run` composes it, for an app
 * that embeds it: the chains to compose further, one stream of outcomes (Rx or `for await`),
 * and run/stop. Nothing starts until one of them is subscribed or `run()` is called.
 *
 * @example
 * ```ts
 * const pipeline = createPipeline(deps, { drain: true });
 * for await (const outcome of pipeline.outcomes()) {
 *   if (outcome.kind === 'stored') console.log(`${outcome.batch.rowCount} rows stored`);
 * }
 * ```
 */
export function createPipeline(deps: PipelineDeps, options: { drain?: boolean } = {}): Pipeline {
  const settings = { drain: options.drain ?? false };
  const stop$ = new Subject<void>();
  let running = 0;
  const ended$ = new Subject<void>();
  const outcomes$ = defer(() => {
    running++;
    return pipelineOutcomes$(deps, settings, stop$).pipe(
      finalize(() => {
        running--;
        ended$.next();
      }),
    );
  });
  return {
    ingestion$: ingestion(deps),
    delivery$: delivery(deps),
    outcomes$,
    outcomes: () => eachValueFrom(outcomes$),
    run: () => {
      const run = startPipeline(deps, { drain: settings.drain }, stop$);
      running++;
      void run.done.then(
        () => (running--, ended$.next()),
        () => (running--, ended$.next()),
      );
      return run;
    },
    async stop() {
      if (running === 0) return;
      const ended = firstValueFrom(ended$);
      deps.logger.info('stopping: sealing and persisting the open batch');
      stop$.next();
      deps.source.stop();
      await ended;
    },
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
