/**
 * Progress for long commands, for a person watching a terminal: one line redrawn in place
 * on stderr, then a final line. When stderr is not a TTY (a pipe, a log file, CI) it writes
 * nothing at all, so logs and scripted output stay clean; callers print their own summary
 * there if they want one (`active` says which case applies).
 *
 *   const p = progress('produce', 10_000, { unit: 'records' });
 *   p.update(2_500);                  // produce: 2,500/10,000 records (25%) 1,250/s, 6 s left
 *   p.done('10,000 records in 8.0 s'); // produce: 10,000 records in 8.0 s
 */

/** The part of a stream progress needs: `process.stderr` fits, and so does a test double. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  /** Terminal width; lines are cut to it so that `\r` redraws one row. */
  readonly columns?: number;
  write(chunk: string): unknown;
}

export interface ProgressOptions {
  /** Where to draw. Default `process.stderr`. */
  readonly stream?: ProgressStream;
  /** Shown after the counts, e.g. `records`. */
  readonly unit?: string;
  /** Show the rate and the time left, from the counts. Default true; a countdown turns it off. */
  readonly rate?: boolean;
  /** Redraw at most this often, in ms; the first and last update always draw. Default 100. */
  readonly minRedrawMs?: number;
  /** The clock, in ms. Default `Date.now`. */
  readonly now?: () => number;
}

export interface Progress {
  /** True when drawing (stderr is a TTY); false when every call is a no-op. */
  readonly active: boolean;
  /** `n` done so far (of `total`, when given); `detail` is appended to the line. */
  update(n: number, detail?: string): void;
  /** Ends the redrawn line with `label: summary` and a newline. Later calls do nothing. */
  done(summary?: string): void;
}

const count = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function progress(label: string, total?: number, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const minRedrawMs = options.minRedrawMs ?? 100;
  const unit = options.unit ? ` ${options.unit}` : '';
  const showRate = options.rate ?? true;
  const active = stream.isTTY === true;
  const started = now();
  let lastDrawn = Number.NEGATIVE_INFINITY;
  let drewAny = false;
  let finished = false;

  const draw = (text: string): void => {
    const width = stream.columns && stream.columns > 1 ? stream.columns - 1 : undefined;
    // \r back to the start of the row, ESC[K erase what a longer previous line left.
    stream.write(`\r${width === undefined ? text : text.slice(0, width)}\x1b[K`);
    drewAny = true;
  };

  return {
    active,
    update(n, detail) {
      if (!active || finished) return;
      const at = now();
      const last = total !== undefined && n >= total;
      if (!last && at - lastDrawn < minRedrawMs) return;
      lastDrawn = at;
      const elapsedS = (at - started) / 1000;
      const rate = elapsedS > 0 ? n / elapsedS : 0;
      const parts: string[] = [];
      if (total !== undefined && total > 0) {
        parts.push(`${count.format(n)}/${count.format(total)}${unit} (${Math.floor((Math.min(n, total) / total) * 100)}%)`);
        if (showRate && rate > 0 && n > 0 && n < total) parts.push(`${count.format(rate)}/s, ${Math.ceil((total - n) / rate)} s left`);
      } else {
        parts.push(`${count.format(n)}${unit}`);
        if (showRate && rate > 0) parts.push(`${count.format(rate)}/s`);
      }
      if (detail) parts.push(detail);
      draw(`${label}: ${parts.join(' ')}`);
    },
    done(summary) {
      if (!active || finished) return;
      finished = true;
      if (summary !== undefined) draw(`${label}: ${summary}`);
      if (summary !== undefined || drewAny) stream.write('\n');
    },
  };
}
