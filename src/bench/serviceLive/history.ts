/**
 * The history a live service starts with in `tide bench service-live`: the same curve's
 * preceding days (built by the tidal simulator's curve builder with the same seed), as a team
 * moving the service onto Tide would export them from Prometheus — the request rate per minute,
 * counted from Poisson arrivals at the curve's rate (`sum(increase(requests_total[1m])) / 60`),
 * so it carries the noise real counts have. Times are relative to the replay's start (negative).
 */
import type { RatePoint } from '../../core/tidal/history.ts';
import type { RateCurve } from '../../sim/tidal/curves.ts';
import { STREAM, StreamRng } from '../../sim/tidal/streamRng.ts';

const DAY = 86_400;
/** The export's step (s): Prometheus `query_range` at 1 m. */
export const HISTORY_STEP_SECONDS = 60;

/** The first `days` days of a curve (its history) and the rest (the replay). */
export function splitCurve(full: RateCurve, days: number): { history: RateCurve; replay: RateCurve } {
  const cut = Math.round((days * DAY) / full.bucketSeconds);
  if (cut < 0 || cut >= full.values.length) throw new RangeError(`cannot take ${days} day(s) of history from a curve of ${full.values.length} buckets`);
  return {
    history: { name: full.name, bucketSeconds: full.bucketSeconds, values: full.values.slice(0, cut) },
    replay: { name: full.name, bucketSeconds: full.bucketSeconds, values: full.values.slice(cut) },
  };
}

/**
 * The history as an export would give it: one point per step, the arrivals counted in it over
 * the step (requests/s), at times from −(its length) to −step, relative to the replay's start.
 * Deterministic for (curve, peak, seed).
 */
export function exportedHistory(history: RateCurve, peakRate: number, seed: number, step = HISTORY_STEP_SECONDS): RatePoint[] {
  const B = history.bucketSeconds;
  if (B % step !== 0) throw new RangeError(`the step (${step} s) must divide the curve's bucket (${B} s)`);
  const rng = new StreamRng(seed, STREAM.history);
  const length = history.values.length * B;
  const out: RatePoint[] = [];
  for (let t = 0; t < length; t += step) {
    const mean = peakRate * (history.values[Math.floor(t / B)] as number) * step;
    // Arrivals of a Poisson process in the step: unit exponential gaps that fit in its mean.
    let n = 0;
    for (let s = rng.exponential(1); s < mean; s += rng.exponential(1)) n++;
    out.push({ t: t - length, rate: n / step });
  }
  return out;
}
