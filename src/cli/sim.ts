/** `tide sim`: what-if runs of a cluster file and a workload file through the job schedulers. */
import { writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { getJobScheduler, jobSchedulerNames } from '../core/scheduling/policies/index.ts';
import type { PendingReason } from '../core/scheduling/scheduler.ts';
import { Rng } from '../core/rng.ts';
import { highsSolver } from '../lp/highsSolver.ts';
import { lineChartSvg } from '../report/svgChart.ts';
import { MetricsCollector, type Summary } from '../sim/metrics.ts';
import { readClusterFile, readWorkloadFile } from '../sim/scenarioFiles.ts';
import { arraySource, Simulation } from '../sim/simulator.ts';
import { parseNames, parsePositiveInt } from './args.ts';
import { progressBar } from './progress.ts';

export interface SimReport {
  readonly cluster: string;
  readonly workload: string;
  readonly gpus: number;
  readonly jobs: number;
  readonly policies: Readonly<Record<string, Summary & { readonly unfinished: readonly { readonly job: string; readonly reason: string }[]; readonly allocation: readonly (readonly [number, number])[] }>>;
}

const f = (v: number, d = 2): string => (Number.isNaN(v) ? '—' : v.toFixed(d));

/** Simulated time after which a run stops (a policy may livelock, e.g. preempting faster than jobs checkpoint). */
export const DEFAULT_MAX_HOURS = 24 * 365;

export async function runScenario(clusterFile: string, workloadFile: string, policies: readonly string[], seed: number, onProgress?: (done: number, total: number, label: string) => void, maxHours = DEFAULT_MAX_HOURS): Promise<SimReport> {
  const cluster = readClusterFile(clusterFile);
  const jobs = readWorkloadFile(workloadFile);
  const gpus = cluster.nodes.reduce((a, n) => a + n.gpus.length, 0);
  const out: Record<string, SimReport['policies'][string]> = {};
  const lp = await highsSolver();
  for (const name of policies) {
    const factory = getJobScheduler(name);
    if (!factory) throw new Error(`unknown job scheduler ${name}`);
    const metrics = new MetricsCollector(gpus);
    let last: readonly PendingReason[] = [];
    let finished = 0;
    const sim = new Simulation({
      nodes: cluster.nodes,
      queues: cluster.queues,
      tenants: cluster.tenants,
      outages: cluster.outages,
      scheduler: factory({ rng: Rng.fromSeed(seed), lp }),
      jobs: arraySource(jobs),
      maxTime: maxHours * 3600,
      onEvent: (e) => {
        metrics.onEvent(e);
        if (e.type === 'cycle') last = e.plan.pending;
        if (e.type === 'job:finished') onProgress?.(++finished, jobs.length, name);
      },
    }).run();
    const reasons = new Map(last.map((r) => [r.job as string, `${r.code}: ${r.message}`]));
    out[name] = {
      ...metrics.summary(),
      unfinished: [...sim.jobs.entries()].map(([job, state]) => ({
        job,
        reason: state.running
          ? `still running after ${maxHours} simulated hours, ${((100 * state.progress.stepsDone) / state.spec.totalSteps).toFixed(0)}% done, preempted ${state.progress.preemptions} times`
          : (reasons.get(job) ?? 'never started'),
      })),
      allocation: metrics.allocationSeries(),
    };
  }
  return { cluster: clusterFile, workload: workloadFile, gpus, jobs: jobs.length, policies: out };
}

export function scenarioTable(report: SimReport): string {
  const table = new Table({
    head: ['policy', 'finished', 'avg JCT h', 'p99 JCT h', 'avg wait h', 'p99 wait h (≥8 GPUs)', 'makespan h', 'Jain', 'goodput', 'GPU-hours by queue'],
    style: { head: [], border: [], compact: true },
  });
  for (const [name, s] of Object.entries(report.policies)) {
    table.push([name, `${s.jobs}/${report.jobs}`, f(s.avgJctHours), f(s.p99JctHours, 1), f(s.avgWaitHours), f(s.p99WaitHours8Gpu, 1), f(s.makespanHours, 1), f(s.jainIndex, 3), f(s.goodput, 3), Object.entries(s.gpuHoursByQueue).map(([q, h]) => `${q} ${h.toFixed(0)}`).join(', ')]);
  }
  return table.toString();
}

export function registerSim(program: Command): void {
  const names = jobSchedulerNames();
  program
    .command('sim')
    .description('What-if: simulate a workload on a cluster (YAML/JSON cluster file; YAML/JSON/CSV workload) with one or more job schedulers')
    .requiredOption('--cluster <file>', 'cluster: node groups, queues with quotas, tenants, outages')
    .requiredOption('--workload <file>', 'jobs: YAML/JSON `jobs:` list or CSV rows')
    .option('--policies <list>', `comma-separated, of: ${names.join(', ')}`, 'tide')
    .option('--seed <n>', 'seed of the schedulers', '1')
    .option('--max-hours <n>', 'stop each run after this much simulated time', String(DEFAULT_MAX_HOURS))
    .option('--json <file>', 'write the report as JSON')
    .option('--svg <file>', 'write GPUs allocated over time as SVG')
    .action(async (opts: { cluster: string; workload: string; policies: string; seed: string; maxHours: string; json?: string; svg?: string }) => {
      const policies = parseNames('--policies', opts.policies, names);
      const seed = parsePositiveInt('--seed', opts.seed);
      const bar = progressBar('simulating');
      const maxHours = parsePositiveInt('--max-hours', opts.maxHours);
      const report = await runScenario(opts.cluster, opts.workload, policies, seed, (done, total, label) => bar.update(done, total, label), maxHours);
      bar.stop();
      console.log(`${report.jobs} jobs on ${report.gpus} GPUs (${opts.cluster}, ${opts.workload})`);
      console.log(scenarioTable(report));
      for (const [name, s] of Object.entries(report.policies)) {
        for (const u of s.unfinished.slice(0, 10)) console.log(`${name}: job ${u.job} did not finish — ${u.reason}`);
        if (s.unfinished.length > 10) console.log(`${name}: … and ${s.unfinished.length - 10} more jobs never finished`);
      }
      if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
      if (opts.svg) {
        writeFileSync(
          opts.svg,
          lineChartSvg({
            title: `GPUs allocated over time — ${opts.workload}`,
            xLabel: 'simulated time (hours)',
            yLabel: 'GPUs allocated',
            yFromZero: true,
            series: Object.entries(report.policies).map(([name, s]) => ({ name, points: s.allocation })),
          }),
        );
      }
      for (const [flag, file] of [['json', opts.json], ['svg', opts.svg]] as const) if (file) console.log(`wrote ${flag}: ${file}`);
    });
}
