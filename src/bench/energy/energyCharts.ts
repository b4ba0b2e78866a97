/**
 * The charts of `tide bench energy` as standalone SVG: energy per unit of work against average
 * JCT, one labelled dot per policy (lower left is better), and power over time per policy.
 * Deterministic: the same report gives the same bytes.
 */
import { ticks } from '../../report/svgChart.ts';

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => (Math.round(v * 100) / 100).toString();

export interface LabelledPoint {
  readonly name: string;
  readonly x: number;
  readonly y: number;
}

export function labelledScatterSvg(chart: { title: string; xLabel: string; yLabel: string; points: readonly LabelledPoint[] }): string {
  const width = 760;
  const height = 460;
  const m = { left: 72, right: 40, top: 40, bottom: 52 };
  const pts = chart.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const pad = (lo: number, hi: number): [number, number] => {
    const span = hi - lo || Math.abs(hi) || 1;
    return [lo - span * 0.15, hi + span * 0.15];
  };
  const [x0, x1] = pad(Math.min(...pts.map((p) => p.x)), Math.max(...pts.map((p) => p.x)));
  const [y0, y1] = pad(Math.min(...pts.map((p) => p.y)), Math.max(...pts.map((p) => p.y)));
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const sx = (x: number): number => m.left + ((x - x0) / (x1 - x0)) * w;
  const sy = (y: number): number => m.top + h - ((y - y0) / (y1 - y0)) * h;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${esc(chart.title)}</text>`);
  for (const t of ticks(x0, x1)) {
    if (t < x0 || t > x1) continue;
    out.push(`<line x1="${fmt(sx(t))}" y1="${m.top}" x2="${fmt(sx(t))}" y2="${m.top + h}" stroke="#eee"/>`);
    out.push(`<text x="${fmt(sx(t))}" y="${m.top + h + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of ticks(y0, y1)) {
    if (t < y0 || t > y1) continue;
    out.push(`<line x1="${m.left}" y1="${fmt(sy(t))}" x2="${m.left + w}" y2="${fmt(sy(t))}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 8}" y="${fmt(sy(t) + 4)}" text-anchor="end">${fmt(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + w / 2}" y="${height - 12}" text-anchor="middle">${esc(chart.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${m.top + h / 2}) rotate(-90)" text-anchor="middle">${esc(chart.yLabel)}</text>`);
  // Labels right of their dots, moved down past labels already placed where they would overlap.
  const placed: { x: number; y: number; w: number }[] = [];
  pts.forEach((p, i) => {
    const c = PALETTE[i % PALETTE.length] as string;
    const text = `${p.name} (${fmt(p.x)} h, ${p.y.toFixed(3)})`;
    const lx = Math.min(sx(p.x) + 9, width - m.right - text.length * 6.5);
    let ly = sy(p.y) - 8;
    while (placed.some((q) => Math.abs(q.y - ly) < 14 && lx < q.x + q.w && q.x < lx + text.length * 6.5)) ly += 15;
    placed.push({ x: lx, y: ly, w: text.length * 6.5 });
    out.push(`<circle cx="${fmt(sx(p.x))}" cy="${fmt(sy(p.y))}" r="6" fill="${c}" fill-opacity="0.8"/>`);
    out.push(`<text x="${fmt(lx)}" y="${fmt(ly)}" fill="${c}">${esc(text)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/**
 * Total IT power (kW) over time, one line per policy, over bands of the tariff: valley hours
 * shaded green, peak hours red (`tariff`: yuan/kWh by hour of the day).
 */
export function powerChartSvg(title: string, series: readonly { name: string; points: readonly (readonly [number, number])[] }[], tariff: readonly number[]): string {
  const width = 900;
  const height = 420;
  const m = { left: 64, right: 150, top: 40, bottom: 52 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="60"><text x="10" y="30">${esc(title)}: no data</text></svg>\n`;
  const x0 = Math.min(...all.map((p) => p[0]));
  const x1 = Math.max(...all.map((p) => p[0])) + 1;
  const y1 = Math.max(...all.map((p) => p[1])) * 1.08 || 1;
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const sx = (x: number): number => m.left + ((x - x0) / (x1 - x0)) * w;
  const sy = (y: number): number => m.top + h - (y / y1) * h;
  const flat = [...tariff].sort((a, b) => a - b)[Math.floor(tariff.length / 2)] ?? 0;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${(m.left + w / 2).toFixed(0)}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`);
  for (let hr = Math.floor(x0); hr < x1; hr++) {
    const price = tariff[((hr % 24) + 24) % 24] ?? flat;
    if (price === flat) continue;
    const a = Math.max(x0, hr);
    const b = Math.min(x1, hr + 1);
    out.push(`<rect x="${fmt(sx(a))}" y="${m.top}" width="${fmt(sx(b) - sx(a))}" height="${h}" fill="${price < flat ? '#e3f4e3' : '#f9e1e1'}"/>`);
  }
  for (const t of ticks(x0, x1, 8)) {
    if (t < x0 || t > x1) continue;
    out.push(`<text x="${fmt(sx(t))}" y="${m.top + h + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of ticks(0, y1)) {
    if (t > y1) continue;
    out.push(`<line x1="${m.left}" y1="${fmt(sy(t))}" x2="${m.left + w}" y2="${fmt(sy(t))}" stroke="#ddd"/>`);
    out.push(`<text x="${m.left - 8}" y="${fmt(sy(t) + 4)}" text-anchor="end">${fmt(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + w / 2}" y="${height - 12}" text-anchor="middle">simulated time (hours; green: valley tariff, red: peak)</text>`);
  out.push(`<text transform="translate(18 ${m.top + h / 2}) rotate(-90)" text-anchor="middle">IT power (kW)</text>`);
  series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length] as string;
    // A step line: each point is an hour's average.
    const d = s.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${fmt(sx(p[0]))} ${fmt(sy(p[1]))} H${fmt(sx(p[0] + 1))}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.5"/>`);
    out.push(`<line x1="${m.left + w + 12}" y1="${m.top + 14 + i * 20}" x2="${m.left + w + 32}" y2="${m.top + 14 + i * 20}" stroke="${c}" stroke-width="3"/>`);
    out.push(`<text x="${m.left + w + 38}" y="${m.top + 18 + i * 20}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
