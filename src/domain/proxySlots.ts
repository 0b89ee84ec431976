/**
 * When the next request may go through the proxy.
 *
 * The proxy (nginx `limit_req`, no burst) lets one request per interval through per
 * client address and answers 503 to the rest. A 503 does not reset its clock, so after
 * one the right move is to wait for the slot we already know of, not to back off blindly.
 * Every request that reached ClickHouse, successful or not, used up a slot; a 503 or a
 * refused connection did not.
 */
import { asyncScheduler, filter, interval, Observable, timer, type SchedulerLike } from 'rxjs';

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
  /** How often `ready$` looks for an idle, open slot, in ms. Default 250. */
  readonly readyPollMs?: number;
  readonly scheduler?: SchedulerLike;
}

export class ProxySlots {
  readonly minIntervalMs: number;
  readonly marginMs: number;
  readonly probeMs: number;
  readonly scheduler: SchedulerLike;
  /** Fires while a slot is open and no batch is waiting for it: time to seal the open batch. */
  readonly ready$: Observable<number>;
  #nextAt: number;
  #waiting = 0;

  constructor(config: ProxySlotsConfig = {}) {
    this.minIntervalMs = config.minIntervalMs ?? 60_000;
    this.marginMs = config.marginMs ?? 3_000;
    this.probeMs = config.probeMs ?? Math.max(1, Math.round(this.minIntervalMs / 10));
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.#nextAt = this.scheduler.now();
    this.ready$ = interval(config.readyPollMs ?? 250, this.scheduler).pipe(filter(() => this.#waiting === 0 && this.msUntilNext() === 0));
  }

  /** Milliseconds until the next request may go; 0 when it may go now. */
  msUntilNext(): number {
    return Math.max(0, this.#nextAt - this.scheduler.now());
  }

  /** Emits once, when the next request may go. */
  whenOpen(): Observable<number> {
    return timer(this.msUntilNext(), this.scheduler);
  }

  /** A request that reached the upstream, whatever its outcome, started at `startedAt`. */
  used(startedAt: number): void {
    this.#nextAt = Math.max(this.#nextAt, startedAt + this.minIntervalMs + this.marginMs);
  }

  /** A request was refused before it used a slot (503 from the proxy, connection refused). */
  notUsed(): void {
    this.#nextAt = Math.max(this.#nextAt, this.scheduler.now() + this.probeMs);
  }

  /** A batch is waiting for (or using) a slot; `ready$` stays quiet until it is done. */
  enqueue(): void {
    this.#waiting++;
  }

  dequeue(): void {
    this.#waiting = Math.max(0, this.#waiting - 1);
  }
}
