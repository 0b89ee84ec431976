/**
 * The query benchmark's chart as a self-contained SVG: one panel per dataset, one group of
 * bars per query, and in each group our schema's and the prior art's p50 for every size,
 * on a log scale (the times span four orders of magnitude). A hand-rolled writer: a few
 * rectangles and labels need no charting library.
 */
import type { BenchReport } from './queries.ts';

const WIDTH = 1100;
const PANEL_HEIGHT = 330;
const MARGIN = { left: 64, right: 16, top: 36, bottom: 92 };
const SIZE_SHADES = ['#9ecae1', '#4292c6', '#08519c'];
const PRIOR_SHADES = ['#fdd0a2', '#fd8d3c', '#a63603'];

const escape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const human = (n: number): string => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);

export function renderChart(report: BenchReport): string {
  const datasets = [...new Set(report.queries.map((r) => r.dataset))];
  const sizes = [...new Set(report.queries.map((r) => r.size))].sort((a, b) => a - b);
  const queries = [...new Set(report.queries.map((r) => r.query))];
  const all = report.queries.flatMap((r) => [r.ours.p50, r.prior.p50]);
  const lo = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...all))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const height = datasets.length * PANEL_HEIGHT + 40;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const groupW = plotW / queries.length;
  const barW = Math.max(2, (groupW - 10) / (sizes.length * 2));

  datasets.forEach((dataset, d) => {
    const top = d * PANEL_HEIGHT + MARGIN.top;
    const y = (v: number): number => top + plotH - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
    parts.push(`<text x="${MARGIN.left}" y="${top - 14}" font-size="14" font-weight="bold">${escape(dataset)} dataset: p50 query time (ms, log scale)</text>`);
    for (let v = lo; v <= hi * 1.0001; v *= 10) {
      parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
      parts.push(`<text x="${MARGIN.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v >= 1 ? v.toFixed(0) : v}</text>`);
    }
    if (50 > lo && 50 < hi) {
      parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(50).toFixed(1)}" y2="${y(50).toFixed(1)}" stroke="#c00" stroke-dasharray="4 3"/>`);
      parts.push(`<text x="${WIDTH - MARGIN.right}" y="${(y(50) - 3).toFixed(1)}" text-anchor="end" fill="#c00">50 ms</text>`);
    }
    queries.forEach((query, i) => {
      const x0 = MARGIN.left + i * groupW + 5;
      sizes.forEach((size, s) => {
        const r = report.queries.find((x) => x.dataset === dataset && x.size === size && x.query === query);
        if (!r) return;
        for (const [k, value, shade, who] of [[0, r.ours.p50, SIZE_SHADES, 'ours'], [1, r.prior.p50, PRIOR_SHADES, 'prior art']] as const) {
          const x = x0 + (s * 2 + k) * barW;
          const yv = y(Math.max(lo, value));
          parts.push(`<rect x="${x.toFixed(1)}" y="${yv.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(top + plotH - yv).toFixed(1)}" fill="${shade[s % shade.length]}"><title>${escape(`${query}, ${human(size)} rows, ${who}: p50 ${value.toFixed(2)} ms`)}</title></rect>`);
        }
      });
      const cx = x0 + (groupW - 10) / 2;
      parts.push(`<text transform="translate(${cx.toFixed(1)},${top + plotH + 10}) rotate(30)" text-anchor="start">${escape(query)}</text>`);
    });
  });
  // Legend.
  const ly = height - 22;
  let lx = MARGIN.left;
  sizes.forEach((size, s) => {
    for (const [shade, who] of [[SIZE_SHADES, 'ours'], [PRIOR_SHADES, 'prior art']] as const) {
      parts.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${shade[s % shade.length]}"/>`);
      parts.push(`<text x="${lx + 14}" y="${ly}">${escape(`${who}, ${human(size)} rows`)}</text>`);
      lx += 130;
    }
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
