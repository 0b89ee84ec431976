import { describe, expect, it } from 'vitest';
import { PartitionProgress, shouldPause } from './partitionProgress.ts';

describe('PartitionProgress', () => {
  it('counts what is handed over and not committed, per partition', () => {
    const progress = new PartitionProgress();
    progress.fetched(0, 100, 199, 1_000);
    progress.fetched(1, 0, 49, 50);
    expect(progress.outstanding()).toBe(150);
    progress.committedUpTo(0, 149);
    expect(progress.outstanding()).toBe(100);
    // A commit of an older batch never moves the committed offset back.
    progress.committedUpTo(0, 120);
    expect(progress.outstanding()).toBe(100);
    progress.committedUpTo(0, 199);
    progress.committedUpTo(1, 49);
    expect(progress.outstanding()).toBe(0);
  });

  it('remembers where this member started each partition, and forgets it at a new generation', () => {
    const progress = new PartitionProgress();
    expect(progress.since(0)).toBe(-1);
    progress.fetched(0, 100, 199, 1_000);
    progress.fetched(0, 200, 299, 1_000);
    expect(progress.since(0)).toBe(100);
    progress.reset();
    expect(progress.since(0)).toBe(-1);
    expect(progress.outstanding()).toBe(0);
  });

  it('is caught up when no partition heard from lags', () => {
    const progress = new PartitionProgress();
    expect(progress.isCaughtUp()).toBe(true);
    progress.fetched(0, 0, 9, 20);
    expect(progress.isCaughtUp()).toBe(false);
    expect(progress.lag().get(0)).toBe(10);
    progress.fetched(0, 10, 19, 20);
    expect(progress.isCaughtUp()).toBe(true);
  });

  const drainCases: Array<[string, Array<[number, number, number]>, Array<[number, number]>, Array<[number, number]>, boolean]> = [
    // name, fetched [partition, first, last], committed [partition, offset], targets [partition, last offset], reached?
    ['nothing fetched yet', [], [], [[0, 9]], false],
    ['handed over up to the target', [[0, 0, 9]], [], [[0, 9]], true],
    ['handed over short of the target', [[0, 0, 8]], [], [[0, 9]], false],
    ['one partition reached, one not', [[0, 0, 9], [1, 0, 3]], [], [[0, 9], [1, 4]], false],
    ['no targets: nothing to drain', [], [], [], true],
  ];
  it.each(drainCases)('drain: %s', (_name, fetched, committed, targets, reached) => {
    const progress = new PartitionProgress();
    for (const [partition, first, last] of fetched) progress.fetched(partition, first, last, last + 1);
    for (const [partition, offset] of committed) progress.committedUpTo(partition, offset);
    expect(progress.reached(new Map(targets))).toBe(reached);
  });
});

describe('shouldPause', () => {
  const cases: Array<[string, string[], number, number, boolean]> = [
    ['no reason, little outstanding', [], 10, 100, false],
    ['exactly at the cap', [], 100, 100, false],
    ['over the cap', [], 101, 100, true],
    ['the spool is full', ['spool-full'], 0, 100, true],
    ['two reasons', ['spool-full', 'spool-disk'], 0, 100, true],
  ];
  it.each(cases)('%s', (_name, reasons, outstanding, max, paused) => {
    expect(shouldPause(new Set(reasons), outstanding, max)).toBe(paused);
  });
});
