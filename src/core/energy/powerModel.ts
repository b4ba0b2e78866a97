/**
 * The power model: what a GPU draws idle, idle with a job's memory held, and at the load a job
 * runs at; what a power cap costs in throughput and saves in power; what a node draws besides
 * its GPUs. Shared by the simulator's accounting, the energy-aware scheduling stages and the live
 * server (for simulated GPUs). Pure data and arithmetic.
 *
 * Defaults come from ../shared/data/power/ (read there, never copied: the numbers below carry
 * their source per row). A value that is not a measurement or datasheet figure for that card is
 * listed in the profile's `extrapolated`; `tide bench energy` prints which ones it used.
 * A cluster overrides any of them in its config's `power:` section (mergePowerConfig).
 */
import type { NodeSpec } from '../model.ts';

/** One point of a power-cap curve, relative to the same job at the full limit (TDP). */
export interface CapPoint {
  /** Power limit ÷ TDP, in (0, 1]. */
  readonly fraction: number;
  /** Throughput relative to the full limit. */
  readonly throughput: number;
  /** Energy per unit of work relative to the full limit. */
  readonly energy: number;
}

export type PowerField = 'tdp' | 'minCap' | 'idle' | 'idleWithMemory' | 'load' | 'capCurve';

export interface GpuPowerProfile {
  /** Board power limit at its default (= maximum), W. */
  readonly tdpWatts: number;
  /** Lowest power limit the driver accepts, W (= tdpWatts: the card cannot be capped). */
  readonly minCapWatts: number;
  /** Idle, no process (P8), W. */
  readonly idleWatts: number;
  /** Idle with a job's context and memory held, computing nothing (P0), W. */
  readonly idleWithMemoryWatts: number;
  /** Board power of a typical training job at the full limit, ÷ TDP. */
  readonly loadFraction: number;
  /** Throughput and energy by power limit ÷ TDP, ascending, ending at fraction 1. */
  readonly capCurve: readonly CapPoint[];
  /** Where the numbers come from. */
  readonly source: string;
  /** The values that are extrapolations rather than figures for this card. */
  readonly extrapolated: readonly PowerField[];
}

/**
 * What a node draws besides its GPUs while powered (constant: CPUs at an average load, memory,
 * fans): `baseWatts` when set, else perNode + perCore × cores + perGib × memory GiB.
 */
export interface NodePowerProfile {
  readonly baseWatts?: number;
  readonly perNodeWatts: number;
  readonly perCoreWatts: number;
  readonly perGibWatts: number;
  /** A suspended (powered-down) node's draw, W. */
  readonly suspendedWatts: number;
  readonly source: string;
}

export interface PowerModel {
  /** By GPU model name (matched as a word in the reported name: "Tesla V100-SXM2-32GB" → V100). */
  readonly gpus: Readonly<Record<string, GpuPowerProfile>>;
  /** For models none of `gpus` matches. */
  readonly fallback: GpuPowerProfile;
  readonly node: NodePowerProfile;
}

const DATA = '../shared/data/power';
const curve = (rows: readonly (readonly [number, number, number])[]): CapPoint[] => rows.map(([fraction, throughput, energy]) => ({ fraction, throughput, energy }));

/** Zeus (NSDI'23) trace, V100 PCIe 250 W, median of 68 configurations (default_powercap_curves.csv). Measured. */
const ZEUS_V100 = curve([[0.4, 0.725, 0.836], [0.5, 0.853, 0.796], [0.6, 0.899, 0.806], [0.7, 0.941, 0.845], [0.8, 0.965, 0.897], [0.9, 0.987, 0.954], [1, 1, 1]]);
/** Zeus trace, P100 PCIe 250 W, median of 45 configurations (swept 125–250 W). Measured. */
const ZEUS_P100 = curve([[0.5, 0.944, 0.88], [0.6, 0.965, 0.927], [0.7, 0.984, 0.95], [0.8, 0.995, 0.986], [0.9, 0.999, 1.003], [1, 1, 1]]);
/**
 * GENERIC_DEFAULT of default_powercap_curves.csv: median of the V100, A40 and RTX 6000 medians.
 * For any other card an extrapolation by fraction of TDP.
 */
export const GENERIC_CAP_CURVE: readonly CapPoint[] = curve([[0.4, 0.59, 0.961], [0.5, 0.84, 0.796], [0.6, 0.923, 0.806], [0.7, 0.959, 0.845], [0.8, 0.977, 0.897], [0.9, 0.987, 0.954], [1, 1, 1]]);

/**
 * Training board power at the full limit ÷ TDP: the median of the Zeus trace's per-card medians
 * (V100 0.71, A40 0.68, RTX 6000 0.74, P100 0.48; power_vs_utilization.csv) is 0.70. An
 * extrapolation for the cards Zeus did not measure.
 */
export const TYPICAL_LOAD_FRACTION = 0.7;
/**
 * Idle with memory held ÷ idle, where only idle was read: 1.6, the median of the cards with both
 * readings in gpu_specs.csv (A100 85/62, V100 56/40, H200 122/75, K80 57/30, L40S 83/33).
 */
export const IDLE_WITH_MEMORY_RATIO = 1.6;

/**
 * Defaults per GPU model (gpu_specs.csv unless the row says otherwise; `code-index id` readings
 * are nvidia-smi/npu-smi snapshots from public files listed there).
 */
export const DEFAULT_GPU_POWER: Readonly<Record<string, GpuPowerProfile>> = {
  // H200 SXM: TDP 700 W, limit 200–700 W (datasheet as quoted; arXiv 2604.11391); idle 73–76 W, 122 W with 130 GB allocated.
  H200: { tdpWatts: 700, minCapWatts: 200, idleWatts: 75, idleWithMemoryWatts: 122, loadFraction: TYPICAL_LOAD_FRACTION, capCurve: GENERIC_CAP_CURVE, source: `${DATA}/gpu_specs.csv (H200)`, extrapolated: ['load', 'capCurve'] },
  // H100 SXM 80GB: TDP 700 W (mlco2 → datasheet), limit 200–700 W; idle 67–73 W; no reading with memory held (×1.6).
  H100: { tdpWatts: 700, minCapWatts: 200, idleWatts: 70, idleWithMemoryWatts: 70 * IDLE_WITH_MEMORY_RATIO, loadFraction: TYPICAL_LOAD_FRACTION, capCurve: GENERIC_CAP_CURVE, source: `${DATA}/gpu_specs.csv (H100 SXM 80GB)`, extrapolated: ['idleWithMemory', 'load', 'capCurve'] },
  // A100 SXM4 80GB: TDP 400 W, limit 100–400 W (nvidia-docker#1648); idle 62 W, 85 W with 80 GB allocated.
  A100: { tdpWatts: 400, minCapWatts: 100, idleWatts: 60, idleWithMemoryWatts: 85, loadFraction: TYPICAL_LOAD_FRACTION, capCurve: GENERIC_CAP_CURVE, source: `${DATA}/gpu_specs.csv (A100 SXM4 80GB)`, extrapolated: ['load', 'capCurve'] },
  // A10: TDP 150 W, limit 100–150 W; idle 20 W (P8 8–23 W), 54 W in P0 idle.
  A10: { tdpWatts: 150, minCapWatts: 100, idleWatts: 20, idleWithMemoryWatts: 54, loadFraction: TYPICAL_LOAD_FRACTION, capCurve: GENERIC_CAP_CURVE, source: `${DATA}/gpu_specs.csv (A10)`, extrapolated: ['load', 'capCurve'] },
  // L40S: TDP 350 W; lowest limit not found (taken as 0.4 of TDP, the curve's lowest point); idle 33 W, 83 W with 41 GB allocated.
  L40S: { tdpWatts: 350, minCapWatts: 140, idleWatts: 33, idleWithMemoryWatts: 83, loadFraction: TYPICAL_LOAD_FRACTION, capCurve: GENERIC_CAP_CURVE, source: `${DATA}/gpu_specs.csv (L40S)`, extrapolated: ['minCap', 'load', 'capCurve'] },
  // V100 SXM2: TDP 300 W, limit 150 W (unverified); idle 40 W, 56 W in P0 at 0 %; load 0.71 and curve from Zeus's V100 PCIe (by fraction of TDP).
  V100: { tdpWatts: 300, minCapWatts: 150, idleWatts: 40, idleWithMemoryWatts: 56, loadFraction: 0.71, capCurve: ZEUS_V100, source: `${DATA}/gpu_specs.csv (V100 SXM2); ${DATA}/default_powercap_curves.csv (V100, Zeus)`, extrapolated: ['minCap'] },
  // T4: TDP 70 W, limit 60–70 W (so capping hardly applies); idle 10 W, 25–34 W in P0 idle.
  T4: { tdpWatts: 70, minCapWatts: 60, idleWatts: 10, idleWithMemoryWatts: 30, loadFraction: TYPICAL_LOAD_FRACTION, capCurve: GENERIC_CAP_CURVE, source: `${DATA}/gpu_specs.csv (T4)`, extrapolated: ['load', 'capCurve'] },
  // P100 PCIe (as Zeus swept it): TDP 250 W, limit 125–250 W; idle 35 W; load 0.48 and curve from Zeus's P100.
  P100: { tdpWatts: 250, minCapWatts: 125, idleWatts: 35, idleWithMemoryWatts: 35 * IDLE_WITH_MEMORY_RATIO, loadFraction: 0.48, capCurve: ZEUS_P100, source: `${DATA}/gpu_specs.csv (P100); ${DATA}/default_powercap_curves.csv (P100, Zeus)`, extrapolated: ['idleWithMemory'] },
  // Ascend 910B: TDP 400 W (310–400 by variant, unverified); capping through npu-smi not confirmed (min = TDP); idle 85–105 W (npu-smi).
  'Ascend 910B': { tdpWatts: 400, minCapWatts: 400, idleWatts: 95, idleWithMemoryWatts: 95 * IDLE_WITH_MEMORY_RATIO, loadFraction: TYPICAL_LOAD_FRACTION, capCurve: [{ fraction: 1, throughput: 1, energy: 1 }], source: `${DATA}/gpu_specs.csv (Ascend 910B)`, extrapolated: ['tdp', 'idleWithMemory', 'load'] },
  // K80, one GK210 of the board as nvidia-smi shows it (Gavel's cluster): limit 149 W; idle 30 W in P8 (code-index id
  // 20312906761), 57–61 W in P0 with a context (ids 14190536793, 42602942747); under load 59–88 W, median 74 W = 0.50 of
  // 149 W (ids 29463752703, 33484111473, 9009279721, 10551808351, 48997458407, 1289148665, 47481359809). Lowest limit
  // not found (taken as 100 W); no cap sweep.
  K80: { tdpWatts: 149, minCapWatts: 100, idleWatts: 30, idleWithMemoryWatts: 59, loadFraction: 0.5, capCurve: GENERIC_CAP_CURVE, source: 'nvidia-smi readings in public files (code-index ids in powerModel.ts)', extrapolated: ['minCap', 'capCurve'] },
};

/** A card nobody describes: a 300 W board with CCF's idle ÷ max ratio (0.12, power_vs_utilization.csv). */
export const FALLBACK_GPU_POWER: GpuPowerProfile = {
  tdpWatts: 300,
  minCapWatts: 120,
  idleWatts: 36,
  idleWithMemoryWatts: 36 * IDLE_WITH_MEMORY_RATIO,
  loadFraction: TYPICAL_LOAD_FRACTION,
  capCurve: GENERIC_CAP_CURVE,
  source: 'fallback for an unknown model (CCF idle/max ratio 0.12 of a 300 W board)',
  extrapolated: ['tdp', 'minCap', 'idle', 'idleWithMemory', 'load', 'capCurve'],
};

/**
 * Cloud Carbon Footprint's coefficients (Methodology.md, Appendix I, AWS): 0.74 W per vCPU idle,
 * 3.5 W at 100 %, at its 50 % average utilisation 2.12 W; memory 0.392 W per GB. A core of the
 * node spec counts as a vCPU. Suspended: assumed powered off.
 */
export const DEFAULT_NODE_POWER: NodePowerProfile = {
  perNodeWatts: 0,
  perCoreWatts: 0.74 + 0.5 * (3.5 - 0.74),
  perGibWatts: 0.392,
  suspendedWatts: 0,
  source: 'cloud-carbon-footprint Methodology.md, Appendix I (AWS vCPU and memory coefficients, 50 % CPU utilisation)',
};

export const DEFAULT_POWER_MODEL: PowerModel = { gpus: DEFAULT_GPU_POWER, fallback: FALLBACK_GPU_POWER, node: DEFAULT_NODE_POWER };

const lookups = new WeakMap<PowerModel, Map<string, GpuPowerProfile>>();
const normal = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9]/g, '');

/**
 * The profile of a GPU model: its own entry, else the longest key found in the name, where a key
 * that ends in a digit must not be followed by one ("NVIDIA A100-SXM4-80GB" → A100, A10 does not
 * match A100, "Ascend910B3" → Ascend 910B; case, spaces and dashes are ignored), else the fallback.
 */
export function gpuPower(model: PowerModel, gpuModel: string): GpuPowerProfile {
  let cache = lookups.get(model);
  if (!cache) lookups.set(model, (cache = new Map()));
  const hit = cache.get(gpuModel);
  if (hit) return hit;
  let found: GpuPowerProfile | undefined = Object.hasOwn(model.gpus, gpuModel) ? model.gpus[gpuModel] : undefined;
  if (!found) {
    // The name without separators, and where separators were ("H100 80GB": a boundary after H100).
    const parts = gpuModel.toUpperCase().split(/[^A-Z0-9]+/).filter((x) => x !== '');
    const name = parts.join('');
    const boundary = new Set<number>();
    for (let i = 0, at = 0; i < parts.length; i++) boundary.add((at += (parts[i] as string).length));
    let longest = 0;
    for (const [key, profile] of Object.entries(model.gpus)) {
      const k = normal(key);
      if (k.length <= longest) continue;
      for (let at = name.indexOf(k); at >= 0; at = name.indexOf(k, at + 1)) {
        const end = at + k.length;
        // "A10" in "A100": a digit right after a digit. "H100SXM", "910B3", "H100 80GB": fine.
        if (boundary.has(end) || !/[0-9]/.test(name[end] as string) || !/[0-9]/.test(k[k.length - 1] as string)) {
          found = profile;
          longest = k.length;
          break;
        }
      }
    }
  }
  const profile = found ?? model.fallback;
  cache.set(gpuModel, profile);
  return profile;
}

/** Board power at utilisation `u` ∈ [0, 1]: idle + u × (TDP − idle) (the linear model of CCF and others). */
export function powerAtUtilization(p: GpuPowerProfile, u: number): number {
  const x = Math.min(1, Math.max(0, u));
  return p.idleWatts + x * (p.tdpWatts - p.idleWatts);
}

/** The lowest power-limit fraction the card and its curve allow. */
export function minCapFraction(p: GpuPowerProfile): number {
  const first = p.capCurve[0]?.fraction ?? 1;
  return Math.min(1, Math.max(p.minCapWatts / p.tdpWatts, first));
}

/** A cap fraction clamped to what the card allows. */
export function clampCap(p: GpuPowerProfile, fraction: number): number {
  return Math.min(1, Math.max(minCapFraction(p), fraction));
}

export interface CapEffect {
  /** Throughput relative to the full limit. */
  readonly throughput: number;
  /** Energy per unit of work relative to the full limit. */
  readonly energy: number;
  /** Average power relative to the full limit: energy × throughput, so that the curve's energy per work holds exactly. */
  readonly power: number;
}

/** The curve at a cap fraction (clamped to the card's range), linearly interpolated. */
export function capEffect(p: GpuPowerProfile, fraction: number): CapEffect {
  const f = clampCap(p, fraction);
  const c = p.capCurve;
  let lo = c[0] as CapPoint;
  let hi = c[c.length - 1] as CapPoint;
  for (let i = 0; i < c.length; i++) {
    const pt = c[i] as CapPoint;
    if (pt.fraction <= f) lo = pt;
    if (pt.fraction >= f) {
      hi = pt;
      break;
    }
  }
  const w = hi.fraction === lo.fraction ? 0 : (f - lo.fraction) / (hi.fraction - lo.fraction);
  const throughput = lo.throughput + w * (hi.throughput - lo.throughput);
  const energy = lo.energy + w * (hi.energy - lo.energy);
  return { throughput, energy, power: throughput * energy };
}

/** Watts one GPU draws running a job at its typical load under a cap (fraction of TDP; 1: none). */
export function jobWatts(p: GpuPowerProfile, capFraction = 1): number {
  const full = p.loadFraction * p.tdpWatts;
  return capFraction >= 1 ? full : full * capEffect(p, capFraction).power;
}

/** What a node draws besides its GPUs while powered, W. */
export function nodeBaseWatts(model: PowerModel, node: Pick<NodeSpec, 'cpuMilli' | 'memoryMib'>): number {
  const n = model.node;
  if (n.baseWatts !== undefined) return n.baseWatts;
  return n.perNodeWatts + (n.perCoreWatts * node.cpuMilli) / 1000 + (n.perGibWatts * node.memoryMib) / 1024;
}

/** The distinct GPU profiles a set of models resolves to, with the extrapolated fields of each (for reports). */
export function profilesUsed(model: PowerModel, gpuModels: Iterable<string>): { model: string; profile: GpuPowerProfile }[] {
  const out: { model: string; profile: GpuPowerProfile }[] = [];
  for (const m of [...new Set(gpuModels)].sort()) out.push({ model: m, profile: gpuPower(model, m) });
  return out;
}
