/**
 * `tide bench jobs`: policies × arrival rates × seeds of the job-level benchmark, spread over
 * worker threads, summarised as a report (means over seeds, per seed kept), a table and SVG
 * charts (average JCT vs rate; GPU allocation over time).
 */
import { lineChartSvg } from '../report/svgChart.ts';
import { preemptionQuantiles, type PreemptionsPerJob, type QueueSummary } from '../sim/metrics.ts';
import { runPool } from '../util/workers.ts';
import type { JobRunResult, JobRunSpec, JobWorkload } from './jobProtocol.ts';

export interface JobBenchInput {
  readonly workload: JobWorkload;
  readonly rates: readonly number[];
  readonly seeds: readonly number[];
  readonly policies: readonly string[];
  readonly throughputsFile: string;
  readonly phillyDir: string;
  readonly threads?: number;
  /** Scheduler options for every policy (each takes the keys it knows). */
  readonly options?: Readonly<Record<string, number | string | boolean>>;
  /** Every job's restart cost (seconds) and checkpoint interval (seconds of work), for every policy alike. */
  readonly restartSeconds?: number;
  readonly checkpointSeconds?: number;
  /** Stop jobs at their declared limits ('enforce') or not ('estimate', the default for these workloads). */
  readonly timeLimits?: 'enforce' | 'estimate';
  /** Gavel workloads: the measured jobs, submission index in [from, to) (default 4000–4999). */
  readonly window?: readonly [number, number];
  readonly onProgress?: (done: number, total: number, last: JobRunResult) => void;
}

export interface PolicyResult {
  /** Means over the seeds that did not saturate (NaN when all did). */
  readonly avgJctHours: number;
  readonly p99JctHours: number;
  readonly p99WaitHours8Gpu: number;
  readonly makespanHours: number;
  readonly jainIndex: number;
  readonly finishTimeFairness: number;
  readonly goodput: number;
  readonly saturatedSeeds: number;
  /** Per queue, means over the seeds that did not saturate (workloads with queues, e.g. philly). */
  readonly byQueue: Readonly<Record<string, QueueSummary>>;
  readonly perSeedAvgJctHours: readonly (number | null)[];
  /** Preemptions per job over all measured jobs of the seeds that did not saturate (pooled, not a mean of per-seed quantiles). */
  readonly preemptionsPerJob: PreemptionsPerJob;
  /** Preemptions of measured jobs, mean over those seeds. */
  readonly preemptions: number;
  /** Measured jobs stopped at their time limit, mean over those seeds. */
  readonly timedOut: number;
}

export interface JobBenchReport {
  readonly workload: JobWorkload;
  /** The rate (jobs/hour) of `policies`: the first of `rates`. */
  readonly rate: number;
  readonly rates: readonly number[];
  readonly seeds: readonly number[];
  readonly policies: Readonly<Record<string, PolicyResult>>;
  readonly byRate: readonly { readonly rate: number; readonly policies: Readonly<Record<string, PolicyResult>> }[];
  /** Simulated events per second of wall time, over all runs. */
  readonly eventsPerSecond: number;
  readonly allocation: { readonly policy: string; readonly rate: number; readonly seed: number; readonly totalGpus: number; readonly series: readonly (readonly [number, number])[] }[];
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function summariseRuns(runs: readonly JobRunResult[]): PolicyResult {
  const ok = runs.filter((r) => !r.saturated);
  const m = (f: (r: JobRunResult) => number): number => mean(ok.map(f).filter((v) => !Number.isNaN(v)));
  const pooled: Record<string, number> = {};
  for (const r of ok) for (const [n, c] of Object.entries(r.summary.preemptionCounts)) pooled[n] = (pooled[n] ?? 0) + c;
  return {
    avgJctHours: m((r) => r.summary.avgJctHours),
    p99JctHours: m((r) => r.summary.p99JctHours),
    p99WaitHours8Gpu: m((r) => r.summary.p99WaitHours8Gpu),
    makespanHours: m((r) => r.summary.makespanHours),
    jainIndex: m((r) => r.summary.jainIndex),
    finishTimeFairness: m((r) => r.summary.finishTimeFairness),
    goodput: m((r) => r.summary.goodput),
    saturatedSeeds: runs.length - ok.length,
    byQueue: Object.fromEntries(
      [...new Set(ok.flatMap((r) => Object.keys(r.summary.byQueue)))].sort().map((q) => {
        const of = (f: (s: QueueSummary) => number): number => mean(ok.flatMap((r) => (r.summary.byQueue[q] ? [f(r.summary.byQueue[q])] : [])));
        return [q, { jobs: of((s) => s.jobs), belowGuaranteeShare: of((s) => s.belowGuaranteeShare), avgWaitHours: of((s) => s.avgWaitHours), p99WaitHours: of((s) => s.p99WaitHours), avgJctHours: of((s) => s.avgJctHours) }];
      }),
    ),
    perSeedAvgJctHours: runs.map((r) => (r.saturated ? null : r.summary.avgJctHours)),
    preemptionsPerJob: preemptionQuantiles(pooled),
    preemptions: m((r) => Object.entries(r.summary.preemptionCounts).reduce((a, [n, c]) => a + Number(n) * c, 0)),
    timedOut: m((r) => r.summary.timedOut),
  };
}

export async function runJobBenchmark(input: JobBenchInput): Promise<JobBenchReport> {
  const jobs: JobRunSpec[] = input.rates.flatMap((jobsPerHour) => input.seeds.flatMap((seed) => input.policies.map((policy) => ({ workload: input.workload, jobsPerHour, seed, policy, ...(input.options ? { options: input.options } : {}), ...(input.restartSeconds === undefined ? {} : { restartSeconds: input.restartSeconds }), ...(input.checkpointSeconds === undefined ? {} : { checkpointSeconds: input.checkpointSeconds }), ...(input.timeLimits === undefined ? {} : { timeLimits: input.timeLimits }), ...(input.window === undefined ? {} : { window: input.window }) }))));
  const results = await runPool<JobRunSpec, JobRunResult>({
    entry: new URL('./jobWorker.ts', import.meta.url),
    init: { throughputs: input.throughputsFile, phillyDir: input.phillyDir },
    jobs,
    ...(input.threads === undefined ? {} : { threads: input.threads }),
    onResult: (r, done, total) => input.onProgress?.(done, total, r),
  });
  const byRate = input.rates.map((rate) => ({
    rate,
    policies: Object.fromEntries(input.policies.map((p) => [p, summariseRuns(results.filter((r) => r.jobsPerHour === rate && r.policy === p))])),
  }));
  const events = results.reduce((a, r) => a + r.events, 0);
  const wall = results.reduce((a, r) => a + r.wallSeconds, 0);
  const top = input.rates[input.rates.length - 1] as number;
  const firstSeed = input.seeds[0] as number;
  return {
    workload: input.workload,
    rate: input.rates[0] as number,
    rates: input.rates,
    seeds: input.seeds,
    policies: byRate[0]?.policies ?? {},
    byRate,
    eventsPerSecond: events / Math.max(wall, 1e-9),
    allocation: results
      .filter((r) => r.jobsPerHour === top && r.seed === firstSeed)
      .map((r) => ({ policy: r.policy, rate: r.jobsPerHour, seed: r.seed, totalGpus: r.totalGpus, series: r.allocation })),
  };
}

/** Average JCT vs arrival rate, one line per policy (saturated points left out). */
export function jctChartSvg(report: JobBenchReport): string {
  const names = Object.keys(report.policies);
  return lineChartSvg({
    title: `Average JCT vs arrival rate — ${report.workload} (mean of ${report.seeds.length} seeds)`,
    xLabel: 'arrival rate (jobs/hour)',
    yLabel: 'average JCT (hours)',
    yFromZero: true,
    series: names.map((name) => ({
      name,
      points: report.byRate.flatMap((b) => {
        const v = b.policies[name]?.avgJctHours;
        return v === undefined || Number.isNaN(v) || (b.policies[name]?.saturatedSeeds ?? 0) > 0 ? [] : [[b.rate, v] as const];
      }),
    })),
  });
}

/** GPUs allocated over time at the highest rate, first seed, one line per policy. */
export function allocationChartSvg(report: JobBenchReport): string {
  const first = report.allocation[0];
  return lineChartSvg({
    title: `GPUs allocated over time — ${report.workload}, ${first?.rate ?? ''} jobs/h, seed ${first?.seed ?? ''}`,
    xLabel: 'simulated time (hours)',
    yLabel: 'GPUs allocated',
    yFromZero: true,
    series: [
      ...report.allocation.map((a) => ({ name: a.policy, points: a.series })),
      ...(first ? [{ name: `capacity (${first.totalGpus})`, dashed: true, points: [[first.series[0]?.[0] ?? 0, first.totalGpus], [first.series[first.series.length - 1]?.[0] ?? 1, first.totalGpus]] as const }] : []),
    ],
  });
}
