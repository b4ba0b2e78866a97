/**
 * The Philly-derived traces of Gavel (../shared/traces/gavel/philly-vc-seed0/*.trace): real
 * Microsoft Philly arrivals and gang sizes (1–64 GPUs) in 15 virtual clusters, job types drawn
 * by Gavel. Each virtual cluster becomes a tenant with its own queue; all queues share one
 * cohort, with a nominal quota in proportion to the cluster's GPU-hours of demand.
 *
 * Rows whose (type, GPU count) has no measured throughput are mapped, never dropped: the
 * throughput of the largest measured count below is scaled linearly, and the mapping is
 * counted in `mapped` so the caller can report it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gangJob, gpuNodes } from '../core/scheduling/build.ts';
import type { JobSpec, QueueConfig } from '../core/scheduling/model.ts';
import type { GpuModel, NodeSpec } from '../core/model.ts';
import { Rng } from '../core/rng.ts';
import { inputError, UserError } from '../util/errors.ts';
import { declaredLimit, GAVEL_MODELS, rateKey, type ThroughputTable } from './gavelWorkload.ts';

export interface PhillyWorkload {
  readonly jobs: readonly JobSpec[];
  readonly queues: readonly QueueConfig[];
  /** How many rows were mapped, by kind ("16 GPUs: scaled from 8"). */
  readonly mapped: ReadonlyMap<string, number>;
  /** Jobs per hour over the trace's span. */
  readonly naturalRate: number;
}

/** The largest divisor of `gpus` that fits one 8-GPU server: the GPUs of each task. */
export function gpusPerTask(gpus: number, serverGpus = 8): number {
  for (let d = Math.min(gpus, serverGpus); d > 1; d--) if (gpus % d === 0) return d;
  return 1;
}

/** 3 models × `serversPerModel` servers of 8 GPUs. */
export function phillyCluster(serversPerModel = 12): NodeSpec[] {
  return GAVEL_MODELS.flatMap((m) => gpuNodes(m, serversPerModel, 8));
}

function throughputFor(table: ThroughputTable, jobType: string, gpus: number, mapped: Map<string, number>): Record<GpuModel, number> | null {
  const exact = table.rates.get(rateKey(jobType, gpus));
  let base = exact;
  let from = gpus;
  if (!exact || !((exact['V100'] ?? 0) > 0)) {
    from = 0;
    for (const k of [8, 4, 2, 1]) {
      const r = table.rates.get(rateKey(jobType, k));
      if (k <= gpus && r && (r['V100'] ?? 0) > 0) {
        base = r;
        from = k;
        break;
      }
    }
    if (!base || from === 0) return null;
    const kind = `${gpus} GPUs${from === 1 ? ' (type not distributed)' : ''}: scaled from ${from}`;
    mapped.set(kind, (mapped.get(kind) ?? 0) + 1);
  }
  const out: Record<GpuModel, number> = {};
  for (const m of GAVEL_MODELS) {
    const v = ((base as Record<GpuModel, number>)[m] ?? 0) * (gpus / from);
    if (v > 0) out[m] = v;
  }
  return out;
}

/** Reads every *.trace file of a folder (or one file), arrivals compressed `speedup`× (1: as recorded). */
export function readPhilly(path: string, table: ThroughputTable, opts: { seed: number; speedup?: number; totalGpus: number }): PhillyWorkload {
  let files: string[];
  try {
    files = path.endsWith('.trace') ? [path] : readdirSync(path).filter((f) => f.endsWith('.trace')).sort().map((f) => join(path, f));
  } catch {
    throw new UserError(`${path}: no such folder or trace file`);
  }
  if (files.length === 0) throw new UserError(`${path}: no .trace files`);
  const speedup = opts.speedup ?? 1;
  const limitRng = Rng.fromSeed(opts.seed + 4);
  const mapped = new Map<string, number>();
  const jobs: JobSpec[] = [];
  const demand = new Map<string, number>();
  let span = 0;
  for (const file of files) {
    const vc = basename(file, '.trace');
    const lines = readFileSync(file, 'utf8').split(/\r?\n/);
    lines.forEach((raw, i) => {
      if (raw.trim() === '') return;
      const cols = raw.split('\t');
      const line = i + 1;
      if (cols.length !== 7) throw inputError(file, line, null, `expected 7 tab-separated columns, found ${cols.length}`);
      const [jobType, , , , stepsRaw, arrivalRaw, gpusRaw] = cols as [string, string, string, string, string, string, string];
      const steps = Number(stepsRaw);
      const arrival = Number(arrivalRaw);
      const gpus = Number(gpusRaw);
      if (!(steps > 0)) throw inputError(file, line, 'total steps', `'${stepsRaw}' is not a positive number`);
      if (!(arrival >= 0)) throw inputError(file, line, 'arrival time', `'${arrivalRaw}' is not a time ≥ 0`);
      if (!Number.isInteger(gpus) || gpus < 1) throw inputError(file, line, 'GPU count', `'${gpusRaw}' is not a positive integer`);
      if (!table.jobTypes.includes(jobType)) throw inputError(file, line, 'job type', `'${jobType}' is not in the throughput table`);
      const throughput = throughputFor(table, jobType, gpus, mapped);
      if (!throughput) throw inputError(file, line, 'job type', `no throughput for '${jobType}' at any GPU count`);
      const v100Seconds = steps / (throughput['V100'] as number);
      jobs.push(
        gangJob({
          id: `${vc}-${String(line).padStart(5, '0')}`,
          gpus,
          gpusPerTask: gpusPerTask(gpus),
          throughput,
          totalSteps: steps,
          submitTime: arrival / speedup,
          tenant: vc,
          queue: vc,
          jobType,
          timeLimitSeconds: declaredLimit(v100Seconds, limitRng),
        }),
      );
      demand.set(vc, (demand.get(vc) ?? 0) + gpus * v100Seconds);
      span = Math.max(span, arrival / speedup);
    });
  }
  jobs.sort((a, b) => a.submitTime - b.submitTime || (a.id < b.id ? -1 : 1));
  const total = [...demand.values()].reduce((a, b) => a + b, 0);
  const queues: QueueConfig[] = [...demand.keys()].sort().map((vc) => ({
    name: vc,
    cohort: 'philly',
    nominalQuota: { '*': Math.floor((opts.totalGpus * (demand.get(vc) ?? 0)) / total) },
  }));
  return { jobs, queues, mapped, naturalRate: (jobs.length / Math.max(span, 1)) * 3600 };
}
