/** `tide bench service-live`: a service live under a compressed day of a curve, with training borrowing its idle GPUs. */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { buildCurve, parseCurveSpec } from '../sim/tidal/curves.ts';
import { DEFAULT_TIDAL_TRACES } from './benchTidal.ts';
import { runServiceLive, serviceLiveSvg, type ServiceLiveReport } from '../bench/serviceLive/serviceLive.ts';
import { AUTOSCALER_NAMES } from '../core/tidal/policies/index.ts';
import { UserError } from '../util/errors.ts';
import { parseNames, parsePositiveInt } from './args.ts';
import { plainTable } from './format.ts';

const f = (v: number | null, d = 1): string => (v === null || !Number.isFinite(v) ? '—' : v.toFixed(d));

export function serviceLiveTable(r: ServiceLiveReport): string {
  const rows: (string | number)[][] = [
    ['live', r.requests, `${f(r.sloWindowsMetPct, 2)} (${r.windowsMet}/${r.windows})`, f(r.p99WaitSeconds, 2), `${f(r.lentGpuHours)} (${f(r.lentGpuPct)})`, f(r.trainingNetGpuHours), f(r.lostGpuHours), `${r.evictions.planned}/${r.evictions.immediate}`, f(r.inferenceBusyPct), f(r.usefulUtilisationPct)],
  ];
  const t = r.twin;
  if (t) rows.push(['simulated (tide sim)', t.requests, `${f(t.sloWindowsMetPct, 2)} (${t.windowsMet}/${t.windows})`, '—', `${f(t.lentGpuHours)} (${f(t.lentGpuPct)})`, f(t.trainingNetGpuHours), f(t.lostGpuHours), `${t.evictions.planned}/${t.evictions.immediate}`, f(t.inferenceBusyPct), f(t.usefulUtilisationPct)]);
  return plainTable(['run', 'requests', 'SLO windows met %', 'p99 wait s', 'lent GPU-h (%)', 'training net GPU-h', 'lost GPU-h', 'evictions planned/immediate', 'busy %', 'useful %'], rows);
}

function parseNumber(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UserError(`${flag}: expected a number from ${min} to ${max}, got '${v}'`);
  return n;
}

export function registerBenchServiceLive(bench: Command): void {
  bench
    .command('service-live')
    .description("Run a service live (real server, agents, the example model server, router and load generator) under a compressed day of a request curve, with training borrowing its idle GPUs; report SLO windows met, GPU-time lent and evictions")
    .option('--curve <name>', 'A, B, a synthetic curve (spiky, smooth, weekly) or a CSV t_seconds,value: built as `tide bench tidal` builds it', 'A')
    .option('--traces <dir>', 'folder of the genai-2026 trace (curves A and B)', DEFAULT_TIDAL_TRACES)
    .option('--compress <x>', 'curve seconds per wall second (144: a day in 10 minutes)', '144')
    .option('--hours <n>', 'hours of the curve to replay', '24')
    .option('--gpus <n>', "the cluster's GPUs (the service's pool; the peak rate keeps 65 % of them busy)", '8')
    .option('--seed <n>', "seed of the curve's hourly factors and the arrivals", '0')
    .option('--autoscaler <name>', `the service's autoscaler: ${AUTOSCALER_NAMES.join(', ')}`, 'reactive')
    .option('--scale-down-delay <s>', "the service's scaleDownDelaySeconds (HPA's stabilization window; 0: the autoscaler's decisions at once)", '0')
    .option('--option <key=value>', "an option of the autoscaler, repeatable (reactive: margin=0.5)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--keep', "keep the run's temp dir (database, logs, the load generator's windows)")
    .option('--json <file>', 'write the report as JSON')
    .option('--svg <file>', 'write the rate, replicas and lent GPUs over time as an SVG chart')
    .action(async (o: { curve: string; traces: string; compress: string; hours: string; gpus: string; seed: string; autoscaler: string; scaleDownDelay: string; option: string[]; keep?: boolean; json?: string; svg?: string }) => {
      const scaleDownDelaySeconds = parseNumber('--scale-down-delay', o.scaleDownDelay, 0, 86_400);
      const compress = parseNumber('--compress', o.compress, 1, 10_000);
      const hours = parseNumber('--hours', o.hours, 0.1, 24 * 14);
      const gpus = parsePositiveInt('--gpus', o.gpus);
      const seed = Number(o.seed);
      if (!/^\d{1,9}$/.test(o.seed)) throw new UserError(`--seed: expected a non-negative integer, got '${o.seed}'`);
      const [autoscaler] = parseNames('--autoscaler', o.autoscaler, AUTOSCALER_NAMES);
      const options: Record<string, number> = {};
      for (const kv of o.option) {
        const m = /^([A-Za-z][A-Za-z0-9_]*)=(-?\d+(?:\.\d+)?)$/.exec(kv);
        if (!m) throw new UserError(`--option: expected key=number, got '${kv}'`);
        options[m[1] as string] = Number(m[2]);
      }
      const days = Math.ceil(hours / 24);
      const spec = parseCurveSpec(o.curve, o.traces);
      if ((spec.kind === 'A' || spec.kind === 'B') && !(existsSync(o.traces) && statSync(o.traces).isDirectory())) throw new UserError(`--traces: ${o.traces}: no such folder (curves A and B read the genai-2026 trace from it)`);
      const curve = buildCurve(spec, days, seed);
      const tty = process.stderr.isTTY;
      console.log(`Service live: curve ${o.curve}, ${hours} h at ${compress}× (${((hours * 3600) / compress / 60).toFixed(1)} min), ${gpus} GPUs, autoscaler ${autoscaler}, seed ${seed}`);
      let report: ServiceLiveReport;
      try {
        report = await runServiceLive({
          curve,
          curveName: o.curve,
          compress,
          gpus,
          hours,
          seed,
          autoscaler: autoscaler as string,
          ...(Object.keys(options).length ? { options } : {}),
          ...(o.keep ? { keep: true } : {}),
          scaleDownDelaySeconds,
          log: (line) => console.log(line),
          onProgress: (p) => {
            const line = `hour ${p.hour.toFixed(1)}/${p.hours}: ${p.ready} ready of ${p.desired} wanted, ${p.lent} GPU(s) lent`;
            if (tty) process.stderr.write(`\r${line}\x1b[K`);
          },
        });
      } catch (e) {
        if (tty) process.stderr.write('\r\x1b[K');
        throw new UserError(`bench service-live: ${(e as Error).message}`, 1);
      }
      if (tty) process.stderr.write('\r\x1b[K');
      console.log(serviceLiveTable(report));
      if (report.twinNote) console.log(`simulated twin: ${report.twinNote}`);
      console.log(`${report.scaleUps} scale-ups, ${report.scaleDowns} scale-downs; ${report.failed} requests failed; run took ${report.wallSeconds.toFixed(0)} s (on this machine, shared with other work)`);
      if (report.dir) console.log(`kept: ${report.dir}`);
      if (o.json) writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`);
      if (o.svg) writeFileSync(o.svg, serviceLiveSvg(report));
      for (const [flag, file] of [['json', o.json], ['svg', o.svg]] as const) if (file) console.log(`wrote ${flag}: ${file}`);
    });
}
