/** The spool on a real filesystem: durability rules, crash leftovers, split recovery, lock. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { firstValueFrom, take, toArray } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SealedBatch } from '../domain/batch.ts';
import type { HttpLogRow } from '../domain/httpLogRow.ts';
import { compress, decompress } from '../encode/compress.ts';
import { decodeInsertBody, encodeInsertBody, INSERT_FORMAT } from '../encode/insertBody.ts';
import { encodeNative } from '../encode/nativeFormat.ts';
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

    const pending = firstValueFrom(spool.pending().pipe(toArray()));
    await spool.remove(first!);
    spool.endOfInput();
    await spool.remove(second!);
    expect((await pending).map((b) => b.token)).toEqual(['t1', 't2']);
    expect(files('batches')).toEqual([]);
    expect(spool.stats()).toEqual({ batches: 0, bytes: 0 });
    await spool.close();
  });

  it('a batch without rows stages nothing', async () => {
    const spool = await open();
    expect(await spool.stage(batch('empty', '', [[2, 99]], 0))).toBeUndefined();
    expect(files('tmp')).toEqual([]);
    expect(files('batches')).toEqual([]);
    await spool.close();
  });

  it('stage writes a durable file that is not sent until published; discard drops it', async () => {
    const spool = await open();
    const pending: string[] = [];
    spool.pending().subscribe((b) => pending.push(b.token));
    const kept = (await spool.stage(batch('kept', 'one', [[0, 1]])))!;
    const dropped = (await spool.stage(batch('dropped', 'two', [[1, 1]])))!;
    expect(files('tmp')).toEqual(['dropped.staged', 'kept.staged']);
    expect(pending).toEqual([]);
    await spool.publish(kept);
    await spool.discard(dropped);
    expect(pending).toEqual(['kept']);
    expect(files('tmp')).toEqual([]);
    expect(files('batches')).toEqual(['000000000001-kept.batch']);
    await spool.close();
  });

  it('at start, asks about each staged batch whether its commit landed: publishes or discards it', async () => {
    const spool = await open();
    const instance = spool.instanceId;
    await spool.stage(batch('landed', 'one', [[0, 10]]));
    await spool.stage(batch('lost', 'two', [[1, 20]]));
    writeFileSync(join(dir, 'tmp', 'torn.staged'), 'HLSPOOL1 torn');
    writeFileSync(join(dir, 'tmp', 'x.batch.1.tmp'), 'half');
    await spool.close();

    const asked: Array<[string, string]> = [];
    const again = await Spool.open({
      dir,
      topic: 'http_log',
      logger,
      resolveStaged: async (header, instanceId) => {
        asked.push([header.token, instanceId]);
        return header.token === 'landed' ? 'publish' : 'discard';
      },
    });
    expect(asked).toEqual([['landed', instance], ['lost', instance]]);
    expect(files('tmp')).toEqual([]);
    const tokens: string[] = [];
    again.pending().subscribe((b) => tokens.push(b.token));
    expect(tokens).toEqual(['landed']);
    expect(again.instanceId).toBe(instance);
    await again.close();
  });

  it('a batch file whose body no longer matches its checksum is quarantined at start', async () => {
    const spool = await open();
    await spool.write(batch('t1', 'original', [[0, 1]]));
    await spool.close();
    const file = join(dir, 'batches', '000000000001-t1.batch');
    const bytes = readFileSync(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    writeFileSync(file, bytes);

    const again = await open();
    expect(again.stats().batches).toBe(0);
    expect(files('quarantine')).toEqual(['000000000001-t1.batch', '000000000001-t1.error.json']);
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
    expect(parent).toBeDefined();
    expect(other).toBeDefined();

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

  it('a plain Native batch spooled before an upgrade splits into compact parts; a reopened spool keeps each format', async () => {
    const rows: HttpLogRow[] = Array.from({ length: 6 }, (_, i) => ({
      timestamp: 1_700_000_000 + i, resourceId: BigInt(i) ** 20n, bytesSent: BigInt(i), requestTimeMilli: 7n, responseStatus: 200,
      cacheStatus: 'HIT', method: 'GET', remoteAddr: i % 2 ? `10.0.${i}.X` : '2001:db8:1::X', url: `/p/${i}?q=é`,
    }));
    const old = await open();
    const raw = encodeNative(rows);
    const plain = { ...batch('old', '', [[0, 5]], rows.length), body: await compress('br', 5, raw), uncompressedBytes: raw.byteLength };
    await old.write(plain);
    await old.close();

    const spool = await open();
    const [parent] = await firstValueFrom(spool.pending().pipe(take(1), toArray()));
    expect(parent!.format).toBe('Native');
    const decoded = decodeInsertBody(await decompress(parent!.codec, await spool.readBody(parent!)));
    expect(decoded).toEqual(rows);
    const halves = [decoded.slice(0, 3), decoded.slice(3)];
    const parts: SealedBatch[] = [];
    for (const [index, half] of halves.entries()) {
      const body = encodeInsertBody(half);
      parts.push({ token: `old-${index}`, body: await compress('zstd', 3, body), format: INSERT_FORMAT, codec: 'zstd', rowCount: half.length, uncompressedBytes: body.byteLength, offsets: new Map(index === 1 ? [[0, 5]] : []) });
    }
    await spool.replace(parent!, parts);
    await spool.close();

    const reopened = await open();
    const queued = await firstValueFrom(reopened.pending().pipe(take(2), toArray()));
    expect(queued.map((b) => [b.token, b.format])).toEqual([['old-0', 'CompactNative1'], ['old-1', 'CompactNative1']]);
    const back: HttpLogRow[] = [];
    for (const part of queued) back.push(...decodeInsertBody(await decompress(part.codec, await reopened.readBody(part))));
    expect(back).toEqual(halves.flatMap((half) => [...half].sort((a, b) => (a.url < b.url ? -1 : 1))));
    await reopened.close();
  });

  it('quarantine sets a batch aside with its error; replay puts it back in the queue', async () => {
    const spool = await open();
    const bad = (await spool.write(batch('bad', 'xx', [[0, 1]])))!;
    await spool.quarantine(bad, { code: 'ANON_CLICKHOUSE_27', message: 'Code: 27. Cannot parse input' });
    expect(spool.stats().batches).toBe(0);
    const listed = await spool.listQuarantine();
    expect(listed).toHaveLength(1);
    expect(listed[0]!.header!.token).toBe('bad');
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
