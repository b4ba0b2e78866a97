/**
 * The workloads of `tide bench energy`.
 *
 * - `gavel-single`, `gavel-multi`: Gavel's cluster (36 V100 + 36 P100 + 36 K80, one GPU per
 *   server) and job generator (sim/gavelWorkload.ts) with single-GPU jobs or Gavel's
 *   "continuous-multiple" mix (1/2/4/8 GPUs), jobs 4000–4999 measured as in the job benchmark. Each server's base
 *   power is that of a one-GPU cloud instance (8 vCPUs, 61 GiB: AWS p3.2xlarge's shape) under
 *   CCF's coefficients: 41 W. A share of the jobs (`deferrableShare`, seeded) may be deferred,
 *   with a deadline of submission + declared limit + `deferWindowHours`.
 * - `genai`: the GenAI serving curve (../shared/traces/genai-2026/qps_5min.csv) as the diurnal
 *   arrival rate of short inference jobs (1 GPU, 10–60 min, never deferred), plus deferrable
 *   batch jobs (1–8 GPUs, 1–8 h, deadline submission + declared limit + `deferWindowHours`)
 *   arriving evenly, on 8-GPU H100 servers (224 cores, 2 TiB: CCF base 1.28 kW). The trace's
 *   clock is anonymised: its 22.8 h are stretched to 24 h and its busy hours (1–10 on that clock)
 *   are taken as the local working day (09:00–18:00), i.e. trace hour h is local hour h + 8.
 */
import { readFileSync } from 'node:fs';
import { gangJob, gpuNodes } from '../../core/scheduling/build.ts';
import type { JobSpec } from '../../core/scheduling/model.ts';
import { nodeId, type NodeSpec } from '../../core/model.ts';
import { Rng } from '../../core/rng.ts';
import { nodeBaseWatts, DEFAULT_POWER_MODEL } from '../../core/energy/powerModel.ts';
import type { PowerConfig } from '../../core/energy/powerConfig.ts';
import { gavelCluster, gavelJobs, type ThroughputTable } from '../../sim/gavelWorkload.ts';
import type { JobSource } from '../../sim/simulator.ts';
import { UserError } from '../../util/errors.ts';

export const ENERGY_WORKLOADS = ['gavel-single', 'gavel-multi', 'genai'] as const;
export type EnergyWorkload = (typeof ENERGY_WORKLOADS)[number];

/** A one-GPU cloud server (AWS p3.2xlarge: 8 vCPUs, 61 GiB), for the base power of Gavel's servers. */
export const GAVEL_SERVER = { cpuMilli: 8000, memoryMib: 61 * 1024 } as const;

export interface EnergySetup {
  readonly nodes: readonly NodeSpec[];
  readonly jobs: JobSource;
  /** Jobs whose completion time counts. */
  readonly measured: (job: JobSpec) => boolean;
  readonly measuredCount: number;
  /** Power settings of the workload's cluster (over the defaults). */
  readonly power: PowerConfig;
  /** The model work is counted on (reference GPU-hours). */
  readonly workModel: string;
}

export interface EnergyWorkloadOptions {
  readonly seed: number;
  /** gavel: jobs/hour; genai: batch jobs/hour. */
  readonly jobsPerHour: number;
  readonly deferrableShare: number;
  readonly deferWindowHours: number;
  /** gavel: measured jobs by submission index [from, to). */
  readonly window: readonly [number, number];
  /** genai: days simulated (jobs of the days between the first and the last are measured). */
  readonly days: number;
  /** genai: 8-GPU servers. */
  readonly servers: number;
  /** genai: inference jobs per hour at the curve's peak. */
  readonly peakInferencePerHour: number;
  readonly curve: readonly (readonly [number, number])[];
}

/** A deadline for deferrable jobs: submission + declared limit + the window. */
function deferrable(job: JobSpec, windowHours: number): JobSpec {
  const limit = job.timeLimitSeconds ?? 0;
  return { ...job, deferrable: true, deadline: job.submitTime + limit + windowHours * 3600 };
}

const indexOf = (job: JobSpec): number => Number(job.id.slice(1));

export function gavelEnergySetup(table: ThroughputTable, o: EnergyWorkloadOptions, multiGpu: boolean): EnergySetup {
  const source = gavelJobs(table, { jobsPerHour: o.jobsPerHour, multiGpu, seed: o.seed });
  const pick = Rng.fromSeed(o.seed + 11);
  const [from, to] = o.window;
  return {
    nodes: gavelCluster(),
    jobs: {
      next: () => {
        const job = source.next();
        if (!job) return undefined;
        return pick.float() < o.deferrableShare ? deferrable(job, o.deferWindowHours) : job;
      },
    },
    measured: (job) => indexOf(job) >= from && indexOf(job) < to,
    measuredCount: to - from,
    power: { node: { baseWatts: nodeBaseWatts(DEFAULT_POWER_MODEL, GAVEL_SERVER) } },
    workModel: 'V100',
  };
}

/** Reads a `t_seconds,value` curve (qps_5min.csv): (seconds, value) rows, values normalised to a peak of 1. */
export function readCurve(file: string): [number, number][] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const rows: [number, number][] = [];
  text.split('\n').forEach((line, i) => {
    const l = line.trim();
    if (l === '' || (i === 0 && /[a-z]/i.test(l))) return;
    const [t, v] = l.split(',').map((x) => Number(x));
    if (!Number.isFinite(t) || !Number.isFinite(v) || (v as number) < 0) throw new UserError(`${file}:${i + 1}: expected 't_seconds,value' with numbers ≥ 0, got '${l}'`);
    rows.push([t as number, v as number]);
  });
  if (rows.length < 2) throw new UserError(`${file}: needs at least two rows`);
  const peak = Math.max(...rows.map((r) => r[1]));
  if (!(peak > 0)) throw new UserError(`${file}: every value is 0`);
  return rows.map(([t, v]) => [t, v / peak]);
}

/** The curve as a function of local time of day: stretched to 24 h, trace hour h at local hour h + 8. */
export function dailyShape(curve: readonly (readonly [number, number])[], shiftHours = 8): (t: number) => number {
  const span = (curve[curve.length - 1] as readonly [number, number])[0] + ((curve[1] as readonly [number, number])[0] - (curve[0] as readonly [number, number])[0]);
  const stretch = 86_400 / span;
  const step = span / curve.length;
  return (t: number): number => {
    const local = (((t - shiftHours * 3600) % 86_400) + 86_400) % 86_400;
    const i = Math.min(curve.length - 1, Math.floor(local / stretch / step));
    return (curve[i] as readonly [number, number])[1];
  };
}

/** 8-GPU H100 servers with the host of an HGX board (2 × 56 cores as 224 vCPUs, 2 TiB). */
export function genaiCluster(servers: number): NodeSpec[] {
  return gpuNodes('H100', servers, 8).map((n, i) => ({ ...n, id: nodeId(`h100-${i}`), cpuMilli: 224_000, memoryMib: 2048 * 1024 }));
}

export function genaiEnergySetup(o: EnergyWorkloadOptions): EnergySetup {
  const shape = dailyShape(o.curve);
  const end = o.days * 86_400;
  const rng = Rng.fromSeed(o.seed + 21);
  const jobs: JobSpec[] = [];
  // Inference: a Poisson process at the peak rate, thinned by the curve (Lewis–Shedler).
  for (let t = 0, i = 0; ; ) {
    t += -Math.log(1 - rng.float()) / (o.peakInferencePerHour / 3600);
    if (t >= end) break;
    if (rng.float() >= shape(t)) continue;
    const seconds = 60 * (10 + 50 * rng.float());
    jobs.push(gangJob({ id: `i${String(i++).padStart(6, '0')}`, gpus: 1, throughput: { H100: 1 }, totalSteps: seconds, submitTime: t, jobType: 'inference', tenant: 'serving', queue: 'default', timeLimitSeconds: seconds * 1.5 }));
  }
  // Batch: evenly, deferrable (share), 1/2/4/8 GPUs, 1–8 h.
  for (let t = 0, i = 0; ; ) {
    t += -Math.log(1 - rng.float()) / (o.jobsPerHour / 3600);
    if (t >= end) break;
    const r = rng.float();
    const gpus = r < 0.4 ? 1 : r < 0.65 ? 2 : r < 0.85 ? 4 : 8;
    const seconds = 3600 * 2 ** (3 * rng.float());
    const job = gangJob({ id: `b${String(i++).padStart(6, '0')}`, gpus, throughput: { H100: 1 }, totalSteps: seconds, submitTime: t, jobType: 'batch', tenant: 'research', queue: 'default', timeLimitSeconds: seconds * 2 ** rng.float() });
    jobs.push(rng.float() < o.deferrableShare ? deferrable(job, o.deferWindowHours) : job);
  }
  jobs.sort((a, b) => a.submitTime - b.submitTime || (a.id < b.id ? -1 : 1));
  let k = 0;
  const measured = (job: JobSpec): boolean => job.submitTime >= 86_400 && job.submitTime < end - 86_400;
  return {
    nodes: genaiCluster(o.servers),
    jobs: { next: () => jobs[k++] },
    measured,
    measuredCount: jobs.filter(measured).length,
    power: {},
    workModel: 'H100',
  };
}
