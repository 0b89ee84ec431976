import { Command } from 'commander';
import { listQuarantine, readBatchHeaders, type QuarantinedBatch } from '../io/spool.ts';
import { createLogger } from '../io/logger.ts';
import { openSpool } from './run.ts';
import { configFrom, withSettings } from './settings.ts';
import { KAFKA_CONNECTION_SETTINGS } from '../config.ts';

export function spoolCommand(): Command {
  const spool = new Command('spool').description('See and manage the local spool of sealed batches (SPOOL_DIR).');

  const list = new Command('list')
    .description('List the batches waiting to be sent and the quarantined ones (refused by ClickHouse, or failed their check at start), with their reasons.')
    .option('--json', 'one JSON object per line instead of a table');
  withSettings(list, ['SPOOL_DIR']);
  list.addHelpText(
    'after',
    `
Examples:
  anonymizer spool list
  anonymizer spool list --json | jq -r 'select(.state == "quarantined") | .error.message'
  anonymizer spool list --json | jq -c 'select(.state == "quarantined") | {file, reason, offsets}'
  SPOOL_DIR=/var/lib/anonymizer/spool anonymizer spool list`,
  );
  list.action(async (options: { json?: boolean }, self: Command) => {
    const config = configFrom(self);
    const waiting = await listWaiting(config.spoolDir);
    const quarantined = await listQuarantine(config.spoolDir);
    if (options.json) {
      for (const batch of waiting) process.stdout.write(`${JSON.stringify({ state: 'waiting', ...batch })}\n`);
      for (const batch of quarantined) process.stdout.write(`${JSON.stringify({ state: 'quarantined', ...describeQuarantined(batch) })}\n`);
      return;
    }
    process.stdout.write(`${waiting.length} batch(es) waiting, ${waiting.reduce((sum, b) => sum + b.rows, 0)} rows, ${waiting.reduce((sum, b) => sum + b.bytes, 0)} bytes\n`);
    for (const batch of waiting) process.stdout.write(`  waiting      ${batch.name}  ${batch.rows} rows  ${batch.bytes} B  sealed ${batch.sealedAt}\n`);
    process.stdout.write(`${quarantined.length} batch(es) in quarantine\n`);
    for (const batch of quarantined) {
      const entry = describeQuarantined(batch);
      const rows = entry.rows === undefined ? 'header unreadable' : `${entry.rows} rows`;
      const offsets = entry.offsets.length === 0 ? '' : `  offsets ${entry.offsets.map((o) => `p${o.partition}..${o.lastOffset}`).join(',')}`;
      const reason = entry.reason === undefined ? '' : ` [${entry.reason}]`;
      process.stdout.write(`  quarantined  ${batch.file}  ${rows}${offsets}  ${batch.error.code}${reason}: ${batch.error.message.split('\n')[0]}\n`);
    }
  });

  const replay = new Command('replay')
    .description('Put quarantined batches back in the send queue, after the cause is fixed. Stop `anonymizer run` first: it owns the spool.')
    .argument('[names...]', 'batch names or tokens (from `spool list`); all when none is given');
  withSettings(replay, ['SPOOL_DIR', ...KAFKA_CONNECTION_SETTINGS, 'KAFKA_TOPIC', 'KAFKA_GROUP_ID', 'LOG_LEVEL']);
  replay.addHelpText(
    'after',
    `
It opens the spool as \`run\` does: a batch that a crash left staged is settled first, by
asking Kafka (KAFKA_BROKERS, KAFKA_GROUP_ID) whether its commit landed.

Examples:
  anonymizer spool replay                            every quarantined batch
  anonymizer spool replay 000000000042-3f2a…         one batch, by the name \`spool list\` shows
  anonymizer spool replay 3f2a9c1e-…                 or by its token`,
  );
  replay.action(async (names: string[], _options: unknown, self: Command) => {
    const config = configFrom(self);
    const opened = await openSpool(config, createLogger(config.logLevel));
    try {
      const count = await opened.replay(names.length > 0 ? names : undefined);
      process.stdout.write(`${count} batch(es) back in the send queue; the next \`anonymizer run\` sends them\n`);
    } finally {
      await opened.close();
    }
  });

  spool.addCommand(list);
  spool.addCommand(replay);
  spool.addHelpText(
    'after',
    `
Examples:
  anonymizer spool list
  anonymizer spool list --json
  anonymizer spool replay                     every quarantined batch
  anonymizer spool replay 000000000042-3f…    one of them`,
  );
  return spool;
}

interface WaitingBatch {
  readonly name: string;
  readonly token: string;
  readonly rows: number;
  readonly bytes: number;
  readonly sealedAt: string;
}

async function listWaiting(dir: string): Promise<WaitingBatch[]> {
  return (await readBatchHeaders(dir, 'batches')).map(({ name, header }) => ({ name, token: header.token, rows: header.rowCount, bytes: header.bodyBytes, sealedAt: header.sealedAt }));
}

/**
 * One quarantined entry as `spool list` shows it. `offsets` are the Kafka offsets the batch
 * claimed (each partition's last offset it covers; its range starts after the previous
 * batch of that partition), known only when its header passed its check.
 */
function describeQuarantined(batch: QuarantinedBatch) {
  const header = batch.header;
  return {
    name: batch.name,
    file: batch.file,
    intact: batch.intact,
    reason: batch.error.reason ?? (batch.intact ? undefined : 'unreadable'),
    token: header?.token,
    rows: header?.rowCount,
    bytes: header?.bodyBytes,
    topic: header?.topic,
    offsets: (header?.offsets ?? []).map(([partition, lastOffset]) => ({ partition, lastOffset })),
    error: batch.error,
  };
}
