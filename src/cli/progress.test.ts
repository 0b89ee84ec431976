import { describe, expect, it } from 'vitest';
import { progress, type ProgressStream } from './progress.ts';

function fakeStream(isTTY: boolean, columns?: number): ProgressStream & { written: string } {
  const stream = {
    isTTY,
    columns,
    written: '',
    write(chunk: string) {
      stream.written += chunk;
      return true;
    },
  };
  return stream;
}

/** What a terminal would show: each \r returns to the row's start, ESC[K erases its rest. */
function screen(written: string): string[] {
  return written
    .split('\n')
    .map((line) => line.split('\r').at(-1)!.replaceAll('\x1b[K', ''))
    .filter((line, index, all) => line !== '' || index < all.length - 1);
}

describe('progress', () => {
  it('on a TTY: redraws one line in place, then ends it with the summary', () => {
    let clock = 0;
    const stream = fakeStream(true);
    const p = progress('produce', 1000, { stream, unit: 'records', now: () => clock });
    expect(p.active).toBe(true);
    clock = 1000;
    p.update(250);
    expect(screen(stream.written)).toEqual(['produce: 250/1,000 records (25%) 250/s, 3 s left']);
    clock = 2000;
    p.update(500, 'partition 0');
    expect(stream.written).not.toContain('\n');
    expect(screen(stream.written)).toEqual(['produce: 500/1,000 records (50%) 250/s, 2 s left partition 0']);
    p.done('1,000 records in 4.0 s');
    expect(stream.written.endsWith('\n')).toBe(true);
    expect(screen(stream.written)).toEqual(['produce: 1,000 records in 4.0 s']);
  });

  it('not a TTY: writes nothing at all', () => {
    const stream = fakeStream(false);
    const p = progress('produce', 10, { stream });
    expect(p.active).toBe(false);
    p.update(5);
    p.update(10);
    p.done('10 records');
    expect(stream.written).toBe('');
  });

  it('a stream without isTTY counts as not a TTY', () => {
    const stream = { written: '', write(chunk: string) { this.written += chunk; } };
    const p = progress('x', undefined, { stream });
    p.update(1);
    p.done('done');
    expect(stream.written).toBe('');
  });

  it('redraws at most every minRedrawMs, but always draws the last update', () => {
    let clock = 0;
    const stream = fakeStream(true);
    const p = progress('load', 100, { stream, now: () => clock, minRedrawMs: 100 });
    p.update(1);
    clock = 50;
    p.update(2);
    expect(stream.written.split('\r').length - 1).toBe(1);
    clock = 60;
    p.update(100);
    expect(stream.written.split('\r').length - 1).toBe(2);
    expect(screen(stream.written)).toEqual(['load: 100/100 (100%)']);
  });

  it('without a total: the count and the rate', () => {
    let clock = 0;
    const stream = fakeStream(true);
    const p = progress('scan', undefined, { stream, unit: 'rows', now: () => clock });
    clock = 2000;
    p.update(5000);
    expect(screen(stream.written)).toEqual(['scan: 5,000 rows 2,500/s']);
  });

  it('cuts lines to the terminal width, so \\r redraws a single row', () => {
    const stream = fakeStream(true, 20);
    const p = progress('a-rather-long-label', 10, { stream, now: () => 0 });
    p.update(3);
    expect(screen(stream.written)[0]).toHaveLength(19);
  });

  it('done without a summary ends the drawn line; done twice, or update after done, writes nothing more', () => {
    const stream = fakeStream(true);
    const p = progress('wait', 3, { stream, now: () => 0 });
    p.update(1);
    p.done();
    const after = stream.written;
    expect(after.endsWith('\n')).toBe(true);
    p.update(2);
    p.done('again');
    expect(stream.written).toBe(after);
  });

  it('done without a summary and without any update writes nothing', () => {
    const stream = fakeStream(true);
    progress('idle', 3, { stream }).done();
    expect(stream.written).toBe('');
  });
});

describe('progress as a countdown', () => {
  it('rate: false leaves out the rate and the time left, and keeps the detail', () => {
    let clock = 0;
    const stream = fakeStream(true);
    const p = progress('waiting', 60, { stream, unit: 's', rate: false, now: () => clock });
    clock = 12_000;
    p.update(12, '48 s to the slot');
    expect(screen(stream.written)).toEqual(['waiting: 12/60 s (20%) 48 s to the slot']);
  });
});
