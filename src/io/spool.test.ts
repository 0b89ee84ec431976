/** The spool on a real filesystem: durability rules, crash leftovers, split recovery, lock. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { firstValueFrom, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SealedBatch } from '../domain/batch.ts';
import { SpoolError } from '../errors.ts';
import { Spool } from './spool.ts';

const logger = pino({ level: 'silent' });
let dir: string;
const open = () => Spool.open({ dir, topic: 'http_log', logger });
const batch = (token: string, body: string, offsets: Array<[number, number]>, rowCount = 3): SealedBatch => ({
  token,
  body: Buffer.from(body),
  format: 'Native',
  codec: 'br',
  rowCount,
  uncompressedBytes: body.length * 2,
  offsets: new Map(offsets),
});
const files = (sub: string) => readdirSync(join(dir, sub)).sort();

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spool-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('Spool', () => {
  it('writes whole files, serves them oldest first, and forgets them after removal', async () => {
    const spool = await open();
    const first = await spool.write(batch('t1', 'body-one', [[0, 10]]));
    const second = await spool.write(batch('t2', 'body-two!', [[1, 4]]));
    expect(files('batches')).toEqual(['000000000001-t1.batch', '000000000002-t2.batch']);
    expect(files('tmp')).toEqual([]);
    expect(spool.stats()).toEqual({ batches: 2, bytes: 17 });
    expect(Buffer.from(await spool.readBody(first!)).toString()).toBe('body-one');
    expect([spool.highestSpooled(0), spool.highestSpooled(1), spool.highestSpooled(2)]).toEqual([10, 4, undefined]);

    const pending = firstValueFrom(spool.pending().pipe(toArray()));
    await spool.remove(first!);
    spool.endOfInput();
    await spool.remove(second!);
    expect((await pending).map((b) => b.token)).toEqual(['t1', 't2']);
    expect(files('batches')).toEqual([]);
    expect(spool.stats()).toEqual({ batches: 0, bytes: 0 });
    await spool.close();
  });

  it('a batch without rows writes no file but still raises the watermarks', async () => {
    const spool = await open();
    expect(await spool.write(batch('empty', '', [[2, 99]], 0))).toBeUndefined();
    expect(files('batches')).toEqual([]);
    expect(spool.highestSpooled(2)).toBe(99);
    await spool.close();
  });

  it('after a restart: same batches, same order, watermarks back even without offsets.json, tmp leftovers gone', async () => {
    const spool = await open();
    await spool.write(batch('t1', 'a', [[0, 10]]));
    await spool.write(batch('t2', 'b', [[0, 20], [2, 5]]));
    await spool.close();
    rmSync(join(dir, 'offsets.json'));
    writeFileSync(join(dir, 'tmp', '000000000003-t3.batch.123.tmp'), 'half written');

    const again = await open();
    expect(files('tmp')).toEqual([]);
    expect([again.highestSpooled(0), again.highestSpooled(2)]).toEqual([20, 5]);
    const pending: string[] = [];
    again.pending().subscribe((b) => pending.push(b.token));
    expect(pending).toEqual(['t1', 't2']);
    // New sequence numbers continue after the old ones.
    await again.write(batch('t3', 'c', [[1, 1]]));
    expect(files('batches').at(-1)).toBe('000000000003-t3.batch');
    expect(pending).toEqual(['t1', 't2', 't3']);
    await again.close();
  });

  it('a batch file whose body no longer matches its checksum is quarantined at start', async () => {
    const spool = await open();
    await spool.write(batch('t1', 'original', [[0, 1]]));
    await spool.close();
    const file = join(dir, 'batches', '000000000001-t1.batch');
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(file, bytes);

    const again = await open();
    expect(again.stats().batches).toBe(0);
    const quarantined = await again.listQuarantine();
    expect(quarantined.map((q) => q.name)).toEqual([]); // unreadable: listed by file only
    expect(files('quarantine')).toEqual(['000000000001-t1.batch', '000000000001-t1.error.json']);
    expect(again.highestSpooled(0)).toBe(1); // still from offsets.json: those records were spooled once
    await again.close();
  });

  it('a split that finished writing its parts drops the parent; a half-done one drops the parts', async () => {
    const spool = await open();
    const parent = await spool.write(batch('p', 'parent', [[0, 9]]));
    // Simulate a crash after both parts were written, before the parent was removed.
    await spool.write(batch('p-0', 'pa', []), { token: 'p', parts: 2, index: 0 });
    await spool.write(batch('p-1', 'rent', [[0, 9]]), { token: 'p', parts: 2, index: 1 });
    const other = await spool.write(batch('q', 'other', [[1, 3]]));
    await spool.write(batch('q-0', 'ot', []), { token: 'q', parts: 2, index: 0 });
    await spool.close();
    expect(parent && other).toBeTruthy();

    const again = await open();
    const tokens: string[] = [];
    again.pending().subscribe((b) => tokens.push(b.token));
    expect(tokens).toEqual(['p-0', 'p-1', 'q']);
    await again.close();
  });

  it('replace() writes every part before the parent goes', async () => {
    const spool = await open();
    const parent = (await spool.write(batch('p', 'parent', [[0, 9]])))!;
    const parts = await spool.replace(parent, [batch('p-0', 'pa', [], 1), batch('p-1', 'rent', [[0, 9]], 2)]);
    expect(parts.map((p) => [p.token, p.header.parent])).toEqual([
      ['p-0', { token: 'p', parts: 2, index: 0 }],
      ['p-1', { token: 'p', parts: 2, index: 1 }],
    ]);
    expect(files('batches')).toEqual(['000000000002-p-0.batch', '000000000003-p-1.batch']);
    await spool.close();
  });

  it('quarantine sets a batch aside with its error; replay puts it back in the queue', async () => {
    const spool = await open();
    const bad = (await spool.write(batch('bad', 'xx', [[0, 1]])))!;
    await spool.quarantine(bad, { code: 'ANON_CLICKHOUSE_27', message: 'Code: 27. Cannot parse input' });
    expect(spool.stats().batches).toBe(0);
    const listed = await spool.listQuarantine();
    expect(listed).toHaveLength(1);
    expect(listed[0]!.header.token).toBe('bad');
    expect(listed[0]!.error).toMatchObject({ code: 'ANON_CLICKHOUSE_27', message: 'Code: 27. Cannot parse input' });

    expect(await spool.replay(['bad'])).toBe(1);
    expect(await spool.listQuarantine()).toEqual([]);
    expect(files('quarantine')).toEqual([]);
    expect(spool.stats().batches).toBe(1);
    await spool.close();
  });

  it('refuses a spool another live process holds, and takes over a stale lock', async () => {
    const holder = spawn('sleep', ['30']);
    try {
      writeFileSync(join(dir, 'lock'), String(holder.pid));
      await expect(open()).rejects.toThrow(SpoolError);
      await expect(open()).rejects.toThrow(/in use by process/);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    const spool = await open();
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(String(process.pid));
    await spool.close();
  });
});
