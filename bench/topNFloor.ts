/**
 * `npm run bench:topn-floor [-- --keys 1.43e6,1.43e7 --runs 10]`: the least time an exact
 * top-10 can take on this machine when every key is distinct, as on the uniform dataset
 * (docs/query-performance.md, the paragraph "Why the other six uniform queries are not 5×
 * faster, and cannot be").
 *
 * For each key count it stores one row per key, the uniform generator's resource ids and
 * bytes, in a MergeTree sorted by the key and merged into one part, the best shape a totals
 * table can be in. Then it times, side by side:
 * - `scan`: reading the two columns, nothing else;
 * - `top10 of stored rows`: `ORDER BY bytes_sent DESC LIMIT 10` with no aggregation, the
 *   answer only if every key were already folded into one row, which a SummingMergeTree
 *   never promises (so no query of ours may rely on it);
 * - `top10 of sum()` (hash): `GROUP BY resource_id … ORDER BY sum(bytes_sent) DESC LIMIT 10`,
 *   the form every exact query over the totals must take, which both schemas run;
 * - `top10 of sum()` (in order): the same with `optimize_aggregation_in_order = 1`.
 * A day of the 10M and 100M uniform runs holds 1.43M and 14.3M distinct resources.
 * It first times `SELECT 1` on a table-less session: the fixed cost of any query here
 * (parsing, planning, the TSV result), under which no query can go.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Session } from 'chdb';
import { datasetSelect } from './datasetSql.ts';

const { values } = parseArgs({
  options: { keys: { type: 'string', default: '1.43e6,1.43e7' }, runs: { type: 'string', default: '10' } },
});
const keyCounts = values.keys.split(',').map(Number);
const runs = Number(values.runs);
if (keyCounts.some((k) => !Number.isInteger(k) || k < 10) || !Number.isInteger(runs) || runs < 1) {
  throw new Error(`--keys must be integers ≥ 10 and --runs ≥ 1 (got ${values.keys}, ${values.runs})`);
}

const dir = mkdtempSync(join(tmpdir(), 'topn-floor-'));
const session = new Session(dir);
session.query('SET max_query_size = 100000000');
const q = (sql: string): string => session.query(sql, 'TSV');

const FORMS: ReadonlyArray<readonly [string, string]> = [
  ['scan', 'SELECT max(resource_id), max(bytes_sent) FROM keyed'],
  ['top10 of stored rows', 'SELECT resource_id, bytes_sent FROM keyed ORDER BY bytes_sent DESC, resource_id LIMIT 10'],
  ['top10 of sum(), hash', 'SELECT resource_id, sum(bytes_sent) AS b FROM keyed GROUP BY resource_id ORDER BY b DESC, resource_id LIMIT 10'],
  ['top10 of sum(), in order', 'SELECT resource_id, sum(bytes_sent) AS b FROM keyed GROUP BY resource_id ORDER BY b DESC, resource_id LIMIT 10 SETTINGS optimize_aggregation_in_order = 1'],
];

const p50 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  console.log(`ClickHouse ${q('SELECT version()').trim()} (chdb), ${runs} runs each, p50 in ms\n`);
  const fixed: number[] = [];
  for (let run = 0; run < Math.max(runs, 100); run++) {
    const t0 = performance.now();
    q('SELECT 1');
    fixed.push(performance.now() - t0);
  }
  console.log(`SELECT 1 (the fixed cost of one query): ${p50(fixed).toFixed(2)} ms\n`);
  console.log(`| distinct keys | ${FORMS.map(([name]) => name).join(' | ')} |`);
  console.log(`|---|${FORMS.map(() => '---:').join('|')}|`);
  for (const keys of keyCounts) {
    q('DROP TABLE IF EXISTS keyed SYNC');
    q('CREATE TABLE keyed (resource_id UInt64, bytes_sent UInt64) ENGINE = MergeTree ORDER BY resource_id');
    // The uniform generator's rows; its resources are drawn from 10⁹, so a few repeat:
    // GROUP BY folds them first, so each stored row is a distinct key.
    const rows = datasetSelect('uniform', { rows: keys, start: 1_764_000_000, span: 86_400, seed: 1 });
    q(`INSERT INTO keyed SELECT resource_id, sum(bytes_sent) FROM (${rows}) GROUP BY resource_id`);
    q('OPTIMIZE TABLE keyed FINAL');
    const stored = Number(q('SELECT count() FROM keyed').trim());
    const cells: string[] = [];
    let answer = '';
    for (const [name, sql] of FORMS) {
      const times: number[] = [];
      for (let run = 0; run < runs; run++) {
        const t0 = performance.now();
        const out = q(sql);
        times.push(performance.now() - t0);
        if (name.startsWith('top10')) {
          // Every top-10 form must give the same rows, or the comparison means nothing.
          if (answer === '') answer = out;
          else if (out !== answer) throw new Error(`${name} answered differently from the first top-10 form`);
        }
      }
      cells.push(p50(times).toFixed(1));
    }
    console.log(`| ${stored.toLocaleString('en-US')} | ${cells.join(' | ')} |`);
  }
} finally {
  session.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
