/**
 * One run of `tide bench energy`: a workload, a seed and an energy profile (maxpower, powercap,
 * consolidate, timeshift, tide: which stages wrap the base scheduler). The simulator runs until
 * every measured job has ended (or more than 5,000 wait: saturated) with the energy accountant
 * listening; its report must close within 0.1 % (it throws otherwise).
 */
import { performance } from 'node:perf_hooks';
import { DEFAULT_POWER_MODEL, gpuPower, type PowerModel } from '../../core/energy/powerModel.ts';
import { mergePowerConfig } from '../../core/energy/powerConfig.ts';
import { DEFAULT_PRICES, simulationPrices } from '../../core/energy/pricing.ts';
import { getJobScheduler } from '../../core/scheduling/policies/index.ts';
import { ENERGY_PROFILES, withEnergyStages } from '../../core/scheduling/stages/energyStages.ts';
import { Rng } from '../../core/rng.ts';
import { highsSolver } from '../../lp/highsSolver.ts';
import type { ThroughputTable } from '../../sim/gavelWorkload.ts';
import { MetricsCollector } from '../../sim/metrics.ts';
import { Simulation } from '../../sim/simulator.ts';
import { capSpeed, EnergyAccountant, type PowerSample } from '../../sim/energy/accountant.ts';
import { gavelEnergySetup, genaiEnergySetup, type EnergySetup, type EnergyWorkload, type EnergyWorkloadOptions } from './energyWorkloads.ts';

export interface EnergyRunSpec {
  readonly workload: EnergyWorkload;
  readonly seed: number;
  /** A key of ENERGY_PROFILES. */
  readonly profile: string;
  /** The job scheduler the stages wrap (default tide). */
  readonly base?: string;
  readonly workloadOptions: Omit<EnergyWorkloadOptions, 'seed' | 'curve'>;
  /** Stage settings (default: each stage's own defaults). */
  readonly maxSlowdown?: number;
  /** powercap: the worth of an hour of a job's completion time, in watts. */
  readonly jctWatts?: number;
  /** powercap: the slowdown used while jobs wait for the bind's GPU model. */
  readonly congestedSlowdown?: number;
  /** powercap: Zeus's η (energy against time). */
  readonly eta?: number;
  readonly suspendSeconds?: number;
  readonly resumeSeconds?: number;
  /** Power-over-time buckets (seconds). */
  readonly bucketSeconds?: number;
  readonly saturationQueue?: number;
}

export interface EnergyRunResult {
  readonly workload: EnergyWorkload;
  readonly profile: string;
  readonly seed: number;
  readonly saturated: boolean;
  readonly jobs: number;
  readonly avgJctHours: number;
  /** Average JCT of the jobs that were not deferrable. */
  readonly avgJctHoursNotDeferrable: number;
  readonly energyKwh: number;
  readonly idleEnergyKwh: number;
  readonly baseEnergyKwh: number;
  readonly heldIdleEnergyKwh: number;
  readonly jobsEnergyKwh: number;
  readonly work: number;
  readonly energyPerWorkUnit: number;
  readonly costYuan: number;
  readonly co2Kg: number;
  readonly closureError: number;
  readonly cappedShare: number;
  readonly meanCap: number;
  readonly simulatedHours: number;
  readonly wallSeconds: number;
  readonly events: number;
  readonly power: readonly PowerSample[];
  /** GPU models of the cluster and which of their power figures are extrapolated. */
  readonly extrapolated: Readonly<Record<string, readonly string[]>>;
}

export interface EnergyFiles {
  readonly throughputs: ThroughputTable;
  readonly curve: readonly (readonly [number, number])[];
}

export function energySetup(spec: EnergyRunSpec, files: EnergyFiles): EnergySetup {
  const o = { ...spec.workloadOptions, seed: spec.seed, curve: files.curve };
  return spec.workload === 'genai' ? genaiEnergySetup(o) : gavelEnergySetup(files.throughputs, o, spec.workload === 'gavel-multi');
}

export async function runEnergySeed(spec: EnergyRunSpec, files: EnergyFiles): Promise<EnergyRunResult> {
  const profile = ENERGY_PROFILES[spec.profile];
  if (!profile) throw new Error(`unknown energy profile '${spec.profile}'`);
  const factory = getJobScheduler(spec.base ?? 'tide');
  if (!factory) throw new Error(`unknown job scheduler '${spec.base}'`);
  const setup = energySetup(spec, files);
  const power: PowerModel = mergePowerConfig(DEFAULT_POWER_MODEL, setup.power);
  const prices = simulationPrices(DEFAULT_PRICES);
  const inner = factory({ rng: Rng.fromSeed(spec.seed + 5), lp: await highsSolver() });
  const scheduler = withEnergyStages(inner, {
    power,
    prices,
    ...(profile.powercap ? { powercap: { ...(spec.maxSlowdown === undefined ? {} : { maxSlowdown: spec.maxSlowdown }), ...(spec.jctWatts === undefined ? {} : { jctWatts: spec.jctWatts }), ...(spec.congestedSlowdown === undefined ? {} : { congestedSlowdown: spec.congestedSlowdown }), ...(spec.eta === undefined ? {} : { eta: spec.eta }) } } : {}),
    ...(profile.consolidate ? { consolidate: { ...(spec.suspendSeconds === undefined ? {} : { suspendSeconds: spec.suspendSeconds }), ...(spec.resumeSeconds === undefined ? {} : { resumeSeconds: spec.resumeSeconds }) } } : {}),
    ...(profile.timeshift ? { timeshift: true } : {}),
  });
  const totalGpus = setup.nodes.reduce((a, n) => a + n.gpus.length, 0);
  const metrics = new MetricsCollector(totalGpus, setup.measured);
  const accountant = new EnergyAccountant({ nodes: setup.nodes, power, prices, workModel: setup.workModel, bucketSeconds: spec.bucketSeconds ?? 3600 });
  const deferrable = new Set<string>();
  const limit = spec.saturationQueue ?? 5000;
  let saturated = false;
  const started = performance.now();
  const sim = new Simulation({
    nodes: setup.nodes,
    scheduler,
    jobs: setup.jobs,
    timeLimits: 'estimate',
    speedOf: capSpeed(power),
    onEvent: (e) => {
      if (e.type === 'job:submitted' && e.job.deferrable) deferrable.add(e.job.id);
      metrics.onEvent(e);
      accountant.onEvent(e);
    },
    stop: (s) => {
      if (s.pendingCount > limit) saturated = true;
      return saturated || metrics.ended >= setup.measuredCount;
    },
  }).run();
  const report = accountant.report(sim.now);
  const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  const jct = (r: { finish: number; submit: number }): number => (r.finish - r.submit) / 3600;
  const models = [...new Set(setup.nodes.flatMap((n) => n.gpus))].sort();
  const kwh = (j: number): number => (j * prices.pue) / 3.6e6;
  return {
    workload: spec.workload,
    profile: spec.profile,
    seed: spec.seed,
    saturated,
    jobs: metrics.records.length,
    avgJctHours: mean(metrics.records.map(jct)),
    avgJctHoursNotDeferrable: mean(metrics.records.filter((r) => !deferrable.has(r.id)).map(jct)),
    energyKwh: report.energyKwh,
    idleEnergyKwh: report.idleEnergyKwh,
    baseEnergyKwh: report.baseEnergyKwh,
    heldIdleEnergyKwh: kwh(report.heldIdleEnergyJ),
    jobsEnergyKwh: kwh(report.jobsEnergyJ),
    work: report.work,
    energyPerWorkUnit: report.work > 0 ? report.energyKwh / report.work : NaN,
    costYuan: report.costYuan,
    co2Kg: report.co2Kg,
    closureError: report.closureError,
    cappedShare: report.cappedShare,
    meanCap: report.meanCap,
    simulatedHours: sim.now / 3600,
    wallSeconds: (performance.now() - started) / 1000,
    events: sim.events,
    power: report.power.samples,
    extrapolated: Object.fromEntries(models.map((m) => [m, gpuPower(power, m).extrapolated])),
  };
}
