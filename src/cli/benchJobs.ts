/** `tide bench jobs`: the job-level benchmark on Gavel's setup, policies side by side. */
import { existsSync, writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { jobSchedulerNames } from '../core/scheduling/policies/index.ts';
import { allocationChartSvg, jctChartSvg, runJobBenchmark, type JobBenchReport } from '../bench/jobBenchmark.ts';
import { JOB_WORKLOADS, PHILLY_SERVERS_PER_MODEL, type JobWorkload } from '../bench/jobProtocol.ts';
import { UserError } from '../util/errors.ts';
import { parseNames, parsePositiveInt, parseSeeds } from './args.ts';
import { progressBar } from './progress.ts';

export const DEFAULT_THROUGHPUTS = '../shared/traces/gavel/simulation_throughputs.json';
export const DEFAULT_PHILLY = '../shared/traces/gavel/philly-vc-seed0';
/** Philly's own rate: its 15,264 jobs over 3,005 hours. */
export const PHILLY_NATURAL_RATE = 5.08;

/** "2.4" or "1,2,2.4": positive rates in jobs per hour. */
export function parseRates(flag: string, value: string): number[] {
  const rates = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (rates.length === 0) throw new UserError(`${flag}: empty list`);
  return rates.map((r) => {
    const n = Number(r);
    if (!Number.isFinite(n) || n <= 0) throw new UserError(`${flag}: '${r}' is not a positive number of jobs per hour`);
    return n;
  });
}

/** "key=value" pairs; numbers and true/false are parsed, anything else stays a string. */
export function parseOptions(flag: string, pairs: readonly string[]): Record<string, number | string | boolean> {
  const out: Record<string, number | string | boolean> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UserError(`${flag}: '${pair}' is not key=value`);
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    out[key] = raw === 'true' ? true : raw === 'false' ? false : raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

/** A number ≥ 0 (seconds, minutes). */
export function parseNonNegative(flag: string, value: string, unit: string): number {
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UserError(`${flag}: '${value}' is not a number of ${unit} ≥ 0`);
  return n;
}

const f = (v: number, digits = 2): string => (Number.isNaN(v) ? '—' : v.toFixed(digits));

export function jobTable(report: JobBenchReport): string {
  const table = new Table({
    head: ['policy', 'jobs/h', 'avg JCT h', 'per seed', 'p99 JCT h', 'p99 wait h (≥8 GPUs)', 'makespan h', 'Jain', 'preempt/job p50/p99/max', 'timed out', 'saturated'],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', 'right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  });
  for (const b of report.byRate) {
    for (const [name, p] of Object.entries(b.policies)) {
      table.push([name, String(b.rate), f(p.avgJctHours), p.perSeedAvgJctHours.map((v) => (v === null ? 'sat' : v.toFixed(1))).join(' / '), f(p.p99JctHours, 1), f(p.p99WaitHours8Gpu, 1), f(p.makespanHours, 0), f(p.jainIndex, 3), [p.preemptionsPerJob.p50, p.preemptionsPerJob.p99, p.preemptionsPerJob.max].map((v) => f(v, 0)).join(' / '), f(p.timedOut, 0), `${p.saturatedSeeds}/${report.seeds.length}`]);
    }
  }
  return table.toString();
}

/** Per queue and policy (workloads with queues): does any queue starve? */
export function queueTable(report: JobBenchReport): string | null {
  const first = report.byRate[0];
  if (!first) return null;
  const policies = Object.entries(first.policies);
  const queues = [...new Set(policies.flatMap(([, p]) => Object.keys(p.byQueue)))].sort();
  if (queues.length < 2) return null;
  const table = new Table({
    head: ['queue', ...policies.flatMap(([name]) => [`${name} jobs`, 'avg wait h', 'p99 wait h', 'avg JCT h', 'below quota %'])],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', ...policies.flatMap(() => ['right', 'right', 'right', 'right', 'right'] as const)],
  });
  for (const q of queues) {
    table.push([q, ...policies.flatMap(([, p]) => {
      const s = p.byQueue[q];
      return s ? [f(s.jobs, 0), f(s.avgWaitHours, 1), f(s.p99WaitHours, 1), f(s.avgJctHours, 1), f(100 * s.belowGuaranteeShare, 1)] : ['—', '—', '—', '—', '—'];
    })]);
  }
  return `Per queue at ${first.rate} jobs/h, means over seeds ("below quota %": share of the run a queue had a job waiting that fit within its nominal quota):\n${table.toString()}`;
}

export function registerBenchJobs(bench: Command): void {
  const names = jobSchedulerNames();
  bench
    .command('jobs')
    .description(`Simulate Gavel's heterogeneous cluster (36 V100 + 36 P100 + 36 K80; philly: 3 models × ${PHILLY_SERVERS_PER_MODEL * 8} GPUs with a quota per virtual cluster) and compare job schedulers`)
    .option('--workload <name>', `one of: ${JOB_WORKLOADS.join(', ')}`, 'gavel-multi')
    .option('--rate <list>', `arrival rate(s) in jobs per hour, e.g. 2.4 or 1,2,2.4 (default 2.4; philly: its own ${PHILLY_NATURAL_RATE}, other rates compress or stretch its arrivals)`)
    .option('--seeds <range>', 'seeds, e.g. 0-2', '0-2')
    .option('--policies <list>', `comma-separated, of: ${names.join(', ')}`, 'fifo,las,gavel,tide')
    .option('--throughputs <path>', "Gavel's measured throughputs", DEFAULT_THROUGHPUTS)
    .option('--philly <dir>', 'folder of philly-vc-seed0 traces', DEFAULT_PHILLY)
    .option('--threads <n>', 'worker threads (default: one per core)')
    .option('--set <key=value...>', "scheduler options, e.g. --set starvationSeconds=172800 (each policy takes the keys it knows)")
    .option('--restart-seconds <s>', "every job's restart cost in seconds, for every policy alike (Gavel's rounds included; default 0: restarts are free)")
    .option('--checkpoint-minutes <m>', 'every job saves its progress every M minutes of work; a preemption loses the work since (default: saved continuously)')
    .option('--time-limits <mode>', "'estimate' (default: the generators' declared limits are over-estimates, nothing is stopped) or 'enforce' (a job is stopped when its running time reaches its limit)", 'estimate')
    .option('--measure <from-to>', "gavel workloads: the jobs measured, by submission index (default 4000-4999, the protocol's; fewer for a quick look)")
    .option('--json <file>', 'write the report as JSON')
    .option('--svg <file>', 'write the JCT-vs-rate chart as SVG (and FILE-allocation.svg: GPUs allocated over time)')
    .action(async (opts: { workload: string; rate?: string; philly: string; seeds: string; policies: string; throughputs: string; threads?: string; set?: string[]; restartSeconds?: string; checkpointMinutes?: string; timeLimits: string; measure?: string; json?: string; svg?: string }) => {
      if (!(JOB_WORKLOADS as readonly string[]).includes(opts.workload)) throw new UserError(`--workload: unknown workload '${opts.workload}' (known: ${JOB_WORKLOADS.join(', ')})`);
      const policies = parseNames('--policies', opts.policies, names);
      const rates = parseRates('--rate', opts.rate ?? (opts.workload === 'philly' ? String(PHILLY_NATURAL_RATE) : '2.4'));
      const seeds = parseSeeds('--seeds', opts.seeds);
      const threads = opts.threads === undefined ? undefined : parsePositiveInt('--threads', opts.threads);
      const options = parseOptions('--set', opts.set ?? []);
      const restartSeconds = opts.restartSeconds === undefined ? undefined : parseNonNegative('--restart-seconds', opts.restartSeconds, 'seconds');
      const checkpointMinutes = opts.checkpointMinutes === undefined ? undefined : parseNonNegative('--checkpoint-minutes', opts.checkpointMinutes, 'minutes');
      if (checkpointMinutes === 0) throw new UserError('--checkpoint-minutes: must be above 0 (omit it for continuous checkpoints)');
      if (opts.timeLimits !== 'estimate' && opts.timeLimits !== 'enforce') throw new UserError(`--time-limits: must be 'estimate' or 'enforce', got '${opts.timeLimits}'`);
      let window: [number, number] | undefined;
      if (opts.measure !== undefined) {
        const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(opts.measure);
        if (!m || Number(m[1]) > Number(m[2])) throw new UserError(`--measure: '${opts.measure}' is not FROM-TO (job indexes, FROM ≤ TO), e.g. 1000-1499`);
        if (opts.workload === 'philly') throw new UserError('--measure: philly measures all its jobs');
        window = [Number(m[1]), Number(m[2]) + 1];
      }
      const costs = `${restartSeconds === undefined ? 'free restarts' : `restart ${restartSeconds} s`}, ${checkpointMinutes === undefined ? 'continuous checkpoints' : `checkpoint every ${checkpointMinutes} min`}${opts.timeLimits === 'enforce' ? ', time limits enforced' : ''}`;
      if (!existsSync(opts.throughputs)) throw new UserError(`--throughputs: ${opts.throughputs}: no such file`);
      if (opts.workload === 'philly' && !existsSync(opts.philly)) throw new UserError(`--philly: ${opts.philly}: no such folder`);
      console.log(`Job benchmark: ${opts.workload}, ${rates.join('/')} jobs/h, seeds ${seeds.join(',')}, policies ${policies.join(', ')}${Object.keys(options).length > 0 ? ` (${opts.set?.join(' ')})` : ''}; ${costs}; ${opts.workload === 'philly' ? `all 15,264 jobs on ${3 * PHILLY_SERVERS_PER_MODEL * 8} GPUs, quotas per virtual cluster` : `jobs ${window ? `${window[0]}–${window[1] - 1}` : '4000–4999'} measured on 108 GPUs`}`);
      const bar = progressBar('simulating');
      const started = Date.now();
      const report = await runJobBenchmark({
        workload: opts.workload as JobWorkload,
        rates,
        seeds,
        policies,
        throughputsFile: opts.throughputs,
        phillyDir: opts.philly,
        ...(threads === undefined ? {} : { threads }),
        ...(Object.keys(options).length > 0 ? { options } : {}),
        ...(restartSeconds === undefined ? {} : { restartSeconds }),
        ...(checkpointMinutes === undefined ? {} : { checkpointSeconds: checkpointMinutes * 60 }),
        timeLimits: opts.timeLimits,
        ...(window === undefined ? {} : { window }),
        onProgress: (done, total, last) => bar.update(done, total, `${last.policy} ${last.jobsPerHour}/h seed ${last.seed}`),
      });
      bar.stop();
      console.log(jobTable(report));
      const perQueue = queueTable(report);
      if (perQueue !== null) console.log(perQueue);
      console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s; ${Math.round(report.eventsPerSecond).toLocaleString('en-US')} simulated events/s per thread)`);
      if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
      if (opts.svg) {
        writeFileSync(opts.svg, jctChartSvg(report));
        writeFileSync(opts.svg.replace(/(\.svg)?$/, '-allocation.svg'), allocationChartSvg(report));
      }
      for (const [flag, file] of [['json', opts.json], ['svg', opts.svg]] as const) if (file) console.log(`wrote ${flag}: ${file}`);
    });
}
