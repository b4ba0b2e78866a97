/**
 * One run of the job-level benchmark (../shared/docs/job-benchmark.md): a workload, an arrival
 * rate, a seed and a policy; the simulator runs the core's scheduler until every measured job
 * has finished, or declares the run saturated when more than 5,000 jobs wait.
 */
import { performance } from 'node:perf_hooks';
import { getJobScheduler } from '../core/scheduling/policies/index.ts';
import type { JobSpec, QueueConfig } from '../core/scheduling/model.ts';
import type { NodeSpec } from '../core/model.ts';
import { Rng } from '../core/rng.ts';
import { highsSolver } from '../lp/highsSolver.ts';
import { gavelCluster, gavelJobs, type ThroughputTable } from '../sim/gavelWorkload.ts';
import { phillyCluster, readPhilly } from '../sim/phillyWorkload.ts';
import { MetricsCollector, type Summary } from '../sim/metrics.ts';
import { arraySource, Simulation, type JobSource } from '../sim/simulator.ts';

export const JOB_WORKLOADS = ['gavel-single', 'gavel-multi', 'philly'] as const;
export type JobWorkload = (typeof JOB_WORKLOADS)[number];

/** Where the workloads' files are. */
export interface WorkloadFiles {
  readonly throughputs: ThroughputTable;
  /** Folder of philly-vc-seed0 traces. */
  readonly phillyDir: string;
}

export interface JobRunSpec {
  readonly workload: JobWorkload;
  readonly jobsPerHour: number;
  readonly seed: number;
  readonly policy: string;
  /** Gavel: measured jobs, submission index in [from, to), default 4000–4999. Philly: all jobs. */
  readonly window?: readonly [number, number];
  /** Saturated when more jobs than this wait (default 5,000). */
  readonly saturationQueue?: number;
  /** Options handed to the scheduler (e.g. tide's starvationSeconds). */
  readonly options?: Readonly<Record<string, number | string | boolean>>;
  /** Every job's restart cost in seconds (Gavel's protocol: none). */
  readonly restartSeconds?: number;
  /** Every job saves its progress every this many seconds of work (Gavel's protocol: continuously). */
  readonly checkpointSeconds?: number;
  /**
   * Whether jobs are stopped at their declared time limits. Default 'estimate' for these
   * workloads: their generators declare limits as over-estimates of the V100 run time, which a
   * job on a slower model (or restarted) passes; enforcing them would kill such jobs.
   */
  readonly timeLimits?: 'enforce' | 'estimate';
}

/** The job with the run's restart cost and checkpoint interval (when given). */
export function withCosts(job: JobSpec, spec: Pick<JobRunSpec, 'restartSeconds' | 'checkpointSeconds'>): JobSpec {
  if (spec.restartSeconds === undefined && spec.checkpointSeconds === undefined) return job;
  return {
    ...job,
    ...(spec.restartSeconds === undefined ? {} : { restartCostSeconds: spec.restartSeconds }),
    ...(spec.checkpointSeconds === undefined ? {} : { checkpointIntervalSeconds: spec.checkpointSeconds }),
  };
}

export interface JobRunResult {
  readonly policy: string;
  readonly workload: JobWorkload;
  readonly jobsPerHour: number;
  readonly seed: number;
  readonly saturated: boolean;
  readonly summary: Summary;
  readonly simulatedHours: number;
  readonly events: number;
  readonly cycles: number;
  readonly wallSeconds: number;
  /** (hours, allocated GPUs), bucket averages. */
  readonly allocation: readonly (readonly [number, number])[];
  readonly totalGpus: number;
}

const indexOf = (job: JobSpec): number => Number(job.id.slice(1));

interface Setup {
  readonly nodes: readonly NodeSpec[];
  readonly queues: readonly QueueConfig[];
  readonly jobs: JobSource;
  readonly measured: (job: JobSpec) => boolean;
  readonly measuredCount: number;
}

/** Philly's cluster: 3 models × 24 servers × 8 GPUs (576 GPUs; the trace asks for ~266 V100s on average, 3× that in its bursts). */
export const PHILLY_SERVERS_PER_MODEL = 24;

function setup(spec: JobRunSpec, files: WorkloadFiles): Setup {
  const s = workloadSetup(spec, files);
  const source = s.jobs;
  return { ...s, jobs: { next: () => {
    const job = source.next();
    return job === undefined ? undefined : withCosts(job, spec);
  } } };
}

function workloadSetup(spec: JobRunSpec, files: WorkloadFiles): Setup {
  if (spec.workload === 'philly') {
    const nodes = phillyCluster(PHILLY_SERVERS_PER_MODEL);
    const totalGpus = nodes.reduce((a, n) => a + n.gpus.length, 0);
    const natural = readPhilly(files.phillyDir, files.throughputs, { seed: spec.seed, totalGpus });
    const w = spec.jobsPerHour === natural.naturalRate ? natural : readPhilly(files.phillyDir, files.throughputs, { seed: spec.seed, totalGpus, speedup: spec.jobsPerHour / natural.naturalRate });
    return { nodes, queues: w.queues, jobs: arraySource(w.jobs), measured: () => true, measuredCount: w.jobs.length };
  }
  const [from, to] = spec.window ?? [4000, 5000];
  return {
    nodes: gavelCluster(),
    queues: [],
    jobs: gavelJobs(files.throughputs, { jobsPerHour: spec.jobsPerHour, multiGpu: spec.workload === 'gavel-multi', seed: spec.seed }),
    measured: (job: JobSpec): boolean => {
      const i = indexOf(job);
      return i >= from && i < to;
    },
    measuredCount: to - from,
  };
}

export async function runJobSeed(spec: JobRunSpec, files: WorkloadFiles): Promise<JobRunResult> {
  const factory = getJobScheduler(spec.policy);
  if (!factory) throw new Error(`unknown job scheduler '${spec.policy}'`);
  const limit = spec.saturationQueue ?? 5000;
  const scheduler = factory({ rng: Rng.fromSeed(spec.seed + 5), lp: await highsSolver(), ...(spec.options ? { options: spec.options } : {}) });
  const { nodes, queues, jobs, measured, measuredCount } = setup(spec, files);
  const metrics = new MetricsCollector(nodes.reduce((a, n) => a + n.gpus.length, 0), measured, queues);
  let saturated = false;
  const started = performance.now();
  const sim = new Simulation({
    nodes,
    queues,
    scheduler,
    jobs,
    onEvent: metrics.onEvent,
    timeLimits: spec.timeLimits ?? 'estimate',
    stop: (s) => {
      if (s.pendingCount > limit) saturated = true;
      return saturated || metrics.ended >= measuredCount;
    },
  }).run();
  return {
    policy: spec.policy,
    workload: spec.workload,
    jobsPerHour: spec.jobsPerHour,
    seed: spec.seed,
    saturated,
    summary: metrics.summary(),
    simulatedHours: sim.now / 3600,
    events: sim.events,
    cycles: sim.cycles,
    wallSeconds: (performance.now() - started) / 1000,
    allocation: metrics.allocationSeries(),
    totalGpus: sim.totalGpus,
  };
}
