/**
 * `powercap`: every job starts under the power limit that minimises its energy per unit of work
 * within the slowdown its owner allows (the job's `maxSlowdown`, else the stage's default), as
 * Zeus (NSDI'23) chooses a GPU power limit, from the GPU model's cap curve (powerModel.ts). The
 * energy counted is the GPUs' plus the node's base power for as long as the job holds its share
 * of the node, since a slower job keeps the node busy longer. The cap rides on the bind
 * (`powerCap`, a fraction of TDP): the simulator runs the job at the capped throughput and power,
 * the live server applies it with `nvidia-smi -pl` where it may.
 */
import { capEffect, gpuPower, jobWatts, minCapFraction, nodeBaseWatts, type CapPoint, type GpuPowerProfile, type PowerModel } from '../../energy/powerModel.ts';
import { CPU_MODEL, indexById, type JobSpec } from '../model.ts';
import type { SchedulerSnapshot } from '../scheduler.ts';
import type { EnergyPlan, PowerCappedBind, SchedulingStage } from './stage.ts';

export interface PowercapOptions {
  readonly power: PowerModel;
  /** Slowdown a job accepts when it says nothing (default 0.05). */
  readonly maxSlowdown?: number;
  /** Count the node's base power in the energy minimised (default true). */
  readonly countNodeBase?: boolean;
}

export const DEFAULT_MAX_SLOWDOWN = 0.05;
const STEP = 0.01;

/**
 * The cap fraction in [the card's lowest, 1] that minimises (GPU watts + `baseWatts`) ÷ throughput
 * with throughput ≥ 1 − `maxSlowdown`; 1 (no cap) when nothing beats full power. Searched on a
 * 0.01 grid, the curve's own points and where it crosses the bound.
 */
export function bestPowerCap(p: GpuPowerProfile, maxSlowdown: number, baseWatts = 0): number {
  if (!(maxSlowdown > 0)) return 1;
  const floor = 1 - maxSlowdown;
  const full = jobWatts(p, 1) + baseWatts;
  let best = 1;
  let bestCost = full;
  const lo = minCapFraction(p);
  const candidates = new Set<number>();
  for (let f = 1; f >= lo - 1e-9; f = Math.round((f - STEP) * 1000) / 1000) candidates.add(f);
  for (const pt of p.capCurve) if (pt.fraction >= lo) candidates.add(pt.fraction);
  candidates.add(lo);
  // Where the curve crosses the slowdown bound: the lowest cap allowed on that segment.
  for (let i = 1; i < p.capCurve.length; i++) {
    const a = p.capCurve[i - 1] as CapPoint;
    const b = p.capCurve[i] as CapPoint;
    if ((a.throughput - floor) * (b.throughput - floor) < 0) {
      const f = a.fraction + ((floor - a.throughput) / (b.throughput - a.throughput)) * (b.fraction - a.fraction);
      if (f >= lo) candidates.add(f);
    }
  }
  for (const f of [...candidates].sort((a, b) => b - a)) {
    const e = capEffect(p, f);
    if (e.throughput < floor - 1e-12) continue;
    const cost = (jobWatts(p, f) + baseWatts) / e.throughput;
    if (cost < bestCost - 1e-9) {
      best = f;
      bestCost = cost;
    }
  }
  return best;
}

/** The job's spec from the snapshot's lists (both sorted by id). */
function specOf(s: SchedulerSnapshot, id: string): JobSpec | undefined {
  const p = s.pending[indexById(s.pending, id)];
  if (p?.spec.id === id) return p.spec;
  const r = s.running[indexById(s.running, id)];
  return r?.spec.id === id ? r.spec : undefined;
}

export function powercapStage(opts: PowercapOptions): SchedulingStage {
  const fallback = opts.maxSlowdown ?? DEFAULT_MAX_SLOWDOWN;
  const countBase = opts.countNodeBase ?? true;
  const cache = new Map<string, number>();
  return {
    name: 'powercap',
    after(snapshot: SchedulerSnapshot, plan: EnergyPlan): EnergyPlan {
      if (plan.binds.length === 0) return plan;
      const binds: PowerCappedBind[] = plan.binds.map((b) => {
        if (b.model === CPU_MODEL) return b;
        const job = specOf(snapshot, b.job);
        const slowdown = job?.maxSlowdown ?? fallback;
        const first = b.bindings[0];
        const node = first === undefined ? undefined : snapshot.nodes[first.placement.node]?.spec;
        // The node's base power, shared by its GPUs: what one GPU's slower run keeps burning.
        const base = countBase && node !== undefined && node.gpus.length > 0 ? nodeBaseWatts(opts.power, node) / node.gpus.length : 0;
        const key = `${b.model}|${slowdown}|${base}`;
        let cap = cache.get(key);
        if (cap === undefined) cache.set(key, (cap = bestPowerCap(gpuPower(opts.power, b.model), slowdown, base)));
        return cap < 1 ? { ...b, powerCap: cap } : b;
      });
      return { ...plan, binds };
    },
  };
}
