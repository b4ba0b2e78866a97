/** `tide bench energy`: energy, cost and carbon of Tide's energy stages on Gavel's workload and the GenAI curve. */
import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { jobSchedulerNames } from '../core/scheduling/policies/index.ts';
import { ENERGY_PROFILES } from '../core/scheduling/stages/energyStages.ts';
import { energyTable, efficiencyChartSvg, powerSvg, runEnergyBenchmark } from '../bench/energy/energyBenchmark.ts';
import { ENERGY_WORKLOADS, type EnergyWorkload } from '../bench/energy/energyWorkloads.ts';
import { UserError } from '../util/errors.ts';
import { DEFAULT_PRICES } from '../core/energy/pricing.ts';
import { parseNames, parsePositiveInt, parseSeeds } from './args.ts';
import { DEFAULT_THROUGHPUTS, parseNonNegative } from './benchJobs.ts';
import { progressBar } from './progress.ts';

export const DEFAULT_CURVE = '../shared/traces/genai-2026/qps_5min.csv';

/** A number in [lo, hi] from a flag. */
function ranged(flag: string, value: string, lo: number, hi: number, what: string): number {
  const n = value.trim() === '' ? NaN : Number(value);
  if (!Number.isFinite(n) || n < lo || n > hi) throw new UserError(`${flag}: '${value}' is not ${what} from ${lo} to ${hi}`);
  return n;
}

interface Opts {
  workload: string;
  seeds: string;
  policies: string;
  base: string;
  singleRate: string;
  multiRate: string;
  batchRate: string;
  deferrable?: string;
  deferWindow: string;
  maxSlowdown?: string;
  suspendSeconds?: string;
  resumeSeconds?: string;
  measure: string;
  days: string;
  servers: string;
  peakInference: string;
  throughputs: string;
  curve: string;
  threads?: string;
  json?: string;
  svg?: string;
}

export function registerBenchEnergy(bench: Command): void {
  const profiles = Object.keys(ENERGY_PROFILES);
  bench
    .command('energy')
    .description("Energy, cost and carbon of the energy stages (maxpower: none; powercap, consolidate, timeshift: one each; tide: all) on Gavel's workload and on the GenAI serving curve")
    .option('--workload <list>', `of: ${ENERGY_WORKLOADS.join(', ')}`, ENERGY_WORKLOADS.join(','))
    .option('--seeds <range>', 'seeds, e.g. 0-2', '0-2')
    .option('--policies <list>', `of: ${profiles.join(', ')}`, profiles.join(','))
    .option('--base <scheduler>', `the job scheduler the stages wrap, of: ${jobSchedulerNames().join(', ')}`, 'tide')
    .option('--single-rate <jobs/h>', 'gavel-single: arrivals per hour (capacity about 5.8)', '4.0')
    .option('--multi-rate <jobs/h>', 'gavel-multi: arrivals per hour (capacity about 2.8)', '2.0')
    .option('--batch-rate <jobs/h>', 'genai: batch jobs per hour', '1.5')
    .option('--deferrable <share>', 'share of jobs that may be deferred (default: gavel 0, genai 0.8 of the batch jobs)')
    .option('--defer-window <hours>', 'a deferrable job must end this long after its declared end at the latest', '24')
    .option('--max-slowdown <fraction>', 'powercap: slowdown a job allows when it says nothing (default 0.03)')
    .option('--suspend-seconds <s>', 'consolidate: idle time before a node is suspended (default 600)')
    .option('--resume-seconds <s>', 'consolidate: wake-up delay of a suspended node (default 300)')
    .option('--measure <from-to>', 'gavel: measured jobs by submission index', '4000-4999')
    .option('--days <n>', 'genai: days simulated (the first and last are not measured)', '7')
    .option('--servers <n>', 'genai: 8-GPU H100 servers', '6')
    .option('--peak-inference <jobs/h>', 'genai: inference jobs per hour at the curve\'s peak', '60')
    .option('--throughputs <path>', "Gavel's measured throughputs", DEFAULT_THROUGHPUTS)
    .option('--curve <path>', 'a t_seconds,value demand curve (one day)', DEFAULT_CURVE)
    .option('--threads <n>', 'worker threads (default: one per core)')
    .option('--json <file>', 'write the report as JSON')
    .option('--svg <prefix>', 'write PREFIX-WORKLOAD.svg (energy per work vs JCT) and PREFIX-WORKLOAD-power.svg (power over time)')
    .action(async (opts: Opts) => {
      const workloads = parseNames('--workload', opts.workload, ENERGY_WORKLOADS) as EnergyWorkload[];
      const policies = parseNames('--policies', opts.policies, profiles);
      if (!jobSchedulerNames().includes(opts.base)) throw new UserError(`--base: unknown scheduler '${opts.base}' (known: ${jobSchedulerNames().join(', ')})`);
      const seeds = parseSeeds('--seeds', opts.seeds);
      const singleRate = ranged('--single-rate', opts.singleRate, 0.01, 1000, 'a number of jobs per hour');
      const multiRate = ranged('--multi-rate', opts.multiRate, 0.01, 1000, 'a number of jobs per hour');
      const batchRate = ranged('--batch-rate', opts.batchRate, 0.01, 1000, 'a number of jobs per hour');
      const deferrable = opts.deferrable === undefined ? undefined : ranged('--deferrable', opts.deferrable, 0, 1, 'a share');
      const deferWindowHours = ranged('--defer-window', opts.deferWindow, 0, 24 * 365, 'a number of hours');
      const maxSlowdown = opts.maxSlowdown === undefined ? undefined : ranged('--max-slowdown', opts.maxSlowdown, 0, 0.9, 'a fraction');
      const suspendSeconds = opts.suspendSeconds === undefined ? undefined : parseNonNegative('--suspend-seconds', opts.suspendSeconds, 'seconds');
      const resumeSeconds = opts.resumeSeconds === undefined ? undefined : parseNonNegative('--resume-seconds', opts.resumeSeconds, 'seconds');
      const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(opts.measure);
      if (!m || Number(m[1]) > Number(m[2])) throw new UserError(`--measure: '${opts.measure}' is not FROM-TO (job indexes, FROM ≤ TO), e.g. 1000-1499`);
      const window = [Number(m[1]), Number(m[2]) + 1] as const;
      const days = parsePositiveInt('--days', opts.days);
      if (days < 3) throw new UserError('--days: at least 3 (the first and the last day are not measured)');
      const servers = parsePositiveInt('--servers', opts.servers);
      const peak = ranged('--peak-inference', opts.peakInference, 0.01, 100_000, 'a number of jobs per hour');
      const threads = opts.threads === undefined ? undefined : parsePositiveInt('--threads', opts.threads);
      if (workloads.some((w) => w !== 'genai') && !existsSync(opts.throughputs)) throw new UserError(`--throughputs: ${opts.throughputs}: no such file`);
      if (workloads.includes('genai') && !existsSync(opts.curve)) throw new UserError(`--curve: ${opts.curve}: no such file`);
      const common = { deferWindowHours, window, days, servers, peakInferencePerHour: peak };
      const options = {
        'gavel-single': { ...common, jobsPerHour: singleRate, deferrableShare: deferrable ?? 0 },
        'gavel-multi': { ...common, jobsPerHour: multiRate, deferrableShare: deferrable ?? 0 },
        genai: { ...common, jobsPerHour: batchRate, deferrableShare: deferrable ?? 0.8 },
      };
      console.log(`Energy benchmark: ${workloads.join(', ')}; seeds ${seeds.join(',')}; policies ${policies.join(', ')} around ${opts.base}`);
      for (const w of ['gavel-single', 'gavel-multi'] as const) {
        if (workloads.includes(w)) console.log(`  ${w}: ${options[w].jobsPerHour} jobs/h, jobs ${window[0]}–${window[1] - 1} measured, 108 one-GPU servers, ${Math.round(100 * options[w].deferrableShare)} % deferrable`);
      }
      if (workloads.includes('genai')) console.log(`  genai: ${servers} × 8 H100, ${days} days, inference up to ${peak}/h along ${opts.curve}, batch ${batchRate}/h (${Math.round(100 * options.genai.deferrableShare)} % deferrable)`);
      const bar = progressBar('simulating');
      const started = Date.now();
      const report = await runEnergyBenchmark({
        workloads,
        seeds,
        profiles: policies,
        base: opts.base,
        throughputsFile: opts.throughputs,
        curveFile: opts.curve,
        options,
        ...(maxSlowdown === undefined ? {} : { maxSlowdown }),
        ...(suspendSeconds === undefined ? {} : { suspendSeconds }),
        ...(resumeSeconds === undefined ? {} : { resumeSeconds }),
        powerWindow: { 'gavel-single': [960, 1128], 'gavel-multi': [960, 1128], genai: [0, days * 24] },
        ...(threads === undefined ? {} : { threads }),
        onProgress: (done, total, last) => bar.update(done, total, `${last.workload} ${last.profile} seed ${last.seed}`),
      });
      bar.stop();
      for (const w of workloads) {
        const r = report.workloads[w];
        if (!r) continue;
        console.log(`\n${w} (means over seeds; energy at the meter, PUE 1.56; work in ${w === 'genai' ? 'H100' : 'V100'} GPU-hours):`);
        console.log(energyTable(r));
        const extra = Object.entries(r.extrapolated).filter(([, fields]) => fields.length > 0);
        if (extra.length > 0) console.log(`extrapolated power figures: ${extra.map(([model, fields]) => `${model}: ${fields.join(', ')}`).join('; ')}`);
      }
      for (const [w, j] of Object.entries(report.judged)) console.log(`\ntide vs maxpower on ${w}: energy per unit of work ${(100 * j.energyPerWorkUnit).toFixed(1)} %, average JCT ${j.avgJctHours >= 0 ? '+' : ''}${(100 * j.avgJctHours).toFixed(1)} % (target ≤ −20 % with ≤ +5 %: ${j.met ? 'met' : 'NOT met'})`);
      console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
      if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
      if (opts.svg) {
        for (const w of workloads) {
          const r = report.workloads[w];
          if (!r) continue;
          writeFileSync(`${opts.svg}-${w}.svg`, efficiencyChartSvg(r, seeds.length));
          writeFileSync(`${opts.svg}-${w}-power.svg`, powerSvg(r, seeds[0] as number, DEFAULT_PRICES.tariffYuanPerKwh));
        }
      }
      for (const [flag, file] of [['json', opts.json], ['svg', opts.svg && `${opts.svg}-*.svg`]] as const) if (file) console.log(`wrote ${flag}: ${file}`);
    });
}
