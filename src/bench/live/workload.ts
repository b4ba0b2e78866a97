/**
 * The workload of `tide bench live`: one seeded list of jobs that is run twice, once by real
 * `tide server` and `tide agent` processes and once by the simulator, so that the two can be
 * compared job by job. Times are compressed seconds (the live run's wall clock, the simulator's
 * virtual clock alike): about one second for a minute of a real cluster, so that a run of a few
 * hundred jobs takes minutes.
 *
 * The cluster: three nodes of different GPU models (8×H100, 8×A100, 4×L40S), two tenants with
 * a queue each whose nominal quotas add up to the cluster and who borrow each other's unused
 * quota (one cohort). The jobs: Poisson arrivals, 1/2/4/8-GPU jobs, 2×4-GPU gangs and half-GPU
 * jobs, priorities, preemptible and not, a declared time limit (generous for most; a few
 * preemptible jobs declare less than they need and are stopped at it), and work in H100-seconds
 * that a slower model does at its speed.
 */
import { Rng } from '../../core/rng.ts';

export interface BenchNode {
  /** Node name (sorted: the live store and the simulator list nodes in this order). */
  readonly name: string;
  readonly model: string;
  readonly gpus: number;
}

export interface WorkloadJob {
  /** 0-based submission index; the live server numbers jobs from 1 in this order. */
  readonly index: number;
  readonly name: string;
  readonly tenant: string;
  readonly queue: string;
  /** Seconds after the start of the run. */
  readonly arrival: number;
  readonly priority: number;
  readonly preemptible: boolean;
  /** Tasks of the gang (1 for a plain job). */
  readonly replicas: number;
  /** GPUs per task: 0.5, 1, 2, 4 or 8. */
  readonly gpusPerTask: number;
  /** Seconds of work on an H100 (a model of speed s takes work / s). */
  readonly workSeconds: number;
  /** Declared limit on running time over all attempts (seconds). */
  readonly timeLimitSeconds: number;
  /** True for the few jobs whose limit is shorter than their work on any model. */
  readonly hitsLimit: boolean;
  readonly jobType: string;
}

/** What the trainer and the simulator share about how work advances. */
export interface WorkParams {
  /** Steps per second at speed 1. */
  readonly stepsPerSecond: number;
  /** A checkpoint every this many seconds of work. */
  readonly checkpointSeconds: number;
  /** Seconds a resumed task spends loading its checkpoint before it advances. */
  readonly loadSeconds: number;
  /**
   * What the schedulers are told a restart costs (the load, plus about a second to start a
   * process through the agent): the `restartSeconds` option, live and simulated alike.
   */
  readonly restartSeconds: number;
  /** A job runs this long in an attempt before it may be preempted. */
  readonly minRunSeconds: number;
  /** tide's replan period (360 s on a real cluster). */
  readonly quantumSeconds: number;
  /** tide's least expected remaining time a job is ranked by (60 s on a real cluster). */
  readonly estimateFloorSeconds: number;
  /** tide's starvation threshold (a day on a real cluster). */
  readonly starvationSeconds: number;
  readonly maxPreemptions: number;
  /** Half-life of tenants' usage for fair share. */
  readonly usageHalfLifeSeconds: number;
}

export interface Workload {
  readonly seed: number;
  readonly scale: number;
  readonly nodes: readonly BenchNode[];
  /** Relative speed per GPU model (H100 = 1). */
  readonly speeds: Readonly<Record<string, number>>;
  readonly tenants: readonly string[];
  /** Nominal quota of each tenant's queue, in GPUs of any model. */
  readonly quotas: Readonly<Record<string, number>>;
  readonly params: WorkParams;
  readonly jobs: readonly WorkloadJob[];
}

export interface WorkloadOptions {
  readonly jobs: number;
  readonly seed: number;
  /** Multiplies every duration and inter-arrival time (0.5: twice as fast, same load). */
  readonly scale?: number;
  /** Offered load: arrivals' H100-GPU-seconds per second over the cluster's (default 1.2). */
  readonly load?: number;
}

export const BENCH_NODES: readonly BenchNode[] = [
  { name: 'bench-a100', model: 'A100', gpus: 8 },
  { name: 'bench-h100', model: 'H100', gpus: 8 },
  { name: 'bench-l40s', model: 'L40S', gpus: 4 },
];
export const BENCH_SPEEDS: Readonly<Record<string, number>> = { H100: 1, A100: 0.6, L40S: 0.45 };
export const TENANTS = ['team-a', 'team-b'] as const;

/** One job shape: GPUs per task, tasks, and how often it is drawn. */
const SHAPES: readonly { readonly gpus: number; readonly replicas: number; readonly weight: number; readonly label: string }[] = [
  { gpus: 0.5, replicas: 1, weight: 0.18, label: 'half' },
  { gpus: 1, replicas: 1, weight: 0.36, label: '1gpu' },
  { gpus: 2, replicas: 1, weight: 0.2, label: '2gpu' },
  { gpus: 4, replicas: 1, weight: 0.12, label: '4gpu' },
  { gpus: 8, replicas: 1, weight: 0.06, label: '8gpu' },
  { gpus: 4, replicas: 2, weight: 0.08, label: 'gang2x4' },
];
/** Work on an H100, log-uniform in this range (seconds, before --scale). */
const WORK_RANGE = [3, 30] as const;
/** Share of preemptible jobs that declare a limit shorter than their work. */
const TIGHT_LIMIT_SHARE = 0.05;

export function workParams(scale: number): WorkParams {
  return {
    stepsPerSecond: 10 / scale,
    checkpointSeconds: 5 * scale,
    loadSeconds: 1.5 * scale,
    restartSeconds: 1.5 * scale + 1,
    // A restart costs about 3 s here against 3-30 s of work, dearer than on a real cluster:
    // tide re-plans (and may preempt) every 15 s, a job runs 15 s before it may be preempted
    // (a second a minute: 15 minutes each; tide's defaults are 6 and 0).
    minRunSeconds: 15 * scale,
    quantumSeconds: 15 * scale,
    estimateFloorSeconds: 1 * scale,
    starvationSeconds: 1440 * scale,
    maxPreemptions: 5,
    usageHalfLifeSeconds: 600 * scale,
  };
}

function pick<T extends { readonly weight: number }>(rng: Rng, items: readonly T[]): T {
  let total = 0;
  for (const i of items) total += i.weight;
  let x = rng.float() * total;
  for (const i of items) {
    x -= i.weight;
    if (x < 0) return i;
  }
  return items[items.length - 1] as T;
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

/** The seeded workload: the same options give the same jobs. */
export function generateWorkload(o: WorkloadOptions): Workload {
  const scale = o.scale ?? 1;
  const load = o.load ?? 1.2;
  if (!(Number.isInteger(o.jobs) && o.jobs > 0)) throw new RangeError(`jobs: must be a positive integer, got ${o.jobs}`);
  if (!(scale > 0 && Number.isFinite(scale))) throw new RangeError(`scale: must be a positive number, got ${scale}`);
  const rng = Rng.fromSeed(o.seed);
  const capacity = BENCH_NODES.reduce((s, n) => s + n.gpus * (BENCH_SPEEDS[n.model] ?? 1), 0);
  const slowest = Math.min(...BENCH_NODES.map((n) => BENCH_SPEEDS[n.model] ?? 1));
  const totalGpus = BENCH_NODES.reduce((s, n) => s + n.gpus, 0);
  const meanShapeGpus = SHAPES.reduce((s, x) => s + x.weight * x.gpus * x.replicas, 0) / SHAPES.reduce((s, x) => s + x.weight, 0);
  const meanWork = ((WORK_RANGE[1] - WORK_RANGE[0]) / Math.log(WORK_RANGE[1] / WORK_RANGE[0])) * scale;
  const arrivalRate = (load * capacity) / (meanShapeGpus * meanWork);
  const jobs: WorkloadJob[] = [];
  let t = 0;
  for (let i = 0; i < o.jobs; i++) {
    if (i > 0) t += -Math.log(1 - rng.float()) / arrivalRate;
    const tenant = rng.float() < 0.55 ? TENANTS[0] : TENANTS[1];
    const shape = pick(rng, SHAPES);
    const work = round2(WORK_RANGE[0] * scale * Math.exp(rng.float() * Math.log(WORK_RANGE[1] / WORK_RANGE[0])));
    const pr = rng.float();
    const priority = pr < 0.1 ? 1000 : pr < 0.25 ? 0 : 100;
    const preemptible = rng.float() < 0.75;
    const tight = preemptible && rng.float() < TIGHT_LIMIT_SHARE / 0.75;
    // Generous: 1.5× the work on the slowest model, plus room for restarts. Tight: 60 % of the work on an H100.
    const limit = tight ? Math.max(1, Math.round(0.6 * work)) : Math.ceil((1.5 * work) / slowest + 10 * scale);
    jobs.push({
      index: i,
      name: `j${String(i + 1).padStart(3, '0')}-${tenant}-${shape.label}`,
      tenant,
      queue: tenant,
      arrival: round2(t),
      priority,
      preemptible,
      replicas: shape.replicas,
      gpusPerTask: shape.gpus,
      workSeconds: work,
      timeLimitSeconds: limit,
      hitsLimit: tight,
      jobType: `${shape.label}-${work < 10 * scale ? 'short' : 'long'}`,
    });
  }
  const quota = totalGpus / TENANTS.length;
  return {
    seed: o.seed,
    scale,
    nodes: BENCH_NODES,
    speeds: BENCH_SPEEDS,
    tenants: [...TENANTS],
    quotas: Object.fromEntries(TENANTS.map((tn) => [tn, quota])),
    params: workParams(scale),
    jobs,
  };
}

/** GPUs the job holds (a half-GPU job counts a half). */
export const jobGpuCount = (j: WorkloadJob): number => j.replicas * j.gpusPerTask;

/** Total steps of each task of the job (what the trainer is told to do). */
export const totalSteps = (j: WorkloadJob, p: WorkParams): number => Math.max(1, Math.round(j.workSeconds * p.stepsPerSecond));
