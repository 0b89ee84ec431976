import { concatMap, from, last, map, of, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { DecodedChunk, RejectedMessage } from '../domain/batch.ts';

export interface DeadLetterConfig {
  /** Keeps the rejected messages (the dead-letter topic); completes once they are durable there. */
  readonly send: (rejected: readonly RejectedMessage[]) => ObservableInput<unknown>;
}

/**
 * Sends each chunk's rejected messages to the dead-letter sink and only then passes the
 * chunk on, so the offsets of a poison message can't be committed before it is kept.
 * Chunks without rejects pass at once. Order is preserved.
 *
 * ```
 * chunks:  -a-b---c-|        (b holds rejected messages; the sink takes 2 frames)
 * result:  -a---b-c-|
 * ```
 *
 * @example
 * decoded$.pipe(deadLetter({ send: (rejected) => dlq.send(rejected) }))
 */
export function deadLetter<T>(config: DeadLetterConfig): OperatorFunction<DecodedChunk<T>, DecodedChunk<T>> {
  return concatMap((chunk) => (chunk.rejected.length === 0 ? of(chunk) : from(config.send(chunk.rejected)).pipe(last(null, null), map(() => chunk))));
}
