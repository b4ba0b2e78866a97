/**
 * `tide bench live`: one seeded workload, run live (real server, agents and task processes)
 * and in the simulator, under each scheduler. Reports, per scheduler, how well the simulator
 * predicted the live run (average JCT, start order), and how the schedulers compare live.
 *
 * The simulator runs after the live run so that it can match what the live server enforces:
 * time limits are applied in the twin when the live run ended some job `timeout` (the workload
 * always has jobs whose limit is shorter than their work, so a server that enforces limits
 * shows it). That is the server's capability, not a per-job outcome: the twin never reads live
 * times.
 */
import { agreement, jct, type Agreement } from './compare.ts';
import { runLive, type LiveRunOptions, type LiveRunResult } from './liveRunner.ts';
import { scatterSvg } from './scatterSvg.ts';
import { runSimTwin, schedulerOptions, type JobTimes, type SchedulerChoice, type SimTwinResult } from './simTwin.ts';
import { generateWorkload, jobGpuCount, type Workload } from './workload.ts';

/** The schedulers `tide bench live` knows, with the placement each runs with. */
export const BENCH_SCHEDULERS: Readonly<Record<string, SchedulerChoice>> = {
  fifo: { scheduler: 'fifo', placement: 'bestfit' },
  tide: { scheduler: 'tide', placement: 'tide' },
};

/** The targets for the full-size run. */
export const TARGETS = { jctError: 0.15, startOrderTau: 0.8 } as const;

export interface BenchLiveOptions {
  readonly jobs: number;
  readonly seed: number;
  readonly scale: number;
  /** Keys of BENCH_SCHEDULERS, in run order. */
  readonly schedulers: readonly string[];
  readonly live?: Omit<LiveRunOptions, 'onProgress'>;
  readonly onProgress?: (scheduler: string, p: Parameters<NonNullable<LiveRunOptions['onProgress']>>[0]) => void;
  /** Called with each scheduler's result as soon as it is in (a later live run may still fail). */
  readonly onScheduler?: (r: SchedulerReport) => void;
}

export interface SchedulerReport {
  readonly scheduler: string;
  readonly placement: string;
  readonly agreement: Agreement;
  readonly live: { readonly wallSeconds: number; readonly config: 'full' | 'basic'; readonly calibration: LiveRunResult['calibration']; readonly observedOverheadSeconds: number | null; readonly timeLimitsEnforced: boolean; readonly states: Record<string, number>; readonly preemptions: number };
  readonly sim: { readonly states: Record<string, number>; readonly preemptions: number };
  readonly jobs: readonly { readonly name: string; readonly live: JobTimes; readonly sim: JobTimes }[];
}

export interface BenchLiveReport {
  readonly jobs: number;
  readonly seed: number;
  readonly scale: number;
  readonly workload: { readonly nodes: Workload['nodes']; readonly speeds: Workload['speeds']; readonly quotas: Workload['quotas']; readonly params: Workload['params']; readonly schedulerOptions: Record<string, number>; readonly gangs: number; readonly fractional: number; readonly preemptible: number; readonly tightLimits: number; readonly gpuSeconds: number; readonly lastArrival: number };
  readonly targets: typeof TARGETS;
  readonly schedulers: readonly SchedulerReport[];
  /** Live fifo avg JCT / live tide avg JCT (and the same simulated), when both ran. */
  readonly tideSpeedupLive: number | null;
  readonly tideSpeedupSim: number | null;
}

const countStates = (jobs: readonly JobTimes[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const j of jobs) out[j.state] = (out[j.state] ?? 0) + 1;
  return out;
};

export async function runBenchLive(o: BenchLiveOptions): Promise<BenchLiveReport> {
  const w = generateWorkload({ jobs: o.jobs, seed: o.seed, scale: o.scale });
  const reports: SchedulerReport[] = [];
  for (const name of o.schedulers) {
    const choice = BENCH_SCHEDULERS[name];
    if (!choice) throw new Error(`unknown bench scheduler '${name}'`);
    const live: LiveRunResult = await runLive(w, choice, { ...o.live, ...(o.onProgress ? { onProgress: (p) => o.onProgress?.(name, p) } : {}) });
    const sim: SimTwinResult = runSimTwin(w, choice, { enforceTimeLimits: live.timeLimitsEnforced, calibration: live.calibration });
    const report: SchedulerReport = {
      scheduler: choice.scheduler,
      placement: choice.placement,
      agreement: agreement(live.jobs, sim.jobs),
      live: { wallSeconds: live.wallSeconds, config: live.config, calibration: live.calibration, observedOverheadSeconds: live.observedOverheadSeconds, timeLimitsEnforced: live.timeLimitsEnforced, states: countStates(live.jobs), preemptions: live.jobs.reduce((s, j) => s + j.preemptions, 0) },
      sim: { states: countStates(sim.jobs), preemptions: sim.jobs.reduce((s, j) => s + j.preemptions, 0) },
      jobs: live.jobs.map((l, i) => ({ name: l.name, live: l, sim: sim.jobs[i] as JobTimes })),
    };
    reports.push(report);
    o.onScheduler?.(report);
  }
  const fifo = reports.find((r) => r.scheduler === 'fifo');
  const tide = reports.find((r) => r.scheduler === 'tide');
  return {
    jobs: w.jobs.length,
    seed: o.seed,
    scale: o.scale,
    workload: {
      nodes: w.nodes,
      speeds: w.speeds,
      quotas: w.quotas,
      params: w.params,
      schedulerOptions: schedulerOptions(w),
      gangs: w.jobs.filter((j) => j.replicas > 1).length,
      fractional: w.jobs.filter((j) => j.gpusPerTask < 1).length,
      preemptible: w.jobs.filter((j) => j.preemptible).length,
      tightLimits: w.jobs.filter((j) => j.hitsLimit).length,
      gpuSeconds: Math.round(w.jobs.reduce((s, j) => s + jobGpuCount(j) * j.workSeconds, 0)),
      lastArrival: w.jobs.reduce((m, j) => Math.max(m, j.arrival), 0),
    },
    targets: TARGETS,
    schedulers: reports,
    tideSpeedupLive: fifo && tide ? fifo.agreement.avgJctLive / tide.agreement.avgJctLive : null,
    tideSpeedupSim: fifo && tide ? fifo.agreement.avgJctSim / tide.agreement.avgJctSim : null,
  };
}

/** Per-job JCT, simulated against live, one colour per scheduler. */
export function benchLiveSvg(r: BenchLiveReport): string {
  return scatterSvg({
    title: `Per-job JCT: simulated vs live — ${r.jobs} jobs, seed ${r.seed}`,
    xLabel: 'live JCT (s)',
    yLabel: 'simulated JCT (s)',
    series: r.schedulers.map((s) => ({
      name: `${s.scheduler} (τ ${s.agreement.startOrderTau.toFixed(2)}, avg err ${(100 * s.agreement.jctError).toFixed(1)} %)`,
      points: s.jobs.flatMap((j) => {
        const l = jct(j.live);
        const m = jct(j.sim);
        return l === null || m === null ? [] : [[l, m] as const];
      }),
    })),
  });
}
