/**
 * Synthetic demand curves that are neither A nor B, to check that a policy was not tuned to
 * them (each seeded; values per bucket, the noiseless shape's peak is 1):
 *
 * - **smooth**: one diurnal hump (peak at 15:00, trough 4 % at 03:00) with a 5 % log-normal
 *   jitter per bucket.
 * - **weekly**: office hours, two humps on weekdays (10:30 and 15:30), a third of that on days
 *   5 and 6 of each week; each hour × N(1, 0.1).
 * - **spiky**: a low diurnal base (5–30 %) with flash crowds at random times (Poisson, 4 a day):
 *   each climbs over 10 minutes to 50–100 % of the peak, holds 10–40 minutes and decays with a
 *   15-minute time constant. Their times are not in the history, so no forecaster sees them coming.
 */
import type { StreamRng } from './streamRng.ts';

export const SYNTHETIC_CURVES = ['spiky', 'smooth', 'weekly'] as const;
export type SyntheticCurveName = (typeof SYNTHETIC_CURVES)[number];

const DAY = 86_400;
const HOUR = 3600;

const diurnal = (s: number): number => ((1 + Math.cos((2 * Math.PI * (s - 15 * HOUR)) / DAY)) / 2) ** 2;
const hump = (s: number, centre: number, width: number): number => Math.exp(-0.5 * ((s - centre) / width) ** 2);

export function syntheticCurve(name: SyntheticCurveName, buckets: number, bucketSeconds: number, rng: StreamRng): Float64Array {
  const values = new Float64Array(buckets);
  const mid = (b: number): number => (b + 0.5) * bucketSeconds;
  switch (name) {
    case 'smooth':
      for (let b = 0; b < buckets; b++) values[b] = (0.04 + 0.96 * diurnal(mid(b) % DAY)) * rng.logNormal(-0.05 * 0.05 / 2, 0.05);
      return values;
    case 'weekly': {
      let factor = 1;
      const perHour = Math.max(1, Math.round(HOUR / bucketSeconds));
      for (let b = 0; b < buckets; b++) {
        if (b % perHour === 0) factor = Math.max(0, 1 + 0.1 * rng.normal());
        const t = mid(b);
        const s = t % DAY;
        const weekday = Math.floor(t / DAY) % 7 < 5;
        const shape = 0.03 + 0.97 * Math.max(hump(s, 10.5 * HOUR, 1.5 * HOUR), 0.85 * hump(s, 15.5 * HOUR, 2 * HOUR));
        values[b] = shape * (weekday ? 1 : 0.3) * factor;
      }
      return values;
    }
    case 'spiky': {
      for (let b = 0; b < buckets; b++) values[b] = 0.05 + 0.25 * diurnal(mid(b) % DAY);
      const horizon = buckets * bucketSeconds;
      // Flash crowds as a Poisson process, 4 a day.
      for (let at = rng.exponential(DAY / 4); at < horizon; at += rng.exponential(DAY / 4)) {
        const height = 0.5 + 0.5 * rng.next();
        const rise = 600;
        const hold = 600 + 1800 * rng.next();
        const decay = 900;
        const first = Math.floor(at / bucketSeconds);
        const last = Math.min(buckets - 1, Math.ceil((at + rise + hold + 6 * decay) / bucketSeconds));
        for (let b = first; b <= last; b++) {
          const dt = mid(b) - at;
          const level = dt < 0 ? 0 : dt < rise ? dt / rise : dt < rise + hold ? 1 : Math.exp(-(dt - rise - hold) / decay);
          values[b] = Math.max(values[b] as number, 0.05 + 0.25 * diurnal(mid(b) % DAY) + height * level);
        }
      }
      let peak = 0;
      for (const v of values) peak = Math.max(peak, v);
      for (let b = 0; b < buckets; b++) values[b] = Math.min(1, (values[b] as number) / Math.max(1, peak)) * rng.logNormal(-0.05 * 0.05 / 2, 0.05);
      return values;
    }
  }
}
