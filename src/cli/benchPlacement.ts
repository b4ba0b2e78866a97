/** `tide bench placement`: the FGD-protocol placement benchmark on an openb pod list. */
import { existsSync, writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { placementPolicyNames } from '../core/placement/index.ts';
import { placementChartSvg, runPlacementBenchmark, type PlacementReport } from '../bench/placementBenchmark.ts';
import { defaultNodesFile, readOpenbNodes, readOpenbPods } from '../traces/openb.ts';
import { UserError } from '../util/errors.ts';
import { parseNames, parsePositiveInt, parseSeeds } from './args.ts';
import { progressBar } from './progress.ts';

const TABLE_POINTS = [90, 95, 100, 110, 130];

export function placementTable(report: PlacementReport): string {
  const table = new Table({
    head: ['policy', 'unalloc % @100 (mean ± sd)', ...TABLE_POINTS.map((p) => `@${p}%`), 'placements/s'],
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', ...TABLE_POINTS.map(() => 'right' as const), 'right'],
  });
  for (const [name, s] of Object.entries(report.policies)) {
    const at = (p: number): string => (s.curve.find((c) => c.arrivedPct === p)?.unallocatedPct ?? NaN).toFixed(2);
    table.push([name, `${s.unallocatedAt100.mean.toFixed(2)} ± ${s.unallocatedAt100.sd.toFixed(2)}`, ...TABLE_POINTS.map(at), Math.round(s.placementsPerSecond).toLocaleString('en-US')]);
  }
  table.push([{ colSpan: 2 + TABLE_POINTS.length + 1, content: `floor (lower bound on unallocated % at 100 % arrival, from each seed's pods): ${report.lowerBoundAt100.toFixed(2)} %` }]);
  return table.toString();
}

export function registerBenchPlacement(bench: Command): void {
  const names = placementPolicyNames();
  bench
    .command('placement')
    .description('Replay an openb pod list under the FGD protocol and compare placement policies')
    .requiredOption('--pods <path>', 'pod list CSV (e.g. ../shared/traces/openb-2023/openb_pod_list_default.csv)')
    .option('--nodes <path>', 'node list CSV (default: openb_node_list_gpu_node.csv beside the pods file)')
    .option('--policies <list>', `comma-separated, of: ${names.join(', ')}`, names.join(','))
    .option('--seeds <range>', 'seeds, e.g. 42-51 or 42,45', '42-51')
    .option('--threads <n>', 'worker threads (default: one per core)')
    .option('--json <file>', 'write the report as JSON')
    .option('--svg <file>', 'write the unallocated-vs-arrival chart as SVG')
    .action(async (opts: { pods: string; nodes?: string; policies: string; seeds: string; threads?: string; json?: string; svg?: string }) => {
      const policies = parseNames('--policies', opts.policies, names);
      const seeds = parseSeeds('--seeds', opts.seeds);
      const threads = opts.threads === undefined ? undefined : parsePositiveInt('--threads', opts.threads);
      if (!existsSync(opts.pods)) throw new UserError(`--pods: ${opts.pods}: no such file`);
      const nodes = readOpenbNodes(opts.nodes ?? defaultNodesFile(opts.pods));
      const pods = readOpenbPods(opts.pods, new Set(nodes.flatMap((n) => n.gpus)));
      const gpus = nodes.reduce((a, n) => a + n.gpus.length, 0);
      console.log(`Placement benchmark: ${pods.length} pods from ${opts.pods} on ${nodes.length} nodes (${gpus} GPUs), ` + `${policies.length} policies × ${seeds.length} seeds`);
      const bar = progressBar('placing');
      const started = Date.now();
      const report = await runPlacementBenchmark({
        podsFile: opts.pods,
        nodes,
        pods,
        policies,
        seeds,
        ...(threads === undefined ? {} : { threads }),
        onProgress: (done, total, last) => bar.update(done, total, `${last.policy} seed ${last.seed}`),
      });
      bar.stop();
      console.log(placementTable(report));
      console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
      if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
      if (opts.svg) writeFileSync(opts.svg, placementChartSvg(report));
      for (const [flag, file] of [['json', opts.json], ['svg', opts.svg]] as const) if (file) console.log(`wrote ${flag}: ${file}`);
    });
}
