// The fleet arithmetic behind `anonymizer capacity` and `migrate --cluster`, as tables.
import { describe, expect, it } from 'vitest';
import { REALISTIC_ROWS_PER_REQUEST, UNIFORM_ROWS_PER_REQUEST } from './model.ts';
import {
  BLOCKS_PER_INSERT, MIN_DEDUP_WINDOW_BLOCKS, MIN_DEDUP_WINDOW_SECONDS, PARTITIONS_PER_INSTANCE, TARGET_UTILISATION,
  dedupWindows, fleet, parseOutage,
} from './fleet.ts';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const H = 3_600;

describe('parseOutage', () => {
  it.each([
    ['90s', 90], ['30m', 1_800], ['45min', 2_700], ['6h', 6 * H], ['2d', 2 * 86_400], ['1w', 7 * 86_400], [' 6H ', 6 * H], ['366d', 366 * 86_400],
  ])('%j → %d s', (text, seconds) => {
    expect(parseOutage(text)).toBe(seconds);
  });
  it.each(['', '6', 'h', '0h', '0m', '-1h', '1.5h', '6 hours', '367d', '53w', '6h30m'])('%j is refused', (text) => {
    expect(parseOutage(text)).toBeNull();
  });
});

describe('dedupWindows', () => {
  const base = { spoolMaxBytes: 2 * GiB, batchBytes: MiB, requestIntervalSeconds: 63, instances: 1 };
  it.each([
    // [case, input, batchesPerSpool, outageSeconds, slots, blocksNeeded, windowBlocks, windowSeconds]
    ['defaults: the spool holds 2048 batches, one a slot', {}, 2048, 2048 * 63, 2049, 2 * 2049, MIN_DEDUP_WINDOW_BLOCKS, 2048 * 63 + 63],
    ['30 instances over that outage', { instances: 30 }, 2048, 2048 * 63, 2049, 2 * 30 * 2049, 2 * 30 * 2049, 2048 * 63 + 63],
    ['6 h given', { instances: 30, outageSeconds: 6 * H }, 2048, 6 * H, 344, 2 * 30 * 344, 20_640, 6 * H + 63],
    ['a short outage keeps the floors', { outageSeconds: 600 }, 2048, 600, 11, 22, MIN_DEDUP_WINDOW_BLOCKS, MIN_DEDUP_WINDOW_SECONDS],
    ['a small spool of 256 MiB', { spoolMaxBytes: 256 * MiB, instances: 100 }, 256, 256 * 63, 257, 2 * 100 * 257, 51_400, MIN_DEDUP_WINDOW_SECONDS + 12_591],
    ['a spool smaller than a batch still holds one', { spoolMaxBytes: MiB / 2 }, 1, 63, 2, 4, MIN_DEDUP_WINDOW_BLOCKS, MIN_DEDUP_WINDOW_SECONDS],
    ['a 31.5 s slot', { requestIntervalSeconds: 31.5, instances: 10, outageSeconds: 6 * H }, 2048, 6 * H, 687, 2 * 10 * 687, 13_740, 21_632],
  ] as const)('%s', (_, input, batchesPerSpool, outageSeconds, slots, blocksNeeded, windowBlocks, windowSeconds) => {
    const w = dedupWindows({ ...base, ...input });
    expect(w).toEqual({
      batchesPerSpool, spoolOutageSeconds: batchesPerSpool * (('requestIntervalSeconds' in input) ? input.requestIntervalSeconds : 63),
      outageSeconds, slots, blocksNeeded, windowBlocks, windowSeconds,
    });
    expect(w.blocksNeeded).toBe(BLOCKS_PER_INSERT * (('instances' in input) ? input.instances : 1) * w.slots);
  });
});

describe('fleet', () => {
  const base = { requestIntervalSeconds: 63, outageSeconds: 6 * H, batchBytes: MiB, spoolMaxBytes: 2 * GiB };
  const uniformMax = UNIFORM_ROWS_PER_REQUEST / 63;
  const realisticMax = REALISTIC_ROWS_PER_REQUEST / 63;
  it.each([
    // [dataset, rate, minInstances, instances]
    ['uniform', 1, 1, 1],
    ['uniform', 700, 1, 2],
    ['uniform', 1_000, 2, 2],
    ['uniform', 10_000, 14, 17],
    ['uniform', 1_000_000, Math.ceil(1e6 / uniformMax), Math.ceil(1e6 / (uniformMax * TARGET_UTILISATION))],
    ['realistic', 1_000, 1, 1],
    ['realistic', 1_300, 1, 2],
    ['realistic', 100_000, 63, 79],
  ] as const)('%s at %d rows/s: %d instances at least, %d planned', (dataset, rate, minInstances, instances) => {
    const f = fleet({ ...base, dataset, rate });
    const max = dataset === 'uniform' ? uniformMax : realisticMax;
    expect(f.perInstanceMaxRate).toBeCloseTo(max, 9);
    expect(f).toMatchObject({ minInstances, instances, minPartitions: instances, partitions: instances * PARTITIONS_PER_INSTANCE });
    // Planned: no instance above the target; one fewer would be.
    expect(f.utilisation).toBeLessThanOrEqual(TARGET_UTILISATION + 1e-12);
    if (instances > 1) expect(rate / (instances - 1) / max).toBeGreaterThan(TARGET_UTILISATION);
    expect(f.ratePerInstance * f.instances).toBeCloseTo(rate, 6);
    // Spool: the outage's rows per instance in full batches, plus the one being built.
    const rowsPerRequest = max * 63;
    expect(f.spoolBatchesPerInstance).toBe(Math.ceil((f.ratePerInstance * 6 * H) / rowsPerRequest) + 1);
    expect(f.spoolBytesPerInstance).toBe(f.spoolBatchesPerInstance * MiB);
    expect(f.spoolFits).toBe(f.spoolBytesPerInstance <= 2 * GiB);
    // The backlog drains at the spare rate.
    expect(f.catchUpSeconds).toBeCloseTo((f.ratePerInstance * 6 * H) / (max - f.ratePerInstance), 6);
    expect(f.insertsPerMinute).toBeCloseTo((instances * 60) / 63, 9);
    expect(f.dedup).toEqual(dedupWindows({ spoolMaxBytes: 2 * GiB, batchBytes: MiB, requestIntervalSeconds: 63, instances, outageSeconds: 6 * H }));
  });

  it('says when SPOOL_MAX_BYTES cannot hold the outage', () => {
    // One instance just under 80 % of uniform for 2 days: 590 rows/s × 172,800 s ÷ 46,909 rows → 2,174 batches + 1.
    const f = fleet({ ...base, dataset: 'uniform', rate: 590, outageSeconds: 2 * 86_400 });
    expect(f.instances).toBe(1);
    expect(f.spoolBatchesPerInstance).toBe(2_175);
    expect(f.spoolFits).toBe(false);
    expect(fleet({ ...base, dataset: 'uniform', rate: 590, outageSeconds: 2 * 86_400, spoolMaxBytes: 3 * GiB }).spoolFits).toBe(true);
  });
});
