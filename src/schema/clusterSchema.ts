/**
 * The cluster form of etc/clickhouse/schema.sql, derived from the single-node statements by a
 * pure rewrite rather than kept as a second copy, so the two cannot drift apart
 * (docs/schema.md, "A replicated cluster"). Per statement:
 *
 * - `CREATE TABLE|MATERIALIZED VIEW IF NOT EXISTS name` gains `ON CLUSTER <cluster>`;
 * - `ENGINE = <X>MergeTree[(args)]` becomes `Replicated<X>MergeTree('<path>', '{replica}'[, args])`,
 *   with the ZooKeeper path `/clickhouse/tables/{shard}/{database}/<table>`;
 * - `non_replicated_deduplication_window = N` becomes `replicated_deduplication_window = W,
 *   replicated_deduplication_window_seconds = S` (sized by src/capacity/fleet.ts);
 * - whole-line `--` comments are dropped: they describe the single-node form.
 *
 * Anything it does not recognise (another statement kind, a view with its own engine, a table
 * without a dedup window, an engine that is already replicated) is an error, not a guess: a
 * schema change must come with a rewrite the tests check.
 */

export interface ClusterOptions {
  /** The cluster name of `remote_servers`, or a macro such as `{cluster}`. */
  readonly cluster: string;
  /** `replicated_deduplication_window`, in blocks. */
  readonly windowBlocks: number;
  /** `replicated_deduplication_window_seconds`. */
  readonly windowSeconds: number;
}

/** The macros every replica's config must define (docs/schema.md). */
export const REPLICA_MACROS = ['shard', 'replica'] as const;

export class ClusterSchemaError extends Error {}

const CLUSTER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const CLUSTER_MACRO = /^\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/** `ON CLUSTER` operand: a name as a quoted identifier, a `{macro}` as a string (ClickHouse expands it). */
export function clusterOperand(cluster: string): string {
  if (CLUSTER_MACRO.test(cluster)) return `'${cluster}'`;
  if (CLUSTER_NAME.test(cluster)) return `\`${cluster}\``;
  throw new ClusterSchemaError(`--cluster must be a cluster name (letters, digits, _ . -) or a macro such as {cluster} (got ${JSON.stringify(cluster)})`);
}

/** The ZooKeeper path of a table's replicas: one per shard and database, the table by name. */
export function zooKeeperPath(table: string): string {
  return `/clickhouse/tables/{shard}/{database}/${table}`;
}

const HEAD = /^CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS ([A-Za-z_][A-Za-z0-9_]*)(?=\s)/;
/** `ENGINE = XMergeTree` with optional arguments, which may nest one level: `((a, b))`. */
const ENGINE = /\bENGINE\s*=\s*([A-Za-z]*MergeTree)\b(?:\s*\(((?:[^()]|\([^()]*\))*)\))?/;
const WINDOW = /\bnon_replicated_deduplication_window\s*=\s*\d+/;

/** One single-node statement → its cluster form. */
export function toClusterStatement(statement: string, options: ClusterOptions): string {
  const sql = statement.split('\n').filter((line) => !line.trim().startsWith('--')).join('\n').trim();
  const head = HEAD.exec(sql);
  if (!head) throw new ClusterSchemaError(`no cluster form for a statement that is not CREATE TABLE|MATERIALIZED VIEW IF NOT EXISTS: ${sql.slice(0, 80)}`);
  const [matched, kind, name] = head as unknown as [string, string, string];
  const onCluster = `${matched} ON CLUSTER ${clusterOperand(options.cluster)}`;
  const engine = ENGINE.exec(sql);
  if (kind === 'MATERIALIZED VIEW') {
    if (engine || !/\sTO\s/.test(sql)) throw new ClusterSchemaError(`materialized view ${name} must write TO a table (its own engine would not be replicated)`);
    return onCluster + sql.slice(matched.length);
  }
  if (!engine) throw new ClusterSchemaError(`table ${name} has no MergeTree-family engine`);
  const [engineText, family, args] = engine as unknown as [string, string, string | undefined];
  if (family.startsWith('Replicated')) throw new ClusterSchemaError(`table ${name} is already ${family}`);
  if (!WINDOW.test(sql)) throw new ClusterSchemaError(`table ${name} sets no non_replicated_deduplication_window: every table that receives inserts must deduplicate`);
  const engineArgs = [`'${zooKeeperPath(name)}'`, `'{replica}'`, ...(args !== undefined && args.trim() !== '' ? [args.trim()] : [])];
  const replicated = `ENGINE = Replicated${family}(${engineArgs.join(', ')})`;
  const windows = `replicated_deduplication_window = ${options.windowBlocks}, replicated_deduplication_window_seconds = ${options.windowSeconds}`;
  return (onCluster + sql.slice(matched.length)).replace(engineText, () => replicated).replace(WINDOW, () => windows);
}

/** The statements migrate sends: the file's own without a cluster, byte for byte; rewritten with one. */
export function schemaStatements(statements: readonly string[], options?: ClusterOptions): string[] {
  return options === undefined ? [...statements] : statements.map((statement) => toClusterStatement(statement, options));
}
