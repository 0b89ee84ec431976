/**
 * The package as a user gets it: `npm pack` of this checkout (prepack builds dist/), the
 * tarball installed into a fresh project outside the repository, and there the CLI through
 * `npx`, the library from JavaScript, and its declarations under a strict TypeScript
 * consumer with plain NodeNext settings. Nothing here reads the checkout's sources.
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packAndInstall, ROOT, USER_ENV, type PackResult } from '../support/packageInstall.ts';

const MANIFEST = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
const TYPES_NODE = (JSON.parse(readFileSync(join(ROOT, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string }).version;
/** Top-level paths that belong to the repository, never to the package. */
const NOT_SHIPPED = /^(?:test|bench|stack|scripts|src|docs|examples|\.ci|node_modules)\/|^(?:Dockerfile|docker-compose\.yml|tsconfig[^/]*\.json|vitest\.config\.ts|package-lock\.json)$|\.(?:test|spec)\.[jt]s$/;

let dir: string;
let project: string;
let packed: PackResult;

function run(command: string, args: readonly string[], options: { input?: Buffer | string; cwd?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd: options.cwd ?? project, env: USER_ENV, encoding: 'utf8', input: options.input ?? '', timeout: 60_000 });
}

describe('the npm package, installed from its tarball', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'anonymizer-pack-'));
    const started = Date.now();
    ({ packed, project } = packAndInstall(dir, [`@types/node@${TYPES_NODE}`]));
    process.stdout.write(`tarball: ${packed.filename}, ${packed.size} bytes (${packed.unpackedSize} unpacked), ${packed.entryCount} files; packed and installed in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }, 150_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ships dist (JavaScript, declarations, maps), bin, schema, etc/clickhouse, README and LICENSE, and nothing of the repository', () => {
    const paths = packed.files.map((file) => file.path);
    expect(paths.filter((path) => NOT_SHIPPED.test(path))).toEqual([]);
    for (const path of ['package.json', 'README.md', 'LICENSE', 'bin/anonymizer.js', 'dist/index.js', 'dist/index.d.ts', 'dist/index.js.map', 'dist/cli/main.js', 'schema/http_log.capnp', 'schema/http_log.capnp.js', 'etc/clickhouse/schema.sql']) {
      expect(paths).toContain(path);
    }
    // Every top-level entry is one the `files` list names.
    expect(new Set(paths.map((path) => path.split('/')[0]))).toEqual(new Set(['package.json', 'README.md', 'LICENSE', 'bin', 'dist', 'schema', 'etc']));
    expect(paths.filter((path) => path.startsWith('etc/') && !path.startsWith('etc/clickhouse/'))).toEqual([]);
  });

  it('npx anonymizer --help and --version work, the version being package.json\'s', () => {
    const help = run('npx', ['--no-install', 'anonymizer', '--help']);
    expect(help.stderr).toBe('');
    expect(help.status).toBe(0);
    for (const command of ['run', 'migrate', 'produce', 'inspect', 'spool', 'capacity']) expect(help.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    const version = run('npx', ['--no-install', 'anonymizer', '--version']);
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe(MANIFEST.version);
  });

  it('npx anonymizer inspect decodes a vector made by the official capnp from the shipped schema', () => {
    const schema = join(project, 'node_modules', MANIFEST.name, 'schema', 'http_log.capnp');
    const vector = execFileSync('capnp', ['encode', schema, 'HttpLogRecord'], {
      input: '(timestampEpochMilli = 1700000000123, resourceId = 18446744073709551615, bytesSent = 1234, requestTimeMilli = 56, responseStatus = 200, cacheStatus = "HIT", method = "GET", remoteAddr = "203.0.113.77", url = "/a")',
    });
    const inspect = run('npx', ['--no-install', 'anonymizer', 'inspect'], { input: vector });
    expect(inspect.stderr).toBe('');
    expect(inspect.status).toBe(0);
    expect(inspect.stdout.trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([
      { timestamp: '2023-11-14 22:13:20', resource_id: '18446744073709551615', bytes_sent: '1234', request_time_milli: '56', response_status: 200, cache_status: 'HIT', method: 'GET', remote_addr: '203.0.113.X', url: '/a' },
    ]);
  });

  it('imports from a .js file: the compiled entry inside node_modules, the public functions working', () => {
    writeFileSync(
      join(project, 'app.js'),
      `import { anonymizeAddress, createPipeline, encodeInsertBody, decodeInsertBody, AnonymizerError } from '${MANIFEST.name}';
const row = { timestamp: 1700000000, resourceId: 7n, bytesSent: 1n, requestTimeMilli: 2n, responseStatus: 200, cacheStatus: 'HIT', method: 'GET', remoteAddr: '1.2.3.X', url: '/x' };
console.log(JSON.stringify({
  entry: import.meta.resolve('${MANIFEST.name}'),
  address: anonymizeAddress('2001:db8:85a3::8a2e:370:7334').value,
  roundTrip: decodeInsertBody(encodeInsertBody([row]))[0].resourceId === 7n,
  createPipeline: typeof createPipeline,
  error: new AnonymizerError('x', 'ANON_X', false, 'processing') instanceof Error,
}));
`,
    );
    const result = run(process.execPath, ['app.js']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(out).toEqual({ entry: expect.stringMatching(/\/node_modules\/http-log-anonymizer\/dist\/index\.js$/), address: '2001:db8:85a3::X', roundTrip: true, createPipeline: 'function', error: true });
  });

  it('type-checks a strict TypeScript consumer with plain module NodeNext (no skipLibCheck), and refuses a wrong call', () => {
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', target: 'ES2022', noEmit: true, types: ['node'] }, include: ['consumer.ts'] }));
    writeFileSync(
      join(project, 'consumer.ts'),
      `import { anonymizeAddress, createPipeline, splitOversized, type HttpLogRow, type PipelineDeps, type InsertOutcome, type SpooledBatch, type SplitParts } from '${MANIFEST.name}';
import type { OperatorFunction } from 'rxjs';
const address: string = anonymizeAddress('192.0.2.1').value;
export const row: HttpLogRow = { timestamp: 1, resourceId: 1n, bytesSent: 1n, requestTimeMilli: 1n, responseStatus: 200, cacheStatus: 'HIT', method: 'GET', remoteAddr: address, url: '/' };
export async function embed(deps: PipelineDeps): Promise<number> {
  const pipeline = createPipeline(deps, { drain: true });
  let stored = 0;
  for await (const outcome of pipeline.outcomes()) {
    const o: InsertOutcome<SpooledBatch> = outcome;
    if (o.kind === 'stored') stored += o.batch.rowCount;
  }
  await pipeline.stop();
  return stored;
}
export const split: OperatorFunction<{ token: string; rows: readonly HttpLogRow[]; bodyBytes: number }, SplitParts> = splitOversized({ encode: () => new Uint8Array(0), format: 'Native', compress: async (body: Uint8Array) => body, codec: 'none' });
// @ts-expect-error: an address is a string (this line fails the check if the declarations were lost and everything were any)
anonymizeAddress(42);
`,
    );
    const result = run(TSC, ['-p', 'tsconfig.json']);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
