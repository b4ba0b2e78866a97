/**
 * `tide bench energy`: workloads × seeds × energy profiles, spread over worker threads and
 * summarised per workload and policy (means over the seeds that did not saturate, per seed
 * kept), with each policy's change against `maxpower` and the judged comparison on each of
 * Gavel's workloads (Tide's combined policy against maxpower: ≥ 20 % less energy per unit of
 * work with ≤ 5 % higher average JCT).
 */
import Table from 'cli-table3';
import { runPool } from '../../util/workers.ts';
import { labelledScatterSvg, powerChartSvg } from './energyCharts.ts';
import type { EnergyRunResult, EnergyRunSpec } from './energyProtocol.ts';
import type { EnergyWorkload, EnergyWorkloadOptions } from './energyWorkloads.ts';

export interface EnergyBenchInput {
  readonly workloads: readonly EnergyWorkload[];
  readonly seeds: readonly number[];
  readonly profiles: readonly string[];
  readonly base: string;
  readonly throughputsFile: string;
  readonly curveFile: string;
  readonly options: Readonly<Record<EnergyWorkload, Omit<EnergyWorkloadOptions, 'seed' | 'curve'>>>;
  readonly maxSlowdown?: number;
  readonly suspendSeconds?: number;
  readonly resumeSeconds?: number;
  /** Hours of the power chart per workload [from, to). */
  readonly powerWindow: Readonly<Record<EnergyWorkload, readonly [number, number]>>;
  readonly threads?: number;
  readonly onProgress?: (done: number, total: number, last: EnergyRunResult) => void;
}

export interface PolicyEnergy {
  /** At the meter (IT × PUE), over the whole run. */
  readonly energyKwh: number;
  /** kWh at the meter per reference GPU-hour of work done. */
  readonly energyPerWorkUnit: number;
  readonly avgJctHours: number;
  readonly costYuan: number;
  readonly co2Kg: number;
  /** Idle GPUs (powered, not held, and free shares of shared ones), at the meter. */
  readonly idleEnergyKwh: number;
  readonly baseEnergyKwh: number;
  readonly jobsEnergyKwh: number;
  readonly heldIdleEnergyKwh: number;
  readonly work: number;
  readonly avgJctHoursNotDeferrable: number;
  readonly meanCap: number;
  readonly simulatedHours: number;
  readonly closureErrorMax: number;
  readonly saturatedSeeds: number;
  readonly perSeed: readonly { readonly seed: number; readonly energyPerWorkUnit: number; readonly avgJctHours: number; readonly saturated: boolean }[];
  /** Relative change against maxpower (−0.2: 20 % less), when maxpower ran. */
  readonly vsMaxpower?: { readonly energyPerWorkUnit: number; readonly avgJctHours: number; readonly costYuan: number };
}

export interface WorkloadEnergy {
  readonly workload: EnergyWorkload;
  readonly options: Omit<EnergyWorkloadOptions, 'seed' | 'curve'>;
  readonly policies: Readonly<Record<string, PolicyEnergy>>;
  /** Total IT power (kW) per hour for the first seed, in the chart's window. */
  readonly power: Readonly<Record<string, readonly (readonly [number, number])[]>>;
  readonly extrapolated: Readonly<Record<string, readonly string[]>>;
}

export interface EnergyBenchReport {
  /** The first workload's policies. */
  readonly policies: Readonly<Record<string, PolicyEnergy>>;
  readonly workloads: Readonly<Partial<Record<EnergyWorkload, WorkloadEnergy>>>;
  readonly base: string;
  readonly seeds: readonly number[];
  /** Per Gavel workload that ran with both: Tide's combined policy against maxpower. */
  readonly judged: Readonly<Partial<Record<EnergyWorkload, Judged>>>;
}

export interface Judged {
  /** Relative changes (−0.2: 20 % less). */
  readonly energyPerWorkUnit: number;
  readonly avgJctHours: number;
  /** ≤ −20 % energy per unit of work with ≤ +5 % average JCT. */
  readonly met: boolean;
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

export function summariseEnergy(runs: readonly EnergyRunResult[]): Omit<PolicyEnergy, 'vsMaxpower'> {
  const ok = runs.filter((r) => !r.saturated);
  const m = (f: (r: EnergyRunResult) => number): number => mean(ok.map(f));
  return {
    energyKwh: m((r) => r.energyKwh),
    energyPerWorkUnit: m((r) => r.energyPerWorkUnit),
    avgJctHours: m((r) => r.avgJctHours),
    costYuan: m((r) => r.costYuan),
    co2Kg: m((r) => r.co2Kg),
    idleEnergyKwh: m((r) => r.idleEnergyKwh),
    baseEnergyKwh: m((r) => r.baseEnergyKwh),
    jobsEnergyKwh: m((r) => r.jobsEnergyKwh),
    heldIdleEnergyKwh: m((r) => r.heldIdleEnergyKwh),
    work: m((r) => r.work),
    avgJctHoursNotDeferrable: m((r) => r.avgJctHoursNotDeferrable),
    meanCap: m((r) => r.meanCap),
    simulatedHours: m((r) => r.simulatedHours),
    closureErrorMax: Math.max(0, ...runs.map((r) => r.closureError)),
    saturatedSeeds: runs.length - ok.length,
    perSeed: runs.map((r) => ({ seed: r.seed, energyPerWorkUnit: r.energyPerWorkUnit, avgJctHours: r.avgJctHours, saturated: r.saturated })),
  };
}

export async function runEnergyBenchmark(input: EnergyBenchInput): Promise<EnergyBenchReport> {
  const jobs: EnergyRunSpec[] = input.workloads.flatMap((workload) =>
    input.seeds.flatMap((seed) =>
      input.profiles.map((profile) => ({
        workload,
        seed,
        profile,
        base: input.base,
        workloadOptions: input.options[workload],
        ...(input.maxSlowdown === undefined ? {} : { maxSlowdown: input.maxSlowdown }),
        ...(input.suspendSeconds === undefined ? {} : { suspendSeconds: input.suspendSeconds }),
        ...(input.resumeSeconds === undefined ? {} : { resumeSeconds: input.resumeSeconds }),
      })),
    ),
  );
  const results = await runPool<EnergyRunSpec, EnergyRunResult>({
    entry: new URL('./energyWorker.ts', import.meta.url),
    init: { throughputs: input.throughputsFile, curve: input.curveFile },
    jobs,
    ...(input.threads === undefined ? {} : { threads: input.threads }),
    onResult: (r, done, total) => input.onProgress?.(done, total, r),
  });
  const workloads: Partial<Record<EnergyWorkload, WorkloadEnergy>> = {};
  for (const w of input.workloads) {
    const mine = results.filter((r) => r.workload === w);
    const plain = Object.fromEntries(input.profiles.map((p) => [p, summariseEnergy(mine.filter((r) => r.profile === p))]));
    const base = plain['maxpower'];
    const rel = (a: number, b: number): number => a / b - 1;
    const policies: Record<string, PolicyEnergy> = {};
    for (const [p, s] of Object.entries(plain)) policies[p] = base && p !== 'maxpower' ? { ...s, vsMaxpower: { energyPerWorkUnit: rel(s.energyPerWorkUnit, base.energyPerWorkUnit), avgJctHours: rel(s.avgJctHours, base.avgJctHours), costYuan: rel(s.costYuan, base.costYuan) } } : s;
    const [from, to] = input.powerWindow[w];
    const first = input.seeds[0];
    const power = Object.fromEntries(
      mine
        .filter((r) => r.seed === first)
        .map((r) => [r.profile, r.power.filter((s) => s.hour >= from && s.hour < to).map((s) => [s.hour, Math.round((s.jobsW + s.idleW + s.baseW) / 10) / 100] as const)]),
    );
    workloads[w] = { workload: w, options: input.options[w], policies, power, extrapolated: mine[0]?.extrapolated ?? {} };
  }
  const firstWorkload = workloads[input.workloads[0] as EnergyWorkload];
  const judged: Partial<Record<EnergyWorkload, Judged>> = {};
  for (const w of ['gavel-single', 'gavel-multi'] as const) {
    const v = workloads[w]?.policies['tide']?.vsMaxpower;
    if (v) judged[w] = { energyPerWorkUnit: v.energyPerWorkUnit, avgJctHours: v.avgJctHours, met: v.energyPerWorkUnit <= -0.2 && v.avgJctHours <= 0.05 };
  }
  return { policies: firstWorkload?.policies ?? {}, workloads, base: input.base, seeds: input.seeds, judged };
}

const f = (v: number, digits = 2): string => (Number.isFinite(v) ? v.toFixed(digits) : '—');
const pct = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '—' : `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)} %`);

export function energyTable(w: WorkloadEnergy): string {
  const table = new Table({
    head: ['policy', 'kWh / work unit', 'vs maxpower', 'avg JCT h', 'vs maxpower', 'not deferrable', 'energy kWh', 'jobs kWh', 'idle kWh', 'base kWh', 'cost yuan', 'vs maxpower', 'CO₂ kg', 'mean cap', 'closure'],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  });
  for (const [name, p] of Object.entries(w.policies)) {
    table.push([name, f(p.energyPerWorkUnit, 4), pct(p.vsMaxpower?.energyPerWorkUnit), f(p.avgJctHours), pct(p.vsMaxpower?.avgJctHours), f(p.avgJctHoursNotDeferrable), f(p.energyKwh, 0), f(p.jobsEnergyKwh, 0), f(p.idleEnergyKwh, 0), f(p.baseEnergyKwh, 0), f(p.costYuan, 0), pct(p.vsMaxpower?.costYuan), f(p.co2Kg, 0), f(p.meanCap, 3), p.closureErrorMax.toExponential(0)]);
  }
  return table.toString();
}

/** Energy per unit of work against average JCT, one dot per policy. */
export function efficiencyChartSvg(w: WorkloadEnergy, seeds: number): string {
  return labelledScatterSvg({
    title: `Energy per unit of work vs average JCT — ${w.workload} (mean of ${seeds} seed${seeds === 1 ? '' : 's'})`,
    xLabel: 'average JCT (hours)',
    yLabel: `kWh at the meter per ${w.workload === 'genai' ? 'H100' : 'V100'} GPU-hour of work`,
    points: Object.entries(w.policies).map(([name, p]) => ({ name, x: p.avgJctHours, y: p.energyPerWorkUnit })),
  });
}

/** Power over time of maxpower, Tide's policy and the single stage that matters most there (the one with the least energy per work). */
export function powerSvg(w: WorkloadEnergy, seed: number, tariff: readonly number[]): string {
  const single = ['powercap', 'consolidate', 'timeshift']
    .filter((p) => w.policies[p] && w.power[p])
    .sort((a, b) => (w.policies[a]?.energyPerWorkUnit ?? Infinity) - (w.policies[b]?.energyPerWorkUnit ?? Infinity))[0];
  const shown = ['maxpower', ...(single ? [single] : []), 'tide', ...(w.workload === 'genai' && single !== 'timeshift' ? ['timeshift'] : [])].filter((p) => w.power[p]);
  return powerChartSvg(`IT power over time — ${w.workload}, seed ${seed}`, shown.map((name) => ({ name, points: w.power[name] ?? [] })), tariff);
}
