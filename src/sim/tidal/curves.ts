/**
 * Request-rate curves for the tidal benchmark, as one value per 5-minute bucket (the rate is
 * λ_peak × value; the base curve's peak is 1). Built exactly as `tidal-benchmark.md` says:
 *
 * - **A**: `genai-2026/qps_5min.csv`, stretched by 60/57 onto 24 h (the last 126 s of the
 *   stretched day fall off), tiled, each simulated hour × an independent N(1, 0.1) clipped at 0.
 * - **B**: `genai-2026/lora_requests_hourly.csv`, requests per hour over the file's peak, held
 *   within the hour, each 5-minute bucket × a log-normal texture (σ = 0.2, mean 1); a run longer
 *   than the file's 23.75 days tiles it.
 * - **FILE**: any CSV with `t_seconds` and `value` (or one other column): a step function (each
 *   row holds until the next; the last for as long as the step before it), tiled, averaged per
 *   bucket, its peak made 1. No noise is added.
 * - **spiky / smooth / weekly**: synthetic shapes that are not A or B (synthetic.ts).
 */
import { join } from 'node:path';
import { readCsv } from '../../traces/csv.ts';
import { inputError, UserError } from '../../util/errors.ts';
import { STREAM, StreamRng } from './streamRng.ts';
import { SYNTHETIC_CURVES, syntheticCurve, type SyntheticCurveName } from './synthetic.ts';

export const BUCKET_SECONDS = 300;
const DAY = 86_400;

export interface RateCurve {
  readonly name: string;
  readonly bucketSeconds: number;
  /** One value per bucket from time 0; the rate in bucket b is λ_peak × values[b]. */
  readonly values: Float64Array;
}

export type CurveSpec =
  | { readonly kind: 'A'; readonly tracesDir: string }
  | { readonly kind: 'B'; readonly tracesDir: string }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'synthetic'; readonly name: SyntheticCurveName };

/** `A`, `B`, a synthetic curve's name, or a file. */
export function parseCurveSpec(value: string, tracesDir: string): CurveSpec {
  if (value === 'A' || value === 'B') return { kind: value, tracesDir };
  if ((SYNTHETIC_CURVES as readonly string[]).includes(value)) return { kind: 'synthetic', name: value as SyntheticCurveName };
  return { kind: 'file', path: value };
}

export function curveLabel(spec: CurveSpec): string {
  return spec.kind === 'file' ? spec.path : spec.kind === 'synthetic' ? spec.name : spec.kind;
}

/** A step function: value[i] holds on [times[i], times[i + 1]) and the last one until `period`; repeats with `period`. */
export interface StepFunction {
  readonly times: Float64Array;
  readonly values: Float64Array;
  readonly period: number;
}

/** Reads `t_seconds,value` rows (or t_seconds and one other column) as a step function. */
export function readStepFile(file: string): StepFunction {
  const table = readCsv(file, ['t_seconds']);
  const others = table.header.filter((h) => h !== 't_seconds');
  const column = others.includes('value') ? 'value' : others[0];
  if (column === undefined) throw inputError(file, 1, null, 'expected a value column beside t_seconds (t_seconds,value)');
  const times: number[] = [];
  const values: number[] = [];
  for (const row of table.rows) {
    const tRaw = row.get('t_seconds');
    const vRaw = row.get(column);
    const t = tRaw === '' ? NaN : Number(tRaw);
    const v = vRaw === '' ? NaN : Number(vRaw);
    if (!Number.isFinite(t) || t < 0) throw inputError(file, row.line, 't_seconds', `'${tRaw}' is not a time in seconds ≥ 0`);
    if (times.length > 0 && t <= (times[times.length - 1] as number)) throw inputError(file, row.line, 't_seconds', `${t} does not come after ${times[times.length - 1]}: times must increase`);
    if (!Number.isFinite(v) || v < 0) throw inputError(file, row.line, column, `'${vRaw}' is not a number ≥ 0`);
    times.push(t);
    values.push(v);
  }
  if (!values.some((v) => v > 0)) throw new UserError(`${file}: every ${column} is 0: a rate curve needs a peak above 0`);
  const n = times.length;
  const step = n >= 2 ? (times[n - 1] as number) - (times[n - 2] as number) : BUCKET_SECONDS;
  times[0] = 0; // the first value holds from time 0
  return { times: Float64Array.from(times), values: Float64Array.from(values), period: (times[n - 1] as number) + step };
}

/** Bucket means of a (periodic) step function over `buckets` buckets from time 0. */
export function bucketMeans(f: StepFunction, buckets: number, bucketSeconds = BUCKET_SECONDS): Float64Array {
  const { times, values, period } = f;
  const n = times.length;
  // cum[i]: ∫ from 0 to times[i] (times clipped to the period).
  const cum = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) {
    const start = Math.min(times[i] as number, period);
    const end = i + 1 < n ? Math.min(times[i + 1] as number, period) : period;
    cum[i + 1] = (cum[i] as number) + (values[i] as number) * Math.max(0, end - start);
  }
  const perPeriod = cum[n] as number;
  const within = (r: number): number => {
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((times[mid] as number) <= r) lo = mid;
      else hi = mid - 1;
    }
    return (cum[lo] as number) + (values[lo] as number) * Math.max(0, r - (times[lo] as number));
  };
  const integral = (x: number): number => {
    const whole = Math.floor(x / period);
    return whole * perPeriod + within(x - whole * period);
  };
  const out = new Float64Array(buckets);
  let prev = 0;
  for (let b = 0; b < buckets; b++) {
    const next = integral((b + 1) * bucketSeconds);
    out[b] = (next - prev) / bucketSeconds;
    prev = next;
  }
  return out;
}

function normalise(values: Float64Array): Float64Array {
  let peak = 0;
  for (const v of values) peak = Math.max(peak, v);
  if (peak > 0) for (let i = 0; i < values.length; i++) values[i] = (values[i] as number) / peak;
  return values;
}

function scaleTime(f: StepFunction, factor: number, period: number): StepFunction {
  return { times: f.times.map((t) => t * factor), values: f.values, period };
}

/** Builds the curve for a run of `days` days with `seed` (which drives A's hourly factors, B's texture and the synthetic shapes). */
export function buildCurve(spec: CurveSpec, days: number, seed: number): RateCurve {
  const buckets = Math.round((days * DAY) / BUCKET_SECONDS);
  const rng = new StreamRng(seed, STREAM.curve);
  switch (spec.kind) {
    case 'A': {
      const raw = readStepFile(join(spec.tracesDir, 'qps_5min.csv'));
      // Stretched by 60/57 onto a 24-hour day; whatever of it falls after 24 h is cut.
      const base = normalise(bucketMeans(scaleTime(raw, 60 / 57, DAY), buckets));
      const values = new Float64Array(buckets);
      const perHour = 3600 / BUCKET_SECONDS;
      let factor = 1;
      for (let b = 0; b < buckets; b++) {
        if (b % perHour === 0) factor = Math.max(0, 1 + 0.1 * rng.normal());
        values[b] = (base[b] as number) * factor;
      }
      return { name: 'A', bucketSeconds: BUCKET_SECONDS, values };
    }
    case 'B': {
      const raw = readStepFile(join(spec.tracesDir, 'lora_requests_hourly.csv'));
      let peak = 0;
      for (const v of raw.values) peak = Math.max(peak, v);
      const base = bucketMeans(raw, buckets);
      const sigma = 0.2;
      const values = new Float64Array(buckets);
      for (let b = 0; b < buckets; b++) values[b] = ((base[b] as number) / peak) * rng.logNormal(-(sigma * sigma) / 2, sigma);
      return { name: 'B', bucketSeconds: BUCKET_SECONDS, values };
    }
    case 'file':
      return { name: spec.path, bucketSeconds: BUCKET_SECONDS, values: normalise(bucketMeans(readStepFile(spec.path), buckets)) };
    case 'synthetic':
      return { name: spec.name, bucketSeconds: BUCKET_SECONDS, values: syntheticCurve(spec.name, buckets, BUCKET_SECONDS, rng) };
  }
}
