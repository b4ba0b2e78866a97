/**
 * Request-rate curves for the live service benchmark, as ../shared/docs/tidal-benchmark.md pins
 * them: curve A is the GenAI trace's `qps_5min.csv` (22.8 h) stretched by 60/57 to 24 h, each
 * hour multiplied by an independent factor ~ N(1, 0.1) clipped at 0 (the factors from the seed);
 * any other CSV `t_seconds,value` is read as it is, normalised to a peak of 1. Pure: the text of
 * the trace comes in, 5-minute buckets go out.
 */
import { Rng } from '../../core/rng.ts';
import { UserError } from '../../util/errors.ts';

/** One value per bucket of `bucketSeconds`, from t = 0. */
export interface Curve {
  readonly bucketSeconds: number;
  readonly values: readonly number[];
}

/** `t_seconds,value` rows (a header line allowed), sorted by time; errors name the file and line. */
export function parseCurveCsv(text: string, file: string): { t: number; v: number }[] {
  const rows: { t: number; v: number }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const [a, b] = line.split(',');
    const t = Number(a);
    const v = Number(b);
    if (i === 0 && !Number.isFinite(t)) return;
    if (!Number.isFinite(t) || !Number.isFinite(v) || v < 0 || t < 0) throw new UserError(`${file} line ${i + 1}: expected t_seconds,value (numbers, value ≥ 0)`);
    rows.push({ t, v });
  });
  if (rows.length === 0) throw new UserError(`${file}: no rows`);
  return rows.sort((x, y) => x.t - y.t);
}

/** The value at time t of rows held constant from each row's time to the next (the first before it). */
function heldAt(rows: readonly { t: number; v: number }[], t: number): number {
  let lo = 0;
  let hi = rows.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((rows[mid] as { t: number }).t <= t) lo = mid;
    else hi = mid - 1;
  }
  return (rows[lo] as { v: number }).v;
}

/** A standard normal from the seeded generator (Box–Muller). */
function normal(rng: Rng): number {
  const u = 1 - rng.float();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.float());
}

/** Curve A for `days` days: the trace stretched to 24 h, tiled, each hour × N(1, 0.1) clipped at 0. */
export function curveA(qps5min: string, seed: number, days = 1, file = 'qps_5min.csv'): Curve {
  const rows = parseCurveCsv(qps5min, file);
  const peak = Math.max(...rows.map((r) => r.v)) || 1;
  const span = (rows[rows.length - 1] as { t: number }).t + 300;
  const stretch = 86_400 / span;
  const rng = Rng.fromSeed(seed);
  const factors = Array.from({ length: 24 * days }, () => Math.max(0, 1 + 0.1 * normal(rng)));
  const values: number[] = [];
  for (let k = 0; k < 288 * days; k++) {
    const t = (k * 300) % 86_400;
    values.push((heldAt(rows, t / stretch) / peak) * (factors[Math.floor((k * 300) / 3600)] as number));
  }
  return { bucketSeconds: 300, values };
}

/** Any `t_seconds,value` CSV as 5-minute buckets over `days` days (tiled), normalised to a peak of 1. */
export function curveFromCsv(text: string, file: string, days = 1): Curve {
  const rows = parseCurveCsv(text, file);
  const peak = Math.max(...rows.map((r) => r.v)) || 1;
  const step = rows.length > 1 ? (rows[1] as { t: number }).t - (rows[0] as { t: number }).t : 300;
  const span = (rows[rows.length - 1] as { t: number }).t + step;
  return { bucketSeconds: 300, values: Array.from({ length: 288 * days }, (_, k) => heldAt(rows, (k * 300) % span) / peak) };
}

/** The curve as CSV text for examples/service/loadgen.mjs. */
export function curveCsv(c: Curve): string {
  return `t_seconds,value\n${c.values.map((v, k) => `${k * c.bucketSeconds},${v.toFixed(5)}`).join('\n')}\n`;
}
