import { describe, expect, it } from 'vitest';
import type { OffsetChunk } from './batch.ts';
import { OpenBatch } from './openBatch.ts';

const chunk = (partition: number, items: string[], firstOffset: number, options: { withOffsets?: boolean; generation?: number; lastOffset?: number } = {}): OffsetChunk<string> => ({
  partition,
  items,
  lastOffset: options.lastOffset ?? firstOffset + items.length - 1,
  ...(options.withOffsets === false ? {} : { itemOffsets: items.map((_, i) => firstOffset + i) }),
  ...(options.generation === undefined ? {} : { generation: options.generation }),
});

function fill(open: OpenBatch<string>, c: OffsetChunk<string>): void {
  open.beginChunk(c);
  c.items.forEach((item, i) => open.add(item, item.length, c, c.itemOffsets?.[i]));
  open.endChunk(c);
}

describe('OpenBatch', () => {
  it('takes everything with the offsets of every chunk, rejected messages at the end included', () => {
    const open = new OpenBatch<string>();
    fill(open, chunk(0, ['a', 'bb'], 10, { lastOffset: 13 }));
    fill(open, chunk(1, ['ccc'], 5));
    expect(open.bytes).toBe(6);
    const batch = open.take('size')!;
    expect(batch.rows).toEqual(['a', 'bb', 'ccc']);
    expect([...batch.offsets]).toEqual([[0, 13], [1, 5]]);
    expect(open.isEmpty).toBe(true);
  });

  it('a part claims its own rows offsets; the rest keeps the whole span', () => {
    const open = new OpenBatch<string>();
    fill(open, chunk(0, ['a', 'b', 'c'], 10, { lastOffset: 15 }));
    const part = open.take('size', 2)!;
    expect(part.rows).toEqual(['a', 'b']);
    expect([...part.offsets]).toEqual([[0, 11]]);
    expect(part.rowOffsets).toEqual({ partitions: [0, 0], offsets: [10, 11] });
    const rest = open.take('end-of-input')!;
    expect(rest.rows).toEqual(['c']);
    expect([...rest.offsets]).toEqual([[0, 15]]);
  });

  it('without row offsets a part cannot claim its rows: everything is taken', () => {
    const open = new OpenBatch<string>();
    fill(open, chunk(0, ['a', 'b', 'c'], 10, { withOffsets: false }));
    const batch = open.take('size', 1)!;
    expect(batch.rows).toEqual(['a', 'b', 'c']);
    expect(batch.rowOffsets).toBeUndefined();
  });

  it('a chunk of only rejected messages still claims its offsets', () => {
    const open = new OpenBatch<string>();
    fill(open, chunk(2, [], 0, { lastOffset: 7 }));
    expect(open.isEmpty).toBe(false);
    const batch = open.take('proxy-ready')!;
    expect(batch.rows).toEqual([]);
    expect([...batch.offsets]).toEqual([[2, 7]]);
  });

  it('nothing open: nothing taken', () => {
    expect(new OpenBatch<string>().take('proxy-ready')).toBeUndefined();
  });

  it('carries the generation of its chunks, and counts rows for an estimate', () => {
    const open = new OpenBatch<string>();
    fill(open, chunk(0, ['aa', 'bb', 'cc'], 0, { generation: 3 }));
    expect(open.generation).toBe(3);
    expect(open.countFor(3)).toBe(2);
    expect(open.countFor(100)).toBe(3);
    expect(open.bytesOf(2)).toBe(4);
    expect(open.take('size')!.generation).toBe(3);
    expect(open.generation).toBeUndefined();
  });
});
