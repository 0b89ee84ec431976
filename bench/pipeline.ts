/**
 * `npm run bench:pipeline`: records per second per core through the product's own chain,
 * decode → anonymize → seal (measuring each full body) → encode → compress, from
 * pre-produced Cap'n Proto buffers, with no Kafka and no network in the loop.
 *
 * A benchmark, not a test. Each (dataset, codec) runs in a child process of its own, so
 * that its peak RSS is its own. CPU time is the process's user + system time
 * (`process.cpuUsage`), which includes the libuv threads that compress: records ÷ CPU
 * seconds is records per second on one core. The sustainable rate is what this run's
 * full bodies carry through a 1r/m × 1 MiB proxy (rows per full body ÷ 60 s), and the CPU
 * it costs is that rate ÷ records per CPU second, per minute.
 *
 * A second table measures hostile input on one core, without the codec: how
 * many malformed messages a second decode + validate rejects (segment-count bombs,
 * truncations, rewritten segment tables and pointers), next to the rate of valid ones, and
 * what anonymizing addresses inside URLs (ANONYMIZE_URL_ADDRESSES) costs per record.
 *
 * Options: --records N (200000 per run)  --datasets uniform,realistic  --fast zstd:3
 *          --strong br:11  --body-bytes 1048576
 * Prints a markdown table to stdout, progress on a TTY to stderr.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { NEVER, Subject, lastValueFrom, tap } from 'rxjs';
import type { Codec, OffsetChunk, SourceMessage } from '../src/domain/batch.ts';
import { decodeRecord } from '../src/domain/decodeRecord.ts';
import { validateRecord } from '../src/domain/validateRecord.ts';
import { encodeRecord } from '../src/domain/encodeRecord.ts';
import type { HttpLogRow } from '../src/domain/httpLogRow.ts';
import { compress, CODECS, LEVEL_RANGE } from '../src/encode/compress.ts';
import { encodeInsertBody } from '../src/encode/insertBody.ts';
import { INSERT_FORMAT, insertRowSize } from '../src/encode/insertBody.ts';
import { anonymizeAddresses } from '../src/operators/anonymizeAddresses.ts';
import { decodeRecords } from '../src/operators/decodeRecords.ts';
import { encodeBatches } from '../src/operators/encodeBatches.ts';
import { sealBatches } from '../src/operators/sealBatches.ts';
import { progress } from '../src/cli/progress.ts';
import { realisticRecords } from '../src/synthetic/realisticDataset.ts';
import { SplitMix64, uniformRecords } from '../src/synthetic/uniformDataset.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    datasets: { type: 'string', default: 'uniform,realistic' },
    fast: { type: 'string', default: 'zstd:3' },
    strong: { type: 'string', default: 'br:11' },
    'body-bytes': { type: 'string', default: String(1 << 20) },
    // Internal: run one measurement and print it as JSON.
    child: { type: 'string' },
  },
});

const SECONDS_PER_REQUEST = 60;
/** Messages per chunk, about what one Kafka fetch hands over. */
const CHUNK = 1_000;
/** Rows decoded but not yet sealed, at most: the Kafka source's outstanding limit plays this part in the product. */
const OUTSTANDING = 250_000;

function fail(message: string): never {
  process.stderr.write(`bench:pipeline: ${message}\n`);
  process.exit(2);
}

function parseCodec(spec: string): { codec: Codec; level: number } {
  const [codec, levelText] = spec.split(':');
  if (!CODECS.includes(codec as Codec)) fail(`unknown codec in "${spec}": expected one of ${CODECS.join(', ')}, as codec:level`);
  const level = Number(levelText);
  const [low, high] = LEVEL_RANGE[codec as Codec];
  if (!Number.isInteger(level) || level < low || level > high) fail(`level in "${spec}" must be an integer in [${low}, ${high}]`);
  return { codec: codec as Codec, level };
}

interface ChildResult {
  readonly dataset: string;
  readonly codec: string;
  readonly records: number;
  readonly cpuSeconds: number;
  readonly wallSeconds: number;
  readonly bodies: number;
  readonly fullBodies: number;
  readonly rowsPerFullBody: number;
  readonly meanFill: number;
  readonly measurements: number;
  readonly peakRssMiB: number;
  /** decode + anonymize alone, same records: the part that does not depend on the codec. */
  readonly decodeOnlyPerCpuSecond: number;
}

async function runChild(spec: string): Promise<ChildResult> {
  const [dataset, codecSpec] = spec.split('/') as [string, string];
  const { codec, level } = parseCodec(codecSpec);
  const records = Number(values.records);
  const bodyBytes = Number(values['body-bytes']);
  const generate = dataset === 'realistic' ? realisticRecords : uniformRecords;
  const source = generate({ seed: 1n, startMillis: Date.UTC(2026, 10, 1), rate: 200 });
  // Pre-produced: the Cap'n Proto messages as Kafka would hand them over.
  const chunks: OffsetChunk<SourceMessage>[] = [];
  for (let start = 0; start < records; start += CHUNK) {
    const items: SourceMessage[] = [];
    for (let offset = start; offset < Math.min(records, start + CHUNK); offset++) {
      items.push({ partition: 0, offset, value: encodeRecord(source.next().value!) });
    }
    chunks.push({ partition: 0, items, itemOffsets: items.map((m) => m.offset), lastOffset: start + items.length - 1 });
  }

  // decode + anonymize alone.
  const decodeStart = process.cpuUsage();
  const input$ = new Subject<OffsetChunk<SourceMessage>>();
  const decoded = lastValueFrom(input$.pipe(decodeRecords({ decode: decodeRecord }), anonymizeAddresses()), { defaultValue: undefined });
  for (const chunk of chunks) input$.next(chunk);
  input$.complete();
  await decoded;
  const decodeCpu = process.cpuUsage(decodeStart);
  const decodeOnlyPerCpuSecond = records / ((decodeCpu.user + decodeCpu.system) / 1e6);

  // The whole chain, with the product's fit: every full body is measured, then sealed.
  let sealedRows = 0;
  let decodedRows = 0;
  let measurements = 0;
  const bodies: Array<{ rows: number; bytes: number; full: boolean }> = [];
  const chain$ = new Subject<OffsetChunk<SourceMessage>>();
  const compressBody = (raw: Uint8Array) => compress(codec, level, raw);
  const bar = progress(`${dataset} ${codec}-${level}`, records, { unit: 'records' });
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  const done = lastValueFrom(
    chain$.pipe(
      decodeRecords({ decode: decodeRecord }),
      anonymizeAddresses(),
      tap((chunk) => (decodedRows += chunk.items.length)),
      sealBatches<HttpLogRow>({
        proxyReady$: NEVER,
        sizeOf: insertRowSize,
        maxRows: 200_000,
        fit: {
          limit: bodyBytes,
          measure: async (rows) => {
            measurements++;
            const raw = encodeInsertBody(rows);
            return { body: await compressBody(raw), uncompressedBytes: raw.byteLength };
          },
        },
      }),
      tap((batch) => {
        sealedRows += batch.rows.length;
        bar.update(sealedRows);
      }),
      encodeBatches({ encode: encodeInsertBody, format: INSERT_FORMAT, compress: compressBody, codec, maxBodyBytes: bodyBytes }),
      tap((batch) => bodies.push({ rows: batch.rowCount, bytes: batch.body.byteLength, full: batch.body.byteLength >= 0.95 * bodyBytes })),
    ),
    { defaultValue: undefined },
  );
  for (const chunk of chunks) {
    // Backpressure as the Kafka source gives it: wait while too much is decoded and unsealed.
    while (decodedRows - sealedRows > OUTSTANDING) await new Promise((resolve) => setTimeout(resolve, 5));
    chain$.next(chunk);
    await new Promise((resolve) => setImmediate(resolve));
  }
  chain$.complete();
  await done;
  const cpu = process.cpuUsage(cpuStart);
  const wallSeconds = (performance.now() - wallStart) / 1000;
  bar.done(`${records} records in ${wallSeconds.toFixed(1)} s`);
  const full = bodies.filter((body) => body.full);
  return {
    dataset,
    codec: `${codec}-${level}`,
    records,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    wallSeconds,
    bodies: bodies.length,
    fullBodies: full.length,
    rowsPerFullBody: full.length ? full.reduce((sum, body) => sum + body.rows, 0) / full.length : NaN,
    meanFill: full.length ? full.reduce((sum, body) => sum + body.bytes, 0) / full.length / bodyBytes : NaN,
    measurements,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    decodeOnlyPerCpuSecond,
  };
}

interface HostileResult {
  readonly dataset: string;
  readonly validPerCpuSecond: number;
  readonly malformedPerCpuSecond: number;
  readonly rejectedShare: number;
  readonly anonymizeUrlsOn: number;
  readonly anonymizeUrlsOff: number;
}

/** CPU seconds (user + system) that `work` takes. */
function cpuSecondsOf(work: () => void): number {
  const start = process.cpuUsage();
  work();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

/** Malformed copies of valid messages, as an adversary sends them: mostly segment-table garbage (the expensive case before the fix). */
function malformedCopy(random: SplitMix64, valid: Uint8Array): Uint8Array {
  const kind = random.below(4);
  if (kind === 0) {
    // 16 bytes claiming 2^25 segments.
    const bomb = new Uint8Array(16);
    new DataView(bomb.buffer).setUint32(0, 0x01ff_ffff, true);
    return bomb;
  }
  const bytes = Uint8Array.from(valid);
  const view = new DataView(bytes.buffer);
  if (kind === 1) view.setUint32(0, 1 + random.below(0xffff_fffe), true); // any segment count
  else if (kind === 2) view.setUint32(4, bytes.byteLength / 8 + 1 + random.below(1 << 20), true); // a segment longer than the message
  else return bytes.subarray(0, 8 + random.below(bytes.byteLength - 8)); // truncated
  return bytes;
}

async function runHostile(dataset: string): Promise<HostileResult> {
  const records = Math.min(Number(values.records), 200_000);
  const generate = dataset === 'realistic' ? realisticRecords : uniformRecords;
  const source = generate({ seed: 2n, startMillis: Date.UTC(2026, 10, 1), rate: 200 });
  const random = new SplitMix64(3n);
  const valid: OffsetChunk<SourceMessage>[] = [];
  const malformed: OffsetChunk<SourceMessage>[] = [];
  for (let start = 0; start < records; start += CHUNK) {
    const good: SourceMessage[] = [];
    const bad: SourceMessage[] = [];
    for (let offset = start; offset < Math.min(records, start + CHUNK); offset++) {
      const value = encodeRecord(source.next().value!);
      good.push({ partition: 0, offset, value });
      bad.push({ partition: 0, offset, value: malformedCopy(random, value) });
    }
    valid.push({ partition: 0, items: good, itemOffsets: good.map((m) => m.offset), lastOffset: start + good.length - 1 });
    malformed.push({ partition: 0, items: bad, itemOffsets: bad.map((m) => m.offset), lastOffset: start + bad.length - 1 });
  }
  /** CPU seconds to push every chunk through `operators` (synchronous: map-based operators only). */
  const through = (chunks: OffsetChunk<SourceMessage>[], pipeline: (input$: Subject<OffsetChunk<SourceMessage>>) => { subscribe: (next: (chunk: { items: readonly unknown[]; rejected?: readonly unknown[] }) => void) => unknown }): { cpu: number; rows: number; rejected: number } => {
    let rows = 0;
    let rejected = 0;
    const cpu = cpuSecondsOf(() => {
      const input$ = new Subject<OffsetChunk<SourceMessage>>();
      pipeline(input$).subscribe((chunk) => {
        rows += chunk.items.length;
        rejected += chunk.rejected?.length ?? 0;
      });
      for (const chunk of chunks) input$.next(chunk);
      input$.complete();
    });
    return { cpu, rows, rejected };
  };
  const decodeOnly = (input$: Subject<OffsetChunk<SourceMessage>>) => input$.pipe(decodeRecords({ decode: decodeRecord, validate: validateRecord }));
  // Warm up the JIT on both kinds first, as a long-running process would be.
  through(valid.slice(0, 20), decodeOnly);
  through(malformed.slice(0, 20), decodeOnly);
  const withUrls = (on: boolean) => (input$: Subject<OffsetChunk<SourceMessage>>) =>
    input$.pipe(decodeRecords({ decode: decodeRecord, validate: validateRecord }), anonymizeAddresses({ anonymizeUrls: on }));
  through(valid.slice(0, 20), withUrls(true));
  // Each measured five times, interleaved, keeping the least CPU: the difference between
  // URL anonymization on and off is a few percent, less than a busy machine's jitter.
  const best = (runs: Array<{ cpu: number; rows: number; rejected: number }>) => runs.reduce((a, b) => (b.cpu < a.cpu ? b : a));
  const rounds = { good: [] as Array<ReturnType<typeof through>>, bad: [] as Array<ReturnType<typeof through>>, off: [] as Array<ReturnType<typeof through>>, on: [] as Array<ReturnType<typeof through>> };
  for (let round = 0; round < 5; round++) {
    rounds.good.push(through(valid, decodeOnly));
    rounds.bad.push(through(malformed, decodeOnly));
    rounds.off.push(through(valid, withUrls(false)));
    rounds.on.push(through(valid, withUrls(true)));
  }
  const [good, bad, off, on] = [best(rounds.good), best(rounds.bad), best(rounds.off), best(rounds.on)];
  if (good.rows !== records) fail(`${dataset}: ${records - good.rows} valid messages were rejected`);
  return {
    dataset,
    validPerCpuSecond: records / good.cpu,
    malformedPerCpuSecond: records / bad.cpu,
    rejectedShare: bad.rejected / records,
    anonymizeUrlsOn: records / on.cpu,
    anonymizeUrlsOff: records / off.cpu,
  };
}

if (values.child?.startsWith('hostile/')) {
  process.stdout.write(JSON.stringify(await runHostile(values.child.slice('hostile/'.length))) + '\n');
  process.exit(0);
}

if (values.child !== undefined) {
  process.stdout.write(JSON.stringify(await runChild(values.child)) + '\n');
  process.exit(0);
}

const records = Number(values.records);
if (!Number.isInteger(records) || records < 10_000) fail('--records must be an integer ≥ 10000 (enough for several full bodies)');
const datasets = values.datasets!.split(',');
for (const dataset of datasets) if (dataset !== 'uniform' && dataset !== 'realistic') fail(`unknown dataset "${dataset}": uniform or realistic`);
const fast = parseCodec(values.fast!);
const strong = parseCodec(values.strong!);

const results: ChildResult[] = [];
for (const dataset of datasets) {
  for (const { codec, level } of [fast, strong]) {
    const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, ...process.argv.slice(2), '--child', `${dataset}/${codec}:${level}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (child.status !== 0) fail(`the ${dataset} ${codec}-${level} run failed (exit ${child.status})`);
    results.push(JSON.parse(child.stdout.trim().split('\n').at(-1)!) as ChildResult);
  }
}

const hostile: HostileResult[] = [];
for (const dataset of datasets) {
  const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, ...process.argv.slice(2), '--child', `hostile/${dataset}`], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 20 });
  if (child.status !== 0) fail(`the ${dataset} hostile-input run failed (exit ${child.status})`);
  hostile.push(JSON.parse(child.stdout.trim().split('\n').at(-1)!) as HostileResult);
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');
const lines = [
  `Records through decode → anonymize → seal (fit, measuring each body) → encode → compress, ${fmt(records)} per run, ${Number(values['body-bytes'])} B bodies.`,
  '',
  '| dataset | codec | records/s per core (CPU) | records/s (wall) | decode + anonymize alone, records/s per core | full bodies: rows each, fill | measurements per body | sustainable rate (1r/m) | CPU s per minute at it | share of a core | peak RSS |',
  '|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|',
];
for (const result of results) {
  const perCore = result.records / result.cpuSeconds;
  // The sustainable rate is set by the strongest codec's rows per body (the product's default).
  const strongest = results.find((r) => r.dataset === result.dataset && r.codec === `${strong.codec}-${strong.level}`)!;
  const sustainable = strongest.rowsPerFullBody / SECONDS_PER_REQUEST;
  const cpuPerMinute = (sustainable * 60) / perCore;
  lines.push(
    `| ${result.dataset} | ${result.codec} | ${fmt(perCore)} | ${fmt(result.records / result.wallSeconds)} | ${fmt(result.decodeOnlyPerCpuSecond)} | ` +
      `${result.fullBodies} × ${fmt(result.rowsPerFullBody)} rows, ${fmt(result.meanFill * 100, 1)} % | ${fmt(result.measurements / Math.max(1, result.bodies), 2)} | ` +
      `${fmt(sustainable)} rows/s | ${fmt(cpuPerMinute, 2)} | ${fmt((cpuPerMinute / 60) * 100, 1)} % | ${fmt(result.peakRssMiB)} MiB |`,
  );
}
lines.push(
  '',
  `Targets (docs/performance.md): ≥ 100,000 records/s on one core with the fast codec (${fast.codec}-${fast.level}); < 5 % of a core at the sustainable rate.`,
);
lines.push(
  '',
  `Hostile input, decode + validate on one core, ${fmt(Math.min(records, 200_000))} messages per kind, best of 5; URL anonymization: decode + validate + anonymize with ANONYMIZE_URL_ADDRESSES on and off.`,
  '',
  '| dataset | valid messages/s per core (decoded + validated) | malformed messages/s per core (rejected) | rejected share | URL anonymization off, records/s | on, records/s | cost per record |',
  '|---|---:|---:|---:|---:|---:|---:|',
);
for (const result of hostile) {
  const costNs = (1 / result.anonymizeUrlsOn - 1 / result.anonymizeUrlsOff) * 1e9;
  lines.push(
    `| ${result.dataset} | ${fmt(result.validPerCpuSecond)} | ${fmt(result.malformedPerCpuSecond)} | ${fmt(result.rejectedShare * 100, 1)} % | ` +
      `${fmt(result.anonymizeUrlsOff)} | ${fmt(result.anonymizeUrlsOn)} | ${fmt(costNs)} ns (${fmt((result.anonymizeUrlsOff / result.anonymizeUrlsOn - 1) * 100, 1)} %) |`,
  );
}
lines.push('', 'Target: ≥ 100,000 malformed messages/s rejected on one core.');
process.stdout.write(lines.join('\n') + '\n');
