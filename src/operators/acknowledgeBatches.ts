import { concatMap, from, last, map, type ObservableInput, type OperatorFunction } from 'rxjs';
import type { InsertOutcome } from './pacedInsert.ts';

export interface AcknowledgeBatchesConfig<B> {
  /** ClickHouse stored it: drop it from the spool. */
  readonly stored: (batch: B) => ObservableInput<unknown>;
  /** The proxy refused it as too large: replace it by smaller parts, durably. */
  readonly split: (batch: B, error: unknown) => ObservableInput<unknown>;
  /** ClickHouse refused its data: set it aside with the error. */
  readonly quarantine: (batch: B, error: unknown) => ObservableInput<unknown>;
}

/**
 * Settles each insert outcome against the spool, in order, and emits the outcome once the
 * spool reflects it (delete after ack; split or quarantine otherwise).
 *
 * ```
 * outcomes: -s-q-|        (s stored, q quarantine; each settle takes 1 frame)
 * result:   --s-q|
 * ```
 *
 * @example
 * spool.pending().pipe(pacedInsert({ send, slots }), acknowledgeBatches({ stored: (b) => spool.remove(b), split, quarantine }))
 */
export function acknowledgeBatches<B>(config: AcknowledgeBatchesConfig<B>): OperatorFunction<InsertOutcome<B>, InsertOutcome<B>> {
  return concatMap((outcome) => {
    const settle =
      outcome.kind === 'stored' ? config.stored(outcome.batch) : outcome.kind === 'split' ? config.split(outcome.batch, outcome.error) : config.quarantine(outcome.batch, outcome.error);
    return from(settle).pipe(
      last(null, null),
      map(() => outcome),
    );
  });
}
