/** `tide bench live`: the same workload live (real server, agents, processes) and simulated. */
import { writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { BENCH_SCHEDULERS, benchLiveSvg, runBenchLive, TARGETS, type BenchLiveReport, type SchedulerReport } from '../bench/live/benchLive.ts';
import { UserError } from '../util/errors.ts';
import { parseNames, parsePositiveInt } from './args.ts';

const f = (v: number | null, digits = 1): string => (v === null || Number.isNaN(v) ? '—' : v.toFixed(digits));
const states = (s: Record<string, number>): string =>
  Object.entries(s)
    .sort()
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');

export function benchLiveTable(r: BenchLiveReport): string {
  const table = new Table({
    head: ['scheduler', 'placement', 'avg JCT live s', 'avg JCT sim s', 'JCT error %', 'start order τ', 'per-job |err| s', 'makespan live/sim s', 'preemptions live/sim', 'live ended'],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
  });
  for (const s of r.schedulers) {
    const a = s.agreement;
    table.push([s.scheduler, s.placement, f(a.avgJctLive), f(a.avgJctSim), f(100 * a.jctError), f(a.startOrderTau, 3), f(a.meanAbsJobError), `${f(a.makespanLive, 0)} / ${f(a.makespanSim, 0)}`, `${s.live.preemptions} / ${s.sim.preemptions}`, states(s.live.states)]);
  }
  return table.toString();
}

/** The verdict lines: each target met or not. */
export function verdict(r: BenchLiveReport): string[] {
  const lines: string[] = [];
  for (const s of r.schedulers) {
    const a = s.agreement;
    const okJct = a.jctError <= TARGETS.jctError;
    const okTau = a.startOrderTau >= TARGETS.startOrderTau;
    lines.push(`${s.scheduler}: sim predicts live avg JCT within ${f(100 * a.jctError)} % (target ≤ ${100 * TARGETS.jctError} %: ${okJct ? 'met' : 'NOT met'}), start order τ ${f(a.startOrderTau, 3)} (target ≥ ${TARGETS.startOrderTau}: ${okTau ? 'met' : 'NOT met'})`);
  }
  if (r.tideSpeedupLive !== null) {
    lines.push(`live: tide's avg JCT is ${f(r.tideSpeedupLive, 2)}× better than fifo's (${r.tideSpeedupLive > 1 ? 'tide beats fifo' : 'tide does NOT beat fifo'}); simulated: ${f(r.tideSpeedupSim, 2)}×`);
  }
  const s0 = r.schedulers[0];
  for (const s of r.schedulers) lines.push(`${s.scheduler} live: a run held its GPUs ${s.live.calibration.startOverheadSeconds.toFixed(2)} s beyond its work in the probes (the twin charges this to every start), ${f(s.live.observedOverheadSeconds, 2)} s on average during the run`);
  if (s0) lines.push(`live config: ${s0.live.config}${s0.live.config === 'basic' ? ' (this server refuses gpuSpeeds/scheduling/cohort)' : ''}; time limits enforced live: ${s0.live.timeLimitsEnforced ? 'yes' : 'no (the twin runs jobs to the end too)'}`);
  return lines;
}

function parseScale(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.1 || n > 100) throw new UserError(`--scale: expected a number from 0.1 to 100, got '${value}'`);
  return n;
}

function parseSeed(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new UserError(`--seed: expected a non-negative integer, got '${value}'`);
  return n;
}

export function registerBenchLive(bench: Command): void {
  const known = Object.keys(BENCH_SCHEDULERS);
  bench
    .command('live')
    .description('Run one seeded workload on a live cluster (a real server, 3 agents with 8×H100, 8×A100, 4×L40S simulated GPUs, real task processes) and in the simulator; compare avg JCT and start order')
    .option('--jobs <n>', 'jobs in the workload', '200')
    .option('--seed <n>', 'workload seed', '1')
    .option('--scale <f>', 'multiplies every duration and gap between arrivals (1: a live run takes about 6 minutes at 200 jobs)', '1')
    .option('--schedulers <list>', `comma-separated, of: ${known.join(', ')} (fifo runs with bestfit placement, tide with tide)`, 'fifo,tide')
    .option('--keep', 'keep each live run\'s temp dir (database, agent logs)')
    .option('--json <file>', 'write the report as JSON (every job\'s live and simulated times)')
    .option('--svg <file>', 'write per-job JCT, simulated against live, as an SVG scatter chart')
    .action(async (opts: { jobs: string; seed: string; scale: string; schedulers: string; keep?: boolean; json?: string; svg?: string }) => {
      const jobs = parsePositiveInt('--jobs', opts.jobs);
      const seed = parseSeed(opts.seed);
      const scale = parseScale(opts.scale);
      const schedulers = parseNames('--schedulers', opts.schedulers, known);
      console.log(`Live vs simulated: ${jobs} jobs, seed ${seed}, scale ${scale}, schedulers ${schedulers.join(', ')}`);
      const tty = process.stderr.isTTY;
      let report: BenchLiveReport;
      const done: SchedulerReport[] = [];
      try {
        report = await runBenchLive({
          jobs,
          seed,
          scale,
          schedulers,
          live: { ...(opts.keep ? { keep: true } : {}), log: (line) => console.log(line) },
          onScheduler: (s) => {
            if (tty) process.stderr.write('\r\x1b[K');
            // So that a later run that fails or is stopped leaves this one's figures behind.
            done.push(s);
            if (opts.json) writeFileSync(opts.json, JSON.stringify({ jobs, seed, scale, partial: true, schedulers: done }, null, 2) + '\n');
            const a = s.agreement;
            console.log(`${s.scheduler}: live avg JCT ${f(a.avgJctLive)} s, simulated ${f(a.avgJctSim)} s (${f(100 * a.jctError)} %), start order τ ${f(a.startOrderTau, 3)}; live run ${f(s.live.wallSeconds, 0)} s`);
          },
          onProgress: (name, p) => {
            const line = `${name} live: ${p.elapsed.toFixed(0)} s, ${p.submitted}/${p.total} submitted, ${p.running} running, ${p.ended}/${p.total} ended`;
            if (tty) process.stderr.write(`\r${line}\x1b[K`);
          },
        });
      } catch (e) {
        if (tty) process.stderr.write('\r\x1b[K');
        // A live run that fails (a process that exits, a run past its deadline) is one line, exit 1.
        throw new UserError(`bench live: ${(e as Error).message}`, 1);
      }
      if (tty) process.stderr.write('\r\x1b[K');
      console.log(benchLiveTable(report));
      for (const line of verdict(report)) console.log(line);
      if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
      if (opts.svg) writeFileSync(opts.svg, benchLiveSvg(report));
      for (const [flag, file] of [['json', opts.json], ['svg', opts.svg]] as const) if (file) console.log(`wrote ${flag}: ${file}`);
    });
}
