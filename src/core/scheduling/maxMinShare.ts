/**
 * Gavel's max-min fair share as a linear programme (OSDI'20, `MaxMinFairnessPolicyWithPerf`).
 * X[j][k] is the fraction of time job j should run on GPU model k. Maximise t subject to
 *   t ≤ gpus_j · Σ_k T[j][k] · X[j][k] / (E_j · w_j)   for every job j,
 *   Σ_k X[j][k] ≤ 1,   Σ_j gpus_j · X[j][k] ≤ N_k,   X ≥ 0,
 * where T is the job's throughput on k and E_j its throughput under an equal share of every
 * model (Σ_k T[j][k] · N_k / N). The heterogeneity-agnostic variant (Gavel's "LAS") sets
 * every T to 1 where the job can run and E to 1: equal GPU time for every job.
 *
 * Jobs with the same GPU count, weight and throughputs are interchangeable, so the programme
 * is solved once per such class: by symmetry and convexity a max-min optimum exists that gives
 * every job of a class the same X. That keeps the LP at (classes × models) variables however
 * long the queue is, and picks the symmetric optimum among equals, as an interior-point solver
 * (Gavel used ECOS) would.
 */
import type { GpuModel } from '../model.ts';
import type { LinearProgram, LpSolver, LpTerm } from '../lp.ts';

export interface ShareJob {
  readonly id: string;
  readonly gpus: number;
  readonly weight: number;
  /** Steps/s on each model, aligned with the models array (0: cannot run there). */
  readonly throughput: readonly number[];
}

export interface ShareResult {
  /** Job id → fraction of time per model (aligned with the models array). */
  readonly allocation: ReadonlyMap<string, Float64Array>;
  /** The optimum t (the smallest normalised share). */
  readonly minShare: number;
  readonly classes: number;
}

export function maxMinShare(jobs: readonly ShareJob[], models: readonly GpuModel[], capacity: readonly number[], aware: boolean, lp: LpSolver): ShareResult {
  const allocation = new Map<string, Float64Array>();
  if (jobs.length === 0) return { allocation, minShare: 0, classes: 0 };
  const total = capacity.reduce((a, b) => a + b, 0);
  const classes = new Map<string, { members: ShareJob[]; rates: number[]; gpus: number; weight: number }>();
  for (const j of jobs) {
    const rates = j.throughput.map((v) => (v > 0 ? (aware ? v : 1) : 0));
    const key = `${j.gpus}|${j.weight}|${rates.join(',')}`;
    const c = classes.get(key) ?? { members: [], rates, gpus: j.gpus, weight: j.weight };
    c.members.push(j);
    classes.set(key, c);
  }
  const list = [...classes.values()];
  const constraints: LinearProgram['constraints'][number][] = [];
  const perModel: LpTerm[][] = models.map(() => []);
  list.forEach((c, ci) => {
    const equalShare = aware ? c.rates.reduce((a, r, k) => a + (r * (capacity[k] ?? 0)) / total, 0) : 1;
    const share: LpTerm[] = [];
    const sum: LpTerm[] = [];
    c.rates.forEach((r, k) => {
      if (r <= 0 || (capacity[k] ?? 0) === 0) return;
      const v = `x${ci}_${k}`;
      share.push({ variable: v, coef: (c.gpus * r) / (equalShare * c.weight) });
      sum.push({ variable: v, coef: 1 });
      perModel[k]?.push({ variable: v, coef: c.gpus * c.members.length });
    });
    if (share.length === 0) return;
    constraints.push({ name: `share${ci}`, terms: [...share, { variable: 't', coef: -1 }], op: '>=', rhs: 0 });
    constraints.push({ name: `time${ci}`, terms: sum, op: '<=', rhs: 1 });
  });
  perModel.forEach((terms, k) => {
    if (terms.length > 0) constraints.push({ name: `cap${k}`, terms, op: '<=', rhs: capacity[k] ?? 0 });
  });
  if (!constraints.some((c) => c.name.startsWith('share'))) return { allocation, minShare: 0, classes: list.length };
  const result = lp.solve({ sense: 'maximize', objective: [{ variable: 't', coef: 1 }], constraints, free: ['t'] });
  if (result.status !== 'optimal') throw new Error(`max-min fair share LP: ${result.status} (${result.message})`);
  list.forEach((c, ci) => {
    const x = new Float64Array(models.length);
    for (let k = 0; k < models.length; k++) x[k] = Math.min(1, Math.max(0, result.values.get(`x${ci}_${k}`) ?? 0));
    for (const j of c.members) allocation.set(j.id, x);
  });
  return { allocation, minShare: result.values.get('t') ?? 0, classes: list.length };
}
