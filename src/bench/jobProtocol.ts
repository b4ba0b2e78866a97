/**
 * One run of the job-level benchmark (../shared/docs/job-benchmark.md): a workload, an arrival
 * rate, a seed and a policy; the simulator runs the core's scheduler until every measured job
 * has finished, or declares the run saturated when more than 5,000 jobs wait.
 */
import { performance } from 'node:perf_hooks';
import { getJobScheduler } from '../core/jobs/policies/index.ts';
import type { JobSpec } from '../core/jobs/model.ts';
import type { NodeSpec } from '../core/model.ts';
import { Rng } from '../core/rng.ts';
import { highsSolver } from '../lp/highsSolver.ts';
import { gavelCluster, gavelJobs, type ThroughputTable } from '../sim/gavelWorkload.ts';
import { MetricsCollector, type Summary } from '../sim/metrics.ts';
import { Simulation, type JobSource } from '../sim/simulator.ts';

export const GAVEL_WORKLOADS = ['gavel-single', 'gavel-multi'] as const;
export type JobWorkload = (typeof GAVEL_WORKLOADS)[number];

export interface JobRunSpec {
  readonly workload: JobWorkload;
  readonly jobsPerHour: number;
  readonly seed: number;
  readonly policy: string;
  /** Measured jobs: submission index in [from, to). Default 4000–4999. */
  readonly window?: readonly [number, number];
  /** Saturated when more jobs than this wait (default 5,000). */
  readonly saturationQueue?: number;
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

export async function runJobSeed(spec: JobRunSpec, table: ThroughputTable, nodes: readonly NodeSpec[] = gavelCluster()): Promise<JobRunResult> {
  const factory = getJobScheduler(spec.policy);
  if (!factory) throw new Error(`unknown job scheduler '${spec.policy}'`);
  const [from, to] = spec.window ?? [4000, 5000];
  const limit = spec.saturationQueue ?? 5000;
  const scheduler = factory({ rng: Rng.fromSeed(spec.seed + 5), lp: await highsSolver() });
  const jobs: JobSource = gavelJobs(table, { jobsPerHour: spec.jobsPerHour, multiGpu: spec.workload === 'gavel-multi', seed: spec.seed });
  const inWindow = (job: JobSpec): boolean => {
    const i = indexOf(job);
    return i >= from && i < to;
  };
  const metrics = new MetricsCollector(nodes.reduce((a, n) => a + n.gpus.length, 0), inWindow);
  let saturated = false;
  const started = performance.now();
  const sim = new Simulation({
    nodes,
    scheduler,
    jobs,
    onEvent: metrics.onEvent,
    stop: (s) => {
      if (s.pendingCount > limit) saturated = true;
      return saturated || metrics.records.length >= to - from;
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
