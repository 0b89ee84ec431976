// Process plumbing shared by the local stack's services (Kafka JVM, ClickHouse endpoint,
// nginx). Every service runs detached in its own process group with its output in a log
// file, and is found again later only through `<dir>/<name>.pid`, so the CLI (which exits
// right after `up`) and the vitest suites (which keep handles) manage them the same way.

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A running service of the local stack. */
export interface ServiceHandle {
  name: string;
  pid: number;
  logFile: string;
  /** SIGTERM to the process group, up to ~10 s grace, then SIGKILL. Idempotent. */
  stop(): Promise<void>;
}

/** What `start*` records next to the pid file, so `status` can report the address. */
export interface ServiceState {
  name: string;
  pid: number;
  address: string;
  logFile: string;
  startedAt: string;
}

/** The repository root (this file lives in `<root>/stack/`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Default grace between SIGTERM and SIGKILL. */
export const STOP_GRACE_MS = 10_000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function pidFileOf(dir: string, name: string): string {
  return join(dir, `${name}.pid`);
}

export function stateFileOf(dir: string, name: string): string {
  return join(dir, `${name}.json`);
}

/** True when a process with this pid exists (EPERM still means it exists). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readPidFile(pidFile: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The pid recorded in `pidFile` if that process is still alive, else undefined.
 * `marker`, when given, must appear in the process's command line: a stale pid file
 * after a reboot can name a pid that now belongs to something else, which we must
 * neither report as "up" nor kill.
 */
export function isRunning(pidFile: string, marker?: string): number | undefined {
  const pid = readPidFile(pidFile);
  if (pid === undefined || !isAlive(pid)) return undefined;
  if (marker !== undefined) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (!cmdline.includes(marker)) return undefined;
    } catch {
      // No /proc (not Linux) or the process just exited: trust kill(0) above.
    }
  }
  return pid;
}

export function readState(dir: string, name: string): ServiceState | undefined {
  try {
    return JSON.parse(readFileSync(stateFileOf(dir, name), 'utf8')) as ServiceState;
  } catch {
    return undefined;
  }
}

/**
 * Stop a process group led by `pid`: SIGTERM, poll up to `graceMs`, then SIGKILL.
 * Signals go to the group so that helpers (nginx workers) go too.
 */
export async function stopPid(pid: number, graceMs: number = STOP_GRACE_MS): Promise<void> {
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        // Already gone.
      }
    }
  };
  if (!isAlive(pid)) return;
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(100);
  }
  signal('SIGKILL');
  // SIGKILL cannot be ignored; a short bounded wait lets the kernel reap it.
  for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(100);
}

/** A handle whose stop() is idempotent and removes the pid/state files it owns. */
export function makeHandle(name: string, pid: number, logFile: string, dir: string): ServiceHandle {
  let stopping: Promise<void> | undefined;
  return {
    name,
    pid,
    logFile,
    stop(): Promise<void> {
      stopping ??= (async () => {
        await stopPid(pid);
        // Only remove the files if they still describe this process (a later start may
        // have replaced them).
        if (readPidFile(pidFileOf(dir, name)) === pid) {
          rmSync(pidFileOf(dir, name), { force: true });
          rmSync(stateFileOf(dir, name), { force: true });
        }
      })();
      return stopping;
    },
  };
}

/**
 * Spawn `cmd args` detached (own process group, so the CLI can exit and a stop can
 * signal the whole group) with stdout and stderr appended to `logFile`.
 */
export function spawnDetached(
  cmd: string,
  args: string[],
  opts: { logFile: string; cwd?: string; env?: NodeJS.ProcessEnv },
): number {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    // Swallow spawn errors here: a missing binary shows up as "exited during startup".
    child.on('error', () => {});
    child.unref();
    if (child.pid === undefined) throw new Error(`could not spawn ${cmd}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function writeServiceFiles(dir: string, state: ServiceState): void {
  writeFileSync(pidFileOf(dir, state.name), `${state.pid}\n`);
  writeFileSync(stateFileOf(dir, state.name), `${JSON.stringify(state, null, 2)}\n`);
}

/** Refuse to start a second copy over a live one (it would fail on the port anyway). */
export function assertNotRunning(dir: string, name: string, marker: string): void {
  const pid = isRunning(pidFileOf(dir, name), marker);
  if (pid !== undefined) throw new Error(`${name} is already running (pid ${pid}); stop it first`);
}

/** The last lines of a log file, for startup error messages. */
export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8').trimEnd().split('\n');
  return text.slice(-lines).join('\n');
}

/**
 * Poll `ready()` until it returns true, bounded by `timeoutMs`. Gives up early when the
 * process died, and then kills nothing; on timeout it stops the process so that a failed
 * start leaves nothing behind. Errors name the log file.
 */
export async function waitReady(opts: {
  name: string;
  pid: number;
  logFile: string;
  timeoutMs: number;
  ready: () => Promise<boolean>;
  intervalMs?: number;
}): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(opts.pid)) {
      throw new Error(
        `${opts.name} exited during startup; see ${opts.logFile}\n${tail(opts.logFile)}`,
      );
    }
    if (await opts.ready().catch(() => false)) return;
    await sleep(opts.intervalMs ?? 250);
  }
  await stopPid(opts.pid);
  throw new Error(
    `${opts.name} did not become ready within ${Math.round(opts.timeoutMs / 1000)} s; ` +
      `see ${opts.logFile}\n${tail(opts.logFile)}`,
  );
}

/** True when something accepts TCP connections on host:port within `timeoutMs`. */
export function portAccepts(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether process `pid` holds the listening socket of 127.0.0.1:`port` (or of a wildcard
 * address), read from /proc/net/tcp{,6} and /proc/<pid>/fd. Something else on the port
 * answers a readiness probe too, so a probe alone would call a service that lost the
 * port (EADDRINUSE) "up". Undefined when /proc cannot tell (not Linux).
 */
export function portOwnedBy(pid: number, port: number): boolean | undefined {
  const inodes = new Set<string>();
  try {
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      if (!existsSync(table)) continue;
      for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        // local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the inode.
        if (fields.length > 9 && fields[3] === '0A' && Number.parseInt(fields[1]!.split(':')[1]!, 16) === port) {
          inodes.add(fields[9]!);
        }
      }
    }
  } catch {
    return undefined;
  }
  if (inodes.size === 0) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    // The process is gone (or not ours to look into): gone means not owned.
    return isAlive(pid) ? undefined : false;
  }
  return fds.some((fd) => {
    try {
      return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
    } catch {
      return false;
    }
  });
}

/** True when `pid` listens on every one of `ports` (true where /proc cannot tell). */
export function listensOn(pid: number, ports: readonly number[]): boolean {
  return ports.every((port) => portOwnedBy(pid, port) !== false);
}

/** A currently free TCP port on 127.0.0.1 (for tests; racy by nature, but briefly). */
export function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePromise(port));
    });
  });
}
