/**
 * Wire protocol: a directory of files on the local disk (docs/architecture.md, "The spool").
 *
 *   <dir>/lock                 the PID of the one process that owns the spool ("0" once released)
 *   <dir>/instance             this spool's id, named in the Kafka commits it makes
 *   <dir>/tmp/<token>.staged   batches written and fsynced, whose offsets are being committed
 *   <dir>/tmp/*.tmp            files being written; a crash leftover at start
 *   <dir>/batches/<seq>-<token>.batch   batches to send, oldest first by name
 *   <dir>/quarantine/<name>.batch + <name>.error.json   batches ClickHouse refused as bad data,
 *                              and files that failed their check at open (any name)
 *
 * A batch from Kafka goes through three steps, so that no crash or rebalance can store it
 * twice or lose it (docs/guarantees.md):
 *   stage    write it to tmp/ and fsync it: durable, not yet to be sent;
 *   (the caller commits its offsets to Kafka, naming this spool and the batch's token)
 *   publish  rename it into batches/: it will be sent.
 * If the commit fails (the partition moved to another consumer), the staged file is
 * discarded: its records are read again by whoever owns the partition now. A staged file
 * found at start is published or discarded by asking Kafka whether its commit landed.
 *
 * A batch file's format (a checksummed header, then the insert body exactly as it is sent)
 * and its name are defined in ./spoolFile.ts, encoder and decoder side by side.
 *
 * Every file is written to tmp/ (each write checked for the bytes it wrote), fsynced,
 * read back and verified (size and checksums), renamed into place, and the directory
 * fsynced: a file under batches/ is whole when it gets there. A write the disk refuses
 * (ENOSPC, EDQUOT, EIO) leaves nothing behind and throws `SpoolDiskError`. At open, every
 * file under batches/ is checked again (name, header checksum, body checksum); one that
 * fails is moved to quarantine/ with the reason, where `listQuarantine` shows it.
 * Rows in the spool are already anonymized.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Observable, Subject } from 'rxjs';
import type { Logger } from 'pino';
import type { PartitionOffsets, SealedBatch } from '../domain/batch.ts';
import { SPOOL_DISK_ERRNOS, SpoolDiskError, SpoolError, SpoolFileCorruptError, type SpoolCorruption } from '../errors.ts';
import { batchFileName, decodeBatchFile, encodeBatchFile, encodedSize, headerFor, parseBatchFileName, type SpoolHeader } from './spoolFile.ts';

export type { SpoolHeader } from './spoolFile.ts';
/** Kept for callers of the earlier name: checks and splits a batch file (see `decodeBatchFile`). */
export const parseBatchFile = decodeBatchFile;

/** A sealed batch on disk, described by its header. Its body stays on disk until it is sent. */
export interface SpooledBatch extends Pick<SpoolHeader, 'token' | 'format' | 'codec' | 'rowCount' | 'uncompressedBytes' | 'bodyBytes'> {
  readonly seq: number;
  readonly file: string;
  readonly offsets: PartitionOffsets;
  readonly header: SpoolHeader;
}

export interface QuarantineRecord {
  readonly code: string;
  readonly message: string;
  readonly at: string;
  /** For a file that failed its check: why (`SpoolCorruption`). */
  readonly reason?: string;
}

export interface QuarantinedBatch {
  /** The entry's name: the file's name without `.batch`. */
  readonly name: string;
  /** The file's name in quarantine/. */
  readonly file: string;
  /** What the batch claims (token, rows, Kafka offsets), when its header passed its check. */
  readonly header: SpoolHeader | undefined;
  /** True when the whole file passes its check: it can be replayed. */
  readonly intact: boolean;
  readonly error: QuarantineRecord;
}

/** Decides, at start, the fate of a staged batch whose commit may or may not have landed. */
export type StagedResolver = (header: SpoolHeader, instanceId: string) => Promise<'publish' | 'discard'>;

/** A batch written and fsynced to tmp/, waiting for its offsets to be committed. */
export interface StagedBatch {
  readonly file: string;
  readonly header: SpoolHeader;
}

/** The part of a file handle the spool writes through (node's `FileHandle` is one). */
export interface SpoolWritableFile {
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** How the spool opens a file for writing: a seam for tests (short writes, a full disk). */
export type SpoolFileOpener = (path: string) => Promise<SpoolWritableFile>;

export interface SpoolOptions {
  readonly dir: string;
  readonly topic: string;
  readonly logger: Logger;
  /**
   * Settles staged batches left by a crash. Without one they are published: nothing is
   * lost, at the risk of a duplicate if another consumer read them again meanwhile.
   */
  readonly resolveStaged?: StagedResolver;
  /** fsync files and directories. Only tests that measure something else turn it off. Default true. */
  readonly fsync?: boolean;
  /** Opens a file for writing (truncating it). Default: `fs.promises.open(path, 'w')`. */
  readonly openForWrite?: SpoolFileOpener;
}

/** A file found bad at open and set aside. */
export interface CorruptSpoolFile {
  readonly name: string;
  readonly reason: SpoolCorruption;
}

/**
 * The spool as the pipeline uses it: a durable queue of sealed batches between ingestion
 * (stage → commit → publish) and delivery (pending → insert → remove). `Spool` is the
 * directory implementation; an embedder may bring another one (a database table, an
 * object store) that keeps the same promises: a staged batch survives a crash, a published
 * one is sent until removed.
 */
export interface BatchSpool {
  /** This spool's id, stable across restarts, named in the Kafka commits it makes. */
  readonly instanceId: string;
  /** Fires after every write, removal or quarantine (for backpressure and metrics). */
  readonly changed$: Observable<void>;
  /** Batches waiting to be sent and their total size in bytes. */
  stats(): { batches: number; bytes: number };
  /** Every batch to send, oldest first, then each new one; completes after `endOfInput()` once empty. */
  pending(): Observable<SpooledBatch>;
  /** No more batches will be written. */
  endOfInput(): void;
  /**
   * Writes the batch durably and verifies it, not yet to be sent; its offsets may be
   * committed once this resolves. Rejects with `SpoolDiskError` when the disk refuses the
   * write: then nothing of it is left on disk, and the same batch may be staged again later.
   */
  stage(batch: SealedBatch, parent?: SpoolHeader['parent']): Promise<StagedBatch | undefined>;
  /** After the commit: the staged batch joins the send queue. */
  publish(staged: StagedBatch): Promise<SpooledBatch>;
  /** The commit was refused: the staged copy goes. */
  discard(staged: StagedBatch): Promise<void>;
  /** Stages and publishes at once (batches whose offsets need no commit). */
  write(batch: SealedBatch, parent?: SpoolHeader['parent']): Promise<SpooledBatch | undefined>;
  /** The body to send, exactly as sealed. */
  readBody(batch: SpooledBatch): Promise<Uint8Array>;
  /** ClickHouse stored it. */
  remove(batch: SpooledBatch): Promise<void>;
  /** ClickHouse refused its data: set it aside with the error. */
  quarantine(batch: SpooledBatch, error: { code: string; message: string }): Promise<void>;
  /** Replaces a batch by its parts (a 413 split), durably. */
  replace(batch: SpooledBatch, parts: readonly SealedBatch[]): Promise<SpooledBatch[]>;
  /** Entries in quarantine now (batches ClickHouse refused, files that failed their check). */
  quarantineCount?(): number;
  /** Files found bad at open and quarantined by this process. */
  corruptAtOpen?(): readonly CorruptSpoolFile[];
  close(): Promise<void>;
}

const defaultOpener: SpoolFileOpener = (path) => open(path, 'w');

export class Spool implements BatchSpool {
  readonly dir: string;
  readonly topic: string;
  readonly #log: Logger;
  readonly #fsync: boolean;
  readonly #openForWrite: SpoolFileOpener;
  readonly #batches = new Map<string, SpooledBatch>();
  readonly #written = new Subject<SpooledBatch>();
  readonly #changed = new Subject<void>();
  readonly #resolveStaged: StagedResolver | undefined;
  readonly #corruptAtOpen: CorruptSpoolFile[] = [];
  #instanceId = '';
  #seq = 0;
  #bytes = 0;
  #quarantined = 0;
  #diskError: SpoolDiskError | undefined;
  #inputEnded = false;
  #endOfWork?: () => void;

  private constructor(options: SpoolOptions) {
    this.dir = options.dir;
    this.topic = options.topic;
    this.#log = options.logger;
    this.#fsync = options.fsync ?? true;
    this.#resolveStaged = options.resolveStaged;
    this.#openForWrite = options.openForWrite ?? defaultOpener;
  }

  /** This spool's id: stable across restarts, written into the Kafka commits it makes. */
  get instanceId(): string {
    return this.#instanceId;
  }

  /**
   * Takes the lock, checks every queued file (quarantining bad ones), discards crash
   * leftovers, finishes or undoes half-done splits, and indexes what is there.
   */
  static async open(options: SpoolOptions): Promise<Spool> {
    const spool = new Spool(options);
    await spool.#open();
    return spool;
  }

  /** Fires after every write, removal or quarantine (for backpressure and metrics). */
  get changed$(): Observable<void> {
    return this.#changed.asObservable();
  }

  /** Batches waiting to be sent and their total size in bytes (bodies and headers). */
  stats(): { batches: number; bytes: number } {
    return { batches: this.#batches.size, bytes: this.#bytes };
  }

  quarantineCount(): number {
    return this.#quarantined;
  }

  corruptAtOpen(): readonly CorruptSpoolFile[] {
    return this.#corruptAtOpen;
  }

  /** The disk error of the last stage() when it failed, undefined once one succeeds (for readiness). */
  diskProblem(): SpoolDiskError | undefined {
    return this.#diskError;
  }

  /**
   * Every batch to send, oldest first: those already on disk, then each new one as it is
   * written. Completes once `endOfInput()` was called and nothing is left to send.
   * One subscriber at a time.
   */
  pending(): Observable<SpooledBatch> {
    return new Observable<SpooledBatch>((subscriber) => {
      const existing = [...this.#batches.values()].sort((a, b) => a.seq - b.seq);
      for (const batch of existing) subscriber.next(batch);
      const subscription = this.#written.subscribe((batch) => subscriber.next(batch));
      this.#endOfWork = () => subscriber.complete();
      this.#checkDone();
      return () => {
        subscription.unsubscribe();
        this.#endOfWork = undefined;
      };
    });
  }

  /** No more batches will be written: `pending()` completes once the spool is empty. */
  endOfInput(): void {
    this.#inputEnded = true;
    this.#checkDone();
  }

  /**
   * Step 1: writes the batch to tmp/, fsyncs it and verifies what is on disk (size and
   * checksums). Its offsets may be committed once this resolves. A batch without rows
   * stages nothing. The disk refusing the write rejects with `SpoolDiskError`, leaving
   * nothing behind.
   */
  async stage(batch: SealedBatch, parent?: SpoolHeader['parent']): Promise<StagedBatch | undefined> {
    if (batch.rowCount === 0) return undefined;
    const header = headerFor(batch, this.topic, parent);
    const file = join(this.dir, 'tmp', `${batch.token}.staged`);
    try {
      await this.#writeDurably(file, encodeBatchFile(header, batch.body), (bytes) => {
        if (decodeBatchFile(bytes, file).header.token !== header.token) throw new SpoolFileCorruptError(`${file}: read back another batch`, 'name_mismatch');
      });
    } catch (error) {
      if (error instanceof SpoolDiskError) this.#diskError = error;
      throw error;
    }
    this.#diskError = undefined;
    return { file, header };
  }

  /** Step 2 (after the commit): the batch joins the send queue. */
  async publish(staged: StagedBatch): Promise<SpooledBatch> {
    const seq = ++this.#seq;
    const file = join(this.dir, 'batches', batchFileName(seq, staged.header.token));
    await rename(staged.file, file);
    await this.#syncDir(join(this.dir, 'batches'));
    const spooled = toSpooled(seq, file, staged.header);
    this.#batches.set(spooled.token, spooled);
    this.#bytes += spooled.bodyBytes;
    this.#written.next(spooled);
    this.#changed.next();
    return spooled;
  }

  /** The commit failed: the records will be read again from Kafka, so the staged copy goes. */
  async discard(staged: StagedBatch): Promise<void> {
    await rm(staged.file, { force: true });
    // Durably gone: after a power loss it must not come back and be published.
    await this.#syncDir(join(this.dir, 'tmp'));
  }

  /** Stages and publishes at once: for batches whose offsets need no commit (split parts). */
  async write(batch: SealedBatch, parent?: SpoolHeader['parent']): Promise<SpooledBatch | undefined> {
    const staged = await this.stage(batch, parent);
    return staged && this.publish(staged);
  }

  /** The body to send, checked against the checksums taken when it was sealed. */
  async readBody(batch: SpooledBatch): Promise<Uint8Array> {
    const { header, body } = decodeBatchFile(await readFile(batch.file), batch.file);
    if (header.token !== batch.token) throw new SpoolError(`${batch.file} holds batch ${header.token}, expected ${batch.token}`);
    return body;
  }

  /** ClickHouse stored it: the file goes. */
  async remove(batch: SpooledBatch): Promise<void> {
    await rm(batch.file, { force: true });
    await this.#syncDir(join(this.dir, 'batches'));
    this.#forget(batch);
  }

  /** ClickHouse refused the data: set it aside with the error, out of the send queue. */
  async quarantine(batch: SpooledBatch, error: { code: string; message: string }): Promise<void> {
    const target = await this.#setAside(batch.file, 'batches', { ...error, at: new Date().toISOString() });
    this.#forget(batch);
    this.#log.error({ token: batch.token, rows: batch.rowCount, code: error.code, file: target }, 'batch quarantined: ClickHouse refused its data');
  }

  /**
   * Replaces a batch by its parts (a 413 split): every part is written first, then the
   * parent goes. A crash in between is settled at the next start, from the parts' headers.
   */
  async replace(batch: SpooledBatch, parts: readonly SealedBatch[]): Promise<SpooledBatch[]> {
    const written: SpooledBatch[] = [];
    for (const [index, part] of parts.entries()) {
      const spooled = await this.write(part, { token: batch.token, parts: parts.length, index });
      if (spooled) written.push(spooled);
    }
    await this.remove(batch);
    return written;
  }

  async listQuarantine(): Promise<QuarantinedBatch[]> {
    return listQuarantine(this.dir);
  }

  /**
   * Moves quarantined batches back into the send queue (after the cause was fixed). Only
   * intact files qualify: one that fails its check would only be quarantined again.
   * Returns how many.
   */
  async replay(names?: readonly string[]): Promise<number> {
    const all = (await this.listQuarantine()).filter((batch) => batch.intact && batch.header);
    const chosen = names === undefined ? all : all.filter((batch) => names.includes(batch.name) || names.includes(batch.header!.token));
    for (const batch of chosen) {
      const header = batch.header!;
      const seq = ++this.#seq;
      const target = join(this.dir, 'batches', batchFileName(seq, header.token));
      await rename(join(this.dir, 'quarantine', batch.file), target);
      await rm(join(this.dir, 'quarantine', `${batch.name}.error.json`), { force: true });
      const spooled = toSpooled(seq, target, header);
      this.#batches.set(spooled.token, spooled);
      this.#bytes += spooled.bodyBytes;
      this.#quarantined--;
    }
    await this.#syncDir(join(this.dir, 'batches'));
    await this.#syncDir(join(this.dir, 'quarantine'));
    if (chosen.length > 0) this.#changed.next();
    return chosen.length;
  }

  /**
   * Releases the lock by writing "0" over the PID, in place: the file keeps its block, so
   * the next start takes it over without needing new space (a restart on a full disk).
   */
  async close(): Promise<void> {
    const file = join(this.dir, 'lock');
    try {
      if (Number(readFileSync(file, 'utf8').trim()) !== process.pid) return;
      overwriteInPlace(file, '0');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  #forget(batch: SpooledBatch): void {
    if (this.#batches.delete(batch.token)) this.#bytes -= batch.bodyBytes;
    this.#changed.next();
    this.#checkDone();
  }

  #checkDone(): void {
    if (this.#inputEnded && this.#batches.size === 0) this.#endOfWork?.();
  }

  async #open(): Promise<void> {
    for (const sub of ['tmp', 'batches', 'quarantine']) await mkdir(join(this.dir, sub), { recursive: true });
    this.#lock();
    this.#instanceId = await this.#readInstanceId();
    for (const name of await readdir(join(this.dir, 'quarantine'))) {
      if (isQuarantineEntry(name)) this.#quarantined++;
      const parsed = parseBatchFileName(name);
      if (parsed) this.#seq = Math.max(this.#seq, parsed.seq);
    }
    const found = await this.#checkQueued();
    await this.#settleSplits(found);
    for (const batch of found) {
      if (!this.#batches.has(batch.token) && (await exists(batch.file))) {
        this.#batches.set(batch.token, batch);
        this.#bytes += batch.bodyBytes;
      }
    }
    await this.#settleStaged();
    this.#log.info({ batches: this.#batches.size, bytes: this.#bytes, quarantined: this.#quarantined, corrupt: this.#corruptAtOpen.length, instance: this.#instanceId }, 'spool opened');
  }

  /**
   * Every file in batches/ is checked: its name, its header's checksum, its body's. Renamed
   * files were whole, so a failure is disk corruption or a file that is not ours: it is
   * set aside visibly, and only well-named files take part in numbering.
   */
  async #checkQueued(): Promise<SpooledBatch[]> {
    const entries = (await readdir(join(this.dir, 'batches'), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    const found: SpooledBatch[] = [];
    for (const entry of entries) {
      const file = join(this.dir, 'batches', entry.name);
      if (!entry.isFile()) {
        this.#log.warn({ file: entry.name }, 'spool: left a foreign entry in batches/ alone (not a regular file)');
        continue;
      }
      const parsed = parseBatchFileName(entry.name);
      if (parsed) this.#seq = Math.max(this.#seq, parsed.seq);
      try {
        if (!parsed) throw new SpoolFileCorruptError(`${entry.name}: not a batch file name (<seq>-<token>.batch)`, 'foreign_name');
        const { header } = decodeBatchFile(await readFile(file), entry.name);
        if (header.token !== parsed.token) throw new SpoolFileCorruptError(`${entry.name} holds batch ${header.token}`, 'name_mismatch', header);
        found.push(toSpooled(parsed.seq, file, header));
      } catch (error) {
        if (!(error instanceof SpoolFileCorruptError)) throw error;
        await this.#quarantineCorrupt(file, 'batches', error);
      }
    }
    return found;
  }

  async #quarantineCorrupt(file: string, from: 'batches' | 'tmp', error: SpoolFileCorruptError): Promise<void> {
    const target = await this.#setAside(file, from, { code: error.code, reason: error.reason, message: error.message, at: new Date().toISOString() });
    const name = target.split('/').at(-1)!;
    this.#corruptAtOpen.push({ name, reason: error.reason });
    this.#log.error(
      { code: error.code, reason: error.reason, file: name, from, token: error.header?.token, rows: error.header?.rowCount, offsets: error.header?.offsets },
      'spool: a file failed its check and was quarantined (see `anonymizer spool list`)',
    );
  }

  /**
   * Moves a file into quarantine/ (both directories fsynced), then writes its error file.
   * The rename needs no space; the error file does, and on a full disk it is left out
   * (`listQuarantine` derives the reason again): setting a file aside never fails for lack
   * of space, so a full disk cannot make the spool unopenable.
   */
  async #setAside(file: string, from: 'batches' | 'tmp', record: QuarantineRecord): Promise<string> {
    const name = await this.#freeQuarantineName(file.split('/').at(-1)!);
    const target = join(this.dir, 'quarantine', name);
    await rename(file, target);
    await this.#syncDir(join(this.dir, from));
    await this.#syncDir(join(this.dir, 'quarantine'));
    this.#quarantined++;
    this.#changed.next();
    try {
      const bytes = Buffer.from(JSON.stringify(record, null, 2));
      await this.#writeDurably(join(this.dir, 'quarantine', `${entryName(name)}.error.json`), [bytes]);
    } catch (error) {
      if (!(error instanceof SpoolDiskError)) throw error;
      this.#log.warn({ file: name, err: error.message }, 'spool: no room for the error file of a quarantined batch; `spool list` derives its reason');
    }
    return target;
  }

  async #freeQuarantineName(name: string): Promise<string> {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const candidate = attempt === 0 ? name : name.endsWith('.batch') ? `${name.slice(0, -'.batch'.length)}.${attempt}.batch` : `${name}.${attempt}`;
      if (!(await exists(join(this.dir, 'quarantine', candidate)))) return candidate;
    }
    throw new SpoolError(`${this.dir}/quarantine: no free name for ${name}`);
  }

  /**
   * tmp/ after a crash: a half-written .tmp file was never committed (it goes); a staged one
   * may or may not have had its commit land, which only Kafka can tell. Staged files are
   * verified before they get their name, so one that fails its check now is set aside.
   */
  async #settleStaged(): Promise<void> {
    for (const name of (await readdir(join(this.dir, 'tmp'))).sort()) {
      const file = join(this.dir, 'tmp', name);
      if (!name.endsWith('.staged')) {
        await rm(file, { force: true });
        this.#log.warn({ file: name }, 'spool: discarded a half-written file left by a crash (its offsets were never committed)');
        continue;
      }
      let header: SpoolHeader;
      try {
        header = decodeBatchFile(await readFile(file), name).header;
      } catch (error) {
        if (!(error instanceof SpoolFileCorruptError)) throw error;
        await this.#quarantineCorrupt(file, 'tmp', error);
        continue;
      }
      // A staged part of a split: the split did not finish, and its parent is still queued
      // (settled above), so the part goes; the split is redone if the proxy refuses again.
      const decision = header.parent ? 'discard' : this.#resolveStaged ? await this.#resolveStaged(header, this.#instanceId) : 'publish';
      if (decision === 'publish') await this.publish({ file, header });
      else await rm(file, { force: true });
      this.#log.warn({ token: header.token, rows: header.rowCount, decision }, 'spool: settled a staged batch left by a crash');
    }
  }

  async #readInstanceId(): Promise<string> {
    const file = join(this.dir, 'instance');
    try {
      return (await readFile(file, 'utf8')).trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const id = randomUUID();
      await this.#writeDurably(file, [Buffer.from(id)]);
      return id;
    }
  }

  /** A parent whose parts all exist goes; parts of a parent whose split did not finish go. */
  async #settleSplits(found: SpooledBatch[]): Promise<void> {
    const byToken = new Map(found.map((batch) => [batch.token, batch]));
    const partsOf = new Map<string, SpooledBatch[]>();
    for (const batch of found) {
      const parent = batch.header.parent;
      if (parent) partsOf.set(parent.token, [...(partsOf.get(parent.token) ?? []), batch]);
    }
    for (const [parentToken, parts] of partsOf) {
      const parent = byToken.get(parentToken);
      if (!parent) continue;
      const expected = parts[0]!.header.parent!.parts;
      const complete = new Set(parts.map((part) => part.header.parent!.index)).size === expected;
      const doomed = complete ? [parent] : parts;
      for (const batch of doomed) await rm(batch.file, { force: true });
      this.#log.warn({ parent: parentToken, complete }, complete ? 'spool: finished a split left by a crash' : 'spool: undid a split left half done by a crash');
    }
    await this.#syncDir(join(this.dir, 'batches'));
  }

  /**
   * Writes `target` through a temp file: every write checked for the bytes it wrote, fsync,
   * then the file read back and checked (its size, and `verify` on its bytes) before the
   * rename. On any failure the temp file goes; a disk that refused (ENOSPC, EDQUOT, EIO, or
   * a file that did not read back whole) becomes `SpoolDiskError`.
   */
  async #writeDurably(target: string, chunks: readonly Uint8Array[], verify?: (bytes: Buffer) => void): Promise<void> {
    // (a staged file is written through a .tmp too, so a torn write is never mistaken for one)
    const temporary = join(this.dir, 'tmp', `${target.split('/').at(-1)}.${process.pid}.tmp`);
    try {
      const handle = await this.#openForWrite(temporary);
      try {
        await writeFully(handle, chunks);
        if (this.#fsync) await handle.sync();
      } finally {
        await handle.close();
      }
      const bytes = await readFile(temporary);
      const expected = encodedSize(chunks);
      if (bytes.byteLength !== expected) throw diskFault('EIO', `${temporary}: ${bytes.byteLength} bytes on disk, ${expected} written`);
      try {
        verify?.(bytes);
      } catch (error) {
        throw diskFault('EIO', `${temporary} did not read back as written: ${(error as Error).message}`);
      }
      await rename(temporary, target);
      await this.#syncDir(target.split('/').slice(0, -1).join('/'));
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      throw await this.#asDiskError(error);
    }
  }

  /** A disk error (ENOSPC, EDQUOT, EIO) becomes `SpoolDiskError`, with the free space now; others pass. */
  async #asDiskError(error: unknown): Promise<unknown> {
    const errno = (error as NodeJS.ErrnoException | undefined)?.code;
    if (errno === undefined || !SPOOL_DISK_ERRNOS.has(errno)) return error;
    return new SpoolDiskError(this.dir, errno, await freeBytes(this.dir), { cause: error });
  }

  async #syncDir(dir: string): Promise<void> {
    if (!this.#fsync) return;
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * The lock file holds the owner's PID, or "0" once released. A released or stale one (its
   * process died) is taken over by overwriting it in place, which needs no new block: a
   * spool on a full disk still opens. Only the very first open creates the file.
   */
  #lock(): void {
    const file = join(this.dir, 'lock');
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Created but not written (a full disk): leave no empty lock that would block the next start.
      if (code !== 'EEXIST') rmLockIfEmpty(file);
      if (code !== 'EEXIST') throw new SpoolError(`cannot lock ${this.dir}: ${(error as Error).message}`, { cause: error });
    }
    const holder = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new SpoolError(`the spool ${this.dir} is in use by process ${holder}; give each instance its own SPOOL_DIR`);
    }
    // Released ("0"), or stale (its process died): take it over.
    overwriteInPlace(file, String(process.pid));
  }
}

/** Writes `text` over the file's start and cuts it there: no new block is needed, whatever the free space. */
function overwriteInPlace(file: string, text: string): void {
  const fd = openSync(file, 'r+');
  try {
    const bytes = Buffer.from(text);
    if (writeSync(fd, bytes, 0, bytes.byteLength, 0) !== bytes.byteLength) throw new SpoolError(`cannot write the lock ${file}: short write`);
    ftruncateSync(fd, bytes.byteLength);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes every chunk in full: a write may take fewer bytes than asked (a filling disk), so it loops. */
export async function writeFully(handle: SpoolWritableFile, chunks: readonly Uint8Array[]): Promise<number> {
  let position = 0;
  for (const chunk of chunks) {
    let done = 0;
    let stalls = 0;
    while (done < chunk.byteLength) {
      const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done, position);
      if (bytesWritten <= 0) {
        // The kernel reports a full disk as ENOSPC; a write that keeps taking nothing is the same fault.
        if (++stalls >= 3) throw diskFault('EIO', `a write made no progress after ${position} bytes`);
        continue;
      }
      stalls = 0;
      done += bytesWritten;
      position += bytesWritten;
    }
  }
  return position;
}

function diskFault(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const stats = await statfs(dir);
    return Number(stats.bavail) * Number(stats.bsize);
  } catch {
    return undefined;
  }
}

function rmLockIfEmpty(file: string): void {
  try {
    if (readFileSync(file).byteLength === 0) unlinkSync(file);
  } catch {
    return;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

function toSpooled(seq: number, file: string, header: SpoolHeader): SpooledBatch {
  return {
    seq,
    file,
    token: header.token,
    format: header.format,
    codec: header.codec,
    rowCount: header.rowCount,
    uncompressedBytes: header.uncompressedBytes,
    bodyBytes: header.bodyBytes,
    offsets: new Map(header.offsets.map(([p, o]) => [p, o])),
    header,
  };
}

/** A quarantined file (not its error file, not a write in progress). */
function isQuarantineEntry(name: string): boolean {
  return !name.endsWith('.error.json') && !name.endsWith('.tmp') && !name.startsWith('.');
}

/** The entry's name: the file's name without `.batch`. */
function entryName(file: string): string {
  return file.endsWith('.batch') ? file.slice(0, -'.batch'.length) : file;
}

/**
 * The well-named, intact batch files of `<dir>/<sub>`, oldest first, with their headers.
 * Read-only, so it works while `anonymizer run` holds the spool (a file sent and removed
 * meanwhile is simply left out).
 */
export async function readBatchHeaders(dir: string, sub: 'batches' | 'quarantine'): Promise<Array<{ name: string; header: SpoolHeader }>> {
  let files: string[];
  try {
    files = (await readdir(join(dir, sub))).filter((name) => parseBatchFileName(name) !== undefined).sort();
  } catch {
    return [];
  }
  const result: Array<{ name: string; header: SpoolHeader }> = [];
  for (const file of files) {
    try {
      result.push({ name: entryName(file), header: decodeBatchFile(await readFile(join(dir, sub, file)), file).header });
    } catch {
      // gone meanwhile, or unreadable (a run quarantines those at start)
    }
  }
  return result;
}

/**
 * Everything in `<dir>/quarantine`, oldest name first: batches ClickHouse refused and files
 * that failed their check, whatever their name and whether or not their header is readable.
 * Each is checked again; a missing error file (a full disk) is replaced by that check.
 */
export async function listQuarantine(dir: string): Promise<QuarantinedBatch[]> {
  let names: string[];
  try {
    names = (await readdir(join(dir, 'quarantine'))).filter(isQuarantineEntry).sort();
  } catch {
    return [];
  }
  const result: QuarantinedBatch[] = [];
  for (const file of names) {
    const name = entryName(file);
    let header: SpoolHeader | undefined;
    let failure: SpoolFileCorruptError | undefined;
    try {
      header = decodeBatchFile(await readFile(join(dir, 'quarantine', file)), file).header;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // replayed meanwhile
      failure = error instanceof SpoolFileCorruptError ? error : new SpoolFileCorruptError(`${file}: ${(error as Error).message}`, 'not_a_batch_file');
      header = failure.header as SpoolHeader | undefined;
    }
    let record: QuarantineRecord | undefined;
    try {
      record = JSON.parse(await readFile(join(dir, 'quarantine', `${name}.error.json`), 'utf8')) as QuarantineRecord;
    } catch {
      record = undefined;
    }
    record ??= failure
      ? { code: failure.code, reason: failure.reason, message: failure.message, at: '' }
      : { code: 'unknown', message: '(no error file: it could not be written)', at: '' };
    result.push({ name, file, header, intact: failure === undefined, error: record });
  }
  return result;
}
