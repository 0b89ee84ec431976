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
 * Options: --records N (200000 per run)  --datasets uniform,realistic  --fast zstd:3
 *          --strong br:11  --body-bytes 1048576
 * Prints a markdown table to stdout, progress on a TTY to stderr.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { NEVER, Subject, lastValueFrom, tap } from 'rxjs';
import type { Codec, OffsetChunk, SourceMessage } from '../src/domain/batch.ts';
import { decodeRecord } from '../src/domain/decodeRecord.ts';
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
import { uniformRecords } from '../src/synthetic/uniformDataset.ts';

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
process.stdout.write(lines.join('\n') + '\n');
