/**
 * Pure decisions for instances that share one proxy budget (one client address) and
 * coordinate through a slot directory (PROXY_SLOT_DIR, src/io/slotDir.ts).
 *
 * The directory holds a ledger of numbered claims: "slot `seq` was taken at `at` by
 * `owner`". Before a request an instance reads the latest claim; the next slot opens one
 * period (interval + margin) after it. The instance waits until then plus a random delay of
 * its own, drawn once per claim it waits on, and then tries to claim `seq + 1`. Exactly one
 * instance gets each number (the io layer makes the claim with link(2), which fails if the
 * name exists); the others read the new claim and wait for the slot after it.
 *
 * Why a delay, and always: every waiting instance wakes at the same moment, and the one
 * whose own pace brings it back first (the last winner, whose local timer ends just then)
 * would win every time and starve the rest. So the owner of the latest claim waits the
 * whole jitter on top of the period, and every other instance a random part of it, drawn
 * once per claim it waits on: the last winner yields to anyone waiting, and the others are
 * equally likely to win (among n instances, losing k slots in a row has a chance of at
 * most (1 - 1/(n - 1))^k, and with two they alternate). Alone, an instance pays the whole
 * jitter per slot; with others, the winner's draw.
 *
 * Why no lock: a lock held by a process killed with -9 would stall every other instance
 * until someone decided it was stale. A claim holds nothing: a claimant killed before its
 * request wastes that one slot, and the others go one period later.
 *
 * Clocks: claims carry wall-clock times, the only clock processes share. A claim stamped
 * later than now (this clock went back, or the writer's is ahead) is counted from now, and
 * the time already waited on one claim (measured by timers, which do not follow the wall
 * clock) caps the wait at one period plus the delay: a clock jump costs one slot at most,
 * never a stall. A jump forward makes a claim look old; the request may then meet a 503,
 * which the usual pacing handles (`ProxySlots.notUsed`).
 */

/** One entry of the slot ledger. */
export interface SlotClaim {
  /** 1, 2, 3…: each number is claimed once. */
  readonly seq: number;
  /** When the claimant's request was about to start (wall clock, ms since the epoch). */
  readonly at: number;
  /** Which instance claimed it (a process-unique id). */
  readonly owner: string;
}

/** The ledger as the pacing uses it (src/io/slotDir.ts keeps it in a directory). Either method may throw. */
export interface SlotLedger {
  /** The claim with the highest number, if any. */
  latest(): SlotClaim | undefined;
  /** Claims number `seq` at `at` for `owner`; false when another instance has it already. */
  claim(seq: number, at: number, owner: string): boolean;
}

export interface SharedSlotInput {
  /** Wall clock, ms. */
  readonly now: number;
  /** The latest claim in the ledger, if any. */
  readonly latest: SlotClaim | undefined;
  /** The proxy's interval plus the margin, in ms. */
  readonly periodMs: number;
  /** This instance's delay for the claim it waits on (`slotDelay`), ms. */
  readonly delayMs: number;
  /** How long this instance has already waited on this same latest claim, ms (timer time). */
  readonly waitedMs: number;
}

export type SharedSlotDecision =
  | { readonly kind: 'claim'; readonly seq: number }
  | { readonly kind: 'wait'; readonly ms: number };

/** Claim the next number now, or wait this long and look again. */
export function decideSharedSlot(input: SharedSlotInput): SharedSlotDecision {
  const { latest } = input;
  if (latest === undefined) return { kind: 'claim', seq: 1 };
  const due = Math.min(latest.at, input.now) + input.periodMs + input.delayMs - input.now;
  const capped = input.periodMs + input.delayMs - input.waitedMs;
  const ms = Math.ceil(Math.min(due, capped));
  return ms <= 0 ? { kind: 'claim', seq: latest.seq + 1 } : { kind: 'wait', ms };
}

/**
 * How long this instance waits on top of the period for the slot after a claim: the whole
 * jitter if the claim is its own (yield to anyone waiting), else `random` (in [0, 1)) of it.
 */
export function slotDelay(jitterMs: number, random: number, ownsLatest: boolean): number {
  if (ownsLatest) return jitterMs;
  return Math.floor(Math.min(Math.max(random, 0), 0.999_999) * jitterMs);
}
