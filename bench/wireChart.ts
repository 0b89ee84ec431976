/**
 * bench:wire's chart, as a self-contained SVG: for each dataset, one horizontal bar per
 * encoding with the rows one 1 MiB request carries, ours highlighted, and the dataset's
 * entropy bound as a dashed line (no encoding can pass it). A hand-rolled writer: a few
 * rectangles and labels need no charting library.
 */

export interface WireChartBar {
  readonly dataset: string;
  readonly encoding: string;
  readonly rowsPerRequest: number;
  readonly ours: boolean;
}

export interface WireChartInput {
  readonly title: string;
  readonly bars: readonly WireChartBar[];
  /** Per dataset: the rows a request would carry at the entropy bound. */
  readonly bounds: Readonly<Record<string, number>>;
}

const WIDTH = 980;
const LABEL_WIDTH = 330;
const RIGHT = 110;
const BAR_HEIGHT = 22;
const GAP = 6;
const PANEL_HEADER = 34;
const PANEL_FOOTER = 26;

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');

export function renderWireChart(input: WireChartInput): string {
  const datasets = [...new Set(input.bars.map((bar) => bar.dataset))];
  const max = Math.max(...input.bars.map((bar) => bar.rowsPerRequest), ...datasets.map((d) => input.bounds[d] ?? 0));
  // Round the axis up to a multiple of 20,000 rows so the grid lines fall on round numbers.
  const axisMax = Math.ceil(max / 20_000) * 20_000;
  const plotWidth = WIDTH - LABEL_WIDTH - RIGHT;
  const x = (rows: number): number => LABEL_WIDTH + (rows / axisMax) * plotWidth;
  const panelHeight = (count: number): number => PANEL_HEADER + count * (BAR_HEIGHT + GAP) + PANEL_FOOTER;
  const height = 40 + datasets.reduce((sum, d) => sum + panelHeight(input.bars.filter((bar) => bar.dataset === d).length), 0);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="12" y="24" font-size="15" font-weight="bold">${escape(input.title)}</text>`,
  ];
  let top = 40;
  for (const dataset of datasets) {
    const bars = input.bars.filter((bar) => bar.dataset === dataset);
    const bottom = top + PANEL_HEADER + bars.length * (BAR_HEIGHT + GAP);
    parts.push(`<text x="12" y="${top + 20}" font-size="13" font-weight="bold">${escape(dataset)} dataset</text>`);
    for (let rows = 0; rows <= axisMax; rows += 20_000) {
      parts.push(`<line x1="${x(rows).toFixed(1)}" x2="${x(rows).toFixed(1)}" y1="${top + PANEL_HEADER - 4}" y2="${bottom}" stroke="#e5e5e5"/>`);
      parts.push(`<text x="${x(rows).toFixed(1)}" y="${bottom + 14}" text-anchor="middle" fill="#666">${rows === 0 ? '0' : `${rows / 1000}k`}</text>`);
    }
    bars.forEach((bar, index) => {
      const y = top + PANEL_HEADER + index * (BAR_HEIGHT + GAP);
      const fill = bar.ours ? '#2b8a3e' : '#868e96';
      parts.push(`<text x="${LABEL_WIDTH - 8}" y="${y + BAR_HEIGHT / 2 + 4}" text-anchor="end"${bar.ours ? ' font-weight="bold"' : ''}>${escape(bar.encoding)}</text>`);
      parts.push(`<rect x="${LABEL_WIDTH}" y="${y}" width="${(x(bar.rowsPerRequest) - LABEL_WIDTH).toFixed(1)}" height="${BAR_HEIGHT}" fill="${fill}"/>`);
      parts.push(`<text x="${(x(bar.rowsPerRequest) + 6).toFixed(1)}" y="${y + BAR_HEIGHT / 2 + 4}">${thousands(bar.rowsPerRequest)}</text>`);
    });
    const bound = input.bounds[dataset];
    if (bound !== undefined) {
      const bx = x(bound).toFixed(1);
      parts.push(`<line x1="${bx}" x2="${bx}" y1="${top + PANEL_HEADER - 8}" y2="${bottom}" stroke="#c92a2a" stroke-dasharray="5,4" stroke-width="1.5"/>`);
      parts.push(`<text x="${bx}" y="${top + PANEL_HEADER - 12}" text-anchor="middle" fill="#c92a2a">entropy bound ${thousands(bound)}</text>`);
    }
    top = bottom + PANEL_FOOTER;
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
