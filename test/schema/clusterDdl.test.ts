// `anonymizer migrate --cluster` through the real engine (chdb), as far as it goes here
// (docs/schema.md, "A replicated cluster"):
// - without --cluster, the statements migrate sends are etc/clickhouse/schema.sql's, byte for byte;
// - with it, every statement parses (formatQuery), as ON CLUSTER with Replicated engines,
//   the macros and the computed windows;
// - with a real Apache ZooKeeper, the engine creates every replicated table and registers its
//   replica in ZooKeeper (the settings names are checked by the engine), refuses ON CLUSTER
//   (no distributed DDL in chdb), and never activates the replica: so the token's dedup on a
//   replicated table cannot be exercised here. The last assertion says so, and fails the day
//   chdb can, as the signal to add that test.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, REPO_ROOT } from '../../stack/index.ts';
import { startZooKeeper } from '../../stack/zookeeper.ts';
import type { ServiceHandle } from '../../stack/index.ts';
import { splitStatements } from '../../src/cli/migrate.ts';
import { BIN } from '../support/e2eStack.ts';

const SCHEMA = readFileSync(join(REPO_ROOT, 'etc/clickhouse/schema.sql'), 'utf8');
const PROBE = join(REPO_ROOT, 'test/schema/chdbProbe.ts');
const TABLES = ['http_log', 'http_log_totals_1d', 'http_log_totals_1h', 'http_log_totals_1m'];
/** 30 instances, 6 h: 2 blocks × 30 × (⌈21,600 ÷ 63⌉ + 1 = 344 slots) = 20,640 blocks; 21,600 + 63 s. */
const ARGS = ['--cluster', 'logs', '--instances', '30', '--outage', '6h'];
const WINDOWS = 'replicated_deduplication_window = 20640, replicated_deduplication_window_seconds = 21663';

type ProbeResult = { ok: true; text: string } | { ok: false; code: number; error: string };

const cleanEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  for (const name of ['PROXY_MIN_INTERVAL_MS', 'PROXY_MARGIN_MS', 'PROXY_MAX_BODY_BYTES', 'SPOOL_MAX_BYTES']) delete env[name];
  return env;
};
const migratePrint = (args: string[]) => {
  const run = spawnSync(process.execPath, [BIN, 'migrate', '--print', ...args], { encoding: 'utf8', env: cleanEnv(), timeout: 30_000 });
  expect(run.status, run.stderr).toBe(0);
  return run;
};
const probe = (queries: string[], opts: { dataDir?: string; configFile?: string; kill?: boolean } = {}): ProbeResult[] => {
  const run = spawnSync(process.execPath, [PROBE], { input: JSON.stringify({ ...opts, queries }), encoding: 'utf8', timeout: 90_000 });
  if (opts.kill) expect(run.signal, run.stderr).toBe('SIGKILL');
  else expect(run.status, run.stderr).toBe(0);
  return run.stdout.trim().split('\n').map((line) => JSON.parse(line) as ProbeResult);
};
const quote = (sql: string): string => `'${sql.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
const textOf = (result: ProbeResult | undefined): string => {
  if (!result?.ok) throw new Error(`query failed: ${JSON.stringify(result)}`);
  return result.text;
};

describe('migrate --cluster: the DDL on the engine', () => {
  it('without --cluster sends the schema file\'s statements, byte for byte', () => {
    const run = migratePrint([]);
    const statements = splitStatements(SCHEMA);
    expect(statements).toHaveLength(7);
    expect(run.stdout).toBe(statements.map((s) => `${s};\n`).join('\n'));
    expect(run.stderr).toBe('');
  });

  it('every cluster statement parses, ON CLUSTER, replicated, with the windows', () => {
    const run = migratePrint(ARGS);
    expect(run.stderr).toContain('replicated_deduplication_window = 20640');
    const statements = splitStatements(run.stdout);
    expect(statements).toHaveLength(7);
    const broken = statements[0]!.slice(0, statements[0]!.indexOf('ORDER BY') - 3); // cut inside the engine's parentheses
    const results = probe([...statements, broken].map((s) => `SELECT formatQuery(${quote(s)})`));
    // The control: a statement that does not parse is refused, so the check can fail.
    expect(results.pop()).toMatchObject({ ok: false, code: 62 });
    const formatted = results.map(textOf);
    for (const [i, text] of formatted.entries()) expect(text, statements[i]).toMatch(/^CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS \w+ ON CLUSTER logs/);
    for (const table of TABLES) {
      const text = formatted.find((f) => f.startsWith(`CREATE TABLE IF NOT EXISTS ${table} `))!;
      const family = table === 'http_log' ? 'MergeTree' : 'SummingMergeTree';
      expect(text).toContain(`ENGINE = Replicated${family}(\\'/clickhouse/tables/{shard}/{database}/${table}\\', \\'{replica}\\'`);
      expect(text).toContain(WINDOWS);
    }
    expect(formatted.filter((f) => /^CREATE MATERIALIZED VIEW IF NOT EXISTS \w+_mv ON CLUSTER logs TO http_log_totals_1[mhd]\\n/.test(f))).toHaveLength(3);
  });

  describe('with a real ZooKeeper', () => {
    let dir: string;
    let zk: ServiceHandle & { connect: string };

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'cluster-ddl-'));
      zk = await startZooKeeper({ dir: join(dir, 'zk'), port: await freePort() });
    });
    afterAll(async () => {
      await zk?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('creates and registers every replicated table, refuses ON CLUSTER, and cannot activate a replica', () => {
      const [host, port] = zk.connect.split(':');
      const configFile = join(dir, 'chdb.xml');
      // What a replica's config.xml holds for this schema: ZooKeeper, the macros, the cluster,
      // and the interserver address replication requires (chdb's embedded engine never takes
      // it: below). No port here is listened on or contacted; they only need to be set.
      writeFileSync(configFile, `<clickhouse>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>${port}</interserver_http_port>
  <zookeeper><node><host>${host}</host><port>${port}</port></node></zookeeper>
  <macros><shard>01</shard><replica>r1</replica></macros>
  <remote_servers><logs><shard><replica><host>127.0.0.1</host><port>${port}</port></replica></shard></logs></remote_servers>
</clickhouse>
`);
      const statements = splitStatements(migratePrint(ARGS).stdout);
      const local = statements.map((s) => s.replace(' ON CLUSTER `logs`', ''));
      const misspelt = local[0]!.replace(/EXISTS http_log\b/, 'EXISTS misspelt').replace("/http_log'", "/misspelt'")
        .replace('replicated_deduplication_window =', 'replicated_deduplication_windoww =');
      const results = probe([
        statements[0]!,
        ...local,
        misspelt,
        // The engine's restarting thread retries activation every few seconds: give it two goes.
        'SELECT sleep(3)', 'SELECT sleep(3)',
        "SELECT name, engine, position(engine_full, '" + WINDOWS + "') > 0 FROM system.tables WHERE database = 'default' ORDER BY name",
        'SELECT table, zookeeper_path, replica_name, total_replicas, active_replicas, is_readonly FROM system.replicas ORDER BY table',
      ], { dataDir: join(dir, 'chdb'), configFile, kill: true });
      // No distributed DDL in the embedded engine.
      expect(results[0]).toMatchObject({ ok: false, code: 392 });
      // Every statement, without ON CLUSTER, is accepted: engines, macros, settings names.
      for (const [i, result] of results.slice(1, 1 + local.length).entries()) expect(result, local[i]).toMatchObject({ ok: true });
      // The engine checks the settings' names (a control: a misspelt one is refused).
      expect(results[1 + local.length]).toMatchObject({ ok: false, code: 115 });
      const tables = textOf(results.at(-2)).trim().split('\n').map((line) => line.split('\t'));
      expect(tables).toEqual([
        ['http_log', 'ReplicatedMergeTree', '1'],
        ['http_log_totals_1d', 'ReplicatedSummingMergeTree', '1'],
        ['http_log_totals_1d_mv', 'MaterializedView', '0'],
        ['http_log_totals_1h', 'ReplicatedSummingMergeTree', '1'],
        ['http_log_totals_1h_mv', 'MaterializedView', '0'],
        ['http_log_totals_1m', 'ReplicatedSummingMergeTree', '1'],
        ['http_log_totals_1m_mv', 'MaterializedView', '0'],
      ]);
      // Each replica is registered in ZooKeeper (total_replicas is read from it), under the
      // expanded path, and stays read-only: the engine cannot activate it, so no insert can run.
      const replicas = textOf(results.at(-1)).trim().split('\n').map((line) => line.split('\t'));
      expect(replicas, 'chdb now activates replicated tables: add the token dedup test (docs/schema.md)').toEqual(
        TABLES.map((table) => [table, `/clickhouse/tables/01/default/${table}`, 'r1', '1', '0', '1']));
    });
  });
});
