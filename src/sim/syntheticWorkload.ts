/**
 * A seeded synthetic workload for scale tests: gangs of 1/2/4/8 GPUs (and a few 16–64-GPU
 * jobs of 8-GPU tasks), log-uniform run times from 10 minutes to 2 days, three GPU models with
 * job-dependent speed-ups, tenants and queues, Poisson arrivals at a rate that keeps the
 * cluster at `load` of its capacity on average. Capacity counts what the GPUs can do, not how
 * many there are: an A100 does on average 0.51 of an H100's work here, an L40S 0.35.
 */
import { gangJob, gpuNodes } from '../core/scheduling/build.ts';
import type { JobSpec } from '../core/scheduling/model.ts';
import type { NodeSpec } from '../core/model.ts';
import { Rng } from '../core/rng.ts';
import type { JobSource } from './simulator.ts';

export const SYNTHETIC_MODELS = ['H100', 'A100', 'L40S'] as const;

/** `gpus` GPUs in 8-GPU servers, a third of each model. */
export function syntheticCluster(gpus: number): NodeSpec[] {
  const servers = Math.max(1, Math.round(gpus / 8 / 3));
  return SYNTHETIC_MODELS.flatMap((m) => gpuNodes(m, servers, 8));
}

export interface SyntheticOptions {
  readonly jobs: number;
  readonly clusterGpus: number;
  readonly seed: number;
  /** Average share of the cluster the arrivals ask for (default 0.8). */
  readonly load?: number;
  readonly tenants?: number;
}

const MIN_RUN = 600;
/**
 * A job's speed relative to H100, averaged over the draws below and over a cluster with a third
 * of each model: (1 + E[1/(1.5+U)] + E[1/(2+2U)]) / 3 = (1 + ln(5/3) + ln(2)/2) / 3.
 */
export const SYNTHETIC_MEAN_SPEED = (1 + Math.log(5 / 3) + Math.log(2) / 2) / 3;
const MAX_RUN = 2 * 86_400;

function drawGpus(rng: Rng): number {
  const r = rng.float();
  return r < 0.6 ? 1 : r < 0.75 ? 2 : r < 0.87 ? 4 : r < 0.98 ? 8 : 8 * 2 ** rng.int(1, 3);
}

export function syntheticJobs(opts: SyntheticOptions): JobSource {
  const rng = Rng.fromSeed(opts.seed);
  const tenants = opts.tenants ?? 8;
  // E[gpus] ≈ 0.6 + 0.3 + 0.48 + 0.88 + 0.02·37.3 ≈ 3.0; E[run] on H100 = (MAX − MIN) / ln(MAX / MIN).
  const meanGpuSeconds = 3.0 * ((MAX_RUN - MIN_RUN) / Math.log(MAX_RUN / MIN_RUN));
  // In H100-seconds of work the cluster does SYNTHETIC_MEAN_SPEED per GPU-second.
  const perSecond = ((opts.load ?? 0.8) * opts.clusterGpus * SYNTHETIC_MEAN_SPEED) / meanGpuSeconds;
  let i = 0;
  let t = 0;
  return {
    next(): JobSpec | undefined {
      if (i >= opts.jobs) return undefined;
      const gpus = drawGpus(rng);
      const run = MIN_RUN * (MAX_RUN / MIN_RUN) ** rng.float();
      const h100 = 100;
      const tenant = `team-${rng.int(0, tenants - 1)}`;
      const job = gangJob({
        id: `s${String(i).padStart(7, '0')}`,
        gpus,
        gpusPerTask: Math.min(8, gpus),
        throughput: { H100: h100, A100: h100 / (1.5 + rng.float()), L40S: h100 / (2 + 2 * rng.float()) },
        totalSteps: run * h100,
        submitTime: t,
        tenant,
        queue: tenant,
        timeLimitSeconds: run * 2 ** (2 * rng.float()),
        checkpointIntervalSeconds: 1800,
        restartCostSeconds: 60,
      });
      i++;
      t += -Math.log(1 - rng.float()) / perSecond;
      return job;
    },
  };
}
