import { EMPTY, interval, map, switchMap, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { DeliveryBlocked, DeliveryState } from './deliveryState.ts';

export interface RemindWhileBlockedConfig {
  /** How often to repeat a blocked state while it lasts, in ms. */
  readonly everyMs: number;
  readonly scheduler?: SchedulerLike;
}

/**
 * Repeats a blocked delivery state every `everyMs` while it lasts, for the reminder log line.
 *
 * <span class="informal">A `switchMap` to an `interval` while blocked, to nothing while ok:
 * a change of state (a new reason, or ok) restarts or stops the reminders.</span>
 *
 * ```
 * states:  o-B------o--|     everyMs 3
 * result:  -----B--B---|     (the change itself is not repeated: it has its own line)
 * ```
 *
 * @returns An operator from `DeliveryState` changes to the blocked states to remind of.
 * @see {@link deliveryState} which produces the changes.
 */
export function remindWhileBlocked(config: RemindWhileBlockedConfig): OperatorFunction<DeliveryState, DeliveryBlocked> {
  return switchMap((state) => (state.kind === 'blocked' ? interval(config.everyMs, config.scheduler).pipe(map(() => state)) : EMPTY));
}
