// Runs queries on the chdb engine in a process of its own (one data directory per process,
// and a replicated table keeps background threads), for test/schema/clusterDdl.test.ts.
// stdin: JSON { dataDir?, configFile?, queries: string[], kill? }; stdout: one JSON line per query,
// { ok: true, text } or { ok: false, code, error }. Each query is bounded by QUERY_TIMEOUT_MS.
// With `kill`, the process ends by SIGKILL after its last line: closing a session that holds a
// replicated table whose replica never activated does not return (seen: > 100 s).
import { readFileSync } from 'node:fs';
import { Session } from 'chdb';

const QUERY_TIMEOUT_MS = 20_000;
const input = JSON.parse(readFileSync(0, 'utf8')) as { dataDir?: string; configFile?: string; queries: string[]; kill?: boolean };
const session = new Session(input.dataDir ?? '', input.configFile ? { connectionArgs: [`--config-file=${input.configFile}`] } : {});
for (const query of input.queries) {
  try {
    const result = await session.queryAsync(query, { format: 'TabSeparated', timeout: QUERY_TIMEOUT_MS });
    process.stdout.write(`${JSON.stringify({ ok: true, text: result.text() })}\n`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = Number(/Code: (\d+)\./.exec(message)?.[1] ?? -1);
    process.stdout.write(`${JSON.stringify({ ok: false, code, error: message.slice(0, 500) })}\n`);
  }
}
// stdout is a pipe, written synchronously on Linux: every line is out before the signal.
if (input.kill) process.kill(process.pid, 'SIGKILL');
process.exit(0);
