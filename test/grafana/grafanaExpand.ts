/**
 * What Grafana and the ClickHouse data source plugin (grafana-clickhouse-datasource 4.x)
 * do to a panel's SQL before ClickHouse sees it, in the same order, so a test can run the
 * exact text Grafana would send.
 *
 *  1. Frontend, `Datasource.applyTemplateVariables` (src/data/CHDatasource.ts):
 *     a. `applyConditionalAll`: each `$__conditionalAll(condition, $var)` becomes `1=1` when
 *        `$var`'s current value is `$__all` (or empty), else `condition`;
 *     b. `getTemplateSrv().replace(sql, scopedVars, this.format)`: Grafana's template
 *        variables (public/app/features/templating/template_srv.ts). A `${var:singlequote}`
 *        uses Grafana's `singlequote` formatter; a bare `$var` uses the plugin's `format`
 *        (arrays become `'a','b'`, a single value is left as is).
 *  2. Backend, sqlds → `sqlutil.Interpolate` (grafana-plugin-sdk-go data/sqlutil/macros.go)
 *     with the plugin's macros (pkg/macros/macros.go):
 *       $__fromTime / $__toTime        toDateTime(<unix seconds>)
 *       $__fromTime_ms / $__toTime_ms  fromUnixTimestamp64Milli(<unix ms>)
 *       $__timeFilter(c)               c >= toDateTime(from) AND c <= toDateTime(to)
 *       $__timeFilter_ms(c)            the same with fromUnixTimestamp64Milli
 *       $__dateFilter(c)               c >= toDate('YYYY-MM-DD') AND c <= toDate('YYYY-MM-DD')
 *       $__timeInterval(c)             toStartOfInterval(toDateTime(c), INTERVAL <s> second)
 *       $__interval_s                  the interval in whole seconds, at least 1
 *     Two argument parsers exist across SDK releases, and both are implemented here:
 *     `current` takes arguments only from a `(` right after the name; `legacy` (before the
 *     fix of grafana-plugin-sdk-go#859) took the first balanced `(…)` found anywhere after
 *     the name, unless a `)` came first. A query that expands the same under both is safe on
 *     any Grafana; the dashboard test checks that every panel does.
 *
 * The SDK applies macros in map order (random in Go); that cannot matter here because no
 * expansion contains `$__`.
 *
 * Sources (read 2026-11):
 *   https://github.com/grafana/clickhouse-datasource/blob/main/src/data/CHDatasource.ts
 *   https://github.com/grafana/clickhouse-datasource/blob/main/pkg/macros/macros.go
 *   https://github.com/grafana/clickhouse-datasource#macros (the README's macro table)
 *   https://github.com/grafana/grafana-plugin-sdk-go/blob/main/data/sqlutil/macros.go
 *   https://github.com/grafana/grafana-plugin-sdk-go/issues/859 (the legacy parser's bug)
 *   https://github.com/grafana/grafana/blob/main/public/app/features/templating/template_srv.ts
 *   (variable regex; a custom all value is inserted unformatted) and formatRegistry.ts
 *   (`singlequote`)
 */

export interface TimeRange {
  /** Unix milliseconds. */
  from: number;
  to: number;
}

/** A dashboard variable as Grafana keeps it: `$__all` for "All", else the selected values. */
export interface VariableState {
  name: string;
  /** `['$__all']` (multi) or `'$__all'` for All; the option values otherwise. */
  value: string | string[];
  /** Every option's value, used when All is selected without a custom all value. */
  options?: string[];
  allValue?: string | null;
}

export type MacroParser = 'current' | 'legacy';

// ---------------------------------------------------------------------------------------
// 1a. $__conditionalAll (frontend)

/** Arguments of the call whose `(` is at `open`: split on top-level commas, untrimmed (as the plugin's getMacroArgs). */
function macroArgs(sql: string, open: number): string[] | undefined {
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open; i < sql.length; i++) {
    const c = sql[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    if (c === ',' && depth === 1) {
      args.push(sql.slice(start, i));
      start = i + 1;
    }
    if (depth === 0) {
      args.push(sql.slice(start, i));
      return args;
    }
  }
  return undefined;
}

export function applyConditionalAll(sql: string, variables: readonly VariableState[]): string {
  const macro = '$__conditionalAll(';
  let at = sql.lastIndexOf(macro);
  while (at !== -1) {
    const args = macroArgs(sql, at + macro.length - 1);
    if (args?.length !== 2) return sql;
    const [condition, varArg] = args as [string, string];
    // The plugin's pattern for the variable: `${name}` or `$name`.
    const name = /(?<=\$\{)\w+(?=\})|(?<=\$)\w+/.exec(varArg.trim())?.[0];
    let phrase = condition;
    if (name !== undefined) {
      const current = variables.find((v) => v.name === name)?.value;
      const text = Array.isArray(current) ? current.join(',') : current;
      if (text === '' || text === '$__all') phrase = '1=1';
    }
    sql = sql.replace(`${macro}${condition},${varArg})`, phrase);
    at = sql.lastIndexOf(macro);
  }
  return sql;
}

// ---------------------------------------------------------------------------------------
// 1b. Template variables (frontend)

/** Grafana's variable syntax: `$name`, `[[name:fmt]]`, `${name.path:fmt}`. */
const VARIABLE_REGEX = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}/g;

/** Grafana's `singlequote` format: each value in single quotes, `'` escaped as `\'`, joined by commas. */
function singlequote(value: string | string[]): string {
  const quote = (v: string): string => `'${v.replace(/'/g, "\\'")}'`;
  return Array.isArray(value) ? value.map(quote).join(',') : quote(value);
}

/** The ClickHouse plugin's own `format`, used when the query names no format. */
function pluginFormat(value: string | string[]): string {
  return Array.isArray(value) ? `'${value.join("','")}'` : value;
}

export function replaceVariables(sql: string, variables: readonly VariableState[]): string {
  return sql.replace(VARIABLE_REGEX, (match, var1?: string, var2?: string, fmt2?: string, var3?: string, _path?: string, fmt3?: string) => {
    const name = var1 ?? var2 ?? var3;
    const variable = variables.find((v) => v.name === name);
    if (!variable) return match;
    const format = fmt2 ?? fmt3;
    let value = variable.value;
    const isAll = value === '$__all' || (Array.isArray(value) && value[0] === '$__all');
    if (isAll) {
      // A custom all value is inserted unformatted; otherwise All means every option.
      if (variable.allValue) return variable.allValue;
      value = variable.options ?? [];
    }
    if (format === undefined) return pluginFormat(value);
    if (format === 'singlequote') return singlequote(value);
    throw new Error(`format ${format} is not implemented by this test helper`);
  });
}

// ---------------------------------------------------------------------------------------
// 2. Macros (backend)

const seconds = (ms: number): number => Math.floor(ms / 1000);
const toDate = (ms: number): string => `toDate('${new Date(ms).toISOString().slice(0, 10)}')`;

type Macro = (args: string[], range: TimeRange, intervalMs: number) => string;

function oneArg(name: string, args: string[]): string {
  if (args.length !== 1) throw new Error(`$__${name}: expected 1 argument, received ${args.length}`);
  return args[0] as string;
}

/** The plugin's macros (pkg/macros/macros.go). Go's time.Unix() truncates toward the past, as Math.floor. */
const MACROS: Record<string, Macro> = {
  fromTime: (_a, r) => `toDateTime(${seconds(r.from)})`,
  toTime: (_a, r) => `toDateTime(${seconds(r.to)})`,
  fromTime_ms: (_a, r) => `fromUnixTimestamp64Milli(${r.from})`,
  toTime_ms: (_a, r) => `fromUnixTimestamp64Milli(${r.to})`,
  timeFilter: (a, r) => { const c = oneArg('timeFilter', a); return `${c} >= toDateTime(${seconds(r.from)}) AND ${c} <= toDateTime(${seconds(r.to)})`; },
  timeFilter_ms: (a, r) => { const c = oneArg('timeFilter_ms', a); return `${c} >= fromUnixTimestamp64Milli(${r.from}) AND ${c} <= fromUnixTimestamp64Milli(${r.to})`; },
  dateFilter: (a, r) => { const c = oneArg('dateFilter', a); return `${c} >= ${toDate(r.from)} AND ${c} <= ${toDate(r.to)}`; },
  timeInterval: (a, _r, i) => `toStartOfInterval(toDateTime(${oneArg('timeInterval', a)}), INTERVAL ${Math.max(Math.trunc(i / 1000), 1)} second)`,
  interval_s: (_a, _r, i) => String(Math.max(Math.trunc(i / 1000), 1)),
};

interface MacroMatch { full: string; args: string[] }

/** Split on commas outside parentheses, trimmed (current SDK). */
function splitTopLevel(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out;
}

function matches(sql: string, name: string, parser: MacroParser): MacroMatch[] {
  const found: MacroMatch[] = [];
  for (const m of sql.matchAll(new RegExp(`\\$__${name}\\b`, 'g'))) {
    const start = m.index;
    const end = start + m[0].length;
    if (parser === 'current') {
      // Arguments only when `(` follows the name at once.
      if (sql[end] !== '(') {
        found.push({ full: m[0], args: [] });
        continue;
      }
      const args = macroArgs(sql, end);
      if (!args) throw new Error(`$__${name}: missing close bracket`);
      const inner = args.join(',');
      found.push({ full: sql.slice(start, end + inner.length + 2), args: splitTopLevel(inner) });
      continue;
    }
    // legacy: scan forward for the first bracket after the name.
    let depth = 0;
    let argStart = -1;
    let macroEnd = -1;
    for (let i = end; i < sql.length; i++) {
      const c = sql[i];
      if (c === '(') {
        depth++;
        if (argStart < 0) argStart = i + 1;
      } else if (c === ')') {
        if (depth === 0) break;
        depth--;
        macroEnd = i + 1;
        if (depth === 0) break;
      }
    }
    if (macroEnd < 0) found.push({ full: m[0], args: [] });
    else found.push({ full: sql.slice(start, macroEnd), args: sql.slice(argStart, macroEnd - 1).split(',').map((a) => a.trim()) });
  }
  return found;
}

export function interpolateMacros(sql: string, range: TimeRange, intervalMs: number, parser: MacroParser = 'current'): string {
  // Longer names first, as the current SDK does, so `fromTime` never eats `fromTime_ms`
  // (the \b in the pattern already prevents it; the order keeps it obvious).
  for (const name of Object.keys(MACROS).sort((a, b) => b.length - a.length)) {
    for (const match of matches(sql, name, parser)) {
      sql = sql.replaceAll(match.full, (MACROS[name] as Macro)(match.args, range, intervalMs));
    }
  }
  return sql;
}

/** The whole path: what ClickHouse receives for a panel's `rawSql`. */
export function expandQuery(rawSql: string, opts: { range: TimeRange; intervalMs: number; variables: readonly VariableState[]; parser?: MacroParser }): string {
  const frontend = replaceVariables(applyConditionalAll(rawSql, opts.variables), opts.variables);
  return interpolateMacros(frontend, opts.range, opts.intervalMs, opts.parser);
}
