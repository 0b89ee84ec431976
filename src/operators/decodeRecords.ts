import { map, type OperatorFunction } from 'rxjs';
import type { DecodedChunk, OffsetChunk, RejectedMessage, SourceMessage } from '../domain/batch.ts';
import type { DecodedRecord } from '../domain/httpLogRow.ts';
import { AnonymizerError, DecodeError } from '../errors.ts';

export interface DecodeRecordsConfig {
  /** Turns one message value into a record, or throws an `AnonymizerError` saying why it can't. */
  readonly decode: (value: Uint8Array) => DecodedRecord;
}

/**
 * Decodes each message of a partition's batch, keeping the batch's offset span. A message
 * that cannot become a row (undecodable, timestamp out of `DateTime` range, no value) is
 * listed in the chunk's `rejected`, with the reason, for the dead-letter step: it stays
 * covered by `lastOffset`, so it is committed past once that step has kept it.
 *
 * ```
 * source:  --[m1 m2 bad m4]--|
 * result:  --[r1 r2 r4 | rejected: bad]--|
 * ```
 *
 * @example
 * kafkaChunks$.pipe(decodeRecords({ decode: decodeRecord }), deadLetter({ send }))
 */
export function decodeRecords(config: DecodeRecordsConfig): OperatorFunction<OffsetChunk<SourceMessage>, DecodedChunk<DecodedRecord>> {
  return map((chunk) => {
    const items: DecodedRecord[] = [];
    const itemOffsets: number[] = [];
    const rejected: RejectedMessage[] = [];
    for (const message of chunk.items) {
      try {
        if (message.value === null) throw new DecodeError('the message has no value (a tombstone)');
        items.push(config.decode(message.value));
        itemOffsets.push(message.offset);
      } catch (error) {
        rejected.push({ message, error: error instanceof AnonymizerError ? error : new DecodeError(String(error), { cause: error }) });
      }
    }
    return { ...chunk, items, itemOffsets, rejected };
  });
}
