// The unit-level fuzz: 25,000 seeded hostile messages through the
// product's own decode → validate → anonymize, no server. No row may hold a raw address
// of its message, every message must be a row or a rejection with a stable code, and
// rejecting must stay cheap. The same corpus goes through the real stack in
// test/e2e/hostileInput.test.ts.
import { describe, expect, it } from 'vitest';
import { expectedOutcome, hostileCorpus, leakedColumns, type MutationKind } from '../../test/support/hostileCorpus.ts';
import { decodeRecord } from './decodeRecord.ts';

const START = Date.UTC(2026, 11, 1);
const corpus = hostileCorpus({ seed: 20_261_201n, count: 25_000, startMillis: START });

describe('hostile input (unit fuzz)', () => {
  it('no stored column holds a raw address, and every message is a row or a coded rejection', () => {
    const leaks: string[] = [];
    const byKind = new Map<MutationKind, { rows: number; rejected: number }>();
    const reasons = new Map<string, number>();
    for (const [index, message] of corpus.entries()) {
      const outcome = expectedOutcome(message.bytes);
      const tally = byKind.get(message.kind) ?? { rows: 0, rejected: 0 };
      byKind.set(message.kind, tally);
      if ('row' in outcome) {
        tally.rows++;
        for (const column of leakedColumns(outcome.row, message.addresses)) leaks.push(`#${index} (${message.kind}): ${column}`);
      } else {
        tally.rejected++;
        reasons.set(outcome.rejected, (reasons.get(outcome.rejected) ?? 0) + 1);
      }
    }
    expect(leaks).toEqual([]);
    // The corpus reaches every path: rows survive each kind of mutation that can leave one, and both new reasons occur.
    for (const kind of ['none', 'bit-flips', 'byte-rewrites', 'pointer'] as const) expect(byKind.get(kind)?.rows, kind).toBeGreaterThan(0);
    // A text pointed at the address's bytes shares them with remote_addr: refused, whatever else the mutation did.
    expect(byKind.get('pointer-to-address')!.rejected).toBeGreaterThan(3_000);
    expect(byKind.get('segment-bomb')).toMatchObject({ rows: 0 });
    expect(reasons.get('invalid_text')).toBeGreaterThan(100);
    expect(reasons.get('ANON_DECODE')).toBeGreaterThan(1_000);
  });

  it('without validateRecord and URL anonymization the same corpus leaks (the fuzz can see the fault it guards against)', () => {
    let leaks = 0;
    for (const message of corpus) {
      let record;
      try {
        record = decodeRecord(message.bytes);
      } catch {
        continue;
      }
      // Only remote_addr anonymized, as before: no validateRecord, no URL anonymization.
      const row = { ...record, remoteAddr: 'X' };
      if (leakedColumns(row, message.addresses).length > 0) leaks++;
    }
    expect(leaks).toBeGreaterThan(100);
  });

  it('rejects malformed messages cheaply: the corpus takes at most a few times what as many valid messages take', () => {
    // Relative to valid decoding on the same machine at the same moment, so a loaded
    // machine does not fail it; before the segment-table check, each of the ~2,500 bombs
    // alone took ~137 ms, thousands of times a valid message.
    const valid = corpus.filter((m) => m.kind === 'none').map((m) => m.bytes);
    const timeOf = (work: () => void): number => {
      const started = performance.now();
      work();
      return performance.now() - started;
    };
    let baseline = Number.POSITIVE_INFINITY;
    let hostile = Number.POSITIVE_INFINITY;
    for (let round = 0; round < 3; round++) {
      baseline = Math.min(baseline, timeOf(() => {
        for (let i = 0; i < corpus.length; i++) expectedOutcome(valid[i % valid.length]!);
      }));
      hostile = Math.min(hostile, timeOf(() => {
        for (const message of corpus) expectedOutcome(message.bytes);
      }));
    }
    expect(hostile).toBeLessThan(5 * baseline);
  });
});
