/**
 * `tide bench tidal`: policies × seeds on one curve, spread over worker threads, summarised as
 * the report `tidal-benchmark.md` pins (means over seeds), plus what explains it: per-seed
 * figures, where the GPU-time went, shortfalls, missed windows and the batch's outcome.
 */
import { runPool } from '../../util/workers.ts';
import type { BatchSpec } from './borrowers.ts';
import { curveLabel, type CurveSpec } from './curves.ts';
import { TIDAL_GPUS, TIDAL_LAMBDA_PEAK, type TidalRunSpec } from './protocol.ts';
import type { BatchOutcome, ShortfallRecord, TidalRunResult } from './tidalSim.ts';

const DAY = 86_400;

export interface TidalBenchInput {
  readonly curve: CurveSpec;
  readonly days: number;
  readonly warmupDays: number;
  readonly seeds: readonly number[];
  readonly policies: readonly string[];
  /** Autoscaler options per policy name. */
  readonly options?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly batch?: BatchSpec;
  readonly threads?: number;
  readonly onProgress?: (done: number, total: number, last: TidalRunResult) => void;
}

/** One run's figures (what the summary averages). */
export interface TidalRunFigures {
  readonly seed: number;
  readonly sloWindowsMetPct: number;
  readonly usefulUtilisationPct: number;
  readonly inferenceBusyPct: number;
  readonly lentGpuPct: number;
  readonly trainingGpuHoursPerDay: number;
  readonly lostGpuHoursPerDay: number;
  readonly evictionsPerDay: number;
  readonly reclaimLatencyP99Seconds: number | null;
  /** Where the rest of the GPU-time went (% of all). */
  readonly replicaIdlePct: number;
  readonly loadingPct: number;
  readonly freePct: number;
  /** Borrowers' restarts and eviction checkpoints (GPU-hours per day). */
  readonly overheadGpuHoursPerDay: number;
  readonly batchGpuHoursPerDay: number;
  readonly immediateReclaimsPerDay: number;
  readonly shortfallsPerDay: number;
  readonly missedWindowHours: readonly number[];
  readonly requests: number;
}

export interface TidalPolicySummary {
  readonly sloWindowsMetPct: number;
  readonly usefulUtilisationPct: number;
  readonly inferenceBusyPct: number;
  readonly lentGpuPct: number;
  readonly trainingGpuHoursPerDay: number;
  /** Net training GPU-hours against the oracle's on the same seeds (null without an oracle run). */
  readonly trainingVsOraclePct: number | null;
  readonly lostGpuHoursPerDay: number;
  readonly evictionsPerDay: number;
  readonly reclaimLatencyP99Seconds: number | null;
  /** [hours from the run's start, replicas running or starting], every 5 minutes of the scored days, mean over seeds. */
  readonly replicasOverTime: readonly (readonly [number, number])[];
  /** [hours, GPUs lent], likewise. */
  readonly lentOverTime: readonly (readonly [number, number])[];
  /** The worst seed's SLO windows met (the requirement holds per seed). */
  readonly minSloWindowsMetPct: number;
  /** Lost work as a share of lent GPU-time (%). */
  readonly lostPctOfLent: number;
  readonly replicaIdlePct: number;
  readonly loadingPct: number;
  readonly freePct: number;
  readonly overheadGpuHoursPerDay: number;
  readonly immediateReclaimsPerDay: number;
  /** Decisions that had to reclaim at once because demand outran the plan (demand faster than forecast). */
  readonly shortfallsPerDay: number;
  /** The first seed's first shortfalls. */
  readonly shortfalls: readonly ShortfallRecord[];
  readonly perSeed: readonly TidalRunFigures[];
  readonly batch: readonly (BatchOutcome & { readonly seed: number })[] | null;
}

export interface TidalBenchReport {
  readonly curve: string;
  readonly days: number;
  readonly warmupDays: number;
  readonly scoredDays: number;
  readonly seeds: readonly number[];
  readonly gpus: number;
  readonly lambdaPeak: number;
  readonly policies: Readonly<Record<string, TidalPolicySummary>>;
  /** [hours, requests/s], every 5 minutes of the scored days, mean over seeds. */
  readonly rateOverTime: readonly (readonly [number, number])[];
  /** Requests simulated over all runs (warm-up included). */
  readonly requestsSimulated: number;
  /** Sum over runs of each run's own wall time (s), and the runs' simulated requests per second of it. */
  readonly runSeconds: number;
  readonly requestsPerSecond: number;
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

/** The nearest-rank quantile of unsorted values (null when there are none). */
export function quantileOf(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

export function runFigures(r: TidalRunResult): TidalRunFigures {
  const total = r.gpus * r.scoredSeconds;
  const days = r.scoredSeconds / DAY;
  const L = r.ledger;
  const pct = (s: number): number => (100 * s) / total;
  const perDay = (s: number): number => s / 3600 / days;
  const s = r.stateSeconds;
  return {
    seed: r.seed,
    sloWindowsMetPct: r.windows === 0 ? 100 : (100 * r.windowsMet) / r.windows,
    usefulUtilisationPct: pct(r.busySeconds + L.trainingUseful + L.batchUseful),
    inferenceBusyPct: pct(r.busySeconds),
    lentGpuPct: pct(s.lent + s.evicting),
    trainingGpuHoursPerDay: perDay(L.trainingUseful),
    lostGpuHoursPerDay: perDay(L.lost),
    evictionsPerDay: (L.evictionsPlanned + L.evictionsImmediate) / days,
    reclaimLatencyP99Seconds: quantileOf(r.reclaimLatencies, 0.99),
    replicaIdlePct: pct(s.ready + s.stopping - r.busySeconds),
    loadingPct: pct(s.loading),
    freePct: pct(s.free),
    overheadGpuHoursPerDay: perDay(L.restart + L.checkpoint),
    batchGpuHoursPerDay: perDay(L.batchUseful),
    immediateReclaimsPerDay: L.evictionsImmediate / days,
    shortfallsPerDay: r.shortfalls / days,
    missedWindowHours: r.missedWindowHours,
    requests: r.requests,
  };
}

/** Mean over seeds of a series sampled at the same times. */
function meanSeries(runs: readonly TidalRunResult[], pick: (r: TidalRunResult) => readonly number[], from: number): [number, number][] {
  const first = runs[0];
  if (!first) return [];
  const n = Math.min(...runs.map((r) => pick(r).length));
  const out: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    const v = mean(runs.map((r) => pick(r)[i] as number));
    out.push([Math.round(((from + i * first.seriesSeconds) / 3600) * 1000) / 1000, Math.round(v * 100) / 100]);
  }
  return out;
}

export function summarise(runs: readonly TidalRunResult[], oracleTraining: number | null): TidalPolicySummary {
  const figures = runs.map(runFigures);
  const m = (f: (x: TidalRunFigures) => number): number => mean(figures.map(f));
  const latencies = figures.map((f) => f.reclaimLatencyP99Seconds).filter((v): v is number => v !== null);
  const first = runs[0];
  const from = first ? first.scoredStartSeconds : 0;
  const lent = mean(runs.map((r) => r.stateSeconds.lent + r.stateSeconds.evicting));
  const lost = mean(runs.map((r) => r.ledger.lost));
  const training = m((f) => f.trainingGpuHoursPerDay);
  return {
    sloWindowsMetPct: m((f) => f.sloWindowsMetPct),
    usefulUtilisationPct: m((f) => f.usefulUtilisationPct),
    inferenceBusyPct: m((f) => f.inferenceBusyPct),
    lentGpuPct: m((f) => f.lentGpuPct),
    trainingGpuHoursPerDay: training,
    trainingVsOraclePct: oracleTraining === null || !(oracleTraining > 0) ? null : (100 * training) / oracleTraining,
    lostGpuHoursPerDay: m((f) => f.lostGpuHoursPerDay),
    evictionsPerDay: m((f) => f.evictionsPerDay),
    reclaimLatencyP99Seconds: latencies.length === 0 ? null : mean(latencies),
    replicasOverTime: meanSeries(runs, (r) => r.replicaSeries, from),
    lentOverTime: meanSeries(runs, (r) => r.lentSeries, from),
    minSloWindowsMetPct: Math.min(...figures.map((f) => f.sloWindowsMetPct)),
    lostPctOfLent: lent > 0 ? (100 * lost) / lent : 0,
    replicaIdlePct: m((f) => f.replicaIdlePct),
    loadingPct: m((f) => f.loadingPct),
    freePct: m((f) => f.freePct),
    overheadGpuHoursPerDay: m((f) => f.overheadGpuHoursPerDay),
    immediateReclaimsPerDay: m((f) => f.immediateReclaimsPerDay),
    shortfallsPerDay: m((f) => f.shortfallsPerDay),
    shortfalls: first ? first.shortfallRecords.slice(0, 20) : [],
    perSeed: figures,
    batch: runs.every((r) => r.batch !== null) && runs.length > 0 ? runs.map((r) => ({ ...(r.batch as BatchOutcome), seed: r.seed })) : null,
  };
}

export async function runTidalBenchmark(input: TidalBenchInput): Promise<TidalBenchReport> {
  const jobs: TidalRunSpec[] = input.seeds.flatMap((seed) =>
    input.policies.map((policy) => ({
      curve: input.curve,
      days: input.days,
      warmupDays: input.warmupDays,
      seed,
      policy,
      // The window learns its quiet hours over the warm-up days unless told otherwise.
      ...(policy === 'window' || input.options?.[policy] ? { options: { ...(policy === 'window' ? { learnDays: Math.max(1, input.warmupDays) } : {}), ...input.options?.[policy] } } : {}),
      ...(input.batch ? { batch: input.batch } : {}),
    })),
  );
  const results = await runPool<TidalRunSpec, TidalRunResult>({
    entry: new URL('./tidalWorker.ts', import.meta.url),
    init: null,
    jobs,
    ...(input.threads === undefined ? {} : { threads: input.threads }),
    onResult: (r, done, total) => input.onProgress?.(done, total, r),
  });
  const byPolicy = (p: string): TidalRunResult[] => results.filter((r) => r.policy === p);
  const oracleRuns = byPolicy('oracle');
  const oracleTraining = oracleRuns.length > 0 ? mean(oracleRuns.map((r) => runFigures(r).trainingGpuHoursPerDay)) : null;
  const first = results[0];
  const runSeconds = results.reduce((a, r) => a + r.wallSeconds, 0);
  const requestsSimulated = results.reduce((a, r) => a + r.requestsSimulated, 0);
  return {
    curve: curveLabel(input.curve),
    days: input.days,
    warmupDays: input.warmupDays,
    scoredDays: input.days - input.warmupDays,
    seeds: input.seeds,
    gpus: TIDAL_GPUS,
    lambdaPeak: TIDAL_LAMBDA_PEAK,
    policies: Object.fromEntries(input.policies.map((p) => [p, summarise(byPolicy(p), oracleTraining)])),
    rateOverTime: first ? meanSeries(results.filter((r) => r.policy === first.policy), (r) => r.rateSeries, first.scoredStartSeconds) : [],
    requestsSimulated,
    runSeconds,
    requestsPerSecond: runSeconds > 0 ? requestsSimulated / runSeconds : 0,
  };
}
