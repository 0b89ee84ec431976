import { describe, expect, it } from 'vitest';
import { decideSharedSlot, slotDelay, type SharedSlotDecision, type SharedSlotInput } from './sharedSlot.ts';

const claim = (seq: number, at: number) => ({ seq, at, owner: 'other' });
const base = { now: 100_000, periodMs: 1_150, delayMs: 0, waitedMs: 0 };

describe('decideSharedSlot', () => {
  const cases: Array<[string, Partial<SharedSlotInput> & Pick<SharedSlotInput, 'latest'>, SharedSlotDecision]> = [
    ['an empty ledger: claim the first number', { latest: undefined }, { kind: 'claim', seq: 1 }],
    ['the latest claim is older than one period: claim the next number', { latest: claim(7, 98_000) }, { kind: 'claim', seq: 8 }],
    ['exactly one period after the latest claim: claim', { latest: claim(7, 98_850) }, { kind: 'claim', seq: 8 }],
    ['the slot opens in 650 ms: wait for it', { latest: claim(7, 99_500) }, { kind: 'wait', ms: 650 }],
    ['… plus this instance\'s random delay', { latest: claim(7, 99_500), delayMs: 40 }, { kind: 'wait', ms: 690 }],
    ['the slot is open but the delay is not over: wait the rest of the delay', { latest: claim(7, 98_830), delayMs: 40 }, { kind: 'wait', ms: 20 }],
    ['the delay is over: claim', { latest: claim(7, 98_800), delayMs: 40 }, { kind: 'claim', seq: 8 }],
    ['a claim just made by another instance: wait a whole period', { latest: claim(9, 100_000) }, { kind: 'wait', ms: 1_150 }],
    // The clock went back an hour after the claim was made: counted from now, not an hour's wait.
    ['a claim from the future (clock went back): one period from now, not more', { latest: claim(9, 3_700_000) }, { kind: 'wait', ms: 1_150 }],
    ['… and once a whole period was waited on it, claim regardless of the clock', { latest: claim(9, 3_700_000), waitedMs: 1_150 }, { kind: 'claim', seq: 10 }],
    ['waited part of the period on a claim from the future: the rest of it', { latest: claim(9, 3_700_000), waitedMs: 1_000 }, { kind: 'wait', ms: 150 }],
    ['waited the period and the delay (timers are monotonic): claim', { latest: claim(9, 100_000), waitedMs: 1_190, delayMs: 40 }, { kind: 'claim', seq: 10 }],
    ['fractional times round the wait up, never to a busy loop of 0 ms waits', { latest: claim(7, 99_500.4) }, { kind: 'wait', ms: 651 }],
  ];
  it.each(cases)('%s', (_name, input, expected) => {
    expect(decideSharedSlot({ ...base, ...input })).toEqual(expected);
  });

  it('never waits longer than one period plus the delay, whatever the claim says (seeded sweep)', () => {
    let state = 12_345;
    const random = () => ((state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32);
    for (let i = 0; i < 2_000; i++) {
      const delayMs = slotDelay(75, random(), random() < 0.3);
      const decision = decideSharedSlot({ now: 100_000, periodMs: 1_150, delayMs, waitedMs: Math.floor(random() * 1_300), latest: claim(3, Math.floor(random() * 10_000_000)) });
      if (decision.kind === 'wait') expect(decision.ms).toBeLessThanOrEqual(1_150 + delayMs);
      if (decision.kind === 'wait') expect(decision.ms).toBeGreaterThan(0);
    }
  });
});

describe('slotDelay', () => {
  it.each([
    [0, 0],
    [0.5, 37],
    [0.999_999_9, 74],
    [1, 74],
    [-1, 0],
  ])('random %d of a 75 ms jitter → %d ms', (random, ms) => {
    expect(slotDelay(75, random, false)).toBe(ms);
  });
  it('the owner of the latest claim waits the whole jitter: it yields to anyone waiting', () => expect(slotDelay(75, 0.1, true)).toBe(75));
  it('is 0 with no jitter', () => {
    expect(slotDelay(0, 0.7, false)).toBe(0);
    expect(slotDelay(0, 0.7, true)).toBe(0);
  });
});
