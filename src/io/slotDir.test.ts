import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSlotDir } from './slotDir.ts';

const dirs: string[] = [];
const fresh = () => {
  const dir = mkdtempSync(join(tmpdir(), 'slot-dir-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('openSlotDir', () => {
  it('each number is claimed once: the second claimant of a number is told no', () => {
    const dir = fresh();
    const a = openSlotDir(dir);
    const b = openSlotDir(dir);
    expect(a.latest()).toBeUndefined();
    expect(a.claim(1, 1_000, 'a')).toBe(true);
    expect(b.claim(1, 1_001, 'b')).toBe(false);
    expect(b.latest()).toEqual({ seq: 1, at: 1_000, owner: 'a' });
    expect(b.claim(2, 2_000, 'b')).toBe(true);
    expect(a.latest()).toEqual({ seq: 2, at: 2_000, owner: 'b' });
    // No tmp file is left behind, won or lost.
    expect(readdirSync(dir).filter((name) => name.startsWith('tmp-'))).toEqual([]);
  });

  it('keeps the newest 8 claims and removes stale tmp files of killed claimants', () => {
    const dir = fresh();
    const ledger = openSlotDir(dir);
    writeFileSync(join(dir, 'tmp-dead-3'), '{"at":1');
    utimesSync(join(dir, 'tmp-dead-3'), new Date(0), new Date(0));
    writeFileSync(join(dir, 'tmp-alive-4'), '{"at":1');
    for (let seq = 1; seq <= 20; seq++) expect(ledger.claim(seq, seq * 1_000, 'a')).toBe(true);
    expect(readdirSync(dir).sort()).toEqual([...Array.from({ length: 8 }, (_, i) => `claim-${String(13 + i).padStart(12, '0')}`), 'tmp-alive-4']);
    expect(ledger.latest()).toEqual({ seq: 20, at: 20_000, owner: 'a' });
  });

  it('a damaged claim file still takes its number, and says nothing about time', () => {
    const dir = fresh();
    writeFileSync(join(dir, 'claim-000000000005'), 'garbage');
    writeFileSync(join(dir, 'notes.txt'), 'not a claim');
    expect(openSlotDir(dir).latest()).toEqual({ seq: 5, at: 0, owner: '' });
  });

  it('creates the directory; a directory that vanished later is an error for the caller', () => {
    const dir = join(fresh(), 'nested', 'slots');
    const ledger = openSlotDir(dir);
    expect(ledger.claim(1, 1, 'a')).toBe(true);
    rmSync(dir, { recursive: true });
    expect(() => ledger.latest()).toThrow(/ENOENT/);
    expect(() => ledger.claim(2, 2, 'a')).toThrow(/ENOENT/);
  });

  it('a path under a file cannot be a slot directory: an error at open', () => {
    const file = join(fresh(), 'file');
    writeFileSync(file, '');
    expect(() => openSlotDir(join(file, 'slots'))).toThrow(/ENOTDIR/);
  });
});
