/**
 * Wire protocol: a directory of files on the local disk (docs/architecture.md, "The spool").
 *
 *   <dir>/lock                 the PID of the one process that owns the spool
 *   <dir>/instance             this spool's id, named in the Kafka commits it makes
 *   <dir>/tmp/<token>.staged   batches written and fsynced, whose offsets are being committed
 *   <dir>/tmp/*.tmp            files being written; a crash leftover at start
 *   <dir>/batches/<seq>-<token>.batch   batches to send, oldest first by name
 *   <dir>/quarantine/<name>.batch + <name>.error.json   batches ClickHouse refused as bad data
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
 * A batch file is "HLSPOOL1", a u32 LE header length, a JSON header (token, format,
 * codec, row count, body size and SHA-256, the Kafka offsets it covers, and for the parts
 * of a split batch, their parent), then the insert body exactly as it is sent.
 *
 * Every file is written to tmp/, fsynced, renamed into place, and the directory fsynced:
 * a file under batches/ is always whole. Rows in the spool are already anonymized.
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Observable, Subject } from 'rxjs';
import type { Logger } from 'pino';
import type { Codec, PartitionOffsets, SealedBatch } from '../domain/batch.ts';
import { SpoolError } from '../errors.ts';

const MAGIC = Buffer.from('HLSPOOL1');

export interface SpoolHeader {
  readonly version: 1;
  readonly token: string;
  readonly format: SealedBatch['format'];
  readonly codec: Codec;
  readonly rowCount: number;
  readonly uncompressedBytes: number;
  readonly bodyBytes: number;
  readonly bodySha256: string;
  readonly topic: string;
  /** [partition, last offset covered] pairs. */
  readonly offsets: ReadonlyArray<readonly [number, number]>;
  readonly sealedAt: string;
  /** Set on the parts of a batch split after a 413: the parent is gone once every part exists. */
  readonly parent?: { readonly token: string; readonly parts: number; readonly index: number };
  /** The oldest and newest record timestamps in the batch, epoch seconds (absent in batches spooled before it existed). */
  readonly eventTime?: readonly [number, number];
  /** What sealed the batch (absent in batches spooled before it existed). */
  readonly sealReason?: SealedBatch['sealReason'];
}

/** A sealed batch on disk, described by its header. Its body stays on disk until it is sent. */
export interface SpooledBatch extends Pick<SpoolHeader, 'token' | 'format' | 'codec' | 'rowCount' | 'uncompressedBytes' | 'bodyBytes'> {
  readonly seq: number;
  readonly file: string;
  readonly offsets: PartitionOffsets;
  readonly header: SpoolHeader;
}

export interface QuarantinedBatch {
  readonly name: string;
  readonly header: SpoolHeader;
  readonly error: { readonly code: string; readonly message: string; readonly at: string };
}

/** Decides, at start, the fate of a staged batch whose commit may or may not have landed. */
export type StagedResolver = (header: SpoolHeader, instanceId: string) => Promise<'publish' | 'discard'>;

/** A batch written and fsynced to tmp/, waiting for its offsets to be committed. */
export interface StagedBatch {
  readonly file: string;
  readonly header: SpoolHeader;
}

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
  /** Writes the batch durably, not yet to be sent; its offsets may be committed once this resolves. */
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
  close(): Promise<void>;
}

export class Spool implements BatchSpool {
  readonly dir: string;
  readonly topic: string;
  readonly #log: Logger;
  readonly #fsync: boolean;
  readonly #batches = new Map<string, SpooledBatch>();
  readonly #written = new Subject<SpooledBatch>();
  readonly #changed = new Subject<void>();
  readonly #resolveStaged: StagedResolver | undefined;
  #instanceId = '';
  #seq = 0;
  #bytes = 0;
  #inputEnded = false;
  #endOfWork?: () => void;

  private constructor(options: SpoolOptions) {
    this.dir = options.dir;
    this.topic = options.topic;
    this.#log = options.logger;
    this.#fsync = options.fsync ?? true;
    this.#resolveStaged = options.resolveStaged;
  }

  /** This spool's id: stable across restarts, written into the Kafka commits it makes. */
  get instanceId(): string {
    return this.#instanceId;
  }

  /** Takes the lock, discards crash leftovers, finishes or undoes half-done splits, and indexes what is there. */
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
   * Step 1: writes the batch to tmp/ and fsyncs it. Its offsets may be committed once this
   * resolves. A batch without rows stages nothing.
   */
  async stage(batch: SealedBatch, parent?: SpoolHeader['parent']): Promise<StagedBatch | undefined> {
    if (batch.rowCount === 0) return undefined;
    const header: SpoolHeader = {
      version: 1,
      token: batch.token,
      format: batch.format,
      codec: batch.codec,
      rowCount: batch.rowCount,
      uncompressedBytes: batch.uncompressedBytes,
      bodyBytes: batch.body.byteLength,
      bodySha256: createHash('sha256').update(batch.body).digest('hex'),
      topic: this.topic,
      offsets: [...batch.offsets],
      sealedAt: new Date().toISOString(),
      ...(parent ? { parent } : {}),
      ...(batch.eventTime ? { eventTime: batch.eventTime } : {}),
      ...(batch.sealReason ? { sealReason: batch.sealReason } : {}),
    };
    const headerBytes = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(4);
    length.writeUInt32LE(headerBytes.byteLength);
    const file = join(this.dir, 'tmp', `${batch.token}.staged`);
    await this.#writeDurably(file, [MAGIC, length, headerBytes, batch.body]);
    return { file, header };
  }

  /** Step 2 (after the commit): the batch joins the send queue. */
  async publish(staged: StagedBatch): Promise<SpooledBatch> {
    const seq = ++this.#seq;
    const file = join(this.dir, 'batches', `${String(seq).padStart(12, '0')}-${staged.header.token}.batch`);
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

  /** The body to send, checked against the SHA-256 taken when it was sealed. */
  async readBody(batch: SpooledBatch): Promise<Uint8Array> {
    const { header, body } = parseBatchFile(await readFile(batch.file), batch.file);
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
    const name = batch.file.split('/').at(-1)!;
    const target = join(this.dir, 'quarantine', name);
    await this.#writeDurably(`${target.slice(0, -'.batch'.length)}.error.json`, [Buffer.from(JSON.stringify({ ...error, at: new Date().toISOString() }, null, 2))]);
    await rename(batch.file, target);
    await this.#syncDir(join(this.dir, 'batches'));
    await this.#syncDir(join(this.dir, 'quarantine'));
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

  /** Moves quarantined batches back into the send queue (after the cause was fixed). Returns how many. */
  async replay(names?: readonly string[]): Promise<number> {
    const all = await this.listQuarantine();
    const chosen = names === undefined ? all : all.filter((batch) => names.includes(batch.name) || names.includes(batch.header.token));
    for (const batch of chosen) {
      const source = join(this.dir, 'quarantine', `${batch.name}.batch`);
      const seq = ++this.#seq;
      const target = join(this.dir, 'batches', `${String(seq).padStart(12, '0')}-${batch.header.token}.batch`);
      await rename(source, target);
      await rm(join(this.dir, 'quarantine', `${batch.name}.error.json`), { force: true });
      const spooled = toSpooled(seq, target, batch.header);
      this.#batches.set(spooled.token, spooled);
      this.#bytes += spooled.bodyBytes;
    }
    await this.#syncDir(join(this.dir, 'batches'));
    await this.#syncDir(join(this.dir, 'quarantine'));
    return chosen.length;
  }

  /** Releases the lock. */
  async close(): Promise<void> {
    await rm(join(this.dir, 'lock'), { force: true });
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
    const names = (await readdir(join(this.dir, 'batches'))).filter((name) => name.endsWith('.batch')).sort();
    const found: SpooledBatch[] = [];
    for (const name of names) {
      const file = join(this.dir, 'batches', name);
      const seq = Number(name.slice(0, 12));
      try {
        const header = readHeader(await readFile(file), file);
        found.push(toSpooled(seq, file, header));
      } catch (error) {
        // Renamed files are whole, so this is disk corruption: keep the bytes for a human.
        await rename(file, join(this.dir, 'quarantine', name));
        await writeFile(join(this.dir, 'quarantine', `${name.slice(0, -'.batch'.length)}.error.json`), JSON.stringify({ code: 'ANON_SPOOL', message: (error as Error).message, at: new Date().toISOString() }));
        this.#log.error({ file: name, err: (error as Error).message }, 'spool: unreadable batch file quarantined');
      }
      this.#seq = Math.max(this.#seq, seq);
    }
    for (const name of await readdir(join(this.dir, 'quarantine'))) {
      const seq = Number(name.slice(0, 12));
      if (Number.isFinite(seq)) this.#seq = Math.max(this.#seq, seq);
    }
    await this.#settleSplits(found);
    for (const batch of found) {
      if (!this.#batches.has(batch.token) && (await exists(batch.file))) {
        this.#batches.set(batch.token, batch);
        this.#bytes += batch.bodyBytes;
      }
    }
    await this.#settleStaged();
    this.#log.info({ batches: this.#batches.size, bytes: this.#bytes, instance: this.#instanceId }, 'spool opened');
  }

  /**
   * tmp/ after a crash: a half-written file was never committed (it goes); a staged one
   * may or may not have had its commit land, which only Kafka can tell.
   */
  async #settleStaged(): Promise<void> {
    for (const name of (await readdir(join(this.dir, 'tmp'))).sort()) {
      const file = join(this.dir, 'tmp', name);
      let header: SpoolHeader | undefined;
      if (name.endsWith('.staged')) {
        try {
          header = readHeader(await readFile(file), file);
        } catch {
          header = undefined;
        }
      }
      if (!header) {
        await rm(file, { force: true });
        this.#log.warn({ file: name }, 'spool: discarded a half-written file left by a crash (its offsets were never committed)');
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

  async #writeDurably(target: string, chunks: readonly Uint8Array[]): Promise<void> {
    const temporary = join(this.dir, 'tmp', `${target.split('/').at(-1)}.${process.pid}.tmp`);
    // (a staged file is written through a .tmp too, so a torn write is never mistaken for one)
    const handle = await open(temporary, 'w');
    try {
      for (const chunk of chunks) await handle.write(chunk);
      if (this.#fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
    await this.#syncDir(target.split('/').slice(0, -1).join('/'));
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

  #lock(): void {
    const file = join(this.dir, 'lock');
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new SpoolError(`cannot lock ${this.dir}: ${(error as Error).message}`, { cause: error });
    }
    const holder = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new SpoolError(`the spool ${this.dir} is in use by process ${holder}; give each instance its own SPOOL_DIR`);
    }
    // A stale lock from a process that died: take it over.
    const fd = openSync(file, 'w');
    try {
      writeFileSync(fd, String(process.pid));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
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

function readHeader(content: Buffer, file: string): SpoolHeader {
  return parseBatchFile(content, file).header;
}

export function parseBatchFile(content: Buffer, file: string): { header: SpoolHeader; body: Uint8Array } {
  if (content.byteLength < 12 || !content.subarray(0, 8).equals(MAGIC)) throw new SpoolError(`${file} is not a spool batch file`);
  const headerLength = content.readUInt32LE(8);
  if (12 + headerLength > content.byteLength) throw new SpoolError(`${file}: header runs past the end of the file`);
  const header = JSON.parse(content.subarray(12, 12 + headerLength).toString('utf8')) as SpoolHeader;
  const body = content.subarray(12 + headerLength);
  if (body.byteLength !== header.bodyBytes || createHash('sha256').update(body).digest('hex') !== header.bodySha256) {
    throw new SpoolError(`${file}: the body does not match its checksum`);
  }
  return { header, body };
}

/**
 * The readable batch files of `<dir>/<sub>`, oldest first, with their headers. Read-only,
 * so it works while `anonymizer run` holds the spool (a file sent and removed meanwhile
 * is simply left out).
 */
export async function readBatchHeaders(dir: string, sub: 'batches' | 'quarantine'): Promise<Array<{ name: string; header: SpoolHeader }>> {
  let files: string[];
  try {
    files = (await readdir(join(dir, sub))).filter((name) => name.endsWith('.batch')).sort();
  } catch {
    return [];
  }
  const result: Array<{ name: string; header: SpoolHeader }> = [];
  for (const file of files) {
    try {
      result.push({ name: file.slice(0, -'.batch'.length), header: readHeader(await readFile(join(dir, sub, file)), file) });
    } catch {
      // gone meanwhile, or unreadable (a run quarantines those at start)
    }
  }
  return result;
}

export async function listQuarantine(dir: string): Promise<QuarantinedBatch[]> {
  const result: QuarantinedBatch[] = [];
  for (const { name, header } of await readBatchHeaders(dir, 'quarantine')) {
    let error = { code: 'unknown', message: '(no error file)', at: '' };
    try {
      error = JSON.parse(await readFile(join(dir, 'quarantine', `${name}.error.json`), 'utf8')) as typeof error;
    } catch {
      // keep the placeholder
    }
    result.push({ name, header, error });
  }
  return result;
}
