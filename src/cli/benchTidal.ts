/** `tide bench tidal`: lend inference GPUs at the trough, have them back before the peak (../shared/docs/tidal-benchmark.md). */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { AUTOSCALER_NAMES } from '../core/tidal/policies/index.ts';
import type { BatchSpec } from '../sim/tidal/borrowers.ts';
import { buildCurve, curveLabel, parseCurveSpec, type CurveSpec } from '../sim/tidal/curves.ts';
import { TIDAL_DAYS, TIDAL_SHAPE, TIDAL_WARMUP_DAYS } from '../sim/tidal/protocol.ts';
import { SYNTHETIC_CURVES } from '../sim/tidal/synthetic.ts';
import { runTidalBenchmark, type TidalBenchReport } from '../sim/tidal/tidalBenchmark.ts';
import { tidalChartSvg } from '../sim/tidal/tidalSvg.ts';
import { UserError } from '../util/errors.ts';
import { parseNames, parsePositiveInt, parseSeeds } from './args.ts';
import { progressBar } from './progress.ts';

/** The repo's sibling `shared/` folder (bench runs from the sources: src/cli/ → the repo root → ..). */
export const DEFAULT_TIDAL_TRACES = fileURLToPath(new URL('../../../shared/traces/genai-2026', import.meta.url));

/** "key=value" (every policy) or "policy.key=value" (that policy), numbers only. */
export function parsePolicyOptions(flag: string, pairs: readonly string[], policies: readonly string[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z][\w-]*\.)?([A-Za-z]\w*)=(.+)$/.exec(pair.trim());
    if (!m) throw new UserError(`${flag}: '${pair}' is not key=value or policy.key=value`);
    const policy = m[1]?.slice(0, -1);
    const value = Number(m[3]);
    if (!Number.isFinite(value)) throw new UserError(`${flag}: '${pair}': the value must be a number`);
    if (policy !== undefined && !AUTOSCALER_NAMES.includes(policy)) throw new UserError(`${flag}: '${pair}': unknown policy '${policy}' (known: ${AUTOSCALER_NAMES.join(', ')})`);
    for (const p of policy === undefined ? policies : [policy]) (out[p] ??= {})[m[2] as string] = value;
  }
  return out;
}

/** "TASKSxSECONDS@HOURS": that many tasks of that many seconds, released when scoring starts, due HOURS later. */
export function parseBatch(flag: string, value: string, releaseAt: number, runSeconds: number): BatchSpec {
  const m = /^\s*(\d+)\s*x\s*(\d+(?:\.\d+)?)\s*@\s*(\d+(?:\.\d+)?)\s*$/.exec(value);
  if (!m) throw new UserError(`${flag}: '${value}' is not TASKSxSECONDS@HOURS, e.g. 1000000x10@48 (a million 10-second tasks due 48 h after release)`);
  const tasks = Number(m[1]);
  const taskSeconds = Number(m[2]);
  const hours = Number(m[3]);
  if (tasks < 1 || tasks > 1e9) throw new UserError(`${flag}: tasks must be between 1 and 1e9, got ${tasks}`);
  if (!(taskSeconds > 0)) throw new UserError(`${flag}: task seconds must be above 0`);
  if (!(hours > 0) || releaseAt + hours * 3600 > runSeconds) throw new UserError(`${flag}: the deadline (${hours} h after the scored days start) must fall within the run`);
  return { tasks, taskSeconds, releaseAt, deadlineAt: releaseAt + hours * 3600 };
}

const f = (v: number | null, digits = 1): string => (v === null || Number.isNaN(v) ? '—' : v.toFixed(digits));

export function tidalTable(report: TidalBenchReport): string {
  const table = new Table({
    head: ['policy', 'SLO met %', 'worst seed', 'useful %', 'busy %', 'lent %', 'train GPU-h/day', 'vs oracle %', 'lost GPU-h/day', 'lost % of lent', 'evictions/day', 'immediate/day', 'reclaim p99 s', 'shortfalls/day'],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  });
  for (const [name, p] of Object.entries(report.policies)) {
    table.push([name, f(p.sloWindowsMetPct, 2), f(p.minSloWindowsMetPct, 2), f(p.usefulUtilisationPct), f(p.inferenceBusyPct), f(p.lentGpuPct), f(p.trainingGpuHoursPerDay, 0), f(p.trainingVsOraclePct), f(p.lostGpuHoursPerDay, 2), f(p.lostPctOfLent, 2), f(p.evictionsPerDay, 0), f(p.immediateReclaimsPerDay, 1), f(p.reclaimLatencyP99Seconds, 0), f(p.shortfallsPerDay, 1)]);
  }
  return table.toString();
}

export function registerBenchTidal(bench: Command): void {
  bench
    .command('tidal')
    .description('Simulate one inference service on 109 GPUs lending its trough to preemptible training, and compare autoscalers (../shared/docs/tidal-benchmark.md)')
    .option('--curve <name>', `A, B, a synthetic curve (${SYNTHETIC_CURVES.join(', ')}) or a CSV file t_seconds,value`, 'A')
    .option('--days <n>', `days simulated, the first --warmup-days not scored (default ${TIDAL_DAYS})`)
    .option('--warmup-days <n>', `days not scored while forecasters learn (default ${TIDAL_WARMUP_DAYS}, fewer when --days is short)`)
    .option('--seeds <range>', 'seeds, e.g. 0-2', '0-2')
    .option('--policies <list>', `comma-separated, of: ${AUTOSCALER_NAMES.join(', ')}`, 'static,reactive,window,tide,oracle')
    .option('--traces <dir>', 'folder of the genai-2026 trace (curves A and B)', DEFAULT_TIDAL_TRACES)
    .option('--threads <n>', 'worker threads (default: one per core)')
    .option('--set <key=value...>', 'autoscaler options, e.g. --set tide.quantile=0.99 or --set oracle.waitTail=2e-5 (without a policy: every policy that knows the key)')
    .option('--batch <TASKSxSECONDS@HOURS>', 'a deadline batch on lent GPUs, released when scoring starts, e.g. 1000000x10@48')
    .option('--json <file>', 'write the report as JSON')
    .option('--svg <file>', 'write the chart (rate, replicas, lent GPUs, SLO misses over time) as SVG')
    .action(async (opts: { curve: string; days?: string; warmupDays?: string; seeds: string; policies: string; traces: string; threads?: string; set?: string[]; batch?: string; json?: string; svg?: string }) => {
      const policies = parseNames('--policies', opts.policies, AUTOSCALER_NAMES);
      const seeds = parseSeeds('--seeds', opts.seeds);
      const days = opts.days === undefined ? TIDAL_DAYS : parsePositiveInt('--days', opts.days);
      if (days > 366) throw new UserError(`--days: at most 366, got ${days}`);
      const warmupDays = opts.warmupDays === undefined ? Math.min(TIDAL_WARMUP_DAYS, Math.floor(days / 2)) : Number(opts.warmupDays);
      if (!Number.isInteger(warmupDays) || warmupDays < 0 || warmupDays >= days) throw new UserError(`--warmup-days: expected a whole number of days from 0 to ${days - 1}, got '${opts.warmupDays}'`);
      const threads = opts.threads === undefined ? undefined : parsePositiveInt('--threads', opts.threads);
      const options = parsePolicyOptions('--set', opts.set ?? [], policies);
      const batch = opts.batch === undefined ? undefined : parseBatch('--batch', opts.batch, warmupDays * 86_400, days * 86_400);
      const curve: CurveSpec = parseCurveSpec(opts.curve, opts.traces);
      if (curve.kind === 'A' || curve.kind === 'B') {
        if (!existsSync(opts.traces) || !statSync(opts.traces).isDirectory()) throw new UserError(`--traces: ${opts.traces}: no such folder (curves A and B read the genai-2026 trace from it)`);
      } else if (curve.kind === 'file' && !existsSync(opts.curve)) {
        throw new UserError(`--curve: '${opts.curve}' is not A, B, ${SYNTHETIC_CURVES.join(', ')} or an existing file`);
      }
      // Build the first seed's curve here: a bad file is reported on one line before any thread starts.
      buildCurve(curve, days, seeds[0] as number);
      console.log(`Tidal benchmark: curve ${curveLabel(curve)}, ${days} days (${warmupDays} warm-up), seeds ${seeds.join(',')}, policies ${policies.join(', ')}${opts.set ? ` (${opts.set.join(' ')})` : ''}${batch ? `; batch of ${batch.tasks} × ${batch.taskSeconds} s due at hour ${batch.deadlineAt / 3600}` : ''}`);
      const bar = progressBar('simulating');
      const started = Date.now();
      const report = await runTidalBenchmark({
        curve,
        days,
        warmupDays,
        seeds,
        policies,
        options,
        ...(batch ? { batch } : {}),
        ...(threads === undefined ? {} : { threads }),
        onProgress: (done, total, last) => bar.update(done, total, `${last.policy} seed ${last.seed}`),
      });
      bar.stop();
      const wall = (Date.now() - started) / 1000;
      console.log(tidalTable(report));
      for (const [name, p] of Object.entries(report.policies)) {
        if (!p.batch) continue;
        for (const b of p.batch) console.log(`batch (${name}, seed ${b.seed}): ${b.done}/${b.tasks} tasks, ${b.finishedAtHours === null ? 'not finished' : `finished at hour ${b.finishedAtHours.toFixed(1)}`}, deadline hour ${b.deadlineHours.toFixed(1)}: ${b.metDeadline ? 'met' : 'MISSED'}`);
      }
      console.log(`(${wall.toFixed(1)} s wall; ${(report.requestsSimulated / 1e6).toFixed(1)} M requests simulated, ${Math.round(report.requestsPerSecond / 1000).toLocaleString('en-US')} k requests/s per thread)`);
      if (opts.json) writeFileSync(opts.json, JSON.stringify({ ...report, wallSeconds: wall }, null, 2) + '\n');
      if (opts.svg) writeFileSync(opts.svg, tidalChartSvg(report, TIDAL_SHAPE.serviceSeconds));
      for (const [flag, file] of [['json', opts.json], ['svg', opts.svg]] as const) if (file) console.log(`wrote ${flag}: ${file}`);
    });
}
