/**
 * Live against simulated: average job completion time (JCT: end − submit) of each, their
 * relative difference, and how alike the two start orders are (Kendall's τ-b over every pair
 * of jobs that started in both; ties count as neither concordant nor discordant).
 */
import type { JobTimes } from './simTwin.ts';

/** Kendall's τ-b of two equally long samples (1: same order; −1: reversed; NaN: fewer than 2). */
export function kendallTau(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw new RangeError(`kendallTau: ${x.length} against ${y.length} values`);
  const n = x.length;
  let concordant = 0;
  let discordant = 0;
  let tiesX = 0;
  let tiesY = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = Math.sign((x[j] as number) - (x[i] as number));
      const dy = Math.sign((y[j] as number) - (y[i] as number));
      if (dx === 0 && dy === 0) continue;
      if (dx === 0) tiesX++;
      else if (dy === 0) tiesY++;
      else if (dx === dy) concordant++;
      else discordant++;
    }
  }
  const denom = Math.sqrt((concordant + discordant + tiesX) * (concordant + discordant + tiesY));
  return denom === 0 ? NaN : (concordant - discordant) / denom;
}

export const jct = (t: JobTimes): number | null => (t.end === null ? null : t.end - t.submit);

export function averageJct(jobs: readonly JobTimes[]): number {
  const v = jobs.map(jct).filter((x): x is number => x !== null);
  return v.length === 0 ? NaN : v.reduce((s, x) => s + x, 0) / v.length;
}

export interface Agreement {
  readonly avgJctLive: number;
  readonly avgJctSim: number;
  /** |sim − live| / live. */
  readonly jctError: number;
  /** τ-b of first-start times, over jobs that started in both runs. */
  readonly startOrderTau: number;
  /** Jobs compared (ended in both runs). */
  readonly jobs: number;
  /** Mean over jobs of |sim JCT − live JCT| (seconds). */
  readonly meanAbsJobError: number;
  readonly makespanLive: number;
  readonly makespanSim: number;
}

/** Compares a live run with its simulated twin, job by job (same index in both lists). */
export function agreement(live: readonly JobTimes[], sim: readonly JobTimes[]): Agreement {
  if (live.length !== sim.length) throw new RangeError(`agreement: ${live.length} live jobs against ${sim.length} simulated`);
  const both = live.map((l, i) => [l, sim[i] as JobTimes] as const).filter(([l, s]) => l.end !== null && s.end !== null);
  const started = live.map((l, i) => [l, sim[i] as JobTimes] as const).filter(([l, s]) => l.start !== null && s.start !== null);
  const avgJctLive = averageJct(both.map(([l]) => l));
  const avgJctSim = averageJct(both.map(([, s]) => s));
  const errs = both.map(([l, s]) => Math.abs((jct(s) as number) - (jct(l) as number)));
  return {
    avgJctLive,
    avgJctSim,
    jctError: Math.abs(avgJctSim - avgJctLive) / avgJctLive,
    startOrderTau: kendallTau(
      started.map(([l]) => l.start as number),
      started.map(([, s]) => s.start as number),
    ),
    jobs: both.length,
    meanAbsJobError: errs.length === 0 ? NaN : errs.reduce((a, b) => a + b, 0) / errs.length,
    makespanLive: Math.max(0, ...live.map((t) => t.end ?? 0)),
    makespanSim: Math.max(0, ...sim.map((t) => t.end ?? 0)),
  };
}
