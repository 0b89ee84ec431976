/**
 * `anonymizer run` stays under 256 MB of RSS at 10× the proxy's capacity only with glibc's
 * allocator told to keep few arenas and to mmap large blocks (brotli's working
 * buffers, tens of MB, are then returned to the system on free, instead of staying in one arena per
 * thread-pool thread), and with a V8 heap cap (docs/performance.md). Without them it
 * reaches ~360 MiB. Environment variables must be set before the process starts (glibc
 * reads them once, at its first malloc), so whatever started the process (`npx anonymizer
 * run`, a global install, `node dist/cli/main.js run`, `npm start`, the image), `run`
 * re-executes itself once with the settings that are missing.
 *
 * process.execve (Node ≥ 22.15) replaces the process image: the pid, stdin/stdout/stderr,
 * the signals a supervisor sends and the exit code all stay this process's own, so nothing
 * needs forwarding. On an older Node, a child is spawned instead and the parent forwards
 * signals and passes its exit code on.
 */
import { spawn } from 'node:child_process';

/** The glibc settings `run` is measured with. A value the caller set is kept. */
export const ALLOCATOR_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };
/**
 * The V8 heap settings `npm start` and the image set; a flag of the same name the caller
 * gave is kept. The old generation is capped at 192 MB. The young generation is capped at
 * 16 MB a semi-space: V8 grows it with the survival rate, and under a backlog it grew to
 * 128 MiB (two semi-spaces of 64) in some runs and not in others: the soak's RSS then sat at
 * ~285 MiB instead of ~210 from the first minute on.
 */
export const HEAP_FLAGS: readonly string[] = ['--max-old-space-size=192', '--max-semi-space-size=16'];
/** Set in the re-executed process: it never re-executes again, whatever its environment says. */
export const RELAUNCHED_ENV = 'ANONYMIZER_RELAUNCHED';
/** The only command that runs long enough, and holds enough, to need the bound. */
const BOUNDED_COMMANDS = new Set(['run']);
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;

export interface ProcessView {
  readonly platform: NodeJS.Platform;
  /** `process.argv`: node, the entry script, then the command and its arguments. */
  readonly argv: readonly string[];
  readonly execArgv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface Relaunch {
  /** Arguments for the new process image, `argv[0]` included. */
  readonly args: readonly string[];
  readonly env: Record<string, string>;
}

/**
 * Whether (and how) to re-execute: only for `run`, only on Linux (the settings are
 * glibc's), only when a setting is missing, and never twice.
 */
export function relaunchFor(view: ProcessView): Relaunch | undefined {
  if (view.platform !== 'linux' || view.env[RELAUNCHED_ENV]) return undefined;
  const command = view.argv.slice(2).find((arg) => !arg.startsWith('-'));
  if (command === undefined || !BOUNDED_COMMANDS.has(command)) return undefined;
  const missing = Object.entries(ALLOCATOR_ENV).filter(([name]) => !view.env[name]);
  const given = [...view.execArgv, ...(view.env.NODE_OPTIONS ?? '').split(/\s+/)].map(flagName);
  const heapFlags = HEAP_FLAGS.filter((flag) => !given.includes(flagName(flag)));
  if (missing.length === 0 && heapFlags.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(view.env)) if (value !== undefined) env[name] = value;
  for (const [name, value] of missing) env[name] = value;
  env[RELAUNCHED_ENV] = '1';
  const [node, script, ...rest] = view.argv;
  return { args: [node!, ...heapFlags, ...view.execArgv, script!, ...rest], env };
}

/** A node flag's name, `_` and `-` alike (`--max_old_space_size=1` is `--max-old-space-size`). */
function flagName(flag: string): string {
  return flag.split('=')[0]!.replaceAll('_', '-');
}

/**
 * Re-executes the process when `relaunchFor` says so; returns (and the caller goes on)
 * when it does not. With a spawned child it never settles: the parent only relays.
 */
export async function boundMemory(): Promise<void> {
  const relaunch = relaunchFor(process);
  if (!relaunch) return;
  const [file, ...args] = relaunch.args;
  if (typeof process.execve === 'function' && process.env.ANONYMIZER_RELAUNCH !== 'spawn') {
    process.execve(file!, [file!, ...args], relaunch.env);
  }
  // Node < 22.15 (or ANONYMIZER_RELAUNCH=spawn, which tests use to cover this path).
  const child = spawn(file!, args, { env: relaunch.env, stdio: 'inherit' });
  for (const signal of SIGNALS) process.on(signal, () => child.kill(signal));
  await new Promise<never>(() => {
    child.on('error', (error) => {
      process.stderr.write(`anonymizer: could not start ${file}: ${error.message}\n`);
      process.exit(1);
    });
    child.on('exit', (code, signal) => {
      if (code !== null) process.exit(code);
      // Killed by a signal: die of the same one, so a shell or supervisor sees what happened.
      for (const name of SIGNALS) process.removeAllListeners(name);
      process.kill(process.pid, signal ?? 'SIGKILL');
    });
  });
}
