/**
 * `powercap`: every job starts under the power limit that minimises its energy per unit of work
 * within the slowdown its owner allows (the job's `maxSlowdown`, else the stage's default), as
 * Zeus (NSDI'23) chooses a GPU power limit, from the GPU model's cap curve (powerModel.ts). The
 * energy counted is the GPUs' plus the node's base power for as long as the job holds its share
 * of the node, since a slower job keeps the node busy longer, weighed against the hours its owner
 * waits (Zeus's η, per job: big jobs are capped deeper than small ones); while jobs wait for the
 * bind's GPU model it runs at full power (capacity is short then). The cap rides on the bind
 * (`powerCap`, a fraction of TDP): the simulator runs the job at the capped throughput and power,
 * the live server applies it with `nvidia-smi -pl` where it may.
 */
import { capEffect, gpuPower, jobWatts, minCapFraction, nodeBaseWatts, type CapPoint, type GpuPowerProfile, type PowerModel } from '../../energy/powerModel.ts';
import { CPU_MODEL, indexById, runnableModels, type JobSpec } from '../model.ts';
import type { SchedulerSnapshot } from '../scheduler.ts';
import type { EnergyPlan, PowerCappedBind, SchedulingStage } from './stage.ts';

export interface PowercapOptions {
  readonly power: PowerModel;
  /** Slowdown a job accepts when it says nothing (default 0.03). */
  readonly maxSlowdown?: number;
  /** Count the node's base power in the energy minimised (default true). */
  readonly countNodeBase?: boolean;
  /**
   * What an hour of a job's completion time is worth, in watts (per job, whatever its size;
   * default: from `eta`). Zeus weighs energy against time the same way
   * (η·E + (1−η)·P_max·T); counted per job rather than per GPU, it spends the slowdown where a
   * job's GPUs save the most energy for the hours its owner waits: on big jobs first.
   */
  readonly jctWatts?: number;
  /**
   * Unless `jctWatts` is given: Zeus's η, the weight of energy against time, jctWatts = TDP ×
   * (1 − η) ÷ η (default 0.5, Zeus's: an hour of the job's completion time is worth an hour of
   * one of its GPUs at the full limit; 1: energy alone).
   */
  readonly eta?: number;
  /**
   * The slowdown used instead, whatever the job allows, when jobs wait for GPUs of the bind's
   * model (the plan leaves them pending for want of resources): then capacity is what is short,
   * and a slower job delays the ones queued behind it too. Default 0: full power then.
   */
  readonly congestedSlowdown?: number;
}

/** Reasons that mean a job waits for GPUs (not for a deadline's cheaper hour, a quota or a node waking). */
const WAITS_FOR_GPUS: ReadonlySet<string> = new Set(['waiting-for-resources', 'waiting-for-gang', 'fragmentation', 'reserved-for-another-job', 'lower-priority']);

/**
 * 3 %: at the cap curves' knee (V100: 0.8 of TDP, −3.5 % speed for −10 % energy) and small
 * enough that Tide's combined policy, whose wake-ups from suspended nodes also delay jobs, keeps
 * average completion times within 5 % of full power on Gavel's workloads (docs/results.md).
 */
export const DEFAULT_MAX_SLOWDOWN = 0.03;
const STEP = 0.01;

/**
 * The cap fraction in [the card's lowest, 1] that minimises (gpus × (GPU watts + `baseWatts`) +
 * `jctWatts`) ÷ throughput with throughput ≥ 1 − `maxSlowdown`; 1 (no cap) when nothing beats full
 * power. Searched on a 0.01 grid, the curve's own points and where it crosses the bound.
 */
export function bestPowerCap(p: GpuPowerProfile, maxSlowdown: number, baseWatts = 0, gpus = 1, jctWatts = 0): number {
  if (!(maxSlowdown > 0)) return 1;
  const floor = 1 - maxSlowdown;
  const costAt = (f: number): number => (gpus * (jobWatts(p, f) + baseWatts) + jctWatts) / capEffect(p, f).throughput;
  const full = costAt(1);
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
    const cost = costAt(f);
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
  const eta = opts.eta ?? 0.5;
  const congestedSlowdown = opts.congestedSlowdown ?? 0;
  const cache = new Map<string, number>();
  return {
    name: 'powercap',
    after(snapshot: SchedulerSnapshot, plan: EnergyPlan): EnergyPlan {
      if (plan.binds.length === 0) return plan;
      let congested: Set<string> | undefined;
      const congestedModels = (): Set<string> => {
        if (congested) return congested;
        congested = new Set();
        for (const r of plan.pending) {
          if (!WAITS_FOR_GPUS.has(r.code)) continue;
          const spec = specOf(snapshot, r.job);
          if (spec) for (const m of runnableModels(spec)) congested.add(m);
        }
        return congested;
      };
      const binds: PowerCappedBind[] = plan.binds.map((b) => {
        if (b.model === CPU_MODEL) return b;
        const job = specOf(snapshot, b.job);
        const allowed = job?.maxSlowdown ?? fallback;
        const slowdown = allowed > congestedSlowdown && congestedModels().has(b.model) ? congestedSlowdown : allowed;
        const first = b.bindings[0];
        const node = first === undefined ? undefined : snapshot.nodes[first.placement.node]?.spec;
        // The node's base power, shared by its GPUs: what one GPU's slower run keeps burning.
        const base = countBase && node !== undefined && node.gpus.length > 0 ? nodeBaseWatts(opts.power, node) / node.gpus.length : 0;
        const gpus = b.bindings.reduce((a, t) => a + (t.placement.gpus.length * t.placement.gpuMilli) / 1000, 0);
        const key = `${b.model}|${slowdown}|${base}|${gpus}`;
        let cap = cache.get(key);
        if (cap === undefined) {
          const profile = gpuPower(opts.power, b.model);
          const worth = opts.jctWatts ?? (eta > 0 ? (profile.tdpWatts * (1 - Math.min(1, eta))) / eta : 0);
          cache.set(key, (cap = bestPowerCap(profile, slowdown, base, gpus, worth)));
        }
        return cap < 1 ? { ...b, powerCap: cap } : b;
      });
      return { ...plan, binds };
    },
  };
}
