import { map, type OperatorFunction } from 'rxjs';
import type { OffsetChunk, SourceMessage } from '../domain/batch.ts';
import type { DecodedRecord } from '../domain/httpLogRow.ts';
import { AnonymizerError, DecodeError } from '../errors.ts';

export interface DecodeRecordsConfig {
  /** Turns one message value into a record, or throws an `AnonymizerError` saying why it can't. */
  readonly decode: (value: Uint8Array) => DecodedRecord;
  /**
   * Told about every message that cannot become a row (undecodable, timestamp out of
   * `DateTime` range, empty value). The message is still covered by the chunk's
   * `lastOffset`, so it is committed past: the callback is where it must be kept
   * (dead-letter topic) and counted.
   */
  readonly onRejected: (message: SourceMessage, error: AnonymizerError) => void;
}

/**
 * Decodes each message of a partition's batch, keeping the batch's offset span.
 *
 * ```
 * source:  --[m1 m2 bad m4]--|
 * result:  --[r1 r2 r4]------|      onRejected(bad)
 * ```
 *
 * @example
 * kafkaChunks$.pipe(decodeRecords({ decode: decodeRecord, onRejected: deadLetter }))
 */
export function decodeRecords(config: DecodeRecordsConfig): OperatorFunction<OffsetChunk<SourceMessage>, OffsetChunk<DecodedRecord>> {
  return map((chunk) => {
    const items: DecodedRecord[] = [];
    for (const message of chunk.items) {
      try {
        if (message.value === null) throw new DecodeError('the message has no value (a tombstone)');
        items.push(config.decode(message.value));
      } catch (error) {
        config.onRejected(message, error instanceof AnonymizerError ? error : new DecodeError(String(error), { cause: error }));
      }
    }
    return { partition: chunk.partition, items, lastOffset: chunk.lastOffset };
  });
}
