/**
 * Gavel's workload (OSDI'20, stanford-futuredata/gavel): its measured throughput table, its
 * cluster (36 V100 + 36 P100 + 36 K80, each GPU its own server) and its job generator, as
 * described in ../shared/docs/job-benchmark.md. The generator is ours (seeded Rng), so its
 * jobs are statistically, not bit-for-bit, those of Gavel's Python generator.
 */
import { readFileSync } from 'node:fs';
import { gangJob, gpuNodes } from '../core/scheduling/build.ts';
import type { JobSpec } from '../core/scheduling/model.ts';
import type { GpuModel, NodeSpec } from '../core/model.ts';
import { Rng } from '../core/rng.ts';
import { UserError } from '../util/errors.ts';
import type { JobSource } from './simulator.ts';

/** Gavel's GPU types as Tide model names, in Gavel's (performance-aware) order. */
export const GAVEL_MODELS: readonly GpuModel[] = ['V100', 'P100', 'K80'];
const FILE_KEYS: Readonly<Record<string, GpuModel>> = { v100: 'V100', p100: 'P100', k80: 'K80' };

/** Isolated throughput (steps/s of the whole job) per job type and GPU count, per model. */
export interface ThroughputTable {
  readonly jobTypes: readonly string[];
  /** `${jobType}|${gpus}` → model → steps/s (0: cannot run). */
  readonly rates: ReadonlyMap<string, Readonly<Record<GpuModel, number>>>;
}

export function rateKey(jobType: string, gpus: number): string {
  return `${jobType}|${gpus}`;
}

/** Reads Gavel's simulation_throughputs.json (only the isolated, `null`, entries). */
export function readThroughputs(file: string): ThroughputTable {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${file}: ${code === 'ENOENT' ? 'no such file' : e instanceof SyntaxError ? `not valid JSON (${e.message})` : String(e)}`);
  }
  if (typeof raw !== 'object' || raw === null) throw new UserError(`${file}: expected an object of GPU types`);
  const rates = new Map<string, Record<GpuModel, number>>();
  const types = new Set<string>();
  for (const [fileKey, model] of Object.entries(FILE_KEYS)) {
    const perType = (raw as Record<string, unknown>)[fileKey];
    if (typeof perType !== 'object' || perType === null) throw new UserError(`${file}: field '${fileKey}': missing GPU type`);
    for (const [key, entry] of Object.entries(perType as Record<string, unknown>)) {
      const m = /^\('(.+)', (\d+)\)$/.exec(key);
      if (!m) throw new UserError(`${file}: field '${fileKey}.${key}': expected a key like "('ResNet-18 (batch size 16)', 1)"`);
      const isolated = (entry as Record<string, unknown> | null)?.['null'];
      if (typeof isolated !== 'number' || !(isolated >= 0)) throw new UserError(`${file}: field '${fileKey}.${key}.null': expected a throughput ≥ 0`);
      const jobType = m[1] as string;
      types.add(jobType);
      const k = rateKey(jobType, Number(m[2]));
      const row = rates.get(k) ?? {};
      row[model] = isolated;
      rates.set(k, row);
    }
  }
  return { jobTypes: [...types].sort(), rates };
}

/** The published cluster: 36 one-GPU servers of each type. */
export function gavelCluster(perType = 36): NodeSpec[] {
  return GAVEL_MODELS.flatMap((m) => gpuNodes(m, perType, 1));
}

export interface GavelGeneratorOptions {
  /** Arrivals per hour (Poisson); first job at t = 0. */
  readonly jobsPerHour: number;
  /** Gavel's "continuous-multiple": 1/2/4/8 GPUs with probability 0.70/0.10/0.15/0.05. */
  readonly multiGpu: boolean;
  readonly seed: number;
  /** Stop after this many jobs (default: endless). */
  readonly count?: number;
}

/** Job ids that sort in submission order: j0000001, … */
export function generatedJobId(i: number): string {
  return `j${String(i).padStart(7, '0')}`;
}

/** Gavel's duration on a V100: 60·10^U(1.5, 3) s with probability 0.8, else 60·10^U(3, 4) s. */
export function drawDuration(rng: Rng): number {
  return rng.float() >= 0.8 ? 60 * 10 ** (3 + rng.float()) : 60 * 10 ** (1.5 + 1.5 * rng.float());
}

export function drawGpuCount(rng: Rng): number {
  const r = rng.float();
  return r < 0.7 ? 1 : r < 0.8 ? 2 : r < 0.95 ? 4 : 8;
}

/**
 * Users' declared time limits over-estimate: the true V100 run time times 2^U(0, 2) (1–4×),
 * from a stream of its own so the jobs themselves do not depend on it.
 */
export function declaredLimit(trueSeconds: number, rng: Rng): number {
  return trueSeconds * 2 ** (2 * rng.float());
}

/** An endless (or `count`-long) stream of Gavel jobs in arrival order. */
export function gavelJobs(table: ThroughputTable, opts: GavelGeneratorOptions): JobSource {
  const jobRng = Rng.fromSeed(opts.seed + 2);
  const arrivalRng = Rng.fromSeed(opts.seed + 3);
  const limitRng = Rng.fromSeed(opts.seed + 4);
  const types = table.jobTypes.filter((t) => (table.rates.get(rateKey(t, 1))?.['V100'] ?? 0) > 0);
  const distributed = new Set(types.filter((t) => (table.rates.get(rateKey(t, 2))?.['V100'] ?? 0) > 0));
  const perSecond = opts.jobsPerHour / 3600;
  let i = 0;
  let t = 0;
  return {
    next(): JobSpec | undefined {
      if (opts.count !== undefined && i >= opts.count) return undefined;
      const gpus = opts.multiGpu ? drawGpuCount(jobRng) : 1;
      const duration = drawDuration(jobRng);
      let jobType: string;
      do jobType = types[jobRng.int(0, types.length - 1)] as string;
      while (gpus > 1 && !distributed.has(jobType));
      const rates = table.rates.get(rateKey(jobType, gpus)) ?? {};
      const throughput: Record<GpuModel, number> = {};
      for (const m of GAVEL_MODELS) if ((rates[m] ?? 0) > 0) throughput[m] = rates[m] as number;
      const job = gangJob({
        id: generatedJobId(i),
        gpus,
        throughput,
        totalSteps: duration * (throughput['V100'] as number),
        submitTime: t,
        jobType,
        timeLimitSeconds: declaredLimit(duration, limitRng),
      });
      i++;
      t += -Math.log(1 - arrivalRng.float()) / perSecond;
      return job;
    },
  };
}
