/**
 * The tidal benchmark's chart as standalone SVG: one panel per policy over the scored days,
 * on one GPU axis: the offered load (rate × mean service time: the GPUs the requests keep
 * busy), the replicas running or starting, the GPUs lent, and a red tick above the panel for
 * every 5-minute window that missed the SLO (any seed). Lines are means over seeds, averaged
 * per 15 minutes so a week stays readable. Deterministic: same report, same bytes.
 */
import { ticks } from '../../report/svgChart.ts';
import type { TidalBenchReport } from './tidalBenchmark.ts';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => (Math.round(v * 10) / 10).toString();

const COLORS = { load: '#9e9e9e', replicas: '#1f77b4', lent: '#2ca02c', miss: '#d62728' } as const;

/** Means over consecutive groups of `every` points. */
function coarse(points: readonly (readonly [number, number])[], every: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < points.length; i += every) {
    const group = points.slice(i, i + every);
    out.push([(group[0] as readonly [number, number])[0], group.reduce((a, p) => a + p[1], 0) / group.length]);
  }
  return out;
}

export function tidalChartSvg(report: TidalBenchReport, serviceSeconds: number): string {
  const names = Object.keys(report.policies);
  const width = 1000;
  const panelH = 150;
  const gap = 46;
  const margin = { left: 60, right: 200, top: 48, bottom: 44 };
  const height = margin.top + names.length * (panelH + gap) - gap + margin.bottom;
  const plotW = width - margin.left - margin.right;
  const xMin = report.warmupDays * 24;
  const xMax = report.days * 24;
  const yMax = report.gpus;
  const sx = (x: number): number => margin.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const load = coarse(report.rateOverTime.map(([h, r]) => [h, r * serviceSeconds] as const), 3);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(`Tidal lending on curve ${report.curve}: days ${report.warmupDays}–${report.days} (scored), ${report.gpus} GPUs, seeds ${report.seeds.join(',')}`)}</text>`);
  names.forEach((name, i) => {
    const p = report.policies[name];
    if (!p) return;
    const top = margin.top + i * (panelH + gap);
    const sy = (y: number): number => top + panelH - (Math.min(y, yMax) / yMax) * panelH;
    for (const t of ticks(0, yMax, 4)) {
      const y = fmt(sy(t));
      parts.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y}" y2="${y}" stroke="#eee"/>`);
      parts.push(`<text x="${margin.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
    }
    for (let d = report.warmupDays; d <= report.days; d++) {
      const x = fmt(sx(d * 24));
      parts.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${top + panelH}" stroke="#e0e0e0"/>`);
      parts.push(`<text x="${x}" y="${top + panelH + 14}" text-anchor="middle">${d * 24}</text>`);
    }
    const path = (pts: readonly (readonly [number, number])[]): string => pts.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${fmt(sx(x))},${fmt(sy(y))}`).join(' ');
    if (load.length > 0) {
      const first = load[0] as [number, number];
      const last = load[load.length - 1] as [number, number];
      parts.push(`<path d="${path(load)} L${fmt(sx(last[0]))},${fmt(sy(0))} L${fmt(sx(first[0]))},${fmt(sy(0))} Z" fill="${COLORS.load}" fill-opacity="0.35" stroke="none"/>`);
    }
    parts.push(`<path d="${path(coarse(p.lentOverTime, 3))}" fill="none" stroke="${COLORS.lent}" stroke-width="1.4"/>`);
    parts.push(`<path d="${path(coarse(p.replicasOverTime, 3))}" fill="none" stroke="${COLORS.replicas}" stroke-width="1.4"/>`);
    const missed = [...new Set(p.perSeed.flatMap((s) => s.missedWindowHours))].sort((a, b) => a - b);
    for (const h of missed) {
      const x = fmt(sx(h));
      parts.push(`<line x1="${x}" x2="${x}" y1="${top - 9}" y2="${top - 1}" stroke="${COLORS.miss}" stroke-width="1.5"/>`);
    }
    parts.push(`<rect x="${margin.left}" y="${top}" width="${plotW}" height="${panelH}" fill="none" stroke="#333"/>`);
    const label = `${name}: SLO ${p.sloWindowsMetPct.toFixed(2)} %, useful ${p.usefulUtilisationPct.toFixed(1)} %, lent ${p.lentGpuPct.toFixed(1)} %, ${missed.length} window${missed.length === 1 ? '' : 's'} missed`;
    parts.push(`<text x="${margin.left}" y="${top - 13}" font-weight="bold">${esc(label)}</text>`);
  });
  const lx = margin.left + plotW + 14;
  const legend: [string, string, string][] = [
    ['offered load (GPUs busy)', COLORS.load, 'area'],
    ['replicas', COLORS.replicas, 'line'],
    ['GPUs lent', COLORS.lent, 'line'],
    ['SLO window missed', COLORS.miss, 'tick'],
  ];
  legend.forEach(([text, color, kind], i) => {
    const y = margin.top + 10 + i * 20;
    if (kind === 'area') parts.push(`<rect x="${lx}" y="${y - 6}" width="22" height="12" fill="${color}" fill-opacity="0.35"/>`);
    else if (kind === 'tick') parts.push(`<line x1="${lx + 11}" x2="${lx + 11}" y1="${y - 6}" y2="${y + 6}" stroke="${color}" stroke-width="2"/>`);
    else parts.push(`<line x1="${lx}" x2="${lx + 22}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 28}" y="${y}" dominant-baseline="middle">${esc(text)}</text>`);
  });
  parts.push(`<text x="${margin.left + plotW / 2}" y="${height - 10}" text-anchor="middle">simulated time (hours from the run's start); GPUs on the y axis</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
