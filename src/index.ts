/**
 * The package's public entry (`import { … } from 'http-log-anonymizer'`): the operators of
 * the chain, the domain functions they wrap, the ClickHouse sink and the spool behind
 * their interfaces, and the errors. Everything here is what `anonymizer run` itself
 * composes (src/streams/anonymizerPipeline.ts): an embedder takes the whole pipeline
 * (`createPipeline(deps)`, followed as an Observable or with `for await`), or builds the
 * same chain, or any part of it, in an Rx app of its own. examples/embed.ts is a runnable
 * example. Installed, this is dist/index.js with its declarations (`npm run build`).
 *
 * Anything not exported here is internal and may change without notice.
 */

// The operators, one per file in src/operators, each with its config type.
export { decodeRecords, type DecodeRecordsConfig } from './operators/decodeRecords.ts';
export { deadLetter, type DeadLetterConfig } from './operators/deadLetter.ts';
export { anonymizeAddresses, type AnonymizeAddressesConfig } from './operators/anonymizeAddresses.ts';
export { sealBatches, type SealBatchesConfig, type SealFit } from './operators/sealBatches.ts';
export { encodeBatches, type EncodeBatchesConfig } from './operators/encodeBatches.ts';
export { persistBatches, type PersistBatchesConfig, type PersistedBatch } from './operators/persistBatches.ts';
export { commitOffsets, type CommitOffsetsConfig } from './operators/commitOffsets.ts';
export { publishBatches, type PublishBatchesConfig } from './operators/publishBatches.ts';
export { pacedInsert, type InsertAttempt, type InsertableBatch, type InsertOutcome, type PacedInsertConfig } from './operators/pacedInsert.ts';
export { DELIVERY_OK, deliveryState, nextDeliveryState, type DeliveryBlocked, type DeliveryOk, type DeliveryState } from './operators/deliveryState.ts';
export { remindWhileBlocked, type RemindWhileBlockedConfig } from './operators/remindWhileBlocked.ts';
export { acknowledgeBatches, type AcknowledgeBatchesConfig } from './operators/acknowledgeBatches.ts';
export { awaitEach } from './operators/awaitEach.ts';

// What flows between them, and the pure functions the operators default to.
export type { Codec, DecodedChunk, OffsetChunk, PartitionOffsets, PreparedBody, RejectedMessage, RowBatch, SealedBatch, SealReason, SourceMessage } from './domain/batch.ts';
export type { DecodedRecord, HttpLogRow, RecordFields, StoredRowJson } from './domain/httpLogRow.ts';
export { MAX_DATETIME_SECONDS, toStoredRowJson } from './domain/httpLogRow.ts';
export { decodeRecord } from './domain/decodeRecord.ts';
export { encodeRecord, type SourceRecord } from './domain/encodeRecord.ts';
export { anonymizeAddress, type AddressKind, type AnonymizedAddress } from './domain/anonymizeAddress.ts';
export { ProxySlots, type ProxySlotsConfig, type SharedSlotsConfig, type SlotState } from './pacing/proxySlots.ts';
export { decideSharedSlot, slotDelay, type SlotClaim, type SlotLedger } from './pacing/sharedSlot.ts';
export { openSlotDir } from './io/slotDir.ts';

// The insert body: ClickHouse Native, compressed as an HTTP Content-Encoding.
export { decodeInsertBody, encodeInsertBody, INSERT_FORMAT, insertRowSize } from './encode/insertBody.ts';
export { decodeNative, encodeNative, nativeRowSize } from './encode/nativeFormat.ts';
export { compress, decompress, CODECS, DEFAULT_LEVEL } from './encode/compress.ts';

// Side effects, behind their interfaces: the ClickHouse sink and the spool.
export { checkClickHouseTls, createClickHouseHttp, PINNED_INSERT_SETTINGS, type ClickHouseClient, type ClickHouseHttpConfig, type InsertBody } from './io/clickhouseHttp.ts';
export { Spool, type BatchSpool, type QuarantinedBatch, type SpooledBatch, type SpoolHeader, type SpoolOptions, type StagedBatch, type StagedResolver } from './io/spool.ts';

// The errors: one base class with a stable code, and the classifier pacedInsert uses.
export {
  AnonymizerError,
  BodyTooLargeError,
  ClickHouseError,
  ConfigError,
  DecodeError,
  FramingError,
  NetworkError,
  ProxyRateLimitedError,
  SpoolError,
  TimestampRangeError,
  classifyInsertFailure,
  insertFailurePolicy,
  policyForAnswer,
  type AnonymizerErrorOptions,
  type BlockedReason,
  type InsertAnswer,
  type InsertFailureAction,
  type InsertFailurePolicy,
  type Stage,
} from './errors.ts';

// Hostile input: text rules, addresses inside URLs, rows too large for one body.
export { rejectOversizedRows, type RejectOversizedRowsConfig } from './operators/rejectOversizedRows.ts';
export { MAX_TEXT_LENGTH, singleRowBodyBound, validateRecord } from './domain/validateRecord.ts';
export { anonymizeUrlAddresses } from './domain/anonymizeAddress.ts';
export { messageFramingProblem } from './domain/capnpFraming.ts';
export { InvalidTextError, RowTooLargeError } from './errors.ts';

// The spool's integrity errors, and the chains composed as the CLI runs them.
export { SpoolDiskError, SpoolFileCorruptError, type SpoolCorruption } from './errors.ts';
export { createDeadLetterSink, planDeadLetters, type DeadLetterSink } from './io/deadLetterSink.ts';
export { backpressure, delivery, ingestion, pipeline$, runPipeline, sealGate, type PipelineDeps, type RunningPipeline } from './streams/anonymizerPipeline.ts';

// The whole pipeline as a library: composed as `anonymizer run` composes it, as Rx or as an
// async iterable (`for await (const outcome of pipeline.outcomes())`), and the 413 split.
export { createPipeline, pipelineOutcomes$, splitInHalves, type IngestedBatch, type IngestionOptions, type Pipeline, type SplitDeps } from './streams/anonymizerPipeline.ts';
export { splitOversized, type OversizedBatch, type SplitOversizedConfig, type SplitParts } from './operators/splitOversized.ts';
export { createPipelineMetrics, type PipelineMetrics } from './streams/pipelineMetrics.ts';

// The Kafka source the pipeline reads (kafkajs behind the KafkaSource interface), and the
// client factory every Kafka client is built with (TLS, SASL, logging through pino).
export { createKafkaSource, type CommitMetadata, type CommittableBatch, type KafkaSource, type KafkaSourceConfig } from './io/kafkaSource.ts';
export { checkKafkaReachable, createKafkaClient, kafkaClientConfig, type KafkaClientSettings } from './io/kafkaClient.ts';
export type { ClickHouseConnection, KafkaConnection, SaslCredentials, TlsMaterial } from './connections.ts';
export { PeerUnreachableError } from './errors.ts';
