/** The spool on a real filesystem: durability rules, crash leftovers, split recovery, lock. */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
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
import { SpoolDiskError, SpoolError } from '../errors.ts';
import { listQuarantine, Spool, writeFully, type SpoolFileOpener, type SpoolWritableFile } from './spool.ts';
import { batchFileName, decodeBatchFile, encodeBatchFile, headerFor, parseBatchFileName } from './spoolFile.ts';

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
    expect(again.quarantineCount()).toBe(1);
    expect(again.corruptAtOpen()).toEqual([{ name: '000000000001-t1.batch', reason: 'body_checksum' }]);
    const [listed] = await again.listQuarantine();
    expect(listed).toMatchObject({ name: '000000000001-t1', intact: false, error: { code: 'ANON_SPOOL', reason: 'body_checksum' } });
    // The header passed its own check: what the batch claimed is known.
    expect(listed!.header).toMatchObject({ token: 't1', rowCount: 3, offsets: [[0, 1]] });
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
    // Released in place (the file keeps its block for a restart on a full disk), and taken again.
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe('0');
    const again = await open();
    expect(readFileSync(join(dir, 'lock'), 'utf8')).toBe(String(process.pid));
    await expect(open()).resolves.toBeDefined(); // the same process may reopen (tests, replay)
    await again.close();
  });
});

const diskFull = (message = 'ENOSPC: no space left on device, write') => Object.assign(new Error(message), { code: 'ENOSPC' });

/** Opens the spool with `openForWrite` (after a plain open wrote its instance id). */
async function openWith(openForWrite: SpoolFileOpener): Promise<Spool> {
  await (await open()).close();
  return Spool.open({ dir, topic: 'http_log', logger, openForWrite });
}

/** Real files, but each write takes at most `max` bytes, and `fail()` decides when the disk is full. */
function seam(options: { max?: number; fail?: (written: number) => boolean }): SpoolFileOpener {
  return async (path) => {
    const handle = await openFile(path, 'w');
    let written = 0;
    const file: SpoolWritableFile = {
      write: async (buffer, offset, length, position) => {
        if (options.fail?.(written)) throw diskFull();
        const result = await handle.write(buffer, offset, Math.min(length, options.max ?? length), position);
        written += result.bytesWritten;
        return result;
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
    return file;
  };
}

describe('Spool: never publishes, commits or trusts an incomplete file', () => {
  it('short writes: every write is looped until the whole file is on disk, and it reads back whole', async () => {
    const spool = await openWith(seam({ max: 7 }));
    const body = 'x'.repeat(1000) + 'end';
    const written = (await spool.write(batch('short', body, [[0, 42]])))!;
    expect(Buffer.from(await spool.readBody(written)).toString()).toBe(body);
    expect(decodeBatchFile(readFileSync(written.file), written.file).header).toMatchObject({ version: 2, token: 'short', bodyBytes: body.length });
    await spool.close();
  });

  it('writeFully gives up on a writer that makes no progress instead of spinning', async () => {
    const stuck: SpoolWritableFile = { write: async () => ({ bytesWritten: 0 }), sync: async () => {}, close: async () => {} };
    await expect(writeFully(stuck, [Buffer.from('abc')])).rejects.toMatchObject({ code: 'EIO' });
  });

  it('ENOSPC while staging: rejects with SpoolDiskError naming the directory and free space, leaves nothing, and the same batch stages once there is room', async () => {
    let full = true;
    // The disk takes the first 20 bytes, then refuses: a torn file that must never be published.
    const spool = await openWith(seam({ max: 10, fail: (written) => full && written >= 20 }));
    const sealed = batch('big', 'y'.repeat(500), [[0, 9]]);
    const failure = await spool.stage(sealed).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SpoolDiskError);
    expect(failure).toMatchObject({ code: 'ANON_SPOOL_DISK', errno: 'ENOSPC', dir, retriable: true });
    expect(typeof (failure as SpoolDiskError).freeBytes).toBe('number');
    expect(spool.diskProblem()).toBe(failure);
    expect(files('tmp')).toEqual([]);
    expect(files('batches')).toEqual([]);

    full = false;
    const staged = (await spool.stage(sealed))!;
    expect(spool.diskProblem()).toBeUndefined();
    const published = await spool.publish(staged);
    expect(Buffer.from(await spool.readBody(published)).toString()).toBe('y'.repeat(500));
    await spool.close();
  });

  it('EIO and EDQUOT are disk errors too; any other error passes through as it is', async () => {
    for (const code of ['EIO', 'EDQUOT', 'EACCES']) {
      const opener: SpoolFileOpener = async () => {
        throw Object.assign(new Error(code), { code });
      };
      const spool = await openWith(opener);
      const error = await spool.stage(batch(`t-${code}`, 'body', [[0, 1]])).catch((e: unknown) => e);
      expect(error instanceof SpoolDiskError, code).toBe(code !== 'EACCES');
      expect((error as { code: string }).code).toBe(code === 'EACCES' ? 'EACCES' : 'ANON_SPOOL_DISK');
      await spool.close();
    }
  });

  it('at open every queued file is checked: truncated, body byte flipped, header byte flipped, junk names are all quarantined with their reason; the valid one stays', async () => {
    const spool = await open();
    for (const token of ['good', 'cut', 'body', 'head', 'renamed']) await spool.write(batch(token, `body-of-${token}-0123456789`, [[1, token.length * 10]]));
    await spool.close();
    const path = (name: string) => join(dir, 'batches', name);
    const cut = readFileSync(path('000000000002-cut.batch'));
    writeFileSync(path('000000000002-cut.batch'), cut.subarray(0, cut.length - 5));
    const body = readFileSync(path('000000000003-body.batch'));
    body[body.length - 3]! ^= 0x01;
    writeFileSync(path('000000000003-body.batch'), body);
    const head = readFileSync(path('000000000004-head.batch'));
    // A digit inside the header JSON: still valid JSON, so only the header checksum can tell.
    const digit = head.indexOf('"rowCount":3') + '"rowCount":'.length;
    head[digit] = '7'.charCodeAt(0);
    writeFileSync(path('000000000004-head.batch'), head);
    // A valid file under another batch's name, a junk file, a foreign name, a directory.
    writeFileSync(path('000000000009-other.batch'), readFileSync(path('000000000005-renamed.batch')));
    writeFileSync(path('junk.batch'), 'not a batch at all');
    writeFileSync(path('notes.txt'), 'hello');
    mkdirSync(path('subdir'));

    const again = await open();
    expect(again.stats().batches).toBe(2);
    const reasons = Object.fromEntries(again.corruptAtOpen().map((file) => [file.name, file.reason]));
    expect(reasons).toEqual({
      '000000000002-cut.batch': 'truncated',
      '000000000003-body.batch': 'body_checksum',
      '000000000004-head.batch': 'header_checksum',
      '000000000009-other.batch': 'name_mismatch',
      'junk.batch': 'foreign_name',
      'notes.txt': 'foreign_name',
    });
    expect(again.quarantineCount()).toBe(6);
    // Foreign names never take part in numbering: the next file follows the highest valid name.
    const next = (await again.write(batch('next', 'n', [[0, 1]])))!;
    expect(next.file.split('/').at(-1)).toBe('000000000010-next.batch');
    expect(files('batches')).toEqual(['000000000001-good.batch', '000000000005-renamed.batch', '000000000010-next.batch', 'subdir']);

    const listed = await again.listQuarantine();
    expect(listed.map((entry) => [entry.file, entry.intact, entry.error.reason, entry.header?.token ?? null])).toEqual([
      ['000000000002-cut.batch', false, 'truncated', 'cut'],
      ['000000000003-body.batch', false, 'body_checksum', 'body'],
      ['000000000004-head.batch', false, 'header_checksum', null],
      ['000000000009-other.batch', true, 'name_mismatch', 'renamed'],
      ['junk.batch', false, 'foreign_name', null],
      ['notes.txt', false, 'foreign_name', null],
    ]);
    // Every error file is whole JSON: never a 0-byte leftover.
    for (const name of files('quarantine').filter((file) => file.endsWith('.error.json'))) expect(JSON.parse(readFileSync(join(dir, 'quarantine', name), 'utf8'))).toHaveProperty('reason');
    await again.close();

    // A third open finds nothing new to quarantine and keeps the count.
    const third = await open();
    expect(third.corruptAtOpen()).toEqual([]);
    expect(third.quarantineCount()).toBe(6);
    await third.close();
  });

  it('a full disk at open: a bad file is still set aside (rename needs no room), no 0-byte error file is left, and the listing derives its reason', async () => {
    const spool = await open();
    await spool.write(batch('ok', 'fine', [[0, 1]]));
    await spool.close();
    writeFileSync(join(dir, 'batches', '000000000002-bad.batch'), 'HLSPOOL2\u0001');
    const noRoom: SpoolFileOpener = async () => {
      throw diskFull();
    };
    const again = await Spool.open({ dir, topic: 'http_log', logger, openForWrite: noRoom });
    expect(again.stats().batches).toBe(1);
    expect(files('quarantine')).toEqual(['000000000002-bad.batch']);
    expect(files('tmp')).toEqual([]);
    expect(await listQuarantine(dir)).toMatchObject([{ file: '000000000002-bad.batch', intact: false, error: { code: 'ANON_SPOOL', reason: 'truncated' } }]);
    await again.close();
  });

  it('a staged file that fails its check at start is quarantined, not silently dropped', async () => {
    const spool = await open();
    const staged = (await spool.stage(batch('st', 'staged-body', [[2, 5]])))!;
    await spool.close();
    const bytes = readFileSync(staged.file);
    bytes[bytes.length - 1]! ^= 0xff;
    writeFileSync(staged.file, bytes);
    const again = await open();
    expect(again.corruptAtOpen()).toEqual([{ name: 'st.staged', reason: 'body_checksum' }]);
    expect(files('tmp')).toEqual([]);
    expect((await again.listQuarantine()).map((entry) => [entry.name, entry.header?.offsets])).toEqual([['st.staged', [[2, 5]]]]);
    await again.close();
  });

  it('reads version-1 files (no header checksum) and sends them as they are', async () => {
    const header = { version: 1, token: 'v1', format: 'Native', codec: 'br', rowCount: 3, uncompressedBytes: 8, bodyBytes: 4, bodySha256: '', topic: 'http_log', offsets: [[0, 7]], sealedAt: new Date().toISOString() };
    const body = Buffer.from('v1!!');
    header.bodySha256 = (await import('node:crypto')).createHash('sha256').update(body).digest('hex');
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(4);
    length.writeUInt32LE(json.length);
    mkdirSync(join(dir, 'batches'), { recursive: true });
    writeFileSync(join(dir, 'batches', '000000000007-v1.batch'), Buffer.concat([Buffer.from('HLSPOOL1'), length, json, body]));
    const spool = await open();
    const [queued] = await firstValueFrom(spool.pending().pipe(take(1), toArray()));
    expect(queued!.header.version).toBe(1);
    expect(Buffer.from(await spool.readBody(queued!)).toString()).toBe('v1!!');
    expect(spool.corruptAtOpen()).toEqual([]);
    await spool.close();
  });

  it('replay puts back only intact quarantined batches', async () => {
    const spool = await open();
    const refused = (await spool.write(batch('refused', 'data', [[0, 1]])))!;
    await spool.quarantine(refused, { code: 'ANON_CLICKHOUSE_27', message: 'Code: 27' });
    writeFileSync(join(dir, 'quarantine', 'junk.batch'), 'junk');
    expect(await spool.replay()).toBe(1);
    expect(files('quarantine')).toEqual(['junk.batch']);
    expect(spool.stats().batches).toBe(1);
    await spool.close();
  });
});

describe('spoolFile: decodeBatchFile names the reason (a table)', () => {
  const header = headerFor(batch('tab', 'the-body-bytes', [[3, 30]]), 'http_log');
  const whole = Buffer.concat(encodeBatchFile(header, Buffer.from('the-body-bytes')));
  const flip = (at: number) => {
    const copy = Buffer.from(whole);
    copy[at]! ^= 0x20;
    return copy;
  };
  const cases: Array<[string, Buffer, string]> = [
    ['empty', Buffer.alloc(0), 'truncated'],
    ['a start of the magic', whole.subarray(0, 5), 'truncated'],
    ['cut inside the prefix', whole.subarray(0, 20), 'truncated'],
    ['cut inside the header', whole.subarray(0, 60), 'truncated'],
    ['cut inside the body', whole.subarray(0, whole.length - 1), 'truncated'],
    ['one byte too many', Buffer.concat([whole, Buffer.from('!')]), 'body_size'],
    ['a byte of the header flipped', flip(50), 'header_checksum'],
    ['a byte of the header checksum flipped', flip(20), 'header_checksum'],
    ['a byte of the body flipped', flip(whole.length - 2), 'body_checksum'],
    ['another magic', Buffer.concat([Buffer.from('NOTSPOOL'), whole.subarray(8)]), 'not_a_batch_file'],
    ['text', Buffer.from('junk'), 'not_a_batch_file'],
  ];
  it.each(cases)('%s → %s', (_name, bytes, reason) => {
    expect(() => decodeBatchFile(bytes, 'f')).toThrow(expect.objectContaining({ reason }));
  });
  it('a whole file decodes to its header and body', () => {
    const decoded = decodeBatchFile(whole, 'f');
    expect(decoded.header).toEqual(header);
    expect(Buffer.from(decoded.body).toString()).toBe('the-body-bytes');
  });
  it('batch names: one builder, one parser; foreign names parse to nothing', () => {
    expect(batchFileName(42, 'tok-1')).toBe('000000000042-tok-1.batch');
    expect(parseBatchFileName(batchFileName(42, 'tok-1'))).toEqual({ seq: 42, token: 'tok-1' });
    for (const name of ['junk.batch', '12-short.batch', '000000000001-.batch', '000000000001-x.batch.tmp', 'x']) expect(parseBatchFileName(name), name).toBeUndefined();
  });
});
