import { map, type OperatorFunction } from 'rxjs';
import type { DecodedChunk, OffsetChunk, RejectedMessage, SourceMessage } from '../domain/batch.ts';
import type { DecodedRecord } from '../domain/httpLogRow.ts';
import { AnonymizerError, DecodeError } from '../errors.ts';

export interface DecodeRecordsConfig {
  /** Turns one message value into a record, or throws an `AnonymizerError` saying why it can't. */
  readonly decode: (value: Uint8Array) => DecodedRecord;
  /**
   * Throws an `AnonymizerError` (e.g. `InvalidTextError`) when a decoded record must not
   * become a row (`validateRecord`). Default: every decoded record is kept.
   */
  readonly validate?: (record: DecodedRecord) => void;
}

/**
 * A decoded chunk that also says which message each item came from (`sources[i]` for
 * `items[i]`), so a later step that refuses a row (`rejectOversizedRows`) can dead-letter
 * its original bytes.
 */
export interface SourcedChunk<T> extends DecodedChunk<T> {
  readonly sources: readonly SourceMessage[];
}

/**
 * Decodes the Cap'n Proto messages of each Kafka chunk into records, listing the ones that cannot be rows.
 *
 * <span class="informal">A `map` over chunks: one chunk in, one chunk out, with the same offset span.</span>
 *
 * Each message of a partition's chunk goes through `decode`. A message that cannot become
 * a row (not a valid `HttpLogRecord`, a timestamp past the end of `DateTime`, a tombstone
 * with no value, a text `validate` refuses) is not dropped: it is listed in the chunk's `rejected`, with the
 * `AnonymizerError` saying why, for `deadLetter`. It stays covered by `lastOffset`, so it is
 * committed past once that step has kept it. `itemOffsets` gives the offset of each row.
 *
 * ```
 * source:  -a-b-|        a = [m10, bad, m12], b = [tombstone]
 * result:  -x-y-|        x = [r10, r12], rejected [bad]; y = [], rejected [tombstone]
 *                         (each with `sources`: the message of each item)
 * ```
 *
 * Errors and completion of the source pass through unchanged.
 *
 * @param config `decode`: one message value to a `DecodedRecord`; throws to reject it
 * (a non-`AnonymizerError` is wrapped in a `DecodeError`).
 * @returns An operator from chunks of Kafka messages to decoded chunks, in order.
 * @see {@link deadLetter} keeps the rejected messages before their offsets are committed.
 * @see {@link anonymizeAddresses} comes next.
 *
 * @example
 * ```ts
 * import { decodeRecord, decodeRecords, deadLetter } from 'http-log-anonymizer';
 *
 * kafkaChunks$.pipe(
 *   decodeRecords({ decode: decodeRecord }),
 *   deadLetter({ send: (rejected) => dlq.send(rejected) }),
 * );
 * ```
 */
export function decodeRecords(config: DecodeRecordsConfig): OperatorFunction<OffsetChunk<SourceMessage>, SourcedChunk<DecodedRecord>> {
  return map((chunk) => {
    const items: DecodedRecord[] = [];
    const itemOffsets: number[] = [];
    const sources: SourceMessage[] = [];
    const rejected: RejectedMessage[] = [];
    for (const message of chunk.items) {
      try {
        if (message.value === null) throw new DecodeError('the message has no value (a tombstone)');
        const record = config.decode(message.value);
        config.validate?.(record);
        items.push(record);
        itemOffsets.push(message.offset);
        sources.push(message);
      } catch (error) {
        rejected.push({ message, error: error instanceof AnonymizerError ? error : new DecodeError(String(error), { cause: error }) });
      }
    }
    return { ...chunk, items, itemOffsets, sources, rejected };
  });
}
