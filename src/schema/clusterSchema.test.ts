// The single-node → cluster rewrite of the schema, as a table of cases, and on the real
// etc/clickhouse/schema.sql. That the engine parses the result is test/schema/clusterDdl.test.ts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { splitStatements } from '../cli/migrate.ts';
import { ClusterSchemaError, clusterOperand, schemaStatements, toClusterStatement } from './clusterSchema.ts';

const OPTIONS = { cluster: 'logs', windowBlocks: 12_345, windowSeconds: 6_789 };
const SCHEMA = readFileSync(new URL('../../etc/clickhouse/schema.sql', import.meta.url), 'utf8');

describe('toClusterStatement', () => {
  it.each([
    [
      'a MergeTree table',
      "-- comment\nCREATE TABLE IF NOT EXISTS t\n(a UInt8)\nENGINE = MergeTree\nORDER BY a\nSETTINGS non_replicated_deduplication_window = 10000, ttl_only_drop_parts = 1",
      "CREATE TABLE IF NOT EXISTS t ON CLUSTER `logs`\n(a UInt8)\nENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/t', '{replica}')\nORDER BY a\n" +
        'SETTINGS replicated_deduplication_window = 12345, replicated_deduplication_window_seconds = 6789, ttl_only_drop_parts = 1',
    ],
    [
      'a SummingMergeTree with nested arguments',
      'CREATE TABLE IF NOT EXISTS s (a UInt8, n UInt64) ENGINE = SummingMergeTree((n)) ORDER BY a SETTINGS non_replicated_deduplication_window = 5',
      "CREATE TABLE IF NOT EXISTS s ON CLUSTER `logs` (a UInt8, n UInt64) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/s', '{replica}', (n)) ORDER BY a " +
        'SETTINGS replicated_deduplication_window = 12345, replicated_deduplication_window_seconds = 6789',
    ],
    [
      'an empty argument list, and a projection in the columns',
      'CREATE TABLE IF NOT EXISTS r (a UInt8, PROJECTION p (SELECT a GROUP BY a)) ENGINE = ReplacingMergeTree() ORDER BY a SETTINGS x = 1, non_replicated_deduplication_window = 7',
      "CREATE TABLE IF NOT EXISTS r ON CLUSTER `logs` (a UInt8, PROJECTION p (SELECT a GROUP BY a)) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/r', '{replica}') ORDER BY a " +
        'SETTINGS x = 1, replicated_deduplication_window = 12345, replicated_deduplication_window_seconds = 6789',
    ],
    [
      'a materialized view TO a table',
      '-- the view\nCREATE MATERIALIZED VIEW IF NOT EXISTS v TO t AS\nSELECT a FROM src',
      'CREATE MATERIALIZED VIEW IF NOT EXISTS v ON CLUSTER `logs` TO t AS\nSELECT a FROM src',
    ],
  ])('%s', (_, single, cluster) => {
    expect(toClusterStatement(single, OPTIONS)).toBe(cluster);
  });

  it.each([
    ['not a CREATE … IF NOT EXISTS', 'ALTER TABLE t MODIFY TTL a', /not CREATE/],
    ['CREATE without IF NOT EXISTS', 'CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a', /not CREATE/],
    ['a view with its own engine', 'CREATE MATERIALIZED VIEW IF NOT EXISTS v ENGINE = MergeTree ORDER BY a AS SELECT 1 AS a', /must write TO a table/],
    ['a table with no MergeTree engine', 'CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = Memory', /no MergeTree-family engine/],
    ['an engine already replicated', "CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a SETTINGS non_replicated_deduplication_window = 1", /already ReplicatedMergeTree/],
    ['a table with no dedup window', 'CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = MergeTree ORDER BY a', /no non_replicated_deduplication_window/],
  ])('refuses %s', (_, single, message) => {
    expect(() => toClusterStatement(single, OPTIONS)).toThrow(ClusterSchemaError);
    expect(() => toClusterStatement(single, OPTIONS)).toThrow(message);
  });

  it.each([
    ['logs', '`logs`'],
    ['prod-eu.1', '`prod-eu.1`'],
    ['{cluster}', "'{cluster}'"],
  ])('quotes the cluster %s as %s', (name, operand) => {
    expect(clusterOperand(name)).toBe(operand);
  });

  it.each(['', 'a b', 'x`; DROP TABLE t', "{a'}", '-x'])('refuses the cluster name %j', (name) => {
    expect(() => clusterOperand(name)).toThrow(ClusterSchemaError);
  });
});

describe('schemaStatements on etc/clickhouse/schema.sql', () => {
  const single = splitStatements(SCHEMA);

  it('without a cluster: the file\'s statements, byte for byte', () => {
    const sent = schemaStatements(single);
    expect(sent).toEqual(single);
    // Each statement is a verbatim slice of the file.
    for (const statement of sent) expect(SCHEMA).toContain(statement);
    expect(sent.join('\n')).not.toMatch(/ON CLUSTER|ENGINE = Replicated|\breplicated_deduplication/);
  });

  it('with a cluster: every table replicated with the windows, every statement ON CLUSTER', () => {
    const cluster = schemaStatements(single, OPTIONS);
    expect(cluster).toHaveLength(single.length);
    const tables = cluster.filter((s) => s.startsWith('CREATE TABLE'));
    const views = cluster.filter((s) => s.startsWith('CREATE MATERIALIZED VIEW'));
    expect(tables).toHaveLength(4);
    expect(views).toHaveLength(3);
    for (const statement of cluster) {
      expect(statement).toMatch(/^CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS \w+ ON CLUSTER `logs`\s/);
      expect(statement).not.toMatch(/non_replicated_deduplication_window|^\s*--/m);
    }
    for (const statement of tables) {
      const name = /EXISTS (\w+)/.exec(statement)![1]!;
      expect(statement).toContain(`ENGINE = Replicated${name === 'http_log' ? '' : 'Summing'}MergeTree('/clickhouse/tables/{shard}/{database}/${name}', '{replica}'`);
      expect(statement).toContain('replicated_deduplication_window = 12345, replicated_deduplication_window_seconds = 6789');
    }
    // Everything else is unchanged: undo the rewrite and compare with the comment-free original.
    const undo = (s: string): string => s
      .replace(/ ON CLUSTER `logs`/, '')
      .replace(/Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?/, (_, family: string) => `${family}(`)
      .replace('MergeTree()', 'MergeTree')
      .replace('replicated_deduplication_window = 12345, replicated_deduplication_window_seconds = 6789', 'non_replicated_deduplication_window = 10000');
    const uncommented = single.map((s) => s.split('\n').filter((l) => !l.trim().startsWith('--')).join('\n').trim());
    expect(cluster.map(undo)).toEqual(uncommented);
  });
});
