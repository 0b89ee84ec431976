/**
 * `anonymizer`: the command line. Each subcommand lives in its own file; this one wires
 * them to commander and turns configuration errors into one line and exit code 2.
 */
// First: `run` re-executes itself here with its allocator settings and heap cap when they are missing.
import './relaunch.ts';
import { Command, CommanderError } from 'commander';
import { ConfigError, AnonymizerError } from '../errors.ts';
import { capacityCommand } from './capacity.ts';
import { inspectCommand } from './inspect.ts';
import { migrateCommand } from './migrate.ts';
import { produceCommand } from './produce.ts';
import { runCommand } from './run.ts';
import { spoolCommand } from './spool.ts';
import { packageVersion } from './version.ts';

// kafkajs 2.2 schedules timers with negative delays, which Node ≥ 23 reports as a
// TimeoutNegativeWarning (the timer still fires at once, as before). Keep every other warning.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'TimeoutNegativeWarning') process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

/** How long a finished command may take to release its handles before the process exits anyway. */
const EXIT_GRACE_MS = 3_000;

const program = new Command('anonymizer')
  .description("Kafka (Cap'n Proto HTTP logs) → anonymized client addresses → ClickHouse, through a 1 request/minute proxy.")
  .version(packageVersion(), '-V, --version', "print the package's version")
  .showHelpAfterError()
  .exitOverride();
program.addCommand(runCommand());
program.addCommand(migrateCommand());
program.addCommand(produceCommand());
program.addCommand(inspectCommand());
program.addCommand(spoolCommand());
program.addCommand(capacityCommand());
// Commands added with addCommand() do not inherit exitOverride(): without it, commander
// exits with its own code (1) on a usage error instead of ours (2).
const overrideExits = (command: Command): void => {
  for (const sub of command.commands) {
    sub.exitOverride();
    overrideExits(sub);
  }
};
overrideExits(program);
program.addHelpText(
  'after',
  `
Examples:
  anonymizer migrate                      apply etc/clickhouse/schema.sql through the proxy
  anonymizer produce --rate 200 --count 10000
  anonymizer run                          consume and store, forever
  anonymizer run --drain                  store everything up to now, then exit
  anonymizer inspect records.bin          print the rows Cap'n Proto messages would become
  anonymizer spool list                   batches waiting to be sent, and quarantined ones`,
);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = reportFailure(error);
}
// The command is done and its exit code set. A client that keeps a socket or a timer open
// (a Kafka connection whose broker is gone, a half-closed server) must not keep the
// process alive: after a short grace, exit with that code. unref(): this timer alone never
// delays an exit that happens anyway.
setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();

function reportFailure(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
  if (error instanceof ConfigError) {
    process.stderr.write(`anonymizer: ${error.message}\n`);
    return 2;
  }
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof AnonymizerError ? ` [${error.code}]` : '';
  process.stderr.write(`anonymizer: ${message}${code}\n`);
  return 1;
}
