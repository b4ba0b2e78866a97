/**
 * The cluster config's `power:` section and how it overrides the built-in power model. Read by
 * the server's config (src/server/config.ts: schema in src/api/configSchema.ts) and by whoever
 * builds a power model for a cluster (the live server for simulated GPUs, `tide bench energy`).
 *
 *   power:
 *     gpus:
 *       H100: {idleWithMemoryWatts: 110, loadFraction: 0.8}   # over the built-in H100 row
 *       MI300X: {tdpWatts: 750, idleWatts: 90, minCapWatts: 300}   # a new model, over the fallback
 *     node: {baseWatts: 1200}                                  # or perNodeWatts / perCoreWatts / perGibWatts
 */
import { gpuPower, type CapPoint, type GpuPowerProfile, type NodePowerProfile, type PowerField, type PowerModel } from './powerModel.ts';

export interface GpuPowerConfig {
  readonly tdpWatts?: number;
  readonly minCapWatts?: number;
  readonly idleWatts?: number;
  readonly idleWithMemoryWatts?: number;
  readonly loadFraction?: number;
  readonly capCurve?: readonly CapPoint[];
}

export interface NodePowerConfig {
  readonly baseWatts?: number;
  readonly perNodeWatts?: number;
  readonly perCoreWatts?: number;
  readonly perGibWatts?: number;
  readonly suspendedWatts?: number;
}

export interface PowerConfig {
  readonly gpus?: Readonly<Record<string, GpuPowerConfig>>;
  readonly node?: NodePowerConfig;
}

export interface PowerConfigError {
  readonly path: string;
  readonly message: string;
}

const FIELD_OF: Readonly<Record<keyof GpuPowerConfig, PowerField>> = {
  tdpWatts: 'tdp',
  minCapWatts: 'minCap',
  idleWatts: 'idle',
  idleWithMemoryWatts: 'idleWithMemory',
  loadFraction: 'load',
  capCurve: 'capCurve',
};

function mergeGpu(base: GpuPowerProfile, o: GpuPowerConfig): GpuPowerProfile {
  const given = (Object.keys(FIELD_OF) as (keyof GpuPowerConfig)[]).filter((k) => o[k] !== undefined);
  if (given.length === 0) return base;
  const p: GpuPowerProfile = {
    tdpWatts: o.tdpWatts ?? base.tdpWatts,
    // A new TDP without a new lowest limit keeps the old limit's share of TDP.
    minCapWatts: o.minCapWatts ?? (o.tdpWatts !== undefined ? (base.minCapWatts / base.tdpWatts) * o.tdpWatts : base.minCapWatts),
    idleWatts: o.idleWatts ?? base.idleWatts,
    // Likewise a new idle figure keeps the old ratio of idle with memory to idle.
    idleWithMemoryWatts: o.idleWithMemoryWatts ?? (o.idleWatts !== undefined ? Math.min(o.tdpWatts ?? base.tdpWatts, (base.idleWithMemoryWatts / base.idleWatts) * o.idleWatts) : base.idleWithMemoryWatts),
    loadFraction: o.loadFraction ?? base.loadFraction,
    capCurve: o.capCurve ? [...o.capCurve].sort((a, b) => a.fraction - b.fraction) : base.capCurve,
    source: `${base.source}; cluster config: ${given.join(', ')}`,
    extrapolated: base.extrapolated.filter((f) => !given.some((k) => FIELD_OF[k] === f)),
  };
  return p;
}

/** The model with the config's values over it (a GPU model it does not know starts from the fallback). */
export function mergePowerConfig(base: PowerModel, config: PowerConfig | undefined): PowerModel {
  if (!config) return base;
  const gpus: Record<string, GpuPowerProfile> = { ...base.gpus };
  for (const [name, o] of Object.entries(config.gpus ?? {})) gpus[name] = mergeGpu(gpuPower(base, name), o);
  const n = config.node ?? {};
  const node: NodePowerProfile = {
    ...base.node,
    ...(n.baseWatts !== undefined ? { baseWatts: n.baseWatts } : {}),
    ...(n.perNodeWatts !== undefined ? { perNodeWatts: n.perNodeWatts } : {}),
    ...(n.perCoreWatts !== undefined ? { perCoreWatts: n.perCoreWatts } : {}),
    ...(n.perGibWatts !== undefined ? { perGibWatts: n.perGibWatts } : {}),
    ...(n.suspendedWatts !== undefined ? { suspendedWatts: n.suspendedWatts } : {}),
    source: Object.keys(n).length > 0 ? `${base.node.source}; cluster config: ${Object.keys(n).sort().join(', ')}` : base.node.source,
  };
  return { gpus, fallback: base.fallback, node };
}

/**
 * What a schema cannot say about a `power:` section, judged on the merged profiles: idle below
 * TDP, idle with memory not below idle, the lowest limit within (0, TDP], a load fraction in
 * (0, 1], a cap curve with fractions rising in (0, 1] and ending at 1, throughput and energy > 0.
 * Paths name the config's fields (`power.gpus.H100.idleWatts`).
 */
export function checkPowerConfig(base: PowerModel, config: PowerConfig, at = 'power'): PowerConfigError[] {
  const errors: PowerConfigError[] = [];
  const merged = mergePowerConfig(base, config);
  for (const [name, given] of Object.entries(config.gpus ?? {})) {
    const p = merged.gpus[name] as GpuPowerProfile;
    const path = `${at}.gpus.${/^[A-Za-z_][\w-]*$/.test(name) ? name : JSON.stringify(name)}`;
    const bad = (field: string, message: string): void => void errors.push({ path: `${path}.${field}`, message });
    if (!(p.tdpWatts > 0)) bad('tdpWatts', 'must be above 0');
    if (!(p.idleWatts >= 0 && p.idleWatts < p.tdpWatts)) bad('idleWatts', `must be from 0 to below tdpWatts (${p.tdpWatts})`);
    // Judged only when given: derived from a new idle figure, it follows that one's fate.
    if (given.idleWithMemoryWatts !== undefined && !(p.idleWithMemoryWatts >= p.idleWatts && p.idleWithMemoryWatts <= p.tdpWatts)) bad('idleWithMemoryWatts', `must be from idleWatts (${p.idleWatts}) to tdpWatts (${p.tdpWatts})`);
    if (!(p.minCapWatts > 0 && p.minCapWatts <= p.tdpWatts)) bad('minCapWatts', `must be above 0 and at most tdpWatts (${p.tdpWatts})`);
    if (!(p.loadFraction > 0 && p.loadFraction <= 1)) bad('loadFraction', 'must be above 0 and at most 1');
    const c = p.capCurve;
    if (c.length === 0 || (c[c.length - 1] as CapPoint).fraction !== 1) bad('capCurve', 'must end with a point at fraction 1');
    c.forEach((pt, i) => {
      if (!(pt.fraction > 0 && pt.fraction <= 1)) bad(`capCurve[${i}].fraction`, 'must be above 0 and at most 1');
      else if (i > 0 && !(pt.fraction > (c[i - 1] as CapPoint).fraction)) bad(`capCurve[${i}].fraction`, 'fractions must all differ');
      if (!(pt.throughput > 0 && pt.throughput <= 2)) bad(`capCurve[${i}].throughput`, 'must be above 0 and at most 2');
      if (!(pt.energy > 0 && pt.energy <= 5)) bad(`capCurve[${i}].energy`, 'must be above 0 and at most 5');
    });
  }
  const n = config.node ?? {};
  for (const [k, v] of Object.entries(n)) if (typeof v !== 'number' || !(v >= 0) || v > 1e6) errors.push({ path: `${at}.node.${k}`, message: 'must be a number of watts from 0 to 1000000' });
  return errors;
}
