// Launches stack/clickhouse-endpoint.ts (chdb behind a ClickHouse-compatible HTTP
// interface) as a detached process, for machines without Docker.

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  REPO_ROOT, assertNotRunning, listensOn, makeHandle, spawnDetached, waitReady, writeServiceFiles,
} from './service.ts';
import type { ServiceHandle } from './service.ts';

export const CLICKHOUSE_NAME = 'clickhouse';
export const CLICKHOUSE_MARKER = 'clickhouse-endpoint';
export const ENDPOINT_SCRIPT = join(REPO_ROOT, 'stack', 'clickhouse-endpoint.ts');
const STARTUP_TIMEOUT_MS = 30_000;

export interface StartClickHouseOptions {
  dir: string;
  port: number;
  user?: string;
  password?: string;
}

/** Start the endpoint with its data in `<dir>/data`; resolves once `/ping` answers. */
export async function startClickHouse(
  opts: StartClickHouseOptions,
): Promise<ServiceHandle & { url: string }> {
  const dir = resolve(opts.dir);
  assertNotRunning(dir, CLICKHOUSE_NAME, CLICKHOUSE_MARKER);
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, 'clickhouse.log');
  const url = `http://127.0.0.1:${opts.port}`;

  // process.execPath: the same Node 24 that runs us, which can execute .ts directly.
  const pid = spawnDetached(process.execPath, [
    ENDPOINT_SCRIPT, '--port', String(opts.port), '--data', join(dir, 'data'),
  ], {
    logFile,
    env: {
      ...process.env,
      CLICKHOUSE_ENDPOINT_USER: opts.user ?? 'default',
      CLICKHOUSE_ENDPOINT_PASSWORD: opts.password ?? '',
    },
  });
  writeServiceFiles(dir, {
    name: CLICKHOUSE_NAME, pid, address: url, logFile, startedAt: new Date().toISOString(),
  });
  const handle = makeHandle(CLICKHOUSE_NAME, pid, logFile, dir);
  try {
    await waitReady({
      name: CLICKHOUSE_NAME, pid, logFile, timeoutMs: STARTUP_TIMEOUT_MS,
      ready: async () => {
        if (!listensOn(pid, [opts.port])) return false;
        const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1_000) });
        return res.ok && (await res.text()) === 'Ok.\n';
      },
    });
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return { ...handle, url };
}
