/**
 * `npm run bench:traces`: the placement benchmark on every openb pod list, one table of mean
 * unallocated GPU % at 100 % arrival (seeds 42-51) per trace and policy, beside the numbers the
 * FGD authors published and the trace's floor. Pass a folder to use other pod lists:
 * `npm run bench:traces -- DIR [--seeds 42-51] [--policies a,b] [--json FILE]`.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import Table from 'cli-table3';
import { benchArgs, userValue } from './args.ts';
import { parseNames, parseSeeds } from '../src/cli/args.ts';
import { progressBar } from '../src/cli/progress.ts';
import { placementPolicyNames } from '../src/core/placement/index.ts';
import { runPlacementBenchmark, type PlacementReport } from '../src/bench/placementBenchmark.ts';
import { defaultNodesFile, readOpenbNodes, readOpenbPods } from '../src/traces/openb.ts';

/** Published means (Weng et al., ATC'23), unallocated % at 100 % arrival. */
const PUBLISHED: Record<string, Record<string, number>> = {
  default: { random: 13.7, dotprod: 9.38, clustering: 8.35, packing: 8.22, bestfit: 7.14, fgd: 4.77 },
  gpushare60: { random: 17.19, dotprod: 13.18, clustering: 13.1, packing: 12.85, bestfit: 10.94, fgd: 8.75 },
  multigpu20: { random: 13.08, dotprod: 8.15, clustering: 6.66, packing: 6.5, bestfit: 6.27, fgd: 4.47 },
  multigpu40: { random: 14.62, dotprod: 5.96, clustering: 4.65, packing: 4.41, bestfit: 4.9, fgd: 3.09 },
  gpuspec10: { random: 13.74, dotprod: 9.83, clustering: 8.04, packing: 7.76, bestfit: 6.9, fgd: 5.34 },
  gpuspec25: { random: 14.58, dotprod: 14.56, clustering: 13.59, packing: 13.23, bestfit: 14.33, fgd: 6.09 },
  cpu050: { random: 10.98, dotprod: 6.97, clustering: 6.48, packing: 6.54, bestfit: 6.44, fgd: 5.0 },
  cpu200: { random: 16.97, dotprod: 12.55, clustering: 10.33, packing: 10.02, bestfit: 7.85, fgd: 5.18 },
};

const { values: flags, positionals } = benchArgs('bench:traces', { seeds: { type: 'string' }, policies: { type: 'string' }, json: { type: 'string' } }, true);
const dir = positionals[0] ?? new URL('../../shared/traces/openb-2023/', import.meta.url).pathname;
const seeds = userValue('bench:traces', () => parseSeeds('--seeds', flags.seeds ?? '42-51'));
const policies = userValue('bench:traces', () => parseNames('--policies', flags.policies ?? placementPolicyNames().join(','), placementPolicyNames()));
const files = readdirSync(dir).filter((f) => /^openb_pod_list_.*\.csv$/.test(f)).sort((a, b) => (a.includes('default') ? -1 : b.includes('default') ? 1 : a.localeCompare(b)));

const reports: Record<string, PlacementReport> = {};
const bar = progressBar('traces');
for (const [i, file] of files.entries()) {
  const pods = join(dir, file);
  const nodes = readOpenbNodes(defaultNodesFile(pods));
  const trace = basename(file, '.csv').replace('openb_pod_list_', '');
  bar.update(i, files.length, trace);
  reports[trace] = await runPlacementBenchmark({ podsFile: pods, nodes, pods: readOpenbPods(pods, new Set(nodes.flatMap((n) => n.gpus))), policies, seeds });
}
bar.stop();

const table = new Table({ head: ['trace', ...policies, 'floor'], style: { head: [], border: [], compact: true } });
for (const [trace, report] of Object.entries(reports)) {
  const best = Math.min(...policies.map((p) => report.policies[p]?.unallocatedAt100.mean ?? Infinity));
  table.push([
    trace,
    ...policies.map((p) => {
      const s = report.policies[p];
      if (!s) return '';
      const published = PUBLISHED[trace]?.[p];
      const mark = s.unallocatedAt100.mean === best ? '*' : '';
      return `${s.unallocatedAt100.mean.toFixed(2)}${mark} ±${s.unallocatedAt100.sd.toFixed(2)}${published === undefined ? '' : ` (${published.toFixed(2)})`}`;
    }),
    report.lowerBoundAt100.toFixed(2),
  ]);
}
console.log(`Unallocated GPU % at 100 % arrival, mean ± sd over seeds ${seeds[0]}-${seeds[seeds.length - 1]} (published in parentheses; * best)`);
console.log(table.toString());
const json = flags.json;
if (json) writeFileSync(json, JSON.stringify(reports, null, 2) + '\n');
