/**
 * How many of each thing a rate needs when one instance is not enough (docs/scaling.md):
 * instances on distinct client addresses, Kafka partitions, spool disk per instance for an
 * outage, and the replicated dedup windows that keep a retry after that outage stored once.
 * Pure arithmetic over the measured constants of ./model.ts; it talks to nothing.
 *
 * Why these quantities:
 * - The proxy passes one request per slot **per client address** (nginx `limit_req` keys on
 *   `$binary_remote_addr`), so one instance, or many behind one address, carries at most
 *   rows per request ÷ slot. Capacity grows only with distinct addresses.
 * - A partition is consumed by one instance of the group at a time, so instances beyond the
 *   partition count sit idle.
 * - During an outage each instance keeps ingesting into its spool; the spool must hold the
 *   outage's rows, and afterwards the backlog drains at what the instance has spare.
 */
import { ROWS_PER_REQUEST } from './model.ts';
import type { Dataset } from './model.ts';

/**
 * The share of its proxy budget each instance is planned to use. The rest drains the
 * backlog after an outage: at 80 % a backlog of T drains in 4 T (backlog ÷ spare = 0.8 ÷ 0.2).
 */
export const TARGET_UTILISATION = 0.8;

/**
 * Kafka partitions planned per instance. Partitions can be added but not removed, and adding
 * them moves keys between partitions, so plan room for the fleet to double.
 */
export const PARTITIONS_PER_INSTANCE = 2;

/**
 * Dedup blocks one insert can leave in a table: the tables are partitioned by day (the raw and
 * minute tables), month or year, and an insert is split into one block per partition it
 * touches, each deduplicated by the token plus its index. A batch holds at most an interval of
 * records, so it spans at most one partition boundary, hence two blocks.
 */
export const BLOCKS_PER_INSERT = 2;

/**
 * ClickHouse 26's defaults for a Replicated table (`system.merge_tree_settings`, checked on the
 * chdb 3.4 engine): 10,000 blocks, and 3,600 s. The computed windows never go below them: the
 * single-node schema's `non_replicated_deduplication_window` is 10,000 too.
 */
export const MIN_DEDUP_WINDOW_BLOCKS = 10_000;
export const MIN_DEDUP_WINDOW_SECONDS = 3_600;

export interface DedupWindowInput {
  /** SPOOL_MAX_BYTES: consumption pauses above it. */
  readonly spoolMaxBytes: number;
  /** Bytes of one full batch: PROXY_MAX_BODY_BYTES. */
  readonly batchBytes: number;
  /** Seconds per slot: PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS, in seconds. */
  readonly requestIntervalSeconds: number;
  /** Instances that insert into the same tables (each on its own address). */
  readonly instances: number;
  /** The outage to cover, seconds; default: the longest the spool holds at full load. */
  readonly outageSeconds?: number;
}

export interface DedupWindows {
  /** Full batches the spool holds: SPOOL_MAX_BYTES ÷ PROXY_MAX_BODY_BYTES, rounded down. */
  readonly batchesPerSpool: number;
  /** The outage the spool holds at full load: one full batch is sealed per slot, so batches × slot. */
  readonly spoolOutageSeconds: number;
  /** The outage the windows cover: the one given, else `spoolOutageSeconds`. */
  readonly outageSeconds: number;
  /** Slots from a batch's first attempt to its retry after the outage: ⌈outage ÷ slot⌉ + 1. */
  readonly slots: number;
  /** Blocks inserted into one table in that time: BLOCKS_PER_INSERT × instances × slots. */
  readonly blocksNeeded: number;
  /** `replicated_deduplication_window`: blocksNeeded, at least MIN_DEDUP_WINDOW_BLOCKS. */
  readonly windowBlocks: number;
  /** `replicated_deduplication_window_seconds`: outage + one slot, at least MIN_DEDUP_WINDOW_SECONDS. */
  readonly windowSeconds: number;
}

/**
 * The replicated dedup windows that keep a batch stored once when its first attempt reached
 * ClickHouse but its answer was lost, and its retry comes only after an outage.
 *
 * A batch is retried at the head of its instance's queue, so between its first attempt and
 * the retry that instance inserts nothing else; the other instances go on, one insert per
 * slot each. The window must still hold the batch's hashes when the retry comes: in blocks,
 * every block inserted into the table meanwhile; in seconds, the outage plus one slot.
 */
export function dedupWindows(input: DedupWindowInput): DedupWindows {
  const { spoolMaxBytes, batchBytes, requestIntervalSeconds, instances } = input;
  const batchesPerSpool = Math.max(1, Math.floor(spoolMaxBytes / batchBytes));
  const spoolOutageSeconds = batchesPerSpool * requestIntervalSeconds;
  const outageSeconds = input.outageSeconds ?? spoolOutageSeconds;
  const slots = Math.ceil(outageSeconds / requestIntervalSeconds) + 1;
  const blocksNeeded = BLOCKS_PER_INSERT * instances * slots;
  return {
    batchesPerSpool,
    spoolOutageSeconds,
    outageSeconds,
    slots,
    blocksNeeded,
    windowBlocks: Math.max(MIN_DEDUP_WINDOW_BLOCKS, blocksNeeded),
    windowSeconds: Math.max(MIN_DEDUP_WINDOW_SECONDS, Math.ceil(outageSeconds + requestIntervalSeconds)),
  };
}

export interface FleetInput {
  /** Average input rate of the whole fleet, rows per second. */
  readonly rate: number;
  readonly dataset: Dataset;
  /** Seconds per slot (PROXY_MIN_INTERVAL_MS + PROXY_MARGIN_MS). */
  readonly requestIntervalSeconds: number;
  /** The outage the spool must hold, seconds. */
  readonly outageSeconds: number;
  /** Bytes of one full batch (PROXY_MAX_BODY_BYTES), for the spool and the windows. */
  readonly batchBytes: number;
  /** SPOOL_MAX_BYTES, to say whether it is enough. */
  readonly spoolMaxBytes: number;
}

export interface FleetEstimate {
  /** Rows per second one address carries: rows per request ÷ slot. */
  readonly perInstanceMaxRate: number;
  /** Instances (distinct addresses) at 100 % of each budget: ⌈rate ÷ per-instance max⌉. */
  readonly minInstances: number;
  /** Instances planned at TARGET_UTILISATION: ⌈rate ÷ (per-instance max × target)⌉. */
  readonly instances: number;
  /** What each planned instance carries, rows per second, and its share of its budget. */
  readonly ratePerInstance: number;
  readonly utilisation: number;
  /** Partitions: at least one per instance; planned PARTITIONS_PER_INSTANCE per instance. */
  readonly minPartitions: number;
  readonly partitions: number;
  /** Spool per instance for the outage: the rows it ingests meanwhile, in full batches, plus the one being built. */
  readonly spoolBatchesPerInstance: number;
  readonly spoolBytesPerInstance: number;
  /** True when SPOOL_MAX_BYTES holds that. */
  readonly spoolFits: boolean;
  /** Seconds for an instance to drain the outage's backlog once delivery resumes: backlog ÷ spare rate. */
  readonly catchUpSeconds: number;
  /** Inserts ClickHouse receives per minute from the planned fleet. */
  readonly insertsPerMinute: number;
  /** The windows `migrate --cluster` would set for this fleet and outage. */
  readonly dedup: DedupWindows;
}

export function fleet(input: FleetInput): FleetEstimate {
  const { rate, dataset, requestIntervalSeconds, outageSeconds, batchBytes, spoolMaxBytes } = input;
  const rowsPerRequest = ROWS_PER_REQUEST[dataset];
  const perInstanceMaxRate = rowsPerRequest / requestIntervalSeconds;
  const minInstances = Math.max(1, Math.ceil(rate / perInstanceMaxRate));
  const instances = Math.max(1, Math.ceil(rate / (perInstanceMaxRate * TARGET_UTILISATION)));
  const ratePerInstance = rate / instances;
  const spoolBatchesPerInstance = Math.ceil((ratePerInstance * outageSeconds) / rowsPerRequest) + 1;
  const spoolBytesPerInstance = spoolBatchesPerInstance * batchBytes;
  const spare = perInstanceMaxRate - ratePerInstance;
  return {
    perInstanceMaxRate,
    minInstances,
    instances,
    ratePerInstance,
    utilisation: ratePerInstance / perInstanceMaxRate,
    minPartitions: instances,
    partitions: instances * PARTITIONS_PER_INSTANCE,
    spoolBatchesPerInstance,
    spoolBytesPerInstance,
    spoolFits: spoolBytesPerInstance <= spoolMaxBytes,
    catchUpSeconds: spare > 0 ? (ratePerInstance * outageSeconds) / spare : Number.POSITIVE_INFINITY,
    insertsPerMinute: (instances * 60) / requestIntervalSeconds,
    dedup: dedupWindows({ spoolMaxBytes, batchBytes, requestIntervalSeconds, instances, outageSeconds }),
  };
}

const OUTAGE_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, min: 60, h: 3_600, d: 86_400, w: 7 * 86_400 };
/** The longest outage accepted: a year. Past that the question is no longer the spool. */
export const MAX_OUTAGE_SECONDS = 366 * 86_400;

/** `90s`, `30m`, `6h`, `2d`, `1w`: seconds. Null when malformed, zero or over a year. */
export function parseOutage(text: string): number | null {
  const match = /^\s*(\d+)\s*(s|m|min|h|d|w)\s*$/i.exec(text);
  if (!match) return null;
  const seconds = Number(match[1]) * OUTAGE_UNITS[match[2]!.toLowerCase()]!;
  return seconds > 0 && seconds <= MAX_OUTAGE_SECONDS ? seconds : null;
}
