/**
 * A scatter chart as standalone SVG (for `tide bench live --svg`): one dot per job, one colour
 * per series, and the diagonal y = x where a perfect prediction would lie. Deterministic: the
 * same points give the same bytes.
 */
import { ticks } from '../../report/svgChart.ts';

export interface ScatterSeries {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface ScatterChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ScatterSeries[];
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => (Math.round(v * 100) / 100).toString();

export function scatterSvg(chart: ScatterChart): string {
  const width = 760;
  const height = 560;
  const margin = { left: 64, right: 210, top: 40, bottom: 52 };
  const all = chart.series.flatMap((s) => s.points).flat();
  const hi = Math.max(1, ...all) * 1.05;
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const sx = (x: number): number => margin.left + (x / hi) * plotW;
  const sy = (y: number): number => margin.top + plotH - (y / hi) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(chart.title)}</text>`);
  for (const t of ticks(0, hi)) {
    parts.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${fmt(sy(t))}" y2="${fmt(sy(t))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${fmt(sy(t))}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
    parts.push(`<line x1="${fmt(sx(t))}" x2="${fmt(sx(t))}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${fmt(sx(t))}" y="${margin.top + plotH + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  parts.push(`<line x1="${fmt(sx(0))}" y1="${fmt(sy(0))}" x2="${fmt(sx(hi))}" y2="${fmt(sy(hi))}" stroke="#555" stroke-dasharray="6 4"/>`);
  parts.push(`<text x="${margin.left + plotW / 2}" y="${height - 12}" text-anchor="middle">${esc(chart.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(chart.yLabel)}</text>`);
  chart.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length] as string;
    for (const [x, y] of s.points) parts.push(`<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="3" fill="${color}" fill-opacity="0.7"/>`);
    const ly = margin.top + 8 + i * 18;
    const lx = margin.left + plotW + 14;
    parts.push(`<circle cx="${lx + 11}" cy="${ly}" r="4" fill="${color}"/>`);
    parts.push(`<text x="${lx + 28}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  const ly = margin.top + 8 + chart.series.length * 18;
  const lx = margin.left + plotW + 14;
  parts.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="#555" stroke-dasharray="6 4"/>`);
  parts.push(`<text x="${lx + 28}" y="${ly}" dominant-baseline="middle">y = x (exact)</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
