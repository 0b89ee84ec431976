/**
 * The product, as one declarative chain (design.md §1):
 *
 *   kafkaSource ─► decodeRecords ─► anonymizeAddresses ─► sealBatches(proxyReady$, size cap)
 *     ─► encodeBatches ─► pacedInsert(proxy slots, retry) ─► commitOffsets
 *
 * Every side effect comes in through `PipelineDeps`, so the same chain runs against the
 * real stack, in tests, or inside another Rx app.
 */
import { filter, type Observable } from 'rxjs';
import type { Logger } from 'pino';
import type { SealedBatch, SourceMessage } from '../domain/batch.ts';
import { decodeRecord } from '../domain/decodeRecord.ts';
import type { ProxySlots } from '../domain/proxySlots.ts';
import { encodeNative, nativeRowSize } from '../encode/nativeFormat.ts';
import type { AnonymizerError } from '../errors.ts';
import type { ClickHouseClient } from '../io/clickhouseHttp.ts';
import type { KafkaSource } from '../io/kafkaSource.ts';
import { anonymizeAddresses } from '../operators/anonymizeAddresses.ts';
import { commitOffsets } from '../operators/commitOffsets.ts';
import { decodeRecords } from '../operators/decodeRecords.ts';
import { encodeBatches } from '../operators/encodeBatches.ts';
import { pacedInsert } from '../operators/pacedInsert.ts';
import { sealBatches } from '../operators/sealBatches.ts';
import type { Codec } from '../domain/batch.ts';
import type { PipelineMetrics } from './pipelineMetrics.ts';

export interface PipelineDeps {
  readonly source: KafkaSource;
  readonly clickhouse: ClickHouseClient;
  readonly slots: ProxySlots;
  readonly compress: (body: Uint8Array) => Promise<Uint8Array>;
  readonly codec: Codec;
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  readonly metrics: PipelineMetrics;
}

/**
 * The compression ratio assumed before any batch has been measured. Native + a strong
 * codec does better than this on real traffic; starting low only costs the first batch
 * some fill, while starting high would make it split.
 */
const INITIAL_RATIO = 2;

export function anonymizerPipeline(deps: PipelineDeps): Observable<SealedBatch> {
  const { source, slots, metrics } = deps;
  const log = deps.logger;
  // Learned from every batch that was sealed full, so the next one fills the body closely.
  let ratio = INITIAL_RATIO;

  const proxyReady$ = slots.ready$.pipe(filter(() => source.isCaughtUp()));

  return source.chunks$.pipe(
    decodeRecords({
      decode: decodeRecord,
      onRejected: (message: SourceMessage, error: AnonymizerError) => {
        metrics.rejected.inc({ reason: error.code });
        log.warn({ partition: message.partition, offset: message.offset, code: error.code, err: error.message }, 'message rejected: cannot become a row');
      },
    }),
    anonymizeAddresses({ onInvalidAddress: () => metrics.invalidAddresses.inc() }),
    sealBatches({ proxyReady$, maxBytes: () => deps.maxBodyBytes * ratio, sizeOf: nativeRowSize }),
    encodeBatches({
      encode: encodeNative,
      compress: deps.compress,
      codec: deps.codec,
      maxBodyBytes: deps.maxBodyBytes,
      onOversize: (rows, bytes) => log.info({ rows, bytes }, 'body over the limit: split in two'),
      onEncoded: (batch, reason) => {
        if (reason === 'size' && batch.body.byteLength > 0) ratio = (batch.uncompressedBytes / batch.body.byteLength) * 0.97;
        metrics.sealed.inc({ reason });
      },
    }),
    pacedInsert({
      send: (batch) => deps.clickhouse.insert(batch),
      slots,
      onFailure: (batch, error, action) => {
        metrics.requests.inc({ outcome: (error as AnonymizerError).code ?? 'unknown' });
        log.warn({ token: batch.token, rows: batch.rowCount, code: (error as AnonymizerError).code, err: (error as Error).message, action, nextSlotInMs: slots.msUntilNext() }, 'insert failed');
      },
      onStored: (batch, elapsedMs) => {
        metrics.requests.inc({ outcome: 'stored' });
        metrics.rowsStored.inc(batch.rowCount);
        metrics.bodyBytes.inc(batch.body.byteLength);
        log.info(
          { token: batch.token, rows: batch.rowCount, bytes: batch.body.byteLength, fill: round(batch.body.byteLength / deps.maxBodyBytes), elapsedMs },
          'batch stored',
        );
      },
    }),
    commitOffsets({ commit: (offsets) => source.commit(offsets) }),
  );
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
