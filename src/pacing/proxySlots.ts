/**
 * When the next request may go through the proxy, as state that flows.
 *
 * The proxy (nginx `limit_req`, no burst) lets one request per interval through per
 * client address and answers 503 to the rest. A 503 does not reset its clock, so after
 * one the right move is to wait for the slot we already know of, not to back off blindly.
 * Every request that reached ClickHouse, successful or not, used up a slot; a 503 or a
 * refused connection did not.
 *
 * Not domain code: it holds the pacing state and runs timers. Its state is an observable
 * (`state$`), and `idle$` (a slot is open and no batch waits for it) is derived from it
 * with one timer per change, not by polling.
 */
import { asyncScheduler, BehaviorSubject, distinctUntilChanged, map, of, switchMap, timer, concat, filter, type Observable, type SchedulerLike } from 'rxjs';

export interface ProxySlotsConfig {
  /** The proxy's interval between accepted requests, in ms. Default 60 000 (nginx `rate=1r/m`). */
  readonly minIntervalMs?: number;
  /**
   * Added to every interval, in ms. Default 3 000: nginx stores `limit_req` rates in whole
   * milli-requests per second, so `rate=1r/m` (16.67) becomes 16 and really lets one
   * request through per 62.5 s; the rest absorbs clock granularity.
   */
  readonly marginMs?: number;
  /**
   * After a request that used no slot but whose slot we can't predict (a 503 when we
   * thought the slot was open: another process on this host shares the budget), try again
   * after this many ms. A rejected attempt costs the proxy nothing. Default: interval / 10.
   */
  readonly probeMs?: number;
  readonly scheduler?: SchedulerLike;
}

/** The pacing state: when the next request may go, and how many batches wait for (or use) a slot. */
export interface SlotState {
  /** Scheduler time (ms) from which the next request may go. */
  readonly nextAt: number;
  readonly waiting: number;
}

export class ProxySlots {
  readonly minIntervalMs: number;
  readonly marginMs: number;
  readonly probeMs: number;
  readonly scheduler: SchedulerLike;
  /** The pacing state; emits the current state on subscription, then every change. */
  readonly state$: Observable<SlotState>;
  /**
   * True while a slot is open and no batch is waiting for it (time to seal the open
   * batch), false otherwise; emits on every change, and the current value on subscription.
   */
  readonly idle$: Observable<boolean>;
  /** Fires each time the proxy becomes idle: `idle$`'s rising edges. */
  readonly ready$: Observable<true>;
  readonly #state: BehaviorSubject<SlotState>;

  constructor(config: ProxySlotsConfig = {}) {
    this.minIntervalMs = config.minIntervalMs ?? 60_000;
    this.marginMs = config.marginMs ?? 3_000;
    this.probeMs = config.probeMs ?? Math.max(1, Math.round(this.minIntervalMs / 10));
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.#state = new BehaviorSubject<SlotState>({ nextAt: this.scheduler.now(), waiting: 0 });
    this.state$ = this.#state.asObservable();
    this.idle$ = this.state$.pipe(
      switchMap((state) => {
        if (state.waiting > 0) return of(false);
        const wait = state.nextAt - this.scheduler.now();
        // Closed until nextAt, then open: one timer per state change.
        return wait <= 0 ? of(true) : concat(of(false), timer(wait, this.scheduler).pipe(map(() => true)));
      }),
      distinctUntilChanged(),
    );
    this.ready$ = this.idle$.pipe(filter((idle): idle is true => idle));
  }

  /** Milliseconds until the next request may go; 0 when it may go now. */
  msUntilNext(): number {
    return Math.max(0, this.#state.value.nextAt - this.scheduler.now());
  }

  /** Emits once, when the next request may go. */
  whenOpen(): Observable<number> {
    return timer(this.msUntilNext(), this.scheduler);
  }

  /** A request that reached the upstream, whatever its outcome, started at `startedAt`. */
  used(startedAt: number): void {
    this.#update({ nextAt: Math.max(this.#state.value.nextAt, startedAt + this.minIntervalMs + this.marginMs) });
  }

  /** A request was refused before it used a slot (503 from the proxy, connection refused). */
  notUsed(): void {
    this.#update({ nextAt: Math.max(this.#state.value.nextAt, this.scheduler.now() + this.probeMs) });
  }

  /** A batch is waiting for (or using) a slot; the proxy is not idle until it is done. Pair with `dequeue`. */
  enqueue(): void {
    this.#update({ waiting: this.#state.value.waiting + 1 });
  }

  dequeue(): void {
    this.#update({ waiting: Math.max(0, this.#state.value.waiting - 1) });
  }

  #update(change: Partial<SlotState>): void {
    const next = { ...this.#state.value, ...change };
    if (next.nextAt !== this.#state.value.nextAt || next.waiting !== this.#state.value.waiting) this.#state.next(next);
  }
}
